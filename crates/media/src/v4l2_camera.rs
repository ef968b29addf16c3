//! A V4L2 camera (USB webcam on the Pi) as a [`VideoSource`], through `linuxvideo` (pure Rust).
//!
//! Opening picks the camera's YUYV or MJPEG mode nearest to the wanted size and rate
//! ([`choose_mode`], a pure function so it is tested without a camera) and logs the choice.
//! Frames come from a [`CameraStream`]: the real one wraps `linuxvideo`'s mmap stream, tests
//! feed recorded frames. A camera that stops delivering (unplugged) makes `capture()` fail
//! with [`MediaError::CameraLost`]; the next call opens it afresh.

use crate::{MAX_FPS, MediaError, VideoFormat, VideoFrame, VideoSource, mjpeg, yuyv};
use linuxvideo::format::{FrameIntervals, FrameSizes, PixFormat};
use linuxvideo::{BufType, CapabilityFlags, Device, Fract};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The camera's default device node.
pub const DEFAULT_CAMERA: &str = "/dev/video0";

/// Corrupt frames (USB hiccups, half-written MJPEG) in a row that are skipped before
/// `capture()` gives up.
const MAX_BAD_FRAMES_IN_A_ROW: u32 = 30;

/// The camera pixel formats we convert to I420.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CameraPixelFormat {
    /// Packed 4:2:2, uncompressed: no decoding cost, preferred when it reaches the rate.
    Yuyv,
    /// One JPEG per frame: what webcams send at larger sizes and rates.
    Mjpeg,
}

impl CameraPixelFormat {
    fn fourcc(self) -> linuxvideo::format::PixelFormat {
        match self {
            CameraPixelFormat::Yuyv => linuxvideo::format::PixelFormat::YUYV,
            CameraPixelFormat::Mjpeg => linuxvideo::format::PixelFormat::MJPG,
        }
    }

    fn from_fourcc(fourcc: linuxvideo::format::PixelFormat) -> Option<Self> {
        if fourcc == linuxvideo::format::PixelFormat::YUYV {
            Some(CameraPixelFormat::Yuyv)
        } else if fourcc == linuxvideo::format::PixelFormat::MJPG {
            Some(CameraPixelFormat::Mjpeg)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CameraPixelFormat::Yuyv => "YUYV",
            CameraPixelFormat::Mjpeg => "MJPEG",
        }
    }
}

/// The frame rates a camera offers at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameRates {
    /// These rates exactly (frames per second, rounded).
    List(Vec<u32>),
    /// Any rate in between.
    Range { min: u32, max: u32 },
}

impl FrameRates {
    /// The offered rate nearest to `wanted` (ties go to the higher rate).
    fn nearest(&self, wanted: u32) -> Option<u32> {
        match self {
            FrameRates::List(rates) => rates
                .iter()
                .copied()
                .filter(|&fps| fps > 0)
                .min_by_key(|&fps| (fps.abs_diff(wanted), u32::MAX - fps)),
            FrameRates::Range { min, max } if min <= max && *max > 0 => {
                Some(wanted.clamp((*min).max(1), *max))
            }
            FrameRates::Range { .. } => None,
        }
    }
}

impl std::fmt::Display for FrameRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameRates::List(rates) => {
                let rates: Vec<String> = rates.iter().map(u32::to_string).collect();
                write!(f, "{} fps", rates.join("/"))
            }
            FrameRates::Range { min, max } => write!(f, "{min}-{max} fps"),
        }
    }
}

/// One size a camera offers in one pixel format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraMode {
    pub pixel_format: CameraPixelFormat,
    pub width: u32,
    pub height: u32,
    pub rates: FrameRates,
}

/// The mode [`choose_mode`] picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenMode {
    pub pixel_format: CameraPixelFormat,
    pub format: VideoFormat,
}

impl std::fmt::Display for ChosenMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.pixel_format.name(), self.format)
    }
}

