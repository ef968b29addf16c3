//! E-mail over SMTP with `lettre`: a plain-text and an HTML part with the link, the snapshot
//! attached inline (`cid:snapshot`) and shown in the HTML. Implicit TLS (port 465), STARTTLS
//! (587) or, for loopback only, plain SMTP.

use super::{Notifier, NotifyError, Ring, Secret};
use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

pub const SUBJECT: &str = "Someone is at the door";
/// The inline image's Content-ID, referenced from the HTML as `cid:snapshot`.
pub const SNAPSHOT_CID: &str = "snapshot";
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which must be offered (usually port 587).
    StartTls,
    /// No encryption: only allowed for a loopback host (a local relay, tests).
    None,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Implicit => 465,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::None => 25,
        }
    }
}

pub struct EmailNotifier {
    channel: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// Where and how to deliver.
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Extra trusted CA certificate (PEM) for a server with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub login: Option<(String, Secret)>,
}

impl EmailNotifier {
    pub fn new(
        channel: impl Into<String>,
        server: SmtpServer,
        from: Mailbox,
        to: Vec<Mailbox>,
    ) -> Result<Self, String> {
        let tls_parameters = || -> Result<TlsParameters, String> {
            let mut builder = TlsParameters::builder(server.host.clone());
            if let Some(pem) = &server.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("the CA certificate is not usable PEM: {e}"))?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| format!("TLS setup failed: {e}"))
        };
        let tls = match server.security {
            SmtpSecurity::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = server.login {
            builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
        }
        Ok(Self {
            channel: channel.into(),
            transport: builder.build(),
            from,
            to,
        })
    }

    fn message(&self, ring: &Ring) -> Result<Message, NotifyError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(SUBJECT)
            .date(ring.at);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let text = SinglePart::plain(ring.text_with_time());
        let html = SinglePart::html(html_body(ring));
        let body = match &ring.snapshot_jpeg {
            Some(jpeg) => MultiPart::alternative().singlepart(text).multipart(
                MultiPart::related().singlepart(html).singlepart(
                    Attachment::new_inline_with_name(
                        SNAPSHOT_CID.to_owned(),
                        "doorbell.jpg".to_owned(),
                    )
                    .body(jpeg.as_ref().clone(), jpeg_type()),
                ),
            ),
            None => MultiPart::alternative().singlepart(text).singlepart(html),
        };
        builder
            .multipart(body)
            .map_err(|e| NotifyError::Failed(format!("could not build the e-mail: {e}")))
    }
}

fn jpeg_type() -> ContentType {
    // A constant, valid MIME type.
    ContentType::parse("image/jpeg").unwrap_or(ContentType::TEXT_PLAIN)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_body(ring: &Ring) -> String {
    let mut html = String::from("<!doctype html><html><body>");
    html.push_str(&format!(
        "<p>{}</p>",
        escape_html(&super::wall_clock::human_utc(ring.at))
    ));
    match &ring.link {
        Some(link) => {
            let link = escape_html(link);
            html.push_str(&format!(
                "<p>Someone is at the door.</p><p><a href=\"{link}\" \
                 style=\"font-size:1.4em\">Answer the door</a></p><p>{link}</p>"
            ));
        }
        None => html.push_str(&format!("<p>{}</p>", escape_html(&ring.text()))),
    }
    if ring.snapshot_jpeg.is_some() {
        html.push_str(&format!(
            "<p><img src=\"cid:{SNAPSHOT_CID}\" alt=\"The visitor\" style=\"max-width:100%\"></p>"
        ));
    }
    html.push_str("</body></html>");
    html
}

impl Notifier for EmailNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let message = self.message(&ring);
        let transport = self.transport.clone();
        Box::pin(async move {
            let message = message?;
            match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(NotifyError::Failed(format!(
                    "the SMTP server refused the mail ({e}); check username/password, from and to"
                ))),
                Err(e) => Err(NotifyError::retry(format!("SMTP delivery failed: {e}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn html_escapes_and_references_the_inline_image() {
        let ring = Ring {
            at: SystemTime::UNIX_EPOCH,
            link: Some("https://b.example/?room=a&x=<y>".into()),
            snapshot_jpeg: Some(Arc::new(vec![1])),
        };
        let html = html_body(&ring);
        assert!(html.contains("href=\"https://b.example/?room=a&amp;x=&lt;y&gt;\""));
        assert!(html.contains("cid:snapshot"));
        let no_link = html_body(&Ring {
            link: None,
            snapshot_jpeg: None,
            ..ring
        });
        assert!(no_link.contains("unreachable") && !no_link.contains("<img"));
    }
}
