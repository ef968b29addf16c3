//! The owner app's HTTP API. A paired device is known by its cookie (HttpOnly, Secure,
//! SameSite=Strict, `__Host-` prefixed; only its hash is stored):
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/pair` `{"code","name"}` | anyone with a pairing code | pairs the device, sets the cookie |
//! | `GET /api/me` | anyone | `{"paired": true, "name"}` or `{"paired": false}` |
//! | `GET /api/rings?limit=N&before=ID` | a paired device | the history, newest first |
//! | `GET /api/rings/ID/snapshot` | a paired device | the visitor's JPEG |
//! | `PUT /api/rooms/ROOM/snapshot` | the doorbell (its token as bearer) | attaches the JPEG of the ring |
//! | `GET /api/rooms/ROOM/snapshot` | a paired device | the JPEG of the ring in ROOM (what a push links to) |
//! | `GET /api/rings/ID/message` | a paired device | the ring's video message (MP4, byte ranges) |
//! | `PUT /api/rooms/ROOM/message` | the doorbell (its token as bearer) | attaches the visitor's video message (`message.rs`) |
//! | `/api/replies…`, `POST /api/rooms/ROOM/reply` | paired devices (the doorbell reads) | quick replies (`replies.rs`) |
//! | `POST /api/live` | a paired device | opens the door camera without a ring: `{"room"}` (`live_view.rs`) |
//! | `GET`/`POST`/`DELETE /api/push` | a paired device | Web Push: the key, subscribe, unsubscribe (`push_api.rs`) |

use crate::adapter::{Io as SocketIo, SharedHub};
use crate::api_state::{Api, COOKIE, device, is_doorbell, off, paired, problem, segment};
use crate::config::OwnerApp;
use crate::history::{entry_json, tell_owners};
use crate::push::Push;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use doorbell_protocol::{RoomId, Secret};
use doorbell_store::{MAX_SNAPSHOT_BYTES, PairError, SnapshotError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;

/// The longest lifetime browsers honour (400 days); each visit does not renew it.
const COOKIE_MAX_AGE_S: u64 = 400 * 24 * 3600;
/// The largest pairing request body.
const MAX_PAIR_BODY: usize = 4 * 1024;

pub(crate) fn routes(
    app: Option<OwnerApp>,
    doorbell_token: Option<Secret>,
    io: SocketIo,
    hub: SharedHub,
    push: Option<Arc<Push>>,
) -> Router {
    let api = Api {
        app,
        doorbell_token,
        io,
        hub,
        push,
    };
    Router::new()
        .route(
            "/api/pair",
            post(pair).layer(DefaultBodyLimit::max(MAX_PAIR_BODY)),
        )
        .route("/api/me", get(me))
        .route("/api/rings", get(rings))
        .route("/api/live", post(crate::live_view::start))
        .route("/api/rings/{id}/message", get(crate::message::serve))
        .route(
            "/api/replies",
            get(crate::replies::list)
                .post(crate::replies::add)
                .layer(DefaultBodyLimit::max(crate::replies::MAX_BODY)),
        )
        .route(
            "/api/replies/{id}",
            axum::routing::delete(crate::replies::delete),
        )
        .route("/api/replies/{id}/audio", get(crate::replies::audio))
        .route(
            "/api/rooms/{room}/reply",
            post(crate::replies::play).layer(DefaultBodyLimit::max(1024)),
        )
        .route(
            "/api/rooms/{room}/message",
            put(crate::message::upload).layer(DefaultBodyLimit::max(
                doorbell_store::MAX_MESSAGE_BYTES + 1024,
            )),
        )
        .route(
            "/api/push",
            get(crate::push_api::key)
                .post(crate::push_api::subscribe)
                .delete(crate::push_api::unsubscribe)
                .layer(DefaultBodyLimit::max(crate::push_api::MAX_BODY)),
        )
        .route("/api/rings/{id}/snapshot", get(snapshot))
        .route(
            "/api/rooms/{room}/snapshot",
            // A little over the snapshot bound, so an oversized one gets our 413 with a reason.
            put(upload_snapshot)
                .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES + 1024))
                .get(room_snapshot),
        )
        .with_state(api)
}

#[derive(Deserialize)]
struct PairRequest {
    code: String,
    #[serde(default)]
    name: Option<String>,
}

async fn pair(State(api): State<Api>, body: Bytes) -> Response {
    let Some(app) = api.app else {
        return off();
    };
    let request: PairRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected JSON {{\"code\": \"…\", \"name\": \"…\"}}: {error}"),
            );
        }
    };
    let store = app.store.clone();
    let paired = tokio::task::spawn_blocking(move || {
        store.pair(&request.code, request.name.as_deref(), SystemTime::now())
    })
    .await;
    let paired = match paired {
        Ok(Ok(paired)) => paired,
        Ok(Err(error)) => {
            let status = match error {
                PairError::Unknown => StatusCode::NOT_FOUND,
                PairError::Used | PairError::Expired => StatusCode::GONE,
                PairError::NameTaken(_) => StatusCode::CONFLICT,
                PairError::BadName(_) => StatusCode::BAD_REQUEST,
                PairError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::info!(%status, "owner app: pairing refused");
            return problem(status, error.to_string());
        }
        Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the pairing task failed"),
    };
    tracing::info!(device = %paired.device.name, "owner app: a device was paired");
    let set_cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; Secure; SameSite=Strict",
        paired.cookie
    );
    let mut response = axum::Json(json!({ "name": paired.device.name })).into_response();
    match HeaderValue::from_str(&set_cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not make the cookie",
        ),
    }
}

/// Whether this browser is a paired device. Not an error when it is not: every visitor of
/// the page asks, and an unpaired one is the normal case (no 401 in its console).
async fn me(State(api): State<Api>, headers: HeaderMap) -> Response {
    let Some(app) = api.app.clone() else {
        return axum::Json(json!({ "paired": false })).into_response();
    };
    match device(&app.store, &headers).await {
        Some(device) => axum::Json(json!({ "paired": true, "name": device.name })).into_response(),
        None => axum::Json(json!({ "paired": false })).into_response(),
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<usize>,
    before: Option<i64>,
}

async fn rings(State(api): State<Api>, headers: HeaderMap, Query(page): Query<Page>) -> Response {
    let (app, _) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let store = app.store.clone();
    let limit = page.limit.unwrap_or(50);
    match tokio::task::spawn_blocking(move || store.rings(limit, page.before)).await {
        Ok(Ok(entries)) => {
            axum::Json(entries.iter().map(entry_json).collect::<Vec<_>>()).into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the history cannot be read",
        ),
    }
}

async fn snapshot(State(api): State<Api>, headers: HeaderMap, uri: Uri) -> Response {
    let (app, _) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(id) = segment(uri.path(), "/api/rings/", "/snapshot").and_then(|s| s.parse().ok())
    else {
        return problem(StatusCode::NOT_FOUND, "no such ring");
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.snapshot(id)).await {
        Ok(Ok(Some(jpeg))) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no snapshot for this ring"),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the snapshot cannot be read",
        ),
    }
}

/// The photo of the ring in `room` (a push names the ring by its room).
async fn room_snapshot(State(api): State<Api>, headers: HeaderMap, uri: Uri) -> Response {
    let (app, _) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let room = segment(uri.path(), "/api/rooms/", "/snapshot")
        .unwrap_or_default()
        .to_owned();
    let store = app.store.clone();
    let found = tokio::task::spawn_blocking(move || store.room_snapshot(&room)).await;
    match found {
        Ok(Ok(Some(jpeg))) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no snapshot for this ring"),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the snapshot cannot be read",
        ),
    }
}

async fn upload_snapshot(
    State(api): State<Api>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let room = segment(uri.path(), "/api/rooms/", "/snapshot").unwrap_or_default();
    let Some(app) = api.app.clone() else {
        return off();
    };
    if !is_doorbell(&api, &headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "only the doorbell may attach snapshots",
        );
    }
    let Ok(room) = RoomId::parse(room) else {
        return problem(StatusCode::BAD_REQUEST, "not a room id");
    };
    let store = app.store.clone();
    let key = room.as_str().to_owned();
    let stored = tokio::task::spawn_blocking(move || {
        store.attach_snapshot(&key, &body)?;
        Ok::<_, SnapshotError>(store.ring(&key)?)
    })
    .await;
    match stored {
        Ok(Ok(entry)) => {
            if let Some(entry) = entry {
                tell_owners(&api.io, &entry).await;
            }
            if let Some(push) = &api.push {
                push.snapshot_arrived();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(error @ SnapshotError::TooLarge(_))) => {
            problem(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
        }
        Ok(Err(error @ SnapshotError::NotJpeg)) => {
            problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
        Ok(Err(error @ SnapshotError::NoRing)) => problem(StatusCode::NOT_FOUND, error.to_string()),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the snapshot cannot be stored",
        ),
    }
}
