//! Owners' devices: one-time pairing codes (`doorbell owners pair`), the long-lived device
//! cookie a confirmed pairing yields, listing and revoking.

use crate::db::{Store, StoreError, hash, millis, random_token, time_of};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// A pairing code is good for this long after it was made.
pub const PAIRING_VALIDITY: Duration = Duration::from_secs(10 * 60);
/// The longest device name.
pub const MAX_NAME_CHARS: usize = 64;

/// A new one-time code, to be shown once (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingCode {
    pub code: String,
    pub name: String,
    pub expires_at: SystemTime,
}

/// A paired device, as a request's cookie identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub name: String,
}

/// A device as `doorbell owners list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub paired_at: SystemTime,
    pub revoked_at: Option<SystemTime>,
}

/// A confirmed pairing: the device and its cookie (given to the browser once, never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub device: Device,
    pub cookie: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("this pairing code is unknown; ask for a new link (`doorbell owners pair`)")]
    Unknown,
    #[error("this pairing link was used already; ask for a new one (`doorbell owners pair`)")]
    Used,
    #[error(
        "this pairing link expired (they last 10 minutes); ask for a new one (`doorbell owners pair`)"
    )]
    Expired,
    #[error("a device named {0:?} is paired already; choose another name")]
    NameTaken(String),
    #[error("{0}")]
    BadName(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PairError {
    fn from(error: rusqlite::Error) -> Self {
        PairError::Store(StoreError::Sql(error))
    }
}

/// `name` trimmed, or why it cannot name a device: 1–64 characters, no control characters.
/// Anything else goes (quotes and SQL-looking text are only text: every query is
/// parameterised).
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a device needs a name, e.g. \"Anna's phone\"".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a device name has at most {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a device name cannot hold control characters".into());
    }
    Ok(name.to_owned())
}

impl Store {
    /// A one-time code for a device called `name`, valid for [`PAIRING_VALIDITY`].
    pub fn new_pairing(&self, name: &str, now: SystemTime) -> Result<PairingCode, PairError> {
        let name = check_name(name).map_err(PairError::BadName)?;
        let code = random_token()?;
        let expires_at = now + PAIRING_VALIDITY;
        self.conn().execute(
            "INSERT INTO pairing_codes (code_hash, name, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![hash(&code), name, millis(expires_at)],
        )?;
        Ok(PairingCode {
            code,
            name,
            expires_at,
        })
    }

