//! Waiting for a media thread to end, without letting a stuck device hang the call flow.

use std::time::Duration;

/// How long `close` waits for a media thread. A camera or sound card that blocks longer (a
/// hung driver) is left to its thread, which releases it when the call returns; the call flow
/// moves on.
const JOIN_PATIENCE: Duration = Duration::from_secs(3);

pub(crate) async fn join_media_thread(thread: std::thread::JoinHandle<()>) {
    let name = thread.thread().name().unwrap_or("media").to_owned();
    let joined = tokio::task::spawn_blocking(move || thread.join());
    match tokio::time::timeout(JOIN_PATIENCE, joined).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(_))) => tracing::warn!(thread = %name, "a media thread panicked"),
        Ok(Err(error)) => tracing::warn!(thread = %name, %error, "could not join a media thread"),
        Err(_) => tracing::warn!(
            thread = %name,
            "a media device did not return within {JOIN_PATIENCE:?}; it is released when it does"
        ),
    }
}
