//! The owner app's HTTP API on the real server: pairing and its refusals, the device cookie,
//! the history and its snapshots, the doorbell's snapshot upload and its bounds, revocation.

mod common;

use common::{TOKEN, TestServer, header, https_request};
use doorbell_server::{OwnerApp, PushSettings, Retention, Store};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0xFF, 0xD9,
];

async fn server() -> (TestServer, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let mut config = common::config_in(dir.path());
    config.owners = Some(OwnerApp {
        store: Arc::clone(&store),
        retention: Retention::default(),
        push: PushSettings::default(),
    });
    (TestServer::serve_config(config, dir).await, store)
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    https_request(server.addr, &server.cert_pem, method, path, headers, body).await
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
}

/// Pairs with a fresh code; returns the `Cookie` header value.
async fn pair(server: &TestServer, store: &Store, name: &str) -> String {
    let code = store.new_pairing(name, SystemTime::now()).unwrap();
    let body = serde_json::json!({ "code": code.code, "name": "" }).to_string();
    let (status, headers, answer) = call(
        server,
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let set_cookie = header(&headers, "set-cookie")
        .expect("a device cookie")
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(set_cookie.starts_with("__Host-doorbell="), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_pairing_code_pairs_once_and_the_cookie_opens_the_history() {
    let (server, store) = server().await;
    let code = store
        .new_pairing("Anna's phone", SystemTime::now())
        .unwrap();
    let body = serde_json::json!({ "code": code.code }).to_string();
    let (status, headers, _) = call(&server, "POST", "/api/pair", &[], body.as_bytes()).await;
    assert_eq!(status, 200);
    let cookie = header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, me) = call(&server, "GET", "/api/me", &[("Cookie", &cookie)], b"").await;
    assert_eq!(
        (status, json(&me)["name"].clone()),
        (200, "Anna's phone".into())
    );
    // The same code again: gone.
    let (status, _, answer) = call(&server, "POST", "/api/pair", &[], body.as_bytes()).await;
    assert_eq!(status, 410);
    assert!(
        json(&answer)["error"]
            .as_str()
            .unwrap()
            .contains("used already")
    );
    // An unknown code, an expired one, a malformed request.
    let unknown = serde_json::json!({ "code": "AAAAAAAAAAAAAAAAAAAAAA" }).to_string();
    assert_eq!(
        call(&server, "POST", "/api/pair", &[], unknown.as_bytes())
            .await
            .0,
        404
    );
    let old = store
        .new_pairing("late", SystemTime::now() - Duration::from_secs(11 * 60))
        .unwrap();
    let expired = serde_json::json!({ "code": old.code }).to_string();
    let (status, _, answer) = call(&server, "POST", "/api/pair", &[], expired.as_bytes()).await;
    assert_eq!(status, 410);
    assert!(json(&answer)["error"].as_str().unwrap().contains("expired"));
    assert_eq!(
        call(&server, "POST", "/api/pair", &[], b"{nope").await.0,
        400
    );
}

#[tokio::test]
async fn the_history_needs_a_real_device_cookie() {
    let (server, store) = server().await;
    assert_eq!(call(&server, "GET", "/api/rings", &[], b"").await.0, 401);
    let forged = [(
        "Cookie",
        "__Host-doorbell=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )];
    assert_eq!(
        call(&server, "GET", "/api/rings", &forged, b"").await.0,
        401
    );
    let cookie = pair(&server, &store, "Robert'); DROP TABLE devices;--").await;
    let with = [("Cookie", cookie.as_str())];
    let (status, _, me) = call(&server, "GET", "/api/me", &with, b"").await;
    assert_eq!(status, 200);
    assert_eq!(json(&me)["name"], "Robert'); DROP TABLE devices;--");
    // Revoked: the cookie opens nothing any more.
    assert!(
        store
            .revoke("Robert'); DROP TABLE devices;--", SystemTime::now())
            .unwrap()
    );
    assert_eq!(call(&server, "GET", "/api/rings", &with, b"").await.0, 401);
    // Asking whether it is paired is no error for anyone.
    for headers in [&with[..], &forged[..], &[]] {
        let (status, _, me) = call(&server, "GET", "/api/me", headers, b"").await;
        assert_eq!((status, json(&me)["paired"].clone()), (200, false.into()));
    }
}

#[tokio::test]
async fn rings_come_newest_first_with_who_answered_and_their_snapshot() {
    let (server, store) = server().await;
    let cookie = pair(&server, &store, "hall tablet").await;
    let with = [("Cookie", cookie.as_str())];
    let t0 = SystemTime::now();
    store.ring_started("FirstRoom000000000000A", t0).unwrap();
    store
        .ring_ended("FirstRoom000000000000A", t0 + Duration::from_secs(60))
        .unwrap();
    store
        .ring_started("SecondRoom00000000000B", t0 + Duration::from_secs(120))
        .unwrap();
    store
        .ring_answered(
            "SecondRoom00000000000B",
            Some("hall tablet"),
            t0 + Duration::from_secs(125),
        )
        .unwrap();
    store
        .ring_ended("SecondRoom00000000000B", t0 + Duration::from_secs(185))
        .unwrap();

    // The doorbell attaches the photo; only with its token, only a bounded JPEG, only to a ring.
    let path = "/api/rooms/SecondRoom00000000000B/snapshot";
    let bearer = format!("Bearer {TOKEN}");
    let token = [("Authorization", bearer.as_str())];
    let (status, _, why) = call(&server, "PUT", path, &[], JPEG).await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&why));
    assert_eq!(
        call(&server, "PUT", path, &with, JPEG).await.0,
        401,
        "owners cannot"
    );
    assert_eq!(call(&server, "PUT", path, &token, b"GIF89a").await.0, 415);
    let huge = [JPEG, &vec![0; 600 * 1024]].concat();
    assert_eq!(call(&server, "PUT", path, &token, &huge).await.0, 413);
    let nowhere = "/api/rooms/NoSuchRoom000000000000/snapshot";
    assert_eq!(call(&server, "PUT", nowhere, &token, JPEG).await.0, 404);
    assert_eq!(call(&server, "PUT", path, &token, JPEG).await.0, 204);

    let (status, _, list) = call(&server, "GET", "/api/rings?limit=10", &with, b"").await;
    assert_eq!(status, 200);
    let list = json(&list);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let newest = &entries[0];
    assert_eq!(newest["outcome"], "answered");
    assert_eq!(newest["answered_by"], "hall tablet");
    assert_eq!(newest["duration_s"], 60);
    assert!(newest["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[1]["outcome"], "missed");
    assert!(entries[1]["snapshot"].is_null());
    let snapshot = newest["snapshot"].as_str().unwrap();
    assert_eq!(call(&server, "GET", snapshot, &[], b"").await.0, 401);
    let (status, headers, jpeg) = call(&server, "GET", snapshot, &with, b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("image/jpeg"));
    assert_eq!(jpeg, JPEG);
    // Paging: before the newest.
    let before = format!("/api/rings?before={}", newest["id"]);
    let (_, _, older) = call(&server, "GET", &before, &with, b"").await;
    assert_eq!(json(&older).as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_page_is_an_installable_web_app() {
    let (server, _store) = server().await;
    let (status, headers, page) = call(&server, "GET", "/", &[], b"").await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(r#"rel="manifest" href="/manifest.webmanifest""#),
        "{page}"
    );
    assert!(header(&headers, "content-security-policy").is_some());
    let (status, headers, manifest) = call(&server, "GET", "/manifest.webmanifest", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/manifest+json")
    );
    let manifest = json(&manifest);
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["start_url"], "/");
    let mut sizes = Vec::new();
    for icon in manifest["icons"].as_array().expect("icons") {
        let (status, headers, png) =
            call(&server, "GET", icon["src"].as_str().unwrap(), &[], b"").await;
        assert_eq!(
            (status, header(&headers, "content-type")),
            (200, Some("image/png"))
        );
        assert!(png.starts_with(b"\x89PNG"), "{icon}");
        sizes.push(icon["sizes"].as_str().unwrap().to_owned());
    }
    // What Chromium and Android require to offer "Install".
    assert!(sizes.contains(&"192x192".to_owned()) && sizes.contains(&"512x512".to_owned()));
    let (status, headers, _) = call(&server, "GET", "/sw.js", &[], b"").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").is_some_and(|t| t.contains("javascript")));
}

#[tokio::test]
async fn a_live_view_needs_a_paired_device_and_a_connected_doorbell() {
    let (server, store) = server().await;
    let (status, _, body) = call(&server, "POST", "/api/live", &[], b"").await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let forged = "__Host-doorbell=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (status, _, _) = call(&server, "POST", "/api/live", &[("Cookie", forged)], b"").await;
    assert_eq!(status, 401, "a forged cookie opens nothing");
    let cookie = pair(&server, &store, "Anna").await;
    let (status, _, body) = call(&server, "POST", "/api/live", &[("Cookie", &cookie)], b"").await;
    assert_eq!(status, 503);
    assert!(
        json(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("doorbell is not connected")),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = call(&server, "GET", "/api/live", &[("Cookie", &cookie)], b"").await;
    assert_eq!(
        status, 405,
        "asking is a POST: a link cannot open the camera"
    );
}

#[tokio::test]
async fn a_video_message_needs_the_doorbell_a_ring_and_an_mp4_of_bounded_size() {
    let (server, store) = server().await;
    store.ring_started("MsgRoom1", SystemTime::now()).unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let mp4 = [&[0, 0, 0, 24][..], b"ftypisom", &[0; 64]].concat();
    let put = |headers: Vec<(&'static str, String)>, body: Vec<u8>, room: &'static str| {
        let server = &server;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(
                server,
                "PUT",
                &format!("/api/rooms/{room}/message"),
                &headers,
                &body,
            )
            .await
        }
    };
    let (status, _, _) = put(vec![], mp4.clone(), "MsgRoom1").await;
    assert_eq!(status, 401, "only the doorbell");
    let auth = vec![
        ("Authorization", bearer.clone()),
        ("X-Duration-Ms", "2500".into()),
    ];
    let (status, _, _) = put(auth.clone(), b"<html>".to_vec(), "MsgRoom1").await;
    assert_eq!(status, 415);
    let (status, _, _) = put(auth.clone(), mp4.clone(), "NoSuchRoom").await;
    assert_eq!(status, 404);
    let (status, _, _) = put(auth.clone(), mp4.clone(), "MsgRoom1").await;
    assert_eq!(status, 204);
    let entry = store.ring("MsgRoom1").unwrap().unwrap();
    assert_eq!(entry.message_duration, Some(Duration::from_millis(2500)));
    // Served to a paired device only, with byte ranges.
    let url = format!("/api/rings/{}/message", entry.id);
    let (status, _, _) = call(&server, "GET", &url, &[], b"").await;
    assert_eq!(status, 401);
    let cookie = pair(&server, &store, "Anna").await;
    let (_, _, listed) = call(&server, "GET", "/api/rings", &[("Cookie", &cookie)], b"").await;
    let listed = json(&listed);
    assert_eq!(listed[0]["message"], url.as_str(), "{listed}");
    assert_eq!(listed[0]["message_s"], 3, "{listed}");
    let (status, headers, body) = call(
        &server,
        "GET",
        &url,
        &[("Cookie", &cookie), ("Range", "bytes=4-11")],
        b"",
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body, b"ftypisom");
    assert_eq!(
        header(&headers, "content-range"),
        Some(&*format!("bytes 4-11/{}", mp4.len()))
    );
    assert_eq!(header(&headers, "content-type"), Some("video/mp4"));
    // Too large: refused by its size before anything is kept; the kept one stays.
    let huge = [mp4.clone(), vec![0; doorbell_server::MAX_MESSAGE_BYTES]].concat();
    let (status, _, _) = put(auth, huge, "MsgRoom1").await;
    assert_eq!(status, 413);
    let (_, _, body) = call(&server, "GET", &url, &[("Cookie", &cookie)], b"").await;
    assert_eq!(body, mp4, "the earlier message is served whole");
}
