//! `--metrics-listen` on the real server and agent binaries: the scrape is valid Prometheus
//! text, and the counters move with a real ring answered in headless Chromium and a ring
//! nobody answers.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::{Agent, Server, answer_briefly_and_hang_up, free_port, wait_for_port};

const WAIT: Duration = Duration::from_secs(30);

fn scrape(addr: SocketAddr) -> (String, String) {
    support::scrape_metrics(addr)
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the text exposition format strictly: every sample's family has `# HELP` and
/// `# TYPE` lines before it, names are valid, counters end in `_total`, values are numbers.
/// Returns each series (`name{labels}`) with its value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP name text");
            assert!(is_metric_name(name), "bad name in {line:?}");
            helped.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line:?}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "a counter named {name}");
            }
            assert!(helped.contains(name), "TYPE before HELP: {line:?}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} declared twice"
            );
        } else {
            assert!(!line.starts_with('#'), "stray comment {line:?}");
            let (key, value) = line.rsplit_once(' ').expect("a sample: name value");
            let name = key.split('{').next().unwrap_or(key);
            assert!(is_metric_name(name), "bad name in {line:?}");
            assert!(types.contains_key(name), "sample before its TYPE: {line:?}");
            if let Some(labels) = key.strip_prefix(name).filter(|l| !l.is_empty()) {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "labels of {line:?}"
                );
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (label, quoted) = pair.split_once('=').expect("label=value");
                    assert!(is_metric_name(label), "label {label:?}");
                    assert!(quoted.starts_with('"') && quoted.ends_with('"'), "{pair:?}");
                }
            }
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"));
            assert!(
                series.insert(key.to_owned(), value).is_none(),
                "{key} twice"
            );
        }
    }
    series
}

fn get(series: &BTreeMap<String, f64>, key: &str) -> f64 {
    series.get(key).copied().unwrap_or(0.0)
}

#[test]
fn server_and_agent_metrics_are_valid_prometheus_text_and_follow_real_rings() {
    let server_metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let agent_metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // With the embedded TURN server, whose allocations the server reports too.
    let secrets = tempfile::tempdir().expect("tempdir");
    let turn_secret = secrets.path().join("turn-secret");
    std::fs::write(&turn_secret, "metrics-test-turn-secret").expect("write");
    let turn = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&[
        "--metrics-listen",
        &server_metrics.to_string(),
        "--turn-listen",
        &turn,
        "--turn-secret-file",
        turn_secret.to_str().expect("utf-8"),
    ]);
    wait_for_port(server_metrics, WAIT);
    let (head, body) = scrape(server_metrics);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let before = parse(&body);
    assert_eq!(get(&before, "doorbell_rings_total"), 0.0);
    assert!(
        get(&before, "process_resident_memory_bytes") > 1e6,
        "{body}"
    );

    let mut agent = Agent::for_server(
        &server,
        &[
            "--metrics-listen",
            &agent_metrics.to_string(),
            "--ring-timeout",
            "6s",
        ],
    );
    agent.wait_for("connected", WAIT);
    wait_for_port(agent_metrics, WAIT);
    let during = parse(&scrape(server_metrics).1);
    assert_eq!(get(&during, "doorbell_connections{kind=\"doorbell\"}"), 1.0);

    // A ring answered in Chromium: a real call.
    agent.press();
    agent.wait_for("created", WAIT);
    let url = agent.wait_for("notified", WAIT)["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let ringing = parse(&scrape(server_metrics).1);
    assert_eq!(get(&ringing, "doorbell_rooms"), 1.0);
    answer_briefly_and_hang_up(&mut agent, &url, WAIT);
    agent.wait_for("ready", WAIT);
    // A ring nobody answers.
    agent.press();
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "no_answer");

    let after = parse(&scrape(server_metrics).1);
    assert_eq!(get(&after, "doorbell_rings_total"), 2.0);
    assert_eq!(get(&after, "doorbell_calls_answered_total"), 1.0);
    assert_eq!(get(&after, "doorbell_calls_started_total"), 1.0);
    // The doorbell's bye may reach the server a moment after the agent reports the end.
    let missed = (0..50)
        .map(|_| {
            let v = get(
                &parse(&scrape(server_metrics).1),
                "doorbell_calls_missed_total",
            );
            if v < 1.0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            v
        })
        .find(|v| *v >= 1.0);
    assert_eq!(missed, Some(1.0));
    assert!(get(&after, "doorbell_signaling_messages_total{event=\"join\"}") >= 3.0);
    assert!(
        get(&after, "doorbell_turn_allocations_total") >= 1.0,
        "both ends gather relay candidates from the embedded TURN server"
    );
    assert!(after.contains_key("doorbell_turn_allocations"));
    assert!(
        get(
            &after,
            "doorbell_signaling_messages_total{event=\"invite\"}"
        ) >= 1.0
    );
    assert!(get(&after, "doorbell_signaling_messages_total{event=\"ok\"}") >= 1.0);

    let agent_text = scrape(agent_metrics).1;
    let agent_series = parse(&agent_text);
    assert_eq!(get(&agent_series, "doorbell_agent_rings_total"), 2.0);
    assert_eq!(
        get(
            &agent_series,
            "doorbell_agent_calls_total{reason=\"hangup\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &agent_series,
            "doorbell_agent_calls_total{reason=\"no_answer\"}"
        ),
        1.0
    );
    let pairs: f64 = agent_series
        .iter()
        .filter(|(k, _)| k.starts_with("doorbell_agent_ice_pairs_total{type="))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(pairs, 1.0, "one call connected: {agent_text}");
    let frames = get(&agent_series, "doorbell_agent_video_frames_encoded_total");
    let encode_s = get(&agent_series, "doorbell_agent_video_encode_seconds_total");
    assert!(frames > 5.0, "{agent_text}");
    assert!(
        encode_s > 0.0 && encode_s / frames < 0.1,
        "encode seconds {encode_s} for {frames} frames"
    );
    assert!(agent_series.contains_key("doorbell_agent_video_frames_dropped_total"));
    assert_eq!(
        get(&agent_series, "doorbell_agent_signaling_connected"),
        1.0
    );
    assert!(get(&agent_series, "process_resident_memory_bytes") > 1e6);
}

#[test]
fn a_metrics_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::doorbell_command()
        .args(["server", "--listen", "127.0.0.1:0", "--open-rooms"])
        .args(["--metrics-listen", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run doorbell server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
