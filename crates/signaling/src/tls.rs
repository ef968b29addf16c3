//! rustls client configuration (ring provider) for each [`ServerTrust`], and the TLS handshake.

use super::fingerprint::{FingerprintMismatch, PinnedCertVerifier};
use super::{ServerTrust, SignalingError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::Host;

/// TLS for talking to the server with the doorbell's trust (a CA, a pinned fingerprint, the
/// web PKI): for Socket.IO here, and for other requests to the same server (the snapshot
/// upload), which must trust exactly what signaling trusts.
pub fn client_config(trust: &ServerTrust) -> Result<ClientConfig, SignalingError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SignalingError::Tls(e.to_string()))?;
    let config = match trust {
        ServerTrust::CaPem(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| SignalingError::BadCaCertificate(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| SignalingError::BadCaCertificate(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(SignalingError::BadCaCertificate(
                    "no CERTIFICATE block in the PEM".to_owned(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        ServerTrust::WebPki => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        ServerTrust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier::new(
                Some(*pin),
                algorithms,
            )))
            .with_no_client_auth(),
        ServerTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier::new(None, algorithms)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Runs the TLS handshake over `tcp`; the name checked (CaPem, WebPki) is the URL's host.
pub(crate) async fn handshake(
    tcp: TcpStream,
    host: &Host<String>,
    trust: &ServerTrust,
) -> Result<TlsStream<TcpStream>, SignalingError> {
    let config = client_config(trust)?;
    let name = match host {
        Host::Domain(d) => ServerName::try_from(d.clone())
            .map_err(|e| SignalingError::Tls(format!("bad host name for TLS: {e}")))?,
        Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
        Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
    };
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(tls_error)
}

/// Turns the handshake's I/O error into the clearest [`SignalingError`] it can.
fn tls_error(error: std::io::Error) -> SignalingError {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) =
        rustls_error
        && let Some(mismatch) = other.0.downcast_ref::<FingerprintMismatch>()
    {
        return SignalingError::FingerprintMismatch {
            expected: mismatch.expected.clone(),
            actual: mismatch.actual.clone(),
        };
    }
    match rustls_error {
        Some(e) => SignalingError::Tls(e.to_string()),
        None => SignalingError::Tls(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_without_certificates_is_refused() {
        let err = client_config(&ServerTrust::CaPem("not a pem".into())).unwrap_err();
        assert!(matches!(err, SignalingError::BadCaCertificate(_)), "{err}");
    }

    #[test]
    fn every_other_trust_builds() {
        for trust in [
            ServerTrust::WebPki,
            ServerTrust::Insecure,
            ServerTrust::Fingerprint([0; 32]),
        ] {
            assert!(client_config(&trust).is_ok(), "{trust:?}");
        }
    }
}
