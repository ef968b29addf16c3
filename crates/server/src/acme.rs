//! Automatic HTTPS (`--acme-domain`): a certificate from an ACME CA (Let's Encrypt by default),
//! obtained with the TLS-ALPN-01 challenge on the server's own HTTPS port (no port 80 needed),
//! kept in `DATA_DIR/acme/` and renewed before it expires.
//!
//! The account key and the certificate's key are written owner-only and never logged. Until
//! the first certificate arrives the server presents a self-signed one for the domains, so it
//! is reachable (with a warning) and can answer the challenge on the same port.
//!
//! When to renew is decided by [`renewal_due`] from the certificate's expiry and the time,
//! passed in; [`Acme::renew_if_due`] takes the time as an argument so tests can move it.

use crate::error::ServerError;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Renew this long before expiry by default (Let's Encrypt's certificates last 90 days, and
/// its advice is to renew with a third of the lifetime left).
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

const ACCOUNT_FILE: &str = "account.json";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// What `--acme-*` asks for.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The names on the certificate; each must reach this server on port 443 (or wherever the
    /// CA's validation connects).
    pub domains: Vec<String>,
    /// The contact the CA writes to about expiry and problems.
    pub email: String,
    /// The CA's ACME directory URL.
    pub directory: String,
    /// Trust this PEM CA for the directory's HTTPS (a private CA such as pebble or step-ca);
    /// `None`: the system's roots.
    pub directory_ca: Option<PathBuf>,
    /// Where the account and certificate are kept (`DATA_DIR/acme`).
    pub dir: PathBuf,
    /// Renew when the certificate has less than this left.
    pub renew_before: Duration,
}

/// When the certificate expiring at `not_after` should be renewed: now (`None`), or the time
/// to look again.
pub fn renewal_due(
    not_after: SystemTime,
    renew_before: Duration,
    now: SystemTime,
) -> Option<SystemTime> {
    let due = not_after
        .checked_sub(renew_before)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    (now < due).then_some(due)
}

/// How long to wait after a failed attempt: 1 min doubling to 1 h, so a CA outage or a
/// firewall mistake is retried often enough to heal quickly and rarely enough not to hit the
/// CA's rate limits.
pub fn retry_delay(failures: u32) -> Duration {
    let minutes = 1u64 << failures.saturating_sub(1).min(6);
    Duration::from_secs(60 * minutes.min(60))
}

/// A certificate being served, with its expiry.
#[derive(Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    not_after: Option<SystemTime>,
    /// A stand-in until the CA's certificate arrives.
    fallback: bool,
}

/// Chooses the certificate for each handshake: the challenge's for a TLS-ALPN-01 validation,
/// else the current one.
#[derive(Debug)]
pub(crate) struct AcmeResolver {
    current: RwLock<Arc<CertifiedKey>>,
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validation = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if validation {
            let name = hello.server_name()?.to_ascii_lowercase();
            return lock(&self.challenges).get(&name).cloned();
        }
        Some(
            self.current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change is one insert or remove: a panic elsewhere leaves the map usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The ACME side of a server: its certificate, and getting a new one.
pub struct Acme {
    settings: AcmeSettings,
    resolver: Arc<AcmeResolver>,
    current: Mutex<Current>,
    /// Counts certificates installed; a test or the log can wait for the next.
    installed: watch::Sender<u64>,
    /// One order at a time.
    ordering: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("domains", &self.settings.domains)
            .finish_non_exhaustive()
    }
}

/// What [`Acme::renew_if_due`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// A new certificate is being served.
    Renewed,
    /// Nothing to do until then.
    NotDue(SystemTime),
}

/// The served identity at start, for `tls::load`.
pub(crate) struct Started {
    pub acme: Arc<Acme>,
    pub cert_pem: String,
}

