//! `doorbell agent --check-config`: the agent's config layering (flag > env > file) and its
//! refusals, through the binary (no server needed: the check connects to nothing).

use std::path::Path;
use std::process::Output;

mod support;

use support::doorbell_command as doorbell;

/// `doorbell --config CONFIG agent --check-config ARGS…` with `env`.
fn check_config(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = doorbell();
    cmd.arg("--config")
        .arg(config)
        .args(["agent", "--check-config"])
        .args(args)
        .envs(env.iter().copied());
    cmd.output().expect("doorbell runs")
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("doorbell.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn env_beats_file_and_flag_beats_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The file's size is invalid: the check passes only when a higher layer replaces it.
    let config = write_config(
        dir.path(),
        "[agent]\nserver = \"https://127.0.0.1:1\"\nvideo-size = \"641x480\"\n",
    );
    let file_only = check_config(&config, &[], &[]);
    assert!(!file_only.status.success());
    let stderr = String::from_utf8_lossy(&file_only.stderr);
    assert!(stderr.contains("video-size: \"641x480\""), "{stderr}");

    let env_wins = check_config(&config, &[], &[("DOORBELL_VIDEO_SIZE", "320x240")]);
    assert!(
        env_wins.status.success(),
        "{}",
        String::from_utf8_lossy(&env_wins.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&env_wins.stdout),
        "config OK; notification channels: console\n"
    );

    let flag_wins = check_config(
        &config,
        &["--video-size", "320x240"],
        &[("DOORBELL_VIDEO_SIZE", "3x3")],
    );
    assert!(
        flag_wins.status.success(),
        "{}",
        String::from_utf8_lossy(&flag_wins.stderr)
    );
}

#[test]
fn unknown_keys_and_wrong_values_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, expected) in [
        (
            "[agent]\nservr = \"https://h\"\n",
            "unknown key \"agent.servr\"",
        ),
        // The token is no key of the file: a config file is often world-readable.
        (
            "[agent]\ntoken = \"s3cret\"\n",
            "unknown key \"agent.token\"",
        ),
        ("[agent]\nfps = \"fast\"\n", "agent.fps: invalid type"),
        ("[agnt]\n", "unknown key \"agnt\""),
    ] {
        let config = write_config(dir.path(), text);
        let out = check_config(&config, &[], &[]);
        assert!(!out.status.success(), "{text} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let file = config.display().to_string();
        assert!(
            stderr.contains(&format!("{file}: {expected}")),
            "{text}: {stderr}"
        );
    }
}

#[test]
fn notify_problems_are_listed_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[agent]\nserver = \"https://127.0.0.1:1\"\n\n[[notify]]\nkind = \"telegram\"\n",
    );
    let out = check_config(&config, &[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config problems:\n  notify[0].bot_token: missing")
            && stderr.contains("\n  notify[0].chat_id: missing"),
        "{stderr}"
    );
}

#[test]
fn mqtt_problems_are_named_by_key_and_a_good_channel_passes_without_printing_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-password");
    let config = write_config(
        dir.path(),
        &format!(
            "[agent]\nserver = \"https://door.example.com\"\n\n\
             [[notify]]\nkind = \"mqtt\"\nurl = \"http://broker\"\n\n\
             [[notify]]\nkind = \"mqtt\"\nurl = \"mqtt://broker\"\nretain = true\n\n\
             [[notify]]\nkind = \"mqtt\"\nurl = \"mqtt://broker\"\nusername = \"doorbell\"\n\
             password_file = \"{}\"\n",
            missing.display()
        ),
    );
    let out = check_config(&config, &[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "notify[0].url: \"http://broker\" is not a broker URL",
        "notify[1].retain: unknown key",
        "notify[2].password_file: cannot read",
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }

    let good = write_config(
        dir.path(),
        "[agent]\nserver = \"https://door.example.com\"\n\n\
         [[notify]]\nkind = \"mqtt\"\nurl = \"mqtts://broker.example.com\"\n\
         username = \"doorbell\"\n",
    );
    let credentials = tempfile::tempdir().expect("tempdir");
    std::fs::write(credentials.path().join("mqtt-password"), "s3cret\n").expect("write");
    let dir_text = credentials.path().to_str().expect("utf-8 path");
    let found = check_config(&good, &[], &[("CREDENTIALS_DIRECTORY", dir_text)]);
    assert!(found.status.success(), "{found:?}");
    assert!(
        !String::from_utf8_lossy(&found.stdout).contains("s3cret")
            && !String::from_utf8_lossy(&found.stderr).contains("s3cret"),
        "the password is never printed"
    );
}

