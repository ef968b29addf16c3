//! Which camera, microphone and speaker a call uses, parsed from `--video`, `--audio-in` and
//! `--audio-out`, and opened afresh for every call (and released when it ends).

use crate::CallMedia;
use doorbell_audio::echo_room::echo_room_devices;
use doorbell_media::{
    AudioSink, AudioSource, DEFAULT_CAMERA, NullSink, Silence, TestPattern, Tone, V4l2Camera,
    VideoFormat, VideoSource, WavSink,
};
use std::path::PathBuf;

/// Playback volume when `alsa:NAME` has no `:volume=PERCENT`.
pub const DEFAULT_VOLUME_PERCENT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// The moving test pattern with its latency stamp.
    TestPattern,
    /// A V4L2 camera (USB webcam): `camera` (= /dev/video0) or a device path.
    Camera(PathBuf),
    /// Audio-only calls.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// A 440 Hz tone.
    Tone,
    Silence,
    /// An ALSA capture PCM (`alsa:NAME`, e.g. `alsa:default`, `alsa:plughw:1,0`); needs the
    /// `alsa` build feature.
    Alsa(String),
    /// The microphone of a simulated housing that hears the `echo-room` speaker (for testing
    /// echo cancellation without hardware; needs `--audio-out echo-room`).
    EchoRoom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    Null,
    /// The owner's voice written to a WAV file (48 kHz mono), rewritten at every call.
    Wav(PathBuf),
    /// An ALSA playback PCM (`alsa:NAME[:volume=PERCENT]`); needs the `alsa` build feature.
    Alsa {
        device: String,
        volume_percent: u32,
    },
    /// The speaker of the simulated housing (see [`AudioInput::EchoRoom`]).
    EchoRoom,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {value:?} is not known; use one of: {known}")]
pub struct BadMediaSpec {
    pub flag: &'static str,
    pub value: String,
    pub known: &'static str,
}

impl VideoInput {
    pub fn parse(value: &str) -> Result<Self, BadMediaSpec> {
        match value {
            "test-pattern" => Ok(VideoInput::TestPattern),
            "none" => Ok(VideoInput::None),
            "camera" => Ok(VideoInput::Camera(PathBuf::from(DEFAULT_CAMERA))),
            _ if value.starts_with("/dev/") && value.len() > "/dev/".len() => {
                Ok(VideoInput::Camera(PathBuf::from(value)))
            }
            _ => Err(BadMediaSpec {
                flag: "--video",
                value: value.to_owned(),
                known: "test-pattern, camera (= /dev/video0), /dev/videoN, none",
            }),
        }
    }
}

impl AudioInput {
    pub fn parse(value: &str) -> Result<Self, BadMediaSpec> {
        match value {
            "tone" => Ok(AudioInput::Tone),
            "silence" => Ok(AudioInput::Silence),
            "echo-room" => Ok(AudioInput::EchoRoom),
            _ => match value.strip_prefix("alsa:") {
                Some(device) if !device.is_empty() => Ok(AudioInput::Alsa(device.to_owned())),
                _ => Err(BadMediaSpec {
                    flag: "--audio-in",
                    value: value.to_owned(),
                    known: "tone, silence, alsa:NAME (e.g. alsa:default, alsa:plughw:1,0), \
                            echo-room (a simulated housing, for tests)",
                }),
            },
        }
    }
}

