//! Starts the real server in-process on 127.0.0.1:0 with a self-signed certificate in a temp
//! directory, and runs the Node / Python peers against it.
#![allow(dead_code)] // each test binary uses a different part

use doorbell_server::{Limits, Secret, ServerConfig, TlsConfig, bind};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-doorbell-token-0123456789";

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub ca_file: PathBuf,
    pub cert_pem: String,
    pub fingerprint: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), doorbell_server::ServerError>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(open_rooms: bool) -> Self {
        Self::start_with(open_rooms, Limits::default()).await
    }

    pub async fn start_with(open_rooms: bool, limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.open_rooms = open_rooms;
        config.limits = limits;
        Self::serve_config(config, dir).await
    }

    /// Serves `config` as it is; `dir` (kept while it runs) receives `ca.pem`.
    pub async fn serve_config(config: ServerConfig, dir: tempfile::TempDir) -> Self {
        let bound = bind(config).await.unwrap();
        let addr = bound.local_addr();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, bound.cert_pem()).unwrap();
        let fingerprint = bound.cert_fingerprint().to_owned();
        let cert_pem = bound.cert_pem().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            url: format!("https://127.0.0.1:{}", addr.port()),
            ca_file,
            cert_pem,
            fingerprint,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Triggers the shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), doorbell_server::ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
    }

    /// Its directory: with the self-signed certificate, `cert.pem` and `key.pem` are there.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// A server on 127.0.0.1:0 with a self-signed certificate in `dir` and [`TOKEN`].
pub fn config_in(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsConfig::SelfSigned {
            data_dir: dir.to_owned(),
            hostnames: vec![],
        },
    );
    config.doorbell_token = Some(Secret::new(TOKEN));
    config
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a peer program to completion (with a generous hang guard) and returns its output.
pub async fn run_peer(program: &str, args: &[String]) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(workspace_root())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} hung"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Asserts the peer exited 0 and printed `PASS name` for every expected scenario.
pub fn assert_passed(output: &Output, expected: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "peer failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for name in expected {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {name}")),
            "scenario {name} did not pass:\n{stdout}\n{stderr}"
        );
    }
}

/// A plain HTTPS/1.1 GET trusting only `ca_pem`; returns the status, headers (lower-case
/// names) and body.
pub async fn https_get(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = https_request(addr, ca_pem, "GET", path, &[], &[]).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// One HTTPS/1.1 request trusting only `ca_pem`, with extra `headers` and `body`; returns the
/// status, headers (lower-case names) and body bytes.
pub async fn https_request(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    // Written while the answer is read: a server that refuses a large body early (413) need not
    // read the rest, and a client that insisted on writing it all first would wait forever.
    let (mut reader, mut writer) = tokio::io::split(tls);
    let send = async move {
        writer.write_all(request.as_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await
    };
    let mut raw = Vec::new();
    // The server may close without close_notify; what was read is what counts.
    let (_, _) = tokio::join!(send, reader.read_to_end(&mut raw));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
