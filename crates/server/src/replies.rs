//! Quick replies: owners record short answers in the page; the doorbell plays one instead of a
//! call. The page sends each as a 48 kHz mono 16-bit WAV (it decodes what the browser recorded
//! and converts it once), which the doorbell's speaker plays as is: no decoder, no system
//! library on the Pi. The doorbell keeps copies (`replies_changed` tells it to refresh), so a
//! reply plays at once even when the server is slow.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/replies` | a paired device | `[{"id","name","duration_s"}]` |
//! | `POST /api/replies?name=NAME` (WAV body) | a paired device | keeps a new reply |
//! | `DELETE /api/replies/ID` | a paired device | deletes it |
//! | `GET /api/replies/ID/audio` | a paired device or the doorbell | the WAV |
//! | `POST /api/rooms/ROOM/reply` `{"id","end"}` | a paired device | the doorbell plays it now; `end`: the ring stops |

use crate::api_state::{Api, is_doorbell, off, paired, problem, segment};
use crate::config::OwnerApp;
use crate::delivery::deliver;
use crate::history::tell_owners;
use crate::outgoing::Outgoing;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use doorbell_protocol::{EventName, RoomId};
use doorbell_store::{Outcome, Reply, ReplyError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::SystemTime;

/// The largest reply upload: 10.5 s of 48 kHz 16-bit mono and a header.
pub(crate) const MAX_BODY: usize = 1_100_000;

fn reply_json(reply: &Reply) -> Value {
    json!({
        "id": reply.id,
        "name": reply.name,
        "duration_s": (reply.duration.as_secs_f64() * 10.0).round() / 10.0,
    })
}

/// Tells every doorbell to refresh its copies.
fn replies_changed(api: &Api) {
    let out: Vec<_> = api
        .hub
        .doorbells()
        .into_iter()
        .map(|id| Outgoing::new(id, EventName::RepliesChanged, Value::Null))
        .collect();
    deliver(&api.io, &out);
}

/// The owner app for the doorbell (its token) or a paired device (its cookie): both read the
/// replies, the doorbell to keep its copies.
async fn doorbell_or_paired(api: &Api, headers: &HeaderMap) -> Result<OwnerApp, Response> {
    if is_doorbell(api, headers) {
        return api.app.clone().ok_or_else(off);
    }
    paired(api, headers).await.map(|(app, _)| app)
}

pub(crate) async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    // The doorbell lists them too, to keep its copies.
    let app = match doorbell_or_paired(&api, &headers).await {
        Ok(app) => app,
        Err(refused) => return refused,
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.replies()).await {
        Ok(Ok(replies)) => {
            axum::Json(replies.iter().map(reply_json).collect::<Vec<_>>()).into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the replies cannot be read",
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct Named {
    name: Option<String>,
}

pub(crate) async fn add(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(named): Query<Named>,
    body: Bytes,
) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let store = app.store.clone();
    let name = named.name.unwrap_or_default();
    let kept =
        tokio::task::spawn_blocking(move || store.add_reply(&name, &body, SystemTime::now())).await;
    match kept {
        Ok(Ok(reply)) => {
            tracing::info!(device = %device.name, reply = %reply.name, "quick reply recorded");
            replies_changed(&api);
            (StatusCode::CREATED, axum::Json(reply_json(&reply))).into_response()
        }
        Ok(Err(error @ ReplyError::NameTaken(_))) => {
            problem(StatusCode::CONFLICT, error.to_string())
        }
        Ok(Err(error @ ReplyError::TooMany)) => problem(StatusCode::CONFLICT, error.to_string()),
        Ok(Err(error @ (ReplyError::BadName(_) | ReplyError::NotWav(_) | ReplyError::TooLong))) => {
            problem(StatusCode::BAD_REQUEST, error.to_string())
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the reply cannot be stored",
        ),
    }
}

fn reply_id(uri: &Uri, suffix: &str) -> Option<i64> {
    segment(uri.path(), "/api/replies/", suffix).and_then(|s| s.parse().ok())
}

pub(crate) async fn delete(State(api): State<Api>, headers: HeaderMap, uri: Uri) -> Response {
    let (app, _) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(id) = reply_id(&uri, "") else {
        return problem(StatusCode::NOT_FOUND, "no such reply");
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_reply(id)).await {
        Ok(Ok(true)) => {
            replies_changed(&api);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Ok(false)) => problem(StatusCode::NOT_FOUND, "no such reply"),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the reply cannot be deleted",
        ),
    }
}

pub(crate) async fn audio(State(api): State<Api>, headers: HeaderMap, uri: Uri) -> Response {
    let app = match doorbell_or_paired(&api, &headers).await {
        Ok(app) => app,
        Err(refused) => return refused,
    };
    let Some(id) = reply_id(&uri, "/audio") else {
        return problem(StatusCode::NOT_FOUND, "no such reply");
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.reply_audio(id)).await {
        Ok(Ok(Some((_, wav)))) => ([(header::CONTENT_TYPE, "audio/wav")], wav).into_response(),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such reply"),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the reply cannot be read",
        ),
    }
}

#[derive(Deserialize)]
struct PlayRequest {
    id: i64,
    #[serde(default)]
    end: bool,
}

/// A paired owner answers a ringing bell with a reply.
pub(crate) async fn play(
    State(api): State<Api>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Ok(room) = RoomId::parse(segment(uri.path(), "/api/rooms/", "/reply").unwrap_or_default())
    else {
        return problem(StatusCode::BAD_REQUEST, "not a room id");
    };
    let request: PlayRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"id\": N, \"end\": true|false}}: {error}"),
            );
        }
    };
    let store = app.store.clone();
    let key = room.as_str().to_owned();
    let found = tokio::task::spawn_blocking(move || {
        Ok::<_, doorbell_store::StoreError>((store.ring(&key)?, store.reply_audio(request.id)?))
    })
    .await;
    let (ring, reply) = match found {
        Ok(Ok(found)) => found,
        _ => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the history cannot be read",
            );
        }
    };
    let Some((name, _)) = reply else {
        return problem(StatusCode::NOT_FOUND, "no such reply");
    };
    if ring.is_none_or(|r| r.outcome != Outcome::Ringing) {
        return problem(StatusCode::CONFLICT, "this ring is not ringing any more");
    }
    let Some(doorbell) = api.hub.doorbell_in(&room) else {
        return problem(
            StatusCode::CONFLICT,
            "the doorbell is not in this ring any more",
        );
    };
    deliver(
        &api.io,
        &[Outgoing::new(
            doorbell,
            EventName::Reply,
            json!({ "id": request.id, "end": request.end }),
        )],
    );
    tracing::info!(device = %device.name, reply = %name, "quick reply sent to the doorbell");
    let store = app.store.clone();
    let key = room.as_str().to_owned();
    if let Ok(Ok(Some(entry))) =
        tokio::task::spawn_blocking(move || store.ring_replied(&key, &name)).await
    {
        tell_owners(&api.io, &entry).await;
    }
    (StatusCode::ACCEPTED, axum::Json(json!({ "played": true }))).into_response()
}
