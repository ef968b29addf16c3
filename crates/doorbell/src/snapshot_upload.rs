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
    api: ServerApi,
}

impl SnapshotUpload {
    /// `None` when there is no token (a lab server keeps no history).
    pub fn new(signaling: &SignalingConfig) -> Result<Option<Self>, String> {
        Ok(ServerApi::new(signaling, TIMEOUT)?.map(|api| Self { api }))
    }
}

/// Our server's API as the doorbell sees it: the TLS trust of signaling, the server's base URL
/// and the doorbell token as bearer (the snapshot upload, the message outbox, the replies).
#[derive(Clone)]
pub struct ServerApi {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl ServerApi {
    /// `None` without a token (a lab server has no API for the doorbell).
    pub fn new(signaling: &SignalingConfig, timeout: Duration) -> Result<Option<Self>, String> {
        server_client(signaling, timeout)
    }

    /// A request to `path` (e.g. `/api/replies`) with the doorbell token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }
}

fn server_client(
    signaling: &SignalingConfig,
    timeout: Duration,
) -> Result<Option<ServerApi>, String> {
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
    Ok(Some(ServerApi {
        client,
        base: signaling.server.trim_end_matches('/').to_owned(),
        token,
    }))
}

impl Notifier for SnapshotUpload {
    fn channel(&self) -> String {
        CHANNEL.to_owned()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let api = self.api.clone();
        Box::pin(async move {
            // No room (the server was unreachable) or no photo: nothing to keep.
            let (Some(room), Some(jpeg)) = (ring.room.as_ref(), ring.snapshot_jpeg.clone()) else {
                return Ok(());
            };
            let answer = api
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/rooms/{}/snapshot", room.as_str()),
                )
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
