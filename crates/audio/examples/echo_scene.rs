//! Writes a far end and the microphone hearing it through a simulated housing, as WAV files
//! for `doorbell audio-check` (the benchmark in BENCHMARKS.md uses them):
//!
//!     cargo run --release -p doorbell-audio --example echo_scene -- DIR [SECONDS] [DELAY_MS]

use doorbell_audio::echo_room::{Noise, Room};
use doorbell_audio::speech::speech_like;
use doorbell_media::{AudioSink, WavSink};
use std::path::PathBuf;
use std::time::Duration;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: echo_scene DIR [SECONDS] [DELAY_MS]")?,
    );
    let seconds: f32 = args
        .next()
        .map_or(Ok(20.0), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let delay: u64 = args
        .next()
        .map_or(Ok(60), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let far = speech_like(seconds, 130.0, 1);
    let mut room = Room::new(Duration::from_millis(delay), 0.6, 2);
    let mut noise = Noise::new(3);
    let mic: Vec<i16> = room
        .echo(&far)
        .iter()
        .map(|echo| {
            (echo + noise.next_f32() * 40.0)
                .round()
                .clamp(-32_768.0, 32_767.0) as i16
        })
        .collect();
    for (name, samples) in [("far.wav", &far), ("mic.wav", &mic)] {
        let mut sink = WavSink::create(&dir.join(name)).map_err(|e| e.to_string())?;
        sink.write(samples).map_err(|e| e.to_string())?;
        sink.finish().map_err(|e| e.to_string())?;
    }
    println!(
        "wrote {} and {}",
        dir.join("far.wav").display(),
        dir.join("mic.wav").display()
    );
    Ok(())
}
