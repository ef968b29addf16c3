//! A secret string (the doorbell token, a bot token, an SMTP password, an HMAC key): never
//! printed (`Debug` and `Display` show `<redacted>`), compared in constant time.

use std::fmt;
use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Constant-time comparison, so response timing tells an attacker nothing about how much
    /// of a guessed token was right. (The length may leak; tokens are long and random.)
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The value itself, for the one place that must send it (a client's auth payload).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Characters, for strength checks (never the value).
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
    }

    #[test]
    fn matches_only_the_same_value() {
        let s = Secret::new("token-123");
        assert!(s.matches("token-123"));
        assert!(!s.matches("token-124"));
        assert!(!s.matches("token-12"));
        assert!(!s.matches(""));
    }
}
