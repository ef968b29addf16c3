//! Snapshots decode with an independent JPEG decoder, at the frame's size and colours.

use std::time::SystemTime;

use doorbell_media::{MediaError, TestPattern, VideoFormat, VideoFrame, encode_jpeg};

fn decode(jpeg: &[u8]) -> (jpeg_decoder::ImageInfo, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().unwrap();
    (decoder.info().unwrap(), pixels)
}

#[test]
fn test_pattern_snapshot_decodes_at_frame_size_with_the_right_colours() {
    for (width, height) in [(320_u32, 240_u32), (640, 480)] {
        let pattern = TestPattern::new(VideoFormat {
            width,
            height,
            fps: 30,
        })
        .unwrap();
        let frame = pattern.frame_at(0, SystemTime::now());
        let jpeg = encode_jpeg(&frame, 80).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI marker");
        let (info, rgb) = decode(&jpeg);
        assert_eq!(
            (u32::from(info.width), u32::from(info.height)),
            (width, height)
        );
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        let pixel = |x: u32, y: u32| {
            let at = ((y * width + x) * 3) as usize;
            [rgb[at], rgb[at + 1], rgb[at + 2]]
        };
        let near = |actual: [u8; 3], expected: [u8; 3]| {
            actual
                .iter()
                .zip(expected)
                .all(|(&a, e)| a.abs_diff(e) <= 6)
        };
        // 75 % bars (limited range expanded to JFIF's full range): white, then blue last.
        let y = height / 4;
        let first_bar = pixel(width / 14, y);
        let last_bar = pixel(width - width / 14, y);
        assert!(
            near(first_bar, [191, 191, 191]),
            "white bar is {first_bar:?}"
        );
        assert!(near(last_bar, [0, 0, 191]), "blue bar is {last_bar:?}");
    }
}

#[test]
fn quality_and_frames_are_checked() {
    let frame = VideoFrame::black(64, 64, 0, SystemTime::now()).unwrap();
    for quality in [0, 101] {
        assert!(matches!(
            encode_jpeg(&frame, quality),
            Err(MediaError::OutOfRange { .. })
        ));
    }
    let (info, rgb) = decode(&encode_jpeg(&frame, 100).unwrap());
    assert_eq!((info.width, info.height), (64, 64));
    assert!(rgb.iter().all(|&c| c <= 4), "black stays black");
    let mut broken = frame;
    broken.y.truncate(3);
    assert!(matches!(
        encode_jpeg(&broken, 80),
        Err(MediaError::InvalidFrame(_))
    ));
}
