//! E-mail over SMTP with `lettre`: a plain-text and an HTML part with the link, the snapshot
//! attached inline (`cid:snapshot`) and shown in the HTML. Implicit TLS (port 465), STARTTLS
//! (587) or, for loopback only, plain SMTP.
//!
//! Keep lettre's `tracing` feature off: it logs every line written at debug level, including
//! `AUTH PLAIN <base64 of user and password>`.

use super::{Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

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
    connector: Arc<SmtpConnector>,
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

/// Opens SMTP sessions. The TCP connection is our own so that it has `TCP_NODELAY`: lettre
/// writes the message and the closing `.` separately, and with Nagle's algorithm the second
/// write waits for the server's delayed ACK (40 ms on Linux, up to 200 ms elsewhere).
struct SmtpConnector {
    host: String,
    port: u16,
    security: SmtpSecurity,
    /// For STARTTLS (lettre upgrades the stream).
    starttls: Option<TlsParameters>,
    /// For implicit TLS (we wrap the stream before the greeting).
    implicit: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    credentials: Option<Credentials>,
}

/// Why one SMTP delivery failed.
#[derive(Debug, thiserror::Error)]
enum SmtpFailure {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server does not offer STARTTLS; use tls = \"implicit\" or check the port")]
    NoStartTls,
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// An implicit-TLS stream lettre can drive.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// rustls with ring, the webpki roots and the extra CA, for implicit TLS.
fn implicit_tls(
    host: &str,
    ca_pem: Option<&[u8]>,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> {
    let roots = super::http::root_store(ca_pem)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host} is not a valid TLS server name"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

impl SmtpConnector {
    async fn open(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let tcp = tokio::time::timeout(
            SMTP_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SmtpFailure::Timeout(SMTP_TIMEOUT))?
        .map_err(SmtpFailure::Connect)?;
        tcp.set_nodelay(true).map_err(SmtpFailure::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some((connector, name)) => {
                let tls = tokio::time::timeout(SMTP_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| SmtpFailure::Timeout(SMTP_TIMEOUT))?
                    .map_err(SmtpFailure::Connect)?;
                Box::new(ImplicitTls(tls))
            }
            None => Box::new(tcp),
        };
        let hello = ClientId::default();
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello).await?;
        if let Some(parameters) = &self.starttls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(SmtpFailure::NoStartTls);
            }
            conn.starttls(parameters.clone(), &hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }

    async fn deliver(&self, message: Message) -> Result<(), SmtpFailure> {
        let session = async {
            let mut conn = self.open().await?;
            let sent = conn
                .send(message.envelope(), &message.formatted())
                .await
                .map(drop);
            // The mail is accepted at this point; a failed QUIT changes nothing.
            let _ = conn.quit().await;
            sent.map_err(SmtpFailure::from)
        };
        // Bounds the whole session, so a server that stalls mid-dialogue cannot hold the task.
        tokio::time::timeout(SMTP_TIMEOUT * 3, session)
            .await
            .map_err(|_| SmtpFailure::Timeout(SMTP_TIMEOUT * 3))?
    }
}

impl EmailNotifier {
    pub fn new(
        channel: impl Into<String>,
        server: SmtpServer,
        from: Mailbox,
        to: Vec<Mailbox>,
    ) -> Result<Self, String> {
        let starttls = match server.security {
            SmtpSecurity::StartTls => {
                let mut builder = TlsParameters::builder(server.host.clone());
                if let Some(pem) = &server.ca_pem {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| format!("the CA certificate is not usable PEM: {e}"))?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|e| format!("TLS setup failed: {e}"))?,
                )
            }
            _ => None,
        };
        let implicit = match server.security {
            SmtpSecurity::Implicit => Some(implicit_tls(&server.host, server.ca_pem.as_deref())?),
            _ => None,
        };
        let connector = SmtpConnector {
            security: server.security,
            starttls,
            implicit,
            credentials: server
                .login
                .map(|(user, password)| Credentials::new(user, password.expose().to_owned())),
            host: server.host,
            port: server.port,
        };
        Ok(Self {
            channel: channel.into(),
            connector: Arc::new(connector),
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
        escape_html(&doorbell_protocol::wall_clock::human_utc(ring.at))
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
        let connector = self.connector.clone();
        Box::pin(async move {
            match connector.deliver(message?).await {
                Ok(()) => Ok(()),
                Err(SmtpFailure::Smtp(e)) if e.is_permanent() => Err(NotifyError::Failed(format!(
                    "the SMTP server refused the mail ({e}); check username/password, from and to"
                ))),
                Err(e @ SmtpFailure::NoStartTls) => Err(NotifyError::Failed(e.to_string())),
                Err(e) => Err(NotifyError::retry(format!(
                    "SMTP delivery to {}:{} ({:?}) failed: {e}",
                    connector.host, connector.port, connector.security
                ))),
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
            room: doorbell_protocol::RoomId::parse("a").ok(),
            snapshot_jpeg: Some(Arc::new(vec![1])),
            message: None,
        };
        let html = html_body(&ring);
        assert!(html.contains("href=\"https://b.example/?room=a&amp;x=&lt;y&gt;\""));
        assert!(html.contains("cid:snapshot"));
        let no_link = html_body(&Ring {
            link: None,
            room: None,
            snapshot_jpeg: None,
            message: None,
            ..ring
        });
        assert!(no_link.contains("unreachable") && !no_link.contains("<img"));
    }
}
