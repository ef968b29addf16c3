//! The SQLite file, its schema and its migrations.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The file's name in the data dir.
pub const FILE_NAME: &str = "doorbell.sqlite3";

/// Each entry moves the schema one version up (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: owners and rings.
    "CREATE TABLE devices (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         cookie_hash BLOB NOT NULL UNIQUE,
         paired_at_ms INTEGER NOT NULL,
         revoked_at_ms INTEGER
     );
     CREATE TABLE pairing_codes (
         code_hash BLOB PRIMARY KEY,
         name TEXT NOT NULL,
         expires_at_ms INTEGER NOT NULL,
         used_at_ms INTEGER
     );
     CREATE TABLE rings (
         id INTEGER PRIMARY KEY,
         room TEXT NOT NULL UNIQUE,
         at_ms INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         answered_by TEXT,
         answered_at_ms INTEGER,
         ended_at_ms INTEGER,
         snapshot BLOB,
         message TEXT
     );
     CREATE INDEX rings_at ON rings (at_ms);",
    // 2: Web Push subscriptions and the server's own keys (VAPID).
    "CREATE TABLE push_subscriptions (
         id INTEGER PRIMARY KEY,
         device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
         endpoint TEXT NOT NULL UNIQUE,
         p256dh TEXT NOT NULL,
         auth TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL
     );
     CREATE TABLE server_keys (
         name TEXT PRIMARY KEY,
         value BLOB NOT NULL
     );",
    // 3: video messages of unanswered rings, with their length.
    "ALTER TABLE rings ADD COLUMN message_mp4 BLOB;
     ALTER TABLE rings ADD COLUMN message_ms INTEGER;",
    // 4: the owners' quick replies, and which one answered a ring.
    "CREATE TABLE replies (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         wav BLOB NOT NULL,
         duration_ms INTEGER NOT NULL,
         created_at_ms INTEGER NOT NULL
     );
     ALTER TABLE rings ADD COLUMN replied TEXT;",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database {path} cannot be opened: {source}; check the data dir and its permissions"
    )]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "the database is newer (schema {found}) than this doorbell (schema {known}); upgrade the doorbell"
    )]
    TooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// The server's records. Cheap to share (`Arc<Store>`); one connection, used under a lock.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (or creates) `data_dir/doorbell.sqlite3` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(FILE_NAME);
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_error)?;
        // WAL: `doorbell owners …` writes while the server reads; a writer waits up to 5 s
        // for the other instead of failing.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        Store::with(conn)
    }

    /// A store that lives in memory (tests, benchmarks).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::with(Connection::open_in_memory()?)
    }

    fn with(conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            // Each step and its version number land together or not at all.
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Milliseconds since 1970 (times before count as 0).
pub(crate) fn millis(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn time_of(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// 128 bits of OS randomness, base64url (22 characters).
pub(crate) fn random_token() -> Result<String, StoreError> {
    use base64::Engine;
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn hash(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_doorbell_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let error = Store::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("newer") && error.contains("99"), "{error}");
    }

    #[test]
    fn reopening_keeps_what_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path())
            .unwrap()
            .new_pairing("kitchen", std::time::SystemTime::now())
            .unwrap();
        let again = Store::open(dir.path()).unwrap();
        let count: i64 = again
            .conn()
            .query_row("SELECT COUNT(*) FROM pairing_codes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }

    #[test]
    fn tokens_are_128_bits_and_differ() {
        let a = random_token().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, random_token().unwrap());
    }
}