impl AudioOutput {
    pub fn parse(value: &str) -> Result<Self, BadMediaSpec> {
        let bad = || BadMediaSpec {
            flag: "--audio-out",
            value: value.to_owned(),
            known: "null, wav:PATH, alsa:NAME[:volume=PERCENT] (e.g. alsa:default:volume=80), \
                    echo-room (a simulated housing, for tests)",
        };
        match value {
            "null" => return Ok(AudioOutput::Null),
            "echo-room" => return Ok(AudioOutput::EchoRoom),
            _ => {}
        }
        if let Some(path) = value.strip_prefix("wav:") {
            return match path.is_empty() {
                true => Err(bad()),
                false => Ok(AudioOutput::Wav(PathBuf::from(path))),
            };
        }
        let Some(alsa) = value.strip_prefix("alsa:") else {
            return Err(bad());
        };
        // ALSA names contain colons (hw:1,0), so the volume is the last part only.
        let (device, volume_percent) = match alsa.rsplit_once(':') {
            Some((device, volume)) if volume.starts_with("volume=") => {
                let percent = volume["volume=".len()..].trim_end_matches('%');
                match percent.parse::<u32>() {
                    Ok(p) if p <= doorbell_media::MAX_VOLUME_PERCENT => (device, p),
                    _ => return Err(bad()),
                }
            }
            _ => (alsa, DEFAULT_VOLUME_PERCENT),
        };
        if device.is_empty() {
            return Err(bad());
        }
        Ok(AudioOutput::Alsa {
            device: device.to_owned(),
            volume_percent,
        })
    }
}

/// JPEG quality of the snapshot: small enough to upload fast, good enough to recognise a face.
pub const SNAPSHOT_QUALITY: u8 = 80;

#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub video: VideoInput,
    pub format: VideoFormat,
    pub audio_in: AudioInput,
    pub audio_out: AudioOutput,
}

impl MediaSettings {
    /// Opens the video source alone (for a call, or for the snapshot at a press). `Ok(None)`
    /// when video is off; `Err` says what failed, for an `error` event.
    pub fn open_video(&self) -> Result<Option<Box<dyn VideoSource>>, String> {
        match &self.video {
            VideoInput::None => Ok(None),
            // Opened afresh at every ring: a camera unplugged in the last call is tried again.
            VideoInput::Camera(device) => match V4l2Camera::open(device, self.format) {
                Ok(camera) => Ok(Some(Box::new(camera))),
                Err(e) => Err(format!("no video, audio only: {e}")),
            },
            VideoInput::TestPattern => match TestPattern::new(self.format) {
                Ok(p) => Ok(Some(Box::new(p))),
                Err(e) => Err(format!("test pattern unavailable, audio only: {e}")),
            },
        }
    }

    /// The visitor's photo for the notifications: opens the video source, captures one frame
    /// and encodes it as JPEG (blocking: run it off the async threads). The camera is released
    /// again before the call opens it; it is not kept running between rings, which would cost
    /// the Pi power and heat for a photo that opening it takes ~100 ms to get.
    pub fn snapshot_jpeg(&self, quality: u8) -> Result<Vec<u8>, String> {
        let mut source = self
            .open_video()?
            .ok_or_else(|| "video is off; no snapshot".to_owned())?;
        let frame = source
            .capture()
            .map_err(|e| format!("the camera gave no frame: {e}"))?;
        doorbell_media::encode_jpeg(&frame, quality)
            .map_err(|e| format!("the frame could not be encoded as JPEG: {e}"))
    }

    /// The speaker alone, for what the doorbell says outside a call (a quick reply).
    pub fn open_speaker_only(&self) -> Result<Box<dyn AudioSink>, String> {
        match &self.audio_out {
            AudioOutput::Null => Ok(Box::new(NullSink::new())),
            AudioOutput::Wav(path) => WavSink::create(path)
                .map(|w| Box::new(w) as Box<dyn AudioSink>)
                .map_err(|e| format!("cannot write {}: {e}", path.display())),
            AudioOutput::Alsa {
                device,
                volume_percent,
            } => open_speaker(device, *volume_percent),
            AudioOutput::EchoRoom => {
                Err("echo-room plays into its simulated housing only during a call".to_owned())
            }
        }
    }

