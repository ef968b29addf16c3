//! The owner's call page in headless Chromium, against the real `doorbell server` binary:
//! every page state, the offer's shape, mute, hang-up, retry, listen-only (the node suites
//! in tests/e2e/*.test.js, driven by `node --test`).

mod support;

use std::process::Command;

#[test]
fn the_call_page_suites_pass_against_the_real_server() {
    let root = support::workspace_root();
    let data = tempfile::tempdir().expect("tempdir");
    let server_cmd = format!(
        "exec '{}' server --listen 127.0.0.1:0 --data-dir '{}'",
        support::doorbell_bin(),
        data.path().display()
    );
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/e2e/"])
        .current_dir(&root)
        .env("DOORBELL_SERVER_CMD", server_cmd)
        .output()
        .expect("run node --test (is node installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node --test tests/e2e/ failed");
    // The runner's summary: every suite ran, none failed.
    assert!(stdout.contains("# fail 0"), "{stdout}");
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // 18 browser suites' tests and 19 unit tests today: fewer means a suite stopped being found.
    assert!(passed >= 35, "only {passed} page tests passed");
}
