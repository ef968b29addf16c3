//! The ntfy channel against an ntfy stand-in on loopback: `POST /{topic}` with `Click`,
//! `Title`, `Priority: high`, `Tags`; the JPEG as the attachment body (`Filename`, text in
//! `Message`) or the text as the body; optional Bearer token; ntfy's errors.

mod notify_support;

use notify_support::*;
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "tk_ntfy_secret_token";
/// A topic with access control on the stand-in (random-looking: the config refuses guessable
/// topics without a token).
const PROTECTED: &str = "Protected-Xq3vR8tLm2PzK7wYb1NcDa";

/// Answers like ntfy: a protected topic needs the Bearer token (40101), else the message JSON.
async fn ntfy() -> StandIn {
    StandIn::start(|r| {
        if r.path.strip_prefix('/') == Some(PROTECTED)
            && r.header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}"))
        {
            return Answer::json(
                401,
                json!({"code": 40101, "http": 401, "error": "unauthorized",
                       "link": "https://ntfy.sh/docs/publish/#authentication"}),
            );
        }
        Answer::json(
            200,
            json!({"id": "sPs71M8A2T", "time": 1, "event": "message",
                   "topic": r.path.trim_start_matches('/')}),
        )
    })
    .await
}

#[tokio::test]
async fn snapshot_is_the_attachment_and_the_headers_are_set() {
    let mut server = ntfy().await;
    let n = build_one(&format!(
        "kind = \"ntfy\"\nserver = \"{}\"\ntopic = \"{PROTECTED}\"\ntoken_file = \"{}\"\n",
        server.base,
        token_file().display()
    ));
    let ring = ring(true);
    assert_sent(&deliver(n, ring.clone(), Duration::from_secs(10)).await);
    let request = server.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/{PROTECTED}"));
    assert_eq!(request.header("click").as_deref(), Some(LINK));
    assert_eq!(request.header("title").as_deref(), Some("Doorbell"));
    assert_eq!(request.header("priority").as_deref(), Some("high"));
    assert_eq!(request.header("tags").as_deref(), Some("bell,door"));
    assert_eq!(request.header("filename").as_deref(), Some("doorbell.jpg"));
    assert!(request.header("message").unwrap().contains(LINK));
    assert_eq!(
        request.header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        &request.body[..],
        ring.snapshot_jpeg.as_deref().unwrap().as_slice()
    );
    assert_eq!(jpeg_size(&request.body), (WIDTH, HEIGHT));
}

fn token_file() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("doorbell-ntfy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    path
}

#[tokio::test]
async fn text_is_the_body_without_snapshot_and_no_token_is_sent_unasked() {
    let mut server = ntfy().await;
    let n = build_one(&format!(
        "kind = \"ntfy\"\nserver = \"{}\"\ntopic = \"doorbell-Xq3vR8tLm2PzK7wYb1NcDa\"\n",
        server.base
    ));
    assert_sent(&deliver(n, ring(false), Duration::from_secs(10)).await);
    let request = server.next_request().await;
    assert_eq!(request.path, "/doorbell-Xq3vR8tLm2PzK7wYb1NcDa");
    let body = String::from_utf8(request.body.to_vec()).unwrap();
    assert!(body.contains(LINK), "{body}");
    assert!(request.header("filename").is_none());
    assert!(request.header("authorization").is_none());
    assert_eq!(request.header("click").as_deref(), Some(LINK));
}

#[tokio::test]
async fn missing_token_is_permanent_rate_limit_and_5xx_are_retried() {
    let mut server = ntfy().await;
    let n = build_one(&format!(
        "kind = \"ntfy\"\nserver = \"{}\"\ntopic = \"{PROTECTED}\"\n",
        server.base
    ));
    let reason = failed_reason(&deliver(n, ring(false), Duration::from_secs(10)).await);
    assert!(
        reason.contains("401") && reason.contains("unauthorized"),
        "{reason}"
    );
    assert_eq!(server.drain().len(), 1);

    server.script([
        Answer::json(
            429,
            json!({"code": 42901, "http": 429, "error": "limit reached"}),
        )
        .with_header("retry-after", "1"),
        Answer::json(
            500,
            json!({"code": 50001, "http": 500, "error": "internal error"}),
        ),
    ]);
    let n = build_one(&format!(
        "kind = \"ntfy\"\nserver = \"{}\"\ntopic = \"doorbell-Xq3vR8tLm2PzK7wYb1NcDa\"\n",
        server.base
    ));
    assert_sent(&deliver(n, ring(true), Duration::from_secs(20)).await);
    assert_eq!(server.drain().len(), 3);
}
