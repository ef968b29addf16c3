//! The owners' quick replies on the doorbell: copies kept in memory and on disk (`ID.wav` in
//! the reply dir), refreshed from the server (`GET /api/replies`, `GET /api/replies/ID/audio`,
//! the doorbell token), and played on the speaker when an owner taps one. A reply plays from
//! the copy, so a slow server does not delay it; one missing is fetched then.

use crate::snapshot_upload::ServerApi;
use doorbell_agent::ports::ReplyPlayer;
use doorbell_audio::wav_file::read_wav;
use doorbell_media::FRAME_SAMPLES;
use doorbell_peer::media_settings::MediaSettings;
use doorbell_signaling::SignalingConfig;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Replies {
    api: ServerApi,
    dir: PathBuf,
    media: MediaSettings,
    /// 48 kHz mono samples by reply id.
    kept: Arc<Mutex<HashMap<i64, Arc<Vec<i16>>>>>,
}

impl Replies {
    /// `None` without a doorbell token (a lab server has no replies).
    pub fn new(
        signaling: &SignalingConfig,
        dir: PathBuf,
        media: MediaSettings,
    ) -> Result<Option<Arc<Self>>, String> {
        let Some(api) = ServerApi::new(signaling, TIMEOUT)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self {
            api,
            dir,
            media,
            kept: Arc::new(Mutex::new(HashMap::new())),
        })))
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Vec<i16>>>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{id}.wav"))
    }

    /// The copy of reply `id`: in memory, else on disk, else fetched now.
    async fn samples(&self, id: i64) -> Result<Arc<Vec<i16>>, String> {
        if let Some(samples) = self.kept().get(&id).cloned() {
            return Ok(samples);
        }
        let path = self.path(id);
        if !path.exists() {
            self.fetch(id).await?;
        }
        let samples = Arc::new(
            tokio::task::spawn_blocking(move || read_wav(&path))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?,
        );
        self.kept().insert(id, samples.clone());
        Ok(samples)
    }

    /// Downloads reply `id` into the reply dir (written whole, then renamed).
    async fn fetch(&self, id: i64) -> Result<(), String> {
        let answer = self
            .api
            .request(reqwest::Method::GET, &format!("/api/replies/{id}/audio"))
            .send()
            .await
            .map_err(|e| format!("the server is unreachable: {}", e.without_url()))?;
        if !answer.status().is_success() {
            return Err(format!("the server answered {}", answer.status()));
        }
        let wav = answer
            .bytes()
            .await
            .map_err(|e| format!("the reply was cut off: {}", e.without_url()))?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let part = self.dir.join(format!("{id}.wav.part"));
        tokio::fs::write(&part, &wav)
            .await
            .map_err(|e| format!("cannot keep the reply: {e}"))?;
        tokio::fs::rename(&part, self.path(id))
            .await
            .map_err(|e| format!("cannot keep the reply: {e}"))
    }
}

impl ReplyPlayer for Replies {
    fn play(&self, id: i64) -> BoxFuture<'static, Result<Duration, String>> {
        let asked = Instant::now();
        let this = self.clone_handle();
        Box::pin(async move {
            let samples = this.samples(id).await?;
            let media = this.media.clone();
            let (started, first_sound) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let mut speaker = match media.open_speaker_only() {
                    Ok(speaker) => speaker,
                    Err(why) => {
                        let _ = started.send(Err(why));
                        return;
                    }
                };
                let mut started = Some(started);
                for chunk in samples.chunks(FRAME_SAMPLES) {
                    if let Err(e) = speaker.write(chunk) {
                        if let Some(started) = started.take() {
                            let _ = started.send(Err(e.to_string()));
                        }
                        return;
                    }
                    if let Some(started) = started.take() {
                        let _ = started.send(Ok(asked.elapsed()));
                    }
                }
                let _ = speaker.finish();
            });
            first_sound
                .await
                .map_err(|_| "the speaker thread ended".to_owned())?
        })
    }

    fn refresh(&self) -> BoxFuture<'static, Result<usize, String>> {
        let this = self.clone_handle();
        Box::pin(async move {
            let answer = this
                .api
                .request(reqwest::Method::GET, "/api/replies")
                .send()
                .await
                .map_err(|e| format!("the server is unreachable: {}", e.without_url()))?;
            if answer.status().as_u16() == 404 {
                // A server without the owner app: no replies.
                return Ok(0);
            }
            let body = answer
                .bytes()
                .await
                .map_err(|e| format!("the list was cut off: {}", e.without_url()))?;
            let listed: Vec<serde_json::Value> = serde_json::from_slice(&body)
                .map_err(|e| format!("the server's list is not JSON: {e}"))?;
            let ids: Vec<i64> = listed.iter().filter_map(|r| r["id"].as_i64()).collect();
            // Forget what was deleted, fetch what is new.
            this.kept().retain(|id, _| ids.contains(id));
            if let Ok(mut entries) = tokio::fs::read_dir(&this.dir).await {
                while let Ok(Some(entry)) = entries.next_entry().await {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let stale = name
                        .strip_suffix(".wav")
                        .and_then(|id| id.parse::<i64>().ok())
                        .is_some_and(|id| !ids.contains(&id));
                    if stale {
                        let _ = tokio::fs::remove_file(entry.path()).await;
                    }
                }
            }
            for id in &ids {
                if let Err(why) = this.samples(*id).await {
                    tracing::warn!(id, "quick reply not kept: {why}");
                }
            }
            Ok(ids.len())
        })
    }
}

impl Replies {
    /// A handle for a task: the copies are shared.
    fn clone_handle(&self) -> Arc<Replies> {
        Arc::new(self.clone())
    }
}
