//! The client against a scripted Engine.IO/Socket.IO server over an in-memory pipe, so that
//! exact packets, silence and timeouts can be tested with tokio's paused clock.

use doorbell_protocol::wire::EngineIoVersion;
use doorbell_protocol::{ClientEvent, RoomId, SdpType, ServerEvent, SessionDescription};
use doorbell_signaling::{
    SignalingConfig, SignalingConnection, SignalingError, connect_over_stream,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::io::{DuplexStream, duplex};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type Stub = WebSocketStream<DuplexStream>;

const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);
const OPEN: &str = r#"0{"sid":"stub-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

fn config(version: EngineIoVersion, token: Option<&str>) -> SignalingConfig {
    let mut config = SignalingConfig::new("http://stub.invalid:8080");
    config.engine_io = version;
    config.token = token.map(str::to_owned);
    config
}

/// Accepts the websocket and returns it with the request's path and query.
// The callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn accept(server: DuplexStream) -> (Stub, String) {
    let mut uri = String::new();
    let ws =
        tokio_tungstenite::accept_hdr_async(server, |request: &Request, response: Response| {
            uri = request.uri().to_string();
            Ok(response)
        })
        .await
        .unwrap();
    (ws, uri)
}

async fn send(ws: &mut Stub, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text message, or `None` when the client closed.
async fn recv_text(ws: &mut Stub) -> Option<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Some(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Connects the client to a stub that runs the normal Engine.IO 4 handshake; returns both ends
/// and the client's `40` packet.
async fn connected_v4(token: Option<&str>) -> (SignalingConnection, Stub, String) {
    let (client_end, server_end) = duplex(256 * 1024);
    let config = config(EngineIoVersion::V4, token);
    let (client, (ws, connect_packet)) =
        tokio::join!(connect_over_stream(client_end, &config), async {
            let (mut ws, _) = accept(server_end).await;
            send(&mut ws, OPEN).await;
            let connect_packet = recv_text(&mut ws).await.unwrap();
            send(&mut ws, r#"40{"sid":"socket-sid"}"#).await;
            (ws, connect_packet)
        });
    (client.unwrap(), ws, connect_packet)
}

#[tokio::test(start_paused = true)]
async fn eio4_sends_the_token_only_in_the_auth_payload() {
    let (client_end, server_end) = duplex(64 * 1024);
    let config = config(EngineIoVersion::V4, Some("s3cret"));
    let (client, (uri, connect_packet)) =
        tokio::join!(connect_over_stream(client_end, &config), async {
            let (mut ws, uri) = accept(server_end).await;
            send(&mut ws, OPEN).await;
            let packet = recv_text(&mut ws).await.unwrap();
            send(&mut ws, r#"40{"sid":"socket-sid"}"#).await;
            // Keep the stub's end open while the client finishes.
            tokio::spawn(async move { while recv_text(&mut ws).await.is_some() {} });
            (uri, packet)
        });
    assert_eq!(uri, "/socket.io/?EIO=4&transport=websocket");
    assert_eq!(connect_packet, r#"40{"token":"s3cret"}"#);
    assert_eq!(client.unwrap().sid(), "stub-sid");
}

#[tokio::test(start_paused = true)]
async fn eio4_without_a_token_connects_with_a_bare_40() {
    let (client, _ws, connect_packet) = connected_v4(None).await;
    assert_eq!(connect_packet, "40");
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn eio4_connect_error_is_refused_with_the_servers_reason() {
    let (client_end, server_end) = duplex(64 * 1024);
    let config = config(EngineIoVersion::V4, Some("wrong-token"));
    let (client, _ws) = tokio::join!(connect_over_stream(client_end, &config), async {
        let (mut ws, _) = accept(server_end).await;
        send(&mut ws, OPEN).await;
        recv_text(&mut ws).await.unwrap();
        send(
            &mut ws,
            r#"44{"message":"unauthorized: the doorbell token is wrong"}"#,
        )
        .await;
        ws
    });
    match client {
        Err(SignalingError::Refused(reason)) => {
            assert_eq!(reason, "unauthorized: the doorbell token is wrong");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn eio4_answers_server_pings_and_stays_alive_past_the_silence_bound() {
    let (mut client, mut ws, _) = connected_v4(None).await;
    let start = Instant::now();
    for round in 0..5 {
        sleep(PING_INTERVAL).await;
        send(&mut ws, "2").await;
        assert_eq!(
            recv_text(&mut ws).await.as_deref(),
            Some("3"),
            "round {round}"
        );
    }
    assert!(start.elapsed() > 2 * (PING_INTERVAL + PING_TIMEOUT));
    send(&mut ws, r#"42["created","still-here"]"#).await;
    assert_eq!(
        client.recv().await,
        Some(ServerEvent::Created(RoomId::parse("still-here").unwrap()))
    );
}

#[tokio::test(start_paused = true)]
async fn eio4_a_silent_server_ends_the_connection_after_ping_interval_plus_timeout() {
    let (mut client, mut ws, _) = connected_v4(None).await;
    let sender = client.sender();
    let start = Instant::now();
    // The stub reads whatever comes but never answers.
    let stub = tokio::spawn(async move {
        let mut received = Vec::new();
        while let Some(text) = recv_text(&mut ws).await {
            received.push(text);
        }
        received
    });
    assert_eq!(client.recv().await, None);
    let waited = start.elapsed();
    assert!(
        waited >= PING_INTERVAL + PING_TIMEOUT,
        "gave up after {waited:?}"
    );
    assert!(
        waited < PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(matches!(
        sender.send(ClientEvent::Bye(None)),
        Err(SignalingError::Closed)
    ));
    drop(client);
    // A dead connection is dropped, not closed politely (the server would not hear it).
    assert!(!stub.await.unwrap().contains(&"41".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn eio3_token_in_query_server_connects_and_the_client_pings() {
    let (client_end, server_end) = duplex(64 * 1024);
    let config = config(EngineIoVersion::V3, Some("tok en"));
    let (client, (mut ws, uri)) = tokio::join!(connect_over_stream(client_end, &config), async {
        let (mut ws, uri) = accept(server_end).await;
        send(&mut ws, OPEN).await;
        // socket.io 2.x connects the default namespace by itself.
        send(&mut ws, "40").await;
        (ws, uri)
    });
    let mut client = client.unwrap();
    assert_eq!(uri, "/socket.io/?EIO=3&transport=websocket&token=tok+en");

    let start = Instant::now();
    for round in 1..=4 {
        assert_eq!(
            recv_text(&mut ws).await.as_deref(),
            Some("2"),
            "ping {round}"
        );
        // No earlier than the interval: the client paces its pings.
        assert!(
            start.elapsed() >= PING_INTERVAL * round,
            "ping {round} too early"
        );
        send(&mut ws, "3").await;
    }
    send(&mut ws, r#"42["new_peer","eio3-room"]"#).await;
    assert_eq!(
        client.recv().await,
        Some(ServerEvent::NewPeer(RoomId::parse("eio3-room").unwrap()))
    );

    // Now the server stops answering pings: the connection ends within the bound.
    let last_answer = Instant::now();
    let stub = tokio::spawn(async move { while recv_text(&mut ws).await.is_some() {} });
    assert_eq!(client.recv().await, None);
    let waited = last_answer.elapsed();
    assert!(
        waited >= PING_INTERVAL + PING_TIMEOUT,
        "gave up after {waited:?}"
    );
    assert!(
        waited < PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
    drop(client);
    stub.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn eio3_refusal_with_a_bare_string() {
    let (client_end, server_end) = duplex(64 * 1024);
    let config = config(EngineIoVersion::V3, None);
    let (client, _ws) = tokio::join!(connect_over_stream(client_end, &config), async {
        let (mut ws, _) = accept(server_end).await;
        send(&mut ws, OPEN).await;
        send(&mut ws, r#"44"Not authorized""#).await;
        ws
    });
    assert!(matches!(client, Err(SignalingError::Refused(r)) if r == "Not authorized"));
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_opens_times_out() {
    let (client_end, server_end) = duplex(64 * 1024);
    let mut config = config(EngineIoVersion::V4, None);
    config.connect_timeout = Duration::from_secs(7);
    let start = Instant::now();
    let (client, _ws) = tokio::join!(connect_over_stream(client_end, &config), async {
        accept(server_end).await.0 // websocket yes, Engine.IO open never
    });
    assert!(matches!(client, Err(SignalingError::Timeout(t)) if t == Duration::from_secs(7)));
    assert!(start.elapsed() >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_non_socket_io_first_packet_is_a_protocol_error() {
    let (client_end, server_end) = duplex(64 * 1024);
    let config = config(EngineIoVersion::V4, None);
    let (client, _ws) = tokio::join!(connect_over_stream(client_end, &config), async {
        let (mut ws, _) = accept(server_end).await;
        send(&mut ws, "hello, I am not Engine.IO").await;
        ws
    });
    assert!(
        matches!(client, Err(SignalingError::Protocol(_))),
        "{client:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_and_foreign_packets_are_skipped_without_ending_the_connection() {
    let (mut client, mut ws, _) = connected_v4(None).await;
    for junk in [
        r#"42["created",5]"#,
        r#"42["created","bad room!"]"#,
        r#"42["nonsense","x"]"#,
        r#"42["join","r1"]"#,
        r#"42[]"#,
        r#"42{"not":"an array"}"#,
        r#"42/admin,["created","other-namespace"]"#,
        r#"451-["created",{"_placeholder":true,"num":0}]"#,
        r#"431["ack"]"#,
        r#"40{"sid":"again"}"#,
        "4garbage",
        "b4AAAA",
        "x",
        "",
        "6",
        "5",
        r#"0{"sid":"x"}"#,
    ] {
        send(&mut ws, junk).await;
    }
    ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    send(&mut ws, r#"42["created","good-room"]"#).await;
    send(&mut ws, r#"42["bye"]"#).await;
    send(
        &mut ws,
        r#"42["error",{"code":"no_such_room","message":"this call has ended"}]"#,
    )
    .await;
    assert_eq!(
        client.recv().await,
        Some(ServerEvent::Created(RoomId::parse("good-room").unwrap()))
    );
    assert_eq!(client.recv().await, Some(ServerEvent::Bye));
    assert!(
        matches!(client.recv().await, Some(ServerEvent::Error(e)) if e.message == "this call has ended")
    );
}

#[tokio::test(start_paused = true)]
async fn socket_io_disconnect_from_the_server_ends_the_connection() {
    let (mut client, mut ws, _) = connected_v4(None).await;
    send(&mut ws, "41").await;
    assert_eq!(client.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn engine_io_close_from_the_server_ends_the_connection() {
    let (mut client, mut ws, _) = connected_v4(None).await;
    send(&mut ws, "1").await;
    assert_eq!(client.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn events_go_out_as_single_argument_socket_io_events_from_any_task() {
    let (client, mut ws, _) = connected_v4(None).await;
    let sender = client.sender();
    let offer =
        SessionDescription::from_json(&json!({"type":"offer","sdp":"v=0\r\n"}), SdpType::Offer)
            .unwrap();
    tokio::spawn(async move {
        sender
            .send(ClientEvent::Join(RoomId::parse("room-x").unwrap()))
            .unwrap();
        sender.send(ClientEvent::Invite(offer)).unwrap();
        sender.send(ClientEvent::IceCandidate(None)).unwrap();
        sender.send(ClientEvent::Bye(None)).unwrap();
    })
    .await
    .unwrap();
    assert_eq!(recv_text(&mut ws).await.unwrap(), r#"42["join","room-x"]"#);
    let invite = recv_text(&mut ws).await.unwrap();
    let value: serde_json::Value =
        serde_json::from_str(invite.strip_prefix("42").unwrap()).unwrap();
    assert_eq!(value, json!(["invite", {"type":"offer","sdp":"v=0\r\n"}]));
    assert_eq!(
        recv_text(&mut ws).await.unwrap(),
        r#"42["ice_candidate",null]"#
    );
    assert_eq!(recv_text(&mut ws).await.unwrap(), r#"42["bye",null]"#);
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn close_says_goodbye_on_both_layers() {
    let (client, mut ws, _) = connected_v4(None).await;
    let sender = client.sender();
    client.close().await;
    assert_eq!(recv_text(&mut ws).await.as_deref(), Some("41"));
    assert_eq!(recv_text(&mut ws).await.as_deref(), Some("1"));
    assert_eq!(recv_text(&mut ws).await, None);
    assert!(matches!(
        sender.send(ClientEvent::Bye(None)),
        Err(SignalingError::Closed)
    ));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_connection_also_leaves_politely() {
    let (client, mut ws, _) = connected_v4(None).await;
    drop(client);
    assert_eq!(recv_text(&mut ws).await.as_deref(), Some("41"));
}

#[tokio::test(start_paused = true)]
async fn close_works_while_unread_events_fill_the_queue() {
    let (client, mut ws, _) = connected_v4(None).await;
    // Far more events than the client queues; nobody reads them.
    for i in 0..500 {
        send(&mut ws, &format!(r#"42["created","room-{i}"]"#)).await;
    }
    let closing = tokio::spawn(client.close());
    let mut goodbye = Vec::new();
    while let Some(text) = recv_text(&mut ws).await {
        goodbye.push(text);
    }
    closing.await.unwrap();
    assert_eq!(
        goodbye.first().map(String::as_str),
        Some("41"),
        "{goodbye:?}"
    );
}
