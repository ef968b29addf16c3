//! VP8 encoding with libvpx (Debian's `libvpx-dev`), for browsers that offer no H.264 —
//! Firefox as most Linux distributions ship it. Real-time settings as WebRTC uses them: no
//! look-ahead, constant bitrate, error resilient partitions, a keyframe on request.

use crate::KEYFRAME_INTERVAL_SECONDS;
use crate::{MediaError, VideoFormat, VideoFrame};
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::c_int;
use vpx_sys as vpx;

/// Speed over quality, as WebRTC sets it: -6 on a desktop core; a Pi's cores need -12 to keep
/// 640x480@30 in real time.
#[cfg(target_arch = "aarch64")]
const CPU_USED: c_int = -12;
#[cfg(not(target_arch = "aarch64"))]
const CPU_USED: c_int = -6;

/// A VP8 encoder for one stream of frames of one size.
pub struct Vp8Encoder {
    ctx: vpx::vpx_codec_ctx_t,
    format: VideoFormat,
    frames_encoded: u64,
}

// SAFETY: the libvpx context is owned by this value alone and only used through `&mut self`;
// libvpx keeps no thread-local state, so moving it to another thread (the video pump's) is
// sound.
unsafe impl Send for Vp8Encoder {}

fn error(ctx: &mut vpx::vpx_codec_ctx_t, operation: &'static str) -> MediaError {
    // SAFETY: vpx_codec_error returns a static string for any context, initialised or not.
    let message = unsafe { CStr::from_ptr(vpx::vpx_codec_error(ctx)) }
        .to_string_lossy()
        .into_owned();
    MediaError::Vp8 { operation, message }
}

impl Vp8Encoder {
    /// An encoder for frames of `format`'s size at its frame rate and `bitrate_bps`.
    pub fn new(format: VideoFormat, bitrate_bps: u32) -> Result<Self, MediaError> {
        format.check_encoder(bitrate_bps)?;
        let setup_error = |message: &str| MediaError::Vp8 {
            operation: "encoder setup",
            message: message.to_owned(),
        };
        // SAFETY: vpx_codec_vp8_cx returns a pointer to libvpx's static interface.
        let iface = unsafe { vpx::vpx_codec_vp8_cx() };
        if iface.is_null() {
            return Err(setup_error("this libvpx has no VP8 encoder"));
        }
        let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: cfg is writable memory of the right type; libvpx fills it in.
        if unsafe { vpx::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) }
            != vpx::VPX_CODEC_OK
        {
            return Err(setup_error("no default configuration"));
        }
        // SAFETY: initialised by vpx_codec_enc_config_default above.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = format.width;
        cfg.g_h = format.height;
        cfg.g_timebase.num = 1;
        cfg.g_timebase.den = format.fps as c_int;
        // One core: the Pi's others run the audio, the network and the system.
        cfg.g_threads = 1;
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = bitrate_bps / 1000;
        // The pump sends every frame it is given; a dropped frame would stall the timeline.
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_max_dist = format.fps * KEYFRAME_INTERVAL_SECONDS;
        let mut ctx = MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed();
        // SAFETY: ctx is zeroed writable memory; cfg and iface are valid; the ABI version is
        // the one the bindings were made for (checked by libvpx).
        let init = unsafe {
            vpx::vpx_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                iface,
                &cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        // SAFETY: zeroed is a valid (uninitialised-codec) context either way.
        let mut ctx = unsafe { ctx.assume_init() };
        if init != vpx::VPX_CODEC_OK {
            return Err(error(&mut ctx, "encoder setup"));
        }
        let mut encoder = Self {
            ctx,
            format,
            frames_encoded: 0,
        };
        for (control, value) in [
            (vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED, CPU_USED),
            // Skip encoding macroblocks that did not change: a doorstep is mostly still.
            (vpx::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 1),
            (vpx::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0),
            // A keyframe at most 3× the average frame: a big keyframe is a burst of loss.
            (
                vpx::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT,
                300,
            ),
        ] {
            // SAFETY: an initialised encoder context; each control takes one int.
            if unsafe { vpx::vpx_codec_control_(&mut encoder.ctx, control as c_int, value) }
                != vpx::VPX_CODEC_OK
            {
                return Err(error(&mut encoder.ctx, "encoder setup"));
            }
        }
        tracing::debug!(%format, bitrate_bps, "VP8 encoder ready");
        Ok(encoder)
    }

