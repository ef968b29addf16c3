//! ntfy (<https://docs.ntfy.sh/publish/>): `POST {server}/{topic}` with `Title`,
//! `Priority: high`, `Tags`, `Click` (the link); the body is the snapshot as an attachment
//! (`Filename`, the text in `Message`) or else the text. Optional access token as
//! `Authorization: Bearer`.

use super::http::{self, read_answer, transport_error};
use super::{Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::sync::Arc;

pub const DEFAULT_SERVER: &str = "https://ntfy.sh";
pub const TITLE: &str = "Doorbell";
/// ntfy shows `bell` as 🔔.
pub const TAGS: &str = "bell,door";
const AUTH_HINT: &str = "check token (an ntfy access token with write access to the topic)";

pub struct NtfyNotifier {
    channel: String,
    client: reqwest::Client,
    topic_url: String,
    token: Option<Secret>,
}

impl NtfyNotifier {
    /// `server` must already satisfy the TLS rule (config checks it).
    pub fn new(
        channel: impl Into<String>,
        server: &url::Url,
        topic: &str,
        token: Option<Secret>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let topic_url = format!(
            "{}/{}",
            server.as_str().trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
        );
        Ok(Self {
            channel: channel.into(),
            client: http::client(ca_pem)?,
            topic_url,
            token,
        })
    }
}

/// Characters in a topic from [`new_topic`] (22 base64url characters: 132 bits, of which 128
/// are random).
pub const MIN_TOPIC_CHARS: usize = 22;

/// A topic nobody can guess: 128 bits from the OS, base64url, e.g.
/// `doorbell-Xq3…`. A public ntfy topic is a secret: whoever knows it reads every ring's link
/// and photo and can answer the door.
pub fn new_topic() -> Result<String, String> {
    use base64::Engine;
    loop {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| format!("the OS random generator failed: {e}"))?;
        let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // Draws that lack a character class would fail `is_guessable`'s variety rule; the next
        // draw is as random as this one.
        if !is_guessable(&random) {
            return Ok(format!("doorbell-{random}"));
        }
    }
}

/// Whether a topic looks chosen by a person rather than drawn at random: shorter than
/// [`MIN_TOPIC_CHARS`] letters, digits, `-` and `_`, or without lower case, upper case and
/// digits all present. A heuristic: it cannot prove randomness, only refuse the usual names.
pub fn is_guessable(topic: &str) -> bool {
    let useful = topic
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .count();
    let has = |f: fn(&char) -> bool| topic.chars().any(|c| f(&c));
    useful < MIN_TOPIC_CHARS
        || !has(char::is_ascii_lowercase)
        || !has(char::is_ascii_uppercase)
        || !has(char::is_ascii_digit)
}

/// Header values must be visible ASCII; the text and the link are.
fn header(value: &str) -> Result<HeaderValue, NotifyError> {
    HeaderValue::from_str(value)
        .map_err(|_| NotifyError::Failed("a header value is not plain ASCII".into()))
}

impl Notifier for NtfyNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let client = self.client.clone();
        let url = self.topic_url.clone();
        let token = self.token.clone();
        Box::pin(async move {
            let text = ring.plain_text_with_time();
            let mut headers = HeaderMap::new();
            headers.insert("Title", HeaderValue::from_static(TITLE));
            headers.insert("Priority", HeaderValue::from_static("high"));
            headers.insert("Tags", HeaderValue::from_static(TAGS));
            if let Some(link) = &ring.link {
                headers.insert("Click", header(link)?);
            }
            if let Some(token) = &token {
                let mut value = header(&format!("Bearer {}", token.expose()))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            let request = match &ring.snapshot_jpeg {
                Some(jpeg) => {
                    headers.insert("Filename", HeaderValue::from_static("doorbell.jpg"));
                    headers.insert("Message", header(&text)?);
                    client
                        .post(url)
                        .headers(headers)
                        .body(jpeg.as_ref().clone())
                }
                None => client.post(url).headers(headers).body(text),
            };
            let response = request
                .send()
                .await
                .map_err(|e| transport_error("ntfy", e))?;
            read_answer("ntfy", AUTH_HINT, response).await.map(drop)
        })
    }
}
