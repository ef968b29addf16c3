//! The fuzz targets' bodies, shared by the libFuzzer binaries (fuzz_targets/, nightly) and by
//! the stable replay test (tests/replay.rs: seeds plus seeded random mutations).
use doorbell_protocol::wire::{EnginePacket, SocketPacket};
use doorbell_protocol::{ClientEvent, RoomId, ServerEvent};
use doorbell_protocol::{IceCandidate, SdpType, SessionDescription};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use serde_json::Value;
use serde_json::json;
use std::time::Instant;

/// Signaling events as a hostile peer sends them: an event name, a JSON payload, and the room
/// ids inside. Parsing must answer Ok or Err, never panic, and what it accepts must survive a
/// round trip through its own encoding.
pub fn protocol_events(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "name\npayload": the name as the wire carries it, the payload as any JSON (or a string).
    let (name, payload_text) = text.split_once('\n').unwrap_or((text, ""));
    let payload: Value =
        serde_json::from_str(payload_text).unwrap_or_else(|_| Value::String(payload_text.into()));

    if let Ok(room) = RoomId::parse(name) {
        assert_eq!(RoomId::parse(room.as_str()).ok().as_ref(), Some(&room));
        // The redacted form never carries the whole id.
        assert!(room.as_str().len() <= 4 || room.redacted() != room.as_str());
    }
    if let Ok(event) = ClientEvent::parse(name, &payload) {
        let again = ClientEvent::parse(event.name().as_str(), &event.payload());
        assert_eq!(again.ok().as_ref(), Some(&event), "client event round trip");
    }
    // What the agent reads from the server: parsed, never trusted.
    let _ = ServerEvent::parse(name, &payload);
}

/// Engine.IO and Socket.IO text frames from an untrusted connection: decoding must answer Ok
/// or Err, never panic, and a decoded packet must encode to text that decodes to it again.
pub fn wire_packets(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = EnginePacket::decode(text) {
        // Clients never send `open`; its encoding is the bare type.
        if !matches!(packet, EnginePacket::Open(_)) {
            let again = EnginePacket::decode(&packet.encode());
            assert_eq!(
                again.ok().as_ref(),
                Some(&packet),
                "engine packet round trip"
            );
        }
    }
    if let Ok(packet) = SocketPacket::decode(text) {
        let again = SocketPacket::decode(&packet.encode());
        match packet {
            // What the doorbell protocol rides on must survive the trip exactly.
            SocketPacket::Event { .. } | SocketPacket::Ack { .. } => {
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&packet),
                    "socket packet round trip"
                );
            }
            // Connect packets are accepted in shapes Socket.IO itself refuses: a bare number
            // as data (`0` + digits) is read back as an ack id, or not at all (`02e+25`), see
            // seeds/wire_packets/connect_number_*. Harmless (nothing reads that data), so only
            // "no panic" is asserted for them.
            _ => drop(again),
        }
    }
}

/// What the agent does with a browser's offer and trickled candidates, minus the I/O: the
/// protocol's validation (`SessionDescription::from_json`, `IceCandidate::from_json`), then
/// the sans-I/O WebRTC core the agent's `CallPeer` hands them to (parse the SDP, apply it as
/// the remote offer, build an answer, add each candidate). Errors are fine; panics are not.
pub fn remote_offer_and_candidates(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The offer SDP, then "\0"-separated candidate lines (possibly none).
    let mut parts = text.split('\0');
    let sdp = parts.next().unwrap_or_default();
    let candidates: Vec<&str> = parts.take(8).collect();

    let Ok(offer) =
        SessionDescription::from_json(&json!({"type": "offer", "sdp": sdp}), SdpType::Offer)
    else {
        return;
    };
    let mut media = MediaEngine::default();
    if media.register_default_codecs().is_err() {
        return;
    }
    let Ok(mut pc) = RTCPeerConnectionBuilder::new()
        .with_media_engine(media)
        .build(Instant::now())
    else {
        return;
    };
    let Ok(remote) = RTCSessionDescription::offer(offer.sdp.clone()) else {
        return;
    };
    if pc.set_remote_description(Instant::now(), remote).is_err() {
        return;
    }
    let _ = pc.create_answer(None);
    for line in candidates {
        let payload = json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0});
        let Ok(Some(candidate)) = IceCandidate::from_json(&payload) else {
            continue;
        };
        if candidate.is_end_of_candidates() {
            continue;
        }
        let _ = pc.add_remote_candidate(RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
            url: None,
        });
    }
}
