//! What a call's WebRTC peer reports to the call flow, and what a call counted. Shared by the
//! peer (which produces them) and the agent (whose call flow consumes them).

use crate::IceCandidate;

/// Events of one call's peer, in the order they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A local candidate found after the answer was built: trickle it as `ice_candidate`.
    /// `None` = gathering is complete (end of candidates).
    LocalCandidate(Option<IceCandidate>),
    /// ICE and DTLS are up; media flows. `ice` is the selected candidate pair's kind: `relay`
    /// if either end relays through TURN, else `srflx`/`prflx` if either is behind a NAT's
    /// mapping, else `host` (`None` when the stack could not tell).
    MediaConnected { ice: Option<String> },
    /// ICE was disconnected for longer than `ice_lost_timeout`, or failed: the call is over.
    IceLost,
    /// The connection was closed by the remote side (not by closing it ourselves).
    Closed,
    /// A media part failed (e.g. the camera); the call goes on without it.
    MediaError(String),
}

/// Counters of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub video_frames_sent: u64,
    pub audio_frames_sent: u64,
    pub audio_frames_received: u64,
    /// Received audio frames louder than `doorbell_peer::NONSILENT_DBFS` dBFS: proof the owner's voice arrived.
    pub audio_frames_nonsilent: u64,
    /// Keyframe requests (PLI/FIR) received from the remote side.
    pub keyframe_requests: u64,
}
