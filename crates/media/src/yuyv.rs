//! YUYV (packed 4:2:2, what most USB webcams send uncompressed) → I420.
//!
//! YUYV already is limited-range BT.601 like the encoder's input, so luma is copied and only the
//! chroma is halved vertically (two rows averaged, rounding half up).

use crate::{MediaError, VideoFrame};

/// Bytes per pixel in a YUYV row.
pub const YUYV_BYTES_PER_PIXEL: usize = 2;

/// Converts one YUYV image into `out`, whose size says the image's size. `bytes_per_line` is the
/// driver's row stride (at least `2 * width`; drivers may pad rows).
pub fn yuyv_to_i420(
    src: &[u8],
    bytes_per_line: usize,
    out: &mut VideoFrame,
) -> Result<(), MediaError> {
    out.validate()?;
    let width = out.width_usize();
    let height = out.height_usize();
    let row_bytes = width * YUYV_BYTES_PER_PIXEL;
    if bytes_per_line < row_bytes {
        return Err(MediaError::BadCameraFrame(format!(
            "YUYV stride {bytes_per_line} is shorter than a {width} px row ({row_bytes} bytes)"
        )));
    }
    // The last row needs no padding after it.
    let needed = bytes_per_line * (height - 1) + row_bytes;
    if src.len() < needed {
        return Err(MediaError::BadCameraFrame(format!(
            "YUYV frame has {} bytes, {width}x{height} needs {needed}",
            src.len()
        )));
    }
    let chroma_width = width / 2;
    for pair in 0..height / 2 {
        let top = &src[2 * pair * bytes_per_line..][..row_bytes];
        let bottom = &src[(2 * pair + 1) * bytes_per_line..][..row_bytes];
        let (y_top, y_bottom) = out.y[2 * pair * width..][..2 * width].split_at_mut(width);
        let u_row = &mut out.u[pair * chroma_width..][..chroma_width];
        let v_row = &mut out.v[pair * chroma_width..][..chroma_width];
        // One macropixel is Y0 U Y1 V: two pixels sharing their chroma.
        for (i, (t, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            y_top[2 * i] = t[0];
            y_top[2 * i + 1] = t[2];
            y_bottom[2 * i] = b[0];
            y_bottom[2 * i + 1] = b[2];
            u_row[i] = average2(t[1], b[1]);
            v_row[i] = average2(t[3], b[3]);
        }
    }
    Ok(())
}

/// Mean of two samples, rounding half up.
fn average2(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn short_buffers_and_strides_are_errors_not_panics() {
        let mut frame = VideoFrame::black(4, 2, 0, SystemTime::UNIX_EPOCH).unwrap();
        assert!(yuyv_to_i420(&[0; 15], 8, &mut frame).is_err());
        assert!(yuyv_to_i420(&[0; 16], 6, &mut frame).is_err());
        assert!(yuyv_to_i420(&[0; 16], 8, &mut frame).is_ok());
        // Padded rows: the last row needs no padding.
        assert!(yuyv_to_i420(&[0; 20], 12, &mut frame).is_ok());
    }

    #[test]
    fn chroma_of_two_rows_is_averaged_and_luma_copied() {
        let mut frame = VideoFrame::black(2, 2, 0, SystemTime::UNIX_EPOCH).unwrap();
        let src = [10, 100, 20, 200, 30, 101, 40, 0];
        yuyv_to_i420(&src, 4, &mut frame).unwrap();
        assert_eq!(frame.y, [10, 20, 30, 40]);
        assert_eq!(frame.u, [101]); // (100 + 101 + 1) / 2
        assert_eq!(frame.v, [100]);
    }
}
