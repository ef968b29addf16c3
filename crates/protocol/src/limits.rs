//! Every size and rate limit in one place, shared by the server, the agent's config and the
//! media crate, so that what one part accepts the others can handle.

/// Largest SDP (offer or answer) accepted, in bytes. Real offers are 3–10 KiB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Largest ICE candidate line (with its mid and ufrag), in bytes. Real ones are ~100 bytes.
pub const MAX_CANDIDATE_BYTES: usize = 2 * 1024;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Largest Socket.IO payload the server reads at all (SDP plus framing).
pub const MAX_PAYLOAD_BYTES: usize = MAX_SDP_BYTES + 4 * 1024;

/// The smallest frame side: the test pattern's latency stamp needs 32 cells of at least 2 px,
/// and room for the text below it.
pub const MIN_VIDEO_SIDE: u32 = 64;
/// The largest frame side, for width and height alike (1920x1080, or 1080x1920 for a camera
/// mounted upright). openh264 would go to 3840x2160 (level 5.2), but nothing here feeds or
/// needs that: USB webcams and the Pi camera's V4L2 node deliver at most 1080p at a usable
/// rate, the encoder is openh264 in software on one thread (2.4 ms per 640x480 frame on a
/// desktop x86 core, BENCHMARKS.md; 1080p is 6.75 times the pixels, far more on a Pi's
/// Cortex-A cores), and a doorstep needs no more.
pub const MAX_VIDEO_SIDE: u32 = 1920;
/// Lowest frame rate.
pub const MIN_FPS: u32 = 1;
/// Highest frame rate: more only costs the Pi's CPU; a faster camera mode is used at this rate.
pub const MAX_FPS: u32 = 60;
/// Lowest video bitrate a user may set, bits per second (below it even 320x240 is mush).
pub const MIN_VIDEO_BITRATE_BPS: u32 = 50_000;
/// Highest video bitrate a user may set, bits per second (1080p needs well under it).
pub const MAX_VIDEO_BITRATE_BPS: u32 = 20_000_000;

/// Default sustained Socket.IO events per second from one connection: a call needs a handful
/// (join, offer, answer, a few candidates).
pub const DEFAULT_EVENTS_PER_SEC: u32 = 20;
/// Default burst of events from one connection: a burst of trickled ICE candidates.
pub const DEFAULT_EVENT_BURST: u32 = 60;
/// Default number of Socket.IO connections the server holds at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default number of Socket.IO connections held at once from one IP address (a household
/// behind one NAT address, several tabs each).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
