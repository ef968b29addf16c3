//! `doorbell audio-check`: the call path's processing over a recorded far end and microphone.

use crate::measure::erle_db;
use crate::{AudioSettings, FRAME_10MS, Processor};
use std::time::{Duration, Instant};

/// The first 2 s are the echo canceller's convergence; ERLE is reported after them.
pub const CONVERGENCE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckError {
    #[error(
        "the far end is {far:.2} s long and the microphone {mic:.2} s: give two recordings of \
         the same stretch of time"
    )]
    Lengths { far: f64, mic: f64 },
    #[error("the recordings are shorter than one 10 ms frame")]
    Empty,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The processed microphone, as long as the input (a last partial frame passes untouched).
    pub out: Vec<i16>,
    /// ERLE after [`CONVERGENCE`] over the frames where the far end talks.
    pub erle_db: Option<f64>,
    pub frames: usize,
    /// Processing time per 10 ms frame (render + capture), in ms.
    pub ms_per_frame: f64,
}

/// Runs `far` (played on the speaker) and `mic` (recorded meanwhile) through a fresh
/// [`Processor`] with `settings`, frame by frame, as a call would, with the devices' delay
/// given as `delay_ms`.
pub fn check(
    far: &[i16],
    mic: &[i16],
    settings: &AudioSettings,
    delay_ms: u32,
) -> Result<CheckReport, CheckError> {
    let seconds = |samples: &[i16]| samples.len() as f64 / f64::from(doorbell_media::SAMPLE_RATE);
    if far.len() != mic.len() {
        return Err(CheckError::Lengths {
            far: seconds(far),
            mic: seconds(mic),
        });
    }
    let frames = mic.len() / FRAME_10MS;
    if frames == 0 {
        return Err(CheckError::Empty);
    }
    let mut processor = Processor::new(settings);
    processor.set_delay_ms(delay_ms);
    let mut out = mic.to_vec();
    let started = Instant::now();
    for (far, mic) in far
        .chunks_exact(FRAME_10MS)
        .zip(out.chunks_exact_mut(FRAME_10MS))
    {
        if let (Ok(far), Ok(mic)) = (
            <&[i16; FRAME_10MS]>::try_from(far),
            <&mut [i16; FRAME_10MS]>::try_from(mic),
        ) {
            processor.render(far);
            processor.capture(mic);
        }
    }
    let ms_per_frame = started.elapsed().as_secs_f64() * 1000.0 / frames as f64;
    let skip = (CONVERGENCE.as_millis() / 10) as usize;
    let erle_db = erle_db(far, mic, &out, skip);
    Ok(CheckReport {
        out,
        erle_db,
        frames,
        ms_per_frame,
    })
}
