//! The HTTP side shared by the Bot API, Twilio, ntfy and webhook channels: one client that
//! uses rustls with ring and the webpki roots, and one reading of a service's answer into
//! "sent", "try again (maybe after N s)" or "fix your config".

use super::NotifyError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;

/// Longest single request; the dispatcher retries within the ring's deadline.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error body we read to find the service's explanation.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The webpki roots plus the certificates of `extra_ca_pem` (a private CA), for every TLS
/// connection the notifiers make.
pub(crate) fn root_store(extra_ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the CA file is not usable PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("the CA file holds no PEM certificate".into());
        }
    }
    Ok(roots)
}

/// TLS trusting the webpki roots plus `extra_ca_pem`, with the ring provider.
pub(crate) fn tls_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = root_store(extra_ca_pem)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client for notification services, trusting the webpki roots plus `extra_ca_pem` (for a
/// self-hosted service with a private CA). Fails only if TLS cannot be set up.
pub(crate) fn client(extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut tls = tls_config(extra_ca_pem)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("doorbell/", env!("CARGO_PKG_VERSION")))
        // These APIs do not redirect; following one could take the link to a plain-http or
        // unexpected host, past the TLS rule the config enforced.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            format!(
                "HTTP client setup failed: {}",
                error_chain(&e.without_url())
            )
        })
}

/// A transport error (connect, TLS, timeout) as a retryable failure. The URL is dropped from
/// the message because some services (Telegram) carry the token in it.
pub(crate) fn transport_error(service: &str, error: reqwest::Error) -> NotifyError {
    NotifyError::retry(format!(
        "{service} unreachable: {}",
        error_chain(&error.without_url())
    ))
}

/// The error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

/// Reads a service's answer. 2xx gives the body; 429 and 5xx (and 408) are worth retrying,
/// honouring `Retry-After` or Telegram's `parameters.retry_after`; other statuses are
/// permanent, with the service's own explanation and `auth_hint` for 401/403.
pub(crate) async fn read_answer(
    service: &str,
    auth_hint: &str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, NotifyError> {
    let status = response.status();
    let header_retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if !status.is_success() && body.len() >= MAX_ERROR_BODY {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(service, e)),
        }
    }
    if status.is_success() {
        return Ok(body);
    }
    let explanation = explanation(&body);
    let code = status.as_u16();
    let detail = if explanation.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {explanation}")
    };
    if code == 429 {
        return Err(NotifyError::Retry {
            reason: format!("{service} is rate limiting ({detail})"),
            retry_after: header_retry_after.or_else(|| telegram_retry_after(&body)),
        });
    }
    if status.is_server_error() || code == 408 {
        return Err(NotifyError::Retry {
            reason: format!("{service} failed ({detail})"),
            retry_after: header_retry_after,
        });
    }
    let hint = if code == 401 || code == 403 {
        format!("; {auth_hint}")
    } else {
        String::new()
    };
    Err(NotifyError::Failed(format!(
        "{service} refused the message ({detail}){hint}"
    )))
}

/// `Retry-After` in seconds (the form these services use). An HTTP date is ignored (the
/// dispatcher's backoff applies instead).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Telegram: `{"ok":false,"error_code":429,"description":"...","parameters":{"retry_after":N}}`.
fn telegram_retry_after(body: &[u8]) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["parameters"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs)
}

/// The service's own words: Telegram `description`, Twilio `message`, ntfy `error`, else the
/// start of the body as text.
fn explanation(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["description", "message", "error"] {
            if let Some(text) = value[key].as_str() {
                return clip(text);
            }
        }
    }
    clip(&String::from_utf8_lossy(body))
}

fn clip(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_and_retry_after() {
        assert_eq!(
            explanation(br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
            "Unauthorized"
        );
        assert_eq!(
            explanation(br#"{"code":20003,"message":"Authenticate","status":401}"#),
            "Authenticate"
        );
        assert_eq!(explanation(b"plain\ntext"), "plain text");
        assert_eq!(
            telegram_retry_after(br#"{"ok":false,"parameters":{"retry_after":7}}"#),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn client_builds_with_ring() {
        client(None).unwrap();
        assert!(client(Some(b"not pem")).is_err());
    }
}
