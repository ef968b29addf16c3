//! `[[notify]]` config: every problem names its key and says what to do, unknown keys are
//! refused by name, the TLS rule for links is enforced, secrets come from the table, a file or
//! the environment and never appear in problems; `check` and `test_notify` for the CLI.

mod notify_support;

use doorbell_notify::{
    ChannelOutcome, ConfigProblem, build_notifiers_with_env, check, test_notify,
};
use notify_support::*;
use serde_json::json;
use std::time::Duration;

fn problems(tables: &[&str]) -> Vec<String> {
    problems_with_env(tables, &|_| None)
}

fn problems_with_env(tables: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let tables: Vec<_> = tables.iter().map(|t| table(t)).collect();
    match build_notifiers_with_env(&tables, env) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ConfigProblem::to_string).collect(),
    }
}

#[test]
fn missing_keys_are_named_with_where_to_set_them() {
    let found = problems(&[
        "kind = \"console\"",
        "kind = \"telegram\"",
        "kind = \"sms\"\naccount_sid = \"AC1\"\nfrom = \"+1555\"\nto = \"+1666\"",
        "kind = \"email\"\nto = \"a@b.test\"",
        "kind = \"ntfy\"",
        "kind = \"webhook\"",
    ]);
    assert_eq!(
        found,
        [
            "notify[1].bot_token: missing (set bot_token, bot_token_file or DOORBELL_TELEGRAM_BOT_TOKEN)",
            "notify[1].chat_id: missing (the chat's numeric id or @channelname; several as a list)",
            "notify[2].auth_token: missing (set auth_token, auth_token_file or DOORBELL_TWILIO_AUTH_TOKEN)",
            "notify[3].host: missing (the SMTP server, e.g. smtp.example.com)",
            "notify[3].from: missing (the sender, e.g. Doorbell <bell@example.com>)",
            "notify[4].topic: missing (the topic to publish to)",
            "notify[5].url: missing (an https:// URL)",
        ]
    );
}

#[test]
fn unknown_keys_and_kinds_are_refused_by_name() {
    let found = problems(&[
        "kind = \"telegram\"\nbot_token = \"1:x\"\nchat_ud = 5\nchat_id = 5",
        "kind = \"pager\"\nnumber = 1",
        "name = \"x\"",
        "kind = \"console\"\ncolour = \"red\"",
    ]);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[0]
            .starts_with("notify[0].chat_ud: unknown key for kind = \"telegram\" (known keys: ")
            && found[0].contains("bot_token_file")
            && found[0].contains("chat_id"),
        "{}",
        found[0]
    );
    assert_eq!(
        found[1],
        "notify[1].kind: unknown kind \"pager\" (one of telegram, email, sms, ntfy, webhook, mqtt, console)"
    );
    assert!(
        found[2].starts_with("notify[1].number: unknown key"),
        "{}",
        found[2]
    );
    assert_eq!(
        found[3],
        "notify[2].kind: missing (one of telegram, email, sms, ntfy, webhook, mqtt, console)"
    );
    assert!(found[4].starts_with("notify[3].colour: unknown key for kind = \"console\""));
}

