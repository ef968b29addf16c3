//! Per-frame cost of the Pi camera path (not a test; figures go to BENCHMARKS.md "Raspberry Pi"):
//! camera frame → I420 (YUYV repack, or MJPEG decode) → H.264 encode, at 320x240 and 640x480,
//! 30 fps settings, 1 Mbit/s.
//!
//! Here: `cargo run --release -p doorbell-media --example pi_camera_bench`
//! aarch64 under qemu-user (see docs/raspberry-pi.md):
//!   `cargo build --release --target aarch64-unknown-linux-gnu -p doorbell-media --example pi_camera_bench`
//!   `qemu-aarch64 -L /usr/aarch64-linux-gnu target/aarch64-unknown-linux-gnu/release/examples/pi_camera_bench`
//!
//! The camera frames are made from the test pattern with sensor-like noise (every macroblock
//! changes, as with a real camera), packed as a webcam sends them: YUYV 4:2:2 and a 4:2:2 JPEG.

use doorbell_media::{
    H264Encoder, MediaError, TestPattern, VideoFormat, VideoFrame, VideoSource, mjpeg_to_i420,
    yuyv_to_i420,
};
use std::time::{Duration, Instant};

const FRAMES: usize = 300;
const WARM_UP: usize = 20;

fn noisy_pattern(format: VideoFormat, count: usize) -> Result<Vec<VideoFrame>, MediaError> {
    let mut pattern = TestPattern::new(format)?;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..count)
        .map(|_| {
            let mut frame = pattern.capture()?;
            for luma in &mut frame.y {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 59) as i16 - 16;
                *luma = (i16::from(*luma) + noise).clamp(16, 235) as u8;
            }
            Ok(frame)
        })
        .collect()
}

/// I420 → YUYV (each chroma row used for two lines).
fn to_yuyv(frame: &VideoFrame) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut out = Vec::with_capacity(w * h * 2);
    for row in 0..h {
        for pair in 0..w / 2 {
            let c = (row / 2) * (w / 2) + pair;
            out.extend_from_slice(&[
                frame.y[row * w + 2 * pair],
                frame.u[c],
                frame.y[row * w + 2 * pair + 1],
                frame.v[c],
            ]);
        }
    }
    out
}

/// I420 (limited range) → a 4:2:2 JFIF JPEG at quality 80, as webcams send.
fn to_mjpeg(frame: &VideoFrame) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut ycc = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let c = (row / 2) * (w / 2) + col / 2;
            let full = |v: u8, lo: f32, range: f32| {
                ((f32::from(v) - lo) * 255.0 / range).clamp(0.0, 255.0) as u8
            };
            ycc.push(full(frame.y[row * w + col], 16.0, 219.0));
            ycc.push((128.0 + (f32::from(frame.u[c]) - 128.0) * 255.0 / 224.0) as u8);
            ycc.push((128.0 + (f32::from(frame.v[c]) - 128.0) * 255.0 / 224.0) as u8);
        }
    }
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_2);
    if let Err(e) = encoder.encode(&ycc, w as u16, h as u16, jpeg_encoder::ColorType::Ycbcr) {
        eprintln!("JPEG encoding failed: {e}");
    }
    jpeg
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(width: u32, height: u32) -> Result<(), MediaError> {
    let format = VideoFormat {
        width,
        height,
        fps: 30,
    };
    let frames = noisy_pattern(format, 30)?;
    let yuyv: Vec<Vec<u8>> = frames.iter().map(to_yuyv).collect();
    let mjpeg: Vec<Vec<u8>> = frames.iter().map(to_mjpeg).collect();
    for (name, is_mjpeg) in [("YUYV", false), ("MJPEG", true)] {
        let mut encoder = H264Encoder::new(format, 1_000_000)?;
        let mut convert_times = Vec::with_capacity(FRAMES);
        let mut encode_times = Vec::with_capacity(FRAMES);
        for i in 0..FRAMES + WARM_UP {
            let mut frame =
                VideoFrame::black(width, height, i as u64, std::time::SystemTime::now())?;
            let started = Instant::now();
            if is_mjpeg {
                mjpeg_to_i420(&mjpeg[i % mjpeg.len()], &mut frame)?;
            } else {
                yuyv_to_i420(&yuyv[i % yuyv.len()], width as usize * 2, &mut frame)?;
            }
            let converted = Instant::now();
            encoder.encode(&frame, false)?;
            let encoded = Instant::now();
            if i >= WARM_UP {
                convert_times.push(converted - started);
                encode_times.push(encoded - converted);
            }
        }
        let total: Vec<Duration> = convert_times
            .iter()
            .zip(&encode_times)
            .map(|(a, b)| *a + *b)
            .collect();
        println!(
            "{width}x{height} {name:<5}: convert {:.2} ms + H.264 {:.2} ms = {:.2} ms/frame (median of {FRAMES}); {:.0}% of a core at 30 fps",
            ms(median(convert_times)),
            ms(median(encode_times)),
            ms(median(total.clone())),
            ms(median(total)) * 30.0 / 10.0
        );
    }
    Ok(())
}

fn main() -> Result<(), MediaError> {
    println!(
        "pi_camera_bench on {} ({} build)",
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    bench(320, 240)?;
    bench(640, 480)?;
    Ok(())
}
