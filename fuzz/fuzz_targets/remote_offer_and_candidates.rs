//! What the agent does with a browser's offer and trickled candidates, minus the I/O: the
//! protocol's validation (`SessionDescription::from_json`, `IceCandidate::from_json`), then
//! the sans-I/O WebRTC core the agent's `CallPeer` hands them to (parse the SDP, apply it as
//! the remote offer, build an answer, add each candidate). Errors are fine; panics are not.
#![no_main]

use doorbell_protocol::{IceCandidate, SdpType, SessionDescription};
use libfuzzer_sys::fuzz_target;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use serde_json::json;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
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
});
