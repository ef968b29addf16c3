//! The Pi camera path without a camera: mode negotiation on mode lists as webcams report them,
//! YUYV/MJPEG → I420 on sample frames (tests/data) checked pixel-exact against straightforward
//! reference conversions written here, and the camera source over a scripted frame stream
//! (corrupt frames skipped, an unplugged camera is an error naming the device).
//!
//! The sample frames (160x120: colour bars over a textured gradient with noise) were made in the
//! layouts a UVC webcam sends: packed YUYV 4:2:2 in limited range, and a 4:2:2 baseline JPEG,
//! once with and once without Huffman tables (many webcams leave them out).

use doorbell_media::{
    CameraMode, CameraPixelFormat, CameraStream, ChosenMode, FrameRates, MediaError, V4l2Camera,
    VideoFormat, VideoFrame, VideoSource, choose_mode, mjpeg_to_i420, yuyv_to_i420,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::SystemTime;

const W: usize = 160;
const H: usize = 120;

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blank() -> VideoFrame {
    VideoFrame::black(W as u32, H as u32, 0, SystemTime::UNIX_EPOCH).unwrap()
}

// ---- reference conversions: one pixel at a time, straight from the definitions ----

/// YUYV: Y0 U Y1 V per two pixels; I420 chroma is the mean of two rows, rounded half up.
fn reference_yuyv(src: &[u8], stride: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut y = vec![0u8; W * H];
    let mut u = vec![0u8; W * H / 4];
    let mut v = vec![0u8; W * H / 4];
    for row in 0..H {
        for col in 0..W {
            y[row * W + col] = src[row * stride + col * 2];
        }
    }
    for crow in 0..H / 2 {
        for ccol in 0..W / 2 {
            let at = |row: usize, offset: usize| f64::from(src[row * stride + ccol * 4 + offset]);
            let mean = |offset| ((at(2 * crow, offset) + at(2 * crow + 1, offset)) / 2.0).round();
            u[crow * W / 2 + ccol] = mean(1) as u8;
            v[crow * W / 2 + ccol] = mean(3) as u8;
        }
    }
    (y, u, v)
}

/// JPEG (full-range YCbCr, decoded without colour transform) → limited-range BT.601 I420:
/// Y' = 16 + Y·219/255, C' = 128 + (C−128)·224/255, chroma of each 2x2 block averaged first.
fn reference_mjpeg(jpeg: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let options = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::YCbCr);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(jpeg),
        options,
    );
    let ycc = decoder.decode().unwrap();
    assert_eq!(ycc.len(), W * H * 3);
    let sample = |row: usize, col: usize, c: usize| f64::from(ycc[(row * W + col) * 3 + c]);
    let mut y = vec![0u8; W * H];
    let mut u = vec![0u8; W * H / 4];
    let mut v = vec![0u8; W * H / 4];
    for row in 0..H {
        for col in 0..W {
            y[row * W + col] = (16.0 + sample(row, col, 0) * 219.0 / 255.0).round() as u8;
        }
    }
    for crow in 0..H / 2 {
        for ccol in 0..W / 2 {
            let mean = |c| {
                ((sample(2 * crow, 2 * ccol, c)
                    + sample(2 * crow, 2 * ccol + 1, c)
                    + sample(2 * crow + 1, 2 * ccol, c)
                    + sample(2 * crow + 1, 2 * ccol + 1, c))
                    / 4.0)
                    .round()
            };
            let limited = |c: f64| (128.0 + (c - 128.0) * 224.0 / 255.0).round() as u8;
            u[crow * W / 2 + ccol] = limited(mean(1));
            v[crow * W / 2 + ccol] = limited(mean(2));
        }
    }
    (y, u, v)
}

fn assert_planes_equal(frame: &VideoFrame, (y, u, v): (Vec<u8>, Vec<u8>, Vec<u8>)) {
    for (name, got, want) in [
        ("Y", &frame.y, &y),
        ("U", &frame.u, &u),
        ("V", &frame.v, &v),
    ] {
        if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
            panic!("{name} differs at {i}: {} != {}", got[i], want[i]);
        }
    }
}

