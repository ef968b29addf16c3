//! Benchmark: CPU and memory of the agent's side of a call (for BENCHMARKS.md, "## Call").
//!
//! `cargo run --release -p doorbell-peer --example peer_cpu -- [--seconds 30] [--size 640x480]...`
//!
//! For each size (default 320x240 then 640x480, 30 fps) this process answers a call from a
//! child process (this same binary with `--offerer`, standing in for the browser: audio
//! sendrecv with a tone, video recvonly) over loopback, with the test pattern and a tone as
//! camera and microphone. Once media flows it measures this process's CPU time (user + system,
//! all threads) over the interval, and its peak RSS (VmHWM, which only grows: with several
//! sizes, run the smaller first). The offerer's work is in the child, so it is not counted.
//! Linux only (reads /proc/self).

use doorbell_media::{NullSink, TestPattern, Tone, VideoFormat};
use doorbell_peer::{CallMedia, CallPeer, PeerConfig, PeerEvent};
use doorbell_protocol::{SdpType, SessionDescription};
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.iter().any(|a| a == "--offerer") {
        return runtime.block_on(offerer::run());
    }
    let mut seconds = 30_u64;
    let mut sizes = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => seconds = rest.next().ok_or("--seconds needs a value")?.parse()?,
            "--size" => sizes.push(parse_size(rest.next().ok_or("--size needs WxH")?)?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![(320, 240), (640, 480)];
    }
    println!(
        "| size | fps | seconds | agent CPU (% of one core) | peak RSS (MiB) | video frames sent | frames at the offerer | owner audio frames received |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (width, height) in sizes {
        runtime.block_on(measure_call(
            VideoFormat {
                width,
                height,
                fps: 30,
            },
            Duration::from_secs(seconds),
        ))?;
    }
    Ok(())
}

fn parse_size(text: &str) -> Result<(u32, u32), BoxError> {
    let (w, h) = text.split_once('x').ok_or("size must be WxH")?;
    Ok((w.parse()?, h.parse()?))
}

async fn measure_call(format: VideoFormat, duration: Duration) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--offerer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut child_in = child.stdin.take().ok_or("no child stdin")?;
    let mut child_out = std::io::BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut line = String::new();
    child_out.read_line(&mut line)?;
    let offer = SessionDescription::from_json(&serde_json::from_str(&line)?, SdpType::Offer)?;

    let config = PeerConfig {
        video: format,
        video_bitrate_bps: if format.width > 320 {
            1_000_000
        } else {
            400_000
        },
        ..PeerConfig::default()
    };
    let media = CallMedia {
        video: Some(Box::new(TestPattern::new(format)?)),
        audio_in: Box::new(Tone::new(440.0)),
        audio_out: Box::new(NullSink::new()),
    };
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config, &offer, media, events_tx).await?;
    writeln!(child_in, "{}", answer.to_json())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Some(PeerEvent::MediaConnected { .. })) => break,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err("the call did not connect".into()),
        }
    }
    // Let the encoder and the connection settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = process_cpu()?;
    let frames_before = peer.stats().video_frames_sent;
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let cpu = process_cpu()? - cpu_before;
    let wall = started.elapsed();
    let stats = peer.stats();
    let peak_rss_kib = peak_rss_kib()?;

    writeln!(child_in, "bye")?;
    line.clear();
    child_out.read_line(&mut line)?;
    let frames_at_offerer = line.trim().to_owned();
    let _ = child.wait();
    let _ = peer.close().await;

    println!(
        "| {}x{} | {} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
        format.width,
        format.height,
        format.fps,
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        peak_rss_kib as f64 / 1024.0,
        stats.video_frames_sent - frames_before,
        frames_at_offerer,
        stats.audio_frames_received,
    );
    Ok(())
}

