//! Telegram Bot API: `sendPhoto` (multipart: the JPEG, a caption with the time and the link,
//! an inline-keyboard button "Answer" opening the link), or `sendMessage` when there is no
//! snapshot. <https://core.telegram.org/bots/api#sendphoto>

use super::http::{self, read_answer, transport_error};
use super::{Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::sync::Arc;

pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";
const AUTH_HINT: &str = "check bot_token (the token @BotFather gave you)";

/// Sends to one chat (a user, group or channel id, or `@channelname`).
pub struct TelegramNotifier {
    channel: String,
    client: reqwest::Client,
    /// `https://api.telegram.org` without a trailing slash.
    api_base: String,
    token: Secret,
    chat_id: String,
}

impl TelegramNotifier {
    /// `api_base` must already satisfy the TLS rule (config checks it).
    pub fn new(
        channel: impl Into<String>,
        api_base: &url::Url,
        token: Secret,
        chat_id: impl Into<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            channel: channel.into(),
            client: http::client(None)?,
            api_base: api_base.as_str().trim_end_matches('/').to_owned(),
            token,
            chat_id: chat_id.into(),
        })
    }

    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.api_base, self.token.expose())
    }
}

/// A numeric id goes as a number, `@name` as a string, as the Bot API documents.
fn chat_id_value(chat_id: &str) -> Value {
    match chat_id.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(chat_id),
    }
}

/// The "Answer" button. Telegram takes only https:// URLs on buttons (and refuses some
/// hosts); without a link there is nothing to answer.
fn answer_keyboard(ring: &Ring) -> Option<Value> {
    let link = ring.link.as_deref().filter(|l| l.starts_with("https://"))?;
    Some(json!({"inline_keyboard": [[{"text": "Answer", "url": link}]]}))
}

/// Telegram refused the button (e.g. `BUTTON_URL_INVALID` for a host it does not accept).
fn button_refused(error: &NotifyError) -> bool {
    matches!(error, NotifyError::Failed(m) if m.to_ascii_lowercase().contains("button"))
}

fn check_ok(answer: Vec<u8>) -> Result<(), NotifyError> {
    let value: Value = serde_json::from_slice(&answer)
        .map_err(|_| NotifyError::retry("Telegram answered with something that is not JSON"))?;
    if value["ok"] == json!(true) {
        Ok(())
    } else {
        Err(NotifyError::Failed(format!(
            "Telegram did not accept the message: {}",
            value["description"].as_str().unwrap_or("no description")
        )))
    }
}

impl Notifier for TelegramNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let client = self.client.clone();
        let chat_id = self.chat_id.clone();
        let photo_url = self.method_url("sendPhoto");
        let message_url = self.method_url("sendMessage");
        Box::pin(async move {
            let keyboard = answer_keyboard(&ring);
            let target = Target {
                client,
                chat_id,
                photo_url,
                message_url,
            };
            match target.send(&ring, keyboard.clone()).await {
                // The link is in the caption too: without the button the owner can still answer.
                Err(e) if keyboard.is_some() && button_refused(&e) => {
                    tracing::warn!("Telegram refused the Answer button ({e}); sending without it");
                    target.send(&ring, None).await
                }
                other => other,
            }
        })
    }
}

/// One chat's API endpoints.
struct Target {
    client: reqwest::Client,
    chat_id: String,
    photo_url: String,
    message_url: String,
}

impl Target {
    async fn send(&self, ring: &Ring, keyboard: Option<Value>) -> Result<(), NotifyError> {
        let caption = ring.text_with_time();
        let request = match &ring.snapshot_jpeg {
            Some(jpeg) => {
                let photo = Part::bytes(jpeg.as_ref().clone())
                    .file_name("doorbell.jpg")
                    .mime_str("image/jpeg")
                    .map_err(|e| NotifyError::Failed(format!("bad MIME type: {e}")))?;
                let mut form = Form::new()
                    .text("chat_id", self.chat_id.clone())
                    .text("caption", caption)
                    .part("photo", photo);
                if let Some(keyboard) = keyboard {
                    form = form.text("reply_markup", keyboard.to_string());
                }
                self.client.post(&self.photo_url).multipart(form)
            }
            None => {
                let mut body = json!({"chat_id": chat_id_value(&self.chat_id), "text": caption});
                if let Some(keyboard) = keyboard {
                    body["reply_markup"] = keyboard;
                }
                self.client.post(&self.message_url).json(&body)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| transport_error("Telegram", e))?;
        check_ok(read_answer("Telegram", AUTH_HINT, response).await?)
    }
}