    /// Opens every part for one call. A part that fails to open is left out (the call goes on
    /// without it) and its problem is returned, to become an `error` event.
    pub fn open(&self) -> (CallMedia, Vec<String>) {
        let mut problems = Vec::new();
        // The simulated housing's speaker and microphone share its air, so they are made as a
        // pair; one without the other hears or plays into nothing.
        let (mut room_speaker, mut room_mic) = match (&self.audio_in, &self.audio_out) {
            (AudioInput::EchoRoom, AudioOutput::EchoRoom) => {
                let (speaker, mic) = echo_room_devices();
                (Some(speaker), Some(mic))
            }
            (AudioInput::EchoRoom, _) | (_, AudioOutput::EchoRoom) => {
                problems.push(
                    "echo-room needs both --audio-in echo-room and --audio-out echo-room; \
                     the other one hears or plays into nothing"
                        .to_owned(),
                );
                (None, None)
            }
            _ => (None, None),
        };
        let video = match self.open_video() {
            Ok(video) => video,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let audio_in: Box<dyn AudioSource> = match &self.audio_in {
            AudioInput::Tone => Box::new(Tone::new(440.0)),
            AudioInput::Silence => Box::new(Silence),
            AudioInput::EchoRoom => match room_mic.take() {
                Some(mic) => Box::new(mic),
                None => Box::new(Silence),
            },
            AudioInput::Alsa(device) => match open_microphone(device) {
                Ok(mic) => mic,
                Err(e) => {
                    problems.push(format!("no microphone, the visitor is not heard: {e}"));
                    Box::new(Silence)
                }
            },
        };
        let audio_out: Box<dyn AudioSink> = match &self.audio_out {
            AudioOutput::Null => Box::new(NullSink::new()),
            AudioOutput::Wav(path) => match WavSink::create(path) {
                Ok(w) => Box::new(w),
                Err(e) => {
                    problems.push(format!(
                        "cannot write the owner's audio to {}: {e}; it is dropped",
                        path.display()
                    ));
                    Box::new(NullSink::new())
                }
            },
            AudioOutput::Alsa {
                device,
                volume_percent,
            } => match open_speaker(device, *volume_percent) {
                Ok(speaker) => speaker,
                Err(e) => {
                    problems.push(format!("no speaker, the owner is not heard: {e}"));
                    Box::new(NullSink::new())
                }
            },
            AudioOutput::EchoRoom => match room_speaker.take() {
                Some(speaker) => Box::new(speaker),
                None => Box::new(NullSink::new()),
            },
        };
        (
            CallMedia {
                video,
                audio_in,
                audio_out,
            },
            problems,
        )
    }
}

#[cfg(feature = "alsa")]
fn open_microphone(device: &str) -> Result<Box<dyn AudioSource>, String> {
    doorbell_media::open_alsa_capture(device)
        .map(|mic| Box::new(mic) as Box<dyn AudioSource>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "alsa"))]
fn open_microphone(device: &str) -> Result<Box<dyn AudioSource>, String> {
    Err(without_alsa(device))
}

#[cfg(feature = "alsa")]
fn open_speaker(device: &str, volume_percent: u32) -> Result<Box<dyn AudioSink>, String> {
    doorbell_media::open_alsa_playback(device, volume_percent)
        .map(|speaker| Box::new(speaker) as Box<dyn AudioSink>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "alsa"))]
fn open_speaker(device: &str, _volume_percent: u32) -> Result<Box<dyn AudioSink>, String> {
    Err(without_alsa(device))
}