impl Acme {
    /// Loads the kept certificate, or makes a stand-in; no network yet.
    pub(crate) fn start(settings: AcmeSettings) -> Result<Started, ServerError> {
        check_settings(&settings)?;
        // The ACME client's HTTPS uses the process's default rustls provider; ours is ring
        // (an error only means one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(&settings.dir).map_err(|source| ServerError::WriteFile {
            path: settings.dir.clone(),
            source,
        })?;
        let kept = match (
            std::fs::read_to_string(settings.dir.join(CERT_FILE)),
            std::fs::read_to_string(settings.dir.join(KEY_FILE)),
        ) {
            (Ok(cert), Ok(key)) => match certified(&cert, &key) {
                Ok(current) => Some((cert, current)),
                Err(e) => {
                    tracing::warn!("the kept ACME certificate is unusable ({e}); ordering anew");
                    None
                }
            },
            _ => None,
        };
        let (cert_pem, current) = match kept {
            Some(kept) => {
                tracing::info!(dir = %settings.dir.display(), "reusing the kept ACME certificate");
                kept
            }
            None => {
                let made = rcgen::generate_simple_self_signed(settings.domains.clone())
                    .map_err(|e| ServerError::CertificateGeneration(e.to_string()))?;
                let cert = made.cert.pem();
                let mut current = certified(&cert, &made.signing_key.serialize_pem())
                    .map_err(ServerError::Tls)?;
                current.fallback = true;
                (cert, current)
            }
        };
        let resolver = Arc::new(AcmeResolver {
            current: RwLock::new(current.key.clone()),
            challenges: Mutex::default(),
        });
        let acme = Arc::new(Acme {
            settings,
            resolver,
            current: Mutex::new(current),
            installed: watch::Sender::new(0),
            ordering: tokio::sync::Mutex::new(()),
        });
        Ok(Started { acme, cert_pem })
    }

    pub(crate) fn resolver(&self) -> Arc<AcmeResolver> {
        self.resolver.clone()
    }

    /// The protocols the server offers: the page's (`page`) for everyone, `acme-tls/1` for the
    /// CA's validation connections (rustls picks the first of ours the client offers).
    pub(crate) fn alpn_protocols(mut page: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        page.push(ACME_TLS_ALPN.to_vec());
        page
    }

    /// Changes each time a certificate from the CA is installed.
    pub fn installed(&self) -> watch::Receiver<u64> {
        self.installed.subscribe()
    }

    /// The served certificate's expiry (`None` for the stand-in).
    pub fn not_after(&self) -> Option<SystemTime> {
        let current = lock(&self.current);
        (!current.fallback).then_some(current.not_after).flatten()
    }

    /// Orders a certificate if there is none from the CA yet or the one served expires within
    /// the renewal margin, as of `now`.
    pub async fn renew_if_due(&self, now: SystemTime) -> Result<Renewal, ServerError> {
        if let Some(not_after) = self.not_after()
            && let Some(next) = renewal_due(not_after, self.settings.renew_before, now)
        {
            return Ok(Renewal::NotDue(next));
        }
        self.order().await?;
        Ok(Renewal::Renewed)
    }

    /// Keeps the certificate fresh for as long as the server runs.
    pub(crate) async fn maintain(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let wait = match self.renew_if_due(SystemTime::now()).await {
                Ok(Renewal::Renewed) => {
                    failures = 0;
                    continue;
                }
                Ok(Renewal::NotDue(next)) => {
                    failures = 0;
                    // Looked at again at least daily: a suspended machine's clock jumps.
                    next.duration_since(SystemTime::now())
                        .unwrap_or_default()
                        .min(Duration::from_secs(86_400))
                }
                Err(e) => {
                    failures += 1;
                    let wait = retry_delay(failures);
                    tracing::error!(
                        "could not get a certificate for {}: {e}; trying again in {} s",
                        self.settings.domains.join(", "),
                        wait.as_secs()
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn order(&self) -> Result<(), ServerError> {
        let _one = self.ordering.lock().await;
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| acme_error("the CA refused the order", e))?;
        let mut authorizations = order.authorizations();
        let mut answered = Vec::new();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(|e| acme_error("cannot read an authorization", e))?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(ServerError::Acme(format!(
                        "an authorization is {other:?}; check that the domain points at this server"
                    )));
                }
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| {
                    ServerError::Acme(
                        "the CA offers no TLS-ALPN-01 challenge; use a CA that does (Let's Encrypt does)"
                            .into(),
                    )
                })?;
            let name = challenge.identifier().to_string().to_ascii_lowercase();
            let cert = challenge_cert(&name, challenge.key_authorization().digest().as_ref())?;
            lock(&self.resolver.challenges).insert(name.clone(), cert);
            answered.push(name);
            challenge
                .set_ready()
                .await
                .map_err(|e| acme_error("the CA did not take the challenge", e))?;
        }
        let status = order.poll_ready(&RetryPolicy::default()).await;
        let clear = || {
            let mut challenges = lock(&self.resolver.challenges);
            for name in &answered {
                challenges.remove(name);
            }
        };
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                clear();
                return Err(acme_error(
                    "validation did not finish (can the CA reach this server's HTTPS port at the domain?)",
                    e,
                ));
            }
        };
        clear();
        if status != OrderStatus::Ready {
            return Err(ServerError::Acme(format!(
                "validation failed (order {status:?}): the CA must reach this server's HTTPS port at {}",
                self.settings.domains.join(", ")
            )));
        }
        let key = rcgen::KeyPair::generate()
            .map_err(|e| ServerError::CertificateGeneration(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(self.settings.domains.clone())
            .map_err(|e| ServerError::CertificateGeneration(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| ServerError::CertificateGeneration(e.to_string()))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| acme_error("the CA refused to finalize the order", e))?;
        let chain = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .map_err(|e| acme_error("the CA did not issue the certificate", e))?;
        let key_pem = key.serialize_pem();
        let current = certified(&chain, &key_pem).map_err(ServerError::Tls)?;
        write_private(&self.settings.dir.join(KEY_FILE), &key_pem)?;
        write_private(&self.settings.dir.join(CERT_FILE), &chain)?;
        tracing::info!(
            domains = %self.settings.domains.join(", "),
            not_after = ?current.not_after,
            "installed a certificate from the ACME CA"
        );
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = current.key.clone();
        *lock(&self.current) = current;
        self.installed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The kept account, or a new one (kept owner-only: its key is the account).
    async fn account(&self) -> Result<Account, ServerError> {
        let builder = || match &self.settings.directory_ca {
            Some(ca) => Account::builder_with_root(ca).map_err(|e| {
                acme_error(
                    &format!("cannot use {} as the ACME directory's CA", ca.display()),
                    e,
                )
            }),
            None => Account::builder().map_err(|e| acme_error("no HTTPS client", e)),
        };
        let path = self.settings.dir.join(ACCOUNT_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str::<AccountCredentials>(&text) {
                Ok(credentials) => {
                    return builder()?
                        .from_credentials(credentials)
                        .await
                        .map_err(|e| acme_error("cannot reach the ACME directory", e));
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    "the kept ACME account is unreadable ({e}); making a new one"
                ),
            }
        }
        let contact = format!("mailto:{}", self.settings.email);
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &[&contact],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(|e| {
                acme_error(
                    &format!(
                        "cannot open an account at {} (check --acme-directory and the network)",
                        self.settings.directory
                    ),
                    e,
                )
            })?;
        let text = serde_json::to_string(&credentials)
            .map_err(|e| ServerError::Acme(format!("cannot keep the account: {e}")))?;
        write_private(&path, &text)?;
        tracing::info!(directory = %self.settings.directory, "opened an ACME account");
        Ok(account)
    }
}

fn acme_error(what: &str, e: instant_acme::Error) -> ServerError {
    ServerError::Acme(format!("{what}: {e}"))
}

fn check_settings(settings: &AcmeSettings) -> Result<(), ServerError> {
    let bad = |why: String| Err(ServerError::Acme(why));
    if settings.domains.is_empty() {
        return bad("--acme-domain: give the domain the certificate is for".into());
    }
    for domain in &settings.domains {
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.parse::<std::net::IpAddr>().is_err()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return bad(format!(
                "--acme-domain {domain:?} is not a domain name (e.g. door.example.com; IP addresses get no ACME certificate)"
            ));
        }
    }
    let email = &settings.email;
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') || email.contains(' ')
    {
        return bad(format!(
            "--acme-email {email:?} is not an e-mail address (the CA writes to it about expiry)"
        ));
    }
    if !settings.directory.starts_with("https://") {
        return bad(format!(
            "--acme-directory {:?} must be an https:// URL (e.g. {LETS_ENCRYPT})",
            settings.directory
        ));
    }
    Ok(())
}

