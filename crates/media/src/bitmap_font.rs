//! A tiny built-in 5x7 bitmap font (digits and a few symbols) for the test pattern's text, so
//! no font files are needed.

use crate::VideoFrame;
use crate::video_frame::{CHROMA_NEUTRAL, LUMA_BLACK, LUMA_WHITE};

/// Glyph width in font pixels.
pub(crate) const GLYPH_WIDTH: usize = 5;
/// Glyph height in font pixels.
pub(crate) const GLYPH_HEIGHT: usize = 7;
/// Font pixels between two glyphs.
const GLYPH_SPACING: usize = 1;

/// Rows of a glyph, top first; bit 4 is the leftmost pixel. Unknown characters draw as blank.
fn glyph(character: char) -> [u8; GLYPH_HEIGHT] {
    match character {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        _ => [0; GLYPH_HEIGHT],
    }
}

/// Width in frame pixels of `text` drawn at `scale`, including a one-glyph-pixel margin.
pub(crate) fn text_width(text: &str, scale: usize) -> usize {
    let glyphs = text.chars().count();
    (glyphs * (GLYPH_WIDTH + GLYPH_SPACING) + GLYPH_SPACING) * scale
}

/// Height in frame pixels of one line at `scale`, including the margin.
pub(crate) fn text_height(scale: usize) -> usize {
    (GLYPH_HEIGHT + 2) * scale
}

/// Draws `text` in white on a black box whose top-left corner is (`left`, `top`); everything
/// outside the frame is clipped. `left` and `top` should be even so the box's chroma lines up.
pub(crate) fn draw_text(frame: &mut VideoFrame, left: usize, top: usize, scale: usize, text: &str) {
    let width = frame.width_usize();
    let height = frame.height_usize();
    let box_right = (left + text_width(text, scale)).min(width);
    let box_bottom = (top + text_height(scale)).min(height);
    if left >= box_right || top >= box_bottom {
        return;
    }
    // The black box behind the text keeps it readable over the colour bars.
    for row in top..box_bottom {
        frame.y[row * width + left..row * width + box_right].fill(LUMA_BLACK);
    }
    let chroma_width = width / 2;
    for row in top / 2..box_bottom.div_ceil(2).min(height / 2) {
        let span = row * chroma_width + left / 2..row * chroma_width + box_right.div_ceil(2);
        frame.u[span.clone()].fill(CHROMA_NEUTRAL);
        frame.v[span].fill(CHROMA_NEUTRAL);
    }
    for (index, character) in text.chars().enumerate() {
        let glyph_left = left + (GLYPH_SPACING + index * (GLYPH_WIDTH + GLYPH_SPACING)) * scale;
        let glyph_top = top + scale;
        for (glyph_row, bits) in glyph(character).iter().enumerate() {
            for glyph_column in 0..GLYPH_WIDTH {
                if bits & (0x10 >> glyph_column) == 0 {
                    continue;
                }
                let x0 = glyph_left + glyph_column * scale;
                let y0 = glyph_top + glyph_row * scale;
                for y in y0..(y0 + scale).min(box_bottom) {
                    for x in x0..(x0 + scale).min(box_right) {
                        frame.y[y * width + x] = LUMA_WHITE;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn lit_pixels(frame: &VideoFrame) -> usize {
        frame.y.iter().filter(|&&luma| luma == LUMA_WHITE).count()
    }

    #[test]
    fn digits_are_distinct_and_drawn_scaled() {
        let digits: Vec<_> = ('0'..='9').map(glyph).collect();
        for (i, a) in digits.iter().enumerate() {
            assert!(a.iter().any(|&row| row != 0), "digit {i} is blank");
            for b in &digits[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let mut frame = VideoFrame::black(64, 64, 0, SystemTime::UNIX_EPOCH).unwrap();
        draw_text(&mut frame, 0, 0, 1, "1");
        let lit_once = lit_pixels(&frame);
        let bits: u32 = glyph('1').iter().map(|row| row.count_ones()).sum();
        assert_eq!(lit_once, bits as usize);

        let mut frame = VideoFrame::black(64, 64, 0, SystemTime::UNIX_EPOCH).unwrap();
        draw_text(&mut frame, 0, 0, 2, "1");
        assert_eq!(lit_pixels(&frame), 4 * bits as usize);
    }

    #[test]
    fn text_is_clipped_at_the_frame_edges() {
        let mut frame = VideoFrame::black(64, 64, 0, SystemTime::UNIX_EPOCH).unwrap();
        draw_text(&mut frame, 60, 60, 4, "#0123456789:.-");
        draw_text(&mut frame, 100, 100, 4, "8");
        assert!(frame.validate().is_ok());
    }
}
