//! Our Socket.IO client against our own server (`doorbell-server`, socketioxide, HTTPS with a
//! self-signed certificate), Engine.IO 4 and 3, every kind of server trust.

use doorbell_protocol::wire::EngineIoVersion;
use doorbell_protocol::{
    ClientEvent, ErrorCode, IceCandidate, RoomId, SdpType, ServerEvent, SessionDescription,
};
use doorbell_server::{Secret, ServerConfig, TlsConfig, bind};
use doorbell_signaling::{
    ServerTrust, SignalingConfig, SignalingConnection, SignalingError, connect, format_fingerprint,
    parse_fingerprint,
};
use serde_json::json;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const TOKEN: &str = "agent-test-token-9f8e7d";
/// Upper bound on waiting for an event that must come; a hang becomes a failure.
const EVENT_BOUND: Duration = Duration::from_secs(10);

struct Server {
    port: u16,
    cert_pem: String,
    fingerprint: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), doorbell_server::ServerError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsConfig::SelfSigned {
                data_dir: dir.path().to_owned(),
                hostnames: vec![],
            },
        );
        config.doorbell_token = Some(Secret::new(TOKEN));
        let bound = bind(config).await.unwrap();
        let port = bound.local_addr().port();
        let cert_pem = bound.cert_pem().to_owned();
        let fingerprint = bound.cert_fingerprint().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Self {
            port,
            cert_pem,
            fingerprint,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    fn config(&self, host: &str, token: Option<&str>, version: EngineIoVersion) -> SignalingConfig {
        let mut config = SignalingConfig::new(format!("https://{host}:{}", self.port));
        config.token = token.map(str::to_owned);
        config.engine_io = version;
        config.trust = ServerTrust::CaPem(self.cert_pem.clone());
        config
    }

    fn pin(&self) -> [u8; 32] {
        parse_fingerprint(&self.fingerprint).expect("the server prints a SHA-256 fingerprint")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
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
        &json!({"type":"offer","sdp":"v=0\r\ns=page\r\n"}),
        SdpType::Offer,
    )
    .unwrap()
}

fn answer() -> SessionDescription {
    SessionDescription::from_json(
        &json!({"type":"answer","sdp":"v=0\r\ns=agent\r\n"}),
        SdpType::Answer,
    )
    .unwrap()
}

fn candidate() -> IceCandidate {
    IceCandidate::from_json(&json!({
        "candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"
    }))
    .unwrap()
    .unwrap()
}

/// The agent (token) opens a room, the page (no token) joins it, they exchange every event.
async fn full_call(mut agent: SignalingConnection, mut page: SignalingConnection, name: &str) {
    let r = room(name);
    agent.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Created(r.clone()));
    assert!(matches!(next(&mut agent).await, ServerEvent::IceServers(_)));
    page.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::Joined(r.clone()));
    assert!(matches!(next(&mut page).await, ServerEvent::IceServers(_)));
    assert_eq!(next(&mut agent).await, ServerEvent::NewPeer(r.clone()));
    page.sender().send(ClientEvent::Invite(offer())).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Invite(offer()));
    agent.sender().send(ClientEvent::Ok(answer())).unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::Ok(answer()));
    page.sender()
        .send(ClientEvent::IceCandidate(Some(candidate())))
        .unwrap();
    assert_eq!(
        next(&mut agent).await,
        ServerEvent::IceCandidate(Some(candidate()))
    );
    agent
        .sender()
        .send(ClientEvent::IceCandidate(None))
        .unwrap();
    assert_eq!(next(&mut page).await, ServerEvent::IceCandidate(None));
    // Closing the page's connection is a `bye` for the agent.
    page.close().await;
    assert_eq!(next(&mut agent).await, ServerEvent::Bye);
    agent.close().await;
}

#[tokio::test]
async fn eio4_agent_with_token_and_page_without_exchange_every_event() {
    let server = Server::start().await;
    let agent = connect(&server.config("127.0.0.1", Some(TOKEN), EngineIoVersion::V4))
        .await
        .unwrap();
    let page = connect(&server.config("localhost", None, EngineIoVersion::V4))
        .await
        .unwrap();
    full_call(agent, page, "eio4-room").await;
}

#[tokio::test]
async fn eio3_with_the_token_in_the_query_talks_to_an_eio4_peer() {
    let server = Server::start().await;
    let agent = connect(&server.config("127.0.0.1", Some(TOKEN), EngineIoVersion::V3))
        .await
        .unwrap();
    let page = connect(&server.config("127.0.0.1", None, EngineIoVersion::V4))
        .await
        .unwrap();
    full_call(agent, page, "eio3-room").await;
    let agent = connect(&server.config("127.0.0.1", Some(TOKEN), EngineIoVersion::V4))
        .await
        .unwrap();
    let page = connect(&server.config("127.0.0.1", None, EngineIoVersion::V3))
        .await
        .unwrap();
    full_call(agent, page, "eio3-page").await;
}

