//! The visitor's video message when nobody answers: the prompt on the speaker, a tone, then
//! camera and microphone into an MP4 (H.264 + Opus, muxed by `muxide`, moov first so a browser
//! plays it while it loads). The streams are encoded once, by the encoders a call uses, and
//! muxed as they are: nothing is decoded or encoded twice on the Pi.
//!
//! The file is written as `ROOM.mp4.part` and renamed to `ROOM.mp4` only when complete, so a
//! crash, a full disk or a cut power never leaves a half file that looks whole. Blocking: run
//! it off the async threads.

use crate::media_settings::MediaSettings;
use doorbell_media::{
    AudioSink, AudioSource, FRAME_SAMPLES, H264Encoder, OpusEncoder, Resampler, SAMPLE_RATE, Tone,
    VideoSource, is_keyframe, rms_dbfs,
};
use muxide::api::{AudioCodec, MuxerBuilder, VideoCodec};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The prompt shipped in the binary: "Nobody can come to the door right now. Please leave a
/// message after the tone." (espeak-ng, 16 kHz mono 16-bit WAV, 5.2 s).
const DEFAULT_PROMPT: &[u8] = include_bytes!("../assets/message_prompt.wav");
/// The tone after the prompt.
const TONE_HZ: f32 = 880.0;
const TONE_LENGTH: Duration = Duration::from_millis(400);
/// A message is a visitor talking: below this the microphone hears nobody.
const SILENCE_DBFS: f32 = -45.0;
/// Silence this long (after the first seconds, which may be the visitor getting ready) ends
/// the message.
pub const SILENCE_ENDS_AFTER: Duration = Duration::from_secs(4);
const SILENCE_GRACE: Duration = Duration::from_secs(3);
/// Video bit rate of a message: a little under a call's, it is kept and uploaded.
const VIDEO_BITRATE: u32 = 600_000;
const AUDIO_BITRATE: u32 = 32_000;
/// A keyframe every this many seconds, so the clip can be sought.
const KEYFRAME_EVERY: Duration = Duration::from_secs(2);

/// A finished message file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub path: PathBuf,
    pub duration: Duration,
    pub bytes: u64,
}

/// Decides when a message ends for silence: fed each 20 ms frame's level, it says stop once
/// the visitor has been silent for [`SILENCE_ENDS_AFTER`] after the first [`SILENCE_GRACE`].
#[derive(Debug, Default)]
pub struct SilenceCut {
    elapsed: Duration,
    silent_for: Duration,
}

impl SilenceCut {
    pub fn frame(&mut self, dbfs: f32) -> bool {
        let frame = Duration::from_millis(20);
        self.elapsed += frame;
        if dbfs < SILENCE_DBFS {
            self.silent_for += frame;
        } else {
            self.silent_for = Duration::ZERO;
        }
        self.elapsed > SILENCE_GRACE && self.silent_for >= SILENCE_ENDS_AFTER
    }
}

/// The prompt as 48 kHz samples: `custom` (a 48 kHz mono 16-bit WAV the owner gave) or the one
/// shipped in the binary.
pub fn prompt_samples(custom: Option<&[i16]>) -> Vec<i16> {
    if let Some(samples) = custom {
        return samples.to_vec();
    }
    // The shipped WAV: a 44-byte header, then 16 kHz mono 16-bit samples.
    let pcm: Vec<i16> = DEFAULT_PROMPT
        .get(44..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut out = Vec::with_capacity(pcm.len() * 3);
    Resampler::new(16_000, SAMPLE_RATE).process(&pcm, &mut out);
    out
}

fn play(sink: &mut dyn AudioSink, prompt: &[i16]) -> Result<(), String> {
    let mut tone = Tone::new(TONE_HZ);
    let mut pcm = prompt.to_vec();
    // A short pause, then the tone.
    pcm.extend(std::iter::repeat_n(0, SAMPLE_RATE as usize / 5));
    let mut frame = [0_i16; FRAME_SAMPLES];
    for _ in 0..(TONE_LENGTH.as_millis() / 20) {
        tone.read(&mut frame).map_err(|e| e.to_string())?;
        pcm.extend_from_slice(&frame);
    }
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        sink.write(chunk).map_err(|e| e.to_string())?;
    }
    // What the speaker still holds would be recorded as the message's first words.
    if let Some(queued) = sink.latency() {
        std::thread::sleep(queued.min(Duration::from_secs(1)));
    }
    Ok(())
}

/// One encoded video frame, timed from the recording's start.
struct Encoded {
    pts: f64,
    data: Vec<u8>,
    key: bool,
}

