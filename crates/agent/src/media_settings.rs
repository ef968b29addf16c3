//! Which camera, microphone and speaker a call uses, parsed from `--video`, `--audio-in` and
//! `--audio-out`, and opened afresh for every call (and released when it ends).

use crate::peer::CallMedia;
use doorbell_media::{
    AudioSink, AudioSource, NullSink, Silence, TestPattern, Tone, VideoFormat, VideoSource, WavSink,
};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// The moving test pattern with its latency stamp.
    TestPattern,
    /// Audio-only calls.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// A 440 Hz tone.
    Tone,
    Silence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    Null,
    /// The owner's voice written to a WAV file (48 kHz mono), rewritten at every call.
    Wav(PathBuf),
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
            _ => Err(BadMediaSpec {
                flag: "--video",
                value: value.to_owned(),
                known: "test-pattern, none",
            }),
        }
    }
}

impl AudioInput {
    pub fn parse(value: &str) -> Result<Self, BadMediaSpec> {
        match value {
            "tone" => Ok(AudioInput::Tone),
            "silence" => Ok(AudioInput::Silence),
            _ => Err(BadMediaSpec {
                flag: "--audio-in",
                value: value.to_owned(),
                known: "tone, silence",
            }),
        }
    }
}

impl AudioOutput {
    pub fn parse(value: &str) -> Result<Self, BadMediaSpec> {
        match value {
            "null" => Ok(AudioOutput::Null),
            _ => match value.strip_prefix("wav:") {
                Some(path) if !path.is_empty() => Ok(AudioOutput::Wav(PathBuf::from(path))),
                _ => Err(BadMediaSpec {
                    flag: "--audio-out",
                    value: value.to_owned(),
                    known: "null, wav:PATH",
                }),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub video: VideoInput,
    pub format: VideoFormat,
    pub audio_in: AudioInput,
    pub audio_out: AudioOutput,
}

impl MediaSettings {
    /// Opens every part for one call. A part that fails to open is left out (the call goes on
    /// without it) and its problem is returned, to become an `error` event.
    pub fn open(&self) -> (CallMedia, Vec<String>) {
        let mut problems = Vec::new();
        let video: Option<Box<dyn VideoSource>> = match self.video {
            VideoInput::None => None,
            VideoInput::TestPattern => match TestPattern::new(self.format) {
                Ok(p) => Some(Box::new(p)),
                Err(e) => {
                    problems.push(format!("test pattern unavailable, audio only: {e}"));
                    None
                }
            },
        };
        let audio_in: Box<dyn AudioSource> = match self.audio_in {
            AudioInput::Tone => Box::new(Tone::new(440.0)),
            AudioInput::Silence => Box::new(Silence),
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
            VideoInput::parse("/dev/video9")
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
}