#[test]
fn links_go_only_over_tls_unless_the_endpoint_is_loopback() {
    let found = problems(&[
        "kind = \"webhook\"\nurl = \"http://homeassistant.lan:8123/api/webhook/x\"",
        "kind = \"ntfy\"\nserver = \"http://ntfy.example.com\"\ntopic = \"doorbell-Xq3vR8tLm2PzK7wYb1NcDa\"",
        "kind = \"telegram\"\nbot_token = \"1:x\"\nchat_id = 1\napi_base = \"http://10.0.0.1\"",
        "kind = \"sms\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\"\nto = \"+2\"\napi_base = \"ftp://x\"",
        "kind = \"email\"\nhost = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@b.test\"\nto = \"c@d.test\"",
        // Loopback over http and plain SMTP are fine.
        "kind = \"webhook\"\nurl = \"http://127.0.0.1:8123/hook\"",
        "kind = \"email\"\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"a@b.test\"\nto = \"c@d.test\"",
    ]);
    assert_eq!(found.len(), 5, "{found:#?}");
    for (i, key) in ["url", "server", "api_base"].iter().enumerate() {
        assert!(
            found[i].starts_with(&format!(
                "notify[{i}].{key}: http:// to a non-loopback host"
            )) && found[i].contains("use https://"),
            "{}",
            found[i]
        );
    }
    assert!(found[3].starts_with("notify[3].api_base: scheme ftp:// is not supported"));
    assert!(
        found[4].starts_with("notify[4].tls: \"none\" would send"),
        "{}",
        found[4]
    );
}

#[test]
fn wrong_types_and_values_say_what_is_expected() {
    let found = problems(&[
        "kind = \"email\"\nhost = \"smtp.example.com\"\nport = 70000\ntls = \"ssl\"\nfrom = \"not an address\"\nto = []",
        "kind = \"telegram\"\nbot_token = 12345\nchat_id = [1, true]",
        "kind = \"webhook\"\nurl = \"https://x.test/\"\ninclude_snapshot = \"yes\"",
        "kind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"a@b.test\"\nto = \"c@d.test\"\nusername = \"u\"",
    ]);
    let expected_starts = [
        "notify[0].tls: unknown value \"ssl\" (implicit, starttls or none)",
        "notify[0].port: must be an integer from 1 to 65535",
        "notify[0].from: \"not an address\" is not an e-mail address",
        "notify[0].to: is an empty list",
        "notify[1].bot_token: must be a string, not integer",
        "notify[1].chat_id: every entry must be non-empty",
        "notify[2].include_snapshot: must be true or false",
        "notify[3].password: missing (set password, password_file or DOORBELL_SMTP_PASSWORD)",
    ];
    assert_eq!(found.len(), expected_starts.len(), "{found:#?}");
    for (problem, start) in found.iter().zip(expected_starts) {
        assert!(
            problem.starts_with(start),
            "{problem:?} should start with {start:?}"
        );
    }
    assert!(
        !found[4].contains("12345"),
        "a secret's value is never echoed"
    );
}

#[test]
fn secrets_from_file_or_env_and_never_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "777:file-token-value\n").unwrap();
    let from_file = format!(
        "kind = \"telegram\"\nbot_token_file = \"{}\"\nchat_id = 1",
        token_file.display()
    );
    assert!(problems(&[&from_file]).is_empty());

    // From the environment.
    let env = |name: &str| (name == "DOORBELL_TELEGRAM_BOT_TOKEN").then(|| "env-token".to_owned());
    assert!(problems_with_env(&["kind = \"telegram\"\nchat_id = 1"], &env).is_empty());

    // Both inline and file; an unreadable file; an empty file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let found = problems(&[
        &format!("{from_file}\nbot_token = \"inline-secret-value\""),
        "kind = \"sms\"\naccount_sid = \"AC1\"\nauth_token_file = \"/nonexistent/doorbell/token\"\nfrom = \"+1\"\nto = \"+2\"",
        &format!(
            "kind = \"webhook\"\nurl = \"https://x.test\"\nsecret_file = \"{}\"",
            empty.display()
        ),
    ]);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        found[0],
        "notify[0].bot_token_file: set either bot_token or bot_token_file, not both"
    );
    assert!(
        found[1]
            .starts_with("notify[1].auth_token_file: cannot read /nonexistent/doorbell/token (")
    );
    assert!(found[2].starts_with("notify[2].secret_file: ") && found[2].contains("is empty"));
    let all = format!("{found:?}");
    for secret in ["inline-secret-value", "file-token-value", "env-token"] {
        assert!(!all.contains(secret), "{all}");
    }
}