/// Captures and encodes video until `stop`, on its own thread (a camera paces itself; a test
/// pattern is paced here).
fn video_thread(
    mut source: Box<dyn VideoSource>,
    start: Instant,
    stop: Arc<AtomicBool>,
    out: mpsc::Sender<Result<Encoded, String>>,
) {
    let format = source.format();
    let mut encoder = match H264Encoder::new(format, VIDEO_BITRATE) {
        Ok(encoder) => encoder,
        Err(e) => {
            let _ = out.send(Err(format!("the video encoder cannot start: {e}")));
            return;
        }
    };
    let interval = Duration::from_secs(1) / format.fps.max(1);
    let mut next = start;
    let mut last_key: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if !source.is_live() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += interval;
        }
        let frame = match source.capture() {
            Ok(frame) => frame,
            Err(e) => {
                let _ = out.send(Err(format!("the camera stopped: {e}")));
                return;
            }
        };
        let at = Instant::now();
        let force = last_key.is_none_or(|k| at.duration_since(k) >= KEYFRAME_EVERY);
        let data = match encoder.encode(&frame, force) {
            Ok(data) if data.is_empty() => continue,
            Ok(data) => data,
            Err(e) => {
                let _ = out.send(Err(format!("a frame could not be encoded: {e}")));
                return;
            }
        };
        let key = is_keyframe(&data);
        if key {
            last_key = Some(at);
        }
        let pts = at.duration_since(start).as_secs_f64();
        if out.send(Ok(Encoded { pts, data, key })).is_err() {
            return;
        }
    }
}

