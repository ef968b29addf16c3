//! TURN REST credentials, checked: username `EXPIRY:LABEL` (unix seconds), password
//! `base64(HMAC-SHA1(secret, username))`, as the signaling server makes them
//! (`doorbell_protocol::turn_rest`). An expired or malformed username is refused before any
//! key is computed; a wrong password fails the message integrity check in the crate (it
//! compares the key's HMAC). A username with its allocation cap reached is refused a new
//! client address.

use doorbell_protocol::Secret;
use doorbell_protocol::turn_rest::{rest_credential, rest_expiry};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;
use turn::auth::{AuthHandler, generate_auth_key};

/// Why a username is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `EXPIRY:LABEL` with a number for EXPIRY.
    Malformed,
    Expired,
    /// The username already holds this many allocations from other client addresses.
    TooManyAllocations(usize),
}

/// The check before a key is handed to the crate: the username's expiry against `now`.
pub fn check_username(username: &str, now: SystemTime) -> Result<(), Refusal> {
    let expiry = rest_expiry(username).ok_or(Refusal::Malformed)?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    if expiry < now {
        return Err(Refusal::Expired);
    }
    Ok(())
}

pub struct RestAuth {
    secret: Secret,
    realm: String,
    per_user_cap: usize,
    clock: fn() -> SystemTime,
    /// Client addresses each username is using (one allocation each).
    clients: Mutex<HashMap<String, HashSet<SocketAddr>>>,
}

impl RestAuth {
    pub fn new(
        secret: Secret,
        realm: String,
        per_user_cap: usize,
        clock: fn() -> SystemTime,
    ) -> Self {
        Self {
            secret,
            realm,
            per_user_cap,
            clock,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// An allocation of `username` from `src` has ended.
    pub fn released(&self, username: &str, src: SocketAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = clients.get_mut(username) {
            set.remove(&src);
            if set.is_empty() {
                clients.remove(username);
            }
        }
    }

    /// The key for `username` from `src`, or why not.
    pub fn key_for(&self, username: &str, src: SocketAddr) -> Result<Vec<u8>, Refusal> {
        let now = (self.clock)();
        check_username(username, now)?;
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop what expired credentials left behind (their allocations cannot refresh).
        clients.retain(|user, _| check_username(user, now).is_ok());
        let set = clients.entry(username.to_owned()).or_default();
        if !set.contains(&src) {
            if set.len() >= self.per_user_cap {
                return Err(Refusal::TooManyAllocations(set.len()));
            }
            set.insert(src);
        }
        let password = rest_credential(self.secret.expose().as_bytes(), username);
        Ok(generate_auth_key(username, &self.realm, &password))
    }
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        _realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.key_for(username, src_addr).map_err(|refusal| {
            tracing::info!(%src_addr, ?refusal, "TURN request refused");
            turn::Error::Other(format!("{refusal:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expired_and_malformed_usernames_are_refused() {
        assert_eq!(check_username("2000:door-ab", at(1000)), Ok(()));
        assert_eq!(
            check_username("999:door-ab", at(1000)),
            Err(Refusal::Expired)
        );
        for bad in ["door-ab", "12a:door", ":x", "", "1000"] {
            assert_eq!(
                check_username(bad, at(1000)),
                Err(Refusal::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_key_is_made_from_the_rest_password_and_each_user_has_a_cap() {
        fn clock() -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1000)
        }
        let auth = RestAuth::new(Secret::new("S"), "R".into(), 2, clock);
        let user = "2000:owner-1";
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let key = auth.key_for(user, a).unwrap();
        let password = rest_credential(b"S", user);
        assert_eq!(key, generate_auth_key(user, "R", &password));
        // The same client again (a refresh, a permission) is not a new allocation.
        auth.key_for(user, a).unwrap();
        auth.key_for(user, "192.0.2.1:1001".parse().unwrap())
            .unwrap();
        assert_eq!(
            auth.key_for(user, "192.0.2.1:1002".parse().unwrap()),
            Err(Refusal::TooManyAllocations(2))
        );
        auth.released(user, a);
        auth.key_for(user, "192.0.2.1:1002".parse().unwrap())
            .unwrap();
        assert_eq!(auth.key_for("999:owner-1", a), Err(Refusal::Expired));
    }
}
