//! The server's TLS identity: PEM files given by the owner, or a self-signed certificate made
//! once, kept in the data directory and reused, so the fingerprint an owner noted stays valid.

use crate::error::ServerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// PEM certificate chain and private key, e.g. from Let's Encrypt.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `hostnames`, kept in
    /// `data_dir` (`cert.pem`, `key.pem`) and reused on the next start.
    SelfSigned {
        data_dir: PathBuf,
        hostnames: Vec<String>,
    },
    /// A certificate from an ACME CA, obtained and renewed by the server (`acme.rs`).
    Acme(crate::acme::AcmeSettings),
}

/// A loaded identity, ready to serve.
pub(crate) struct LoadedTls {
    pub cert_pem: String,
    /// SHA-256 of the leaf certificate's DER, `AA:BB:...`.
    pub fingerprint: String,
    pub server_config: Arc<rustls::ServerConfig>,
    /// With [`TlsConfig::Acme`]: what keeps the certificate fresh.
    pub acme: Option<Arc<crate::acme::Acme>>,
}

const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// The names the kept certificate was made for; a different `--hostname` set makes a new one.
const NAMES_FILE: &str = "cert-hostnames.txt";

pub(crate) fn load(config: &TlsConfig) -> Result<LoadedTls, ServerError> {
    let (cert_pem, key_pem, cert_path) = match config {
        TlsConfig::Acme(settings) => return load_acme(settings.clone()),
        TlsConfig::Files { cert, key } => (
            read(cert, "certificate")?,
            read(key, "private key")?,
            cert.clone(),
        ),
        TlsConfig::SelfSigned {
            data_dir,
            hostnames,
        } => {
            let (c, k) = self_signed(data_dir, hostnames)?;
            (c, k, data_dir.join(CERT_FILE))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("certificate PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or(ServerError::NoCertificate { path: cert_path })?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| ServerError::Tls(format!("private key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    server_config.alpn_protocols = page_protocols();
    Ok(LoadedTls {
        cert_pem,
        fingerprint,
        server_config: Arc::new(server_config),
        acme: None,
    })
}

/// HTTP/2 first: the page's files then come over the one connection its document came on,
/// without a TLS handshake each (measured in BENCHMARKS.md "Page open → first frame"). Browsers
/// open WebSockets over HTTP/1.1 when, as here, the server does not offer them over HTTP/2
/// (RFC 8441), and the agent's and older clients ask for HTTP/1.1 only.
pub(crate) fn page_protocols() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The ACME identity: certificates chosen per handshake, so renewals and challenge answers
/// need no restart.
fn load_acme(settings: crate::acme::AcmeSettings) -> Result<LoadedTls, ServerError> {
    use crate::acme::Acme;
    let started = Acme::start(settings)?;
    let fingerprint = pem_fingerprint(&started.cert_pem).unwrap_or_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(started.acme.resolver());
    server_config.alpn_protocols = Acme::alpn_protocols(page_protocols());
    Ok(LoadedTls {
        cert_pem: started.cert_pem,
        fingerprint,
        server_config: Arc::new(server_config),
        acme: Some(started.acme),
    })
}

/// `AA:BB:…` upper-case hex of SHA-256, the form browsers show.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of the first certificate in a PEM text; `None` if it holds none.
pub fn pem_fingerprint(pem: &str) -> Option<String> {
    let first = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()?;
    Some(fingerprint(first.as_ref()))
}

fn read(path: &Path, what: &'static str) -> Result<String, ServerError> {
    fs::read_to_string(path).map_err(|source| ServerError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn subject_names(hostnames: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for h in hostnames {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    names
}

fn self_signed(data_dir: &Path, hostnames: &[String]) -> Result<(String, String), ServerError> {
    let names = subject_names(hostnames);
    let names_line = names.join(",");
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    let names_path = data_dir.join(NAMES_FILE);
    if cert_path.exists() && key_path.exists() {
        let kept_names = fs::read_to_string(&names_path).unwrap_or_default();
        if kept_names.trim() == names_line {
            tracing::info!(path = %cert_path.display(), "reusing the self-signed certificate");
            return Ok((
                read(&cert_path, "certificate")?,
                read(&key_path, "private key")?,
            ));
        }
        tracing::info!("host names changed; making a new self-signed certificate");
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServerError::CertificateGeneration(e.to_string()))?;
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    fs::create_dir_all(data_dir).map_err(|source| ServerError::WriteFile {
        path: data_dir.to_owned(),
        source,
    })?;
    write_private(&key_path, &key_pem)?;
    write(&cert_path, &cert_pem)?;
    write(&names_path, &names_line)?;
    tracing::info!(path = %cert_path.display(), "made a new self-signed certificate");
    Ok((cert_pem, key_pem))
}

fn write(path: &Path, text: &str) -> Result<(), ServerError> {
    fs::write(path, text).map_err(|source| ServerError::WriteFile {
        path: path.to_owned(),
        source,
    })
}

/// The key is readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let err = |source| ServerError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = TlsConfig::SelfSigned {
            data_dir: dir.path().to_owned(),
            hostnames: vec!["door.example".into()],
        };
        let first = load(&config).unwrap();
        let second = load(&config).unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        assert!(first.cert_pem.contains("BEGIN CERTIFICATE"));
        let other_names = TlsConfig::SelfSigned {
            data_dir: dir.path().to_owned(),
            hostnames: vec!["other.example".into()],
        };
        assert_ne!(load(&other_names).unwrap().fingerprint, first.fingerprint);
    }

    #[test]
    fn files_are_loaded_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let made = load(&TlsConfig::SelfSigned {
            data_dir: dir.path().to_owned(),
            hostnames: vec![],
        })
        .unwrap();
        let from_files = load(&TlsConfig::Files {
            cert: dir.path().join(CERT_FILE),
            key: dir.path().join(KEY_FILE),
        })
        .unwrap();
        assert_eq!(made.fingerprint, from_files.fingerprint);
        let missing = load(&TlsConfig::Files {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join(KEY_FILE),
        })
        .err()
        .unwrap();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
    }

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        fs::write(&cert, "hello").unwrap();
        fs::write(&key, "world").unwrap();
        assert!(load(&TlsConfig::Files { cert, key }).is_err());
    }

    #[test]
    fn pem_fingerprint_matches_the_served_one() {
        let dir = tempfile::tempdir().unwrap();
        let made = load(&TlsConfig::SelfSigned {
            data_dir: dir.path().to_owned(),
            hostnames: vec![],
        })
        .unwrap();
        assert_eq!(pem_fingerprint(&made.cert_pem), Some(made.fingerprint));
        assert_eq!(pem_fingerprint("no pem here"), None);
    }

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint(b"abc");
        assert!(fp.starts_with("BA:78:16:BF"), "{fp}");
    }
}