#[test]
fn yuyv_sample_converts_pixel_exact() {
    let src = data("yuyv_160x120.raw");
    assert_eq!(src.len(), W * H * 2);
    let mut frame = blank();
    yuyv_to_i420(&src, W * 2, &mut frame).unwrap();
    assert_planes_equal(&frame, reference_yuyv(&src, W * 2));
}

#[test]
fn yuyv_with_padded_rows_gives_the_same_picture() {
    let src = data("yuyv_160x120.raw");
    let stride = W * 2 + 64;
    let mut padded = vec![0xEE; stride * H];
    for row in 0..H {
        padded[row * stride..][..W * 2].copy_from_slice(&src[row * W * 2..][..W * 2]);
    }
    let mut tight = blank();
    yuyv_to_i420(&src, W * 2, &mut tight).unwrap();
    let mut loose = blank();
    yuyv_to_i420(&padded, stride, &mut loose).unwrap();
    assert_eq!(tight, loose);
    assert_planes_equal(&loose, reference_yuyv(&padded, stride));
}

#[test]
fn mjpeg_sample_converts_pixel_exact() {
    let jpeg = data("mjpeg_160x120.jpg");
    let mut frame = blank();
    mjpeg_to_i420(&jpeg, &mut frame).unwrap();
    assert_planes_equal(&frame, reference_mjpeg(&jpeg));
}

#[test]
fn mjpeg_without_huffman_tables_decodes_like_with_them() {
    let with = data("mjpeg_160x120.jpg");
    let without = data("mjpeg_160x120_no_dht.jpg");
    assert!(
        !without.windows(2).any(|w| w == [0xFF, 0xC4]),
        "the sample still has a DHT segment"
    );
    let mut a = blank();
    mjpeg_to_i420(&with, &mut a).unwrap();
    let mut b = blank();
    mjpeg_to_i420(&without, &mut b).unwrap();
    assert_eq!(a, b);
}

/// An independent look at the picture: both samples show the same scene, so the two paths
/// must agree closely, and the colour bars must have BT.601 limited-range values.
#[test]
fn both_paths_show_the_same_scene_with_the_right_colours() {
    let mut from_yuyv = blank();
    yuyv_to_i420(&data("yuyv_160x120.raw"), W * 2, &mut from_yuyv).unwrap();
    let mut from_mjpeg = blank();
    mjpeg_to_i420(&data("mjpeg_160x120.jpg"), &mut from_mjpeg).unwrap();
    let mean_abs_diff = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    };
    assert!(mean_abs_diff(&from_yuyv.y, &from_mjpeg.y) < 3.0);
    assert!(mean_abs_diff(&from_yuyv.u, &from_mjpeg.u) < 3.0);
    assert!(mean_abs_diff(&from_yuyv.v, &from_mjpeg.v) < 3.0);

    // Bar 5 (x 100..120) is red at 90 %: R=229.5, G=B=0 → Y'=16+0.299·229.5·219/255≈75,
    // U'≈128−0.169·229.5·224/255≈94, V'≈128+0.5·229.5·224/255≈229. Sample the bar's middle.
    for frame in [&from_yuyv, &from_mjpeg] {
        let (row, col) = (30, 110);
        let luma = f64::from(frame.y[row * W + col]);
        let u = f64::from(frame.u[(row / 2) * W / 2 + col / 2]);
        let v = f64::from(frame.v[(row / 2) * W / 2 + col / 2]);
        assert!((luma - 75.0).abs() <= 8.0, "Y {luma}");
        assert!((u - 94.0).abs() <= 8.0, "U {u}");
        assert!((v - 229.0).abs() <= 8.0, "V {v}");
    }
}

// ---- negotiation ----

fn mode(pixel_format: CameraPixelFormat, width: u32, height: u32, rates: &[u32]) -> CameraMode {
    CameraMode {
        pixel_format,
        width,
        height,
        rates: FrameRates::List(rates.to_vec()),
    }
}

