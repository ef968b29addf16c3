//! Secrets as systemd credentials. An environment variable can be read by anything running as
//! the same user (`/proc/PID/environ`); a credential (`LoadCredential=` in the unit) is a file
//! only this service can read, in `$CREDENTIALS_DIRECTORY`. Every secret the environment can
//! give (`DOORBELL_TOKEN`, `DOORBELL_TELEGRAM_BOT_TOKEN`, …) can instead be a credential named
//! after it: without `DOORBELL_`, lower case, `_` as `-` (`token`, `telegram-bot-token`, …).
//! The environment wins when both are set.

use std::path::Path;

/// The credential name for a secret's environment variable.
pub fn name_for(env_var: &str) -> String {
    env_var
        .strip_prefix("DOORBELL_")
        .unwrap_or(env_var)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The secret for `env_var` from the environment, else from the credentials directory `dir`
/// (normally `$CREDENTIALS_DIRECTORY`). Surrounding whitespace is dropped; an empty value is
/// none.
pub fn lookup_in(
    env_var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: Option<&Path>,
) -> Option<String> {
    let from_env = env(env_var).filter(|v| !v.trim().is_empty());
    from_env.or_else(|| {
        let text = std::fs::read_to_string(dir?.join(name_for(env_var))).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    })
}

/// [`lookup_in`] with this process's environment and `$CREDENTIALS_DIRECTORY`.
pub fn lookup(env_var: &str) -> Option<String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
    lookup_in(
        env_var,
        &|name| std::env::var(name).ok(),
        dir.as_deref().map(Path::new),
    )
}

/// Only the credential for `env_var` (for secrets whose environment variable clap has read
/// already).
pub fn credential(env_var: &str) -> Option<String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
    lookup_in(env_var, &|_| None, dir.as_deref().map(Path::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_environment_variable() {
        assert_eq!(name_for("DOORBELL_TOKEN"), "token");
        assert_eq!(
            name_for("DOORBELL_TELEGRAM_BOT_TOKEN"),
            "telegram-bot-token"
        );
    }

    #[test]
    fn a_credential_file_is_used_when_the_environment_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp-password"), "  s3cret\n").unwrap();
        let none = |_: &str| None;
        assert_eq!(
            lookup_in("DOORBELL_SMTP_PASSWORD", &none, Some(dir.path())).as_deref(),
            Some("s3cret")
        );
        let env = |_: &str| Some("from-env".to_owned());
        assert_eq!(
            lookup_in("DOORBELL_SMTP_PASSWORD", &env, Some(dir.path())).as_deref(),
            Some("from-env"),
            "the environment wins"
        );
        assert_eq!(
            lookup_in("DOORBELL_NTFY_TOKEN", &none, Some(dir.path())),
            None
        );
        assert_eq!(lookup_in("DOORBELL_SMTP_PASSWORD", &none, None), None);
    }
}
