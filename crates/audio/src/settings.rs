//! Which stages run, and the fixed gains around them.

/// The quietest microphone gain accepted, in dB.
pub const MIN_MIC_GAIN_DB: f32 = -20.0;
/// The loudest microphone gain accepted, in dB (a quiet MEMS microphone needs ~+20 dB).
pub const MAX_MIC_GAIN_DB: f32 = 30.0;

/// The `[agent.audio]` stages, resolved. Every stage is on by default: a doorbell's speaker
/// sits centimetres from its microphone, outdoors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioSettings {
    /// Acoustic echo cancellation (AEC3) with the speaker's output as the reference.
    pub echo_cancel: bool,
    /// Stationary noise suppression (traffic, wind hum, fans).
    pub noise_suppression: bool,
    /// Automatic gain (AGC2: adaptive digital gain and a limiter).
    pub auto_gain: bool,
    /// A high-pass filter (removes rumble and DC below ~80 Hz). The echo canceller turns it on
    /// by itself, as WebRTC does, because echo estimation needs it.
    pub high_pass: bool,
    /// A fixed gain on the raw microphone, in dB, before any stage.
    pub mic_gain_db: f32,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            echo_cancel: true,
            noise_suppression: true,
            auto_gain: true,
            high_pass: true,
            mic_gain_db: 0.0,
        }
    }
}

impl AudioSettings {
    /// Every stage off and no gain: the microphone's samples pass through untouched.
    pub const OFF: AudioSettings = AudioSettings {
        echo_cancel: false,
        noise_suppression: false,
        auto_gain: false,
        high_pass: false,
        mic_gain_db: 0.0,
    };

    /// true when no stage runs (the samples pass bit for bit, apart from `mic_gain_db`).
    pub fn no_stage(&self) -> bool {
        !(self.echo_cancel || self.noise_suppression || self.auto_gain || self.high_pass)
    }
}
