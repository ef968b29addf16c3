//! Signaling events as a hostile peer sends them: an event name, a JSON payload, and the room
//! ids inside. Parsing must answer Ok or Err, never panic, and what it accepts must survive a
//! round trip through its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_fuzz::protocol_events(data));
