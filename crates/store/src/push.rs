//! Web Push: each paired device's push subscriptions (what its browser's push service gave:
//! the endpoint URL and the keys that encrypt for it), and the server's own long-lived keys
//! (the VAPID key pair), made once and kept here so every start signs with the same key (a new
//! key would void every subscription).

use crate::db::{Store, StoreError, millis};
use rusqlite::{OptionalExtension, params};
use std::time::SystemTime;

/// Subscriptions kept per device: a browser re-subscribing gets a new endpoint; the oldest
/// beyond this are dropped.
pub const MAX_SUBSCRIPTIONS_PER_DEVICE: usize = 4;

/// Where and how to push to one browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The device's name (for the log).
    pub device: String,
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (uncompressed point).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
}

impl Store {
    /// Adds (or moves to `device_id`) the subscription at `endpoint`.
    pub fn subscribe_push(
        &self,
        device_id: i64,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (endpoint) DO UPDATE SET
                 device_id = excluded.device_id, p256dh = excluded.p256dh,
                 auth = excluded.auth, created_at_ms = excluded.created_at_ms",
            params![device_id, endpoint, p256dh, auth, millis(now)],
        )?;
        tx.execute(
            "DELETE FROM push_subscriptions WHERE device_id = ?1 AND id NOT IN (
                 SELECT id FROM push_subscriptions WHERE device_id = ?1
                 ORDER BY created_at_ms DESC, id DESC LIMIT ?2)",
            params![device_id, MAX_SUBSCRIPTIONS_PER_DEVICE as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes `device_id`'s subscription at `endpoint`; whether there was one.
    pub fn unsubscribe_push(&self, device_id: i64, endpoint: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM push_subscriptions WHERE device_id = ?1 AND endpoint = ?2",
            params![device_id, endpoint],
        )?;
        Ok(n > 0)
    }

    /// Forgets the subscription at `endpoint`, whoever's it was (its push service said it is
    /// gone: 404 or 410).
    pub fn forget_push_endpoint(&self, endpoint: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ?1",
            params![endpoint],
        )?;
        Ok(n > 0)
    }

    /// Every subscription of a device that is not revoked.
    pub fn push_targets(&self) -> Result<Vec<PushTarget>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT d.name, s.endpoint, s.p256dh, s.auth FROM push_subscriptions s
             JOIN devices d ON d.id = s.device_id
             WHERE d.revoked_at_ms IS NULL ORDER BY s.id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PushTarget {
                device: row.get(0)?,
                endpoint: row.get(1)?,
                p256dh: row.get(2)?,
                auth: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The server key `name`, made with `make` the first time and kept from then on.
    pub fn server_key<E: From<StoreError>>(
        &self,
        name: &str,
        make: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(StoreError::from)?;
        let found: Option<Vec<u8>> = tx
            .query_row(
                "SELECT value FROM server_keys WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        if let Some(value) = found {
            return Ok(value);
        }
        let value = make()?;
        tx.execute(
            "INSERT INTO server_keys (name, value) VALUES (?1, ?2)",
            params![name, value],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn paired(store: &Store, name: &str, now: SystemTime) -> i64 {
        let code = store.new_pairing(name, now).unwrap();
        store.pair(&code.code, None, now).unwrap().device.id
    }

    #[test]
    fn subscriptions_follow_their_device_and_revocation() {
        let store = Store::in_memory().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let anna = paired(&store, "Anna", t0);
        let ben = paired(&store, "Ben", t0);
        store
            .subscribe_push(anna, "https://push.test/a", "pa", "aa", t0)
            .unwrap();
        store
            .subscribe_push(ben, "https://push.test/b", "pb", "ab", t0)
            .unwrap();
        // The same endpoint again replaces its keys rather than adding a second entry.
        store
            .subscribe_push(anna, "https://push.test/a", "pa2", "aa2", t0)
            .unwrap();
        let targets = store.push_targets().unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(
            (targets[0].device.as_str(), targets[0].p256dh.as_str()),
            ("Anna", "pa2")
        );
        store.revoke("Ben", t0).unwrap();
        assert_eq!(
            store.push_targets().unwrap().len(),
            1,
            "a revoked device gets nothing"
        );
        assert!(store.forget_push_endpoint("https://push.test/a").unwrap());
        assert!(!store.unsubscribe_push(anna, "https://push.test/a").unwrap());
        assert!(store.push_targets().unwrap().is_empty());
    }

    #[test]
    fn a_device_keeps_its_newest_subscriptions_only() {
        let store = Store::in_memory().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let anna = paired(&store, "Anna", t0);
        for i in 0..MAX_SUBSCRIPTIONS_PER_DEVICE + 2 {
            let at = t0 + Duration::from_secs(i as u64);
            store
                .subscribe_push(anna, &format!("https://push.test/{i}"), "p", "a", at)
                .unwrap();
        }
        let endpoints: Vec<_> = store
            .push_targets()
            .unwrap()
            .into_iter()
            .map(|t| t.endpoint)
            .collect();
        assert_eq!(endpoints.len(), MAX_SUBSCRIPTIONS_PER_DEVICE);
        assert!(!endpoints.contains(&"https://push.test/0".to_owned()));
        assert!(endpoints.contains(&"https://push.test/5".to_owned()));
    }

    #[test]
    fn a_server_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::open(dir.path()).unwrap();
            store
                .server_key::<StoreError>("vapid", || Ok(vec![1, 2, 3]))
                .unwrap()
        };
        let store = Store::open(dir.path()).unwrap();
        let again = store
            .server_key::<StoreError>("vapid", || panic!("made again"))
            .unwrap();
        assert_eq!(first, again);
        // A failed making stores nothing.
        let failed =
            store.server_key::<StoreError>("other", || Err(StoreError::Random("no".into())));
        assert!(failed.is_err());
        assert_eq!(
            store
                .server_key::<StoreError>("other", || Ok(vec![9]))
                .unwrap(),
            [9]
        );
    }
}
