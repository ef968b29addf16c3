//! Raw video: the format a source produces and one I420 frame.

use std::time::SystemTime;

use crate::MediaError;

/// Luma of black in limited-range (BT.601 "studio swing") video.
pub(crate) const LUMA_BLACK: u8 = 16;
/// Luma of white in limited-range video.
pub(crate) const LUMA_WHITE: u8 = 235;
/// Chroma of every grey (no colour).
pub(crate) const CHROMA_NEUTRAL: u8 = 128;

// The bounds are the workspace's one set (doorbell_protocol::limits): the agent's settings
// and this pipeline accept the same formats.
pub use doorbell_protocol::limits::{
    MAX_VIDEO_FPS as MAX_FPS, MAX_VIDEO_HEIGHT as MAX_HEIGHT, MAX_VIDEO_WIDTH as MAX_WIDTH,
    MIN_VIDEO_HEIGHT as MIN_HEIGHT, MIN_VIDEO_WIDTH as MIN_WIDTH,
};

/// Size and rate of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl VideoFormat {
    /// What every encoder refuses at setup: a format sources cannot make, a bitrate out of the
    /// workspace's range.
    pub fn check_encoder(&self, bitrate_bps: u32) -> Result<(), MediaError> {
        use doorbell_protocol::limits::{MAX_VIDEO_BITRATE_BPS, MIN_VIDEO_BITRATE_BPS};
        self.validate()?;
        if !(MIN_VIDEO_BITRATE_BPS..=MAX_VIDEO_BITRATE_BPS).contains(&bitrate_bps) {
            return Err(MediaError::OutOfRange {
                name: "video bitrate (bit/s)",
                value: i64::from(bitrate_bps),
                hint: "use 50000 to 50000000 (e.g. 1000000 for 640x480@30)",
            });
        }
        Ok(())
    }

    /// Checks that sources and encoders can use this format: even sizes within
    /// [`MIN_WIDTH`]x[`MIN_HEIGHT`]..=[`MAX_WIDTH`]x[`MAX_HEIGHT`], 1..=[`MAX_FPS`] fps.
    pub fn validate(&self) -> Result<(), MediaError> {
        let reason = if self.width & 1 != 0 || self.height & 1 != 0 {
            Some("width and height must be even (I420 halves them for chroma)")
        } else if self.width < MIN_WIDTH || self.height < MIN_HEIGHT {
            Some("too small")
        } else if self.width > MAX_WIDTH || self.height > MAX_HEIGHT {
            Some("too large for the H.264 encoder")
        } else if self.fps == 0 || self.fps > MAX_FPS {
            Some("frame rate out of range")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(MediaError::InvalidFormat {
                width: self.width,
                height: self.height,
                fps: self.fps,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The time between two frames.
    pub fn frame_interval(&self) -> std::time::Duration {
        // Nanoseconds rounded up, so 30 fps is exactly 3000 ticks of a 90 kHz RTP clock.
        let fps = u64::from(self.fps.max(1));
        std::time::Duration::from_nanos(1_000_000_000_u64.div_ceil(fps))
    }
}

impl Default for VideoFormat {
    /// The default: 640x480 at 30 fps.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

impl std::fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.fps)
    }
}

/// One I420 frame (planar Y, U, V; U/V at half width and height, even sizes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub sequence: u64,
    pub capture_time: SystemTime,
}

impl VideoFrame {
    /// A black frame of the given (even, non-zero) size.
    pub fn black(
        width: u32,
        height: u32,
        sequence: u64,
        capture_time: SystemTime,
    ) -> Result<Self, MediaError> {
        if !is_even_size(width, height) {
            return Err(MediaError::InvalidFrame(format!(
                "size {width}x{height} is not even and non-zero"
            )));
        }
        let luma = plane_len(width, height)?;
        let chroma = plane_len(width / 2, height / 2)?;
        Ok(Self {
            width,
            height,
            y: vec![LUMA_BLACK; luma],
            u: vec![CHROMA_NEUTRAL; chroma],
            v: vec![CHROMA_NEUTRAL; chroma],
            sequence,
            capture_time,
        })
    }

