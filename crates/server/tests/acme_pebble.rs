//! Automatic HTTPS against a real ACME CA: Debian's `pebble` (with `pebble-challtestsrv` as
//! its DNS, answering every name with 127.0.0.1). The server gets a certificate through
//! TLS-ALPN-01 on its own HTTPS port, serves the chain pebble signed, renews when the renewal
//! time (moved forward, not waited for) comes, and serves the kept certificate after a
//! restart without asking again.

mod common;

use common::{TOKEN, https_get};
use doorbell_server::acme::{AcmeSettings, Renewal};
use doorbell_server::{Secret, ServerConfig, TlsConfig, bind};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const DOMAIN: &str = "door.pebble.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {addr}");
}

struct Pebble {
    directory: String,
    management: SocketAddr,
    /// pebble's own HTTPS certificate (self-signed for localhost), our trust for its API.
    api_cert: std::path::PathBuf,
    _procs: (Proc, Proc),
}

/// pebble with its HTTPS API on a self-signed certificate made here, validating
/// TLS-ALPN-01 on `tls_port`, its DNS answered by pebble-challtestsrv.
async fn start_pebble(dir: &Path, tls_port: u16) -> Pebble {
    for program in ["pebble", "pebble-challtestsrv"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{program} is missing: apt-get install pebble (.ci/run installs it)"
        );
    }
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let api_cert = dir.join("pebble-api.pem");
    let api_key = dir.join("pebble-api-key.pem");
    std::fs::write(&api_cert, made.cert.pem()).unwrap();
    std::fs::write(&api_key, made.signing_key.serialize_pem()).unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let challtest = Command::new("pebble-challtestsrv")
        .args(["-dns01", &dns.to_string(), "-defaultIPv4", "127.0.0.1"])
        .args([
            "-defaultIPv6",
            "",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ])
        .args(["-management", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .spawn()
        .expect("start pebble-challtestsrv");
    let config = serde_json::json!({"pebble": {
        "listenAddress": listen.to_string(),
        "managementListenAddress": management.to_string(),
        "certificate": api_cert,
        "privateKey": api_key,
        "httpPort": free_port(),
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let pebble = Command::new("pebble")
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &dns.to_string()])
        // Validate at once instead of after pebble's random 0–15 s, and accept every nonce
        // (pebble rejects 5 % by default to exercise clients' retries).
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .spawn()
        .expect("start pebble");
    let procs = (Proc(challtest), Proc(pebble));
    wait_for_port(listen).await;
    wait_for_port(management).await;
    Pebble {
        directory: format!("https://{listen}/dir"),
        management,
        api_cert,
        _procs: procs,
    }
}

/// The served chain as seen by a client that trusts only `root_pem` and asks for `DOMAIN`:
/// the handshake succeeds only if the chain verifies. Returns the leaf's DER.
async fn served_leaf(addr: SocketAddr, root_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .expect("the served chain verifies against pebble's root");
    let (_, session) = tls.get_ref();
    let chain = session.peer_certificates().expect("a chain");
    assert!(
        chain.len() >= 2,
        "leaf and pebble's intermediate are served"
    );
    assert_eq!(
        session.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "browsers get HTTP/1.1, not the ACME protocol"
    );
    chain[0].as_ref().to_vec()
}

fn acme_config(pebble: &Pebble, dir: &Path, port: u16) -> ServerConfig {
    let mut config = ServerConfig::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        TlsConfig::Acme(AcmeSettings {
            domains: vec![DOMAIN.into()],
            email: "owner@pebble.test".into(),
            directory: pebble.directory.clone(),
            directory_ca: Some(pebble.api_cert.clone()),
            dir: dir.join("acme"),
            renew_before: Duration::from_secs(30 * 86_400),
        }),
    );
    config.doorbell_token = Some(Secret::new(TOKEN));
    config
}

async fn next_install(acme: &doorbell_server::acme::Acme, seen: u64) {
    let mut installed = acme.installed();
    tokio::time::timeout(Duration::from_secs(60), installed.wait_for(|n| *n > seen))
        .await
        .expect("a certificate from pebble within 60 s")
        .expect("the server is running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_by_pebble_over_tls_alpn_renewed_when_due_and_kept_across_restarts()
{
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pebble = start_pebble(dir.path(), port).await;

    let bound = bind(acme_config(&pebble, dir.path(), port)).await.unwrap();
    let addr = bound.local_addr();
    let acme = bound.acme().expect("ACME is on");
    assert_eq!(acme.not_after(), None, "nothing from the CA yet");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));

    // Issuance: the server answers pebble's TLS-ALPN-01 validation on its own port.
    next_install(&acme, 0).await;
    let api_pem = std::fs::read_to_string(&pebble.api_cert).unwrap();
    let (status, _, root_pem) = https_get(pebble.management, &api_pem, "/roots/0").await;
    assert_eq!(status, 200, "pebble's root");
    let first = served_leaf(addr, &root_pem).await;
    let not_after = acme.not_after().expect("the certificate's expiry");

    // Renewal: not before the margin; at the renewal time a new certificate is served.
    let now = std::time::SystemTime::now();
    let due = match acme.renew_if_due(now).await.unwrap() {
        Renewal::NotDue(due) => due,
        Renewal::Renewed => panic!("a fresh certificate was renewed"),
    };
    assert_eq!(
        due,
        not_after - Duration::from_secs(30 * 86_400),
        "renewed with 30 days left"
    );
    assert_eq!(acme.renew_if_due(due).await.unwrap(), Renewal::Renewed);
    let renewed = served_leaf(addr, &root_pem).await;
    assert_ne!(renewed, first, "the renewed certificate is served at once");

    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    // A restart serves the kept certificate straight away, without a new order.
    let again = bind(acme_config(&pebble, dir.path(), port)).await.unwrap();
    let acme = again.acme().unwrap();
    assert!(acme.not_after().is_some());
    assert_eq!(
        again.cert_fingerprint(),
        doorbell_server::fingerprint(&renewed)
    );
    let mode = std::fs::metadata(dir.path().join("acme/key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0,
        "the key is its owner's only"
    );
}

#[tokio::test]
async fn an_unreachable_acme_directory_is_a_clear_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsConfig::Acme(AcmeSettings {
            domains: vec![DOMAIN.into()],
            email: "owner@pebble.test".into(),
            directory: format!("https://127.0.0.1:{closed}/dir"),
            directory_ca: None,
            dir: dir.path().join("acme"),
            renew_before: Duration::from_secs(86_400),
        }),
    );
    config.open_rooms = true;
    let bound = bind(config).await.unwrap();
    let acme = bound.acme().unwrap();
    let err = acme
        .renew_if_due(std::time::SystemTime::now())
        .await
        .expect_err("nothing listens there")
        .to_string();
    assert!(err.contains("--acme-directory"), "{err}");
    assert!(err.contains(&closed.to_string()), "{err}");
}
