//! `[[notify]]` tables → notifiers. Each kind's keys are declared once, as a serde struct with
//! `deny_unknown_fields` below; the checks of its values are that struct's `channels`. Every
//! problem names its key (`notify[1].bot_token: missing (set bot_token, bot_token_file or
//! DOORBELL_TELEGRAM_BOT_TOKEN)`), unknown keys are refused by name, and secrets come from the
//! table, a `*_file` key or the environment, and are never printed. Tables are counted from
//! 0, in file order.
//!
//! | kind | keys | secret env var |
//! |---|---|---|
//! | `telegram` | `bot_token`/`bot_token_file`, `chat_id` (one or a list), `api_base` | `DOORBELL_TELEGRAM_BOT_TOKEN` |
//! | `email` | `host`, `port`, `tls` (`implicit`/`starttls`/`none`), `ca_file`, `username`, `password`/`password_file`, `from`, `to` (one or a list) | `DOORBELL_SMTP_PASSWORD` |
//! | `sms` | `account_sid`, `auth_token`/`auth_token_file`, `from`, `to` (one or a list), `api_base` | `DOORBELL_TWILIO_AUTH_TOKEN` |
//! | `ntfy` | `server`, `topic`, `token`/`token_file` (optional), `ca_file` | `DOORBELL_NTFY_TOKEN` |
//! | `webhook` | `url`, `secret`/`secret_file` (optional), `include_snapshot`, `ca_file` | `DOORBELL_WEBHOOK_SECRET` |
//! | `mqtt` | `url` (`mqtt://HOST:1883`, `mqtts://HOST:8883`), `username`, `password`/`password_file`, `ca_file`, `device_id`, `topic_prefix`, `discovery_prefix` (`""`: no discovery) | `DOORBELL_MQTT_PASSWORD` |
//! | `console` | — | — |
//!
//! Every kind also takes `name` (the channel's name in events; default the kind, numbered
//! `#1`, `#2`… when several channels would share it).

use super::email::{EmailNotifier, SmtpSecurity, SmtpServer};
use super::endpoint::{is_loopback_host, secure_endpoint};
use crate::console::ConsoleNotifier;
use crate::mqtt::{Broker, MqttNotifier, MqttSettings, default_device_id, sanitize_device_id};
use crate::notifier::Notifier;
use crate::ntfy::DEFAULT_SERVER as NTFY_SERVER;
use crate::ntfy::{NtfyNotifier, is_guessable};
use crate::outage::OutageGuard;
use crate::sms::DEFAULT_API_BASE as TWILIO_API;
use crate::sms::SmsNotifier;
use crate::telegram::DEFAULT_API_BASE as TELEGRAM_API;
use crate::telegram::TelegramNotifier;
use crate::webhook::WebhookNotifier;
use doorbell_protocol::Secret;
use doorbell_protocol::serde_keys::struct_keys;
use lettre::message::Mailbox;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

pub const KINDS: &str = "telegram, email, sms, ntfy, webhook, mqtt, console";
pub const TELEGRAM_TOKEN_ENV: &str = "DOORBELL_TELEGRAM_BOT_TOKEN";
pub const SMTP_PASSWORD_ENV: &str = "DOORBELL_SMTP_PASSWORD";
pub const TWILIO_TOKEN_ENV: &str = "DOORBELL_TWILIO_AUTH_TOKEN";
pub const NTFY_TOKEN_ENV: &str = "DOORBELL_NTFY_TOKEN";
pub const WEBHOOK_SECRET_ENV: &str = "DOORBELL_WEBHOOK_SECRET";
pub const MQTT_PASSWORD_ENV: &str = "DOORBELL_MQTT_PASSWORD";

