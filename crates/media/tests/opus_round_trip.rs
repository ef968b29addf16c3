//! Tone/silence → Opus (opus-rs) → decode: frequency, level and silence survive; bad packets
//! are errors, not panics.

use doorbell_media::{
    AudioSource, FRAME_SAMPLES, MediaError, OpusApplication, OpusDecoder, OpusEncoder, SAMPLE_RATE,
    Silence, Tone, rms_dbfs,
};

const BITRATE: u32 = 32_000;

/// Encodes `blocks` 20 ms blocks of `source`, decodes them, returns the PCM and the packets.
fn round_trip(
    source: &mut impl AudioSource,
    application: OpusApplication,
    blocks: usize,
) -> (Vec<i16>, Vec<Vec<u8>>) {
    let mut encoder = OpusEncoder::with_application(BITRATE, application).unwrap();
    let mut decoder = OpusDecoder::new().unwrap();
    let mut block = [0_i16; FRAME_SAMPLES];
    let mut pcm = Vec::new();
    let mut packets = Vec::new();
    for _ in 0..blocks {
        source.read(&mut block).unwrap();
        let packet = encoder.encode(&block).unwrap();
        let decoded = decoder.decode(&packet).unwrap();
        assert_eq!(decoded.len(), FRAME_SAMPLES);
        pcm.extend_from_slice(&decoded);
        packets.push(packet);
    }
    (pcm, packets)
}

/// Upward zero crossings per second: the dominant frequency of a clean tone.
fn frequency_by_zero_crossings(pcm: &[i16]) -> f32 {
    let crossings = pcm.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    crossings as f32 * SAMPLE_RATE as f32 / pcm.len() as f32
}

#[test]
fn tones_decode_non_silent_at_their_frequency() {
    for (frequency, application) in [
        (440.0_f32, OpusApplication::Voice),
        (1000.0, OpusApplication::Voice),
        (440.0, OpusApplication::LowDelay),
        (1000.0, OpusApplication::LowDelay),
    ] {
        let (pcm, packets) = round_trip(&mut Tone::new(frequency), application, 50);
        // Skip the first 100 ms: the codec's start-up delay and ramp.
        let steady = &pcm[5 * FRAME_SAMPLES..];
        let level = rms_dbfs(steady);
        assert!(
            level > -20.0 && level < -12.0,
            "{frequency} Hz at {level} dBFS"
        );
        let measured = frequency_by_zero_crossings(steady);
        assert!(
            (measured - frequency).abs() < frequency * 0.02,
            "{application:?} {frequency} Hz decoded as {measured} Hz"
        );
        let bytes: usize = packets.iter().map(Vec::len).sum();
        // 50 packets = 1 s; VBR may overshoot its target a little, never by 2x.
        assert!(
            bytes * 8 < 2 * BITRATE as usize,
            "{bytes} bytes in one second"
        );
        assert!(packets.iter().all(|p| !p.is_empty() && p.len() <= 1276));
    }
}

#[test]
fn silence_decodes_to_silence() {
    for application in [OpusApplication::Voice, OpusApplication::LowDelay] {
        let (pcm, _) = round_trip(&mut Silence, application, 25);
        let level = rms_dbfs(&pcm);
        assert!(
            level < -70.0,
            "{application:?}: silence decoded at {level} dBFS"
        );
    }
}

#[test]
fn lost_packets_are_concealed_and_garbage_is_an_error_not_a_panic() {
    let mut encoder = OpusEncoder::new(BITRATE).unwrap();
    let mut decoder = OpusDecoder::new().unwrap();
    let mut tone = Tone::new(440.0);
    let mut block = [0_i16; FRAME_SAMPLES];
    for _ in 0..5 {
        tone.read(&mut block).unwrap();
        decoder.decode(&encoder.encode(&block).unwrap()).unwrap();
    }
    assert_eq!(decoder.decode(&[]).unwrap().len(), FRAME_SAMPLES);

    // Deterministic pseudo-random packets (xorshift), all sizes up to the maximum.
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for length in (1..1400).step_by(7) {
        let packet: Vec<u8> = (0..length).map(|_| next() as u8).collect();
        match decoder.decode(&packet) {
            Ok(pcm) => assert!(pcm.len() <= 5760),
            Err(error) => assert!(matches!(error, MediaError::Opus { .. })),
        }
    }
    // Still decodes real packets afterwards.
    tone.read(&mut block).unwrap();
    let pcm = decoder.decode(&encoder.encode(&block).unwrap()).unwrap();
    assert_eq!(pcm.len(), FRAME_SAMPLES);
}

#[test]
fn bitrate_out_of_range_is_an_error() {
    for bitrate in [0, 5_999, 256_001] {
        assert!(matches!(
            OpusEncoder::new(bitrate),
            Err(MediaError::OutOfRange { .. })
        ));
    }
}

#[test]
fn calls_use_celt_alone_from_24_kbit_s() {
    assert_eq!(
        OpusApplication::for_bitrate(32_000),
        OpusApplication::LowDelay
    );
    assert_eq!(
        OpusApplication::for_bitrate(24_000),
        OpusApplication::LowDelay
    );
    assert_eq!(OpusApplication::for_bitrate(16_000), OpusApplication::Voice);
}
