//! JPEG snapshots of a frame (for notifications with a picture of the visitor).

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType};

use crate::{MediaError, VideoFrame};

/// An I420 frame seen as full-range YCbCr rows, the way JFIF stores them: our frames are
/// limited range (Y 16..235, chroma 16..240), JFIF is 0..255.
struct I420Rows<'a> {
    frame: &'a VideoFrame,
    width: u16,
    height: u16,
}

fn expand_luma(luma: u8) -> u8 {
    ((i32::from(luma) - 16) * 255 / 219).clamp(0, 255) as u8
}

fn expand_chroma(chroma: u8) -> u8 {
    ((i32::from(chroma) - 128) * 255 / 224 + 128).clamp(0, 255) as u8
}

impl ImageBuffer for I420Rows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let width = self.frame.width_usize();
        let row = usize::from(y);
        let chroma_row = (row / 2) * (width / 2);
        // validate() ran before encoding, so these ranges are in bounds.
        let luma = &self.frame.y[row * width..(row + 1) * width];
        let u = &self.frame.u[chroma_row..chroma_row + width / 2];
        let v = &self.frame.v[chroma_row..chroma_row + width / 2];
        for (x, &sample) in luma.iter().enumerate() {
            buffers[0].push(expand_luma(sample));
            buffers[1].push(expand_chroma(u[x / 2]));
            buffers[2].push(expand_chroma(v[x / 2]));
        }
    }
}

/// A baseline JPEG of `frame` at `quality` (1..=100; 80 is a good snapshot).
pub fn encode_jpeg(frame: &VideoFrame, quality: u8) -> Result<Vec<u8>, MediaError> {
    frame.validate()?;
    if !(1..=100).contains(&quality) {
        return Err(MediaError::OutOfRange {
            name: "JPEG quality",
            value: i64::from(quality),
            hint: "use 1 to 100 (e.g. 80)",
        });
    }
    let too_large = || {
        MediaError::InvalidFrame(format!(
            "{}x{} is larger than JPEG's 65535x65535",
            frame.width, frame.height
        ))
    };
    let rows = I420Rows {
        frame,
        width: u16::try_from(frame.width).map_err(|_| too_large())?,
        height: u16::try_from(frame.height).map_err(|_| too_large())?,
    };
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, quality)
        .encode_image(rows)
        .map_err(|error| MediaError::Jpeg(error.to_string()))?;
    Ok(jpeg)
}
