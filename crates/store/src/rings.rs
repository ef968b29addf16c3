//! The ring history: every room a doorbell opened, what became of it, who answered, and the
//! visitor's photo. Kept for a configurable age and total size.

use crate::db::{Store, StoreError, millis, time_of};
use rusqlite::{OptionalExtension, params};
use std::time::{Duration, SystemTime};

/// The largest snapshot accepted (a 640x480 JPEG at the agent's quality is 30–60 KiB).
pub const MAX_SNAPSHOT_BYTES: usize = 512 * 1024;
/// The largest video message accepted (20 s at the agent's rates is about 2 MiB).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// The most entries one history request returns.
pub const MAX_PAGE: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The bell is ringing now.
    Ringing,
    /// An owner opened the call.
    Answered,
    /// Nobody answered before the ring ended.
    Missed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ringing => "ringing",
            Outcome::Answered => "answered",
            Outcome::Missed => "missed",
        }
    }

    fn parse(text: &str) -> Outcome {
        match text {
            "answered" => Outcome::Answered,
            "missed" => Outcome::Missed,
            _ => Outcome::Ringing,
        }
    }
}

/// One ring as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingEntry {
    pub id: i64,
    pub room: String,
    pub at: SystemTime,
    pub outcome: Outcome,
    pub answered_by: Option<String>,
    /// From the answer to the end of the call.
    pub duration: Option<Duration>,
    pub has_snapshot: bool,
    /// The visitor left a video message (served at `/api/rings/ID/message`).
    pub has_message: bool,
    pub message_duration: Option<Duration>,
    /// The quick reply the doorbell played for this ring, by name.
    pub replied: Option<String>,
}

/// How much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    /// Snapshots included.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 24 * 3600),
            max_bytes: 500 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message is {0} bytes; at most {MAX_MESSAGE_BYTES} are kept")]
    TooLarge(usize),
    #[error("the message is not an MP4 file")]
    NotMp4,
    #[error("no ring for this room")]
    NoRing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot is {0} bytes; at most {MAX_SNAPSHOT_BYTES} are kept")]
    TooLarge(usize),
    #[error("the snapshot is not a JPEG")]
    NotJpeg,
    #[error("no ring for this room")]
    NoRing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<RingEntry> {
    let answered_at: Option<i64> = row.get(5)?;
    let ended_at: Option<i64> = row.get(6)?;
    Ok(RingEntry {
        id: row.get(0)?,
        room: row.get(1)?,
        at: time_of(row.get(2)?),
        outcome: Outcome::parse(&row.get::<_, String>(3)?),
        answered_by: row.get(4)?,
        duration: match (answered_at, ended_at) {
            (Some(from), Some(to)) if to >= from => {
                Some(Duration::from_millis(u64::try_from(to - from).unwrap_or(0)))
            }
            _ => None,
        },
        has_snapshot: row.get(7)?,
        has_message: row.get(8)?,
        message_duration: row
            .get::<_, Option<i64>>(9)?
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        replied: row.get(10)?,
    })
}

const COLUMNS: &str = "id, room, at_ms, outcome, answered_by, answered_at_ms, ended_at_ms, \
                       snapshot IS NOT NULL, message_mp4 IS NOT NULL, message_ms, replied";

