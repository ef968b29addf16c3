use crate::error::{ErrorCode, ProtocolError};
use crate::limits::MAX_ROOM_NAME_CHARS;
use std::fmt;

/// A validated room name: 1–64 characters of `[A-Za-z0-9_-]`.
///
/// Room ids made by the agent are secrets (whoever has one can answer the call), so `Debug`
/// and [`RoomId::redacted`] show only the first four characters; use [`RoomId::as_str`] where
/// the whole id is really needed (the link, the wire).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

impl RoomId {
    pub fn parse(name: &str) -> Result<Self, ProtocolError> {
        if name.is_empty() {
            return Err(ProtocolError::new(
                ErrorCode::BadRoomName,
                "room name is empty",
            ));
        }
        if name.len() > MAX_ROOM_NAME_CHARS {
            return Err(ProtocolError::new(
                ErrorCode::BadRoomName,
                format!("room name is longer than {MAX_ROOM_NAME_CHARS} characters"),
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ProtocolError::new(
                ErrorCode::BadRoomName,
                "room name may only hold letters, digits, '_' and '-'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// A fresh room id from 16 random bytes (128 bits), URL-safe base64 without padding
    /// (22 characters). The caller supplies the randomness (the OS generator) so this crate
    /// stays free of I/O.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits: u128 = u128::from_be_bytes(bytes);
        let mut out = String::with_capacity(22);
        // 22 six-bit digits cover 132 bits; the top 4 are always zero, which is fine.
        for _ in 0..22 {
            out.push(ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first four characters followed by `…`: enough to follow one room through a log,
    /// not enough to join it.
    pub fn redacted(&self) -> String {
        let head: String = self.0.chars().take(4).collect();
        format!("{head}…")
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.redacted())
    }
}

impl fmt::Display for RoomId {
    /// Displays the redacted form, so a room id dropped into a log line leaks nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(RoomId::parse("a").is_ok());
        assert!(RoomId::parse("Room_1-x").is_ok());
        assert!(RoomId::parse(&"z".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_bad_names_with_bad_room_name() {
        for bad in ["", "a b", "ä", "../x", "a/b", "x?y", &"z".repeat(65)] {
            let err = RoomId::parse(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::BadRoomName, "{bad:?}");
        }
    }

    #[test]
    fn random_ids_are_22_url_safe_chars_and_differ() {
        let a = RoomId::from_random_bytes([7; 16]);
        let b = RoomId::from_random_bytes([8; 16]);
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, b);
        assert!(RoomId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn display_and_debug_hide_all_but_four_chars() {
        let id = RoomId::parse("abcdefghijkl").unwrap();
        assert_eq!(id.to_string(), "abcd…");
        assert!(!format!("{id:?}").contains("efgh"));
    }
}
