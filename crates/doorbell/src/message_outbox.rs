//! Video messages on the doorbell: the recorder port (`peer::message_recorder` on a blocking
//! thread) and the outbox that keeps each message on the Pi's disk until the server has it.
//!
//! The outbox is a directory: `ROOM.DURATION_MS.mp4` files, each one message. A message is
//! uploaded to `PUT /api/rooms/ROOM/message` (the doorbell token as bearer, the same TLS trust
//! as signaling), tried again with a growing pause while the server is away (also after a
//! restart: files left over are sent at start), and deleted once the server has it. The
//! directory is bounded: beyond its size the oldest messages are dropped, each said as a
//! `message_failed` event.

use crate::snapshot_upload::ServerApi;
use doorbell_agent::call_flow::RecordedMessage;
use doorbell_agent::events::AgentEvent;
use doorbell_agent::ports::{MessageOutbox, MessageRecorder};
use doorbell_peer::media_settings::MediaSettings;
use doorbell_peer::message_recorder;
use doorbell_protocol::RoomId;
use doorbell_protocol::backoff::Backoff;
use doorbell_signaling::SignalingConfig;
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The largest message the server takes (`doorbell-store`'s bound).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Records messages with the call's media settings.
pub struct Recorder {
    pub media: MediaSettings,
    pub prompt: Arc<Vec<i16>>,
    pub dir: PathBuf,
}

impl MessageRecorder for Recorder {
    fn record(
        &self,
        room: RoomId,
        max: Duration,
        stop: oneshot::Receiver<()>,
    ) -> BoxFuture<'static, Result<RecordedMessage, String>> {
        let media = self.media.clone();
        let prompt = self.prompt.clone();
        let dir = self.dir.clone();
        Box::pin(async move {
            let stopped = Arc::new(AtomicBool::new(false));
            let flag = stopped.clone();
            tokio::spawn(async move {
                if stop.await.is_ok() {
                    flag.store(true, Ordering::Relaxed);
                }
            });
            let name = room.as_str().to_owned();
            let recorded = tokio::task::spawn_blocking(move || {
                message_recorder::record(&media, &prompt, &dir, &name, max, stopped)
            })
            .await
            .map_err(|e| format!("the recorder crashed: {e}"));
            // The encoders' and the muxer's buffers are free now; hand them back to the system
            // rather than keep the recording's peak for good (measured: +13 MiB after a few
            // messages without this; BENCHMARKS.md "Video messages").
            return_freed_memory();
            let recorded = recorded??;
            Ok(RecordedMessage {
                room,
                path: recorded.path,
                duration: recorded.duration,
                bytes: recorded.bytes,
            })
        })
    }
}

fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The file name a message waits under: its room and length, so a message left over from an
/// earlier run is still known.
fn spool_name(room: &RoomId, duration: Duration) -> String {
    format!("{}.{}.mp4", room.as_str(), duration.as_millis())
}

/// A spooled file's message, if the name is one of ours.
fn parse_spool_name(path: &Path) -> Option<(RoomId, Duration)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".mp4")?;
    let (room, millis) = name.rsplit_once('.')?;
    Some((
        RoomId::parse(room).ok()?,
        Duration::from_millis(millis.parse().ok()?),
    ))
}

#[derive(Clone)]
pub struct Outbox {
    api: ServerApi,
    dir: PathBuf,
    max_bytes: u64,
}

