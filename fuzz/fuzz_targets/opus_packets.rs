//! Opus packets from the network into the decoder of the agent's speaker path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // libfuzzer-sys aborts on every panic, caught or not. The agent catches a decoder panic
    // and replaces the decoder (doorbell-media's OpusDecoder), so a panic is no finding here;
    // memory errors, aborts, hangs and runaway allocation are.
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| doorbell_fuzz::opus_packets(data)
);