/// Plays the prompt, then records for at most `max` into `dir/ROOM.mp4`; ends early when
/// `stop` is set (the visitor pressed again, the agent stops) or the visitor falls silent.
pub fn record(
    media: &MediaSettings,
    prompt: &[i16],
    dir: &Path,
    room: &str,
    max: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Recording, String> {
    let (parts, problems) = media.open();
    for problem in problems {
        tracing::warn!("video message: {problem}");
    }
    let crate::CallMedia {
        video,
        mut audio_in,
        mut audio_out,
    } = parts;
    if let Err(why) = play(audio_out.as_mut(), prompt) {
        tracing::warn!("video message: the prompt could not be played: {why}");
    }
    let _ = audio_out.finish();
    let Some(video) = video else {
        return Err("no camera: a video message needs one".into());
    };
    let format = video.format();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the message dir {}: {e}", dir.display()))?;
    let done = dir.join(format!("{room}.mp4"));
    let part = dir.join(format!("{room}.mp4.part"));
    let result = record_into(
        &part,
        video,
        audio_in.as_mut(),
        format.width,
        format.height,
        f64::from(format.fps),
        max,
        &stop,
    );
    match result {
        Ok(duration) => {
            std::fs::rename(&part, &done)
                .map_err(|e| format!("cannot finish {}: {e}", done.display()))?;
            let bytes = std::fs::metadata(&done).map(|m| m.len()).unwrap_or(0);
            Ok(Recording {
                path: done,
                duration,
                bytes,
            })
        }
        Err(why) => {
            // Nothing half-written stays behind.
            let _ = std::fs::remove_file(&part);
            Err(why)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record_into(
    part: &Path,
    video: Box<dyn VideoSource>,
    audio_in: &mut dyn AudioSource,
    width: u32,
    height: u32,
    fps: f64,
    max: Duration,
    stop: &AtomicBool,
) -> Result<Duration, String> {
    let file =
        std::fs::File::create(part).map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let mut muxer = MuxerBuilder::new(BufWriter::new(file))
        .video(VideoCodec::H264, width, height, fps)
        .audio(AudioCodec::Opus, SAMPLE_RATE, 1)
        .with_fast_start(true)
        .build()
        .map_err(|e| format!("the MP4 muxer cannot start: {e}"))?;
    let mut opus = OpusEncoder::new(AUDIO_BITRATE).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let video_stop = Arc::new(AtomicBool::new(false));
    let (frames_tx, frames) = mpsc::channel();
    let capture = {
        let video_stop = video_stop.clone();
        std::thread::spawn(move || video_thread(video, start, video_stop, frames_tx))
    };
    let mut silence = SilenceCut::default();
    let listen_for_silence = audio_in.is_live() && audio_in.is_acoustic();
    let mut pcm = [0_i16; FRAME_SAMPLES];
    let mut first_video: Option<f64> = None;
    let mut last_pts = 0.0_f64;
    let mut audio_frames: u64 = 0;
    let mut next_audio = start;
    let outcome = loop {
        if stop.load(Ordering::Relaxed) || start.elapsed() >= max {
            break Ok(());
        }
        if !audio_in.is_live() {
            let now = Instant::now();
            if next_audio > now {
                std::thread::sleep(next_audio - now);
            }
            next_audio += Duration::from_millis(20);
        }
        if let Err(e) = audio_in.read(&mut pcm) {
            break Err(format!("the microphone stopped: {e}"));
        }
        let audio_pts = start.elapsed().as_secs_f64();
        // Video first: the file's audio may not start before its first picture.
        let mut failed = None;
        while let Ok(frame) = frames.try_recv() {
            match frame {
                Ok(frame) if first_video.is_none() && !frame.key => {}
                Ok(frame) => {
                    first_video.get_or_insert(frame.pts);
                    last_pts = last_pts.max(frame.pts);
                    if let Err(e) = muxer.write_video(frame.pts, &frame.data, frame.key) {
                        failed = Some(format!("the video could not be written: {e}"));
                    }
                }
                Err(why) => failed = Some(why),
            }
        }
        if let Some(why) = failed {
            break Err(why);
        }
        if let Some(first) = first_video {
            let packet = match opus.encode(&pcm) {
                Ok(packet) => packet,
                Err(e) => break Err(format!("the audio could not be encoded: {e}")),
            };
            let pts = audio_pts.max(first);
            if let Err(e) = muxer.write_audio(pts, &packet) {
                break Err(format!("the audio could not be written: {e}"));
            }
            audio_frames += 1;
            last_pts = last_pts.max(pts);
        }
        if listen_for_silence && silence.frame(rms_dbfs(&pcm)) {
            tracing::info!("video message: the visitor fell silent");
            break Ok(());
        }
    };
    video_stop.store(true, Ordering::Relaxed);
    let _ = capture.join();
    outcome?;
    if first_video.is_none() || audio_frames == 0 {
        return Err("the camera gave no picture: no message recorded".into());
    }
    let mut writer = muxer
        .finish_in_place()
        .map_err(|e| format!("the MP4 could not be finished: {e}"))
        .map(|()| muxer.into_writer())?;
    writer
        .flush()
        .map_err(|e| format!("the message could not be written (disk full?): {e}"))?;
    writer
        .get_ref()
        .sync_all()
        .map_err(|e| format!("the message could not be written (disk full?): {e}"))?;
    Ok(Duration::from_secs_f64(
        last_pts - first_video.unwrap_or(0.0) + 0.02,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_ends_a_message_only_after_the_grace_and_four_quiet_seconds() {
        let mut cut = SilenceCut::default();
        // Silent from the start: the grace runs first.
        let frames_until =
            |cut: &mut SilenceCut, dbfs: f32| (1..=1000).find(|_| cut.frame(dbfs)).map(|n| n * 20);
        assert_eq!(frames_until(&mut cut, -60.0), Some(4000));
        let mut cut = SilenceCut::default();
        for _ in 0..250 {
            assert!(!cut.frame(-20.0), "talking");
        }
        // Five seconds in, the visitor stops talking: four seconds later it ends.
        assert_eq!(frames_until(&mut cut, -60.0), Some(4000));
    }

    #[test]
    fn the_shipped_prompt_is_about_five_seconds_at_48_khz() {
        let samples = prompt_samples(None);
        let seconds = samples.len() as f64 / f64::from(SAMPLE_RATE);
        assert!((5.0..5.5).contains(&seconds), "{seconds}");
        assert!(rms_dbfs(&samples) > -40.0, "it is speech, not silence");
    }

    fn test_media() -> MediaSettings {
        use crate::media_settings::{AudioInput, AudioOutput, VideoInput};
        MediaSettings {
            video: VideoInput::TestPattern,
            format: doorbell_media::VideoFormat {
                width: 320,
                height: 240,
                fps: 15,
            },
            audio_in: AudioInput::Tone,
            audio_out: AudioOutput::Null,
        }
    }

    #[test]
    fn a_message_is_an_mp4_with_its_index_first_and_no_part_file_left() {
        let dir = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let recorded = record(
            &test_media(),
            &[],
            dir.path(),
            "RoomA",
            Duration::from_millis(1500),
            stop,
        )
        .unwrap();
        assert_eq!(recorded.path, dir.path().join("RoomA.mp4"));
        let bytes = std::fs::read(&recorded.path).unwrap();
        assert_eq!(recorded.bytes, bytes.len() as u64);
        assert_eq!(&bytes[4..8], b"ftyp");
        let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
        assert!(
            at(b"moov").unwrap() < at(b"mdat").unwrap(),
            "moov first: plays while loading"
        );
        assert!(
            at(b"avc1").is_some() && at(b"Opus").is_some(),
            "H.264 and Opus tracks"
        );
        let seconds = recorded.duration.as_secs_f64();
        assert!((1.2..1.6).contains(&seconds), "{seconds}");
        assert!(!dir.path().join("RoomA.mp4.part").exists());
    }

    #[test]
    fn a_stopped_message_ends_at_once_and_no_camera_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            stopper.store(true, Ordering::Relaxed);
        });
        let recorded = record(
            &test_media(),
            &[],
            dir.path(),
            "RoomB",
            Duration::from_secs(20),
            stop,
        )
        .unwrap();
        assert!(
            recorded.duration < Duration::from_secs(2),
            "{:?}",
            recorded.duration
        );

        let mut no_camera = test_media();
        no_camera.video = crate::media_settings::VideoInput::None;
        let error = record(
            &no_camera,
            &[],
            dir.path(),
            "RoomC",
            Duration::from_secs(1),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap_err();
        assert!(error.contains("no camera"), "{error}");
        assert!(!dir.path().join("RoomC.mp4.part").exists());
    }

    #[test]
    fn a_dir_that_cannot_be_written_is_a_clear_error_and_leaves_nothing() {
        // /proc takes no new directories, as a full or read-only disk takes no file.
        let error = record(
            &test_media(),
            &[],
            Path::new("/proc/doorbell-messages"),
            "RoomD",
            Duration::from_secs(1),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap_err();
        assert!(error.contains("cannot create the message dir"), "{error}");
    }
}