/// The `[[notify]]` keys that hold a secret inline (each also has a `*_file` twin and an
/// environment variable above): telegram, sms, ntfy, webhook, email.
pub const INLINE_SECRET_KEYS: [&str; 5] =
    ["bot_token", "auth_token", "token", "secret", "password"];

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
    let mut check = Check {
        at: At(String::new()),
        problems: Vec::new(),
        env,
    };
    let mut built: Vec<(String, Built)> = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        check.at = At(format!("notify[{index}]"));
        built.extend(check.table(table));
    }
    let mut problems = check.problems;
    let names = unique_names(built.iter().map(|(name, _)| name.clone()).collect());
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    for ((_, build), name) in built.into_iter().zip(names) {
        match build(name) {
            // A device channel (MQTT) keeps its own queue and reconnects by itself: holding it
            // back would lose the rings it queues.
            Ok(n) if n.device().is_some() => notifiers.push(n),
            // Every other channel from the config gets the outage rule (outage.rs).
            Ok(n) => notifiers.push(Arc::new(OutageGuard::new(n))),
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

/// Makes a notifier once its final channel name is known.
type Built = Box<dyn FnOnce(String) -> Result<Arc<dyn Notifier>, ConfigProblem>>;

/// A [`Built`] for one notifier; a constructor's error is reported at the table.
fn built<N: Notifier + 'static>(
    at: &At,
    make: impl FnOnce(String) -> Result<N, String> + 'static,
) -> Built {
    let at = at.clone();
    Box::new(move |name| {
        make(name)
            .map(|n| Arc::new(n) as Arc<dyn Notifier>)
            .map_err(|message| at.problem("", message))
    })
}

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

// The tables. Every field is a `Key`, so a wrong type never stops deserialisation: serde
// reports only the first error of a struct, and the owner should see every problem at once.

/// One key's value as written.
#[derive(Debug, Default)]
enum Key<T> {
    #[default]
    Absent,
    Set(T),
    /// Present but not a `T`; holds the TOML type found (never the value: it may be a secret).
    WrongType(&'static str),
}

impl<T> Key<T> {
    fn is_given(&self) -> bool {
        !matches!(self, Key::Absent)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Key<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        let found = value.type_str();
        Ok(value.try_into().map_or(Key::WrongType(found), Key::Set))
    }
}

/// One entry or a list of them (`to = "a"` or `to = ["a", "b"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// An entry of a [`OneOrMany`] list.
trait Entry {
    /// What the key takes, for problems.
    const EXPECTED: &'static str;
    /// The entry as text; `None` when empty.
    fn text(&self) -> Option<String>;
}

impl Entry for String {
    const EXPECTED: &'static str = "a string or a list of strings";
    fn text(&self) -> Option<String> {
        Some(self.trim().to_owned()).filter(|s| !s.is_empty())
    }
}

/// A Telegram chat: its numeric id or `@channelname`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatId {
    Id(i64),
    Name(String),
}

impl Entry for ChatId {
    const EXPECTED: &'static str = "a string, an integer, or a list of them";
    fn text(&self) -> Option<String> {
        match self {
            ChatId::Id(id) => Some(id.to_string()),
            ChatId::Name(name) => name.text(),
        }
    }
}

/// The keys of every kind; each kind's struct holds the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Common {
    kind: Key<String>,
    name: Key<String>,
}