/// What a Logitech C270 class webcam reports: YUYV is slow at large sizes, MJPEG is not.
fn webcam_modes() -> Vec<CameraMode> {
    use CameraPixelFormat::{Mjpeg, Yuyv};
    vec![
        mode(Yuyv, 640, 480, &[30, 25, 20, 15, 10, 5]),
        mode(Yuyv, 160, 120, &[30, 25, 20, 15, 10, 5]),
        mode(Yuyv, 320, 240, &[30, 25, 20, 15, 10, 5]),
        mode(Yuyv, 1280, 720, &[10, 5]),
        mode(Yuyv, 1280, 960, &[7, 5]),
        mode(Mjpeg, 640, 480, &[30, 25, 20, 15, 10, 5]),
        mode(Mjpeg, 320, 240, &[30, 25, 20, 15, 10, 5]),
        mode(Mjpeg, 1280, 720, &[30, 25, 20, 15, 10, 5]),
        mode(Mjpeg, 800, 600, &[30, 25, 20, 15, 10, 5]),
    ]
}

fn wanted(width: u32, height: u32, fps: u32) -> VideoFormat {
    VideoFormat { width, height, fps }
}

fn chosen(pixel_format: CameraPixelFormat, width: u32, height: u32, fps: u32) -> ChosenMode {
    ChosenMode {
        pixel_format,
        format: wanted(width, height, fps),
    }
}

#[test]
fn exact_mode_prefers_yuyv_when_it_reaches_the_rate() {
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(640, 480, 30)),
        Some(chosen(CameraPixelFormat::Yuyv, 640, 480, 30))
    );
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(320, 240, 15)),
        Some(chosen(CameraPixelFormat::Yuyv, 320, 240, 15))
    );
}

#[test]
fn mjpeg_is_taken_where_yuyv_is_too_slow() {
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(1280, 720, 30)),
        Some(chosen(CameraPixelFormat::Mjpeg, 1280, 720, 30))
    );
    // But a YUYV-only rate request is honoured by YUYV.
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(1280, 720, 10)),
        Some(chosen(CameraPixelFormat::Yuyv, 1280, 720, 10))
    );
}

#[test]
fn an_unoffered_size_or_rate_gets_the_nearest() {
    // 800x448 = 358400 px: 640x480 is 51200 away, 800x600 121600.
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(800, 448, 30)),
        Some(chosen(CameraPixelFormat::Yuyv, 640, 480, 30))
    );
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(640, 480, 24)),
        Some(chosen(CameraPixelFormat::Yuyv, 640, 480, 25))
    );
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(640, 480, 60)),
        Some(chosen(CameraPixelFormat::Yuyv, 640, 480, 30))
    );
    // 1280x960 is nearest by area but YUYV-only at 7 fps: 1280x720 MJPEG at 30 wins.
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(1920, 1080, 30)),
        Some(chosen(CameraPixelFormat::Mjpeg, 1280, 720, 30))
    );
    // Asking for a low rate, the size decides.
    assert_eq!(
        choose_mode(&webcam_modes(), wanted(1920, 1080, 5)),
        Some(chosen(CameraPixelFormat::Yuyv, 1280, 960, 5))
    );
}

#[test]
fn rate_ranges_are_clamped_and_unusable_sizes_skipped() {
    let modes = vec![
        CameraMode {
            pixel_format: CameraPixelFormat::Mjpeg,
            width: 640,
            height: 480,
            rates: FrameRates::Range { min: 5, max: 20 },
        },
        // Odd sizes cannot be I420; tiny ones are below the encoder's minimum.
        mode(CameraPixelFormat::Yuyv, 641, 481, &[30]),
        mode(CameraPixelFormat::Yuyv, 32, 24, &[30]),
    ];
    assert_eq!(
        choose_mode(&modes, wanted(640, 480, 30)),
        Some(chosen(CameraPixelFormat::Mjpeg, 640, 480, 20))
    );
    assert_eq!(choose_mode(&modes[1..], wanted(640, 480, 30)), None);
    assert_eq!(choose_mode(&[], wanted(640, 480, 30)), None);
    // A mode without any rate is not usable either.
    assert_eq!(
        choose_mode(
            &[mode(CameraPixelFormat::Yuyv, 640, 480, &[])],
            wanted(640, 480, 30)
        ),
        None
    );
}

