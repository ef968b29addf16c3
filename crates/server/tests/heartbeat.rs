//! The Engine.IO heartbeat and send queue of a websocket connection, for both protocol
//! generations the server speaks (Engine.IO 4, and 3 for Socket.IO v2 clients).
//!
//! The server carries a patched engineioxide (patches/README.md) that runs a websocket
//! connection's reader, writer and heartbeat in one task instead of three and boxes the packets
//! of its send queue: these tests pin down what a client sees of that, with short intervals so
//! they run in real time.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::socket::DisconnectReason;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a client may wait for what the server owes it: generous for a busy machine.
const PATIENCE: Duration = Duration::from_secs(5);

type Client = WebSocketStream<TcpStream>;

/// A Socket.IO server on a free port that reports each disconnect's reason.
async fn serve(max_buffer_size: usize) -> (u16, mpsc::UnboundedReceiver<DisconnectReason>) {
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_buffer_size(max_buffer_size)
        .build_layer();
    let (disconnects, reasons) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        let disconnects = disconnects.clone();
        async move { on_connect(socket, disconnects) }
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on loopback");
    let port = listener.local_addr().expect("the bound address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, reasons)
}

fn on_connect(socket: SocketRef, disconnects: mpsc::UnboundedSender<DisconnectReason>) {
    socket.on_disconnect(move |reason: DisconnectReason| {
        let disconnects = disconnects.clone();
        async move {
            disconnects.send(reason).ok();
        }
    });
    // For the backpressure test: `flood` queues packets until the queue refuses one, then
    // sends how many it took.
    socket.on("flood", |socket: SocketRef| async move {
        let payload = "x".repeat(60_000);
        let mut queued = 0u32;
        while socket.emit("payload", &payload).is_ok() {
            queued += 1;
            if queued == 100_000 {
                break;
            }
        }
        // The count goes behind the packets queued, once the queue has room again.
        while socket.emit("queued", &queued).is_err() && socket.connected() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

/// A websocket client of protocol `eio` (3 or 4), past the open packet and connected to "/".
async fn connect(port: u16, eio: u8) -> Client {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO={eio}&transport=websocket");
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the server");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("the websocket handshake");
    let open = next_text(&mut ws).await.expect("the open packet");
    assert!(open.starts_with("0{"), "open packet, got {open:?}");
    // Socket.IO v2 (over Engine.IO 3) joins "/" by itself; v5 asks.
    if eio == 4 {
        ws.send(Message::text("40")).await.expect("send connect");
    }
    loop {
        let text = next_text(&mut ws).await.expect("the connect answer");
        match text.as_str() {
            // The first Engine.IO 4 ping can come before the answer.
            "2" => ws.send(Message::text("3")).await.expect("send pong"),
            _ => {
                assert!(text.starts_with("40"), "namespace connect, got {text:?}");
                return ws;
            }
        }
    }
}

/// The next text frame, or `None` once the server closed the connection.
async fn next_text(ws: &mut Client) -> Option<String> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("the server answers in time")
        {
            Some(Ok(Message::Text(text))) => return Some(text.to_string()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn next_reason(reasons: &mut mpsc::UnboundedReceiver<DisconnectReason>) -> DisconnectReason {
    tokio::time::timeout(PATIENCE, reasons.recv())
        .await
        .expect("a disconnect in time")
        .expect("the server is running")
}

#[tokio::test]
async fn an_engine_io_4_client_that_answers_pings_stays_connected() {
    let (port, mut reasons) = serve(128).await;
    let mut ws = connect(port, 4).await;
    for _ in 0..4 {
        assert_eq!(next_text(&mut ws).await.as_deref(), Some("2"), "a ping");
        ws.send(Message::text("3")).await.expect("send pong");
    }
    // Four intervals later the connection still carries events both ways.
    ws.send(Message::text("42[\"nothing\"]"))
        .await
        .expect("send an event");
    assert!(reasons.try_recv().is_err(), "no disconnect");
}

#[tokio::test]
async fn an_engine_io_4_client_that_stops_answering_pings_is_closed_by_the_ping_timeout() {
    let (port, mut reasons) = serve(128).await;
    let mut ws = connect(port, 4).await;
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("2"), "a ping");
    // No pong: the server gives up after the ping timeout, says close ("1") and hangs up.
    let mut seen = Vec::new();
    while let Some(text) = next_text(&mut ws).await {
        seen.push(text);
    }
    assert_eq!(seen.last().map(String::as_str), Some("1"), "saw {seen:?}");
    assert_eq!(
        next_reason(&mut reasons).await,
        DisconnectReason::HeartbeatTimeout
    );
}

#[tokio::test]
async fn an_engine_io_3_client_is_answered_pong_and_closed_when_its_pings_stop() {
    let (port, mut reasons) = serve(128).await;
    let mut ws = connect(port, 3).await;
    // Engine.IO 3: the client pings, the server answers.
    for _ in 0..3 {
        ws.send(Message::text("2")).await.expect("send ping");
        assert_eq!(next_text(&mut ws).await.as_deref(), Some("3"), "a pong");
        tokio::time::sleep(PING_INTERVAL / 2).await;
    }
    assert!(reasons.try_recv().is_err(), "no disconnect while pinging");
    // Silent for longer than interval + timeout: closed as dead.
    while next_text(&mut ws).await.is_some() {}
    assert_eq!(
        next_reason(&mut reasons).await,
        DisconnectReason::HeartbeatTimeout
    );
}

#[tokio::test]
async fn a_flood_stops_at_the_send_queue_bound_and_every_packet_it_took_arrives() {
    // A queue of 8 packets: a handler emitting without end is refused once the queue is full
    // (`max_buffer_size`), instead of the queue growing without bound.
    let (port, mut reasons) = serve(8).await;
    let mut ws = connect(port, 4).await;
    ws.send(Message::text("42[\"flood\"]"))
        .await
        .expect("send flood");
    // Every packet the queue took arrives, then the count.
    let mut payloads = 0u32;
    let queued = loop {
        let text = next_text(&mut ws).await.expect("the connection stays open");
        if text == "2" {
            ws.send(Message::text("3")).await.expect("send pong");
        } else if text.starts_with("42[\"payload\"") {
            payloads += 1;
        } else if let Some(count) = text.strip_prefix("42[\"queued\",") {
            break count.trim_end_matches(']').parse::<u32>().expect("a count");
        }
    };
    assert!(queued < 100_000, "the queue never refused a packet");
    assert_eq!(payloads, queued, "every queued packet was delivered");
    assert!(reasons.try_recv().is_err(), "no disconnect");
}
