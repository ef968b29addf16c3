//! The STUN/TURN servers handed to each room member for its call (`ice_servers`), with TURN
//! credentials in the TURN REST convention that coturn's `use-auth-secret` and our embedded
//! TURN server check: username `EXPIRY:LABEL` (unix seconds), credential
//! `base64(HMAC-SHA1(secret, username))`. Fresh for every member; the secret never leaves the
//! server, and a credential is worthless after its expiry.

use doorbell_protocol::turn_rest::rest_credential;
use doorbell_protocol::{IceServer, IceServers, IceTransportPolicy, Secret};
use std::time::{Duration, SystemTime};

/// Longer than the agent's longest call by default (10 minutes), with room for a ring.
pub const DEFAULT_TURN_TTL: Duration = Duration::from_secs(3600);

/// What the server hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceSettings {
    /// `stun:` URLs, given as they are.
    pub stun: Vec<String>,
    /// `turn:`/`turns:` URLs; with `turn_secret`, each member gets credentials for them.
    pub turn_urls: Vec<String>,
    pub turn_secret: Option<Secret>,
    pub turn_ttl: Duration,
    pub policy: IceTransportPolicy,
}

impl Default for IceSettings {
    fn default() -> Self {
        Self {
            stun: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl: DEFAULT_TURN_TTL,
            policy: IceTransportPolicy::All,
        }
    }
}

/// Who a credential is for, in its label (it shows in the TURN server's logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// The first member: the doorbell.
    Door,
    /// The second member: the owner's page.
    Owner,
}

impl IceSettings {
    /// The `ice_servers` payload for one member, at `now`. `nonce` makes the label unique per
    /// member (a few random bytes, hex).
    pub fn for_member(&self, member: Member, now: SystemTime, nonce: &str) -> IceServers {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn_urls.is_empty()
            && let Some(secret) = &self.turn_secret
        {
            let expiry = now
                .checked_add(self.turn_ttl)
                .unwrap_or(now)
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let role = match member {
                Member::Door => "door",
                Member::Owner => "owner",
            };
            let username = format!("{expiry}:{role}-{nonce}");
            let credential = rest_credential(secret.expose().as_bytes(), &username);
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        IceServers {
            servers,
            policy: self.policy,
            ttl_secs: self.turn_ttl.as_secs(),
        }
    }
}

/// A short random label part; a fixed one if the OS generator fails (the label only tells
/// credentials apart in logs, it protects nothing).
pub fn nonce() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return "00000000".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IceSettings {
        IceSettings {
            stun: vec!["stun:stun.example:3478".into()],
            turn_urls: vec![
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349?transport=tcp".into(),
            ],
            turn_secret: Some(Secret::new("S")),
            turn_ttl: Duration::from_secs(600),
            policy: IceTransportPolicy::Relay,
        }
    }

    #[test]
    fn each_member_gets_stun_and_turn_with_credentials_that_expire_after_the_ttl() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ice = settings().for_member(Member::Owner, now, "abc");
        assert_eq!(ice.policy, IceTransportPolicy::Relay);
        assert_eq!(ice.ttl_secs, 600);
        assert_eq!(ice.servers[0].urls, ["stun:stun.example:3478"]);
        assert_eq!(ice.servers[0].credential, None);
        let turn = &ice.servers[1];
        assert_eq!(turn.username.as_deref(), Some("1700000600:owner-abc"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(rest_credential(b"S", "1700000600:owner-abc").as_str())
        );
    }

    #[test]
    fn without_a_secret_no_turn_server_is_handed_out() {
        let ice = IceSettings {
            turn_secret: None,
            ..settings()
        }
        .for_member(Member::Door, SystemTime::now(), "abc");
        assert_eq!(
            ice.servers.len(),
            1,
            "stun only: TURN without credentials is useless"
        );
    }

    #[test]
    fn nothing_configured_is_an_empty_list() {
        let ice = IceSettings::default().for_member(Member::Door, SystemTime::now(), "x");
        assert!(ice.servers.is_empty());
        assert_eq!(ice.policy, IceTransportPolicy::All);
    }

    #[test]
    fn nonces_are_eight_hex_digits_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