const COMMON_KEYS: [&str; 2] = ["kind", "name"];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConsoleTable {}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TelegramTable {
    bot_token: Key<String>,
    bot_token_file: Key<String>,
    chat_id: Key<OneOrMany<ChatId>>,
    api_base: Key<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EmailTable {
    host: Key<String>,
    port: Key<u16>,
    tls: Key<String>,
    ca_file: Key<String>,
    username: Key<String>,
    password: Key<String>,
    password_file: Key<String>,
    from: Key<String>,
    to: Key<OneOrMany<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SmsTable {
    account_sid: Key<String>,
    auth_token: Key<String>,
    auth_token_file: Key<String>,
    from: Key<String>,
    to: Key<OneOrMany<String>>,
    api_base: Key<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NtfyTable {
    server: Key<String>,
    topic: Key<String>,
    token: Key<String>,
    token_file: Key<String>,
    ca_file: Key<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WebhookTable {
    url: Key<String>,
    secret: Key<String>,
    secret_file: Key<String>,
    include_snapshot: Key<bool>,
    ca_file: Key<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MqttTable {
    url: Key<String>,
    username: Key<String>,
    password: Key<String>,
    password_file: Key<String>,
    ca_file: Key<String>,
    device_id: Key<String>,
    topic_prefix: Key<String>,
    discovery_prefix: Key<String>,
}

/// A kind's table: its keys (the struct) and the channels it configures.
trait ChannelTable: DeserializeOwned {
    /// Checks every value (each problem goes to `c`) and returns one (name, builder) per
    /// channel, none when a value is wrong.
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)>;
}

impl ChannelTable for ConsoleTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let build = built(&c.at, |name| {
            Ok(ConsoleNotifier::stderr().with_channel(name))
        });
        vec![(base, build)]
    }
}

impl ChannelTable for TelegramTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let token = c.secret(
            "bot_token",
            &self.bot_token,
            &self.bot_token_file,
            TELEGRAM_TOKEN_ENV,
            true,
        );
        let chats = c.list(
            "chat_id",
            &self.chat_id,
            "the chat's numeric id or @channelname; several as a list",
        );
        let api = c.endpoint("api_base", &self.api_base, Some(TELEGRAM_API));
        let (Some(token), Some(api)) = (token, api) else {
            return Vec::new();
        };
        chats
            .into_iter()
            .map(|chat| {
                let (token, api) = (token.clone(), api.clone());
                let build = built(&c.at, move |name| {
                    TelegramNotifier::new(name, &api, token, chat)
                });
                (base.clone(), build)
            })
            .collect()
    }
}

impl ChannelTable for SmsTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let sid = c.need(
            "account_sid",
            &self.account_sid,
            "your Twilio Account SID, AC…",
        );
        let token = c.secret(
            "auth_token",
            &self.auth_token,
            &self.auth_token_file,
            TWILIO_TOKEN_ENV,
            true,
        );
        let from = c.need("from", &self.from, "the sending number, e.g. +15551234567");
        let to = c.list("to", &self.to, "the owner's number(s), e.g. +15557654321");
        let api = c.endpoint("api_base", &self.api_base, Some(TWILIO_API));
        let (Some(sid), Some(token), Some(from), Some(api)) = (sid, token, from, api) else {
            return Vec::new();
        };
        to.into_iter()
            .map(|to| {
                let (sid, token, from, api) =
                    (sid.clone(), token.clone(), from.clone(), api.clone());
                let build = built(&c.at, move |name| {
                    SmsNotifier::new(name, &api, sid, token, from, to)
                });
                (base.clone(), build)
            })
            .collect()
    }
}

impl ChannelTable for NtfyTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let server = c.endpoint("server", &self.server, Some(NTFY_SERVER));
        let topic = c.need("topic", &self.topic, "the topic to publish to");
        if let Some(t) = &topic
            && t.contains('/')
        {
            c.problem("topic", "must not contain '/' (give the server in server)");
            return Vec::new();
        }
        let token = c.secret(
            "token",
            &self.token,
            &self.token_file,
            NTFY_TOKEN_ENV,
            false,
        );
        let ca_pem = c.ca_file(&self.ca_file);
        if let Some(t) = &topic
            && token.is_none()
            && is_guessable(t)
        {
            // The link in a ring opens the door's call: a public topic is a secret.
            c.problem(
                "topic",
                "guessable: anyone who guesses a topic without access control reads every \
                 ring's link and photo and can answer the door; use a random one \
                 (`doorbell notify new-topic`, 128 bits) or set token/token_file for a topic \
                 with access control",
            );
            return Vec::new();
        }
        let (Some(server), Some(topic)) = (server, topic) else {
            return Vec::new();
        };
        let build = built(&c.at, move |name| {
            NtfyNotifier::new(name, &server, &topic, token, ca_pem.as_deref())
        });
        vec![(base, build)]
    }
}

