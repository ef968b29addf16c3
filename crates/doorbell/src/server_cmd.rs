//! `doorbell server`: the HTTPS signaling server. Every setting comes from a flag, a
//! `DOORBELL_*` environment variable or the `[server]` table of the TOML config, in that order
//! (flag > env > file > default: `config::ConfigFile::section` layers the first three,
//! [`ServerArgs::resolve`] checks them and fills in the defaults).

use crate::duration::parse_duration;
use clap::Args;
use doorbell_protocol::IceTransportPolicy;
use doorbell_server::acme::{self, AcmeSettings};
use doorbell_server::ice::{DEFAULT_TURN_TTL, IceSettings};
use doorbell_server::{
    Limits, OwnerApp, PushSettings, Retention, Secret, ServerConfig, Store, TlsConfig,
};
use doorbell_turn::{TurnConfig, TurnServer};
use serde::Deserialize;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NO_EMBEDDED_SECRET: &str =
    "the embedded TURN server needs --turn-secret-file (the secret its credentials are made with)";

pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8443));

/// The server's settings: each field is a flag, a `DOORBELL_*` environment variable and a key
/// of the `[server]` table (see `config.rs` for how they are layered).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerArgs {
    /// Address and port to serve HTTPS on [default: 0.0.0.0:8443; port 0 = any free port].
    #[arg(long, env = "DOORBELL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain (with --key). Without both, a self-signed certificate is used.
    #[arg(long, env = "DOORBELL_CERT")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, env = "DOORBELL_KEY")]
    pub key: Option<PathBuf>,
    /// Where the self-signed certificate is kept between starts
    /// [default: $XDG_DATA_HOME/doorbell or ~/.local/share/doorbell].
    #[arg(long, env = "DOORBELL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Extra host name or IP for the self-signed certificate (besides localhost, 127.0.0.1).
    /// Repeatable; the environment variable takes a comma-separated list.
    #[arg(long = "hostname", env = "DOORBELL_HOSTNAME", value_delimiter = ',')]
    pub hostnames: Option<Vec<String>>,
    /// The doorbell token: only clients presenting it may open rooms. Prefer DOORBELL_TOKEN or
    /// --doorbell-token-file (flags show up in `ps`).
    // Not a key of the file: a config file is often world-readable; it names a token file.
    #[arg(long, env = "DOORBELL_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub doorbell_token: Option<String>,
    /// A file holding the doorbell token (surrounding whitespace is ignored).
    #[arg(long, env = "DOORBELL_TOKEN_FILE")]
    pub doorbell_token_file: Option<PathBuf>,
    /// Let anyone open rooms, as the lab's server does. Off by default.
    #[arg(
        long,
        env = "DOORBELL_OPEN_ROOMS",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub open_rooms: Option<bool>,
    /// Sustained events per second one connection may send [default: 20].
    #[arg(long, env = "DOORBELL_EVENTS_PER_SEC")]
    pub events_per_sec: Option<u32>,
    /// Events one connection may send in a burst [default: 60].
    #[arg(long, env = "DOORBELL_EVENT_BURST")]
    pub event_burst: Option<u32>,
    /// Socket.IO connections held at once [default: 10000].
    #[arg(long, env = "DOORBELL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Socket.IO connections held at once from one IP address (IPv6: one /64), for clients
    /// without the doorbell token [default: 64].
    #[arg(long, env = "DOORBELL_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Close a connection without the doorbell token that has been in no room this long (a
    /// page left open before Answer keeps its slot this long) [default: 5m].
    #[arg(long, env = "DOORBELL_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Days of ring history kept (the owner app) [default: 90].
    #[arg(long, env = "DOORBELL_HISTORY_DAYS")]
    pub history_days: Option<u32>,
    /// The most the ring history may take on disk, snapshots included, in MiB [default: 500].
    #[arg(long, env = "DOORBELL_HISTORY_MAX_MIB")]
    pub history_max_mib: Option<u64>,
    /// How push services can reach you, sent with every Web Push (`mailto:you@example.com` or
    /// an `https:` URL) [default: mailto:doorbell@localhost].
    #[arg(long, env = "DOORBELL_PUSH_CONTACT")]
    pub push_contact: Option<String>,
    /// Accept plain-http Web Push endpoints. Only for a push service on this machine (tests):
    /// real push services are HTTPS.
    #[arg(
        long,
        env = "DOORBELL_PUSH_ALLOW_HTTP",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub push_allow_http: Option<bool>,
    /// A STUN server handed to both ends of every call (`stun:host:3478`). Repeatable; the
    /// environment variable takes a comma-separated list.
    #[arg(long = "stun", env = "DOORBELL_STUN", value_delimiter = ',')]
    pub stun: Option<Vec<String>>,
    /// A TURN server URL (`turn:host:3478?transport=udp`, `turn:host:3478?transport=tcp`,
    /// `turns:host:5349?transport=tcp`). Repeatable; needs --turn-secret-file.
    #[arg(long = "turn-url", env = "DOORBELL_TURN_URL", value_delimiter = ',')]
    #[serde(rename = "turn-url")]
    pub turn_urls: Option<Vec<String>>,
    /// The TURN server's shared secret (coturn's static-auth-secret), in a file. Every call
    /// member gets credentials made from it; the secret itself never leaves the server.
    #[arg(long, env = "DOORBELL_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// How long TURN credentials stay valid [default: 1h, longer than the longest call].
    #[arg(long, env = "DOORBELL_TURN_TTL")]
    pub turn_ttl: Option<String>,
    /// `all`, or `relay`: both ends use TURN only and never learn each other's address
    /// [default: all].
    #[arg(long, env = "DOORBELL_ICE_TRANSPORT_POLICY")]
    pub ice_transport_policy: Option<String>,
    /// Run a TURN server in this process, on this UDP address (e.g. 0.0.0.0:3478), with the
    /// --turn-secret-file secret. Without --turn-url, calls are handed this one.
    #[arg(long, env = "DOORBELL_TURN_LISTEN")]
    pub turn_listen: Option<SocketAddr>,
    /// The public address of the embedded TURN server (what clients and peers reach).
    #[arg(long, env = "DOORBELL_TURN_EXTERNAL_IP")]
    pub turn_external_ip: Option<IpAddr>,
    /// A private or local range the embedded TURN server may relay to after all (it refuses
    /// loopback, private, CGNAT, link-local and multicast peers). Repeatable.
    #[arg(
        long = "turn-allow-peer",
        env = "DOORBELL_TURN_ALLOW_PEER",
        value_delimiter = ','
    )]
    #[serde(rename = "turn-allow-peer")]
    pub turn_allow_peers: Option<Vec<String>>,
    /// Allocations the embedded TURN server holds at once [default: 100].
    #[arg(long, env = "DOORBELL_TURN_MAX_ALLOCATIONS")]
    pub turn_max_allocations: Option<usize>,
    /// Allocations per TURN username at once [default: 4].
    #[arg(long, env = "DOORBELL_TURN_MAX_ALLOCATIONS_PER_USER")]
    pub turn_max_allocations_per_user: Option<usize>,
    /// Get the certificate from an ACME CA (Let's Encrypt by default) for this domain and renew
    /// it (TLS-ALPN-01 on the HTTPS port: the CA must reach --listen on port 443). Repeatable.
    #[arg(
        long = "acme-domain",
        env = "DOORBELL_ACME_DOMAIN",
        value_delimiter = ','
    )]
    #[serde(rename = "acme-domain")]
    pub acme_domains: Option<Vec<String>>,
    /// The e-mail address the ACME CA writes to about the certificate.
    #[arg(long, env = "DOORBELL_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME CA's directory URL [default: Let's Encrypt].
    #[arg(long, env = "DOORBELL_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// Trust this PEM CA for the ACME directory's HTTPS (a private CA: step-ca, pebble).
    #[arg(long, env = "DOORBELL_ACME_DIRECTORY_CA")]
    pub acme_directory_ca: Option<PathBuf>,
    /// Renew the ACME certificate when it has fewer than this many days left [default: 30].
    #[arg(long, env = "DOORBELL_ACME_RENEW_DAYS")]
    pub acme_renew_days: Option<u32>,
    /// Share rooms with other server nodes through this Redis (7 or later), e.g.
    /// redis://10.0.0.5:6379 (a password: redis://:PASSWORD@HOST:6379, or DOORBELL_REDIS).
    /// Every node behind the load balancer gets the same URL.
    #[arg(long, env = "DOORBELL_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// With --redis: this node keeps the owner app (paired devices, ring history) for every
    /// node; the others have none. Route /api/, /pair and paired devices' pages to it.
    #[arg(
        long,
        env = "DOORBELL_HISTORY_NODE",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub history_node: Option<bool>,
    /// Serve Prometheus metrics on this address (plain HTTP, `GET /metrics`; keep it private,
    /// e.g. 127.0.0.1:9101).
    #[arg(long, env = "DOORBELL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerCmdError {
    #[error("--cert and --key go together: give both (or neither, for a self-signed certificate)")]
    CertWithoutKey,
    #[error("cannot read the doorbell token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the doorbell token file {0} is empty; put the token in it")]
    EmptyTokenFile(PathBuf),
    #[error(
        "no data directory: set --data-dir (or HOME / XDG_DATA_HOME) for the self-signed certificate"
    )]
    NoDataDir,
    #[error("{key}: {why}")]
    Bad { key: &'static str, why: String },
    #[error(transparent)]
    Server(#[from] doorbell_server::ServerError),
}

impl ServerArgs {
    /// The server's config: these settings, checked, over the defaults.
    pub fn resolve(&self) -> Result<ServerConfig, ServerCmdError> {
        let tls = match (self.cert.clone(), self.key.clone()) {
            _ if self.acme_domains.is_some() => {
                if self.cert.is_some() || self.key.is_some() {
                    return Err(ServerCmdError::Bad {
                        key: "acme-domain",
                        why: "--cert/--key and --acme-domain both choose the certificate: give one"
                            .into(),
                    });
                }
                TlsConfig::Acme(self.acme_settings()?)
            }
            (Some(cert), Some(key)) => TlsConfig::Files { cert, key },
            (None, None) => TlsConfig::SelfSigned {
                data_dir: self
                    .data_dir
                    .clone()
                    .or_else(default_data_dir)
                    .ok_or(ServerCmdError::NoDataDir)?,
                hostnames: self.hostnames.clone().unwrap_or_default(),
            },
            _ => return Err(ServerCmdError::CertWithoutKey),
        };
        // A token given directly (flag or env) wins over a token file from any layer.
        let doorbell_token = match (&self.doorbell_token, &self.doorbell_token_file) {
            (Some(token), _) => Some(Secret::new(token.clone())),
            (None, Some(path)) => Some(read_token_file(path)?),
            (None, None) => crate::credentials::credential("DOORBELL_TOKEN").map(Secret::new),
        };
        let defaults = Limits::default();
        let mut config = ServerConfig::new(self.listen.unwrap_or(DEFAULT_LISTEN), tls);
        config.doorbell_token = doorbell_token;
        config.open_rooms = self.open_rooms.unwrap_or(false);
        config.limits = Limits {
            events_per_sec: self.events_per_sec.unwrap_or(defaults.events_per_sec),
            event_burst: self.event_burst.unwrap_or(defaults.event_burst),
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(defaults.max_connections_per_ip),
            idle_timeout: match &self.idle_timeout {
                Some(text) => parse_duration(text).map_err(|why| ServerCmdError::Bad {
                    key: "idle-timeout",
                    why,
                })?,
                None => defaults.idle_timeout,
            },
        };
        config.ice = self.ice_settings()?;
        config.metrics_listen = self.metrics_listen;
        config.redis = self.redis.clone().map(Secret::new);
        Ok(config)
    }

    /// Automatic HTTPS's settings (with `--acme-domain`).
    fn acme_settings(&self) -> Result<AcmeSettings, ServerCmdError> {
        let bad = |key, why: String| ServerCmdError::Bad { key, why };
        let email = self.acme_email.clone().ok_or_else(|| {
            bad(
                "acme-email",
                "automatic HTTPS needs a contact address for the CA: give --acme-email".into(),
            )
        })?;
        let renew_before = match self.acme_renew_days {
            Some(0) => return Err(bad("acme-renew-days", "must be at least 1".into())),
            Some(days) => Duration::from_secs(u64::from(days) * 86_400),
            None => acme::DEFAULT_RENEW_BEFORE,
        };
        Ok(AcmeSettings {
            domains: self.acme_domains.clone().unwrap_or_default(),
            email,
            directory: self
                .acme_directory
                .clone()
                .unwrap_or_else(|| acme::LETS_ENCRYPT.into()),
            directory_ca: self.acme_directory_ca.clone(),
            dir: self
                .data_dir()
                .ok_or(ServerCmdError::NoDataDir)?
                .join("acme"),
            renew_before,
        })
    }

    /// The data dir: `data-dir`, else the user's (`$XDG_DATA_HOME/doorbell`).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data_dir.clone().or_else(default_data_dir)
    }

    /// The owner app (paired devices, ring history) in the data dir's database; `None`
    /// without a data dir.
    pub fn owner_app(&self) -> Result<Option<OwnerApp>, ServerCmdError> {
        let history_node = self.history_node.unwrap_or(false);
        match (&self.redis, history_node) {
            (None, true) => {
                return Err(ServerCmdError::Bad {
                    key: "history-node",
                    why:
                        "it names the node that keeps the owner app among several: give --redis too"
                            .into(),
                });
            }
            // One store for all nodes: the others hand their ring facts to it through Redis.
            (Some(_), false) => {
                tracing::info!(
                    "the owner app (pairing, ring history) is on the history node (--history-node), not here"
                );
                return Ok(None);
            }
            _ => {}
        }
        let Some(dir) = self.data_dir() else {
            return Ok(None);
        };
        let days = self.history_days.unwrap_or(90);
        if days == 0 {
            return Err(ServerCmdError::Bad {
                key: "history-days",
                why: "must be at least 1".into(),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| ServerCmdError::Bad {
            key: "data-dir",
            why: format!("cannot create {}: {e}", dir.display()),
        })?;
        let store = Store::open(&dir).map_err(|e| ServerCmdError::Bad {
            key: "data-dir",
            why: e.to_string(),
        })?;
        // No room outlives the server: what the last run left ringing is over.
        store
            .end_unfinished(std::time::SystemTime::now())
            .map_err(|e| ServerCmdError::Bad {
                key: "data-dir",
                why: e.to_string(),
            })?;
        let push = match &self.push_contact {
            Some(contact) if contact.starts_with("mailto:") || contact.starts_with("https:") => {
                PushSettings {
                    contact: contact.clone(),
                    allow_http: self.push_allow_http.unwrap_or(false),
                }
            }
            Some(other) => {
                return Err(ServerCmdError::Bad {
                    key: "push-contact",
                    why: format!("{other:?}: give a mailto: address or an https: URL"),
                });
            }
            None => PushSettings {
                allow_http: self.push_allow_http.unwrap_or(false),
                ..PushSettings::default()
            },
        };
        Ok(Some(OwnerApp {
            push,
            store: std::sync::Arc::new(store),
            retention: Retention {
                max_age: std::time::Duration::from_secs(u64::from(days) * 86_400),
                max_bytes: self
                    .history_max_mib
                    .unwrap_or(500)
                    .saturating_mul(1024 * 1024),
            },
        }))
    }

    /// The embedded TURN server's settings, if `--turn-listen` asks for one. `secret` is the
    /// TURN secret [`ServerArgs::resolve`] read (`ServerConfig::ice`), so it is read once.
    pub fn turn(&self, secret: Option<&Secret>) -> Result<Option<TurnConfig>, ServerCmdError> {
        let bad = |key, why: String| ServerCmdError::Bad { key, why };
        let Some((listen, external_ip)) = self.turn_address()? else {
            return Ok(None);
        };
        let secret = secret
            .cloned()
            .ok_or_else(|| bad("turn-listen", NO_EMBEDDED_SECRET.into()))?;
        let allow_peers = self
            .turn_allow_peers
            .iter()
            .flatten()
            .map(|c| c.parse().map_err(|why| bad("turn-allow-peer", why)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(TurnConfig {
            listen,
            external_ip,
            secret,
            realm: "doorbell".into(),
            allow_peers,
            max_allocations: self
                .turn_max_allocations
                .unwrap_or(doorbell_turn::DEFAULT_MAX_ALLOCATIONS),
            max_allocations_per_user: self
                .turn_max_allocations_per_user
                .unwrap_or(doorbell_turn::DEFAULT_MAX_ALLOCATIONS_PER_USER),
        }))
    }

    /// Where the embedded TURN server listens and the address clients reach it on, if
    /// `--turn-listen` asks for one; flags that configure it are refused without it.
    fn turn_address(&self) -> Result<Option<(SocketAddr, IpAddr)>, ServerCmdError> {
        let bad = |key, why: String| ServerCmdError::Bad { key, why };
        let Some(listen) = self.turn_listen else {
            let embedded_only = [
                ("turn-external-ip", self.turn_external_ip.is_some()),
                ("turn-allow-peer", self.turn_allow_peers.is_some()),
                ("turn-max-allocations", self.turn_max_allocations.is_some()),
                (
                    "turn-max-allocations-per-user",
                    self.turn_max_allocations_per_user.is_some(),
                ),
            ];
            if let Some((key, _)) = embedded_only.iter().find(|(_, given)| *given) {
                return Err(bad(
                    key,
                    "it configures the embedded TURN server: give --turn-listen too".into(),
                ));
            }
            return Ok(None);
        };
        let external_ip = match self.turn_external_ip {
            Some(ip) => ip,
            None if !listen.ip().is_unspecified() => listen.ip(),
            None => {
                return Err(bad(
                    "turn-external-ip",
                    "the embedded TURN server listens on every address: give the public \
                     address clients reach it on"
                        .into(),
                ));
            }
        };
        Ok(Some((listen, external_ip)))
    }

    fn turn_secret(&self) -> Result<Option<Secret>, ServerCmdError> {
        match &self.turn_secret_file {
            Some(path) => read_secret_file(path)
                .map(Some)
                .map_err(|why| ServerCmdError::Bad {
                    key: "turn-secret-file",
                    why,
                }),
            None => Ok(crate::credentials::credential("DOORBELL_TURN_SECRET").map(Secret::new)),
        }
    }

    /// The STUN/TURN servers handed to every call member.
    fn ice_settings(&self) -> Result<IceSettings, ServerCmdError> {
        let bad = |key, why: String| ServerCmdError::Bad { key, why };
        let stun = self.stun.clone().unwrap_or_default();
        let mut turn_urls = self.turn_urls.clone().unwrap_or_default();
        let embedded = self.turn_address()?;
        if turn_urls.is_empty()
            && let Some((listen, external_ip)) = embedded
        {
            // The embedded server, as clients reach it.
            let host = match external_ip {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            };
            turn_urls.push(format!("turn:{host}:{}?transport=udp", listen.port()));
        }
        for url in &stun {
            if !(url.starts_with("stun:") || url.starts_with("stuns:")) {
                return Err(bad("stun", format!("{url:?} is not a stun: or stuns: URL")));
            }
        }
        for url in &turn_urls {
            if !(url.starts_with("turn:") || url.starts_with("turns:")) {
                return Err(bad(
                    "turn-url",
                    format!(
                        "{url:?} is not a turn: or turns: URL (e.g. turn:turn.example.com:3478?transport=udp)"
                    ),
                ));
            }
        }
        let turn_secret = self.turn_secret()?;
        if embedded.is_some() && turn_secret.is_none() {
            return Err(bad("turn-listen", NO_EMBEDDED_SECRET.into()));
        }
        if !turn_urls.is_empty() && turn_secret.is_none() {
            return Err(bad(
                "turn-url",
                "TURN needs credentials: give --turn-secret-file with the TURN server's shared \
                 secret (coturn's static-auth-secret)"
                    .into(),
            ));
        }
        let turn_ttl = match &self.turn_ttl {
            Some(text) => {
                let ttl = parse_duration(text).map_err(|why| bad("turn-ttl", why))?;
                if ttl < Duration::from_secs(60) {
                    return Err(bad(
                        "turn-ttl",
                        format!("{text:?} is shorter than a ring; use at least 1m"),
                    ));
                }
                ttl
            }
            None => DEFAULT_TURN_TTL,
        };
        let policy = match &self.ice_transport_policy {
            Some(text) => IceTransportPolicy::parse(text).ok_or_else(|| {
                bad(
                    "ice-transport-policy",
                    format!("{text:?}: use all or relay"),
                )
            })?,
            None => IceTransportPolicy::All,
        };
        if policy == IceTransportPolicy::Relay && turn_urls.is_empty() {
            return Err(bad(
                "ice-transport-policy",
                "relay needs a TURN server: give --turn-url and --turn-secret-file".into(),
            ));
        }
        Ok(IceSettings {
            stun,
            turn_urls,
            turn_secret,
            turn_ttl,
            policy,
        })
    }
}

/// A secret kept in a file (surrounding whitespace ignored); the error says what to do.
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty; put the secret in it", path.display()));
    }
    Ok(Secret::new(secret))
}

fn read_token_file(path: &Path) -> Result<Secret, ServerCmdError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServerCmdError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ServerCmdError::EmptyTokenFile(path.to_owned()));
    }
    Ok(Secret::new(token))
}

fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("doorbell"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/doorbell"))
}

/// Binds, prints the address and the certificate fingerprint on stdout, serves until
/// `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    turn: Option<TurnConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerCmdError> {
    let turn = match turn {
        Some(turn) => Some(
            TurnServer::start(turn)
                .await
                .map_err(|e| ServerCmdError::Bad {
                    key: "turn-listen",
                    why: e.to_string(),
                })?,
        ),
        None => None,
    };
    if let Some(warning) = crate::fd_limit::ensure(config.limits.max_connections) {
        tracing::warn!("{warning}");
    }
    let mut server = doorbell_server::bind(config).await?;
    if let Some(turn) = &turn {
        let counters = turn.counters();
        server.add_metrics(std::sync::Arc::new(move |m| {
            use doorbell_protocol::metrics_text::Kind;
            m.single(
                "doorbell_turn_allocations",
                Kind::Gauge,
                "Allocations the embedded TURN server holds.",
                counters.allocations() as f64,
            );
            m.single(
                "doorbell_turn_allocations_total",
                Kind::Counter,
                "Allocations the embedded TURN server granted.",
                counters.granted() as f64,
            );
        }));
    }
    let addr = server.local_addr();
    let mut out = std::io::stdout().lock();
    // Best effort: a closed stdout must not stop the server.
    let _ = writeln!(out, "doorbell server listening on https://{addr}");
    let _ = writeln!(
        out,
        "certificate SHA-256 fingerprint: {}",
        server.cert_fingerprint()
    );
    if let Some(metrics) = server.metrics_addr() {
        let _ = writeln!(out, "metrics on http://{metrics}/metrics");
    }
    let _ = out.flush();
    drop(out);
    let served = server.serve(shutdown).await;
    if let Some(turn) = turn {
        turn.close().await;
    }
    served?;
    tracing::info!("server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layered;

    /// The settings from `argv` over the `[server]` table `file`.
    fn resolve(argv: &[&str], file: &str) -> Result<ServerConfig, ServerCmdError> {
        layered::<ServerArgs>("server", &format!("[server]\n{file}"), argv)
            .unwrap()
            .resolve()
    }

    #[test]
    fn acme_flags_or_keys_choose_automatic_https_and_need_an_email_and_no_cert() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let config = resolve(
            &[
                "--data-dir",
                data,
                "--acme-domain",
                "door.example.com",
                "--acme-email",
                "me@example.com",
                "--acme-renew-days",
                "10",
            ],
            "",
        )
        .unwrap();
        let TlsConfig::Acme(acme) = config.tls else {
            panic!("not ACME: {:?}", config.tls);
        };
        assert_eq!(acme.domains, ["door.example.com"]);
        assert_eq!(acme.directory, doorbell_server::acme::LETS_ENCRYPT);
        assert_eq!(acme.dir, dir.path().join("acme"));
        assert_eq!(acme.renew_before, Duration::from_secs(10 * 86_400));
        let from_file = resolve(
            &["--data-dir", data],
            "acme-domain = [\"a.example\", \"b.example\"]\nacme-email = \"me@example.com\"\n\
             acme-directory = \"https://ca.example/dir\"\n",
        )
        .unwrap();
        let TlsConfig::Acme(acme) = from_file.tls else {
            panic!("not ACME");
        };
        assert_eq!(acme.domains, ["a.example", "b.example"]);
        assert_eq!(acme.directory, "https://ca.example/dir");
        assert_eq!(
            acme.renew_before,
            doorbell_server::acme::DEFAULT_RENEW_BEFORE
        );

        let refused: &[(&[&str], &str)] = &[
            (&["--acme-domain", "door.example.com"], "give --acme-email"),
            (
                &[
                    "--acme-domain",
                    "door.example.com",
                    "--acme-email",
                    "me@example.com",
                    "--cert",
                    "c.pem",
                    "--key",
                    "k.pem",
                ],
                "give one",
            ),
        ];
        for (argv, expected) in refused {
            let mut all = vec!["--data-dir", data];
            all.extend_from_slice(argv);
            let err = resolve(&all, "").unwrap_err();
            assert!(err.to_string().contains(expected), "{argv:?}: {err}");
        }
    }

    #[test]
    fn with_redis_only_the_history_node_keeps_the_owner_app() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let args = |argv: &[&str]| {
            let mut all = vec!["--data-dir", data];
            all.extend_from_slice(argv);
            layered::<ServerArgs>("server", "", &all).unwrap()
        };
        let other = args(&["--redis", "redis://127.0.0.1:6379"]);
        assert!(other.owner_app().unwrap().is_none());
        assert!(!dir.path().join("doorbell.sqlite3").exists());
        let history = args(&["--redis", "redis://127.0.0.1:6379", "--history-node"]);
        assert!(history.owner_app().unwrap().is_some());
        let err = args(&["--history-node"]).owner_app().err().unwrap();
        assert!(err.to_string().contains("give --redis too"), "{err}");
        let config = history.resolve().unwrap();
        assert_eq!(
            config.redis.as_ref().map(|r| r.expose()),
            Some("redis://127.0.0.1:6379")
        );
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = resolve(&["--data-dir", dir.path().to_str().unwrap()], "").unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN);
        assert!(!config.open_rooms);
        assert!(config.doorbell_token.is_none());
        assert_eq!(config.limits, Limits::default());
        assert!(matches!(config.tls, TlsConfig::SelfSigned { .. }));
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = r#"
            listen = "127.0.0.1:1111"
            open-rooms = true
            events-per-sec = 5
            data-dir = "/tmp/from-file"
            hostnames = ["file.example"]
            "#;
        let config = resolve(
            &["--listen", "127.0.0.1:2222", "--hostname", "flag.example"],
            file,
        )
        .unwrap();
        assert_eq!(
            config.listen,
            "127.0.0.1:2222".parse::<SocketAddr>().unwrap()
        );
        assert!(config.open_rooms, "from the file");
        assert_eq!(config.limits.events_per_sec, 5, "from the file");
        assert_eq!(config.limits.event_burst, Limits::default().event_burst);
        match config.tls {
            TlsConfig::SelfSigned {
                data_dir,
                hostnames,
            } => {
                assert_eq!(data_dir, PathBuf::from("/tmp/from-file"));
                assert_eq!(hostnames, vec!["flag.example".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let closed = resolve(&["--open-rooms", "false"], file).unwrap();
        assert!(!closed.open_rooms, "an explicit false flag beats the file");
        assert!(resolve(&["--open-rooms"], "").unwrap().open_rooms);
    }

    #[test]
    fn token_sources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  from-file\n").unwrap();
        let path_text = path.to_str().unwrap();
        let from_file = resolve(&["--doorbell-token-file", path_text], "").unwrap();
        assert!(from_file.doorbell_token.unwrap().matches("from-file"));
        let file = format!("doorbell-token-file = {path_text:?}");
        let flag_wins = resolve(&["--doorbell-token", "direct"], &file).unwrap();
        assert!(flag_wins.doorbell_token.unwrap().matches("direct"));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            resolve(&[], &file),
            Err(ServerCmdError::EmptyTokenFile(_))
        ));
        let missing = format!("doorbell-token-file = {:?}", dir.path().join("nope"));
        let err = resolve(&[], &missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn cert_needs_key() {
        let err = resolve(&["--cert", "c.pem"], "").unwrap_err();
        assert!(matches!(err, ServerCmdError::CertWithoutKey));
        let config = resolve(&["--cert", "c.pem"], "key = \"k.pem\"").unwrap();
        assert!(matches!(config.tls, TlsConfig::Files { .. }));
    }

    #[test]
    fn ice_servers_come_from_flags_or_the_file_and_turn_needs_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let secret = dir.path().join("turn-secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let secret = secret.to_str().unwrap();

        let config = resolve(
            &[
                "--data-dir",
                data,
                "--stun",
                "stun:stun.example:3478",
                "--turn-url",
                "turn:t.example:3478?transport=udp",
                "--turn-url",
                "turns:t.example:5349?transport=tcp",
                "--turn-secret-file",
                secret,
                "--turn-ttl",
                "2h",
                "--ice-transport-policy",
                "relay",
            ],
            "",
        )
        .unwrap();
        assert_eq!(config.ice.stun, ["stun:stun.example:3478"]);
        assert_eq!(config.ice.turn_urls.len(), 2);
        assert!(config.ice.turn_secret.unwrap().matches("s3cret"));
        assert_eq!(config.ice.turn_ttl, Duration::from_secs(7200));
        assert_eq!(config.ice.policy, IceTransportPolicy::Relay);

        let from_file = resolve(
            &["--data-dir", data],
            &format!("turn-url = [\"turn:t.example:3478\"]\nturn-secret-file = {secret:?}\n"),
        )
        .unwrap();
        assert_eq!(from_file.ice.turn_urls, ["turn:t.example:3478"]);
        assert_eq!(from_file.ice.turn_ttl, DEFAULT_TURN_TTL);

        let no_ice = resolve(&["--data-dir", data], "").unwrap();
        assert!(no_ice.ice.stun.is_empty() && no_ice.ice.turn_urls.is_empty());
    }

    #[test]
    fn bad_ice_settings_are_refused_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let cases: &[(&[&str], &str)] = &[
            (&["--turn-url", "turn:t.example:3478"], "turn-secret-file"),
            (&["--stun", "http://s.example"], "stun:"),
            (&["--turn-url", "stun:t.example"], "turn-url:"),
            (
                &["--ice-transport-policy", "relay"],
                "relay needs a TURN server",
            ),
            (&["--ice-transport-policy", "none"], "use all or relay"),
            (
                &[
                    "--turn-url",
                    "turn:t",
                    "--turn-secret-file",
                    "/nonexistent/secret",
                ],
                "cannot read /nonexistent/secret",
            ),
        ];
        for (argv, expected) in cases {
            let mut all = vec!["--data-dir", data];
            all.extend_from_slice(argv);
            let err = resolve(&all, "").unwrap_err();
            assert!(err.to_string().contains(expected), "{argv:?}: {err}");
        }
    }

    #[test]
    fn the_embedded_turn_server_is_configured_by_its_flags_and_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let secret = dir.path().join("turn-secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let secret = secret.to_str().unwrap();
        let argv = [
            "--data-dir",
            data,
            "--turn-listen",
            "0.0.0.0:3478",
            "--turn-external-ip",
            "203.0.113.1",
            "--turn-secret-file",
            secret,
            "--turn-allow-peer",
            "192.168.77.0/24",
        ];
        let args = layered::<ServerArgs>("server", "", &argv).unwrap();
        let config = args.resolve().unwrap();
        let turn = args
            .turn(config.ice.turn_secret.as_ref())
            .unwrap()
            .expect("an embedded TURN server");
        assert_eq!(turn.external_ip, "203.0.113.1".parse::<IpAddr>().unwrap());
        assert_eq!(turn.allow_peers.len(), 1);
        assert_eq!(
            config.ice.turn_urls,
            ["turn:203.0.113.1:3478?transport=udp"]
        );
        assert!(config.ice.turn_secret.is_some());

        let refused: &[(&[&str], &str)] = &[
            (
                &["--turn-external-ip", "203.0.113.1"],
                "give --turn-listen too",
            ),
            (
                &[
                    "--turn-listen",
                    "0.0.0.0:3478",
                    "--turn-secret-file",
                    secret,
                ],
                "turn-external-ip:",
            ),
            (
                &["--turn-listen", "203.0.113.1:3478"],
                "needs --turn-secret-file",
            ),
            (
                &[
                    "--turn-listen",
                    "203.0.113.1:3478",
                    "--turn-secret-file",
                    secret,
                    "--turn-allow-peer",
                    "10.0.0.0",
                ],
                "ADDRESS/PREFIX",
            ),
        ];
        for (argv, expected) in refused {
            let mut all = vec!["--data-dir", data];
            all.extend_from_slice(argv);
            let args = layered::<ServerArgs>("server", "", &all).unwrap();
            // As `doorbell server` does: resolve (which reads the secret), then the TURN part.
            let err = match args.resolve() {
                Ok(config) => args
                    .turn(config.ice.turn_secret.as_ref())
                    .expect_err("refused"),
                Err(err) => err,
            };
            assert!(err.to_string().contains(expected), "{argv:?}: {err}");
        }
    }
}
