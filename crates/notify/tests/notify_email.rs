//! The e-mail channel against a real SMTP server (Python's aiosmtpd,
//! tests/fixtures/notify/smtp_sink.py) on loopback: plain, STARTTLS and implicit TLS, with and
//! without login; the received mail has a text and an HTML part with the link and the
//! snapshot inline, decoding to the frame's size; 5xx is permanent, 4xx is retried.

mod notify_support;

use base64::Engine;
use notify_support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

struct SmtpSink {
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

impl SmtpSink {
    async fn start(args: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut child = Command::new("python3")
            .arg(root.join("tests/fixtures/notify/smtp_sink.py"))
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs (pip install -r tests/requirements.txt for aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink starts within 30 s")
            .unwrap()
            .expect("the SMTP sink prints its port (is aiosmtpd installed?)");
        let port = first.strip_prefix("PORT ").unwrap().parse().unwrap();
        Self {
            port,
            lines,
            _child: child,
        }
    }

    /// The next line the sink printed: a received message or a refusal.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("a message within 30 s")
            .unwrap()
            .expect("the sink is running");
        serde_json::from_str(&line).unwrap()
    }
}

fn email_table(port: u16, extra: &str) -> String {
    format!(
        "kind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         from = \"Doorbell <bell@doorbell.test>\"\n\
         to = [\"owner@doorbell.test\", \"Second Owner <second@doorbell.test>\"]\n{extra}"
    )
}

/// A self-signed certificate for 127.0.0.1 in a fresh directory: (dir, cert path, key path).
fn certificate() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (dir, cert_path, key_path)
}

fn check_full_mail(mail: &Value, snapshot: &[u8]) {
    assert_eq!(mail["subject"], "Someone is at the door");
    assert_eq!(mail["mail_from"], "bell@doorbell.test");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["owner@doorbell.test", "second@doorbell.test"])
    );
    assert!(
        mail["from"]
            .as_str()
            .unwrap()
            .contains("bell@doorbell.test")
    );
    assert!(
        mail["to"]
            .as_str()
            .unwrap()
            .contains("second@doorbell.test")
    );
    assert_eq!(mail["content_type"], "multipart/alternative");
    let text = mail["text"].as_str().expect("a text/plain part");
    assert!(text.contains(LINK), "{text}");
    let html = mail["html"].as_str().expect("a text/html part");
    assert!(html.contains(&format!("href=\"{LINK}\"")), "{html}");
    assert!(html.contains("src=\"cid:snapshot\""), "{html}");
    let images = mail["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image["content_type"], "image/jpeg");
    assert_eq!(image["content_id"], "<snapshot>");
    assert_eq!(image["disposition"], "inline");
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(image["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(jpeg, snapshot);
    assert_eq!(jpeg_size(&jpeg), (WIDTH, HEIGHT));
}

#[tokio::test]
async fn plain_loopback_mail_has_text_html_and_the_inline_snapshot() {
    let mut sink = SmtpSink::start(&[]).await;
    let n = build_one(&email_table(sink.port, "tls = \"none\"\n"));
    let ring = ring(true);
    assert_sent(&deliver(n, ring.clone(), Duration::from_secs(20)).await);
    check_full_mail(&sink.next().await, ring.snapshot_jpeg.as_deref().unwrap());
}

#[tokio::test]
async fn without_snapshot_there_are_two_parts_and_no_image() {
    let mut sink = SmtpSink::start(&[]).await;
    let n = build_one(&email_table(sink.port, "tls = \"none\"\n"));
    assert_sent(&deliver(n, ring(false), Duration::from_secs(20)).await);
    let mail = sink.next().await;
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert!(mail["text"].as_str().unwrap().contains(LINK));
    assert!(mail["html"].as_str().unwrap().contains(LINK));
    assert!(!mail["html"].as_str().unwrap().contains("cid:"));
    assert_eq!(mail["images"], serde_json::json!([]));
}

#[tokio::test]
async fn starttls_with_login_and_a_private_ca() {
    let (_dir, cert, key) = certificate();
    let mut sink = SmtpSink::start(&[
        "--starttls",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--user",
        "bell",
        "--password",
        "smtp-pass-word",
    ])
    .await;
    let extra = format!(
        "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"bell\"\n",
        cert.display()
    );
    let built = doorbell_notify::build_notifiers_with_env(
        &[table(&email_table(sink.port, &extra))],
        &|name| (name == "DOORBELL_SMTP_PASSWORD").then(|| "smtp-pass-word".to_owned()),
    )
    .unwrap();
    let ring = ring(true);
    assert_sent(&deliver(built[0].clone(), ring.clone(), Duration::from_secs(20)).await);
    check_full_mail(&sink.next().await, ring.snapshot_jpeg.as_deref().unwrap());

    // A wrong password: 535 is permanent, and the password is not in the reason.
    let extra = format!(
        "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"bell\"\npassword = \"guessed-wrong\"\n",
        cert.display()
    );
    let n = build_one(&email_table(sink.port, &extra));
    let reason = failed_reason(&deliver(n, ring, Duration::from_secs(20)).await);
    assert!(reason.contains("535"), "{reason}");
    assert!(reason.contains("username/password"), "{reason}");
    assert!(!reason.contains("guessed-wrong"), "{reason}");
}

#[tokio::test]
async fn implicit_tls_delivers_and_an_untrusted_certificate_does_not() {
    let (_dir, cert, key) = certificate();
    let mut sink = SmtpSink::start(&[
        "--implicit",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let trusted = format!("tls = \"implicit\"\nca_file = \"{}\"\n", cert.display());
    let ring = ring(true);
    assert_sent(
        &deliver(
            build_one(&email_table(sink.port, &trusted)),
            ring.clone(),
            Duration::from_secs(20),
        )
        .await,
    );
    check_full_mail(&sink.next().await, ring.snapshot_jpeg.as_deref().unwrap());

    // Without the CA the certificate is refused; that is retried until the deadline.
    let untrusted = build_one(&email_table(sink.port, "tls = \"implicit\"\n"));
    let reason = failed_reason(&deliver(untrusted, ring, Duration::from_secs(2)).await);
    assert!(reason.contains("gave up"), "{reason}");
}

#[tokio::test]
async fn a_temporary_refusal_is_retried() {
    let mut sink = SmtpSink::start(&["--fail-first", "1"]).await;
    let n = build_one(&email_table(sink.port, "tls = \"none\"\n"));
    let ring = ring(true);
    assert_sent(&deliver(n, ring.clone(), Duration::from_secs(20)).await);
    assert_eq!(sink.next().await["refused"], "451");
    check_full_mail(&sink.next().await, ring.snapshot_jpeg.as_deref().unwrap());
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_a_config_error() {
    let sink = SmtpSink::start(&[]).await;
    let n = build_one(&email_table(sink.port, "tls = \"starttls\"\n"));
    let reason = failed_reason(&deliver(n, ring(false), Duration::from_secs(20)).await);
    assert!(reason.contains("does not offer STARTTLS"), "{reason}");
}
