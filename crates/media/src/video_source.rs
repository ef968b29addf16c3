//! Where video frames come from (test pattern now, cameras later).

use crate::{MediaError, VideoFormat, VideoFrame};

/// A producer of I420 frames.
pub trait VideoSource: Send + 'static {
    /// The size and rate of the frames `capture()` returns.
    fn format(&self) -> VideoFormat;
    /// true when capture() blocks until the device delivers (a camera paces itself);
    /// false for synthetic sources, which the caller paces at format().fps.
    fn is_live(&self) -> bool;
    /// The next frame.
    fn capture(&mut self) -> Result<VideoFrame, MediaError>;
}

impl VideoSource for Box<dyn VideoSource> {
    fn format(&self) -> VideoFormat {
        (**self).format()
    }
    fn is_live(&self) -> bool {
        (**self).is_live()
    }
    fn capture(&mut self) -> Result<VideoFrame, MediaError> {
        (**self).capture()
    }
}
