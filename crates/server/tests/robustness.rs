//! Thousands of random and malformed Engine.IO / Socket.IO frames over raw websockets and raw
//! polling requests (Engine.IO 3 and 4); the server must stay up and serve a normal call after.

mod common;

use common::{TOKEN, TestServer, assert_passed, run_peer, workspace_root};
use doorbell_server::Limits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_malformed_frames_do_not_hurt() {
    // Enough connections for the fuzzer's parallel sockets from one address.
    let limits = Limits {
        max_connections_per_ip: 1000,
        ..Limits::default()
    };
    let server = TestServer::start_with(false, limits).await;
    let script = workspace_root().join("tests/server/fuzz.js");
    let output = run_peer(
        "node",
        &[
            script.display().to_string(),
            server.url.clone(),
            server.ca_file.display().to_string(),
            TOKEN.to_owned(),
            "20261125".to_owned(),
        ],
    )
    .await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_passed(&output, &["fuzz_then_normal_call"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let frames: u64 = stdout
        .split("\"wsFrames\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 2000, "only {frames} websocket frames were sent");
    assert!(server.is_running());
    server.stop().await.unwrap();
}
