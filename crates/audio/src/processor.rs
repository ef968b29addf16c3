//! One microphone frame at a time through the WebRTC audio processing module.

use crate::AudioSettings;
use doorbell_media::SAMPLE_RATE;
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
};
use sonora::{AudioProcessing, Config, StreamConfig};

/// The processing frame: 10 ms at 48 kHz, as the WebRTC module requires.
pub const FRAME_10MS: usize = SAMPLE_RATE as usize / 100;

/// The call path's processing. Feed it what the speaker plays ([`Processor::render`]) and the
/// microphone's frames ([`Processor::capture`]) in the order they happen; it cleans the
/// microphone in place.
pub struct Processor {
    /// `None` when no stage is on: then nothing but the fixed gain touches the samples.
    apm: Option<AudioProcessing>,
    echo_cancel: bool,
    /// Linear factor of `mic_gain_db`; `None` at 0 dB (bit-exact pass-through).
    mic_gain: Option<f32>,
    delay_ms: i32,
    scratch: [i16; FRAME_10MS],
}

fn module_config(settings: &AudioSettings) -> Config {
    Config {
        high_pass_filter: settings.high_pass.then(HighPassFilter::default),
        echo_canceller: settings.echo_cancel.then(EchoCanceller::default),
        noise_suppression: settings.noise_suppression.then(NoiseSuppression::default),
        // Digital gain only: the module must not drive an analog mixer it does not know. It
        // starts at 0 dB rather than WebRTC's +15 dB: at the start of a call the echo
        // canceller has not converged yet, and a raised gain would hand the owner their own
        // voice back louder; the gain rises on the visitor's speech (at most 6 dB/s), and a
        // quiet microphone has `mic_gain`.
        gain_controller2: settings.auto_gain.then(|| GainController2 {
            input_volume_controller: false,
            adaptive_digital: Some(AdaptiveDigital {
                initial_gain_db: 0.0,
                ..AdaptiveDigital::default()
            }),
            ..GainController2::default()
        }),
        ..Config::default()
    }
}

impl Processor {
    pub fn new(settings: &AudioSettings) -> Self {
        let apm = (!settings.no_stage()).then(|| {
            let stream = StreamConfig::new(SAMPLE_RATE, 1);
            AudioProcessing::builder()
                .config(module_config(settings))
                .capture_config(stream)
                .render_config(stream)
                .build()
        });
        let mic_gain =
            (settings.mic_gain_db != 0.0).then(|| 10_f32.powf(settings.mic_gain_db / 20.0));
        Self {
            apm,
            echo_cancel: settings.echo_cancel,
            mic_gain,
            delay_ms: 0,
            scratch: [0; FRAME_10MS],
        }
    }

    /// true when the echo canceller wants the speaker's frames.
    pub fn wants_far_end(&self) -> bool {
        self.echo_cancel
    }

    /// The playback → capture delay the devices report (speaker buffer + microphone buffer),
    /// in ms. The echo canceller searches around it on its own as well; without any figure 0
    /// is right for files and simulated rooms.
    pub fn set_delay_ms(&mut self, delay_ms: u32) {
        self.delay_ms = i32::try_from(delay_ms.min(500)).unwrap_or(500);
    }

    /// One 10 ms frame the speaker plays (the far end).
    pub fn render(&mut self, far: &[i16; FRAME_10MS]) {
        if !self.echo_cancel {
            return;
        }
        if let Some(apm) = self.apm.as_mut() {
            // Render frames are analysed only; the module leaves them as they are.
            if let Err(error) = apm.process_render_i16(far, &mut self.scratch) {
                tracing::debug!(?error, "audio processing refused a speaker frame");
            }
        }
    }

    /// One 10 ms microphone frame, processed in place.
    pub fn capture(&mut self, mic: &mut [i16; FRAME_10MS]) {
        if let Some(gain) = self.mic_gain {
            for sample in mic.iter_mut() {
                *sample = (f32::from(*sample) * gain)
                    .round()
                    .clamp(-32_768.0, 32_767.0) as i16;
            }
        }
        let Some(apm) = self.apm.as_mut() else {
            return;
        };
        if self.echo_cancel {
            // Clamping is reported as an error but processing goes on; set_delay_ms keeps the
            // value in range anyway.
            let _ = apm.set_stream_delay_ms(self.delay_ms);
        }
        match apm.process_capture_i16(mic, &mut self.scratch) {
            Ok(()) => mic.copy_from_slice(&self.scratch),
            Err(error) => tracing::debug!(?error, "audio processing refused a microphone frame"),
        }
    }
}
