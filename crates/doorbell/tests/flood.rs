//! Hostile load (issue #6): while 10,000 connections from other loopback addresses stall in
//! the TLS handshake (a slowloris flood: a few bytes, then nothing), or while thousands send
//! their request headers too slowly and hold Engine.IO long-polls they never read, a doorbell
//! with its token still opens a room and a browser still joins it and gets the call.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{Agent, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const FLOOD: usize = 10_000;
const WAIT: Duration = Duration::from_secs(60);

/// Opens `count` connections spread over source addresses 127.0.0.2.., each sending the first
/// bytes of a TLS record and then stalling.
async fn flood(server: SocketAddr, count: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let source: IpAddr = [127, 0, 0, 2 + (i % 200) as u8].into();
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind a loopback source address");
        let mut stream = match socket.connect(server).await {
            Ok(s) => s,
            Err(e) => panic!(
                "flood connection {i} failed: {e} (open files limit: raise `ulimit -n` to 12000+)"
            ),
        };
        // A TLS handshake record header, then silence.
        let _ = stream.write_all(&[0x16, 0x03, 0x01]).await;
        held.push(stream);
    }
    held
}

/// A doorbell with its token connects, rings, and a browser answers, decodes video and hangs up.
fn a_call_goes_through(server: &Server) {
    let mut agent = Agent::for_server(server, &["--video-size", "320x240"]);
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);
    support::answer_briefly_and_hang_up(&mut agent, &url, WAIT);
}

#[test]
fn a_call_still_works_during_a_flood_of_stalled_connections() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let held = runtime.block_on(flood(server.addr, FLOOD));
    assert_eq!(held.len(), FLOOD);

    a_call_goes_through(&server);
    // The flood was held open the whole time; close it inside its runtime.
    runtime.block_on(async move { drop(held) });
}

/// Connections that finish the TLS handshake and then send headers that never end.
const SLOW_HEADERS: usize = 1_000;
/// Engine.IO polling sessions whose long-poll the client never reads.
const HELD_POLLS: usize = 1_000;

/// Spreads flood connections over 200 loopback source addresses, as the stalled flood does,
/// so the per-address limits are not what stops them.
fn source_address(i: usize) -> IpAddr {
    [127, 0, 0, 2 + (i % 200) as u8].into()
}

/// A TLS client that trusts the test server's self-signed certificate.
fn connector_trusting(cert_pem: &Path) -> TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_pem).expect("read cert.pem") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("trust it");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    server: SocketAddr,
    source: IpAddr,
    connector: &TlsConnector,
) -> TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind a loopback source address");
    let tcp = socket.connect(server).await.unwrap_or_else(|e| {
        panic!("flood connection failed: {e} (open files limit: raise `ulimit -n` to 12000+)")
    });
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the server")
}

/// Sends an Engine.IO 4 polling handshake on `stream` and returns the session id.
async fn polling_handshake(stream: &mut TlsStream<TcpStream>) -> String {
    stream
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send the Engine.IO handshake");
    let mut response = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf).await.expect("read the handshake");
        assert!(n > 0, "the server closed a polling handshake");
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some(start) = text.find("\"sid\":\"")
            && let Some(end) = text[start + 7..].find('"')
        {
            return text[start + 7..start + 7 + end].to_owned();
        }
    }
}

