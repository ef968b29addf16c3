//! Per-frame cost of the media pipeline (not a test; figures go to BENCHMARKS.md).
//!
//! `cargo run --release -p doorbell-media --example bench_encode`
//!
//! Video: test-pattern capture + H.264 encode at 320x240 and 640x480, 30 fps settings,
//! 1 Mbit/s, for the plain pattern and for the pattern with per-pixel noise (camera-like: every
//! macroblock changes). Audio: Opus encode and decode of one 20 ms block (440 Hz tone,
//! 32 kbit/s) for both encoder applications.

use std::time::{Duration, Instant};

use doorbell_media::{
    AudioSource, FRAME_SAMPLES, H264Encoder, MediaError, OpusApplication, OpusDecoder, OpusEncoder,
    TestPattern, Tone, VideoFormat, VideoFrame, VideoSource,
};

const VIDEO_BITRATE: u32 = 1_000_000;
const AUDIO_BITRATE: u32 = 32_000;
const WARM_UP_FRAMES: usize = 30;
const MEASURED_FRAMES: usize = 900;
const MEASURED_BLOCKS: usize = 3000;

struct Summary {
    mean: Duration,
    median: Duration,
    p95: Duration,
}

fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Summary {
        mean: total / samples.len().max(1) as u32,
        median: samples[samples.len() / 2],
        p95: samples[samples.len() * 95 / 100],
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Camera-like content: the pattern with fresh sensor-like noise on every pixel, so every
/// macroblock changes every frame (the static pattern is the encoder's best case).
fn add_noise(frame: &mut VideoFrame, state: &mut u64) {
    for luma in &mut frame.y[16 * frame.width as usize..] {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let noise = (*state >> 59) as i16 - 16;
        *luma = (i16::from(*luma) + noise).clamp(16, 235) as u8;
    }
}

fn bench_video(width: u32, height: u32, noisy: bool) -> Result<(), MediaError> {
    let format = VideoFormat {
        width,
        height,
        fps: 30,
    };
    let mut pattern = TestPattern::new(format)?;
    let mut encoder = H264Encoder::new(format, VIDEO_BITRATE)?;
    for _ in 0..WARM_UP_FRAMES {
        encoder.encode(&pattern.capture()?, false)?;
    }
    let mut capture_times = Vec::with_capacity(MEASURED_FRAMES);
    let mut encode_times = Vec::with_capacity(MEASURED_FRAMES);
    let mut bytes = 0;
    let mut noise_state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..MEASURED_FRAMES {
        let started = Instant::now();
        let mut frame = pattern.capture()?;
        let mut captured = Instant::now();
        let capture_time = captured - started;
        if noisy {
            add_noise(&mut frame, &mut noise_state);
            captured = Instant::now();
        }
        bytes += encoder.encode(&frame, false)?.len();
        encode_times.push(captured.elapsed());
        capture_times.push(capture_time);
    }
    let capture = summarize(capture_times.clone());
    let encode = summarize(encode_times.clone());
    let both = summarize(
        capture_times
            .iter()
            .zip(&encode_times)
            .map(|(a, b)| *a + *b)
            .collect(),
    );
    let seconds = MEASURED_FRAMES as f64 / 30.0;
    println!(
        "video {width}x{height}@30 1 Mbit/s {}: capture mean {:.3} ms | encode mean {:.3} ms, median {:.3}, p95 {:.3} | capture+encode mean {:.3} ms = {:.1} % of one core at 30 fps | output {:.0} kbit/s",
        if noisy {
            "noisy (camera-like)"
        } else {
            "test pattern"
        },
        millis(capture.mean),
        millis(encode.mean),
        millis(encode.median),
        millis(encode.p95),
        millis(both.mean),
        millis(both.mean) * 30.0 / 10.0,
        bytes as f64 * 8.0 / seconds / 1000.0,
    );
    Ok(())
}

fn bench_audio(application: OpusApplication) -> Result<(), MediaError> {
    let mut tone = Tone::new(440.0);
    let mut encoder = OpusEncoder::with_application(AUDIO_BITRATE, application)?;
    let mut decoder = OpusDecoder::new()?;
    let mut block = [0_i16; FRAME_SAMPLES];
    let mut encode_times = Vec::with_capacity(MEASURED_BLOCKS);
    let mut decode_times = Vec::with_capacity(MEASURED_BLOCKS);
    for _ in 0..MEASURED_BLOCKS {
        tone.read(&mut block)?;
        let started = Instant::now();
        let packet = encoder.encode(&block)?;
        let encoded = Instant::now();
        decoder.decode(&packet)?;
        decode_times.push(encoded.elapsed());
        encode_times.push(encoded - started);
    }
    let encode = summarize(encode_times);
    let decode = summarize(decode_times);
    println!(
        "audio Opus {application:?} 48 kHz mono 20 ms, 32 kbit/s: encode mean {:.1} us (median {:.1}, p95 {:.1}) | decode mean {:.1} us (median {:.1}, p95 {:.1}) | encode+decode = {:.2} % of one core",
        encode.mean.as_secs_f64() * 1e6,
        encode.median.as_secs_f64() * 1e6,
        encode.p95.as_secs_f64() * 1e6,
        decode.mean.as_secs_f64() * 1e6,
        decode.median.as_secs_f64() * 1e6,
        decode.p95.as_secs_f64() * 1e6,
        (encode.mean + decode.mean).as_secs_f64() / 0.020 * 100.0,
    );
    Ok(())
}

fn main() -> Result<(), MediaError> {
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for meaningful figures");
    }
    for noisy in [false, true] {
        bench_video(320, 240, noisy)?;
        bench_video(640, 480, noisy)?;
    }
    bench_audio(OpusApplication::Voice)?;
    bench_audio(OpusApplication::LowDelay)?;
    Ok(())
}
