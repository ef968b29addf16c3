//! The owner's web page, embedded in the binary, and the plain HTTP routes.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything under `web/` at build time.
#[derive(Embed)]
#[folder = "../../web"]
struct WebAssets;

/// Only our own origin: the page, its script and the Socket.IO connection. `blob:`/`mediastream:`
/// for the call's media elements.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Shown when the build had no `web/index.html`.
const PLACEHOLDER: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
     <title>Doorbell</title></head><body><h1>Doorbell</h1>\
     <p>The call page is not part of this build.</p></body></html>";

pub(crate) fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        // The pairing link opens the same page, which reads its code.
        .route("/pair", get(index))
        .route("/healthz", get(healthz))
        .fallback(get(asset))
}

/// Headers on every response, the Socket.IO ones included. `hsts`: the certificate is a
/// real one (not self-signed), so browsers may be told to insist on HTTPS for a year; with a
/// self-signed certificate that would lock the owner out once it changes.
pub(crate) fn with_security_headers(router: Router, hsts: bool) -> Router {
    let router = if hsts {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    };
    router
        // The page's URL holds the room id, the API's answers the calls: keep neither in any
        // cache, shared or the browser's own.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        // The URL holds the room id, a secret: never send it to anyone in a Referer.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `/` and `/?room=ROOM`: the same page; the page reads the room from its URL.
async fn index() -> Response {
    match WebAssets::get("index.html") {
        Some(file) => file_response("index.html", file.data.into_owned()),
        None => html(PLACEHOLDER),
    }
}

async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match WebAssets::get(path) {
        Some(file) => file_response(path, file.data.into_owned()),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn html(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

fn file_response(path: &str, data: Vec<u8>) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let content_type = match mime.type_() {
        mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
        _ if mime.subtype() == mime_guess::mime::JAVASCRIPT => format!("{mime}; charset=utf-8"),
        _ => mime.to_string(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(data))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
