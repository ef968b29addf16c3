//! How the owner hears the bell. Each channel is its own file behind [`Notifier`]; the agent
//! sends to every configured channel at once ([`dispatch`]), and one slow or failing channel
//! never holds up another or the call.

mod config;
mod console;
mod dispatch;
mod email;
mod endpoint;
mod http;
mod mqtt;
mod notifier;
mod ntfy;
mod outage;
mod sms;
pub mod snapshot;
mod telegram;
mod test_notify;
pub mod web_push;
mod webhook;

pub use config::{
    ConfigProblem, INLINE_SECRET_KEYS, KINDS, MQTT_PASSWORD_ENV, NTFY_TOKEN_ENV, SMTP_PASSWORD_ENV,
    TELEGRAM_TOKEN_ENV, TWILIO_TOKEN_ENV, WEBHOOK_SECRET_ENV, build_notifiers,
    build_notifiers_with_env, check,
};
pub use console::ConsoleNotifier;
pub use dispatch::{ChannelOutcome, RetryPolicy, dispatch, dispatch_after_snapshot, dispatch_with};
pub use doorbell_protocol::Secret;
pub use email::{EmailNotifier, SmtpSecurity, SmtpServer};
pub use mqtt::{Broker, MqttNotifier, MqttSettings, PRESS_PAYLOAD};
pub use notifier::{HomeDevice, Notifier, NotifyError, Ring};
pub use ntfy::{MIN_TOPIC_CHARS, NtfyNotifier, is_guessable, new_topic};
pub use outage::{OUTAGE_AFTER, OutageGuard, PROBE_EVERY};
pub use sms::SmsNotifier;
pub use snapshot::PendingSnapshot;
pub use telegram::TelegramNotifier;
pub use test_notify::test_notify;
pub use web_push::{PushSubscriptions, VapidKey, WebPushNotifier};
pub use webhook::WebhookNotifier;
