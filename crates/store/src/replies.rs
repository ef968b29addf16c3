//! The owners' quick replies: short recordings ("Please leave the parcel at the door") the
//! doorbell plays instead of a call. Kept as 48 kHz mono 16-bit WAV, the speaker's own format,
//! so the doorbell plays them without any decoder (the page converts what it recorded).

use crate::db::{Store, StoreError, millis};
use crate::owners::check_name;
use rusqlite::{OptionalExtension, params};
use std::time::{Duration, SystemTime};

/// The longest reply (the page stops recording at 10 s; a little slack for its timer).
pub const MAX_REPLY: Duration = Duration::from_millis(10_500);
/// The most replies kept.
pub const MAX_REPLIES: usize = 20;

/// A reply as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: i64,
    pub name: String,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("{0}")]
    BadName(String),
    #[error("a reply named {0:?} exists already; choose another name or delete it first")]
    NameTaken(String),
    #[error("the recording must be a 48000 Hz mono 16-bit WAV file ({0})")]
    NotWav(&'static str),
    #[error("the recording is longer than {} s", MAX_REPLY.as_secs())]
    TooLong,
    #[error("at most {MAX_REPLIES} replies are kept; delete one first")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The length of a 48 kHz mono 16-bit PCM WAV, or why it is not one.
pub fn wav_duration(wav: &[u8]) -> Result<Duration, ReplyError> {
    let u16_at = |at: usize| {
        wav.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        wav.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if wav.get(0..4) != Some(b"RIFF") || wav.get(8..12) != Some(b"WAVE") {
        return Err(ReplyError::NotWav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format_ok = false;
    while let (Some(id), Some(len)) = (wav.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        match id {
            b"fmt " => {
                format_ok = u16_at(body) == Some(1)
                    && u16_at(body + 2) == Some(1)
                    && u32_at(body + 4) == Some(48_000)
                    && u16_at(body + 14) == Some(16);
                if !format_ok {
                    return Err(ReplyError::NotWav("not 48000 Hz mono 16-bit PCM"));
                }
            }
            b"data" if format_ok => {
                let samples = (len as usize).min(wav.len().saturating_sub(body)) / 2;
                return Ok(Duration::from_secs_f64(samples as f64 / 48_000.0));
            }
            _ => {}
        }
        at = body + len as usize + (len as usize & 1);
    }
    Err(ReplyError::NotWav("no fmt or data chunk"))
}

impl Store {
    /// Keeps a new reply; its name is checked like a device's (1–64 characters).
    pub fn add_reply(&self, name: &str, wav: &[u8], now: SystemTime) -> Result<Reply, ReplyError> {
        let name = check_name(name).map_err(ReplyError::BadName)?;
        let duration = wav_duration(wav)?;
        if duration > MAX_REPLY {
            return Err(ReplyError::TooLong);
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(StoreError::from)?;
        let count: i64 = tx
            .query_row("SELECT COUNT(*) FROM replies", [], |r| r.get(0))
            .map_err(StoreError::from)?;
        if count >= MAX_REPLIES as i64 {
            return Err(ReplyError::TooMany);
        }
        let inserted = tx.execute(
            "INSERT INTO replies (name, wav, duration_ms, created_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![
                name,
                wav,
                i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
                millis(now)
            ],
        )
        .map_err(StoreError::from)?;
        if inserted == 0 {
            return Err(ReplyError::NameTaken(name));
        }
        let id = tx.last_insert_rowid();
        tx.commit().map_err(StoreError::from)?;
        Ok(Reply { id, name, duration })
    }

    pub fn replies(&self) -> Result<Vec<Reply>, StoreError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT id, name, duration_ms FROM replies ORDER BY name")?;
        let rows = statement.query_map([], |row| {
            Ok(Reply {
                id: row.get(0)?,
                name: row.get(1)?,
                duration: Duration::from_millis(u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0)),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The reply's name and WAV.
    pub fn reply_audio(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, wav FROM replies WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    pub fn delete_reply(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM replies WHERE id = ?1", params![id])?
            > 0)
    }

    /// Records that the ring of `room` was answered with reply `name`; the entry after.
    pub fn ring_replied(
        &self,
        room: &str,
        name: &str,
    ) -> Result<Option<crate::RingEntry>, StoreError> {
        self.conn().execute(
            "UPDATE rings SET replied = ?2 WHERE room = ?1",
            params![room, name],
        )?;
        self.ring(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 48 kHz mono 16-bit WAV of `samples` samples.
    pub(crate) fn wav(samples: usize, rate: u32) -> Vec<u8> {
        let data = samples * 2;
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16_u32.to_le_bytes());
        w.extend_from_slice(&1_u16.to_le_bytes());
        w.extend_from_slice(&1_u16.to_le_bytes());
        w.extend_from_slice(&rate.to_le_bytes());
        w.extend_from_slice(&(rate * 2).to_le_bytes());
        w.extend_from_slice(&2_u16.to_le_bytes());
        w.extend_from_slice(&16_u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data as u32).to_le_bytes());
        w.resize(w.len() + data, 0);
        w
    }

    #[test]
    fn replies_are_named_bounded_wavs() {
        let store = Store::in_memory().unwrap();
        let now = SystemTime::UNIX_EPOCH;
        let kept = store
            .add_reply(" Leave it at the door ", &wav(96_000, 48_000), now)
            .unwrap();
        assert_eq!(kept.name, "Leave it at the door");
        assert_eq!(kept.duration, Duration::from_secs(2));
        assert!(matches!(
            store.add_reply("Leave it at the door", &wav(10, 48_000), now),
            Err(ReplyError::NameTaken(_))
        ));
        assert!(matches!(
            store.add_reply("Long", &wav(48_000 * 11, 48_000), now),
            Err(ReplyError::TooLong)
        ));
        assert!(matches!(
            store.add_reply("Rate", &wav(100, 44_100), now),
            Err(ReplyError::NotWav(_))
        ));
        assert!(matches!(
            store.add_reply("Junk", b"'; DROP TABLE replies; --", now),
            Err(ReplyError::NotWav(_))
        ));
        assert!(matches!(
            store.add_reply("", &wav(10, 48_000), now),
            Err(ReplyError::BadName(_))
        ));
        let listed = store.replies().unwrap();
        assert_eq!(listed, std::slice::from_ref(&kept));
        assert_eq!(
            store.reply_audio(kept.id).unwrap().unwrap().1,
            wav(96_000, 48_000)
        );
        assert!(store.delete_reply(kept.id).unwrap());
        assert!(store.replies().unwrap().is_empty());
    }

    #[test]
    fn a_ring_remembers_the_reply_it_got() {
        let store = Store::in_memory().unwrap();
        store.ring_started("room1", SystemTime::UNIX_EPOCH).unwrap();
        let entry = store
            .ring_replied("room1", "Leave it at the door")
            .unwrap()
            .unwrap();
        assert_eq!(entry.replied.as_deref(), Some("Leave it at the door"));
    }
}
