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