    /// [`VideoFrame::validate`], and the frame is of `format`'s size (an encoder's).
    pub fn check_format(&self, format: VideoFormat) -> Result<(), MediaError> {
        self.validate()?;
        if self.width != format.width || self.height != format.height {
            return Err(MediaError::InvalidFrame(format!(
                "frame is {}x{} but the encoder was made for {format}; make a new encoder for a new size",
                self.width, self.height
            )));
        }
        Ok(())
    }

    /// Checks that the size is even and non-zero and the planes have exactly the right lengths,
    /// so code indexing into them cannot go out of bounds.
    pub fn validate(&self) -> Result<(), MediaError> {
        if !is_even_size(self.width, self.height) {
            return Err(MediaError::InvalidFrame(format!(
                "size {}x{} is not even and non-zero",
                self.width, self.height
            )));
        }
        let luma = plane_len(self.width, self.height)?;
        let chroma = plane_len(self.width / 2, self.height / 2)?;
        if self.y.len() != luma || self.u.len() != chroma || self.v.len() != chroma {
            return Err(MediaError::InvalidFrame(format!(
                "planes are {}/{}/{} bytes, {}x{} needs {luma}/{chroma}/{chroma}",
                self.y.len(),
                self.u.len(),
                self.v.len(),
                self.width,
                self.height
            )));
        }
        Ok(())
    }

    /// Width as an index type (u32 always fits in usize on the platforms we build for).
    pub(crate) fn width_usize(&self) -> usize {
        self.width as usize
    }

    /// Height as an index type.
    pub(crate) fn height_usize(&self) -> usize {
        self.height as usize
    }
}

/// Non-zero and even in both directions, as I420 needs.
fn is_even_size(width: u32, height: u32) -> bool {
    width != 0 && height != 0 && width & 1 == 0 && height & 1 == 0
}

fn plane_len(width: u32, height: u32) -> Result<usize, MediaError> {
    usize::try_from(u64::from(width) * u64::from(height))
        .map_err(|_| MediaError::InvalidFrame(format!("size {width}x{height} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_validated() {
        let ok = VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        };
        assert!(ok.validate().is_ok());
        assert_eq!(VideoFormat::default(), ok);
        assert_eq!(ok.to_string(), "640x480@30");
        for bad in [
            VideoFormat { width: 641, ..ok },
            VideoFormat { height: 481, ..ok },
            VideoFormat { width: 32, ..ok },
            VideoFormat { height: 0, ..ok },
            VideoFormat { width: 4000, ..ok },
            VideoFormat { fps: 0, ..ok },
            VideoFormat { fps: 121, ..ok },
        ] {
            assert!(
                matches!(bad.validate(), Err(MediaError::InvalidFormat { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn thirty_fps_interval_is_exactly_3000_ticks_at_90_khz() {
        let format = VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        };
        let interval = format.frame_interval();
        assert_eq!(interval.as_nanos(), 33_333_334);
        assert_eq!(interval.as_nanos() * 90_000 / 1_000_000_000, 3000);
    }

    #[test]
    fn black_frame_has_consistent_planes_and_validate_catches_broken_ones() {
        let frame = VideoFrame::black(320, 240, 7, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(frame.y.len(), 320 * 240);
        assert_eq!(frame.u.len(), 160 * 120);
        assert!(frame.validate().is_ok());
        assert!(VideoFrame::black(321, 240, 0, SystemTime::UNIX_EPOCH).is_err());

        let mut broken = frame.clone();
        broken.u.pop();
        assert!(matches!(
            broken.validate(),
            Err(MediaError::InvalidFrame(_))
        ));
        let mut odd = frame;
        odd.width = 319;
        assert!(odd.validate().is_err());
    }
}
