//! SMS through a Twilio-compatible REST API: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded `To`, `From`, `Body`, HTTP basic auth `sid:auth_token`.
//! <https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>

use super::http::{self, read_answer, transport_error};
use super::{Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use std::sync::Arc;

pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
const AUTH_HINT: &str = "check account_sid and auth_token (Twilio console, Account Info)";

/// Sends one text to one phone number (E.164, e.g. `+15551234567`).
pub struct SmsNotifier {
    channel: String,
    client: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: Secret,
    from: String,
    to: String,
}

impl SmsNotifier {
    /// `api_base` must already satisfy the TLS rule (config checks it).
    pub fn new(
        channel: impl Into<String>,
        api_base: &url::Url,
        account_sid: impl Into<String>,
        auth_token: Secret,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Result<Self, String> {
        let account_sid = account_sid.into();
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            api_base.as_str().trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(account_sid.as_bytes()).collect::<String>()
        );
        Ok(Self {
            channel: channel.into(),
            client: http::client(None)?,
            messages_url,
            account_sid,
            auth_token,
            from: from.into(),
            to: to.into(),
        })
    }
}

impl Notifier for SmsNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let request = self
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&[
                ("To", self.to.as_str()),
                ("From", self.from.as_str()),
                ("Body", ring.plain_text_with_time().as_str()),
            ]);
        Box::pin(async move {
            let response = request
                .send()
                .await
                .map_err(|e| transport_error("Twilio", e))?;
            read_answer("Twilio", AUTH_HINT, response).await.map(drop)
        })
    }
}
