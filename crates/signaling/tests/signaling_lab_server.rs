//! Our Socket.IO client against the lab's protocol on python-socketio (Flask-SocketIO 5.x,
//! Engine.IO 4): tests/fixtures/lab_server.py, plain HTTP and HTTPS.

use doorbell_protocol::{
    ClientEvent, IceCandidate, RoomId, SdpType, ServerEvent, SessionDescription,
};
use doorbell_signaling::{
    ServerTrust, SignalingConfig, SignalingConnection, SignalingError, connect,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// Upper bound on waiting for an event that must come; a hang becomes a failure, not a stuck CI.
const EVENT_BOUND: Duration = Duration::from_secs(10);

struct LabServer {
    port: u16,
    _child: Child,
}

async fn start_lab_server(tls: Option<(&Path, &Path)>) -> LabServer {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new("python3");
    command
        .arg(root.join("tests/fixtures/lab_server.py"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some((cert, key)) = tls {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let mut child = command
        .spawn()
        .expect("python3 runs tests/fixtures/lab_server.py");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("lab server starts within 30 s")
    .expect("read the lab server's stdout");
    let port = line
        .strip_prefix("LISTENING ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("lab server printed {line:?}, not LISTENING <port>"));
    LabServer {
        port,
        _child: child,
    }
}

async fn next(connection: &mut SignalingConnection) -> ServerEvent {
    timeout(EVENT_BOUND, connection.recv())
        .await
        .expect("an event within the bound")
        .expect("the connection is still open")
}

fn room(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

fn offer() -> SessionDescription {
    SessionDescription::from_json(
        &json!({"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}),
        SdpType::Offer,
    )
    .unwrap()
}

fn answer() -> SessionDescription {
    SessionDescription::from_json(
        &json!({"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}),
        SdpType::Answer,
    )
    .unwrap()
}

fn candidate() -> IceCandidate {
    IceCandidate::from_json(&json!({
        "candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "sdpMid":"0","sdpMLineIndex":0
    }))
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn two_clients_exchange_every_event_through_the_lab_server() {
    let lab = start_lab_server(None).await;
    let mut config = SignalingConfig::new(format!("http://127.0.0.1:{}", lab.port));
    config.token = Some("ignored-by-the-lab".into());
    let mut agent = connect(&config).await.unwrap();
    let mut page = connect(&config).await.unwrap();
    let mut stranger = connect(&config).await.unwrap();
    let r = room("lab-room_1");

    agent.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Created(r.clone()));
    page.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::Joined(r.clone()));
    assert_eq!(next(&mut agent).await, ServerEvent::NewPeer(r.clone()));
    stranger
        .sender()
        .send(ClientEvent::Join(r.clone()))
        .unwrap();
    assert_eq!(next(&mut stranger).await, ServerEvent::Full(r.clone()));

    page.sender().send(ClientEvent::Invite(offer())).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Invite(offer()));
    agent.sender().send(ClientEvent::Ok(answer())).unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::Ok(answer()));
    agent
        .sender()
        .send(ClientEvent::IceCandidate(Some(candidate())))
        .unwrap();
    assert_eq!(
        next(&mut page).await,
        ServerEvent::IceCandidate(Some(candidate()))
    );
    page.sender().send(ClientEvent::IceCandidate(None)).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::IceCandidate(None));

    // `bye` leaves the room and reaches the other member; the sender can come back.
    page.sender()
        .send(ClientEvent::Bye(Some(r.clone())))
        .unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Bye);
    page.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::Joined(r.clone()));
    assert_eq!(next(&mut agent).await, ServerEvent::NewPeer(r.clone()));

    // Closing one member's connection is a `bye` for the other.
    page.close().await;
    assert_eq!(next(&mut agent).await, ServerEvent::Bye);

    // Nothing was relayed to the stranger: its next event is the answer to its own join.
    let elsewhere = room("another-room");
    stranger
        .sender()
        .send(ClientEvent::Join(elsewhere.clone()))
        .unwrap();
    assert_eq!(next(&mut stranger).await, ServerEvent::Created(elsewhere));

    // The server reports an invalid request as an `error` event; the connection stays usable.
    agent
        .sender()
        .send(ClientEvent::Join(room("third-room")))
        .unwrap();
    assert!(matches!(next(&mut agent).await, ServerEvent::Error(_)));

    agent.close().await;
    stranger.close().await;
}

#[tokio::test]
async fn recv_ends_and_send_fails_when_the_lab_server_goes_away() {
    let lab = start_lab_server(None).await;
    let config = SignalingConfig::new(format!("http://127.0.0.1:{}", lab.port));
    let mut client = connect(&config).await.unwrap();
    let sender = client.sender();
    drop(lab); // kills the server process
    assert_eq!(timeout(EVENT_BOUND, client.recv()).await.unwrap(), None);
    assert!(matches!(
        sender.send(ClientEvent::Join(room("r"))),
        Err(SignalingError::Closed)
    ));
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_with_connect() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = SignalingConfig::new(format!("http://127.0.0.1:{port}"));
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Connect { .. }), "{err}");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "doorbell-signaling-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, as the lab's admin would make.
fn self_signed() -> (String, String, [u8; 32]) {
    self_signed_for(&["localhost", "127.0.0.1"])
}

fn self_signed_for(names: &[&str]) -> (String, String, [u8; 32]) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let params = rcgen::CertificateParams::new(names).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let fingerprint: [u8; 32] = Sha256::digest(cert.der()).into();
    (cert.pem(), key.serialize_pem(), fingerprint)
}

#[tokio::test]
async fn tls_to_the_lab_server_by_ca_fingerprint_and_insecure() {
    let dir = TempDir::new("lab-tls");
    let (cert_pem, key_pem, fingerprint) = self_signed();
    let (cert_path, key_path) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let lab = start_lab_server(Some((&cert_path, &key_path))).await;

    let trusted = [
        ("localhost", ServerTrust::CaPem(cert_pem.clone())),
        ("127.0.0.1", ServerTrust::CaPem(cert_pem.clone())),
        ("127.0.0.1", ServerTrust::Fingerprint(fingerprint)),
        ("127.0.0.1", ServerTrust::Insecure),
    ];
    for (host, trust) in trusted {
        let mut config = SignalingConfig::new(format!("https://{host}:{}", lab.port));
        config.trust = trust.clone();
        let mut client = connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{host} {trust:?}: {e}"));
        let r = room("tls-room");
        client.sender().send(ClientEvent::Join(r.clone())).unwrap();
        assert_eq!(next(&mut client).await, ServerEvent::Created(r));
        client.close().await;
    }

    let mut wrong_pin = fingerprint;
    wrong_pin[0] ^= 0xff;
    let mut config = SignalingConfig::new(format!("https://127.0.0.1:{}", lab.port));
    config.trust = ServerTrust::Fingerprint(wrong_pin);
    let err = connect(&config).await.unwrap_err();
    let SignalingError::FingerprintMismatch { expected, actual } = &err else {
        panic!("expected a fingerprint mismatch, got {err}");
    };
    assert_eq!(
        *actual,
        doorbell_signaling::format_fingerprint(&fingerprint)
    );
    assert_eq!(
        *expected,
        doorbell_signaling::format_fingerprint(&wrong_pin)
    );

    // A certificate from someone else does not vouch for this server; neither do web roots.
    let (other_pem, _, _) = self_signed();
    config.trust = ServerTrust::CaPem(other_pem);
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Tls(_)), "{err}");
    config.trust = ServerTrust::WebPki;
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Tls(_)), "{err}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_unless_pinned() {
    let dir = TempDir::new("lab-tls-name");
    let (cert_pem, key_pem, fingerprint) = self_signed_for(&["localhost"]);
    let (cert_path, key_path) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let lab = start_lab_server(Some((&cert_path, &key_path))).await;

    let mut config = SignalingConfig::new(format!("https://127.0.0.1:{}", lab.port));
    config.trust = ServerTrust::CaPem(cert_pem.clone());
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Tls(_)), "{err}");
    // The same certificate by its own name passes; a pin ignores names altogether.
    config.server = format!("https://localhost:{}", lab.port);
    connect(&config).await.unwrap().close().await;
    config.server = format!("https://127.0.0.1:{}", lab.port);
    config.trust = ServerTrust::Fingerprint(fingerprint);
    connect(&config).await.unwrap().close().await;
}
