//! `doorbell audio-check`: the call path's microphone processing over recorded files, to check
//! a doorbell's echo cancellation offline (and for the tests). Reads the far end (what the
//! speaker played) and the microphone's recording, writes the processed microphone, and prints
//! one JSON line: `{"erle_db": …, "frames": …, "ms_per_frame": …}`.

use crate::audio_args::AudioArgs;
use clap::Args;
use doorbell_audio::check::{CONVERGENCE, check};
use doorbell_audio::wav_file::read_wav;
use doorbell_media::{AudioSink, WavSink};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct AudioCheckArgs {
    /// What the speaker played: 48 kHz mono 16-bit WAV.
    #[arg(long)]
    pub far: PathBuf,
    /// What the microphone recorded meanwhile: 48 kHz mono 16-bit WAV, as long as FAR.
    #[arg(long)]
    pub mic: PathBuf,
    /// Where the processed microphone goes (written whole or not at all).
    #[arg(long)]
    pub out: PathBuf,
    /// The devices' playback → capture delay in ms, if known (the echo canceller also finds
    /// it by itself).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u32,
    /// The stages, as in `[agent.audio]` (the config file's table applies too).
    #[command(flatten)]
    pub audio: AudioArgs,
}

/// Runs the check with `audio` (the `[agent.audio]` table laid under the flags).
pub fn run(args: &AudioCheckArgs, audio: &AudioArgs) -> Result<(), String> {
    let settings = audio.settings()?;
    let far = read_wav(&args.far).map_err(|e| e.to_string())?;
    let mic = read_wav(&args.mic).map_err(|e| e.to_string())?;
    let report = check(&far, &mic, &settings, args.delay_ms).map_err(|e| e.to_string())?;
    write_whole(&args.out, &report.out)?;
    let erle = match report.erle_db {
        Some(erle) => format!("{erle:.1}"),
        None => "null".to_owned(),
    };
    if report.erle_db.is_none() {
        eprintln!(
            "audio-check: the far end is silent after the first {} s; there is no echo to measure",
            CONVERGENCE.as_secs()
        );
    }
    println!(
        "{{\"erle_db\": {erle}, \"frames\": {}, \"ms_per_frame\": {:.4}}}",
        report.frames, report.ms_per_frame
    );
    Ok(())
}

/// Writes `samples` to a temporary file beside `path` and renames it into place, so a full
/// disk or a crash never leaves a half-written OUT.
fn write_whole(path: &Path, samples: &[i16]) -> Result<(), String> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = WavSink::create(&partial).and_then(|mut sink| {
        sink.write(samples)?;
        sink.finish()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("cannot write {}: {error}", path.display()));
    }
    std::fs::rename(&partial, path).map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot write {}: {error}", path.display())
    })
}
