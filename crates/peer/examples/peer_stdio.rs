//! The agent's call peer driven over stdin/stdout, for trying it against any WebRTC peer
//! (e.g. a browser driven by a script) without the signaling server.
//!
//! `cargo run -p doorbell-peer --example peer_stdio -- [--size 640x480] [--fps 30]`
//!
//! stdin, one JSON value per line: first the offer `{"type":"offer","sdp":…}`, then any number
//! of trickled candidates `{"candidate","sdpMid","sdpMLineIndex"}` (or `null`), then `"bye"`
//! (or end of input) to hang up.
//! stdout, one JSON object per line: `{"answer":{…}}`, `{"candidate":{…}|null}`,
//! `{"event":"media_connected"|"ice_lost"|"closed"}`, `{"media_error":"…"}`, and last
//! `{"stats":{…}}`. The camera is the test pattern, the microphone a tone, the speaker nothing.

use doorbell_media::{NullSink, TestPattern, Tone, VideoFormat};
use doorbell_peer::{CallMedia, CallPeer, PeerConfig, PeerEvent};
use doorbell_protocol::{IceCandidate, SdpType, SessionDescription};
use serde_json::{Value, json};
use std::io::BufRead;
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut format = VideoFormat {
        width: 640,
        height: 480,
        fps: 30,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--size" => {
                let text = rest.next().ok_or("--size needs WxH")?;
                let (w, h) = text.split_once('x').ok_or("size must be WxH")?;
                format.width = w.parse()?;
                format.height = h.parse()?;
            }
            "--fps" => format.fps = rest.next().ok_or("--fps needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    // stdin is read on a plain thread: lines go to the async side through a channel.
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let first = lines.recv().await.ok_or("no offer on stdin")?;
    let offer = SessionDescription::from_json(&serde_json::from_str(&first)?, SdpType::Offer)?;
    let config = PeerConfig {
        video: format,
        ..PeerConfig::default()
    };
    let media = CallMedia {
        video: Some(Box::new(TestPattern::new(format)?)),
        audio_in: Box::new(Tone::new(440.0)),
        audio_out: Box::new(NullSink::new()),
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config, &offer, media, events_tx).await?;
    println!("{}", json!({ "answer": answer.to_json() }));

    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                let value: Value = match serde_json::from_str(&line) {
                    Ok(value) => value,
                    Err(error) => {
                        eprintln!("ignored a line that is not JSON: {error}");
                        continue;
                    }
                };
                if value == json!("bye") {
                    break;
                }
                match IceCandidate::from_json(&value) {
                    Ok(candidate) => {
                        if let Err(error) = peer.add_remote_candidate(candidate).await {
                            eprintln!("{error}");
                        }
                    }
                    Err(error) => eprintln!("ignored a bad candidate: {error}"),
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let line = match event {
                    PeerEvent::LocalCandidate(candidate) => {
                        json!({ "candidate": candidate.map(|c| c.to_json()) })
                    }
                    PeerEvent::MediaConnected { ice } => json!({ "event": "media_connected", "ice": ice }),
                    PeerEvent::IceLost => json!({ "event": "ice_lost" }),
                    PeerEvent::Closed => json!({ "event": "closed" }),
                    PeerEvent::MediaError(message) => json!({ "media_error": message }),
                };
                println!("{line}");
            }
        }
    }
    let stats = peer.close().await;
    println!(
        "{}",
        json!({ "stats": {
            "video_frames_sent": stats.video_frames_sent,
            "audio_frames_sent": stats.audio_frames_sent,
            "audio_frames_received": stats.audio_frames_received,
            "audio_frames_nonsilent": stats.audio_frames_nonsilent,
            "keyframe_requests": stats.keyframe_requests,
        }})
    );
    Ok(())
}
