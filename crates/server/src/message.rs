//! Visitors' video messages: the doorbell uploads each (`PUT /api/rooms/ROOM/message`, its
//! token as bearer, `X-Duration-Ms`), the store keeps it with its ring, every open owner page
//! hears of it (`ring_update`) and subscribed devices get a push ("New video message (12 s)").
//! Paired devices play it from `GET /api/rings/ID/message`, which answers byte ranges: Safari
//! plays video only from a server that does, and the others seek with them.

use crate::api_state::{Api, is_doorbell, off, paired, problem, segment};
use crate::history::tell_owners;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use doorbell_protocol::RoomId;
use doorbell_store::MessageError;
use std::time::Duration;

pub(crate) async fn upload(
    State(api): State<Api>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(app) = api.app.clone() else {
        return off();
    };
    if !is_doorbell(&api, &headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "only the doorbell may attach messages",
        );
    }
    let Ok(room) =
        RoomId::parse(segment(uri.path(), "/api/rooms/", "/message").unwrap_or_default())
    else {
        return problem(StatusCode::BAD_REQUEST, "not a room id");
    };
    let duration = headers
        .get("x-duration-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    let store = app.store.clone();
    let key = room.as_str().to_owned();
    let stored =
        tokio::task::spawn_blocking(move || store.attach_message(&key, &body, duration)).await;
    match stored {
        Ok(Ok(entry)) => {
            tracing::info!(room = %room.redacted(), seconds = duration.as_secs(), "video message kept");
            tell_owners(&api.io, &entry).await;
            if let Some(push) = api.push.clone() {
                tokio::spawn(async move { push.message(entry, duration).await });
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(error @ MessageError::TooLarge(_))) => {
            problem(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
        }
        Ok(Err(error @ MessageError::NotMp4)) => {
            problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
        Ok(Err(error @ MessageError::NoRing)) => problem(StatusCode::NOT_FOUND, error.to_string()),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the message cannot be stored",
        ),
    }
}

/// The byte range a `Range` header asks of `len` bytes: `bytes=A-B`, `bytes=A-`, `bytes=-N`.
/// `None`: no usable single range (the whole file is sent).
fn range(value: &str, len: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (from, to) = spec.split_once('-')?;
    let last = len.checked_sub(1);
    let (start, end) = match (from.trim(), to.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            (len.saturating_sub(n), last?)
        }
        (from, "") => (from.parse().ok()?, last?),
        (from, to) => (from.parse().ok()?, to.parse::<usize>().ok()?.min(last?)),
    };
    Some(if start > end || start >= len {
        Err(())
    } else {
        Ok((start, end))
    })
}

pub(crate) async fn serve(State(api): State<Api>, headers: HeaderMap, uri: Uri) -> Response {
    let (app, _) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(id) = segment(uri.path(), "/api/rings/", "/message").and_then(|s| s.parse().ok())
    else {
        return problem(StatusCode::NOT_FOUND, "no such ring");
    };
    let store = app.store.clone();
    let mp4 = match tokio::task::spawn_blocking(move || store.message(id)).await {
        Ok(Ok(Some(mp4))) => mp4,
        Ok(Ok(None)) => return problem(StatusCode::NOT_FOUND, "no message for this ring"),
        _ => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the message cannot be read",
            );
        }
    };
    let len = mp4.len();
    let asked = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| range(v, len));
    let mut response = match asked {
        None => (StatusCode::OK, mp4).into_response(),
        Some(Ok((start, end))) => {
            let mut response =
                (StatusCode::PARTIAL_CONTENT, mp4[start..=end].to_vec()).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
        Some(Err(())) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn byte_ranges_as_video_players_ask_them() {
        assert_eq!(range("bytes=0-", 100), Some(Ok((0, 99))));
        assert_eq!(range("bytes=10-19", 100), Some(Ok((10, 19))));
        assert_eq!(range("bytes=90-200", 100), Some(Ok((90, 99))));
        assert_eq!(range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(range("bytes=100-", 100), Some(Err(())));
        assert_eq!(range("bytes=5-1", 100), Some(Err(())));
        assert_eq!(
            range("bytes=0-1,5-6", 100),
            None,
            "several ranges: the whole file"
        );
        assert_eq!(range("items=0-1", 100), None);
        assert_eq!(range("bytes=x-", 100), None);
    }
}
