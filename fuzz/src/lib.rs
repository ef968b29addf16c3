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

/// Opus packets as the agent's speaker path decodes them: one decoder (it keeps state between
/// packets) over length-prefixed packets, 48 kHz mono, room for 120 ms, as
/// `doorbell_media::OpusDecoder` does. opus-rs is a young port of C with ~285 `unsafe` blocks;
/// a panic is caught and the decoder replaced, exactly as the agent does, so what this finds
/// is what the agent cannot survive.
pub fn opus_packets(data: &[u8]) {
    const SAMPLE_RATE: i32 = 48_000;
    const FRAME_SAMPLES: usize = 960;
    const MAX_PACKET_SAMPLES: usize = 5760;
    let Ok(mut decoder) = opus_rs::OpusDecoder::new(SAMPLE_RATE, 1) else {
        return;
    };
    let mut pcm = vec![0.0f32; MAX_PACKET_SAMPLES];
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        // An empty packet stands for a lost one: 20 ms of concealment.
        let capacity = if packet.is_empty() {
            FRAME_SAMPLES
        } else {
            MAX_PACKET_SAMPLES
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoder.decode(packet, capacity, &mut pcm[..capacity])
        }));
        match outcome {
            Ok(Ok(samples)) => assert!(samples <= capacity, "decoded past its room"),
            Ok(Err(_)) => {}
            Err(_) => match opus_rs::OpusDecoder::new(SAMPLE_RATE, 1) {
                Ok(fresh) => decoder = fresh,
                Err(_) => return,
            },
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
