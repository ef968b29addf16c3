//! Benchmark, not a test (ignored by default; no assertions on time): connect time and relay
//! round trip of our Socket.IO client through `doorbell-server` on loopback.
//!
//! cargo test -p doorbell-signaling --release --test signaling_bench -- --ignored --nocapture

use doorbell_protocol::wire::EngineIoVersion;
use doorbell_protocol::{ClientEvent, IceCandidate, RoomId, ServerEvent};
use doorbell_server::{Limits, Secret, ServerConfig, TlsConfig, bind};
use doorbell_signaling::{ServerTrust, SignalingConfig, connect};
use serde_json::json;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789";

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    format!(
        "n={} median={:?} p90={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn signaling_connect_and_relay_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsConfig::SelfSigned {
            data_dir: dir.path().to_owned(),
            hostnames: vec![],
        },
    );
    config.doorbell_token = Some(Secret::new(TOKEN));
    // The round-trip loop sends far faster than a real peer; lift the rate limit.
    config.limits = Limits {
        events_per_sec: 100_000,
        event_burst: 100_000,
        ..Limits::default()
    };
    let bound = bind(config).await.unwrap();
    let port = bound.local_addr().port();
    let cert = bound.cert_pem().to_owned();
    let server = tokio::spawn(bound.serve(std::future::pending()));

    for version in [EngineIoVersion::V4, EngineIoVersion::V3] {
        let mut client_config = SignalingConfig::new(format!("https://127.0.0.1:{port}"));
        client_config.trust = ServerTrust::CaPem(cert.clone());
        client_config.token = Some(TOKEN.into());
        client_config.engine_io = version;

        let mut connects = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            let c = connect(&client_config).await.unwrap();
            connects.push(start.elapsed());
            c.close().await;
        }
        println!(
            "{version:?} connect (TCP+TLS+websocket+Socket.IO): {}",
            percentiles(connects)
        );

        let mut agent = connect(&client_config).await.unwrap();
        let mut page = connect(&client_config).await.unwrap();
        let room = RoomId::parse(&format!("bench-{version:?}")).unwrap();
        agent
            .sender()
            .send(ClientEvent::Join(room.clone()))
            .unwrap();
        assert!(matches!(agent.recv().await, Some(ServerEvent::Created(_))));
        page.sender().send(ClientEvent::Join(room)).unwrap();
        assert!(matches!(page.recv().await, Some(ServerEvent::Joined(_))));
        assert!(matches!(agent.recv().await, Some(ServerEvent::NewPeer(_))));
        let candidate = IceCandidate::from_json(&json!({
            "candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "sdpMid":"0","sdpMLineIndex":0
        }))
        .unwrap();
        let mut round_trips = Vec::new();
        for _ in 0..1000 {
            let start = Instant::now();
            agent
                .sender()
                .send(ClientEvent::IceCandidate(candidate.clone()))
                .unwrap();
            assert!(matches!(
                page.recv().await,
                Some(ServerEvent::IceCandidate(_))
            ));
            page.sender()
                .send(ClientEvent::IceCandidate(candidate.clone()))
                .unwrap();
            assert!(matches!(
                agent.recv().await,
                Some(ServerEvent::IceCandidate(_))
            ));
            round_trips.push(start.elapsed());
        }
        println!(
            "{version:?} relay round trip agent→page→agent: {}",
            percentiles(round_trips)
        );
        agent.close().await;
        page.close().await;
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn lab_server_connect_and_relay_round_trip() {
    use tokio::io::AsyncBufReadExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut lab = tokio::process::Command::new("python3")
        .arg(root.join("tests/fixtures/lab_server.py"))
        .args(["--port", "0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(lab.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("LISTENING ")
        .unwrap()
        .parse()
        .unwrap();
    let config = SignalingConfig::new(format!("http://127.0.0.1:{port}"));
    let mut connects = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let c = connect(&config).await.unwrap();
        connects.push(start.elapsed());
        c.close().await;
    }
    println!(
        "lab connect (TCP+websocket+Socket.IO): {}",
        percentiles(connects)
    );
    let mut agent = connect(&config).await.unwrap();
    let mut page = connect(&config).await.unwrap();
    let room = RoomId::parse("bench-lab").unwrap();
    agent
        .sender()
        .send(ClientEvent::Join(room.clone()))
        .unwrap();
    assert!(matches!(agent.recv().await, Some(ServerEvent::Created(_))));
    page.sender().send(ClientEvent::Join(room)).unwrap();
    assert!(matches!(page.recv().await, Some(ServerEvent::Joined(_))));
    assert!(matches!(agent.recv().await, Some(ServerEvent::NewPeer(_))));
    let mut round_trips = Vec::new();
    for _ in 0..300 {
        let start = Instant::now();
        agent
            .sender()
            .send(ClientEvent::IceCandidate(None))
            .unwrap();
        assert!(matches!(
            page.recv().await,
            Some(ServerEvent::IceCandidate(_))
        ));
        page.sender().send(ClientEvent::IceCandidate(None)).unwrap();
        assert!(matches!(
            agent.recv().await,
            Some(ServerEvent::IceCandidate(_))
        ));
        round_trips.push(start.elapsed());
    }
    println!(
        "lab relay round trip agent→page→agent: {}",
        percentiles(round_trips)
    );
}
