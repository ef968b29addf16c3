//! What every handler of the owner app's API shares: its state ([`Api`]), how a request is
//! known as a paired device (the device cookie) or as the doorbell (its token), and how a
//! refusal is said. The handlers live in their own files (`api.rs` routes them).

use crate::adapter::Io as SocketIo;
use crate::config::OwnerApp;
use crate::hub::Hub;
use crate::push::Push;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorbell_protocol::Secret;
use doorbell_store::{Device, Store};
use serde_json::json;
use socketioxide::socket::Sid;
use std::sync::Arc;

/// The device cookie's name. `__Host-`: the browser keeps it only if Secure, for this host
/// and path `/`, so no other site or subdomain can set or overwrite it.
pub(crate) const COOKIE: &str = "__Host-doorbell";
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) app: Option<OwnerApp>,
    pub(crate) doorbell_token: Option<Secret>,
    pub(crate) io: SocketIo,
    pub(crate) hub: Arc<Hub<Sid>>,
    /// Web Push, when the owner app is on and its key could be loaded.
    pub(crate) push: Option<Arc<Push>>,
}

pub(crate) fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn off() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "the owner app is off on this server (it needs a data dir)",
    )
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The paired device the request's cookie belongs to.
pub(crate) async fn device(store: &Arc<Store>, headers: &HeaderMap) -> Option<Device> {
    let token = cookie(headers, COOKIE)?.to_owned();
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.device_for_cookie(&token)).await {
        Ok(Ok(device)) => device,
        Ok(Err(error)) => {
            tracing::warn!(%error, "owner app: cookie lookup failed");
            None
        }
        Err(_) => None,
    }
}

/// The request's device, or the response that refuses it.
pub(crate) async fn paired(api: &Api, headers: &HeaderMap) -> Result<(OwnerApp, Device), Response> {
    let Some(app) = api.app.clone() else {
        return Err(off());
    };
    match device(&app.store, headers).await {
        Some(device) => Ok((app, device)),
        None => Err(problem(
            StatusCode::UNAUTHORIZED,
            "this browser is not a paired device; open a pairing link from `doorbell owners pair`",
        )),
    }
}

/// The `{name}` segment of `path` matching `pattern` (`/api/rings/{id}/snapshot`). The path
/// is read from the URI: `request_head::detach` keeps the request's head small and drops the
/// router's own path parameters.
pub(crate) fn segment<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?
        .strip_suffix(suffix)
        .filter(|s| !s.contains('/'))
}

/// Whether the request carries the doorbell token as its bearer.
pub(crate) fn is_doorbell(api: &Api, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&api.doorbell_token, presented) {
        (Some(token), Some(presented)) => token.matches(presented),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_device_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-doorbell=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
