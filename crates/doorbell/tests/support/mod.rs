//! Real processes for end-to-end tests: the `doorbell` binary (server, agent), headless
//! Chromium through tests/e2e/browser.js, and the Python lab server. Every wait is bounded;
//! the bounds are failure limits, not timing assertions.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

pub fn doorbell_bin() -> &'static str {
    env!("CARGO_BIN_EXE_doorbell")
}

/// `doorbell` without the test process's `DOORBELL_*` variables (only what a test sets), with
/// quiet logs and no stdin.
pub fn doorbell_command() -> Command {
    let mut cmd = Command::new(doorbell_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("DOORBELL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn").stdin(Stdio::null());
    cmd
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for_port(addr: SocketAddr, within: Duration) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(start.elapsed() < within, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `program`, run inside network namespace `netns` when given (`ip netns exec`).
pub fn command_in(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, program]);
            cmd
        }
        None => Command::new(program),
    }
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub token: String,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let token = "e2e-doorbell-token-0123456789".to_owned();
        let child = Command::new(doorbell_bin())
            .args(["server", "--listen", &addr.to_string(), "--data-dir"])
            .arg(data_dir.path())
            .args(extra)
            .env("DOORBELL_TOKEN", &token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn doorbell server");
        wait_for_port(addr, Duration::from_secs(20));
        Server {
            proc: Proc {
                child,
                name: "server".into(),
            },
            addr,
            data_dir,
            token,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn cert_path(&self) -> PathBuf {
        self.data_dir.path().join("cert.pem")
    }
}

/// The agent process with its JSON event stream.
pub struct Agent {
    pub proc: Proc,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Agent {
    /// An agent for `server`: its URL, its certificate as the CA, its doorbell token, and
    /// `extra` arguments.
    pub fn for_server(server: &Server, extra: &[&str]) -> Agent {
        let cert = server.cert_path();
        let url = server.url();
        let mut args = vec![
            "--server",
            &url,
            "--ca-cert",
            cert.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        Agent::start(&args, &[("DOORBELL_TOKEN", &server.token)])
    }

    pub fn start(extra: &[&str], envs: &[(&str, &str)]) -> Agent {
        let mut args = vec!["--ice-host", "127.0.0.1"];
        args.extend_from_slice(extra);
        Agent::start_in(None, &args, envs)
    }

    /// An agent inside network namespace `netns` (tests/nat.rs); `extra` must name its
    /// `--ice-host`.
    pub fn start_in(netns: Option<&str>, extra: &[&str], envs: &[(&str, &str)]) -> Agent {
        let mut cmd = command_in(netns, doorbell_bin());
        cmd.arg("agent")
            .args(["--trigger", "stdin", "--events", "json"])
            .args(extra);
        // Video messages are for the tests that ask for them: elsewhere an unanswered ring
        // would record one (and a press in it would end it instead of ringing), into the
        // user's data dir.
        if !extra.contains(&"--message-length") {
            cmd.args(["--message-length", "0s"]);
        }
        cmd.env("RUST_LOG", "info,webrtc=warn,rtc=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn doorbell agent");
        let stdout = child.stdout.take().expect("agent stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        eprintln!("[agent event] {line}");
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => panic!("agent stdout is not JSON lines: {line:?}"),
                }
            }
        });
        Agent {
            proc: Proc {
                child,
                name: "agent".into(),
            },
            stdin,
            events: rx,
            seen: Vec::new(),
        }
    }

    /// Presses the button (one line on stdin).
    pub fn press(&mut self) {
        let stdin = self.stdin.as_mut().expect("agent stdin open");
        stdin.write_all(b"\n").expect("write to agent");
        stdin.flush().expect("flush agent stdin");
    }

    /// Rings and returns the link once the agent says the owner was told.
    pub fn ring(&mut self, within: Duration) -> String {
        self.press();
        self.wait_for("created", within);
        self.wait_for("notified", within)["url"]
            .as_str()
            .expect("url")
            .to_owned()
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Like [`Agent::wait_for`], but `None` when it does not come in time.
    pub fn try_wait_for(&mut self, name: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.events.recv_timeout(left).ok()?;
            self.seen.push(v.clone());
            if v["event"] == name {
                return Some(v);
            }
        }
    }

    /// Waits for the next event named `name`, returning it; the events passed on the way are
    /// kept in `seen`.
    pub fn wait_for(&mut self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no `{name}` event within {within:?}; events so far: {:#?}",
                    self.seen
                        .iter()
                        .map(|v| v["event"].to_string())
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Event names seen since the last call.
    pub fn take_seen(&mut self) -> Vec<String> {
        self.seen
            .drain(..)
            .map(|v| v["event"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.proc.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs tests/e2e/browser.js to completion and returns its result line.
/// The page's measurement saw live video: at least `min_fps` decoded, and the test pattern's
/// capture stamp read in its frames (glass-to-glass samples).
pub fn assert_live_video(result: &Value, min_fps: f64) {
    let fps = result["fps"].as_f64().unwrap_or(0.0);
    assert!(fps >= min_fps, "the page decoded {fps} fps: {result}");
    assert!(
        !result["latency_samples_ms"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true),
        "the test pattern's stamp was read in the page: {result}"
    );
}

pub fn browser(url: &str, args: &[&str]) -> Value {
    browser_in(None, url, args)
}

/// [`browser`] inside network namespace `netns` (tests/nat.rs).
pub fn browser_in(netns: Option<&str>, url: &str, args: &[&str]) -> Value {
    let root = workspace_root();
    let out = command_in(netns, "node")
        .arg(root.join("tests/e2e/browser.js"))
        .arg(url)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run node tests/e2e/browser.js (is node installed?)");
    assert!(
        out.status.success(),
        "browser.js failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"result\""))
        .unwrap_or_else(|| panic!("no result line from browser.js: {text}"));
    serde_json::from_str(last).expect("browser.js result is JSON")
}

/// A short call: Chromium answers `url`, decodes video for a second and hangs up; asserts the
/// page saw video and the agent ended the call as a hang-up. Returns the page's result.
pub fn answer_briefly_and_hang_up(agent: &mut Agent, url: &str, within: Duration) -> Value {
    let result = browser(
        url,
        &[
            "--answer",
            "--wait-state-after",
            "in-call",
            "--measure-seconds",
            "1",
            "--hangup",
            "--timeout-ms",
            "45000",
        ],
    );
    assert!(
        result["frames_decoded"].as_u64().unwrap_or(0) > 5,
        "no video decoded: {result}"
    );
    let end = agent.wait_for("call_end", within);
    assert_eq!(end["reason"], "hangup", "{end}");
    result
}

/// A browser kept open (`--hold`), driven line by line.
pub struct HeldBrowser {
    proc: Proc,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl HeldBrowser {
    pub fn open(url: &str, args: &[&str]) -> HeldBrowser {
        HeldBrowser::open_in(None, url, args)
    }

    /// [`HeldBrowser::open`] inside network namespace `netns` (tests/nat.rs).
    pub fn open_in(netns: Option<&str>, url: &str, args: &[&str]) -> HeldBrowser {
        let root = workspace_root();
        let mut child = command_in(netns, "node")
            .arg(root.join("tests/e2e/browser.js"))
            .arg(url)
            .args(args)
            .arg("--hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn browser.js");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut b = HeldBrowser {
            proc: Proc {
                child,
                name: "browser".into(),
            },
            stdin,
            lines: rx,
        };
        let first = b.next_line(Duration::from_secs(60));
        assert_eq!(first["event"], "holding", "browser did not hold: {first}");
        b
    }

    fn next_line(&mut self, within: Duration) -> Value {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("browser.js said nothing within {within:?}"))
    }

    /// Sends one command and returns its reply line.
    pub fn command(&mut self, cmd: &str, within: Duration) -> Value {
        let stdin = self.stdin.as_mut().expect("browser stdin");
        writeln!(stdin, "{cmd}").expect("write browser command");
        stdin.flush().expect("flush");
        self.next_line(within)
    }

    /// Ends the hold with `cmd` (hangup, close, kill) and returns the final result.
    pub fn finish(self, cmd: &str) -> Value {
        let mut this = self;
        this.finish_inner(cmd)
    }

    fn finish_inner(&mut self, cmd: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("browser stdin");
        writeln!(stdin, "{cmd}").expect("write browser command");
        drop(self.stdin.take());
        loop {
            let v = self.next_line(Duration::from_secs(60));
            if v["event"] == "result" {
                return v;
            }
        }
    }
}

/// browser.js closes its browser when its input ends (or on SIGTERM). Firefox (puppeteer over
/// BiDi) is not a child that dies with it, so killing browser.js outright would leave Firefox
/// running: end its input, give it time, then ask with SIGTERM, and only then kill it.
impl Drop for HeldBrowser {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let exited = |child: &mut Child, within: Duration| {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        };
        if exited(&mut self.proc.child, Duration::from_secs(10)) {
            return;
        }
        let pid = self.proc.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        exited(&mut self.proc.child, Duration::from_secs(5));
    }
}

/// The lab's Flask-SocketIO server (tests/fixtures/lab_server.py), plain HTTP, serving the
/// lab-style page from tests/fixtures/lab_page.
pub struct LabServer {
    pub proc: Proc,
    pub port: u16,
    _stdin: Option<ChildStdin>,
}

impl LabServer {
    pub fn start() -> LabServer {
        let root = workspace_root();
        let mut child = Command::new("python3")
            .arg(root.join("tests/fixtures/lab_server.py"))
            .args(["--port", "0", "--static"])
            .arg(root.join("tests/fixtures/lab_page"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 tests/fixtures/lab_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("lab server output");
        let port: u16 = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("lab server said {line:?}"));
        let stdin = child.stdin.take();
        LabServer {
            proc: Proc {
                child,
                name: "lab-server".into(),
            },
            port,
            _stdin: stdin,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

// --- Fault injection (e2e_faults.rs, soak.rs) ----------------------------------------------

impl Server {
    /// Kills the server like a power cut (SIGKILL): no close frames, no goodbyes.
    pub fn kill(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }

    /// Starts the server again on the same address with the same data directory (so the same
    /// certificate) and token, and returns once it listens.
    pub fn restart(&mut self) {
        let child = Command::new(doorbell_bin())
            .args(["server", "--listen", &self.addr.to_string(), "--data-dir"])
            .arg(self.data_dir.path())
            .env("DOORBELL_TOKEN", &self.token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn doorbell server again");
        // The old process is already gone; replacing it drops (kills) nothing alive.
        self.proc = Proc {
            child,
            name: "server".into(),
        };
        wait_for_port(self.addr, Duration::from_secs(20));
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

impl Agent {
    /// The messages of every `error` event seen so far.
    pub fn error_messages(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e["event"] == "error")
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

impl HeldBrowser {
    /// The node driver's pid; Chromium's processes are its descendants.
    pub fn driver_pid(&self) -> u32 {
        self.proc.child.id()
    }
}

/// Every descendant of `pid` (children, grandchildren, ...), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if !out.contains(&child) {
                    out.push(child);
                    queue.push(child);
                }
            }
        }
    }
    out
}

/// Sends `signal` (e.g. "STOP", "CONT", "KILL") to each pid with kill(1).
pub fn signal_all(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Resident memory (VmRSS, kB) and open file descriptors of a live process.
pub fn rss_kb_and_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// Seconds between an agent event's `ts` and `since`, negative if the event came first.
pub fn seconds_after(event: &Value, since: std::time::SystemTime) -> f64 {
    let since = since
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    event["ts"].as_f64().unwrap_or(f64::NAN) - since
}

/// `GET /metrics` from a `--metrics-listen` port over plain HTTP/1.0: the response's head and
/// body.
pub fn scrape_metrics(addr: SocketAddr) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_owned(), body.to_owned())
}

// --- The owner app (e2e_owners.rs, e2e_messages.rs) -----------------------------------------

const OWNER_WAIT: Duration = Duration::from_secs(45);

/// `doorbell owners ARGS… --data-dir DIR`: its stdout, asserting success.
pub fn owners(server: &Server, args: &[&str]) -> String {
    let out = Command::new(doorbell_bin())
        .arg("owners")
        .args(args)
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .output()
        .expect("doorbell owners runs");
    assert!(
        out.status.success(),
        "owners {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A pairing link for `name` from the command, as the owner would scan it.
pub fn pairing_link(server: &Server, name: &str) -> String {
    let url = server.url();
    let out = owners(server, &["pair", "--name", name, "--public-url", &url]);
    let link = out
        .lines()
        .find(|l| l.contains("/pair?code="))
        .unwrap_or_else(|| panic!("no link in {out}"))
        .trim()
        .to_owned();
    assert!(
        out.contains('▄') || out.contains('▀') || out.contains('█'),
        "a QR code: {out}"
    );
    link
}

/// A browser that opened `link` and confirmed the pairing.
pub fn paired_browser(link: &str) -> HeldBrowser {
    let mut device = HeldBrowser::open(link, &["--timeout-ms", "30000"]);
    let shown = device.command("wait-state pairing", OWNER_WAIT);
    assert_eq!(shown["state"], "pairing", "{shown}");
    device.command("click pair-confirm", OWNER_WAIT);
    let paired = device.command("wait-state paired", OWNER_WAIT);
    assert_eq!(paired["state"], "paired", "{paired}");
    device
}

/// Polls the page until `check` holds for its state.
pub fn until(device: &mut HeldBrowser, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + OWNER_WAIT;
    loop {
        let state = device.command("state", OWNER_WAIT);
        if check(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: {state}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
