//! "Notify this device": the page subscribes through the browser's Push API and hands the
//! subscription here; `push.rs` pushes to it.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/push` | a paired device | `{"public_key"}`: the VAPID key to subscribe with |
//! | `POST /api/push` `{"endpoint","keys":{"p256dh","auth"}}` | a paired device | keeps the subscription |
//! | `DELETE /api/push` `{"endpoint"}` | a paired device | forgets it |

use crate::api_state::{Api, paired, problem};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorbell_notify::web_push::Subscription;
use serde::Deserialize;
use serde_json::json;
use std::time::SystemTime;

/// The largest subscription request body.
pub(crate) const MAX_BODY: usize = 4 * 1024;

fn no_push() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Web Push is not available on this server (see its log)",
    )
}

/// `GET /api/push`: the key to subscribe with.
pub(crate) async fn key(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(refused) = paired(&api, &headers).await {
        return refused;
    }
    match &api.push {
        Some(push) => axum::Json(json!({ "public_key": push.vapid.public_key() })).into_response(),
        None => no_push(),
    }
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
struct SubscribeRequest {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct UnsubscribeRequest {
    endpoint: String,
}

/// `POST /api/push`: keeps this device's subscription.
pub(crate) async fn subscribe(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(push) = &api.push else {
        return no_push();
    };
    let request: SubscribeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected the browser's subscription, {{\"endpoint\", \"keys\": {{\"p256dh\", \"auth\"}}}}: {error}"
                ),
            );
        }
    };
    if let Err(why) = Subscription::parse(
        &request.endpoint,
        &request.keys.p256dh,
        &request.keys.auth,
        push.allow_http,
    ) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("unusable subscription: {why}"),
        );
    }
    let store = app.store.clone();
    let device_id = device.id;
    let kept = tokio::task::spawn_blocking(move || {
        store.subscribe_push(
            device_id,
            &request.endpoint,
            &request.keys.p256dh,
            &request.keys.auth,
            SystemTime::now(),
        )
    })
    .await;
    match kept {
        Ok(Ok(())) => {
            tracing::info!(device = %device.name, "web push: device subscribed");
            (
                StatusCode::CREATED,
                axum::Json(json!({ "subscribed": true })),
            )
                .into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the subscription could not be kept",
        ),
    }
}

/// `DELETE /api/push`: forgets this device's subscription.
pub(crate) async fn unsubscribe(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let request: UnsubscribeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"endpoint\"}}: {error}"),
            );
        }
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.unsubscribe_push(device.id, &request.endpoint))
        .await
    {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the subscription could not be forgotten",
        ),
    }
}
