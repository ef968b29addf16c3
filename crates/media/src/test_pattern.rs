//! The synthetic camera: colour bars with a sliding box, a frame counter, the capture time in
//! digits, and the machine-readable latency stamp on top.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bitmap_font::{draw_text, text_height};
use crate::latency_stamp::{STAMP_ROWS, stamp_value, write_stamp};
use crate::video_frame::{CHROMA_NEUTRAL, LUMA_WHITE};
use crate::{MediaError, VideoFormat, VideoFrame, VideoSource};

/// 75 % colour bars in limited-range BT.601 (Y, U, V): white, yellow, cyan, green, magenta,
/// red, blue.
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

/// Seconds the sliding box takes to cross the frame once.
const BOX_CROSSING_SECONDS: u32 = 2;

/// A moving test pattern. Not live: the caller paces `capture()` at the
/// format's frame rate.
pub struct TestPattern {
    format: VideoFormat,
    /// The bars, rendered once; each frame starts as a copy.
    background: VideoFrame,
    next_sequence: u64,
}

impl TestPattern {
    /// A pattern of the given size and rate (see [`VideoFormat::validate`] for the limits).
    pub fn new(format: VideoFormat) -> Result<Self, MediaError> {
        format.validate()?;
        let mut background = VideoFrame::black(format.width, format.height, 0, UNIX_EPOCH)?;
        paint_bars(&mut background);
        Ok(Self {
            format,
            background,
            next_sequence: 0,
        })
    }

    /// Renders frame number `sequence` as captured at `capture_time`. Deterministic: the same
    /// arguments give the same picture.
    pub fn frame_at(&self, sequence: u64, capture_time: SystemTime) -> VideoFrame {
        let mut frame = self.background.clone();
        frame.sequence = sequence;
        frame.capture_time = capture_time;
        self.paint_box(&mut frame, sequence);
        paint_text(&mut frame, sequence, capture_time);
        write_stamp(&mut frame, stamp_value(capture_time, sequence));
        frame
    }

    fn paint_box(&self, frame: &mut VideoFrame, sequence: u64) {
        let width = frame.width_usize();
        let height = frame.height_usize();
        let side = even((height / 6).max(8));
        let travel = width.saturating_sub(side).max(2);
        let frames_per_crossing = (self.format.fps * BOX_CROSSING_SECONDS).max(1) as usize;
        let step = even((travel / frames_per_crossing).max(2));
        let left = even((sequence % (travel as u64 / step as u64).max(1)) as usize * step);
        let top = even(height / 2 - side / 2).max(STAMP_ROWS as usize);
        let right = (left + side).min(width);
        let bottom = (top + side).min(height);
        for row in top..bottom {
            frame.y[row * width + left..row * width + right].fill(LUMA_WHITE);
        }
        let chroma_width = width / 2;
        for row in top / 2..bottom / 2 {
            let span = row * chroma_width + left / 2..row * chroma_width + right / 2;
            frame.u[span.clone()].fill(CHROMA_NEUTRAL);
            frame.v[span].fill(CHROMA_NEUTRAL);
        }
    }
}

impl VideoSource for TestPattern {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn is_live(&self) -> bool {
        false
    }

    fn capture(&mut self) -> Result<VideoFrame, MediaError> {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        Ok(self.frame_at(sequence, SystemTime::now()))
    }
}

fn even(value: usize) -> usize {
    value & !1
}

fn paint_bars(frame: &mut VideoFrame) {
    let width = frame.width_usize();
    let height = frame.height_usize();
    let bar_of = |x: usize| BARS[(x * BARS.len() / width).min(BARS.len() - 1)];
    for row in STAMP_ROWS as usize..height {
        for x in 0..width {
            frame.y[row * width + x] = bar_of(x).0;
        }
    }
    let chroma_width = width / 2;
    for row in STAMP_ROWS as usize / 2..height / 2 {
        for cx in 0..chroma_width {
            let (_, u, v) = bar_of(cx * 2);
            frame.u[row * chroma_width + cx] = u;
            frame.v[row * chroma_width + cx] = v;
        }
    }
}

