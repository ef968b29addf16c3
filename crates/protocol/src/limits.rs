//! Size limits on what a peer may send. They bound memory per connection and keep a hostile
//! client from making the server relay megabytes.

/// Largest SDP (offer or answer) accepted, in bytes. Real offers are 3–10 KiB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Largest ICE candidate line (with its mid and ufrag), in bytes. Real ones are ~100 bytes.
pub const MAX_CANDIDATE_BYTES: usize = 2 * 1024;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Largest Socket.IO payload the server reads at all (SDP plus framing).
pub const MAX_PAYLOAD_BYTES: usize = MAX_SDP_BYTES + 4 * 1024;

// --- Video the doorbell sends. One set of bounds for the agent's settings and the media
// pipeline. Even sizes (I420 halves them for chroma) from 64x64 (the latency stamp needs 32
// cells of 2 px) up to 1920 on either side (landscape 1920x1080 or a portrait 1080x1920
// camera): software H.264 on a Raspberry Pi core does not keep up beyond that, and a phone
// shows no more. openh264 itself would take up to 3840x2160.

pub const MIN_VIDEO_WIDTH: u32 = 64;
pub const MIN_VIDEO_HEIGHT: u32 = 64;
pub const MAX_VIDEO_WIDTH: u32 = 1920;
pub const MAX_VIDEO_HEIGHT: u32 = 1920;
/// Frame rates from 1 to this; cameras offering more are asked for this.
pub const MAX_VIDEO_FPS: u32 = 60;
/// The video encoder's bit rate bounds, in bits per second.
pub const MIN_VIDEO_BITRATE_BPS: u32 = 50_000;
pub const MAX_VIDEO_BITRATE_BPS: u32 = 20_000_000;

// --- What one signaling connection may cost the server (the defaults of its flags).

/// Sustained events per second from one connection.
pub const DEFAULT_EVENTS_PER_SEC: u32 = 20;
/// Events one connection may send at once (a burst of trickled ICE candidates).
pub const DEFAULT_EVENT_BURST: u32 = 60;
/// Socket.IO connections held at once, in total and from one IP address.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