#[cfg(not(feature = "alsa"))]
fn without_alsa(device: &str) -> String {
    format!(
        "ALSA device {device}: this doorbell was built without ALSA support; build it with \
         `--features alsa` (scripts/build-pi does)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_names_the_flag_on_errors() {
        assert_eq!(
            VideoInput::parse("test-pattern"),
            Ok(VideoInput::TestPattern)
        );
        assert_eq!(
            AudioOutput::parse("wav:/tmp/x.wav"),
            Ok(AudioOutput::Wav("/tmp/x.wav".into()))
        );
        let e = AudioOutput::parse("wav:").unwrap_err();
        assert_eq!(e.flag, "--audio-out");
        assert!(
            VideoInput::parse("webcam")
                .unwrap_err()
                .to_string()
                .contains("--video")
        );
        assert!(AudioInput::parse("mic").is_err());
    }

    #[test]
    fn an_unwritable_sink_is_a_problem_not_a_failure() {
        let settings = MediaSettings {
            video: VideoInput::TestPattern,
            format: VideoFormat {
                width: 320,
                height: 240,
                fps: 30,
            },
            audio_in: AudioInput::Tone,
            audio_out: AudioOutput::Wav("/nonexistent-dir/x.wav".into()),
        };
        let (media, problems) = settings.open();
        assert!(media.video.is_some());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("/nonexistent-dir/x.wav"));
    }

    #[test]
    fn parses_pi_devices() {
        assert_eq!(
            VideoInput::parse("camera"),
            Ok(VideoInput::Camera("/dev/video0".into()))
        );
        assert_eq!(
            VideoInput::parse("/dev/video2"),
            Ok(VideoInput::Camera("/dev/video2".into()))
        );
        assert!(VideoInput::parse("/dev/").is_err());
        assert_eq!(
            AudioInput::parse("alsa:plughw:1,0"),
            Ok(AudioInput::Alsa("plughw:1,0".into()))
        );
        assert!(AudioInput::parse("alsa:").is_err());
        assert_eq!(
            AudioOutput::parse("alsa:default"),
            Ok(AudioOutput::Alsa {
                device: "default".into(),
                volume_percent: DEFAULT_VOLUME_PERCENT
            })
        );
        assert_eq!(
            AudioOutput::parse("alsa:hw:1,0:volume=70%"),
            Ok(AudioOutput::Alsa {
                device: "hw:1,0".into(),
                volume_percent: 70
            })
        );
        for bad in [
            "alsa:",
            "alsa:default:volume=loud",
            "alsa:default:volume=900",
            "alsa::volume=50",
        ] {
            assert!(AudioOutput::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_missing_camera_leaves_the_call_audio_only_and_names_the_device() {
        let settings = MediaSettings {
            video: VideoInput::Camera("/dev/video-doorbell-test".into()),
            format: VideoFormat {
                width: 640,
                height: 480,
                fps: 30,
            },
            audio_in: AudioInput::Tone,
            audio_out: AudioOutput::Null,
        };
        // Every ring opens the camera afresh, so a camera plugged back in is used again.
        for _ring in 0..2 {
            let (media, problems) = settings.open();
            assert!(media.video.is_none());
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains("/dev/video-doorbell-test"),
                "{problems:?}"
            );
            assert!(problems[0].contains("audio only"), "{problems:?}");
        }
    }

    #[test]
    fn a_missing_alsa_device_is_a_problem_naming_it() {
        let settings = MediaSettings {
            video: VideoInput::None,
            format: VideoFormat {
                width: 640,
                height: 480,
                fps: 30,
            },
            audio_in: AudioInput::Alsa("doorbell_test_no_such_pcm".into()),
            audio_out: AudioOutput::Alsa {
                device: "doorbell_test_no_such_pcm".into(),
                volume_percent: 100,
            },
        };
        let (_media, problems) = settings.open();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.contains("doorbell_test_no_such_pcm")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_echo_room_speaker_is_heard_by_its_microphone_and_needs_both() {
        let room = |audio_in, audio_out| MediaSettings {
            video: VideoInput::None,
            format: VideoFormat {
                width: 320,
                height: 240,
                fps: 30,
            },
            audio_in,
            audio_out,
        };
        let (mut media, problems) = room(AudioInput::EchoRoom, AudioOutput::EchoRoom).open();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(media.audio_in.is_acoustic());
        media.audio_out.write(&[12_000; 4 * 960]).unwrap();
        let mut heard = [0_i16; 960];
        let mut loudest = 0;
        for _ in 0..4 {
            media.audio_in.read(&mut heard).unwrap();
            loudest = loudest.max(heard.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0));
        }
        assert!(loudest > 3_000, "{loudest}");

        let (_media, problems) = room(AudioInput::EchoRoom, AudioOutput::Null).open();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("--audio-out echo-room"),
            "{problems:?}"
        );
    }
}
