//! The visitor's photo for the ring history: a channel among the notifiers that hands each
//! ring's snapshot to our server (`PUT /api/rooms/ROOM/snapshot`, the doorbell token as
//! bearer), trusting exactly what signaling trusts (CA file, pinned fingerprint or web PKI).
//! A server without the owner app (or the lab's) answers 404: nothing to keep, not a failure.

use doorbell_notify::{Notifier, NotifyError, Ring};
use doorbell_signaling::{SignalingConfig, tls_client_config};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// The channel's name in events.
pub const CHANNEL: &str = doorbell_agent::driver::HISTORY_CHANNEL;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct SnapshotUpload {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl SnapshotUpload {
    /// `None` when there is no token (a lab server keeps no history).
    pub fn new(signaling: &SignalingConfig) -> Result<Option<Self>, String> {
        Ok(
            server_client(signaling, TIMEOUT)?.map(|(client, base, token)| Self {
                client,
                base,
                token,
            }),
        )
    }
}

/// An HTTP client for our server's API as the doorbell: the TLS trust of signaling, the
/// server's base URL and the doorbell token; `None` without a token.
pub fn server_client(
    signaling: &SignalingConfig,
    timeout: Duration,
) -> Result<Option<(reqwest::Client, String, String)>, String> {
    let Some(token) = signaling.token.clone().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    // Plain http (allowed explicitly with --allow-plain-http) has nothing to trust.
    if signaling.server.starts_with("https:") {
        let mut tls = tls_client_config(&signaling.trust).map_err(|e| e.to_string())?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        builder = builder.tls_backend_preconfigured(tls);
    }
    let client = builder
        .build()
        .map_err(|e| format!("the server's API client cannot be set up: {e}"))?;
    Ok(Some((
        client,
        signaling.server.trim_end_matches('/').to_owned(),
        token,
    )))
}

impl Notifier for SnapshotUpload {
    fn channel(&self) -> String {
        CHANNEL.to_owned()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let client = self.client.clone();
        let url = ring
            .room
            .as_ref()
            .map(|room| format!("{}/api/rooms/{}/snapshot", self.base, room.as_str()));
        let token = self.token.clone();
        Box::pin(async move {
            // No room (the server was unreachable) or no photo: nothing to keep.
            let (Some(url), Some(jpeg)) = (url, ring.snapshot_jpeg.clone()) else {
                return Ok(());
            };
            let answer = client
                .put(url)
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
                .body(jpeg.to_vec())
                .send()
                .await
                .map_err(|e| {
                    NotifyError::retry(format!(
                        "the server did not take the snapshot: {}",
                        e.without_url()
                    ))
                })?;
            match answer.status().as_u16() {
                200..=299 => Ok(()),
                404 => {
                    tracing::debug!("the server keeps no ring history; snapshot not uploaded");
                    Ok(())
                }
                413 | 415 | 401 => Err(NotifyError::Failed(format!(
                    "the server refused the snapshot ({})",
                    answer.status()
                ))),
                _ => Err(NotifyError::retry(format!(
                    "the server did not take the snapshot ({})",
                    answer.status()
                ))),
            }
        })
    }
}