    /// The format this encoder was made for.
    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// One VP8 frame. The first frame and every `force_keyframe` frame is a keyframe.
    pub fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Vec<u8>, MediaError> {
        frame.check_format(self.format)?;
        let mut image = MaybeUninit::<vpx::vpx_image_t>::zeroed();
        // SAFETY: wraps (does not copy or own) the Y plane; the plane pointers and strides are
        // then set to our three planes, whose sizes validate() checked. The image does not
        // outlive `frame`: it is used only in the vpx_codec_encode call below, which copies
        // what it keeps.
        let wrapped = unsafe {
            vpx::vpx_img_wrap(
                image.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width,
                frame.height,
                1,
                frame.y.as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(MediaError::Vp8 {
                operation: "encode",
                message: "could not wrap the frame".to_owned(),
            });
        }
        // SAFETY: initialised by vpx_img_wrap.
        let mut image = unsafe { image.assume_init() };
        let (width, chroma_width) = (frame.width as c_int, frame.width as c_int / 2);
        image.planes[0] = frame.y.as_ptr().cast_mut();
        image.planes[1] = frame.u.as_ptr().cast_mut();
        image.planes[2] = frame.v.as_ptr().cast_mut();
        image.stride[0] = width;
        image.stride[1] = chroma_width;
        image.stride[2] = chroma_width;
        let flags = if force_keyframe && self.frames_encoded > 0 {
            vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: an initialised encoder and a valid image (see above).
        let encoded = unsafe {
            vpx::vpx_codec_encode(
                &mut self.ctx,
                &image,
                self.frames_encoded as vpx::vpx_codec_pts_t,
                1,
                flags,
                u64::from(vpx::VPX_DL_REALTIME) as _,
            )
        };
        if encoded != vpx::VPX_CODEC_OK {
            return Err(error(&mut self.ctx, "encode"));
        }
        self.frames_encoded += 1;
        let mut out = Vec::new();
        let mut iter: vpx::vpx_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: an initialised encoder; iter is the iterator libvpx asks for.
            let packet = unsafe { vpx::vpx_codec_get_cx_data(&mut self.ctx, &mut iter) };
            // SAFETY: null or a packet valid until the next encoder call.
            let Some(packet) = (unsafe { packet.as_ref() }) else {
                break;
            };
            if packet.kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                // SAFETY: a frame packet's `frame` member is the one set.
                let frame = unsafe { packet.data.frame };
                let len = usize::try_from(frame.sz).unwrap_or(0);
                if frame.buf.is_null() || len == 0 {
                    continue;
                }
                // SAFETY: buf holds sz bytes of the frame until the next encoder call.
                let bytes = unsafe { std::slice::from_raw_parts(frame.buf.cast::<u8>(), len) };
                out.extend_from_slice(bytes);
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: an initialised context, destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut self.ctx);
        }
    }
}

/// true when a VP8 frame (the payload descriptor excluded) is a keyframe: bit 0 of the first
/// byte is 0 (RFC 6386 §9.1).
pub fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|byte| byte & 1 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestPattern;
    use crate::VideoSource;

    fn format() -> VideoFormat {
        VideoFormat {
            width: 320,
            height: 240,
            fps: 30,
        }
    }

    #[test]
    fn the_first_frame_and_requested_ones_are_keyframes_and_the_rest_are_not() {
        let mut pattern = TestPattern::new(format()).unwrap();
        let mut encoder = Vp8Encoder::new(format(), 500_000).unwrap();
        let mut keyframes = Vec::new();
        let mut bytes = 0;
        for n in 0..30 {
            let frame = pattern.capture().unwrap();
            let encoded = encoder.encode(&frame, n == 20).unwrap();
            assert!(!encoded.is_empty(), "frame {n} was dropped");
            bytes += encoded.len();
            if is_vp8_keyframe(&encoded) {
                keyframes.push(n);
            }
        }
        assert_eq!(keyframes, [0, 20]);
        // About a second at 500 kbit/s: within a factor of two either way.
        assert!((30_000..=130_000).contains(&bytes), "{bytes} bytes");
    }

    #[test]
    fn a_frame_of_another_size_and_a_silly_bitrate_are_refused() {
        assert!(Vp8Encoder::new(format(), 10).is_err());
        let mut encoder = Vp8Encoder::new(format(), 500_000).unwrap();
        let frame = VideoFrame::black(640, 480, 0, std::time::SystemTime::now()).unwrap();
        let error = encoder.encode(&frame, false).unwrap_err().to_string();
        assert!(error.contains("640x480"), "{error}");
    }
}