/// A chain and key ready to serve, with the leaf's expiry.
fn certified(chain_pem: &str, key_pem: &str) -> Result<Current, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    let leaf = chain.first().ok_or("no certificate in the chain")?;
    let not_after = x509_parser::parse_x509_certificate(leaf.as_ref())
        .ok()
        .and_then(|(_, cert)| {
            let secs = cert.validity().not_after.timestamp();
            u64::try_from(secs)
                .ok()
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        });
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("private key PEM: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("private key: {e}"))?;
    Ok(Current {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        not_after,
        fallback: false,
    })
}

/// The TLS-ALPN-01 answer for `name`: a self-signed certificate carrying the key
/// authorization's digest in the acmeIdentifier extension (RFC 8737 §3).
fn challenge_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, ServerError> {
    let generation = |e: rcgen::Error| ServerError::CertificateGeneration(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(generation)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(generation)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(generation)?;
    let current = certified(&cert.pem(), &key.serialize_pem()).map_err(ServerError::Tls)?;
    Ok(current.key)
}

/// Keys and the account are readable by their owner only.
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| ServerError::WriteFile {
        path: path.to_owned(),
        source,
    };
    // Written aside and renamed: a crash mid-write never leaves half a key behind.
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&partial, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn renewal_is_due_within_the_margin_before_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let not_after = t0 + 90 * DAY;
        assert_eq!(
            renewal_due(not_after, 30 * DAY, t0),
            Some(t0 + 60 * DAY),
            "a fresh certificate: look again when 30 days are left"
        );
        assert_eq!(renewal_due(not_after, 30 * DAY, t0 + 60 * DAY), None);
        assert_eq!(renewal_due(not_after, 30 * DAY, t0 + 100 * DAY), None);
        assert_eq!(
            renewal_due(not_after, 200 * DAY, t0),
            None,
            "a margin longer than the lifetime renews at once"
        );
    }

    #[test]
    fn failures_are_retried_from_a_minute_up_to_an_hour() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs() / 60).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    fn settings(domain: &str, email: &str, directory: &str) -> AcmeSettings {
        AcmeSettings {
            domains: vec![domain.into()],
            email: email.into(),
            directory: directory.into(),
            directory_ca: None,
            dir: std::env::temp_dir(),
            renew_before: DEFAULT_RENEW_BEFORE,
        }
    }

    #[test]
    fn bad_domains_emails_and_directories_are_refused_by_flag() {
        let cases = [
            (
                settings("door example", "a@b.c", LETS_ENCRYPT),
                "--acme-domain",
            ),
            (
                settings("192.0.2.1", "a@b.c", LETS_ENCRYPT),
                "--acme-domain",
            ),
            (
                settings("-x.example", "a@b.c", LETS_ENCRYPT),
                "--acme-domain",
            ),
            (
                settings("door.example", "nobody", LETS_ENCRYPT),
                "--acme-email",
            ),
            (
                settings("door.example", "a@b.c", "http://ca.example/dir"),
                "--acme-directory",
            ),
        ];
        for (s, flag) in cases {
            let e = check_settings(&s).expect_err("refused").to_string();
            assert!(e.contains(flag), "{e}");
        }
        check_settings(&settings(
            "door.example.com",
            "me@example.com",
            LETS_ENCRYPT,
        ))
        .unwrap();
    }

    #[test]
    fn the_challenge_certificate_carries_the_digest_in_the_acme_identifier_extension() {
        let digest = [7u8; 32];
        let key = challenge_cert("door.example", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(key.cert[0].as_ref()).unwrap();
        // id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31, critical, an OCTET STRING of the digest.
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        assert_eq!(&ext.value[2..], &digest);
    }
}
