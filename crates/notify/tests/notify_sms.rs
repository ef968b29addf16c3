//! The SMS channel against a Twilio stand-in on loopback: `POST
//! /2010-04-01/Accounts/{sid}/Messages.json`, form `To`/`From`/`Body`, HTTP basic auth; Twilio's
//! error answers (401 permanent, 429 with `Retry-After`, 5xx retried).

mod notify_support;

use base64::Engine;
use notify_support::*;
use serde_json::json;
use std::time::Duration;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-secret";

/// Answers like Twilio: 401 (code 20003) unless basic auth is `SID:AUTH_TOKEN`, 400 without
/// `To`, else 201 with the message resource.
async fn twilio() -> StandIn {
    StandIn::start(|r| {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{AUTH_TOKEN}"))
        );
        if r.header("authorization").as_deref() != Some(expected.as_str()) {
            return Answer::json(
                401,
                json!({"code": 20003, "message": "Authenticate",
                       "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}),
            );
        }
        if r.path != format!("/2010-04-01/Accounts/{SID}/Messages.json") {
            return Answer::json(404, json!({"code": 20404, "message": "not found", "status": 404}));
        }
        let form = r.form();
        if !form.contains_key("To") {
            return Answer::json(
                400,
                json!({"code": 21604, "message": "A 'To' phone number is required.", "status": 400}),
            );
        }
        Answer::json(
            201,
            json!({"sid": "SM0123", "status": "queued", "to": form["To"], "body": form["Body"]}),
        )
    })
    .await
}

fn notifier(base: &str, token: &str) -> std::sync::Arc<dyn doorbell_notify::Notifier> {
    build_one(&format!(
        "kind = \"sms\"\naccount_sid = \"{SID}\"\nauth_token = \"{token}\"\n\
         from = \"+15550001111\"\nto = \"+15552223333\"\napi_base = \"{base}\"\n"
    ))
}

#[tokio::test]
async fn posts_the_documented_form_with_basic_auth() {
    let mut api = twilio().await;
    assert_sent(
        &deliver(
            notifier(&api.base, AUTH_TOKEN),
            ring(true),
            Duration::from_secs(10),
        )
        .await,
    );
    let request = api.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = request.form();
    let mut keys: Vec<_> = form.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["Body", "From", "To"]);
    assert_eq!(form["To"], "+15552223333");
    assert_eq!(form["From"], "+15550001111");
    assert!(form["Body"].contains(LINK), "{}", form["Body"]);
    // GSM-7 characters only and one 160-character segment: no emoji, no UCS-2 split.
    assert!(form["Body"].is_ascii(), "{}", form["Body"]);
    assert!(form["Body"].len() <= 160, "{}", form["Body"]);
    assert!(form["Body"].ends_with(" UTC)"), "{}", form["Body"]);
}

#[tokio::test]
async fn wrong_token_is_permanent_and_not_shown() {
    let mut api = twilio().await;
    let event = deliver(
        notifier(&api.base, "not-the-token"),
        ring(false),
        Duration::from_secs(10),
    )
    .await;
    let reason = failed_reason(&event);
    assert!(
        reason.contains("401") && reason.contains("Authenticate"),
        "{reason}"
    );
    assert!(reason.contains("auth_token"), "{reason}");
    assert!(!reason.contains("not-the-token"), "{reason}");
    api.next_request().await;
    assert!(api.drain().is_empty(), "a 401 is not retried");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let mut api = twilio().await;
    let busy = Answer::json(
        429,
        json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
    );
    api.script([busy.clone().with_header("retry-after", "1")]);
    assert_sent(
        &deliver(
            notifier(&api.base, AUTH_TOKEN),
            ring(false),
            Duration::from_secs(20),
        )
        .await,
    );
    assert_eq!(api.drain().len(), 2);

    // A wait longer than the deadline: give up at once, saying why.
    api.script([busy.with_header("retry-after", "900")]);
    let reason = failed_reason(
        &deliver(
            notifier(&api.base, AUTH_TOKEN),
            ring(false),
            Duration::from_secs(60),
        )
        .await,
    );
    assert!(
        reason.contains("900s") && reason.contains("Too Many Requests"),
        "{reason}"
    );
    assert_eq!(api.drain().len(), 1);
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    let mut api = twilio().await;
    api.script([Answer::json(
        503,
        json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
    )]);
    assert_sent(
        &deliver(
            notifier(&api.base, AUTH_TOKEN),
            ring(false),
            Duration::from_secs(20),
        )
        .await,
    );
    assert_eq!(api.drain().len(), 2);
}
