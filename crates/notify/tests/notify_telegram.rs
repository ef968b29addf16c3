//! The Telegram channel against a Bot API stand-in on loopback: `sendPhoto` multipart with the
//! snapshot, caption and "Answer" button; `sendMessage` without a snapshot; the API's errors
//! (401 permanent, 429 with `parameters.retry_after`, 5xx retried).

mod notify_support;

use notify_support::*;
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "123456:AAH-test-token_secret";

/// Answers like the Bot API: 401 for another token, 400 without chat_id, else ok.
async fn bot_api() -> StandIn {
    StandIn::start(|r| {
        let Some(rest) = r.path.strip_prefix(&format!("/bot{TOKEN}/")) else {
            return Answer::json(
                401,
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            );
        };
        if rest != "sendPhoto" && rest != "sendMessage" {
            return Answer::json(
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            );
        }
        Answer::json(200, json!({"ok": true, "result": {"message_id": 1}}))
    })
    .await
}

fn notifier(base: &str, token: &str, chat: &str) -> std::sync::Arc<dyn doorbell_notify::Notifier> {
    build_one(&format!(
        "kind = \"telegram\"\nbot_token = \"{token}\"\nchat_id = {chat}\napi_base = \"{base}\"\n"
    ))
}

#[tokio::test]
async fn send_photo_carries_jpeg_caption_and_answer_button() {
    let mut api = bot_api().await;
    let n = notifier(&api.base, TOKEN, "-1001234567890");
    let ring = ring(true);
    assert_sent(&deliver(n, ring.clone(), Duration::from_secs(10)).await);

    let request = api.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/sendPhoto"));
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let fields = request.multipart().await;
    let mut names: Vec<_> = fields.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["caption", "chat_id", "photo", "reply_markup"]);
    assert_eq!(fields["chat_id"].2, b"-1001234567890");
    let caption = String::from_utf8(fields["caption"].2.clone()).unwrap();
    assert!(caption.contains(LINK), "{caption}");
    assert!(
        caption.contains(" UTC"),
        "the caption has the time: {caption}"
    );
    let markup: serde_json::Value = serde_json::from_slice(&fields["reply_markup"].2).unwrap();
    assert_eq!(
        markup,
        json!({"inline_keyboard": [[{"text": "Answer", "url": LINK}]]})
    );
    let (file_name, content_type, photo) = &fields["photo"];
    assert_eq!(file_name.as_deref(), Some("doorbell.jpg"));
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(photo, ring.snapshot_jpeg.as_deref().unwrap());
    assert_eq!(jpeg_size(photo), (WIDTH, HEIGHT));
}

#[tokio::test]
async fn send_message_without_snapshot_and_to_every_chat_in_a_list() {
    let mut api = bot_api().await;
    let built = doorbell_notify::build_notifiers_with_env(
        &[table(&format!(
            "kind = \"telegram\"\nchat_id = [42, \"@doorbell_channel\"]\napi_base = \"{}\"\n",
            api.base
        ))],
        &|name| (name == "DOORBELL_TELEGRAM_BOT_TOKEN").then(|| TOKEN.to_owned()),
    )
    .unwrap();
    let names: Vec<_> = built.iter().map(|n| n.channel()).collect();
    assert_eq!(names, ["telegram#1", "telegram#2"]);
    for n in built {
        assert_sent(&deliver(n, ring(false), Duration::from_secs(10)).await);
    }
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let request = api.next_request().await;
        assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
        bodies.push(request.json());
    }
    assert_eq!(bodies[0]["chat_id"], json!(42));
    assert_eq!(bodies[1]["chat_id"], json!("@doorbell_channel"));
    for body in &bodies {
        assert!(body["text"].as_str().unwrap().contains(LINK), "{body}");
        assert_eq!(body["reply_markup"]["inline_keyboard"][0][0]["url"], LINK);
    }
}

