//! Issue #2's scenarios driven over TLS by python-socketio 5.x, websocket and polling.

mod common;

use common::{TOKEN, TestServer, assert_passed, run_peer, workspace_root};

const SCENARIOS: &[&str] = &[
    "created_joined_new_peer_full",
    "relay_to_the_other_member_only",
    "bye_has_no_ping_pong",
    "disconnect_becomes_bye",
    "tokens",
    "invalid_payloads",
];

async fn run(transport: &str) {
    let server = TestServer::start(false).await;
    let script = workspace_root().join("tests/server/python_peer.py");
    let output = run_peer(
        "python3",
        &[
            script.display().to_string(),
            server.url.clone(),
            server.ca_file.display().to_string(),
            TOKEN.to_owned(),
            transport.to_owned(),
        ],
    )
    .await;
    assert_passed(&output, SCENARIOS);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websocket() {
    run("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_polling() {
    run("polling").await;
}