impl Outbox {
    /// `None` without a doorbell token (a lab server keeps no messages).
    pub fn new(
        signaling: &SignalingConfig,
        dir: PathBuf,
        max_bytes: u64,
    ) -> Result<Option<Arc<Self>>, String> {
        let Some(api) = ServerApi::new(signaling, UPLOAD_TIMEOUT)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self {
            api,
            dir,
            max_bytes,
        })))
    }

    /// Messages left from an earlier run, oldest first.
    pub fn left_over(&self) -> Vec<RecordedMessage> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<_> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                let (room, duration) = parse_spool_name(&path)?;
                let meta = e.metadata().ok()?;
                Some((
                    meta.modified().ok()?,
                    RecordedMessage {
                        room,
                        path,
                        duration,
                        bytes: meta.len(),
                    },
                ))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, m)| m).collect()
    }

    /// Drops the oldest spooled messages while the spool is over its bound; says so for each.
    fn enforce_bound(&self, keep: &Path, events: &mpsc::UnboundedSender<AgentEvent>) {
        let mut spooled = self.left_over();
        let mut total: u64 = spooled.iter().map(|m| m.bytes).sum();
        spooled.retain(|m| m.path != keep);
        for old in spooled {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&old.path).is_ok() {
                total = total.saturating_sub(old.bytes);
                let _ = events.send(AgentEvent::MessageFailed {
                    reason: format!(
                        "the message of ring {} was dropped: the outbox is full (message-spool-mib)",
                        old.room.redacted()
                    ),
                    retrying: false,
                });
            }
        }
    }

    async fn upload(&self, message: &RecordedMessage) -> Upload {
        let body = match tokio::fs::read(&message.path).await {
            Ok(body) => body,
            Err(e) => return Upload::Lost(format!("the message file cannot be read: {e}")),
        };
        let sent = self
            .api
            .request(
                reqwest::Method::PUT,
                &format!("/api/rooms/{}/message", message.room.as_str()),
            )
            .header(reqwest::header::CONTENT_TYPE, "video/mp4")
            .header("x-duration-ms", message.duration.as_millis().to_string())
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                return Upload::Again(format!("the server is unreachable: {}", e.without_url()));
            }
        };
        let status = answer.status();
        let why = answer
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        match status.as_u16() {
            200..=299 => Upload::Done,
            // The ring is not (or no more) in the history, or the message is refused for
            // what it is: trying again cannot help.
            404 | 413 | 415 | 422 => Upload::Lost(format!("the server refused the message: {why}")),
            _ => Upload::Again(format!("the server did not take the message: {why}")),
        }
    }
}

enum Upload {
    Done,
    Again(String),
    Lost(String),
}

impl MessageOutbox for Outbox {
    fn deliver(
        &self,
        message: RecordedMessage,
        events: mpsc::UnboundedSender<AgentEvent>,
        uploaded: mpsc::UnboundedSender<RecordedMessage>,
    ) {
        // Renamed to carry its length, so a restart knows it; a message already so named (left
        // over) keeps its name.
        let spooled = self.dir.join(spool_name(&message.room, message.duration));
        let message = if message.path != spooled {
            match std::fs::rename(&message.path, &spooled) {
                Ok(()) => RecordedMessage {
                    path: spooled,
                    ..message
                },
                Err(e) => {
                    let _ = events.send(AgentEvent::MessageFailed {
                        reason: format!("the message cannot be kept: {e}"),
                        retrying: false,
                    });
                    return;
                }
            }
        } else {
            message
        };
        self.enforce_bound(&message.path, &events);
        let outbox = self.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
            let mut said = false;
            loop {
                if !message.path.exists() {
                    // Dropped for space meanwhile.
                    return;
                }
                match outbox.upload(&message).await {
                    Upload::Done => {
                        let _ = std::fs::remove_file(&message.path);
                        let _ = events.send(AgentEvent::MessageUploaded {
                            room: message.room.as_str().to_owned(),
                        });
                        let _ = uploaded.send(message);
                        return;
                    }
                    Upload::Lost(reason) => {
                        let _ = std::fs::remove_file(&message.path);
                        let _ = events.send(AgentEvent::MessageFailed {
                            reason,
                            retrying: false,
                        });
                        return;
                    }
                    Upload::Again(reason) => {
                        // Said once; the log has every try.
                        if !said {
                            said = true;
                            let _ = events.send(AgentEvent::MessageFailed {
                                reason: format!("{reason}; kept and tried again"),
                                retrying: true,
                            });
                        }
                        tracing::info!(%reason, "video message: upload failed, trying again");
                        tokio::time::sleep(backoff.next_delay(0.5)).await;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spooled_names_carry_room_and_length() {
        let room = RoomId::parse("Ab_c-1").unwrap();
        let name = spool_name(&room, Duration::from_millis(12_345));
        assert_eq!(name, "Ab_c-1.12345.mp4");
        assert_eq!(
            parse_spool_name(Path::new(&name)),
            Some((room, Duration::from_millis(12_345)))
        );
        for other in ["x.mp4.part", "Ab.mp4", "bad room.1.mp4", "a.b.c", "a.1.mp3"] {
            assert_eq!(parse_spool_name(Path::new(other)), None, "{other}");
        }
    }
}