#[tokio::test]
async fn a_wrong_or_missing_token_cannot_open_a_room() {
    let server = Server::start().await;
    for version in [EngineIoVersion::V4, EngineIoVersion::V3] {
        for (token, code) in [
            (Some("not-the-token"), ErrorCode::Unauthorized),
            (None, ErrorCode::NoSuchRoom),
        ] {
            let mut client = connect(&server.config("127.0.0.1", token, version))
                .await
                .unwrap();
            client
                .sender()
                .send(ClientEvent::Join(room("fresh-room")))
                .unwrap();
            match next(&mut client).await {
                ServerEvent::Error(e) => assert_eq!(e.code, code, "{version:?} {token:?}"),
                other => panic!("{version:?} {token:?}: expected an error, got {other:?}"),
            }
            client.close().await;
        }
    }
}

#[tokio::test]
async fn every_trust_mode_reaches_the_server_and_a_wrong_pin_is_refused_clearly() {
    let server = Server::start().await;
    let pin = server.pin();
    assert_eq!(format_fingerprint(&pin), server.fingerprint);
    let modes = [
        ("localhost", ServerTrust::CaPem(server.cert_pem.clone())),
        ("127.0.0.1", ServerTrust::CaPem(server.cert_pem.clone())),
        ("127.0.0.1", ServerTrust::Fingerprint(pin)),
        ("localhost", ServerTrust::Fingerprint(pin)),
        ("127.0.0.1", ServerTrust::Insecure),
    ];
    for (host, trust) in modes {
        let mut config = server.config(host, Some(TOKEN), EngineIoVersion::V4);
        config.trust = trust.clone();
        let mut client = connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{host} {trust:?}: {e}"));
        let r = room("trust-room");
        client.sender().send(ClientEvent::Join(r.clone())).unwrap();
        assert_eq!(next(&mut client).await, ServerEvent::Created(r));
        client.close().await;
    }

    let mut config = server.config("127.0.0.1", Some(TOKEN), EngineIoVersion::V4);
    let mut wrong = pin;
    wrong[31] ^= 1;
    config.trust = ServerTrust::Fingerprint(wrong);
    let err = connect(&config).await.unwrap_err();
    assert!(
        matches!(&err, SignalingError::FingerprintMismatch { actual, .. } if *actual == server.fingerprint),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&server.fingerprint), "{message}");
    assert!(!message.contains(TOKEN), "{message}");

    // Web roots do not vouch for a self-signed certificate.
    config.trust = ServerTrust::WebPki;
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Tls(_)), "{err}");
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn eio3_errors_never_show_the_token_from_the_url() {
    // A port nobody listens on (bound, then released): the error names the server address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SignalingConfig::new(format!("http://127.0.0.1:{port}"));
    config.engine_io = EngineIoVersion::V3;
    config.token = Some(TOKEN.to_owned());
    let err = connect(&config).await.unwrap_err();
    assert!(matches!(err, SignalingError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert!(!format!("{err:?}").contains(TOKEN), "{err:?}");
}

#[tokio::test]
async fn the_connection_ends_when_the_server_shuts_down() {
    let mut server = Server::start().await;
    let mut agent = connect(&server.config("127.0.0.1", Some(TOKEN), EngineIoVersion::V4))
        .await
        .unwrap();
    let r = room("shutdown-room");
    agent.sender().send(ClientEvent::Join(r.clone())).unwrap();
    assert_eq!(next(&mut agent).await, ServerEvent::Created(r));
    assert!(matches!(next(&mut agent).await, ServerEvent::IceServers(_)));
    let _ = server.stop.take().unwrap().send(());
    // The server says `bye` to room members, then goes; whatever comes, the end is `None`.
    let ended = timeout(EVENT_BOUND, async {
        while let Some(event) = agent.recv().await {
            assert_eq!(event, ServerEvent::Bye);
        }
    })
    .await;
    assert!(ended.is_ok(), "recv() did not end after the server stopped");
}

/// Regression: socketioxide sends the CONNECT reply before it runs the connect handler, so a
/// `join` sent the moment the client is connected (what every doorbell and page does) used to
/// race the handler registration and, now and then, go unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_sent_right_after_connecting_is_always_answered() {
    let server = Server::start().await;
    for version in [EngineIoVersion::V4, EngineIoVersion::V3] {
        // The race it guards against hit about once in 500 connects (measured before the fix).
        for round in 0..500 {
            let mut connection = connect(&server.config("127.0.0.1", None, version))
                .await
                .unwrap();
            connection
                .sender()
                .send(ClientEvent::Join(RoomId::parse("NoSuchRoom").unwrap()))
                .unwrap();
            match timeout(EVENT_BOUND, connection.recv()).await {
                Ok(Some(ServerEvent::Error(e))) => assert_eq!(e.code, ErrorCode::NoSuchRoom),
                other => panic!("{version:?} round {round}: join unanswered: {other:?}"),
            }
            connection.close().await;
        }
    }
}
