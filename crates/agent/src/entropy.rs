//! The agent's randomness, from the operating system: room ids nobody can guess, and the
//! jitter that spreads reconnects.

use doorbell_protocol::RoomId;
use std::time::SystemTime;

/// A fresh 128-bit room id.
pub fn random_room() -> RoomId {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // The OS generator failing is not something to ring on with a guessable id.
        tracing::error!("OS random generator failed: {e}; using time-derived room id");
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    RoomId::from_random_bytes(bytes)
}

/// A value in `[0, 1)`.
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}