    /// Uses `code` (once) to pair a device named `device_name` (the code's name when empty).
    /// Nothing is stored unless everything succeeds.
    pub fn pair(
        &self,
        code: &str,
        device_name: Option<&str>,
        now: SystemTime,
    ) -> Result<Paired, PairError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let found: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT name, expires_at_ms, used_at_ms FROM pairing_codes WHERE code_hash = ?1",
                params![hash(code)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((code_name, expires_at, used_at)) = found else {
            return Err(PairError::Unknown);
        };
        if used_at.is_some() {
            return Err(PairError::Used);
        }
        if millis(now) >= expires_at {
            return Err(PairError::Expired);
        }
        let name = match device_name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => check_name(name).map_err(PairError::BadName)?,
            None => code_name,
        };
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE name = ?1 AND revoked_at_ms IS NULL)",
            params![name],
            |row| row.get(0),
        )?;
        if taken {
            return Err(PairError::NameTaken(name));
        }
        // A revoked device's name may be paired again: the old row makes way.
        tx.execute(
            "DELETE FROM devices WHERE name = ?1 AND revoked_at_ms IS NOT NULL",
            params![name],
        )?;
        let cookie = random_token()? + &random_token()?;
        tx.execute(
            "INSERT INTO devices (name, cookie_hash, paired_at_ms) VALUES (?1, ?2, ?3)",
            params![name, hash(&cookie), millis(now)],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE pairing_codes SET used_at_ms = ?1 WHERE code_hash = ?2",
            params![millis(now), hash(code)],
        )?;
        tx.commit()?;
        Ok(Paired {
            device: Device { id, name },
            cookie,
        })
    }

    /// The device a cookie belongs to, unless it was revoked.
    pub fn device_for_cookie(&self, cookie: &str) -> Result<Option<Device>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name FROM devices WHERE cookie_hash = ?1 AND revoked_at_ms IS NULL",
                params![hash(cookie)],
                |row| {
                    Ok(Device {
                        id: row.get(0)?,
                        name: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// The ids of every device still paired (one query for all open sockets, checked on a
    /// schedule).
    pub fn active_device_ids(&self) -> Result<HashSet<i64>, StoreError> {
        let conn = self.conn();
        let mut query =
            conn.prepare_cached("SELECT id FROM devices WHERE revoked_at_ms IS NULL")?;
        let ids = query.query_map([], |row| row.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Every device, paired first first.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare(
            "SELECT name, paired_at_ms, revoked_at_ms FROM devices ORDER BY paired_at_ms, id",
        )?;
        let rows = query.query_map([], |row| {
            Ok(DeviceInfo {
                name: row.get(0)?,
                paired_at: time_of(row.get(1)?),
                revoked_at: row.get::<_, Option<i64>>(2)?.map(time_of),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes the device called `name`; false when no such paired device.
    pub fn revoke(&self, name: &str, now: SystemTime) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE devices SET revoked_at_ms = ?1 WHERE name = ?2 AND revoked_at_ms IS NULL",
            params![millis(now), name.trim()],
        )?;
        Ok(changed > 0)
    }

    /// Forgets pairing codes that expired before `now` (they are useless, and tidy).
    pub fn forget_expired_codes(&self, now: SystemTime) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM pairing_codes WHERE expires_at_ms < ?1",
            params![millis(now)],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_code_pairs_once_and_its_cookie_identifies_the_device() {
        let store = Store::in_memory().unwrap();
        let code = store.new_pairing("Anna's phone", at(0)).unwrap();
        assert_eq!(code.code.len(), 22, "128 bits");
        let paired = store.pair(&code.code, None, at(60)).unwrap();
        assert_eq!(paired.device.name, "Anna's phone");
        assert_eq!(
            store.device_for_cookie(&paired.cookie).unwrap(),
            Some(paired.device.clone())
        );
        assert!(matches!(
            store.pair(&code.code, None, at(61)),
            Err(PairError::Used)
        ));
        assert_eq!(store.device_for_cookie("forged-cookie").unwrap(), None);
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let store = Store::in_memory().unwrap();
        let code = store.new_pairing("tablet", at(0)).unwrap();
        assert!(matches!(
            store.pair(&code.code, None, at(600)),
            Err(PairError::Expired)
        ));
        let fresh = store.new_pairing("tablet", at(0)).unwrap();
        assert!(store.pair(&fresh.code, None, at(599)).is_ok());
        assert!(matches!(
            store.pair("nope", None, at(1)),
            Err(PairError::Unknown)
        ));
    }

    #[test]
    fn revoking_ends_the_cookie_and_frees_the_name() {
        let store = Store::in_memory().unwrap();
        let first = store.new_pairing("hall", at(0)).unwrap();
        let paired = store.pair(&first.code, None, at(1)).unwrap();
        let second = store.new_pairing("hall", at(2)).unwrap();
        assert!(matches!(
            store.pair(&second.code, None, at(3)),
            Err(PairError::NameTaken(_))
        ));
        assert!(store.revoke("hall", at(4)).unwrap());
        assert!(!store.revoke("hall", at(5)).unwrap(), "already revoked");
        assert_eq!(store.device_for_cookie(&paired.cookie).unwrap(), None);
        assert!(
            !store
                .active_device_ids()
                .unwrap()
                .contains(&paired.device.id)
        );
        assert!(
            store.pair(&second.code, None, at(6)).is_ok(),
            "the name is free again"
        );
        assert_eq!(store.devices().unwrap().len(), 1);
    }

    #[test]
    fn names_are_checked_and_sql_looking_ones_are_just_names() {
        let store = Store::in_memory().unwrap();
        for bad in ["", "   ", "tab\there", &"x".repeat(65)] {
            assert!(
                matches!(store.new_pairing(bad, at(0)), Err(PairError::BadName(_))),
                "{bad:?}"
            );
        }
        let odd = "Robert'); DROP TABLE devices;--";
        let code = store.new_pairing(odd, at(0)).unwrap();
        let paired = store.pair(&code.code, None, at(1)).unwrap();
        assert_eq!(paired.device.name, odd);
        assert_eq!(store.devices().unwrap()[0].name, odd);
    }

    #[test]
    fn a_failed_pairing_stores_nothing() {
        let store = Store::in_memory().unwrap();
        let code = store.new_pairing("door", at(0)).unwrap();
        assert!(matches!(
            store.pair(&code.code, Some("bad\u{7}name"), at(1)),
            Err(PairError::BadName(_))
        ));
        assert!(store.devices().unwrap().is_empty());
        assert!(
            store.pair(&code.code, None, at(2)).is_ok(),
            "the code was not used up"
        );
    }
}