/// Picks the offered mode nearest to `wanted`: modes that reach at least 3/4 of the wanted rate
/// first (a sharp picture at 7 fps is worse for a doorbell than a smaller one at 30), then the
/// size closest in area (then in width and height), then the rate closest to the wanted one,
/// then YUYV over MJPEG (no decoding). Sizes the encoder cannot take (odd, too small or too
/// large) are skipped. `None` when nothing usable is offered.
pub fn choose_mode(offered: &[CameraMode], wanted: VideoFormat) -> Option<ChosenMode> {
    let wanted_area = u64::from(wanted.width) * u64::from(wanted.height);
    offered
        .iter()
        .filter_map(|mode| {
            let fps = mode.rates.nearest(wanted.fps)?.min(MAX_FPS);
            let format = VideoFormat {
                width: mode.width,
                height: mode.height,
                fps,
            };
            format.validate().ok()?;
            let area = u64::from(mode.width) * u64::from(mode.height);
            let too_slow = fps.saturating_mul(4) < wanted.fps.saturating_mul(3);
            let key = (
                too_slow,
                area.abs_diff(wanted_area),
                mode.width.abs_diff(wanted.width) + mode.height.abs_diff(wanted.height),
                fps.abs_diff(wanted.fps),
                mode.pixel_format,
            );
            Some((
                key,
                ChosenMode {
                    pixel_format: mode.pixel_format,
                    format,
                },
            ))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, chosen)| chosen)
}

/// Where a camera's raw frames come from. The real one is the V4L2 mmap stream; tests use
/// recorded frames.
pub trait CameraStream: Send + 'static {
    /// Waits for the next frame and hands its bytes to `frame` with the driver's "corrupt"
    /// flag. An error means the stream is gone (unplugged camera: `ENODEV`).
    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8], bool)) -> io::Result<()>;
}

/// The longest wait for one frame: a camera that sends nothing for this long counts as lost
/// (some stall without reporting an error).
const FRAME_TIMEOUT_SECONDS: i64 = 3;

/// `linuxvideo`'s mmap stream.
struct LinuxVideoStream(linuxvideo::stream::ReadStream);

impl CameraStream for LinuxVideoStream {
    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8], bool)) -> io::Result<()> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        use std::os::fd::AsFd;
        let timeout = Timespec {
            tv_sec: FRAME_TIMEOUT_SECONDS,
            tv_nsec: 0,
        };
        let (ready, revents) = {
            let fd = self.0.as_fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            let ready = poll(&mut fds, Some(&timeout)).map_err(io::Error::from)?;
            (ready, fds[0].revents())
        };
        if ready == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no frame for {FRAME_TIMEOUT_SECONDS} s"),
            ));
        }
        if revents.contains(PollFlags::ERR) {
            // What an unplugged camera reports before DQBUF says ENODEV.
            return Err(io::Error::from_raw_os_error(19));
        }
        self.0.dequeue(|buffer| {
            frame(&buffer, buffer.is_error());
            Ok(())
        })
    }
}

/// A camera delivering I420 frames.
pub struct V4l2Camera {
    device: String,
    mode: ChosenMode,
    bytes_per_line: usize,
    stream: Box<dyn CameraStream>,
    sequence: u64,
}