impl ChannelTable for MqttTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let url = c.need(
            "url",
            &self.url,
            "the broker, e.g. mqtt://homeassistant.local:1883",
        );
        let broker = url.and_then(|url| match Broker::parse(&url) {
            Ok(broker) => Some(broker),
            Err(why) => {
                c.problem("url", why);
                None
            }
        });
        let username = c.opt("username", &self.username, "the broker user");
        let password = c.secret(
            "password",
            &self.password,
            &self.password_file,
            MQTT_PASSWORD_ENV,
            false,
        );
        if username.is_none() && (self.password.is_given() || self.password_file.is_given()) {
            c.problem(
                "username",
                "missing: a password needs the user it belongs to",
            );
        }
        let ca_pem = c.ca_file(&self.ca_file);
        let device_id = match c.opt("device_id", &self.device_id, "letters, digits, - and _") {
            None => Some(default_device_id()),
            Some(given) => {
                let id = sanitize_device_id(&given);
                if id.as_deref() != Some(given.as_str()) {
                    c.problem(
                        "device_id",
                        "use lower-case letters, digits, - and _ only (it names topics and \
                         Home Assistant's unique ids)",
                    );
                }
                id
            }
        };
        let topic = |c: &mut Check, key: &str, value: &Key<String>, default: String| {
            let text = match value {
                Key::Set(text) => text.trim().trim_end_matches('/').to_owned(),
                Key::Absent => default,
                Key::WrongType(found) => {
                    c.problem(key, format!("must be a string, not {found}"));
                    return None;
                }
            };
            if text.contains(['#', '+']) || text.starts_with('/') {
                c.problem(
                    key,
                    "a topic prefix has no wildcards (# +) and no leading /",
                );
                return None;
            }
            Some(text)
        };
        let Some(device_id) = device_id else {
            return Vec::new();
        };
        let topic_prefix = topic(
            c,
            "topic_prefix",
            &self.topic_prefix,
            format!("doorbell/{device_id}"),
        );
        if topic_prefix.as_deref() == Some("") {
            c.problem("topic_prefix", "is empty (e.g. doorbell/front)");
            return Vec::new();
        }
        let discovery_prefix = topic(
            c,
            "discovery_prefix",
            &self.discovery_prefix,
            "homeassistant".to_owned(),
        );
        let (Some(broker), Some(topic_prefix), Some(discovery_prefix)) =
            (broker, topic_prefix, discovery_prefix)
        else {
            return Vec::new();
        };
        let settings = MqttSettings {
            broker,
            username,
            password,
            ca_pem,
            device_id,
            topic_prefix,
            // Empty turns discovery off.
            discovery_prefix: Some(discovery_prefix).filter(|p| !p.is_empty()),
        };
        let build = built(&c.at, move |name| MqttNotifier::new(name, settings));
        vec![(base, build)]
    }
}

impl ChannelTable for WebhookTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let url = c.endpoint("url", &self.url, None);
        let secret = c.secret(
            "secret",
            &self.secret,
            &self.secret_file,
            WEBHOOK_SECRET_ENV,
            false,
        );
        let include_snapshot = c.boolean("include_snapshot", &self.include_snapshot, true);
        let ca_pem = c.ca_file(&self.ca_file);
        let Some(url) = url else {
            return Vec::new();
        };
        let build = built(&c.at, move |name| {
            WebhookNotifier::new(name, url, secret, include_snapshot, ca_pem.as_deref())
        });
        vec![(base, build)]
    }
}

