//! `POST /api/live`: a paired device opens the door camera without a ring. The server picks a
//! fresh room, asks the doorbell (over its signaling connection: `live`) to open it the way it
//! opens a ring's, but without chime, photo or notification, and answers `{"room"}` once the
//! room is open, so the page joins it like any call. A live view is no ring: the history does
//! not record it. Busy rules are the rings': one call at a time.

use crate::api_state::{Api, paired, problem};
use crate::delivery::deliver;
use crate::hub::LiveRefusal;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorbell_protocol::RoomId;
use serde_json::json;
use std::time::Duration;

/// How long the doorbell has to open the room. It answers in milliseconds when it can; a
/// doorbell that turned live view off (or is cleaning up a call) never does.
const OPEN_BOUND: Duration = Duration::from_secs(5);

pub(crate) async fn start(State(api): State<Api>, headers: HeaderMap) -> Response {
    let device = match paired(&api, &headers).await {
        Ok((_, device)) => device,
        Err(refused) => return refused,
    };
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no secret room id could be made (the OS random generator failed)",
        );
    }
    let room = RoomId::from_random_bytes(bytes);
    let (ask, opened) = match api.hub.request_live(room.clone()) {
        Ok(asked) => asked,
        Err(refusal) => {
            let status = match refusal {
                LiveRefusal::Busy => StatusCode::CONFLICT,
                LiveRefusal::NoDoorbell => StatusCode::SERVICE_UNAVAILABLE,
                LiveRefusal::OpenRooms => StatusCode::NOT_IMPLEMENTED,
            };
            return problem(status, refusal.message());
        }
    };
    tracing::info!(device = %device.name, room = %room.redacted(), "live view requested");
    deliver(&api.io, &[ask]);
    match tokio::time::timeout(OPEN_BOUND, opened).await {
        Ok(Ok(())) => axum::Json(json!({ "room": room.as_str() })).into_response(),
        _ => {
            api.hub.abandon_live(&room);
            problem(
                StatusCode::GATEWAY_TIMEOUT,
                "the doorbell did not open its camera: it may have live view turned off \
                 (live-view = false) or be busy; see its event log",
            )
        }
    }
}
