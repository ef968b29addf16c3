//! The agent's event stream: one JSON object per line on stdout, so home
//! automation and tests read state changes instead of scraping logs.

use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a ring or call ended; the `reason` of `call_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The owner's page sent `bye` (or its connection dropped, which the server turns into `bye`).
    Hangup,
    /// Nobody opened the link before the ring timeout.
    NoAnswer,
    /// The page joined but sent no offer in time.
    OfferTimeout,
    /// The server did not confirm the room in time.
    JoinTimeout,
    /// The fresh room was not ours (`joined`/`full` on join): should never happen with random ids.
    RoomTaken,
    /// The server refused the room (e.g. the doorbell token is wrong).
    ServerRefused,
    /// The signaling connection dropped before the call was up.
    SignalingLost,
    /// Building the answer failed.
    AnswerFailed,
    /// ICE never connected after the answer.
    MediaTimeout,
    /// The media path was lost (ICE disconnected/failed past its bound).
    IceLost,
    /// The maximum call length was reached.
    MaxDuration,
    /// The agent is shutting down.
    Shutdown,
    /// Someone rang during a live view: the live view made way for the ring.
    RingTookOver,
    /// An owner answered with a recorded reply and chose to end the ring.
    Replied,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Hangup => "hangup",
            EndReason::NoAnswer => "no_answer",
            EndReason::OfferTimeout => "offer_timeout",
            EndReason::JoinTimeout => "join_timeout",
            EndReason::RoomTaken => "room_taken",
            EndReason::ServerRefused => "server_refused",
            EndReason::SignalingLost => "signaling_lost",
            EndReason::AnswerFailed => "answer_failed",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::IceLost => "ice_lost",
            EndReason::MaxDuration => "max_duration",
            EndReason::Shutdown => "shutdown",
            EndReason::RingTookOver => "ring_took_over",
            EndReason::Replied => "replied",
        }
    }
}

/// One line of the event stream, without its timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    Ready,
    Trigger {
        busy: bool,
    },
    Connected,
    Disconnected,
    Created {
        room: String,
    },
    Notified {
        room: String,
        url: String,
    },
    NotifySent {
        channel: String,
    },
    NotifyFailed {
        channel: String,
        reason: String,
    },
    /// A paired owner opened the camera without a ring: no chime, nobody notified.
    LiveView {
        room: String,
    },
    /// A live view request the agent turned down (busy, or live view is off here).
    LiveViewRefused {
        why: String,
    },
    /// Nobody answered: the doorbell asks the visitor for a message and records it.
    MessageRecording {
        room: String,
    },
    /// The visitor's message is recorded, kept on disk until the server has it.
    MessageRecorded {
        room: String,
        duration_ms: u64,
        bytes: u64,
    },
    /// The server has the message: it is in the ring's history entry.
    MessageUploaded {
        room: String,
    },
    /// The message could not be recorded or handed over (`retrying`: it is kept and tried
    /// again).
    MessageFailed {
        reason: String,
        retrying: bool,
    },
    /// An owner answered the ring with recorded reply `id` (`end`: the ring ends).
    Reply {
        id: i64,
        end: bool,
    },
    /// The reply is playing: its first sound reached the speaker this long after the request.
    ReplyPlaying {
        id: i64,
        after_ms: u64,
    },
    NewPeer,
    Invite,
    OkSent,
    MediaConnected {
        /// The selected candidate pair's kind (`host`, `srflx`, `prflx`, `relay`), if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        ice: Option<String>,
    },
    /// The page sent a new offer during the call to restart ICE (its network changed or the
    /// path broke); `answered` once the agent's answer has gone back.
    IceRestart {
        answered: bool,
    },
    ByeReceived,
    CallEnd {
        reason: EndReason,
        audio_frames_received: u64,
        audio_frames_nonsilent: u64,
        video_frames_sent: u64,
    },
    Error {
        message: String,
    },
}

impl AgentEvent {
    pub fn name(&self) -> &'static str {
        match self {
            AgentEvent::Ready => "ready",
            AgentEvent::Trigger { .. } => "trigger",
            AgentEvent::Connected => "connected",
            AgentEvent::Disconnected => "disconnected",
            AgentEvent::Created { .. } => "created",
            AgentEvent::Notified { .. } => "notified",
            AgentEvent::NotifySent { .. } => "notify_sent",
            AgentEvent::NotifyFailed { .. } => "notify_failed",
            AgentEvent::LiveView { .. } => "live_view",
            AgentEvent::LiveViewRefused { .. } => "live_view_refused",
            AgentEvent::MessageRecording { .. } => "message_recording",
            AgentEvent::MessageRecorded { .. } => "message_recorded",
            AgentEvent::MessageUploaded { .. } => "message_uploaded",
            AgentEvent::MessageFailed { .. } => "message_failed",
            AgentEvent::Reply { .. } => "reply",
            AgentEvent::ReplyPlaying { .. } => "reply_playing",
            AgentEvent::NewPeer => "new_peer",
            AgentEvent::Invite => "invite",
            AgentEvent::OkSent => "ok_sent",
            AgentEvent::MediaConnected { .. } => "media_connected",
            AgentEvent::IceRestart { .. } => "ice_restart",
            AgentEvent::ByeReceived => "bye_received",
            AgentEvent::CallEnd { .. } => "call_end",
            AgentEvent::Error { .. } => "error",
        }
    }

    /// The JSON line: `{"event": "...", "ts": <unix seconds>, ...fields}`.
    pub fn to_json_line(&self, at: SystemTime) -> String {
        let ts = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut value = serde_json::to_value(self).unwrap_or_else(
            |_| serde_json::json!({"event": "error", "message": "unserialisable event"}),
        );
        if let Some(obj) = value.as_object_mut() {
            obj.insert("ts".into(), serde_json::json!(ts));
        }
        value.to_string()
    }
}

impl From<doorbell_notify::ChannelOutcome> for AgentEvent {
    fn from(outcome: doorbell_notify::ChannelOutcome) -> Self {
        match outcome.result {
            Ok(()) => AgentEvent::NotifySent {
                channel: outcome.channel,
            },
            Err(reason) => AgentEvent::NotifyFailed {
                channel: outcome.channel,
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_have_ts_event_and_fields() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let line = AgentEvent::CallEnd {
            reason: EndReason::IceLost,
            audio_frames_received: 3,
            audio_frames_nonsilent: 2,
            video_frames_sent: 4,
        }
        .to_json_line(at);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "call_end");
        assert_eq!(v["reason"], "ice_lost");
        assert_eq!(v["audio_frames_received"], 3);
        assert_eq!(v["video_frames_sent"], 4);
        assert_eq!(v["ts"].as_f64().unwrap(), 1_700_000_000.25);
        let t: serde_json::Value =
            serde_json::from_str(&AgentEvent::Trigger { busy: true }.to_json_line(at)).unwrap();
        assert_eq!(t["event"], "trigger");
        assert_eq!(t["busy"], true);
    }

    #[test]
    fn names_match_serialised_tags() {
        for e in [
            AgentEvent::Ready,
            AgentEvent::OkSent,
            AgentEvent::NewPeer,
            AgentEvent::NotifySent {
                channel: "c".into(),
            },
            AgentEvent::ByeReceived,
            AgentEvent::LiveView { room: "r".into() },
            AgentEvent::LiveViewRefused { why: "w".into() },
            AgentEvent::MessageRecording { room: "r".into() },
            AgentEvent::MessageRecorded {
                room: "r".into(),
                duration_ms: 1500,
                bytes: 9,
            },
            AgentEvent::MessageUploaded { room: "r".into() },
            AgentEvent::MessageFailed {
                reason: "r".into(),
                retrying: true,
            },
            AgentEvent::MediaConnected {
                ice: Some("relay".into()),
            },
        ] {
            let v: serde_json::Value = serde_json::from_str(&e.to_json_line(UNIX_EPOCH)).unwrap();
            assert_eq!(v["event"], e.name());
        }
    }
}