impl Store {
    /// A doorbell opened `room`: a new ring, `ringing`. The same room twice is one ring.
    pub fn ring_started(&self, room: &str, at: SystemTime) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO rings (room, at_ms, outcome) VALUES (?1, ?2, 'ringing')
             ON CONFLICT (room) DO NOTHING",
            params![room, millis(at)],
        )?;
        Ok(
            conn.query_row("SELECT id FROM rings WHERE room = ?1", params![room], |r| {
                r.get(0)
            })?,
        )
    }

    /// An owner (a paired device's name, or `None` for a link without pairing) opened the
    /// call. Only the first answer counts.
    pub fn ring_answered(
        &self,
        room: &str,
        by: Option<&str>,
        at: SystemTime,
    ) -> Result<Option<RingEntry>, StoreError> {
        self.conn().execute(
            "UPDATE rings SET outcome = 'answered', answered_by = ?2, answered_at_ms = ?3
             WHERE room = ?1 AND outcome = 'ringing'",
            params![room, by, millis(at)],
        )?;
        self.ring(room)
    }

    /// The room closed: a ring nobody answered is `missed`; a call's length is known.
    pub fn ring_ended(&self, room: &str, at: SystemTime) -> Result<Option<RingEntry>, StoreError> {
        self.conn().execute(
            "UPDATE rings SET ended_at_ms = ?2,
                 outcome = CASE outcome WHEN 'ringing' THEN 'missed' ELSE outcome END
             WHERE room = ?1 AND ended_at_ms IS NULL",
            params![room, millis(at)],
        )?;
        self.ring(room)
    }

    /// Closes what the last run left open: a ring still `ringing` (or a call without an end)
    /// when the server starts has no room any more. Without this it would stay "ringing"
    /// in the history, its link dead, and retention would never take it. Returns how many.
    pub fn end_unfinished(&self, now: SystemTime) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE rings SET ended_at_ms = ?1,
                 outcome = CASE outcome WHEN 'ringing' THEN 'missed' ELSE outcome END
             WHERE ended_at_ms IS NULL",
            params![millis(now)],
        )?)
    }

    /// The ring of `room`, if any.
    pub fn ring(&self, room: &str) -> Result<Option<RingEntry>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM rings WHERE room = ?1"),
                params![room],
                entry,
            )
            .optional()?)
    }

    /// Keeps the visitor's photo with the ring of `room` (replacing an earlier one).
    pub fn attach_snapshot(&self, room: &str, jpeg: &[u8]) -> Result<(), SnapshotError> {
        if jpeg.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge(jpeg.len()));
        }
        if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(SnapshotError::NotJpeg);
        }
        let changed = self
            .conn()
            .execute(
                "UPDATE rings SET snapshot = ?2 WHERE room = ?1",
                params![room, jpeg],
            )
            .map_err(StoreError::from)?;
        if changed == 0 {
            return Err(SnapshotError::NoRing);
        }
        Ok(())
    }

    /// Keeps the visitor's video message with the ring of `room` (replacing an earlier one)
    /// and returns the entry, `has_message` now set. The MP4 is checked
    /// and stored in one statement: a cut upload never reaches here, and nothing half-kept
    /// is ever served.
    pub fn attach_message(
        &self,
        room: &str,
        mp4: &[u8],
        duration: Duration,
    ) -> Result<RingEntry, MessageError> {
        if mp4.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge(mp4.len()));
        }
        if mp4.get(4..8) != Some(b"ftyp") {
            return Err(MessageError::NotMp4);
        }
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let changed = self
            .conn()
            .execute(
                "UPDATE rings SET message_mp4 = ?2, message_ms = ?3 WHERE room = ?1",
                params![room, mp4, ms],
            )
            .map_err(StoreError::from)?;
        if changed == 0 {
            return Err(MessageError::NoRing);
        }
        self.ring(room)?.ok_or(MessageError::NoRing)
    }

    /// The video message of ring `id`.
    pub fn message(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT message_mp4 FROM rings WHERE id = ?1",
                params![id],
                |row| row.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Up to `limit` rings older than ring `before` (all when `None`), newest first.
    pub fn rings(&self, limit: usize, before: Option<i64>) -> Result<Vec<RingEntry>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM rings WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit.min(MAX_PAGE)).unwrap_or(50);
        let rows = query.query_map(params![before.unwrap_or(i64::MAX), limit], entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The photo of ring `id`.
    pub fn snapshot(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT snapshot FROM rings WHERE id = ?1",
                params![id],
                |row| row.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    /// The photo of the ring in `room` (a push names its ring by the room).
    pub fn room_snapshot(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT snapshot FROM rings WHERE room = ?1",
                params![room],
                |row| row.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Applies `retention` at `now`: rings older than the age go, then the oldest until the
    /// history fits the size. A ring still ringing is never removed. Returns how many went.
    pub fn prune(&self, now: SystemTime, retention: Retention) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let oldest_kept = now.checked_sub(retention.max_age).map_or(0, millis);
        let mut removed = tx.execute(
            "DELETE FROM rings WHERE at_ms < ?1 AND outcome != 'ringing'",
            params![oldest_kept],
        )?;
        // Row size: the photo and the message plus a small fixed cost for the rest.
        let size_of = "COALESCE(LENGTH(snapshot), 0) + COALESCE(LENGTH(message_mp4), 0) + 200";
        let mut total: i64 = tx.query_row(
            &format!("SELECT COALESCE(SUM({size_of}), 0) FROM rings"),
            [],
            |r| r.get(0),
        )?;
        let budget = i64::try_from(retention.max_bytes).unwrap_or(i64::MAX);
        if total > budget {
            let mut oldest = tx.prepare(&format!(
                "SELECT id, {size_of} FROM rings WHERE outcome != 'ringing' ORDER BY id"
            ))?;
            let mut doomed = Vec::new();
            let mut rows = oldest.query([])?;
            while total > budget {
                let Some(row) = rows.next()? else { break };
                doomed.push(row.get::<_, i64>(0)?);
                total -= row.get::<_, i64>(1)?;
            }
            drop(rows);
            drop(oldest);
            for id in &doomed {
                tx.execute("DELETE FROM rings WHERE id = ?1", params![id])?;
            }
            removed += doomed.len();
        }
        tx.commit()?;
        if removed > 0 {
            tracing::info!(removed, "ring history: old entries removed (retention)");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0xFF, 0xD9];

    /// The rooms of the history, newest first.
    fn rooms(store: &Store) -> Vec<String> {
        store
            .rings(50, None)
            .unwrap()
            .into_iter()
            .map(|r| r.room)
            .collect()
    }

    #[test]
    fn a_ring_is_answered_once_and_its_call_has_a_length() {
        let store = Store::in_memory().unwrap();
        store.ring_started("room1", at(0)).unwrap();
        let answered = store
            .ring_answered("room1", Some("Anna"), at(5))
            .unwrap()
            .unwrap();
        assert_eq!(answered.outcome, Outcome::Answered);
        let second = store
            .ring_answered("room1", Some("Ben"), at(6))
            .unwrap()
            .unwrap();
        assert_eq!(
            second.answered_by.as_deref(),
            Some("Anna"),
            "the first answer counts"
        );
        let ended = store.ring_ended("room1", at(65)).unwrap().unwrap();
        assert_eq!(ended.outcome, Outcome::Answered);
        assert_eq!(ended.duration, Some(Duration::from_secs(60)));
    }

    #[test]
    fn an_unanswered_ring_is_missed() {
        let store = Store::in_memory().unwrap();
        store.ring_started("room2", at(0)).unwrap();
        let ended = store.ring_ended("room2", at(30)).unwrap().unwrap();
        assert_eq!(ended.outcome, Outcome::Missed);
        assert_eq!(ended.duration, None);
        assert_eq!(ended.answered_by, None);
    }

    #[test]
    fn the_history_pages_newest_first() {
        let store = Store::in_memory().unwrap();
        for n in 0..5 {
            store.ring_started(&format!("r{n}"), at(n)).unwrap();
        }
        let page = store.rings(2, None).unwrap();
        assert_eq!(
            page.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(),
            ["r4", "r3"]
        );
        let next = store.rings(10, Some(page[1].id)).unwrap();
        assert_eq!(
            next.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(),
            ["r2", "r1", "r0"]
        );
    }

    #[test]
    fn snapshots_are_bounded_jpegs_of_a_known_ring() {
        let store = Store::in_memory().unwrap();
        let id = store.ring_started("r", at(0)).unwrap();
        assert!(matches!(
            store.attach_snapshot("r", b"GIF89a"),
            Err(SnapshotError::NotJpeg)
        ));
        let huge = [JPEG, &vec![0; MAX_SNAPSHOT_BYTES]].concat();
        assert!(matches!(
            store.attach_snapshot("r", &huge),
            Err(SnapshotError::TooLarge(_))
        ));
        assert!(matches!(
            store.attach_snapshot("other", JPEG),
            Err(SnapshotError::NoRing)
        ));
        assert_eq!(store.snapshot(id).unwrap(), None, "nothing stored half-way");
        store.attach_snapshot("r", JPEG).unwrap();
        assert_eq!(store.snapshot(id).unwrap().as_deref(), Some(JPEG));
        assert!(store.rings(1, None).unwrap()[0].has_snapshot);
    }

    #[test]
    fn retention_drops_by_age_then_by_size_but_never_a_ringing_bell() {
        let store = Store::in_memory().unwrap();
        for n in 0..10 {
            let room = format!("r{n}");
            store.ring_started(&room, at(n * 86_400)).unwrap();
            store
                .attach_snapshot(&room, &[JPEG, &[0; 1000]].concat())
                .unwrap();
            if n < 9 {
                store.ring_ended(&room, at(n * 86_400 + 30)).unwrap();
            }
        }
        let week = Retention {
            max_age: Duration::from_secs(7 * 86_400),
            max_bytes: u64::MAX,
        };
        // Now = day 10: rings of days 0, 1 and 2 are older than a week.
        assert_eq!(store.prune(at(10 * 86_400), week).unwrap(), 3);
        let small = Retention {
            max_age: week.max_age,
            max_bytes: 3 * 1300,
        };
        store.prune(at(10 * 86_400), small).unwrap();
        assert_eq!(rooms(&store), ["r9", "r8", "r7"]);
        // However tight the budget, the ringing bell stays.
        let none = Retention {
            max_age: week.max_age,
            max_bytes: 0,
        };
        store.prune(at(10 * 86_400), none).unwrap();
        assert_eq!(rooms(&store), ["r9"]);
    }

    #[test]
    fn what_a_stopped_server_left_ringing_ends_as_missed_at_the_next_start() {
        let store = Store::in_memory().unwrap();
        store.ring_started("left", at(0)).unwrap();
        store.ring_started("talking", at(1)).unwrap();
        store.ring_answered("talking", Some("Anna"), at(2)).unwrap();
        store.ring_started("done", at(3)).unwrap();
        store.ring_ended("done", at(4)).unwrap();
        assert_eq!(store.end_unfinished(at(100)).unwrap(), 2);
        let left = store.ring("left").unwrap().unwrap();
        assert_eq!(left.outcome, Outcome::Missed);
        let talking = store.ring("talking").unwrap().unwrap();
        assert_eq!(talking.outcome, Outcome::Answered);
        assert_eq!(talking.duration, Some(Duration::from_secs(98)));
        assert_eq!(store.ring("done").unwrap().unwrap().duration, None);
    }
}

#[cfg(test)]
mod message_tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn mp4(len: usize) -> Vec<u8> {
        let mut bytes = vec![0, 0, 0, 24, b'f', b't', b'y', b'p'];
        bytes.resize(len, 7);
        bytes
    }

    #[test]
    fn a_message_joins_its_ring_and_counts_against_the_size_bound() {
        let store = Store::in_memory().unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        store.ring_started("room1", t0).unwrap();
        store.ring_ended("room1", t0).unwrap();
        let entry = store
            .attach_message("room1", &mp4(1000), Duration::from_millis(12_300))
            .unwrap();
        assert!(entry.has_message);
        assert_eq!(entry.message_duration, Some(Duration::from_millis(12_300)));
        assert_eq!(store.message(entry.id).unwrap(), Some(mp4(1000)));
        assert!(matches!(
            store.attach_message("nope", &mp4(100), Duration::ZERO),
            Err(MessageError::NoRing)
        ));
        assert!(matches!(
            store.attach_message("room1", b"<html>not a video</html>", Duration::ZERO),
            Err(MessageError::NotMp4)
        ));
        assert!(matches!(
            store.attach_message("room1", &mp4(MAX_MESSAGE_BYTES + 1), Duration::ZERO),
            Err(MessageError::TooLarge(_))
        ));
        // A refused upload left the kept message as it was.
        assert_eq!(store.message(entry.id).unwrap(), Some(mp4(1000)));
        // The message weighs in the history's size: a budget below it removes the ring.
        let removed = store
            .prune(
                t0,
                Retention {
                    max_age: Duration::from_secs(3600),
                    max_bytes: 900,
                },
            )
            .unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.message(entry.id).unwrap(), None);
    }
}