impl ChannelTable for EmailTable {
    fn channels(self, c: &mut Check, base: String) -> Vec<(String, Built)> {
        let host = c.need("host", &self.host, "the SMTP server, e.g. smtp.example.com");
        let security = match c
            .opt("tls", &self.tls, "implicit, starttls or none")
            .as_deref()
        {
            None | Some("starttls") => Some(SmtpSecurity::StartTls),
            Some("implicit") => Some(SmtpSecurity::Implicit),
            Some("none") => Some(SmtpSecurity::None),
            Some(other) => {
                c.problem(
                    "tls",
                    format!("unknown value \"{other}\" (implicit, starttls or none)"),
                );
                None
            }
        };
        if let (Some(SmtpSecurity::None), Some(host)) = (security, &host)
            && !is_loopback_host(host)
        {
            c.problem(
                "tls",
                "\"none\" would send the call link and password unencrypted; use implicit or \
                 starttls (none is allowed only for 127.0.0.1, ::1 and localhost)",
            );
        }
        let port = c.port("port", &self.port);
        let ca_pem = c.ca_file(&self.ca_file);
        let username = c.opt("username", &self.username, "the SMTP login");
        let password = c.secret(
            "password",
            &self.password,
            &self.password_file,
            SMTP_PASSWORD_ENV,
            username.is_some(),
        );
        if username.is_none() && self.password.is_given() {
            c.problem(
                "username",
                "missing (password is set, so give the login too)",
            );
        }
        let from = c
            .need(
                "from",
                &self.from,
                "the sender, e.g. Doorbell <bell@example.com>",
            )
            .and_then(|from| c.mailbox("from", &from));
        let to: Vec<Mailbox> = c
            .list("to", &self.to, "the owner's address(es)")
            .into_iter()
            .filter_map(|to| c.mailbox("to", &to))
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
        let build = built(&c.at, move |name| {
            EmailNotifier::new(name, server, from, to)
        });
        vec![(base, build)]
    }
}

/// Where problems are reported: `notify[1]`.
#[derive(Debug, Clone)]
struct At(String);

impl At {
    /// A problem with `key` of this table (the table itself when `key` is empty).
    fn problem(&self, key: &str, message: impl Into<String>) -> ConfigProblem {
        let key = if key.is_empty() {
            self.0.clone()
        } else {
            format!("{}.{key}", self.0)
        };
        ConfigProblem {
            key,
            message: message.into(),
        }
    }
}