#[tokio::test]
async fn unauthorized_is_permanent_and_the_token_never_shows() {
    let mut api = bot_api().await;
    let wrong = "999:wrong-token-value";
    let event = deliver(
        notifier(&api.base, wrong, "42"),
        ring(true),
        Duration::from_secs(10),
    )
    .await;
    let reason = failed_reason(&event);
    assert!(
        reason.contains("401") && reason.contains("Unauthorized"),
        "{reason}"
    );
    assert!(reason.contains("bot_token"), "says what to check: {reason}");
    assert!(
        !reason.contains(wrong) && !reason.contains("wrong-token"),
        "{reason}"
    );
    api.next_request().await;
    tokio::task::yield_now().await;
    assert!(api.drain().is_empty(), "a 401 is not retried");
}

#[tokio::test]
async fn rate_limit_waits_retry_after_then_sends() {
    let mut api = bot_api().await;
    api.script([Answer::json(
        429,
        json!({"ok": false, "error_code": 429,
               "description": "Too Many Requests: retry after 1",
               "parameters": {"retry_after": 1}}),
    )]);
    let event = deliver(
        notifier(&api.base, TOKEN, "42"),
        ring(false),
        Duration::from_secs(20),
    )
    .await;
    assert_sent(&event);
    assert_eq!(api.drain().len(), 2, "one 429, one success");
}

#[tokio::test]
async fn rate_limit_past_the_deadline_gives_up_at_once() {
    let mut api = bot_api().await;
    api.script([Answer::json(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3600",
               "parameters": {"retry_after": 3600}}),
    )]);
    let event = deliver(
        notifier(&api.base, TOKEN, "42"),
        ring(false),
        Duration::from_secs(60),
    )
    .await;
    let reason = failed_reason(&event);
    assert!(reason.contains("3600s"), "{reason}");
    assert_eq!(api.drain().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mut api = bot_api().await;
    api.script([
        Answer::json(
            502,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
        ),
        Answer::json(
            500,
            json!({"ok": false, "error_code": 500, "description": "Internal"}),
        ),
    ]);
    let event = deliver(
        notifier(&api.base, TOKEN, "42"),
        ring(true),
        Duration::from_secs(20),
    )
    .await;
    assert_sent(&event);
    let requests = api.drain();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.path.ends_with("/sendPhoto")));
}

#[tokio::test]
async fn a_refused_button_is_dropped_and_the_link_stays_in_the_caption() {
    // Like the Bot API for a button URL it does not accept.
    let mut api = StandIn::start(|r| {
        if String::from_utf8_lossy(&r.body).contains("inline_keyboard") {
            return Answer::json(
                400,
                json!({"ok": false, "error_code": 400,
                       "description": "Bad Request: BUTTON_URL_INVALID"}),
            );
        }
        Answer::json(200, json!({"ok": true, "result": {"message_id": 2}}))
    })
    .await;
    let n = notifier(&api.base, TOKEN, "42");
    assert_sent(&deliver(n, ring(true), Duration::from_secs(10)).await);
    let requests = api.drain();
    assert_eq!(requests.len(), 2);
    let fields = requests[1].multipart().await;
    assert!(!fields.contains_key("reply_markup"));
    assert!(String::from_utf8_lossy(&fields["caption"].2).contains(LINK));

    // A plain-http link (a loopback demo) gets no button at all.
    let n = notifier(&api.base, TOKEN, "42");
    let ring = std::sync::Arc::new(doorbell_notify::Ring {
        at: std::time::SystemTime::now(),
        link: Some("http://127.0.0.1:8443/?room=abc".into()),
        room: doorbell_protocol::RoomId::parse("abc").ok(),
        snapshot_jpeg: None,
        message: None,
    });
    assert_sent(&deliver(n, ring, Duration::from_secs(10)).await);
    let body = api.next_request().await.json();
    assert!(body.get("reply_markup").is_none(), "{body}");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("http://127.0.0.1:8443/?room=abc")
    );
}
