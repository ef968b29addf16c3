//! Certificate pinning: trust exactly one certificate, named by the SHA-256 of its DER.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `AB:CD:…` — the usual notation of certificate fingerprints (as `openssl x509 -fingerprint`).
pub fn format_fingerprint(hash: &[u8; 32]) -> String {
    hash.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a SHA-256 fingerprint as people copy it: 64 hex digits, with or without `:`
/// separators (as printed by our server, browsers and `openssl x509 -fingerprint -sha256`),
/// any case. `None` if it is not exactly 32 bytes of hex.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .unwrap_or(text);
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

/// The pinned certificate was not the one the server presented. Travels inside the rustls
/// error so the connector can turn it into [`super::SignalingError::FingerprintMismatch`].
#[derive(Debug, thiserror::Error)]
#[error("certificate fingerprint {actual} does not match the pinned {expected}")]
pub(crate) struct FingerprintMismatch {
    pub expected: String,
    pub actual: String,
}

/// Accepts the end-entity certificate whose SHA-256 equals the pin (`None`: any certificate),
/// ignoring chain, name and validity dates, but still checks the handshake signatures so the
/// peer must hold the certificate's private key.
#[derive(Debug)]
pub(crate) struct PinnedCertVerifier {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    pub fn new(pin: Option<[u8; 32]>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { pin, algorithms }
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if &actual == pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(FingerprintMismatch {
                    expected: format_fingerprint(pin),
                    actual: format_fingerprint(&actual),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_openssl() {
        let mut hash = [0u8; 32];
        hash[0] = 0xAB;
        hash[31] = 0x01;
        let text = format_fingerprint(&hash);
        assert!(text.starts_with("AB:00:"));
        assert!(text.ends_with(":01"));
        assert_eq!(text.len(), 32 * 3 - 1);
    }

    #[test]
    fn parses_what_it_formats_and_common_spellings() {
        let hash: [u8; 32] = Sha256::digest(b"x").into();
        let text = format_fingerprint(&hash);
        assert_eq!(parse_fingerprint(&text), Some(hash));
        assert_eq!(parse_fingerprint(&text.to_lowercase()), Some(hash));
        assert_eq!(parse_fingerprint(&text.replace(':', "")), Some(hash));
        assert_eq!(parse_fingerprint(&format!(" sha256:{text}\n")), Some(hash));
        for bad in [
            "",
            "AB",
            &text[3..],
            &format!("{text}:00"),
            &text.replace('A', "G"),
            "é".repeat(32).as_str(),
        ] {
            assert_eq!(parse_fingerprint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refuses_a_certificate_that_is_not_pinned() {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let right: [u8; 32] = Sha256::digest([1u8, 2, 3]).into();
        let name = ServerName::try_from("localhost").unwrap();
        let ok = PinnedCertVerifier::new(Some(right), algorithms);
        assert!(
            ok.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let wrong = PinnedCertVerifier::new(Some([7; 32]), algorithms);
        let err = wrong
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::Other(_))
        ));
        let any = PinnedCertVerifier::new(None, algorithms);
        assert!(
            any.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
    }
}
