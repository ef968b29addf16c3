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
