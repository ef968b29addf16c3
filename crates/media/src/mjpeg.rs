//! MJPEG (one JPEG per frame, what USB webcams send at higher sizes and rates) → I420, decoded
//! in pure Rust (`zune-jpeg`).
//!
//! The decoder hands back the image's own Y/Cb/Cr (no trip through RGB), upsampled to one
//! triple per pixel. Those are full range (JFIF), the encoder and browsers expect limited range,
//! so every sample is rescaled (Y 0..=255 → 16..=235, Cb/Cr 0..=255 → 16..=240) and the chroma
//! of each 2x2 block averaged.

use crate::{MediaError, VideoFrame};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Start of image.
const SOI: [u8; 2] = [0xFF, 0xD8];
/// An APP0 segment saying "AVI1": the MJPEG convention that frames without Huffman tables use
/// the standard ones of JPEG Annex K.3. Many webcams leave the tables out of every frame.
const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00];
const MARKER_DHT: u8 = 0xC4;
const MARKER_SOS: u8 = 0xDA;

/// Decodes one MJPEG frame into `out`, whose size must be the JPEG's size.
pub fn mjpeg_to_i420(jpeg: &[u8], out: &mut VideoFrame) -> Result<(), MediaError> {
    out.validate()?;
    let patched;
    let data = if has_huffman_tables(jpeg)? {
        jpeg
    } else {
        patched = with_default_tables_marker(jpeg);
        &patched
    };
    let bad = |e: &dyn std::fmt::Display| {
        MediaError::BadCameraFrame(format!("MJPEG frame does not decode: {e}"))
    };
    // Limits from the expected size, so a corrupt header cannot make us allocate gigabytes.
    // The decoder fills a truncated frame (USB hiccup) with grey; better drop it.
    if !has_end_marker(jpeg) {
        return Err(MediaError::BadCameraFrame(
            "MJPEG frame is truncated (no end-of-image marker)".into(),
        ));
    }
    let options = DecoderOptions::default()
        .set_max_width(out.width_usize())
        .set_max_height(out.height_usize())
        .jpeg_set_out_colorspace(ColorSpace::YCbCr);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(|e| bad(&e))?;
    let info = decoder
        .info()
        .ok_or_else(|| MediaError::BadCameraFrame("MJPEG frame has no header".into()))?;
    if u32::from(info.width) != out.width || u32::from(info.height) != out.height {
        return Err(MediaError::BadCameraFrame(format!(
            "MJPEG frame is {}x{}, the camera was set to {}x{}",
            info.width, info.height, out.width, out.height
        )));
    }
    let grey = decoder.input_colorspace() == Some(ColorSpace::Luma);
    let components = match decoder.input_colorspace() {
        Some(ColorSpace::Luma) => 1,
        Some(ColorSpace::YCbCr) => 3,
        other => {
            return Err(MediaError::BadCameraFrame(format!(
                "MJPEG frame has colour space {other:?}; only YCbCr and greyscale are supported"
            )));
        }
    };
    if grey {
        decoder.set_options(options.jpeg_set_out_colorspace(ColorSpace::Luma));
    }
    // A decoder bug on a corrupt frame must cost one frame, not the agent.
    let pixels = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.decode()))
        .map_err(|_| MediaError::BadCameraFrame("the MJPEG decoder crashed on a frame".into()))?
        .map_err(|e| bad(&e))?;
    if pixels.len() != out.y.len() * components {
        return Err(MediaError::BadCameraFrame(format!(
            "MJPEG decoder returned {} bytes for {}x{}",
            pixels.len(),
            out.width,
            out.height
        )));
    }
    if grey {
        grey_to_i420(&pixels, out);
    } else {
        ycbcr444_to_i420(&pixels, out);
    }
    Ok(())
}

/// Full-range luma → limited range: `16 + round(y * 219 / 255)`.
pub fn full_to_limited_luma(y: u8) -> u8 {
    (16 + (219 * u32::from(y) + 127) / 255) as u8
}

/// Full-range chroma → limited range: `128 + round((c - 128) * 224 / 255)`.
pub fn full_to_limited_chroma(c: u8) -> u8 {
    // (224c - 224*128 + 128*255 + 127) / 255, all terms non-negative.
    ((224 * u32::from(c) + 4095) / 255) as u8
}

