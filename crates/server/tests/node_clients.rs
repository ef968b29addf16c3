//! Issue #2's scenarios driven over TLS by socket.io-client 4.x (Engine.IO 4) and 2.x
//! (Engine.IO 3) under Node, over websocket and polling, and mixed in one room.

mod common;

use common::{TOKEN, TestServer, assert_passed, run_peer, workspace_root};
use serde_json::json;

const SCENARIOS: &[&str] = &[
    "created_joined_new_peer_full",
    "relay_each_event_to_the_other_member_only",
    "order_is_kept",
    "two_rooms_never_see_each_other",
    "bye_has_no_ping_pong_and_empty_room_disappears",
    "disconnect_becomes_bye",
    "tokens",
    "tokenless_join_of_missing_room_creates_nothing",
    "invalid_payloads_get_errors_and_server_keeps_serving",
    "too_many_events_are_refused",
];

async fn run(door: (&str, &str), visitor: (&str, &str), open_rooms: bool) {
    let server = TestServer::start(open_rooms).await;
    let cfg = json!({
        "url": server.url,
        "caFile": server.ca_file,
        "token": TOKEN,
        "door": {"client": door.0, "transport": door.1},
        "visitor": {"client": visitor.0, "transport": visitor.1},
        "mode": if open_rooms { "open" } else { "token" },
    });
    let script = workspace_root().join("tests/server/scenarios.js");
    let output = run_peer("node", &[script.display().to_string(), cfg.to_string()]).await;
    if open_rooms {
        assert_passed(&output, &["open_rooms_let_anyone_create"]);
    } else {
        assert_passed(&output, SCENARIOS);
    }
    assert!(
        server.is_running(),
        "the server stopped during the scenarios"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_websocket() {
    run(("v4", "websocket"), ("v4", "websocket"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_polling() {
    run(("v4", "polling"), ("v4", "polling"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_websocket() {
    run(("v2", "websocket"), ("v2", "websocket"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_polling() {
    run(("v2", "polling"), ("v2", "polling"), false).await;
}

/// The doorbell on Engine.IO 4, the lab's page on Engine.IO 3, in the same rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_generations_in_one_room() {
    run(("v4", "websocket"), ("v2", "polling"), false).await;
    run(("v2", "websocket"), ("v4", "polling"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rooms_v4_and_v2() {
    run(("v4", "websocket"), ("v4", "websocket"), true).await;
    run(("v2", "polling"), ("v2", "polling"), true).await;
}