impl V4l2Camera {
    /// Opens `device`, negotiates the mode nearest to `wanted` and starts streaming.
    pub fn open(device: &Path, wanted: VideoFormat) -> Result<Self, MediaError> {
        let name = device.display().to_string();
        let camera_error = |problem: String| MediaError::Camera {
            device: name.clone(),
            problem,
        };
        let handle = Device::open(device).map_err(|e| camera_error(open_problem(&e)))?;
        check_is_camera(&handle).map_err(camera_error)?;
        let (offered, others) = offered_modes_guarded(&handle, Some(wanted))
            .map_err(|e| camera_error(format!("cannot list its formats: {e}")))?;
        let Some(chosen) = choose_mode(&offered, wanted) else {
            return Err(camera_error(format!(
                "offers no YUYV or MJPEG mode the encoder can use (it offers {}); use a UVC \
                 webcam, and see `doorbell devices`",
                if others.is_empty() {
                    "nothing".to_owned()
                } else {
                    others.join(", ")
                }
            )));
        };
        let requested = PixFormat::new(
            chosen.format.width,
            chosen.format.height,
            chosen.pixel_format.fourcc(),
        );
        let capture = handle
            .video_capture(requested)
            .map_err(|e| camera_error(busy_or(&e, "refused the format")))?;
        let actual = capture.format();
        let pixel_format =
            CameraPixelFormat::from_fourcc(actual.pixel_format()).ok_or_else(|| {
                camera_error(format!(
                    "switched to pixel format {} instead of {}",
                    actual.pixel_format(),
                    chosen.pixel_format.name()
                ))
            })?;
        let mut format = VideoFormat {
            width: actual.width(),
            height: actual.height(),
            fps: chosen.format.fps,
        };
        format.validate()?;
        let bytes_per_line = match pixel_format {
            CameraPixelFormat::Yuyv => {
                usize::try_from(actual.bytes_per_line()).unwrap_or(usize::MAX)
            }
            CameraPixelFormat::Mjpeg => 0,
        };
        match capture.set_frame_interval(Fract::new(1, format.fps)) {
            Ok(interval) => {
                if let Some(fps) = fps_of_interval(&interval) {
                    format.fps = fps.clamp(1, MAX_FPS);
                }
            }
            // Some drivers have a fixed rate; capture still works.
            Err(e) => tracing::warn!(device = %name, "cannot set the frame rate: {e}"),
        }
        let stream = capture
            .into_stream()
            .map_err(|e| camera_error(busy_or(&e, "cannot start streaming")))?;
        let mode = ChosenMode {
            pixel_format,
            format,
        };
        tracing::info!(device = %name, wanted = %wanted, chosen = %mode, "camera opened");
        Ok(Self::from_stream(
            name,
            mode,
            bytes_per_line,
            Box::new(LinuxVideoStream(stream)),
        ))
    }

    /// A camera over any [`CameraStream`] (recorded frames in tests). `bytes_per_line` is the
    /// YUYV row stride (ignored for MJPEG).
    pub fn from_stream(
        device: impl Into<String>,
        mode: ChosenMode,
        bytes_per_line: usize,
        stream: Box<dyn CameraStream>,
    ) -> Self {
        Self {
            device: device.into(),
            mode,
            bytes_per_line,
            stream,
            sequence: 0,
        }
    }

    /// The mode negotiated with the camera.
    pub fn mode(&self) -> ChosenMode {
        self.mode
    }
}

impl VideoSource for V4l2Camera {
    fn format(&self) -> VideoFormat {
        self.mode.format
    }

    fn is_live(&self) -> bool {
        true
    }

    fn capture(&mut self) -> Result<VideoFrame, MediaError> {
        let format = self.mode.format;
        let mut last_problem = String::new();
        for _ in 0..MAX_BAD_FRAMES_IN_A_ROW {
            let mut frame = VideoFrame::black(
                format.width,
                format.height,
                self.sequence,
                SystemTime::now(),
            )?;
            let mut converted = Err(MediaError::BadCameraFrame("no frame".into()));
            let (pixel_format, bytes_per_line) = (self.mode.pixel_format, self.bytes_per_line);
            self.stream
                .next_frame(&mut |data, corrupt| {
                    converted = if corrupt {
                        Err(MediaError::BadCameraFrame(
                            "the driver flagged the frame as corrupt".into(),
                        ))
                    } else {
                        match pixel_format {
                            CameraPixelFormat::Yuyv => {
                                yuyv::yuyv_to_i420(data, bytes_per_line, &mut frame)
                            }
                            CameraPixelFormat::Mjpeg => mjpeg::mjpeg_to_i420(data, &mut frame),
                        }
                    };
                })
                .map_err(|e| MediaError::CameraLost {
                    device: self.device.clone(),
                    reason: e.to_string(),
                })?;
            match converted {
                Ok(()) => {
                    self.sequence += 1;
                    return Ok(frame);
                }
                Err(problem) => {
                    tracing::debug!(device = %self.device, "skipping a camera frame: {problem}");
                    last_problem = problem.to_string();
                }
            }
        }
        Err(MediaError::CameraLost {
            device: self.device.clone(),
            reason: format!(
                "{MAX_BAD_FRAMES_IN_A_ROW} unusable frames in a row, the last: {last_problem}"
            ),
        })
    }
}