/// The frame counter and the capture time (UTC, HH:MM:SS.mmm), bottom left, for humans.
fn paint_text(frame: &mut VideoFrame, sequence: u64, capture_time: SystemTime) {
    let scale = (frame.width_usize() / 160).max(1);
    let line = text_height(scale);
    let height = frame.height_usize();
    let millis = capture_time
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| since_epoch.as_millis())
        .unwrap_or(0);
    let day_millis = (millis % 86_400_000) as u64;
    let clock = format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_millis / 3_600_000,
        day_millis / 60_000 % 60,
        day_millis / 1000 % 60,
        day_millis % 1000
    );
    let counter = format!("#{sequence:06}");
    let margin = even(scale * 2);
    let clock_top = even(height.saturating_sub(line + margin));
    let counter_top = even(clock_top.saturating_sub(line));
    if counter_top < STAMP_ROWS as usize {
        return;
    }
    draw_text(frame, margin, counter_top, scale, &counter);
    draw_text(frame, margin, clock_top, scale, &clock);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency_stamp::read_stamp;
    use std::time::Duration;

    fn format(width: u32, height: u32) -> VideoFormat {
        VideoFormat {
            width,
            height,
            fps: 30,
        }
    }

    #[test]
    fn rejects_unusable_formats() {
        assert!(TestPattern::new(format(641, 480)).is_err());
        assert!(
            TestPattern::new(VideoFormat {
                fps: 0,
                ..format(640, 480)
            })
            .is_err()
        );
    }

    #[test]
    fn frames_are_valid_at_every_supported_corner_size() {
        for (width, height) in [(64, 64), (66, 480), (320, 240), (640, 480), (1920, 1080)] {
            let pattern = TestPattern::new(format(width, height)).unwrap();
            for sequence in [0, 1, 59, 60, 12345] {
                let frame = pattern.frame_at(sequence, SystemTime::now());
                assert!(frame.validate().is_ok(), "{width}x{height} #{sequence}");
                assert_eq!(frame.sequence, sequence);
            }
        }
    }

    #[test]
    fn pattern_moves_and_stamp_increases() {
        let mut pattern = TestPattern::new(format(320, 240)).unwrap();
        assert!(!pattern.is_live());
        assert_eq!(pattern.format(), format(320, 240));
        let first = pattern.capture().unwrap();
        let second = pattern.capture().unwrap();
        assert_eq!((first.sequence, second.sequence), (0, 1));
        // Compare below the stamp so the difference is the picture moving, not the barcode.
        let below_stamp = 16 * 320;
        assert_ne!(first.y[below_stamp..], second.y[below_stamp..]);
        let (a, b) = (read_stamp(&first).unwrap(), read_stamp(&second).unwrap());
        assert!(b > a, "{b:#x} <= {a:#x}");
        assert_eq!(b & 0xFFFF, 1);
    }

    #[test]
    fn box_slides_and_clock_text_changes_with_time() {
        let pattern = TestPattern::new(format(640, 480)).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_millis(1_764_000_000_000);
        let a = pattern.frame_at(10, t0);
        let same = pattern.frame_at(10, t0);
        assert_eq!(a, same, "rendering is deterministic");
        let middle_row = |frame: &VideoFrame| frame.y[240 * 640..241 * 640].to_vec();
        assert_ne!(middle_row(&a), middle_row(&pattern.frame_at(11, t0)));
        // Same frame number a second later: only the stamp and the clock text differ.
        let later = pattern.frame_at(10, t0 + Duration::from_secs(1));
        assert_eq!(middle_row(&a), middle_row(&later));
        assert_ne!(a.y[16 * 640..], later.y[16 * 640..]);
        assert_eq!(
            read_stamp(&later).unwrap() - read_stamp(&a).unwrap(),
            1000 << 16
        );
    }
}