/// Checks one table after another, collecting every problem.
struct Check<'a> {
    at: At,
    problems: Vec<ConfigProblem>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Check<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let problem = self.at.problem(key, message);
        self.problems.push(problem);
    }

    /// One `[[notify]]` table: its kind picks the struct its other keys go into.
    fn table(&mut self, table: &toml::Table) -> Vec<(String, Built)> {
        let common = toml::Value::Table(table.clone())
            .try_into::<Common>()
            .unwrap_or_default();
        let kind = self.text("kind", &common.kind, true, &format!("one of {KINDS}"));
        let name = self.text("name", &common.name, false, "the channel's name in events");
        let Some(kind) = kind else {
            // Without a kind no key can be judged; report only keys no kind knows.
            self.refuse_unknown_keys(table, "?", &all_keys());
            return Vec::new();
        };
        let base = name.unwrap_or_else(|| kind.clone());
        match kind.as_str() {
            "console" => self.kind::<ConsoleTable>(table, &kind, base),
            "telegram" => self.kind::<TelegramTable>(table, &kind, base),
            "email" => self.kind::<EmailTable>(table, &kind, base),
            "sms" => self.kind::<SmsTable>(table, &kind, base),
            "ntfy" => self.kind::<NtfyTable>(table, &kind, base),
            "webhook" => self.kind::<WebhookTable>(table, &kind, base),
            "mqtt" => self.kind::<MqttTable>(table, &kind, base),
            other => {
                self.problem("kind", format!("unknown kind \"{other}\" (one of {KINDS})"));
                // Do not also complain about every key of a kind we do not know.
                self.refuse_unknown_keys(table, other, &all_keys());
                Vec::new()
            }
        }
    }

    /// The table's keys as a `T`, checked, then every key `T` does not have refused by name.
    fn kind<T: ChannelTable>(
        &mut self,
        table: &toml::Table,
        kind: &str,
        base: String,
    ) -> Vec<(String, Built)> {
        let own = struct_keys::<T>();
        let mut rest = table.clone();
        // The unknown keys are reported below, each by name; `deny_unknown_fields` would stop
        // at the first and hide the table's other problems.
        rest.retain(|key, _| own.contains(&key));
        let channels = match toml::Value::Table(rest).try_into::<T>() {
            Ok(t) => t.channels(self, base),
            // Every field is a `Key`, which takes any value: kept only as a guard.
            Err(e) => {
                self.problem("", e.to_string());
                Vec::new()
            }
        };
        let known: BTreeSet<&str> = COMMON_KEYS.iter().chain(own).copied().collect();
        self.refuse_unknown_keys(table, kind, &known);
        channels
    }

    fn refuse_unknown_keys(&mut self, table: &toml::Table, kind: &str, known: &BTreeSet<&str>) {
        let list = known.iter().copied().collect::<Vec<_>>().join(", ");
        for key in table.keys().filter(|k| !known.contains(k.as_str())) {
            self.problem(
                key,
                format!("unknown key for kind = \"{kind}\" (known keys: {list})"),
            );
        }
    }

    /// A required non-empty string, trimmed.
    fn need(&mut self, key: &str, value: &Key<String>, hint: &str) -> Option<String> {
        self.text(key, value, true, hint)
    }

    /// An optional non-empty string, trimmed.
    fn opt(&mut self, key: &str, value: &Key<String>, hint: &str) -> Option<String> {
        self.text(key, value, false, hint)
    }

    /// A non-empty string, trimmed.
    fn text(
        &mut self,
        key: &str,
        value: &Key<String>,
        required: bool,
        hint: &str,
    ) -> Option<String> {
        let problem = match value {
            Key::Set(s) if !s.trim().is_empty() => return Some(s.trim().to_owned()),
            Key::Set(_) => format!("is empty ({hint})"),
            Key::WrongType(found) => format!("must be a string, not {found} ({hint})"),
            Key::Absent if required => format!("missing ({hint})"),
            Key::Absent => return None,
        };
        self.problem(key, problem);
        None
    }

    /// One entry or a non-empty list of them, every entry non-empty; required.
    fn list<T: Entry>(&mut self, key: &str, value: &Key<OneOrMany<T>>, hint: &str) -> Vec<String> {
        let expected = T::EXPECTED;
        let problem = match value {
            Key::Absent => format!("missing ({hint})"),
            Key::Set(OneOrMany::One(one)) => match one.text() {
                Some(text) => return vec![text],
                None => format!("must be {expected}, non-empty ({hint})"),
            },
            Key::Set(OneOrMany::Many(items)) if items.is_empty() => {
                format!("is an empty list ({hint})")
            }
            Key::Set(OneOrMany::Many(items)) => {
                match items.iter().map(Entry::text).collect::<Option<Vec<_>>>() {
                    Some(texts) => return texts,
                    None => format!("every entry must be non-empty: {expected} ({hint})"),
                }
            }
            Key::WrongType("array") => {
                format!("every entry must be non-empty: {expected} ({hint})")
            }
            Key::WrongType(_) => format!("must be {expected}, non-empty ({hint})"),
        };
        self.problem(key, problem);
        Vec::new()
    }

    fn boolean(&mut self, key: &str, value: &Key<bool>, default: bool) -> bool {
        match value {
            Key::Absent => default,
            Key::Set(b) => *b,
            Key::WrongType(_) => {
                self.problem(key, "must be true or false");
                default
            }
        }
    }

    fn port(&mut self, key: &str, value: &Key<u16>) -> Option<u16> {
        match value {
            Key::Absent => None,
            Key::Set(port) if *port > 0 => Some(*port),
            Key::Set(_) | Key::WrongType(_) => {
                self.problem(key, "must be an integer from 1 to 65535");
                None
            }
        }
    }

    /// An http(s) endpoint under the TLS rule; `default` when absent.
    fn endpoint(
        &mut self,
        key: &str,
        value: &Key<String>,
        default: Option<&str>,
    ) -> Option<url::Url> {
        let hint = match default {
            Some(d) => format!("default {d}"),
            None => "an https:// URL".to_owned(),
        };
        let text = match self.text(key, value, default.is_none(), &hint) {
            Some(text) => text,
            None if value.is_given() => return None,
            None => default?.to_owned(),
        };
        match secure_endpoint(&text) {
            Ok(url) => Some(url),
            Err(why) => {
                self.problem(key, why);
                None
            }
        }
    }

    /// A secret from `key`, `{key}_file` or the environment variable `env_var`, in that order.
    fn secret(
        &mut self,
        key: &str,
        inline: &Key<String>,
        file: &Key<String>,
        env_var: &str,
        required: bool,
    ) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let hint = format!("set {key}, {file_key} or {env_var}");
        let inline_text = self.opt(key, inline, &hint);
        let path = self.opt(&file_key, file, "a path to a file holding only the secret");
        let problem = match (inline_text, path) {
            (Some(_), Some(_)) => format!("set either {key} or {file_key}, not both"),
            (Some(value), None) => return Some(Secret::new(value)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => return Some(Secret::new(text.trim())),
                Ok(_) => format!("{path} is empty; put the secret in it"),
                Err(e) => format!("cannot read {path} ({e}); check the path and its permissions"),
            },
            (None, None) if inline.is_given() || file.is_given() => {
                return None; // already reported as empty or of the wrong type
            }
            (None, None) => match (self.env)(env_var) {
                Some(value) if !value.trim().is_empty() => return Some(Secret::new(value.trim())),
                _ if required => {
                    self.problem(key, format!("missing ({hint})"));
                    return None;
                }
                _ => return None,
            },
        };
        self.problem(&file_key, problem);
        None
    }

    /// `ca_file`: an extra CA (PEM) for a self-hosted server with a private CA.
    fn ca_file(&mut self, value: &Key<String>) -> Option<Vec<u8>> {
        let path = self.opt("ca_file", value, "a PEM file with the CA certificate")?;
        let problem = match std::fs::read(&path) {
            Err(e) => format!("cannot read {path} ({e}); check the path and its permissions"),
            Ok(pem) => match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
                Ok(certs) if !certs.is_empty() => return Some(pem),
                _ => format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            },
        };
        self.problem("ca_file", problem);
        None
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
fn all_keys() -> BTreeSet<&'static str> {
    [
        struct_keys::<ConsoleTable>(),
        struct_keys::<TelegramTable>(),
        struct_keys::<EmailTable>(),
        struct_keys::<SmsTable>(),
        struct_keys::<NtfyTable>(),
        struct_keys::<WebhookTable>(),
        struct_keys::<MqttTable>(),
    ]
    .into_iter()
    .flatten()
    .chain(&COMMON_KEYS)
    .copied()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_in_the_unknown_kind_key_list() {
        let all = all_keys();
        for key in [
            "kind",
            "name",
            "bot_token_file",
            "port",
            "auth_token",
            "topic",
            "include_snapshot",
            "discovery_prefix",
        ] {
            assert!(all.contains(key), "{key} missing from {all:?}");
        }
    }

    #[test]
    fn an_unknown_key_does_not_hide_the_tables_other_problems() {
        let table: toml::Table = "kind = \"telegram\"\nchat_ud = 5\nbot_token = 7"
            .parse()
            .expect("valid TOML");
        let problems = match build_notifiers_with_env(&[table], &|_| None) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "notify[0].bot_token",
                "notify[0].chat_id",
                "notify[0].chat_ud"
            ]
        );
    }

    #[test]
    fn a_wrong_type_is_kept_by_name_of_its_type() {
        let table: toml::Table = "port = \"25\"\ninclude_snapshot = 1"
            .parse()
            .expect("valid TOML");
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Two {
            port: Key<u16>,
            include_snapshot: Key<bool>,
            missing: Key<String>,
        }
        let two: Two = toml::Value::Table(table)
            .try_into()
            .expect("a Key takes any value");
        assert!(matches!(two.port, Key::WrongType("string")), "{two:?}");
        assert!(
            matches!(two.include_snapshot, Key::WrongType("integer")),
            "{two:?}"
        );
        assert!(matches!(two.missing, Key::Absent), "{two:?}");
    }
}
