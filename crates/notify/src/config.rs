//! `[[notify]]` tables → notifiers. Every problem names its key (`notify[1].bot_token: missing
//! (set bot_token, bot_token_file or DOORBELL_TELEGRAM_BOT_TOKEN)`), unknown keys are refused
//! by name, and secrets come from the table, a `*_file` key or the environment, and are never
//! printed. Tables are counted from 0, in file order.
//!
//! | kind | keys | secret env var |
//! |---|---|---|
//! | `telegram` | `bot_token`/`bot_token_file`, `chat_id` (one or a list), `api_base` | `DOORBELL_TELEGRAM_BOT_TOKEN` |
//! | `email` | `host`, `port`, `tls` (`implicit`/`starttls`/`none`), `ca_file`, `username`, `password`/`password_file`, `from`, `to` (one or a list) | `DOORBELL_SMTP_PASSWORD` |
//! | `sms` | `account_sid`, `auth_token`/`auth_token_file`, `from`, `to` (one or a list), `api_base` | `DOORBELL_TWILIO_AUTH_TOKEN` |
//! | `ntfy` | `server`, `topic`, `token`/`token_file` (optional), `ca_file` | `DOORBELL_NTFY_TOKEN` |
//! | `webhook` | `url`, `secret`/`secret_file` (optional), `include_snapshot`, `ca_file` | `DOORBELL_WEBHOOK_SECRET` |
//! | `console` | — | — |
//!
//! Every kind also takes `name` (the channel's name in events; default the kind, numbered
//! `#1`, `#2`… when several channels would share it).

use super::email::{EmailNotifier, SmtpSecurity, SmtpServer};
use super::endpoint::{is_loopback_host, secure_endpoint};
use crate::console::ConsoleNotifier;
use crate::dispatch::{ChannelOutcome, RetryPolicy, dispatch_with};
use crate::notifier::{Notifier, Ring};
use crate::ntfy::NtfyNotifier;
use crate::sms::SmsNotifier;
use crate::telegram::TelegramNotifier;
use crate::webhook::WebhookNotifier;
use doorbell_protocol::RoomId;
use doorbell_protocol::Secret;
use lettre::message::Mailbox;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const KINDS: &str = "telegram, email, sms, ntfy, webhook, console";
pub const TELEGRAM_TOKEN_ENV: &str = "DOORBELL_TELEGRAM_BOT_TOKEN";
pub const SMTP_PASSWORD_ENV: &str = "DOORBELL_SMTP_PASSWORD";
pub const TWILIO_TOKEN_ENV: &str = "DOORBELL_TWILIO_AUTH_TOKEN";
pub const NTFY_TOKEN_ENV: &str = "DOORBELL_NTFY_TOKEN";
pub const WEBHOOK_SECRET_ENV: &str = "DOORBELL_WEBHOOK_SECRET";

/// One thing wrong in the config, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// e.g. `notify[1].bot_token`
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Builds every configured channel, reading secrets from the process environment.
pub fn build_notifiers(
    tables: &[toml::Table],
) -> Result<Vec<Arc<dyn Notifier>>, Vec<ConfigProblem>> {
    build_notifiers_with_env(tables, &|name| std::env::var(name).ok())
}

/// [`build_notifiers`] with the environment given as a lookup (tests, or a CLI that merged
/// its own overrides).
pub fn build_notifiers_with_env(
    tables: &[toml::Table],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<dyn Notifier>>, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let mut built: Vec<(String, Built)> = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        let mut reader = TableReader {
            index,
            table,
            known: BTreeSet::new(),
            problems: &mut problems,
            env,
        };
        let channels = reader.channels();
        reader.refuse_unknown_keys();
        built.extend(channels);
    }
    let names = unique_names(built.iter().map(|(name, _)| name.clone()).collect());
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    for ((_, build), name) in built.into_iter().zip(names) {
        match build(name) {
            Ok(n) => notifiers.push(n),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(notifiers)
    } else {
        Err(problems)
    }
}

