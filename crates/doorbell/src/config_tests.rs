//! The config file against the real `[server]` and `[agent]` sections: unknown keys, secrets,
//! wrong values and the example config. Here rather than in config.rs, so that config.rs does
//! not depend on the commands that depend on it.

use crate::agent_cmd::AgentArgs;
use crate::config::layered;
use crate::server_cmd::ServerArgs;

#[test]
fn every_unknown_key_in_a_table_is_named_with_the_file_and_the_known_keys() {
    let err = layered::<ServerArgs>("server", "[server]\nopen-room = true", &[]).unwrap_err();
    assert!(
        err.starts_with("test.toml: unknown key \"server.open-room\" (known keys: listen, ")
            && err.contains("open-rooms"),
        "{err}"
    );
    let file = "[server]\nopen-room = true\nlisen = 1";
    let err = layered::<ServerArgs>("server", file, &[]).unwrap_err();
    assert!(
        err.starts_with("test.toml: unknown keys ")
            && err.contains("\"server.open-room\"")
            && err.contains("\"server.lisen\""),
        "{err}"
    );
}

#[test]
fn secrets_are_not_file_keys() {
    for (name, file) in [
        ("server", "[server]\ndoorbell-token = \"x\""),
        ("agent", "[agent]\ntoken = \"x\""),
        ("agent", "[agent]\nice-credential = \"x\""),
    ] {
        let err = match name {
            "server" => layered::<ServerArgs>(name, file, &[]).map(drop),
            _ => layered::<AgentArgs>(name, file, &[]).map(drop),
        }
        .unwrap_err();
        assert!(err.contains("unknown key"), "{err}");
    }
}

#[test]
fn a_wrong_value_names_its_key() {
    let err = layered::<AgentArgs>("agent", "[agent]\nfps = \"fast\"", &[]).unwrap_err();
    assert!(err.starts_with("test.toml: agent.fps: "), "{err}");
    let err = layered::<ServerArgs>("server", "[server]\nhostnames = [1]", &[]).unwrap_err();
    assert!(err.starts_with("test.toml: server.hostnames[0]: "), "{err}");
}

#[test]
fn an_absent_table_is_the_default_and_flags_still_apply() {
    let args: ServerArgs = layered("server", "", &["--events-per-sec", "7"]).unwrap();
    assert_eq!(args.events_per_sec, Some(7));
    assert_eq!(args.listen, None);
}

/// deploy/doorbell.toml documents every key: with each `# key = value` example switched
/// on, it must still be a config the agent and server accept (so no key there is stale).
#[test]
fn the_example_config_has_only_real_keys_and_valid_values() {
    let text = include_str!("../../../deploy/doorbell.toml");
    let is_key_example = |line: &str| {
        line.strip_prefix("# ").is_some_and(|rest| {
            rest.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
        })
    };
    let mut switched_on = 0;
    let all_on: String = text
        .lines()
        .map(|line| {
            if is_key_example(line) {
                switched_on += 1;
                line.trim_start_matches("# ").to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(switched_on > 20, "only {switched_on} example keys found");
    for config in [text, all_on.as_str()] {
        let agent: AgentArgs = layered("agent", config, &[]).unwrap();
        let _server: ServerArgs = layered("server", config, &[]).unwrap();
        for spec in agent.triggers.unwrap_or_default() {
            let secret = doorbell_protocol::Secret::new("example-ring-secret");
            if let Err(e) = doorbell_agent::trigger::from_spec(&spec, Some(&secret)) {
                panic!("{spec}: {e}");
            }
        }
        use doorbell_peer::media_settings::{AudioInput, AudioOutput, VideoInput};
        VideoInput::parse(agent.video.as_deref().unwrap_or("none")).unwrap();
        AudioInput::parse(agent.audio_in.as_deref().unwrap_or("tone")).unwrap();
        AudioOutput::parse(agent.audio_out.as_deref().unwrap_or("null")).unwrap();
    }
}
