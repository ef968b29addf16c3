//! Copying a request's head out of the connection's read buffer before socketioxide keeps it.
//!
//! hyper parses a request in place: the URI and the header values are slices of the
//! connection's 8 KiB read buffer, and some of what hyper and axum-server put in the
//! extensions holds on to it as well. socketioxide keeps each connection's request head (all
//! three) for the connection's lifetime, so every idle websocket kept that buffer alive. With
//! the head copied and only the extensions we use kept, an idle connection costs ~4.5 KiB less
//! (heaptrack and RSS, BENCHMARKS.md "Server"; copying only one of the two saved nothing or
//! 1 KiB).

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, Uri};
use hyper::upgrade::OnUpgrade;
use std::net::SocketAddr;

/// The same request with its URI and header values in allocations of their own, and with only
/// the extensions the Socket.IO layer and our handlers read: the client's address and
/// hyper's handle for the websocket upgrade.
pub(crate) async fn detach(request: Request) -> Request {
    let (mut parts, body) = request.into_parts();
    parts.uri = copy_uri(&parts.uri);
    parts.headers = copy_headers(&parts.headers);
    parts.extensions = kept_extensions(&mut parts.extensions);
    Request::from_parts(parts, body)
}

fn copy_uri(uri: &Uri) -> Uri {
    // Parsing from a `&str` copies; a URI that parsed once parses again.
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

fn copy_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // `from_bytes` copies. Header names are already owned (hyper copies them).
        let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        copy.append(name.clone(), owned);
    }
    copy
}

fn kept_extensions(extensions: &mut Extensions) -> Extensions {
    let mut kept = Extensions::new();
    if let Some(peer) = extensions.remove::<ConnectInfo<SocketAddr>>() {
        kept.insert(peer);
    }
    if let Some(upgrade) = extensions.remove::<OnUpgrade>() {
        kept.insert(upgrade);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::body::Bytes;

    fn inside(buffer: &Bytes, part: &[u8]) -> bool {
        buffer.as_ptr_range().contains(&part.as_ptr())
    }

    #[tokio::test]
    async fn the_head_no_longer_points_into_the_read_buffer() {
        // A request head built the way hyper builds it: slices of one large buffer.
        let mut raw = vec![0u8; 8 * 1024];
        let text = b"/socket.io/?EIO=4&transport=websocket Mozilla/5.0 (X11; Linux)";
        raw[..text.len()].copy_from_slice(text);
        let buffer = Bytes::from(raw);
        let space = text.iter().position(|&b| b == b' ').expect("a space");
        let uri = Uri::from_maybe_shared(buffer.slice(0..space)).expect("uri");
        let agent =
            HeaderValue::from_maybe_shared(buffer.slice(space + 1..text.len())).expect("value");
        assert!(inside(&buffer, uri.path().as_bytes()), "the setup shares");
        assert!(inside(&buffer, agent.as_bytes()), "the setup shares");

        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri;
        request.headers_mut().append("user-agent", agent);
        let mut secret = HeaderValue::from_static("Bearer x");
        secret.set_sensitive(true);
        request.headers_mut().append("authorization", secret);
        request
            .headers_mut()
            .append("x-twice", HeaderValue::from_static("1"));
        request
            .headers_mut()
            .append("x-twice", HeaderValue::from_static("2"));
        let peer: SocketAddr = "192.0.2.7:4242".parse().expect("addr");
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(buffer.slice(0..4)); // something else holding on

        let detached = detach(request).await;
        assert_eq!(detached.uri().path(), "/socket.io/");
        assert_eq!(detached.uri().query(), Some("EIO=4&transport=websocket"));
        assert!(!inside(&buffer, detached.uri().path().as_bytes()));
        let copied = detached.headers().get("user-agent").expect("kept");
        assert_eq!(copied, "Mozilla/5.0 (X11; Linux)");
        assert!(!inside(&buffer, copied.as_bytes()));
        assert!(
            detached
                .headers()
                .get("authorization")
                .expect("kept")
                .is_sensitive()
        );
        let twice: Vec<_> = detached.headers().get_all("x-twice").iter().collect();
        assert_eq!(twice, ["1", "2"], "repeated headers keep their order");
        assert_eq!(
            detached
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
            Some(peer)
        );
        assert!(detached.extensions().get::<Bytes>().is_none());
        // Nothing refers to the buffer any more: this handle is the only one left.
        assert!(buffer.is_unique());
    }
}