#[test]
fn notify_new_topic_prints_a_topic_the_ntfy_check_accepts_where_a_guessable_one_fails() {
    let out = doorbell()
        .args(["notify", "new-topic"])
        .output()
        .expect("doorbell runs");
    assert!(out.status.success(), "{out:?}");
    let topic = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        topic.starts_with("doorbell-") && topic.len() == 31,
        "{topic}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let ntfy = |topic: &str| {
        format!(
            "[agent]\nserver = \"https://door.example.com\"\n\n[[notify]]\nkind = \"ntfy\"\ntopic = \"{topic}\"\n"
        )
    };
    let good = check_config(&write_config(dir.path(), &ntfy(&topic)), &[], &[]);
    assert!(good.status.success(), "{good:?}");
    let bad = check_config(&write_config(dir.path(), &ntfy("my-door-7f3a")), &[], &[]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("notify[0].topic: guessable")
            && stderr.contains("doorbell notify new-topic"),
        "{stderr}"
    );
}

#[test]
fn secrets_come_from_systemd_credentials_when_the_environment_has_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[agent]\nserver = \"https://door.example.com\"\n\n[[notify]]\nkind = \"telegram\"\nchat_id = 42\n",
    );
    let missing = check_config(&config, &[], &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("notify[0].bot_token: missing"));

    let credentials = tempfile::tempdir().expect("tempdir");
    std::fs::write(credentials.path().join("telegram-bot-token"), "123:abc\n").expect("write");
    let dir_text = credentials.path().to_str().expect("utf-8 path");
    let found = check_config(&config, &[], &[("CREDENTIALS_DIRECTORY", dir_text)]);
    assert!(found.status.success(), "{found:?}");
}

#[test]
fn the_audio_table_is_checked_key_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = write_config(
        dir.path(),
        "[agent]\nserver = \"https://door.example:8443\"\naudio-out = \"alsa:default\"\n\
         [agent.audio]\necho_cancel = true\nnoise-suppression = false\nmic-gain = 6.0\n\
         speaker-volume = 80\n",
    );
    let out = check_config(&ok, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (text, expected) in [
        ("[agent.audio]\necho = true\n", "unknown field `echo`"),
        (
            "[agent.audio]\nauto-gain = \"yes\"\n",
            "agent.audio.auto-gain: invalid type",
        ),
        (
            "[agent.audio]\nmic-gain = 40.0\n",
            "mic-gain 40 dB is outside",
        ),
        (
            "[agent]\naudio-out = \"alsa:default:volume=50\"\n[agent.audio]\nspeaker-volume = 80\n",
            "the speaker volume is given twice",
        ),
        (
            "[agent]\naudio-out = \"wav:/tmp/x.wav\"\n[agent.audio]\nspeaker-volume = 80\n",
            "speaker-volume applies to an alsa: speaker",
        ),
        (
            "[agent]\naudio-in = \"echo-room\"\n",
            "echo-room needs both --audio-in echo-room and --audio-out echo-room",
        ),
    ] {
        let text = format!("[agent]\nserver = \"https://door.example:8443\"\n{text}").replace(
            "[agent]\nserver = \"https://door.example:8443\"\n[agent]\n",
            "[agent]\nserver = \"https://door.example:8443\"\n",
        );
        let config = write_config(dir.path(), &text);
        let out = check_config(&config, &[], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text} accepted");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}
