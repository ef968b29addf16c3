//! TURN REST credentials (the convention coturn's `use-auth-secret` implements): username
//! `EXPIRY:LABEL` with EXPIRY in unix seconds, password `base64(HMAC-SHA1(secret, username))`.
//! The signaling server makes them; a TURN server (coturn, or the embedded one) checks them
//! with the same secret.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// `base64(HMAC-SHA1(secret, username))`, the password for `username`.
pub fn rest_credential(secret: &[u8], username: &str) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The expiry (unix seconds) of a REST username `EXPIRY:LABEL`; `None` if it is not one.
pub fn rest_expiry(username: &str) -> Option<u64> {
    let (expiry, _label) = username.split_once(':')?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    expiry.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_the_hmac_sha1_coturn_expects() {
        // Computed independently: printf %s '1700000000:door-abc' |
        //   openssl dgst -sha1 -hmac S -binary | base64
        assert_eq!(
            rest_credential(b"S", "1700000000:door-abc"),
            "w+h4hnrRVhiqDq01MQeKylTjf/w="
        );
    }

    #[test]
    fn the_expiry_is_read_from_a_rest_username_only() {
        assert_eq!(rest_expiry("1700000000:door-ab"), Some(1_700_000_000));
        for not_rest in ["door", "-1:x", ":x", "12a:x", "99999999999999999999999:x"] {
            assert_eq!(rest_expiry(not_rest), None, "{not_rest}");
        }
    }
}
