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
