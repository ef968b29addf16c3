//! The machine-readable latency stamp in the top 16 rows of every test-pattern frame.
//!
//! Contract with the browser's reader (do not change one side alone):
//! - value: u64 = (capture unix time in milliseconds << 16) | (sequence & 0xFFFF)
//! - the top 16 pixel rows are a barcode of 64 cells in 2 rows of 32 cells; cell width =
//!   width / 32 px (integer division; leftover columns on the right are black), cell height
//!   = 8 px. Row 0 (y 0..8) holds bits 63..32, row 1 (y 8..16) bits 31..0, most significant
//!   bit at the left. A 1 bit is white (Y=235), a 0 bit black (Y=16); U=V=128 under the
//!   barcode. Nothing else is drawn in these 16 rows.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::VideoFrame;
use crate::video_frame::{CHROMA_NEUTRAL, LUMA_BLACK, LUMA_WHITE};

/// Rows of frame the stamp occupies (from the top).
pub const STAMP_ROWS: u32 = 16;
/// Cells per barcode row.
const CELLS_PER_ROW: usize = 32;
/// Height of one cell in pixels.
const CELL_HEIGHT: usize = 8;
/// Luma threshold between a 0 and a 1 bit.
const THRESHOLD: u8 = 128;
/// A cell whose centre is closer than this to the threshold is neither clearly black nor
/// clearly white: the frame carries no stamp (or is too damaged to trust).
const AMBIGUITY_MARGIN: u8 = 40;

/// The stamp of a frame: (capture unix time in ms << 16) | (sequence & 0xFFFF).
pub fn stamp_value(capture_time: SystemTime, sequence: u64) -> u64 {
    let millis = capture_time
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| since_epoch.as_millis())
        .unwrap_or(0);
    // 48 bits of milliseconds last until the year 10889; truncating is the contract.
    ((millis as u64) << 16) | (sequence & 0xFFFF)
}

/// The capture time (unix ms) and sequence low bits a stamp value carries.
pub fn split_stamp(value: u64) -> (u64, u16) {
    (value >> 16, (value & 0xFFFF) as u16)
}

fn cell_width(frame_width: usize) -> usize {
    frame_width / CELLS_PER_ROW
}

/// Draws the barcode of `value` into the top 16 rows. Frames narrower than 32 px or lower than
/// 16 px, or with malformed planes, are left unchanged.
pub fn write_stamp(frame: &mut VideoFrame, value: u64) {
    if frame.validate().is_err() || frame.width_usize() < CELLS_PER_ROW || frame.height < STAMP_ROWS
    {
        return;
    }
    let width = frame.width_usize();
    let cell_width = cell_width(width);
    for row in 0..STAMP_ROWS as usize {
        let line = &mut frame.y[row * width..(row + 1) * width];
        line.fill(LUMA_BLACK);
        let barcode_row = row / CELL_HEIGHT;
        for cell in 0..CELLS_PER_ROW {
            let bit = 63 - (barcode_row * CELLS_PER_ROW + cell);
            if (value >> bit) & 1 == 1 {
                line[cell * cell_width..(cell + 1) * cell_width].fill(LUMA_WHITE);
            }
        }
    }
    let chroma_rows = STAMP_ROWS as usize / 2;
    let chroma_width = width / 2;
    frame.u[..chroma_rows * chroma_width].fill(CHROMA_NEUTRAL);
    frame.v[..chroma_rows * chroma_width].fill(CHROMA_NEUTRAL);
}

/// Reads the barcode back, sampling the centre of each cell at luma threshold 128. `None` when
/// the frame is too small or malformed, or when some cell is neither clearly black nor clearly
/// white (a frame without a stamp).
pub fn read_stamp(frame: &VideoFrame) -> Option<u64> {
    if frame.validate().is_err() || frame.width_usize() < CELLS_PER_ROW || frame.height < STAMP_ROWS
    {
        return None;
    }
    let width = frame.width_usize();
    let cell_width = cell_width(width);
    let mut value = 0_u64;
    for barcode_row in 0..2 {
        let y = barcode_row * CELL_HEIGHT + CELL_HEIGHT / 2;
        for cell in 0..CELLS_PER_ROW {
            let x = cell * cell_width + cell_width / 2;
            let luma = *frame.y.get(y * width + x)?;
            if luma.abs_diff(THRESHOLD) < AMBIGUITY_MARGIN {
                return None;
            }
            value = (value << 1) | u64::from(luma >= THRESHOLD);
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(width: u32, height: u32) -> VideoFrame {
        VideoFrame::black(width, height, 0, UNIX_EPOCH).unwrap()
    }

    #[test]
    fn value_packs_millis_and_low_sequence_bits() {
        let time = UNIX_EPOCH + Duration::from_millis(1_764_071_000_123);
        let value = stamp_value(time, 0x1_2345);
        assert_eq!(value, (1_764_071_000_123 << 16) | 0x2345);
        assert_eq!(split_stamp(value), (1_764_071_000_123, 0x2345));
        assert_eq!(stamp_value(UNIX_EPOCH - Duration::from_secs(1), 1), 1);
    }

    #[test]
    fn round_trips_at_many_widths_including_leftover_columns() {
        for (width, height) in [(64, 64), (320, 240), (640, 480), (1280, 720), (650, 66)] {
            for value in [0, u64::MAX, 0x8000_0000_0000_0001, 0x0123_4567_89AB_CDEF] {
                let mut frame = frame(width, height);
                frame.y.fill(200);
                write_stamp(&mut frame, value);
                assert_eq!(
                    read_stamp(&frame),
                    Some(value),
                    "{width}x{height} {value:#x}"
                );
            }
        }
    }

    #[test]
    fn layout_is_the_documented_one() {
        // 650 px wide: cells of 20 px, 10 leftover columns that must stay black.
        let mut frame = frame(650, 66);
        frame.y.fill(100);
        frame.u.fill(90);
        let value = 0x8000_0001_8000_0001_u64;
        write_stamp(&mut frame, value);
        let luma = |x: usize, y: usize| frame.y[y * 650 + x];
        // Bit 63: the leftmost cell of row 0, white across its whole 20x8 area.
        assert!((0..20).all(|x| (0..8).all(|y| luma(x, y) == 235)));
        assert_eq!(luma(20, 0), 16);
        // Bit 32: the rightmost cell of row 0; bit 31: the leftmost of row 1; bit 0 rightmost.
        assert_eq!(luma(31 * 20, 7), 235);
        assert_eq!(luma(0, 8), 235);
        assert_eq!(luma(31 * 20 + 19, 15), 235);
        assert_eq!(luma(30 * 20 + 19, 15), 16);
        // Leftover columns are black, rows 16+ untouched, chroma neutral under the barcode only.
        assert!((640..650).all(|x| (0..16).all(|y| luma(x, y) == 16)));
        assert_eq!(luma(0, 16), 100);
        assert!(frame.u[..8 * 325].iter().all(|&c| c == 128));
        assert_eq!(frame.u[8 * 325], 90);
    }

    #[test]
    fn unstamped_or_tiny_frames_read_as_none() {
        let mut grey = frame(320, 240);
        grey.y.fill(128);
        assert_eq!(read_stamp(&grey), None);
        let mut broken = frame(320, 240);
        broken.y.truncate(10);
        assert_eq!(read_stamp(&broken), None);
        let mut tiny = VideoFrame::black(30, 16, 0, UNIX_EPOCH).unwrap();
        write_stamp(&mut tiny, 1);
        assert_eq!(read_stamp(&tiny), None);
    }
}
