//! The rule for where a link may go: "a link is sent only over TLS endpoints unless the
//! endpoint is loopback". A call link is a key to the door camera, so `http://` is accepted
//! only for 127.0.0.0/8, ::1 and `localhost` (tests, a bridge on the same machine).

use std::net::IpAddr;
use url::{Host, Url};

/// true for `localhost`, 127.0.0.0/8 and ::1.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn url_is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => is_loopback_host(d),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses an endpoint URL and enforces the TLS rule. The error says what to do.
pub(crate) fn secure_endpoint(value: &str) -> Result<Url, String> {
    let url = Url::parse(value)
        .map_err(|e| format!("not a URL ({e}); write it like https://host[:port]/path"))?;
    if url.host().is_none() {
        return Err("has no host; write it like https://host[:port]/path".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if url_is_loopback(&url) => Ok(url),
        "http" => Err(
            "http:// to a non-loopback host would send the call link unencrypted; use https:// \
             (http:// is allowed only for 127.0.0.1, ::1 and localhost)"
                .into(),
        ),
        other => Err(format!("scheme {other}:// is not supported; use https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(secure_endpoint("https://api.telegram.org").is_ok());
        assert!(secure_endpoint("http://127.0.0.1:8080/x").is_ok());
        assert!(secure_endpoint("http://127.9.9.9/x").is_ok());
        assert!(secure_endpoint("http://[::1]:9/").is_ok());
        assert!(secure_endpoint("http://localhost:9/").is_ok());
        let e = secure_endpoint("http://ntfy.sh").unwrap_err();
        assert!(e.contains("use https://"), "{e}");
        assert!(secure_endpoint("http://192.168.1.5/").is_err());
        assert!(secure_endpoint("ftp://127.0.0.1/").is_err());
        assert!(secure_endpoint("not a url").is_err());
        assert!(is_loopback_host("::1") && is_loopback_host("[::1]"));
        assert!(!is_loopback_host("smtp.example.com"));
    }
}
