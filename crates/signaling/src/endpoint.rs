use super::SignalingError;
use doorbell_protocol::wire::EngineIoVersion;
use url::{Host, Url};

/// The websocket address of a Socket.IO server, derived from the configured server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `ws://` or `wss://…/socket.io/?EIO=…&transport=websocket[&token=…]`. May carry the token:
    /// never log it, log [`Endpoint::redacted`] instead.
    pub url: String,
    /// The same address with the token replaced, for logs and error messages.
    pub redacted: String,
    pub host: Host<String>,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    pub fn new(
        server: &str,
        version: EngineIoVersion,
        token: Option<&str>,
    ) -> Result<Self, SignalingError> {
        let bad = |reason: &str| SignalingError::BadUrl {
            server: server.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(server).map_err(|e| bad(&e.to_string()))?;
        let (scheme, tls) = match parsed.scheme() {
            "https" | "wss" => ("wss", true),
            "http" | "ws" => ("ws", false),
            _ => return Err(bad("the scheme must be https or http")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("user names and passwords in the URL are not supported"));
        }
        let host = parsed
            .host()
            .ok_or_else(|| bad("the URL has no host"))?
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| bad("the URL has no port"))?;
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let prefix = parsed.path().trim_end_matches('/');
        let base = format!(
            "{scheme}://{authority}{prefix}/socket.io/?EIO={}&transport=websocket",
            version.query_value()
        );
        // Engine.IO 3 has no auth payload: the query string is the only place for the token.
        let (url, redacted) = match (version, token) {
            (EngineIoVersion::V3, Some(token)) => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
                (
                    format!("{base}&token={encoded}"),
                    format!("{base}&token=<redacted>"),
                )
            }
            _ => (base.clone(), base),
        };
        Ok(Self {
            url,
            redacted,
            host,
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_becomes_wss_with_the_socket_io_path() {
        let e = Endpoint::new(
            "https://door.example:8443",
            EngineIoVersion::V4,
            Some("t0k"),
        )
        .unwrap();
        assert_eq!(
            e.url,
            "wss://door.example:8443/socket.io/?EIO=4&transport=websocket"
        );
        assert!(e.tls);
        assert_eq!(e.port, 8443);
        assert_eq!(e.host, Host::Domain("door.example".to_owned()));
    }

    #[test]
    fn http_becomes_ws_and_default_ports_apply() {
        let e = Endpoint::new("http://127.0.0.1", EngineIoVersion::V4, None).unwrap();
        assert_eq!(e.url, "ws://127.0.0.1/socket.io/?EIO=4&transport=websocket");
        assert_eq!(e.port, 80);
        assert!(!e.tls);
        let e = Endpoint::new("https://[::1]/prefix/", EngineIoVersion::V4, None).unwrap();
        assert_eq!(
            e.url,
            "wss://[::1]/prefix/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(e.port, 443);
    }

    #[test]
    fn eio3_puts_the_token_in_the_query_and_redacts_it() {
        let e = Endpoint::new("http://h:1", EngineIoVersion::V3, Some("a b&c")).unwrap();
        assert_eq!(
            e.url,
            "ws://h:1/socket.io/?EIO=3&transport=websocket&token=a+b%26c"
        );
        assert!(!e.redacted.contains("a+b"));
        assert!(e.redacted.ends_with("&token=<redacted>"));
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        for bad in ["ftp://h", "h:1", "", "https://", "http://user:pw@h/"] {
            assert!(
                matches!(
                    Endpoint::new(bad, EngineIoVersion::V4, None),
                    Err(SignalingError::BadUrl { .. })
                ),
                "{bad}"
            );
        }
    }
}