#[test]
fn names_default_to_the_kind_and_are_numbered_when_shared() {
    let base = "https://hooks.example.com/x";
    let tables: Vec<_> = [
        format!("kind = \"webhook\"\nurl = \"{base}\""),
        format!("kind = \"webhook\"\nurl = \"{base}\""),
        format!("kind = \"webhook\"\nname = \"home-assistant\"\nurl = \"{base}\""),
        "kind = \"console\"".to_owned(),
    ]
    .iter()
    .map(|t| table(t))
    .collect();
    assert_eq!(
        check(&tables).unwrap(),
        ["webhook#1", "webhook#2", "home-assistant", "console"]
    );
    assert!(check(&[table("kind = \"nope\"")]).is_err());
}

#[tokio::test]
async fn test_notify_reports_every_channel() {
    let mut good = StandIn::start(|_| Answer::json(200, json!({"ok": true}))).await;
    let refusing = StandIn::start(|_| Answer::json(401, json!({"message": "bad signature"}))).await;
    let notifiers = [
        build_one(&format!(
            "kind = \"webhook\"\nname = \"good\"\nurl = \"{}/h\"",
            good.base
        )),
        build_one(&format!(
            "kind = \"webhook\"\nname = \"refusing\"\nurl = \"{}/h\"",
            refusing.base
        )),
    ];
    let outcomes = test_notify(
        &notifiers,
        Some((
            doorbell_protocol::RoomId::parse(LINK_ROOM).unwrap(),
            LINK.into(),
        )),
        Some(snapshot_640x480()),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        outcomes[0],
        ChannelOutcome {
            channel: "good".into(),
            result: Ok(())
        }
    );
    assert_eq!(outcomes[0].to_string(), "good: sent");
    assert_eq!(outcomes[1].channel, "refusing");
    let line = outcomes[1].to_string();
    assert!(
        line.starts_with("refusing: FAILED: ") && line.contains("bad signature"),
        "{line}"
    );
    assert_eq!(good.next_request().await.json()["url"], LINK);
}

#[test]
fn an_unreadable_or_empty_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let found = problems(&[
        "kind = \"webhook\"\nurl = \"https://x.test\"\nca_file = \"/nonexistent/ca.pem\"",
        &format!(
            "kind = \"ntfy\"\ntopic = \"doorbell-Xq3vR8tLm2PzK7wYb1NcDa\"\nca_file = \"{}\"",
            not_pem.display()
        ),
    ]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("notify[0].ca_file: cannot read /nonexistent/ca.pem ("));
    assert!(
        found[1].starts_with("notify[1].ca_file: ")
            && found[1].contains("holds no PEM certificate")
    );
}

#[test]
fn a_guessable_ntfy_topic_is_refused_unless_the_topic_has_access_control() {
    let found = problems(&[
        "kind = \"ntfy\"\ntopic = \"my-door-7f3a\"",
        "kind = \"ntfy\"\ntopic = \"my-front-door-at-home-in-town\"",
    ]);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (i, p) in found.iter().enumerate() {
        assert!(
            p.starts_with(&format!("notify[{i}].topic: guessable"))
                && p.contains("doorbell notify new-topic"),
            "{p}"
        );
    }
    // With an access token the topic may be anything the server protects.
    assert!(problems(&["kind = \"ntfy\"\ntopic = \"door\"\ntoken = \"tk_x\""]).is_empty());
}

#[test]
fn a_new_topic_is_128_random_bits_and_passes_the_check() {
    let a = doorbell_notify::new_topic().unwrap();
    let b = doorbell_notify::new_topic().unwrap();
    assert_ne!(a, b);
    let random = a.strip_prefix("doorbell-").expect("prefix");
    assert_eq!(random.len(), 22, "16 bytes in base64url");
    assert!(!doorbell_notify::is_guessable(&a));
    assert!(problems(&[&format!("kind = \"ntfy\"\ntopic = \"{a}\"")]).is_empty());
}
