//! `[agent.audio]`: the microphone's processing stages and the speaker's volume, shared by
//! `doorbell agent` and `doorbell audio-check` (which runs exactly the call path's processing).

use clap::Args;
use doorbell_audio::{AudioSettings, MAX_MIC_GAIN_DB, MIN_MIC_GAIN_DB};
use doorbell_media::MAX_VOLUME_PERCENT;
use serde::Deserialize;

/// Each field is a flag, a `DOORBELL_*` environment variable and a key of `[agent.audio]`
/// (the snake_case spellings are accepted too). Every stage is on unless turned off.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AudioArgs {
    /// Echo cancellation of the speaker's sound in the microphone (true/false; default true).
    #[arg(long, env = "DOORBELL_ECHO_CANCEL", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(alias = "echo_cancel")]
    pub echo_cancel: Option<bool>,
    /// Noise suppression on the microphone (default true).
    #[arg(long, env = "DOORBELL_NOISE_SUPPRESSION", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(alias = "noise_suppression")]
    pub noise_suppression: Option<bool>,
    /// Automatic gain on the microphone (default true).
    #[arg(long, env = "DOORBELL_AUTO_GAIN", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(alias = "auto_gain")]
    pub auto_gain: Option<bool>,
    /// High-pass filter on the microphone (default true; echo cancellation keeps it on).
    #[arg(long, env = "DOORBELL_HIGH_PASS", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(alias = "high_pass")]
    pub high_pass: Option<bool>,
    /// A fixed microphone gain in dB before processing (-20 to 30; default 0).
    #[arg(long, env = "DOORBELL_MIC_GAIN", allow_negative_numbers = true)]
    #[serde(alias = "mic_gain")]
    pub mic_gain: Option<f32>,
    /// The speaker's volume in percent (0–200; default 100), for an `alsa:` speaker. The same
    /// as `--audio-out alsa:NAME:volume=P`; give it one way.
    #[arg(long, env = "DOORBELL_SPEAKER_VOLUME")]
    #[serde(alias = "speaker_volume")]
    pub speaker_volume: Option<u32>,
}

impl AudioArgs {
    /// The processing stages, checked.
    pub fn settings(&self) -> Result<AudioSettings, String> {
        let defaults = AudioSettings::default();
        let mic_gain_db = self.mic_gain.unwrap_or(defaults.mic_gain_db);
        if !(MIN_MIC_GAIN_DB..=MAX_MIC_GAIN_DB).contains(&mic_gain_db) {
            return Err(format!(
                "mic-gain {mic_gain_db} dB is outside {MIN_MIC_GAIN_DB}..={MAX_MIC_GAIN_DB} dB"
            ));
        }
        Ok(AudioSettings {
            echo_cancel: self.echo_cancel.unwrap_or(defaults.echo_cancel),
            noise_suppression: self.noise_suppression.unwrap_or(defaults.noise_suppression),
            auto_gain: self.auto_gain.unwrap_or(defaults.auto_gain),
            high_pass: self.high_pass.unwrap_or(defaults.high_pass),
            mic_gain_db,
        })
    }

    /// The speaker volume, checked (`None` when not given).
    pub fn speaker_volume(&self) -> Result<Option<u32>, String> {
        match self.speaker_volume {
            Some(percent) if percent > MAX_VOLUME_PERCENT => Err(format!(
                "speaker-volume {percent} is outside 0..={MAX_VOLUME_PERCENT} (percent)"
            )),
            volume => Ok(volume),
        }
    }
}