/// Opens an Engine.IO 4 polling session and sends its first long-poll, which the server holds
/// open (there is nothing to send yet) and the client never reads.
async fn held_poll(mut stream: TlsStream<TcpStream>) -> TlsStream<TcpStream> {
    let sid = polling_handshake(&mut stream).await;
    let poll = format!(
        "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    stream
        .write_all(poll.as_bytes())
        .await
        .expect("send a long-poll");
    stream
}

/// Whether the server has closed `stream` by `deadline` (reading and discarding anything it
/// sent first, e.g. an error response).
async fn closed_by(stream: &mut TlsStream<TcpStream>, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[test]
fn a_call_still_works_during_slow_requests_and_held_polls() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let connector = connector_trusting(&server.cert_path());
    let flood_started = tokio::time::Instant::now();
    let (mut slow, held) = runtime.block_on(async {
        let mut slow = Vec::with_capacity(SLOW_HEADERS);
        for i in 0..SLOW_HEADERS {
            let mut stream = tls_connect(server.addr, source_address(i), &connector).await;
            // A request line and the start of a header, then nothing.
            stream
                .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: loc")
                .await
                .expect("send partial headers");
            stream.flush().await.expect("flush");
            slow.push(stream);
        }
        let mut held = Vec::with_capacity(HELD_POLLS);
        for i in 0..HELD_POLLS {
            let stream = tls_connect(server.addr, source_address(i + 7), &connector).await;
            held.push(held_poll(stream).await);
        }
        (slow, held)
    });
    let flood_opened = flood_started.elapsed();

    a_call_goes_through(&server);

    // Headers that never end cost the server a connection for HEADER_READ_TIMEOUT (10 s)
    // after it starts waiting, not forever: every slow connection is closed by then, with a
    // margin for a loaded machine.
    let deadline = flood_started + flood_opened + Duration::from_secs(10) + Duration::from_secs(20);
    let still_open = runtime.block_on(async {
        let mut still_open = 0;
        for stream in &mut slow {
            if !closed_by(stream, deadline).await {
                still_open += 1;
            }
        }
        still_open
    });
    assert_eq!(
        still_open, 0,
        "{still_open} of {SLOW_HEADERS} slow-header connections were still open 30 s after the flood"
    );
    eprintln!(
        "slow requests: {SLOW_HEADERS} slow-header connections and {HELD_POLLS} held polls opened in {:.1} s; the call went through; all slow ones closed by {:.1} s after the flood began",
        flood_opened.as_secs_f64(),
        flood_started.elapsed().as_secs_f64()
    );
    runtime.block_on(async move { drop((slow, held)) });
}

#[test]
fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let per_ip = 4;
    let server = Server::start_with(&["--max-connections-per-ip", &per_ip.to_string()]);
    let cap = doorbell_server::Limits {
        max_connections_per_ip: per_ip,
        ..Default::default()
    }
    .tcp_caps()
    .per_ip;
    let source: IpAddr = [127, 0, 0, 251].into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..=cap {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(SocketAddr::new(source, 0))
                .expect("bind a loopback source address");
            let mut stream = socket.connect(server.addr).await.expect("connect");
            // The server counts each connection in its own task, in no fixed order, so any one
            // of them may be the one refused: each reports whether it was closed at once
            // (the others stay open until the 10 s handshake timeout).
            tasks.spawn(async move {
                let mut buf = [0u8; 16];
                let read =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                matches!(read, Ok(Ok(0)) | Ok(Err(_)))
            });
        }
        let closed = tasks
            .join_all()
            .await
            .into_iter()
            .filter(|closed| *closed)
            .count();
        assert_eq!(
            closed,
            1,
            "{} connections from one address with a cap of {cap}",
            cap + 1
        );
        // Another address still gets served.
        let connector = connector_trusting(&server.cert_path());
        let mut other = tls_connect(server.addr, [127, 0, 0, 252].into(), &connector).await;
        other
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut response = Vec::new();
        other
            .read_to_end(&mut response)
            .await
            .expect("read the response");
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    });
}

/// Completes an Engine.IO 4 polling handshake and the Socket.IO connect (no token) on
/// `stream`, as a browser does, and returns once the server has read the connect.
async fn tokenless_session(mut stream: TlsStream<TcpStream>) -> TlsStream<TcpStream> {
    let sid = polling_handshake(&mut stream).await;
    let mut buf = [0u8; 2048];
    let connect = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40"
    );
    stream
        .write_all(connect.as_bytes())
        .await
        .expect("send the Socket.IO connect");
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\nok") {
        let n = stream
            .read(&mut buf)
            .await
            .expect("read the connect answer");
        assert!(n > 0, "the server closed the session on connect");
        answer.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Security review M2, as an attacker would: `--max-connections 20` filled with Socket.IO
/// sessions that present no token and join nothing, all from one address. The doorbell must
/// still connect and ring with a link (a tenth of the cap is kept for the token).
#[test]
fn sessions_without_the_token_cannot_keep_the_doorbell_from_ringing() {
    let server = Server::start_with(&["--max-connections", "20"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let connector = connector_trusting(&server.cert_path());
    let _held: Vec<_> = runtime.block_on(async {
        let mut held = Vec::new();
        for _ in 0..20 {
            let stream = tls_connect(server.addr, [127, 0, 0, 9].into(), &connector).await;
            held.push(tokenless_session(stream).await);
        }
        held
    });
    let mut agent = Agent::for_server(&server, &["--video-size", "320x240"]);
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);
    assert!(url.contains("?room="), "rang with a link: {url}");
}
