//! The `doorbell server` binary: config layering (flag > env > file), the printed
//! fingerprint, refusals at start, and a clean exit on SIGTERM / SIGINT.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// An address this machine does not have: binding it fails, so a layer that should have been
/// overridden shows up as a failed start.
const UNBINDABLE: &str = "192.0.2.1:0";

fn doorbell() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doorbell"));
    // Only what each test sets.
    for (key, _) in std::env::vars() {
        if key.starts_with("DOORBELL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Starts the server, returns it with the printed URL and fingerprint lines.
fn start(mut cmd: Command) -> (Child, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url_line = lines.next().map(Result::unwrap);
    let Some(url_line) = url_line else {
        let out = child.wait_with_output().unwrap();
        panic!(
            "server did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let fp_line = lines.next().unwrap().unwrap();
    let url = url_line
        .strip_prefix("doorbell server listening on ")
        .unwrap_or_else(|| panic!("{url_line}"))
        .to_owned();
    let fp = fp_line
        .strip_prefix("certificate SHA-256 fingerprint: ")
        .unwrap_or_else(|| panic!("{fp_line}"))
        .to_owned();
    (child, url, fp)
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the exit (hang guard only).
fn wait(mut child: Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the server did not exit after the signal");
}

fn cert_fingerprint(data_dir: &Path) -> String {
    let pem = std::fs::read_to_string(data_dir.join("cert.pem")).unwrap();
    doorbell_server::pem_fingerprint(&pem).unwrap()
}

#[test]
fn env_beats_file_flag_beats_env_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("doorbell.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"{UNBINDABLE}\"\nopen-rooms = true\n"),
    )
    .unwrap();

    // File says an unbindable address, env says loopback: env wins.
    let mut cmd = doorbell();
    cmd.args(["--config", config.to_str().unwrap(), "server", "--data-dir"])
        .arg(&data_dir)
        .env("DOORBELL_LISTEN", "127.0.0.1:0");
    let (child, url, fp) = start(cmd);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");
    assert_eq!(fp, cert_fingerprint(&data_dir));
    signal(&child, "-TERM");
    assert!(wait(child).success(), "exit 0 on SIGTERM");

    // Env says unbindable, the flag says loopback: the flag wins. Same data dir: same cert.
    let mut cmd = doorbell();
    cmd.args(["--config", config.to_str().unwrap(), "server", "--data-dir"])
        .arg(&data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("DOORBELL_LISTEN", UNBINDABLE);
    let (child, _, fp_again) = start(cmd);
    assert_eq!(fp_again, fp, "the self-signed certificate is reused");
    signal(&child, "-INT");
    assert!(wait(child).success(), "exit 0 on Ctrl-C");
}

#[test]
fn token_from_env_and_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-doorbell-token-0123456789\n").unwrap();
    for (flag, env) in [
        (
            None,
            Some((
                "DOORBELL_TOKEN",
                "s3cret-doorbell-token-0123456789".to_owned(),
            )),
        ),
        (Some(token_file.to_str().unwrap()), None),
    ] {
        let mut cmd = doorbell();
        cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"));
        if let Some(path) = flag {
            cmd.args(["--doorbell-token-file", path]);
        }
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let (child, _, _) = start(cmd);
        signal(&child, "-TERM");
        let status = wait(child);
        assert!(status.success());
    }
}

fn run_to_end(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn refuses_to_start_without_token_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = doorbell();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path());
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DOORBELL_TOKEN") && stderr.contains("--open-rooms"),
        "{stderr}"
    );
}

#[test]
fn unknown_config_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, key) in [
        ("[server]\nlisten-on = \"127.0.0.1:0\"\n", "listen-on"),
        ("[servr]\nlisten = \"127.0.0.1:0\"\n", "servr"),
    ] {
        let config = dir.path().join("c.toml");
        std::fs::write(&config, toml).unwrap();
        let mut cmd = doorbell();
        cmd.args([
            "--config",
            config.to_str().unwrap(),
            "server",
            "--open-rooms",
        ]);
        let out = run_to_end(cmd);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}

#[test]
fn the_token_never_reaches_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = doorbell();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("DOORBELL_TOKEN", "very-secret-token-value")
        .env("RUST_LOG", "debug");
    let (mut child, _, _) = start(cmd);
    signal(&child, "-TERM");
    let stderr = child.stderr.take().unwrap();
    let status = wait(child);
    assert!(status.success());
    let logs = std::io::read_to_string(stderr).unwrap();
    assert!(!logs.contains("very-secret-token-value"), "{logs}");
}
