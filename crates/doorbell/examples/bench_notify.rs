//! Benchmark (not a test): press → each channel's request received, on loopback, over 50 rings,
//! with and without a 640x480 snapshot. Every channel is the real notifier talking to a local
//! stand-in (axum for the Bot API, Twilio, ntfy and the webhook; aiosmtpd for SMTP). The time
//! starts at the press, includes taking the snapshot (test pattern capture + JPEG), and ends
//! when the stand-in has the whole request. Signaling (join → created) is not included.
//!
//! Run: `cargo run --release -p doorbell --example bench_notify [rings]`
//! (needs python3 with aiosmtpd: `pip install -r tests/requirements.txt`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use doorbell_media::VideoFormat;
use doorbell_notify::snapshot::{DEFAULT_BOUND, PendingSnapshot};
use doorbell_notify::{Ring, build_notifiers_with_env, dispatch};
use doorbell_peer::media_settings::{
    AudioInput, AudioOutput, MediaSettings, SNAPSHOT_QUALITY, VideoInput,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

type Arrivals = mpsc::UnboundedSender<(&'static str, Instant)>;

async fn stand_in(State(arrivals): State<Arrivals>, uri: Uri, body: Bytes) -> (StatusCode, String) {
    let at = Instant::now();
    let path = uri.path();
    let service = if path.starts_with("/bot") {
        "telegram"
    } else if path.starts_with("/2010-04-01/") {
        "sms"
    } else if path == "/doorbell" {
        "ntfy"
    } else {
        "webhook"
    };
    let _ = arrivals.send((service, at));
    let _ = body.len();
    match service {
        "sms" => (
            StatusCode::CREATED,
            r#"{"sid":"SM1","status":"queued"}"#.into(),
        ),
        _ => (StatusCode::OK, r#"{"ok":true,"result":{}}"#.into()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rings: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(50);

    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .fallback(stand_in)
        .with_state(arrivals_tx.clone())
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut smtp = tokio::process::Command::new("python3")
        .arg(root.join("tests/fixtures/notify/smtp_sink.py"))
        .arg("--brief")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(smtp.stdout.take().ok_or("no stdout")?).lines();
    let first = lines
        .next_line()
        .await?
        .ok_or("the SMTP sink did not start")?;
    let smtp_port: u16 = first.trim_start_matches("PORT ").parse()?;
    tokio::spawn(async move {
        while let Ok(Some(_)) = lines.next_line().await {
            let _ = arrivals_tx.send(("email", Instant::now()));
        }
    });

    let config = format!(
        r#"
        [[notify]]
        kind = "telegram"
        bot_token = "1:bench"
        chat_id = 1
        api_base = "{base}"
        [[notify]]
        kind = "email"
        host = "127.0.0.1"
        port = {smtp_port}
        tls = "none"
        from = "bell@doorbell.test"
        to = "owner@doorbell.test"
        [[notify]]
        kind = "sms"
        account_sid = "AC1"
        auth_token = "t"
        from = "+15550001111"
        to = "+15552223333"
        api_base = "{base}"
        [[notify]]
        kind = "ntfy"
        server = "{base}"
        topic = "doorbell-Xq3vR8tLm2PzK7wYb1NcDa"
        [[notify]]
        kind = "webhook"
        url = "{base}/hook"
        "#
    );
    let parsed: toml::Table = config.parse()?;
    let tables: Vec<toml::Table> = parsed["notify"]
        .as_array()
        .ok_or("no [[notify]]")?
        .iter()
        .filter_map(|t| t.as_table().cloned())
        .collect();
    let notifiers = build_notifiers_with_env(&tables, &|_| None)
        .map_err(|p| format!("config problems: {p:?}"))?;
    let channels = notifiers.len();

    let format = VideoFormat {
        width: 640,
        height: 480,
        fps: 30,
    };
    // What the agent does at a press: open the video source, capture, encode (agent_io.rs).
    let media = MediaSettings {
        video: VideoInput::TestPattern,
        format,
        audio_in: AudioInput::Silence,
        audio_out: AudioOutput::Null,
    };

    println!("rings: {rings} per mode, channels: {channels}, loopback");
    for with_snapshot in [false, true] {
        let mut per_channel: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
        let mut snapshot_times = Vec::new();
        let mut jpeg_bytes = 0;
        let mut missed_snapshots = 0;
        for _ in 0..rings {
            let press = Instant::now();
            let snapshot_jpeg = if with_snapshot {
                let media = media.clone();
                let jpeg = PendingSnapshot::start(
                    async move {
                        tokio::task::spawn_blocking(move || media.snapshot_jpeg(SNAPSHOT_QUALITY))
                            .await
                            .map_err(|e| e.to_string())?
                    },
                    DEFAULT_BOUND,
                )
                .wait()
                .await;
                snapshot_times.push(press.elapsed());
                match &jpeg {
                    Some(j) => jpeg_bytes = j.len(),
                    None => missed_snapshots += 1,
                }
                jpeg
            } else {
                None
            };
            let ring = Arc::new(Ring {
                at: SystemTime::now(),
                link: Some("https://bell.example/?room=Zm9vYmFyYmF6cXV4MTIz".into()),
                room: doorbell_protocol::RoomId::parse("Zm9vYmFyYmF6cXV4MTIz").ok(),
                snapshot_jpeg,
                message: None,
            });
            let (tx, mut outcomes) = mpsc::unbounded_channel();
            dispatch(&notifiers, ring, Duration::from_secs(30), tx);
            for _ in 0..channels {
                let (service, at) = arrivals.recv().await.ok_or("stand-ins stopped")?;
                per_channel
                    .entry(service)
                    .or_default()
                    .push(at.duration_since(press));
            }
            for _ in 0..channels {
                match outcomes.recv().await {
                    Some(outcome) if outcome.result.is_ok() => {}
                    other => return Err(format!("a channel failed: {other:?}").into()),
                }
            }
        }
        println!(
            "\n{}",
            if with_snapshot {
                "with a 640x480 snapshot (taken at the press, bound 150 ms)"
            } else {
                "without a snapshot"
            }
        );
        if with_snapshot {
            snapshot_times.sort();
            println!(
                "  snapshot (capture + JPEG q80, {jpeg_bytes} bytes): p50 {} ms, p95 {} ms, missed the bound {missed_snapshots}/{rings}",
                ms(percentile(&snapshot_times, 50.0)),
                ms(percentile(&snapshot_times, 95.0))
            );
        }
        println!(
            "  {:<10} {:>8} {:>8} {:>8}",
            "channel", "p50 ms", "p95 ms", "max ms"
        );
        for (service, mut times) in per_channel {
            times.sort();
            println!(
                "  {service:<10} {:>8} {:>8} {:>8}",
                ms(percentile(&times, 50.0)),
                ms(percentile(&times, 95.0)),
                ms(*times.last().unwrap_or(&Duration::ZERO))
            );
        }
    }
    Ok(())
}