/// For `doorbell agent --check-config`: the channel names the config gives, or every problem.
pub fn check(tables: &[toml::Table]) -> Result<Vec<String>, Vec<ConfigProblem>> {
    build_notifiers(tables).map(|ns| ns.iter().map(|n| n.channel()).collect())
}

/// For `doorbell agent --test-notify`: sends one message on every channel (with retries, like
/// a real ring, until `deadline`) and returns each channel's outcome in config order.
pub async fn test_notify(
    notifiers: &[Arc<dyn Notifier>],
    link: Option<(RoomId, String)>,
    snapshot_jpeg: Option<Arc<Vec<u8>>>,
    deadline: Duration,
) -> Vec<ChannelOutcome> {
    let (room, link) = link.unzip();
    let ring = Arc::new(Ring {
        at: SystemTime::now(),
        link,
        room,
        snapshot_jpeg,
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let handles = dispatch_with(
        notifiers,
        ring,
        deadline,
        RetryPolicy::default(),
        move |event| {
            if let Ok(mut events) = sink.lock() {
                events.push(event);
            }
        },
    );
    for handle in handles {
        let _ = handle.await;
    }
    let mut by_channel: HashMap<String, Result<(), String>> = HashMap::new();
    if let Ok(events) = events.lock() {
        for outcome in events.iter() {
            by_channel.insert(outcome.channel.clone(), outcome.result.clone());
        }
    }
    notifiers
        .iter()
        .map(|n| {
            let channel = n.channel();
            let result = by_channel
                .remove(&channel)
                .unwrap_or_else(|| Err("the channel's task ended without an outcome".into()));
            ChannelOutcome { channel, result }
        })
        .collect()
}

/// Makes a notifier once its final channel name is known.
type Built = Box<dyn FnOnce(String) -> Result<Arc<dyn Notifier>, ConfigProblem>>;

/// Names used more than once get `#1`, `#2`… in order.
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut totals: HashMap<String, usize> = HashMap::new();
    for name in &names {
        *totals.entry(name.clone()).or_default() += 1;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    names
        .into_iter()
        .map(|name| {
            if totals.get(&name).copied().unwrap_or(0) < 2 {
                return name;
            }
            let n = seen.entry(name.clone()).or_default();
            *n += 1;
            format!("{name}#{n}")
        })
        .collect()
}

struct TableReader<'a> {
    index: usize,
    table: &'a toml::Table,
    /// Keys this kind understands (for refusing the rest by name).
    known: BTreeSet<&'static str>,
    problems: &'a mut Vec<ConfigProblem>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl TableReader<'_> {
    fn key(&self, key: &str) -> String {
        format!("notify[{}].{key}", self.index)
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: self.key(key),
            message: message.into(),
        });
    }

    fn value(&mut self, key: &'static str) -> Option<&toml::Value> {
        self.known.insert(key);
        self.table.get(key)
    }

    fn string(&mut self, key: &'static str, required: bool, hint: &str) -> Option<String> {
        match self.value(key) {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(toml::Value::String(_)) => {
                self.problem(key, format!("is empty ({hint})"));
                None
            }
            Some(other) => {
                let type_name = other.type_str();
                self.problem(key, format!("must be a string, not {type_name} ({hint})"));
                None
            }
            None if required => {
                self.problem(key, format!("missing ({hint})"));
                None
            }
            None => None,
        }
    }

    /// A string or a list of strings (integers allowed when `integers_ok`, for chat ids).
    fn list(&mut self, key: &'static str, integers_ok: bool, hint: &str) -> Vec<String> {
        let item = |v: &toml::Value| match v {
            toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            toml::Value::Integer(n) if integers_ok => Some(n.to_string()),
            _ => None,
        };
        let expected = if integers_ok {
            "a string, an integer, or a list of them"
        } else {
            "a string or a list of strings"
        };
        match self.value(key).cloned() {
            None => {
                self.problem(key, format!("missing ({hint})"));
                Vec::new()
            }
            Some(toml::Value::Array(values)) if !values.is_empty() => {
                let items: Option<Vec<String>> = values.iter().map(item).collect();
                items.unwrap_or_else(|| {
                    self.problem(
                        key,
                        format!("every entry must be non-empty: {expected} ({hint})"),
                    );
                    Vec::new()
                })
            }
            Some(toml::Value::Array(_)) => {
                self.problem(key, format!("is an empty list ({hint})"));
                Vec::new()
            }
            Some(value) => match item(&value) {
                Some(one) => vec![one],
                None => {
                    self.problem(key, format!("must be {expected}, non-empty ({hint})"));
                    Vec::new()
                }
            },
        }
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> bool {
        match self.value(key) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => {
                self.problem(key, "must be true or false");
                default
            }
        }
    }

    fn port(&mut self, key: &'static str) -> Option<u16> {
        match self.value(key) {
            None => None,
            Some(toml::Value::Integer(n)) if (1..=65535).contains(n) => u16::try_from(*n).ok(),
            Some(_) => {
                self.problem(key, "must be an integer from 1 to 65535");
                None
            }
        }
    }

    /// An http(s) endpoint under the TLS rule; `default` when absent.
    fn endpoint(&mut self, key: &'static str, default: Option<&str>) -> Option<url::Url> {
        let hint = match default {
            Some(d) => format!("default {d}"),
            None => "an https:// URL".to_owned(),
        };
        let value = match self.string(key, default.is_none(), &hint) {
            Some(v) => v,
            None if self.table.contains_key(key) => return None,
            None => default?.to_owned(),
        };
        match secure_endpoint(&value) {
            Ok(url) => Some(url),
            Err(why) => {
                self.problem(key, why);
                None
            }
        }
    }

    /// A secret from `key`, `key_file` or the environment variable `env_var`, in that order.
    fn secret(&mut self, key: &'static str, env_var: &str, required: bool) -> Option<Secret> {
        let file_key: &'static str = match key {
            "bot_token" => "bot_token_file",
            "password" => "password_file",
            "auth_token" => "auth_token_file",
            "token" => "token_file",
            _ => "secret_file",
        };
        let hint = format!("set {key}, {file_key} or {env_var}");
        let inline = self.string(key, false, &hint);
        let file = self.string(file_key, false, "a path to a file holding only the secret");
        if inline.is_some() && file.is_some() {
            self.problem(
                file_key,
                format!("set either {key} or {file_key}, not both"),
            );
            return None;
        }
        if let Some(value) = inline {
            return Some(Secret::new(value));
        }
        if let Some(path) = file {
            return match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim())),
                Ok(_) => {
                    self.problem(file_key, format!("{path} is empty; put the secret in it"));
                    None
                }
                Err(e) => {
                    self.problem(
                        file_key,
                        format!("cannot read {path} ({e}); check the path and its permissions"),
                    );
                    None
                }
            };
        }
        if self.table.contains_key(key) || self.table.contains_key(file_key) {
            return None; // already reported as empty or of the wrong type
        }
        match (self.env)(env_var) {
            Some(value) if !value.trim().is_empty() => Some(Secret::new(value.trim())),
            _ if required => {
                self.problem(key, format!("missing ({hint})"));
                None
            }
            _ => None,
        }
    }

    fn refuse_unknown_keys(&mut self) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !self.known.contains(k.as_str()))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return;
        }
        let known = self.known.iter().copied().collect::<Vec<_>>().join(", ");
        let kind = self
            .table
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("?")
            .to_owned();
        for key in unknown {
            self.problem(
                &key,
                format!("unknown key for kind = \"{kind}\" (known keys: {known})"),
            );
        }
    }

    /// Reads the table; returns one (name, builder) per channel it configures.
    fn channels(&mut self) -> Vec<(String, Built)> {
        let kind = self.string("kind", true, &format!("one of {KINDS}"));
        let name = self.string("name", false, "the channel's name in events");
        let Some(kind) = kind else {
            // Without a kind no key can be judged; report only keys no kind knows.
            self.known.extend(ALL_KEYS.iter().copied());
            return Vec::new();
        };
        let base = name.unwrap_or_else(|| kind.clone());
        let at = format!("notify[{}]", self.index);
        let problem = move |message: String| ConfigProblem {
            key: at.clone(),
            message,
        };
        match kind.as_str() {
            "console" => vec![(
                base,
                Box::new(|name: String| {
                    Ok(Arc::new(ConsoleNotifier::stderr().with_channel(name)) as Arc<dyn Notifier>)
                }) as Built,
            )],
            "telegram" => {
                let token = self.secret("bot_token", TELEGRAM_TOKEN_ENV, true);
                let chats = self.list(
                    "chat_id",
                    true,
                    "the chat's numeric id or @channelname; several as a list",
                );
                let api = self.endpoint("api_base", Some(super::telegram::DEFAULT_API_BASE));
                let (Some(token), Some(api)) = (token, api) else {
                    return Vec::new();
                };
                chats
                    .into_iter()
                    .map(|chat| {
                        let (token, api, problem) = (token.clone(), api.clone(), problem.clone());
                        let build: Built = Box::new(move |name| {
                            TelegramNotifier::new(name, &api, token, chat)
                                .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                                .map_err(problem)
                        });
                        (base.clone(), build)
                    })
                    .collect()
            }
            "sms" => {
                let sid = self.string("account_sid", true, "your Twilio Account SID, AC…");
                let token = self.secret("auth_token", TWILIO_TOKEN_ENV, true);
                let from = self.string("from", true, "the sending number, e.g. +15551234567");
                let to = self.list("to", false, "the owner's number(s), e.g. +15557654321");
                let api = self.endpoint("api_base", Some(super::sms::DEFAULT_API_BASE));
                let (Some(sid), Some(token), Some(from), Some(api)) = (sid, token, from, api)
                else {
                    return Vec::new();
                };
                to.into_iter()
                    .map(|to| {
                        let (sid, token, from, api, problem) = (
                            sid.clone(),
                            token.clone(),
                            from.clone(),
                            api.clone(),
                            problem.clone(),
                        );
                        let build: Built = Box::new(move |name| {
                            SmsNotifier::new(name, &api, sid, token, from, to)
                                .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                                .map_err(problem)
                        });
                        (base.clone(), build)
                    })
                    .collect()
            }
            "ntfy" => {
                let server = self.endpoint("server", Some(super::ntfy::DEFAULT_SERVER));
                let topic = self.string("topic", true, "the topic to publish to");
                if let Some(t) = &topic
                    && t.contains('/')
                {
                    self.problem("topic", "must not contain '/' (give the server in server)");
                    return Vec::new();
                }
                let token = self.secret("token", NTFY_TOKEN_ENV, false);
                let ca_pem = self.ca_file();
                let (Some(server), Some(topic)) = (server, topic) else {
                    return Vec::new();
                };
                let build: Built = Box::new(move |name| {
                    NtfyNotifier::new(name, &server, &topic, token, ca_pem.as_deref())
                        .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                        .map_err(problem)
                });
                vec![(base, build)]
            }
            "webhook" => {
                let url = self.endpoint("url", None);
                let secret = self.secret("secret", WEBHOOK_SECRET_ENV, false);
                let include_snapshot = self.boolean("include_snapshot", true);
                let ca_pem = self.ca_file();
                let Some(url) = url else {
                    return Vec::new();
                };
                let build: Built = Box::new(move |name| {
                    WebhookNotifier::new(name, url, secret, include_snapshot, ca_pem.as_deref())
                        .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                        .map_err(problem)
                });
                vec![(base, build)]
            }
            "email" => self.email(base, problem),
            other => {
                self.problem("kind", format!("unknown kind \"{other}\" (one of {KINDS})"));
                // Do not also complain about every key of a kind we do not know.
                self.known.extend(ALL_KEYS.iter().copied());
                Vec::new()
            }
        }
    }

    fn email(
        &mut self,
        base: String,
        problem: impl Fn(String) -> ConfigProblem + 'static,
    ) -> Vec<(String, Built)> {
        let host = self.string("host", true, "the SMTP server, e.g. smtp.example.com");
        let security = match self
            .string("tls", false, "implicit, starttls or none")
            .as_deref()
        {
            None | Some("starttls") => Some(SmtpSecurity::StartTls),
            Some("implicit") => Some(SmtpSecurity::Implicit),
            Some("none") => Some(SmtpSecurity::None),
            Some(other) => {
                self.problem(
                    "tls",
                    format!("unknown value \"{other}\" (implicit, starttls or none)"),
                );
                None
            }
        };
        if let (Some(SmtpSecurity::None), Some(host)) = (security, &host)
            && !is_loopback_host(host)
        {
            self.problem(
                "tls",
                "\"none\" would send the call link and password unencrypted; use implicit or \
                 starttls (none is allowed only for 127.0.0.1, ::1 and localhost)",
            );
        }
        let port = self.port("port");
        let ca_pem = self.ca_file();
        let username = self.string("username", false, "the SMTP login");
        let password = self.secret("password", SMTP_PASSWORD_ENV, username.is_some());
        if username.is_none() && self.table.contains_key("password") {
            self.problem(
                "username",
                "missing (password is set, so give the login too)",
            );
        }
        let from = self
            .string("from", true, "the sender, e.g. Doorbell <bell@example.com>")
            .and_then(|from| self.mailbox("from", &from));
        let to: Vec<Mailbox> = self
            .list("to", false, "the owner's address(es)")
            .into_iter()
            .filter_map(|to| self.mailbox("to", &to))
            .collect();
        let (Some(host), Some(security), Some(from)) = (host, security, from) else {
            return Vec::new();
        };
        if to.is_empty() {
            return Vec::new();
        }
        let login = match (username, password) {
            (Some(user), Some(password)) => Some((user, password)),
            _ => None,
        };
        let server = SmtpServer {
            port: port.unwrap_or(security.default_port()),
            host,
            security,
            ca_pem,
            login,
        };
        let build: Built = Box::new(move |name| {
            EmailNotifier::new(name, server, from, to)
                .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                .map_err(problem)
        });
        vec![(base, build)]
    }

    /// `ca_file`: an extra CA (PEM) for a self-hosted server with a private CA.
    fn ca_file(&mut self) -> Option<Vec<u8>> {
        let path = self.string("ca_file", false, "a PEM file with the CA certificate")?;
        match std::fs::read(&path) {
            Ok(pem) => {
                let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
                match certs {
                    Ok(certs) if !certs.is_empty() => Some(pem),
                    _ => {
                        self.problem(
                            "ca_file",
                            format!(
                                "{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                            ),
                        );
                        None
                    }
                }
            }
            Err(e) => {
                self.problem(
                    "ca_file",
                    format!("cannot read {path} ({e}); check the path and its permissions"),
                );
                None
            }
        }
    }

    fn mailbox(&mut self, key: &str, text: &str) -> Option<Mailbox> {
        match text.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(
                    key,
                    format!("\"{text}\" is not an e-mail address ({e}); write name@example.com"),
                );
                None
            }
        }
    }
}

/// Every key of every kind, to avoid unknown-key noise when the kind itself is wrong.
const ALL_KEYS: &[&str] = &[
    "kind",
    "name",
    "bot_token",
    "bot_token_file",
    "chat_id",
    "api_base",
    "host",
    "port",
    "tls",
    "ca_file",
    "username",
    "password",
    "password_file",
    "from",
    "to",
    "account_sid",
    "auth_token",
    "auth_token_file",
    "server",
    "topic",
    "token",
    "token_file",
    "url",
    "secret",
    "secret_file",
    "include_snapshot",
];
