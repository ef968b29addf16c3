//! Test pattern → H.264 (openh264) → decode: size, stamps and picture survive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_media::{
    H264Decoder, H264Encoder, MediaError, NAL_IDR_SLICE, NAL_PPS, NAL_SPS, TestPattern,
    VideoFormat, VideoFrame, VideoSource, is_keyframe, nal_unit_types, nal_units, read_stamp,
};

const BITRATE: u32 = 1_000_000;

fn format(width: u32, height: u32) -> VideoFormat {
    VideoFormat {
        width,
        height,
        fps: 30,
    }
}

/// Mean absolute luma difference below the stamp rows.
fn luma_difference(a: &VideoFrame, b: &VideoFrame) -> f64 {
    let start = 16 * a.width as usize;
    let total: u64 = a.y[start..]
        .iter()
        .zip(&b.y[start..])
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / (a.y.len() - start) as f64
}

fn round_trip(width: u32, height: u32) {
    let pattern = TestPattern::new(format(width, height)).unwrap();
    let mut encoder = H264Encoder::new(format(width, height), BITRATE).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let start = UNIX_EPOCH + Duration::from_millis(1_764_072_000_000);
    let mut previous_stamp = None;
    for sequence in 0..45_u64 {
        let capture_time = start + Duration::from_millis(sequence * 33);
        let frame = pattern.frame_at(sequence, capture_time);
        let force = sequence == 30;
        let access_unit = encoder.encode(&frame, force).unwrap();
        assert!(access_unit.starts_with(&[0, 0, 0, 1]), "Annex-B start code");
        let types = nal_unit_types(&access_unit);
        if sequence == 0 || force {
            // SPS and PPS precede every IDR, so a viewer can start at any keyframe.
            let sps = types.iter().position(|&t| t == NAL_SPS);
            let pps = types.iter().position(|&t| t == NAL_PPS);
            let idr = types.iter().position(|&t| t == NAL_IDR_SLICE);
            assert!(
                matches!((sps, pps, idr), (Some(s), Some(p), Some(i)) if s < p && p < i),
                "frame {sequence}: NAL types {types:?}"
            );
        } else {
            assert!(
                !is_keyframe(&access_unit),
                "frame {sequence} is an unrequested IDR"
            );
        }
        let decoded = decoder
            .decode(&access_unit)
            .unwrap()
            .unwrap_or_else(|| panic!("frame {sequence} decoded to no picture"));
        assert_eq!((decoded.width, decoded.height), (width, height));
        assert!(decoded.validate().is_ok());
        let stamp = read_stamp(&decoded);
        assert_eq!(
            stamp,
            read_stamp(&frame),
            "{width}x{height} frame {sequence}"
        );
        assert!(stamp > previous_stamp);
        previous_stamp = stamp;
        let difference = luma_difference(&frame, &decoded);
        assert!(
            difference < 6.0,
            "frame {sequence} differs by {difference:.1} on average"
        );
    }
    assert_eq!(encoder.frames_encoded(), 45);
}

#[test]
fn test_pattern_round_trips_at_320x240() {
    round_trip(320, 240);
}

#[test]
fn test_pattern_round_trips_at_640x480() {
    round_trip(640, 480);
}

#[test]
fn stream_is_constrained_baseline() {
    let mut pattern = TestPattern::new(format(320, 240)).unwrap();
    let mut encoder = H264Encoder::new(format(320, 240), BITRATE).unwrap();
    let access_unit = encoder.encode(&pattern.capture().unwrap(), false).unwrap();
    let units = nal_units(&access_unit);
    let sps = units.iter().find(|unit| unit[0] & 0x1F == NAL_SPS).unwrap();
    assert_eq!(sps[1], 0x42, "profile_idc 66 (baseline)");
    assert_eq!(sps[2] & 0x40, 0x40, "constraint_set1: constrained baseline");
    assert_eq!(
        sps[3], 31,
        "level 3.1, as in the SDP's profile-level-id 42e01f"
    );
}