/// Lookup tables for the two range conversions (a division per sample is measurably slower).
struct RangeTables {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl RangeTables {
    const fn new() -> Self {
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        let mut i = 0;
        while i < 256 {
            luma[i] = (16 + (219 * i as u32 + 127) / 255) as u8;
            chroma[i] = ((224 * i as u32 + 4095) / 255) as u8;
            i += 1;
        }
        Self { luma, chroma }
    }
}

static RANGE: RangeTables = RangeTables::new();

/// Interleaved full-range Y Cb Cr (one triple per pixel) → limited-range I420.
fn ycbcr444_to_i420(pixels: &[u8], out: &mut VideoFrame) {
    let width = out.width_usize();
    let chroma_width = width / 2;
    for (y_out, ycc) in out.y.iter_mut().zip(pixels.chunks_exact(3)) {
        *y_out = RANGE.luma[usize::from(ycc[0])];
    }
    let row = width * 3;
    for (pair, two_rows) in pixels.chunks_exact(2 * row).enumerate() {
        let (top, bottom) = two_rows.split_at(row);
        let u_row = &mut out.u[pair * chroma_width..][..chroma_width];
        let v_row = &mut out.v[pair * chroma_width..][..chroma_width];
        for (i, (t, b)) in top.chunks_exact(6).zip(bottom.chunks_exact(6)).enumerate() {
            u_row[i] = RANGE.chroma[usize::from(average4(t[1], t[4], b[1], b[4]))];
            v_row[i] = RANGE.chroma[usize::from(average4(t[2], t[5], b[2], b[5]))];
        }
    }
}

fn grey_to_i420(pixels: &[u8], out: &mut VideoFrame) {
    for (y_out, &grey) in out.y.iter_mut().zip(pixels) {
        *y_out = RANGE.luma[usize::from(grey)];
    }
    out.u.fill(128);
    out.v.fill(128);
}

/// Mean of four samples, rounding half up.
fn average4(a: u8, b: u8, c: u8, d: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) >> 2) as u8
}

/// Whether a DHT segment comes before the first scan. Walks the marker segments only (never
/// the entropy-coded data).
fn has_huffman_tables(jpeg: &[u8]) -> Result<bool, MediaError> {
    if !jpeg.starts_with(&SOI) {
        return Err(MediaError::BadCameraFrame(
            "MJPEG frame does not start with a JPEG header".into(),
        ));
    }
    let mut at = SOI.len();
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return Err(MediaError::BadCameraFrame(format!(
                "MJPEG frame has garbage at byte {at} of its header"
            )));
        }
        let marker = jpeg[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        match marker {
            MARKER_DHT => return Ok(true),
            MARKER_SOS => return Ok(false),
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        at += 2 + length;
    }
    Err(MediaError::BadCameraFrame(
        "MJPEG frame ends before its image data".into(),
    ))
}

/// Whether the end-of-image marker is near the end. Cameras pad frames (usually with zeros),
/// and entropy-coded data cannot contain the marker (0xFF is always stuffed there).
fn has_end_marker(jpeg: &[u8]) -> bool {
    const EOI: [u8; 2] = [0xFF, 0xD9];
    const PADDING_SEARCHED: usize = 4096;
    let tail = &jpeg[jpeg.len().saturating_sub(PADDING_SEARCHED)..];
    tail.windows(2).any(|w| w == EOI)
}

/// The frame with an AVI1 marker right after SOI, so the decoder uses the standard tables.
fn with_default_tables_marker(jpeg: &[u8]) -> Vec<u8> {
    let mut patched = Vec::with_capacity(jpeg.len() + AVI1_APP0.len());
    patched.extend_from_slice(&SOI);
    patched.extend_from_slice(&AVI1_APP0);
    patched.extend_from_slice(&jpeg[SOI.len()..]);
    patched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_conversion_hits_the_limited_range_ends_and_keeps_neutral_grey() {
        assert_eq!(full_to_limited_luma(0), 16);
        assert_eq!(full_to_limited_luma(255), 235);
        assert_eq!(full_to_limited_chroma(0), 16);
        assert_eq!(full_to_limited_chroma(128), 128);
        assert_eq!(full_to_limited_chroma(255), 240);
        for v in 0..=255u8 {
            assert_eq!(RANGE.luma[usize::from(v)], full_to_limited_luma(v));
            assert_eq!(RANGE.chroma[usize::from(v)], full_to_limited_chroma(v));
        }
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let mut frame = VideoFrame::black(16, 16, 0, std::time::SystemTime::UNIX_EPOCH).unwrap();
        for junk in [
            &b""[..],
            &b"\xFF\xD8"[..],
            &b"\xFF\xD8\xFF\xE0\xFF\xFF"[..],
            &b"\xFF\xD8\x00\x00\x00\x00"[..],
            &b"not a jpeg"[..],
            &b"\xFF\xD8\xFF\xC4\x00\x02\xFF\xDA\x00\x02"[..],
        ] {
            assert!(mjpeg_to_i420(junk, &mut frame).is_err(), "{junk:?}");
        }
    }
}