/// User + system CPU time of this process, all threads.
fn process_cpu() -> Result<Duration, BoxError> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let after = stat.rsplit_once(") ").ok_or("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11).ok_or("no utime")?.parse::<u64>()?
        + fields.get(12).ok_or("no stime")?.parse::<u64>()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Ok(Duration::from_millis(ticks * 10))
}

fn peak_rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("odd VmHWM")?.parse()?)
}

/// The browser's stand-in, run in a child process so its CPU is not counted.
mod offerer {
    use super::BoxError;
    use bytes::Bytes;
    use doorbell_media::{AudioSource, FRAME_SAMPLES, OpusEncoder, Tone};
    use doorbell_protocol::{SdpType, SessionDescription};
    use rtc::media::Sample;
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
    };
    use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
    use std::io::BufRead;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use webrtc::media_stream::track_local::TrackLocal;
    use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
    use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
    use webrtc::peer_connection::{
        MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
        RTCConfigurationBuilder, RTCIceGatheringState, RTCSessionDescription, Registry,
        register_default_interceptors,
    };

    #[derive(Default)]
    struct Counts {
        gathered: AtomicBool,
        video_frames: AtomicU64,
    }

    struct Handler(Arc<Counts>);

    #[async_trait::async_trait]
    impl PeerConnectionEventHandler for Handler {
        async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
            if state == RTCIceGatheringState::Complete {
                self.0.gathered.store(true, Ordering::SeqCst);
            }
        }
        async fn on_track(&self, track: Arc<dyn TrackRemote>) {
            let counts = Arc::clone(&self.0);
            let video = track.kind().await == RtpCodecKind::Video;
            tokio::spawn(async move {
                while let Some(event) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(packet) = event
                        && video
                        && packet.header.marker
                    {
                        counts.video_frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }

    pub async fn run() -> Result<(), BoxError> {
        let counts = Arc::new(Counts::default());
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler(Arc::clone(&counts))))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await?;
        let ssrc = 0x0a0d_10a0;
        let codec = RTCRtpCodec {
            mime_type: "audio/opus".to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        };
        let track = Arc::new(TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "owner".to_owned(),
                "owner-mic".to_owned(),
                "owner-mic".to_owned(),
                RtpCodecKind::Audio,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            ),
        )?);
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        while !counts.gathered.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let offer = pc.local_description().await.ok_or("no offer")?;
        println!(
            "{}",
            SessionDescription {
                kind: SdpType::Offer,
                sdp: offer.sdp
            }
            .to_json()
        );

        let mut stdin = std::io::BufReader::new(std::io::stdin());
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        let answer = SessionDescription::from_json(&serde_json::from_str(&line)?, SdpType::Answer)?;
        pc.set_remote_description(RTCSessionDescription::answer(answer.sdp)?)
            .await?;

        // The owner's microphone: a tone, 20 ms Opus packets.
        let sending = tokio::spawn(async move {
            let mut encoder = OpusEncoder::new(32_000)?;
            let mut tone = Tone::new(660.0);
            let mut pcm = [0_i16; FRAME_SAMPLES];
            let mut ticker = tokio::time::interval(Duration::from_millis(20));
            loop {
                ticker.tick().await;
                let payload_type = sender
                    .get_parameters()
                    .await?
                    .rtp_parameters
                    .codecs
                    .first()
                    .map(|c| c.payload_type);
                let Some(payload_type) = payload_type else {
                    continue;
                };
                tone.read(&mut pcm)?;
                let sample = Sample {
                    data: Bytes::from(encoder.encode(&pcm)?),
                    duration: Duration::from_millis(20),
                    ..Sample::new(Instant::now())
                };
                let _ = track.write_sample(ssrc, payload_type, &sample, &[]).await;
            }
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        });

        // Until the agent says "bye" (or goes away).
        let _ = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = stdin.read_line(&mut line);
        })
        .await;
        sending.abort();
        println!("{}", counts.video_frames.load(Ordering::Relaxed));
        let _ = pc.close().await;
        Ok(())
    }
}
