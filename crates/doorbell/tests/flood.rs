//! Hostile load (issue #6): while 10,000 connections from other loopback addresses stall in
//! the TLS handshake (a slowloris flood: a few bytes, then nothing), a doorbell with its token
//! still opens a room and a browser still joins it and gets the call.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use support::{Agent, Server};
use tokio::io::AsyncWriteExt;

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

#[test]
fn a_call_still_works_during_a_flood_of_stalled_connections() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let held = runtime.block_on(flood(server.addr, FLOOD));
    assert_eq!(held.len(), FLOOD);

    let cert = server.cert_path();
    let mut agent = Agent::start(
        &[
            "--server",
            &server.url(),
            "--ca-cert",
            cert.to_str().expect("utf-8"),
            "--video-size",
            "320x240",
        ],
        &[("DOORBELL_TOKEN", &server.token)],
    );
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);
    support::answer_briefly_and_hang_up(&mut agent, &url, WAIT);
    // The flood was held open the whole time; close it inside its runtime.
    runtime.block_on(async move { drop(held) });
}
