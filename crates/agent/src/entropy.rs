//! The agent's randomness, from the operating system: room ids nobody can guess, and the
//! jitter that spreads reconnects.

use doorbell_protocol::RoomId;

/// A fresh 128-bit room id, or why the OS could not give one (never a guessable fallback).
pub fn random_room() -> Result<RoomId, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random generator failed: {e}"))?;
    Ok(RoomId::from_random_bytes(bytes))
}

/// A value in `[0, 1)`.
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}
