//! The embedded TURN server against a real TURN client (the turn crate's), on loopback:
//! REST credentials allocate, expired or wrong ones do not, relaying to a refused peer (here
//! loopback) delivers nothing unless the range is allowed, and the caps hold.

use doorbell_protocol::Secret;
use doorbell_protocol::turn_rest::rest_credential;
use doorbell_turn::{TurnConfig, TurnServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use util::Conn;

const SECRET: &str = "embedded-turn-test-secret";
const REALM: &str = "doorbell.test";

async fn server(allow: &[&str], per_user: usize, total: usize) -> TurnServer {
    TurnServer::start(TurnConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        external_ip: "127.0.0.1".parse().unwrap(),
        secret: Secret::new(SECRET),
        realm: REALM.into(),
        allow_peers: allow.iter().map(|c| c.parse().unwrap()).collect(),
        max_allocations: total,
        max_allocations_per_user: per_user,
    })
    .await
    .expect("start the embedded TURN server")
}

fn username(valid_for: i64, label: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    format!("{}:{label}", now + valid_for)
}

async fn client(server: SocketAddr, username: &str, password: &str) -> Client {
    let conn = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.into(),
        password: password.into(),
        realm: REALM.into(),
        software: String::new(),
        rto_in_ms: 100,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

/// A client with the credentials the signaling server would hand out for `username`.
async fn signed_client(server: SocketAddr, username: &str) -> Client {
    client(
        server,
        username,
        &rest_credential(SECRET.as_bytes(), username),
    )
    .await
}

/// Sends through the relay to a peer socket and says whether it arrived.
async fn relays_to_loopback_peer(relay: &impl Conn) -> bool {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    for _ in 0..3 {
        // The first send also creates the permission.
        let _ = relay.send_to(b"hello", peer_addr).await;
        let mut buf = [0u8; 16];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await
        {
            return &buf[..n] == b"hello";
        }
    }
    false
}

#[tokio::test]
async fn rest_credentials_allocate_and_loopback_peers_are_refused_unless_allowed() {
    let refusing = server(&[], 4, 100).await;
    let user = username(600, "owner-a");
    let c = signed_client(refusing.local_addr(), &user).await;
    let relay = c.allocate().await.expect("valid credentials allocate");
    assert!(
        !relays_to_loopback_peer(&relay).await,
        "loopback is not relayed to"
    );
    c.close().await.unwrap();
    refusing.close().await;

    let allowing = server(&["127.0.0.0/8"], 4, 100).await;
    let c = signed_client(allowing.local_addr(), &user).await;
    let relay = c.allocate().await.expect("allocate");
    assert!(
        relays_to_loopback_peer(&relay).await,
        "an allowed range is relayed to"
    );
    c.close().await.unwrap();
    allowing.close().await;
}

#[tokio::test]
async fn expired_or_wrong_credentials_do_not_allocate() {
    let s = server(&[], 4, 100).await;
    let expired = username(-10, "owner-b");
    let c = signed_client(s.local_addr(), &expired).await;
    assert!(c.allocate().await.is_err(), "an expired username");
    c.close().await.unwrap();
    let user = username(600, "owner-b");
    let c = client(
        s.local_addr(),
        &user,
        &rest_credential(b"another secret", &user),
    )
    .await;
    assert!(
        c.allocate().await.is_err(),
        "a password from another secret"
    );
    c.close().await.unwrap();
    s.close().await;
}

#[tokio::test]
async fn allocations_are_capped_per_user_and_in_total() {
    let s = server(&[], 1, 2).await;
    let user = username(600, "door-c");
    let first = signed_client(s.local_addr(), &user).await;
    let _kept = first.allocate().await.expect("the first allocation");
    let second = signed_client(s.local_addr(), &user).await;
    assert!(second.allocate().await.is_err(), "one per user");
    let other = username(600, "owner-c");
    let third = signed_client(s.local_addr(), &other).await;
    let _kept_too = third.allocate().await.expect("another user");
    let late = username(600, "owner-d");
    let fourth = signed_client(s.local_addr(), &late).await;
    assert!(fourth.allocate().await.is_err(), "two in total");
    for c in [first, second, third, fourth] {
        c.close().await.unwrap();
    }
    s.close().await;
}
