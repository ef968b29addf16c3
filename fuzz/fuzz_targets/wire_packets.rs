//! Engine.IO and Socket.IO text frames from an untrusted connection: decoding must answer Ok
//! or Err, never panic, and a decoded packet must encode to text that decodes to it again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_fuzz::wire_packets(data));
