//! Routes openh264's own log lines into `tracing`; otherwise the C library prints them straight
//! to stderr, past our log filter and format.

use std::ffi::{CStr, c_char, c_int, c_void};

use openh264::encoder::Encoder;
use openh264_sys2::{
    ENCODER_OPTION_TRACE_CALLBACK, WELS_LOG_ERROR, WELS_LOG_WARNING, WelsTraceCallback,
};

/// Called by openh264 for each log line (from the thread that called into the encoder).
unsafe extern "C" fn forward(_context: *mut c_void, level: c_int, message: *const c_char) {
    if message.is_null() {
        return;
    }
    // SAFETY: openh264 passes a NUL-terminated string that lives for the duration of the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let text = text.trim_end();
    if level <= WELS_LOG_ERROR {
        tracing::warn!(target: "openh264", "{text}");
    } else if level <= WELS_LOG_WARNING {
        // Its warnings are about settings we chose on purpose (e.g. no frame skipping).
        tracing::debug!(target: "openh264", "{text}");
    } else {
        tracing::trace!(target: "openh264", "{text}");
    }
}

/// Installs the forwarder on `encoder`; must run before its first frame, when openh264 logs
/// its parameter checks. Failing to install only means openh264 keeps printing to stderr.
pub(crate) fn route_to_tracing(encoder: &mut Encoder) {
    let mut callback: WelsTraceCallback = Some(forward);
    // SAFETY: for ENCODER_OPTION_TRACE_CALLBACK, SetOption reads one WelsTraceCallback through
    // the pointer and keeps the function pointer (welsEncoderExt.cpp); it is allowed before
    // initialisation. `forward` is a 'static function that never unwinds (no panicking calls).
    let status = unsafe {
        encoder
            .raw_api()
            .set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
    };
    if status != 0 {
        tracing::debug!(
            status,
            "openh264 refused the log callback; it logs to stderr"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use crate::{H264Encoder, VideoFormat, VideoFrame};

    /// Counts events whose target is "openh264".
    struct OpenH264Events(Arc<AtomicUsize>);

    impl Subscriber for OpenH264Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if event.metadata().target() == "openh264" {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn encoder_setup_messages_arrive_as_tracing_events() {
        let count = Arc::new(AtomicUsize::new(0));
        tracing::subscriber::with_default(OpenH264Events(count.clone()), || {
            let format = VideoFormat {
                width: 320,
                height: 240,
                fps: 30,
            };
            let mut encoder = H264Encoder::new(format, 500_000).unwrap();
            let frame = VideoFrame::black(320, 240, 0, SystemTime::now()).unwrap();
            encoder.encode(&frame, false).unwrap();
        });
        // openh264 warns at initialisation that rate control works better with frame skipping.
        assert!(count.load(Ordering::SeqCst) >= 1);
    }
}