/// Frames per second of a V4L2 frame interval (seconds per frame), rounded.
fn fps_of_interval(interval: &Fract) -> Option<u32> {
    let (num, den) = (interval.numerator(), interval.denominator());
    (num != 0).then(|| (den + num / 2) / num)
}

/// What to tell the user when opening the device node fails.
fn open_problem(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => {
            "not found: is the camera plugged in? `doorbell devices` lists the cameras".into()
        }
        io::ErrorKind::PermissionDenied => "permission denied: add the user running the doorbell \
             to the `video` group (sudo usermod -aG video USER) and start it again"
            .into(),
        _ => busy_or(error, "cannot be opened"),
    }
}

/// `EBUSY` gets its own explanation; anything else is `what: error`.
fn busy_or(error: &io::Error, what: &str) -> String {
    if error.raw_os_error() == Some(libc_ebusy()) {
        "is busy: another program is using it (another doorbell agent, a video call app, \
         motion?); stop that program or choose another camera"
            .into()
    } else {
        format!("{what}: {error}")
    }
}

/// `EBUSY` on Linux (all architectures).
const fn libc_ebusy() -> i32 {
    16
}

/// Only video capture devices are cameras (the Pi's codec and ISP nodes are not).
fn check_is_camera(device: &Device) -> Result<(), String> {
    let caps = device
        .capabilities()
        .map_err(|e| format!("cannot query it: {e}"))?;
    if caps
        .device_capabilities()
        .contains(CapabilityFlags::VIDEO_CAPTURE)
    {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a camera (no video capture); `doorbell devices` lists the cameras",
            caps.card()
        ))
    }
}

/// The YUYV/MJPEG modes a device offers, and the names of its other formats. Stepwise or
/// continuous sizes become the size nearest `wanted` plus the two ends of the range.
fn offered_modes(
    device: &Device,
    wanted: Option<VideoFormat>,
) -> io::Result<(Vec<CameraMode>, Vec<String>)> {
    let mut modes = Vec::new();
    let mut others = Vec::new();
    for desc in device.formats(BufType::VIDEO_CAPTURE) {
        let desc = desc?;
        let Some(pixel_format) = CameraPixelFormat::from_fourcc(desc.pixel_format()) else {
            others.push(format!("{} ({})", desc.pixel_format(), desc.description()));
            continue;
        };
        let sizes: Vec<(u32, u32)> = match device.frame_sizes(desc.pixel_format())? {
            FrameSizes::Discrete(list) => list.iter().map(|s| (s.width(), s.height())).collect(),
            FrameSizes::Stepwise(range) | FrameSizes::Continuous(range) => {
                let mut sizes = vec![
                    (range.min_width(), range.min_height()),
                    (range.max_width(), range.max_height()),
                ];
                if let Some(w) = wanted {
                    let fit = |want: u32, min: u32, max: u32, step: u32| {
                        let clamped = want.clamp(min, max.max(min));
                        let step = step.max(1);
                        min + (clamped - min) / step * step
                    };
                    sizes.push((
                        fit(
                            w.width,
                            range.min_width(),
                            range.max_width(),
                            range.step_width(),
                        ),
                        fit(
                            w.height,
                            range.min_height(),
                            range.max_height(),
                            range.step_height(),
                        ),
                    ));
                }
                sizes
            }
        };
        for (width, height) in sizes {
            let rates = match device.frame_intervals(desc.pixel_format(), width, height) {
                Ok(FrameIntervals::Discrete(list)) => FrameRates::List(
                    list.iter()
                        .filter_map(|i| fps_of_interval(i.fract()))
                        .collect(),
                ),
                Ok(FrameIntervals::Stepwise(range) | FrameIntervals::Continuous(range)) => {
                    FrameRates::Range {
                        // The longest interval is the lowest rate.
                        min: fps_of_interval(range.max()).unwrap_or(1),
                        max: fps_of_interval(range.min()).unwrap_or(MAX_FPS),
                    }
                }
                // Drivers without interval enumeration: assume they can do the usual rates.
                Err(_) => FrameRates::Range { min: 1, max: 30 },
            };
            modes.push(CameraMode {
                pixel_format,
                width,
                height,
                rates,
            });
        }
    }
    Ok((modes, others))
}