#[test]
fn a_new_viewer_can_start_at_a_requested_keyframe() {
    let mut pattern = TestPattern::new(format(320, 240)).unwrap();
    let mut encoder = H264Encoder::new(format(320, 240), BITRATE).unwrap();
    for _ in 0..10 {
        encoder.encode(&pattern.capture().unwrap(), false).unwrap();
    }
    let frame = pattern.capture().unwrap();
    let keyframe = encoder.encode(&frame, true).unwrap();
    assert!(is_keyframe(&keyframe));
    let mut late_viewer = H264Decoder::new().unwrap();
    let decoded = late_viewer.decode(&keyframe).unwrap().unwrap();
    assert_eq!(read_stamp(&decoded), read_stamp(&frame));
    let next = pattern.capture().unwrap();
    let decoded = late_viewer
        .decode(&encoder.encode(&next, false).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(read_stamp(&decoded), read_stamp(&next));
}

#[test]
fn bad_settings_and_frames_are_errors() {
    assert!(matches!(
        H264Encoder::new(format(320, 240), 1_000),
        Err(MediaError::OutOfRange { .. })
    ));
    assert!(matches!(
        H264Encoder::new(format(321, 240), BITRATE),
        Err(MediaError::InvalidFormat { .. })
    ));
    let mut encoder = H264Encoder::new(format(320, 240), BITRATE).unwrap();
    let other_size = VideoFrame::black(640, 480, 0, SystemTime::now()).unwrap();
    assert!(matches!(
        encoder.encode(&other_size, false),
        Err(MediaError::InvalidFrame(_))
    ));
    let mut broken = VideoFrame::black(320, 240, 0, SystemTime::now()).unwrap();
    broken.v.clear();
    assert!(matches!(
        encoder.encode(&broken, false),
        Err(MediaError::InvalidFrame(_))
    ));
    // The encoder still works after refusing bad frames.
    let good = VideoFrame::black(320, 240, 0, SystemTime::now()).unwrap();
    assert!(is_keyframe(&encoder.encode(&good, false).unwrap()));
}

#[test]
fn garbage_access_units_do_not_crash_the_decoder() {
    let mut decoder = H264Decoder::new().unwrap();
    let mut state = 0x853C_49E6_748F_EA9B_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    for length in (0..3000).step_by(97) {
        let mut unit = vec![0, 0, 0, 1];
        unit.extend((0..length).map(|_| next()));
        // Errors and empty results are fine; crashing or inventing a broken frame is not.
        if let Ok(Some(frame)) = decoder.decode(&unit) {
            assert!(frame.validate().is_ok());
        }
    }
    // A real stream still decodes afterwards, in the same decoder.
    let mut pattern = TestPattern::new(format(320, 240)).unwrap();
    let mut encoder = H264Encoder::new(format(320, 240), BITRATE).unwrap();
    let frame = pattern.capture().unwrap();
    let decoded = decoder
        .decode(&encoder.encode(&frame, false).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(read_stamp(&decoded), read_stamp(&frame));
}

/// Camera-like content (every pixel below the stamp noisy) at a starved bitrate: the encoder
/// runs at high quantisers, yet every stamp must still read back exactly.
#[test]
fn stamps_survive_a_starved_encoder_on_noisy_content() {
    let format = format(640, 480);
    let mut pattern = TestPattern::new(format).unwrap();
    let mut encoder = H264Encoder::new(format, 100_000).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut bytes = 0;
    for sequence in 0..60 {
        let mut frame = pattern.capture().unwrap();
        for luma in &mut frame.y[16 * 640..] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 59) as i16 - 16;
            *luma = (i16::from(*luma) + noise).clamp(16, 235) as u8;
        }
        let access_unit = encoder.encode(&frame, false).unwrap();
        bytes += access_unit.len();
        let decoded = decoder.decode(&access_unit).unwrap().unwrap();
        assert_eq!(read_stamp(&decoded), read_stamp(&frame), "frame {sequence}");
    }
    // The bitrate really was starved (2 s of video at ~100 kbit/s, not the 1 Mbit/s of others).
    assert!(bytes * 8 < 2 * 250_000, "{bytes} bytes");
}

#[test]
fn periodic_keyframes_come_every_interval_with_parameter_sets() {
    // 1 fps makes the interval (KEYFRAME_INTERVAL_SECONDS) a handful of frames.
    let format = VideoFormat {
        width: 64,
        height: 64,
        fps: 1,
    };
    let mut pattern = TestPattern::new(format).unwrap();
    let mut encoder = H264Encoder::new(format, 100_000).unwrap();
    let interval = doorbell_media::KEYFRAME_INTERVAL_SECONDS as usize;
    let keyframes: Vec<usize> = (0..interval * 2 + 3)
        .filter_map(|index| {
            let access_unit = encoder.encode(&pattern.capture().unwrap(), false).unwrap();
            is_keyframe(&access_unit).then(|| {
                assert_eq!(&nal_unit_types(&access_unit)[..2], &[NAL_SPS, NAL_PPS]);
                index
            })
        })
        .collect();
    assert_eq!(keyframes, vec![0, interval, interval * 2]);
}
