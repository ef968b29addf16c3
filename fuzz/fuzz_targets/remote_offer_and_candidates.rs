//! What the agent does with a browser's offer and trickled candidates, minus the I/O: the
//! protocol's validation (`SessionDescription::from_json`, `IceCandidate::from_json`), then
//! the sans-I/O WebRTC core the agent's `CallPeer` hands them to (parse the SDP, apply it as
//! the remote offer, build an answer, add each candidate). Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| doorbell_fuzz::remote_offer_and_candidates(data));