// ---- the camera source over a scripted stream ----

enum Step {
    Frame(Vec<u8>),
    Corrupt(Vec<u8>),
    Unplugged,
}

struct ScriptedStream(VecDeque<Step>);

impl CameraStream for ScriptedStream {
    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8], bool)) -> std::io::Result<()> {
        match self.0.pop_front() {
            Some(Step::Frame(data)) => {
                frame(&data, false);
                Ok(())
            }
            Some(Step::Corrupt(data)) => {
                frame(&data, true);
                Ok(())
            }
            // What VIDIOC_DQBUF returns once a USB camera is gone.
            Some(Step::Unplugged) | None => Err(std::io::Error::from_raw_os_error(19)),
        }
    }
}

fn camera(pixel_format: CameraPixelFormat, steps: Vec<Step>) -> V4l2Camera {
    V4l2Camera::from_stream(
        "/dev/video0",
        chosen(pixel_format, W as u32, H as u32, 30),
        W * 2,
        Box::new(ScriptedStream(steps.into())),
    )
}

#[test]
fn camera_skips_bad_frames_numbers_good_ones_and_reports_an_unplug() {
    let yuyv = data("yuyv_160x120.raw");
    let mut cam = camera(
        CameraPixelFormat::Yuyv,
        vec![
            Step::Frame(yuyv.clone()),
            Step::Corrupt(yuyv.clone()),
            Step::Frame(yuyv[..100].to_vec()), // short buffer
            Step::Frame(yuyv.clone()),
            Step::Unplugged,
        ],
    );
    assert!(cam.is_live());
    assert_eq!(cam.format(), wanted(160, 120, 30));
    let first = cam.capture().unwrap();
    let second = cam.capture().unwrap();
    assert_eq!((first.sequence, second.sequence), (0, 1));
    assert_planes_equal(&second, reference_yuyv(&yuyv, W * 2));
    let error = cam.capture().unwrap_err();
    assert!(matches!(error, MediaError::CameraLost { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("/dev/video0"), "{message}");
    assert!(message.contains("plugged in"), "{message}");
}

#[test]
fn mjpeg_camera_decodes_and_gives_up_on_endless_garbage() {
    let jpeg = data("mjpeg_160x120_no_dht.jpg");
    let mut steps = vec![Step::Frame(b"garbage".to_vec()), Step::Frame(jpeg.clone())];
    steps.extend((0..40).map(|_| Step::Frame(jpeg[..jpeg.len() / 3].to_vec())));
    let mut cam = camera(CameraPixelFormat::Mjpeg, steps);
    let frame = cam.capture().unwrap();
    assert_planes_equal(&frame, reference_mjpeg(&data("mjpeg_160x120.jpg")));
    match cam.capture() {
        Ok(frame) => panic!(
            "a truncated frame was passed on as frame {}",
            frame.sequence
        ),
        Err(error) => assert!(
            error.to_string().contains("unusable frames in a row"),
            "{error}"
        ),
    }
}

#[test]
fn a_frame_of_the_wrong_size_is_not_passed_on() {
    // A camera that silently switched size must not hand the encoder a frame it rejects.
    let mut cam = V4l2Camera::from_stream(
        "/dev/video0",
        chosen(CameraPixelFormat::Mjpeg, 320, 240, 30),
        0,
        Box::new(ScriptedStream(
            vec![Step::Frame(data("mjpeg_160x120.jpg")), Step::Unplugged].into(),
        )),
    );
    assert!(matches!(cam.capture(), Err(MediaError::CameraLost { .. })));
}