/// [`offered_modes`], with a driver answer that `linuxvideo` does not expect (it asserts on
/// some) turned into an error instead of a crash of the agent.
fn offered_modes_guarded(
    device: &Device,
    wanted: Option<VideoFormat>,
) -> io::Result<(Vec<CameraMode>, Vec<String>)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        offered_modes(device, wanted)
    }))
    .unwrap_or_else(|_| Err(io::Error::other("the driver's format list is malformed")))
}

/// One camera as `doorbell devices` shows it.
#[derive(Debug, Clone)]
pub struct CameraInfo {
    pub path: PathBuf,
    pub name: String,
    pub driver: String,
    /// The YUYV/MJPEG modes, or why they could not be listed.
    pub modes: Result<Vec<CameraMode>, String>,
    /// Formats the agent cannot use.
    pub other_formats: Vec<String>,
}

/// Every video capture device under /dev (other V4L2 nodes, such as the Pi's codecs, are left
/// out). Devices that cannot be opened are listed with the reason.
pub fn list_cameras() -> Vec<CameraInfo> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir("/dev") {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .and_then(|name| name.strip_prefix("video"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    // video2 before video10.
    paths.sort_by_key(|p| {
        p.to_str()
            .and_then(|s| s.strip_prefix("/dev/video"))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    paths
        .into_iter()
        .filter_map(|path| {
            let device = match Device::open(&path) {
                Ok(device) => device,
                Err(e) => {
                    return Some(CameraInfo {
                        modes: Err(open_problem(&e)),
                        path,
                        name: String::new(),
                        driver: String::new(),
                        other_formats: Vec::new(),
                    });
                }
            };
            let caps = device.capabilities().ok()?;
            if !caps
                .device_capabilities()
                .contains(CapabilityFlags::VIDEO_CAPTURE)
            {
                return None;
            }
            let (modes, other_formats) = match offered_modes_guarded(&device, None) {
                Ok((modes, others)) => (Ok(modes), others),
                Err(e) => (Err(format!("cannot list its formats: {e}")), Vec::new()),
            };
            Some(CameraInfo {
                name: caps.card().to_owned(),
                driver: caps.driver().to_owned(),
                path,
                modes,
                other_formats,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_named_with_what_to_check() {
        let wanted = VideoFormat {
            width: 640,
            height: 480,
            fps: 30,
        };
        let error = match V4l2Camera::open(Path::new("/dev/video-doorbell-test-none"), wanted) {
            Ok(_) => panic!("a missing camera opened"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("/dev/video-doorbell-test-none"), "{error}");
        assert!(error.contains("plugged in"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_camera_is_refused() {
        let error = match V4l2Camera::open(
            Path::new("/dev/null"),
            VideoFormat {
                width: 640,
                height: 480,
                fps: 30,
            },
        ) {
            Ok(_) => panic!("/dev/null opened as a camera"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("/dev/null"), "{error}");
    }

    #[test]
    fn interval_to_fps_rounds_and_refuses_zero() {
        assert_eq!(fps_of_interval(&Fract::new(1, 30)), Some(30));
        assert_eq!(fps_of_interval(&Fract::new(1001, 30000)), Some(30));
        assert_eq!(fps_of_interval(&Fract::new(2, 15)), Some(8));
        assert_eq!(fps_of_interval(&Fract::new(0, 1)), None);
    }
}
