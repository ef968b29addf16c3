//! The TOML config file shared by every subcommand: one table per subcommand (`[server]`,
//! `[agent]`) and the `[[notify]]` channels.
//!
//! Each section is declared once, as one struct deriving both `clap::Args` (a flag and its
//! `DOORBELL_*` environment variable per field) and `serde::Deserialize` (the table's keys,
//! `deny_unknown_fields`); every field is an `Option`, and defaults and validation live in
//! the section's `resolve`. [`ConfigFile::section`] layers them: flag > environment > file >
//! default.
//!
//! Why no layered-config crate (figment, config-rs): clap already resolves flag > environment
//! and shows each variable next to its flag in `--help`; such a crate would either read the
//! `DOORBELL_*` variables a second time (its own environment provider, with its own parsing of
//! lists and booleans) or only wrap the one overlay step, which clap's derived
//! `update_from_arg_matches` already does field by field. Its error messages would also not be
//! ours: we name the file and the key (`doorbell.toml: unknown key "agent.servr"`).

use clap::{ArgMatches, FromArgMatches};
use doorbell_protocol::serde_keys::struct_keys;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Top-level tables of the config file. Add a subcommand's table here.
pub const TABLES: &[&str] = &["server", "agent", "demo"];

/// Arrays of tables (`[[notify]]`: one per notification channel).
pub const TABLE_ARRAYS: &[&str] = &["notify"];

/// The config file, its top level checked; empty without `--config`.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// The path as given, for messages.
    name: String,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and checks `path`; no path is an empty file.
    pub fn read(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let config = Self::parse(&path.display().to_string(), &text)?;
        let inline = config.inline_secrets();
        if !inline.is_empty() && readable_by_others(path) {
            tracing::warn!(
                "{}: holds secrets ({}) and other users can read it; move them to *_file keys \
                 or systemd credentials, or chmod 600 it",
                path.display(),
                inline.join(", ")
            );
        }
        Ok(config)
    }

    /// The `[[notify]]` keys that hold a secret inline (not a `*_file` key), as `notify[N].KEY`.
    pub fn inline_secrets(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (i, table) in self.table_array("notify").iter().enumerate() {
            for key in doorbell_notify::INLINE_SECRET_KEYS {
                if table.contains_key(key) {
                    found.push(format!("notify[{i}].{key}"));
                }
            }
        }
        found
    }

    /// Parses `text`, named `name` in messages, and refuses a top-level key that is not one of
    /// [`TABLES`] or [`TABLE_ARRAYS`], or one of the wrong shape.
    pub fn parse(name: &str, text: &str) -> Result<Self, String> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| format!("config {name} is not valid TOML: {e}"))?;
        for (key, value) in &table {
            let fits = if TABLE_ARRAYS.contains(&key.as_str()) {
                value
                    .as_array()
                    .is_some_and(|items| items.iter().all(toml::Value::is_table))
            } else if TABLES.contains(&key.as_str()) {
                value.is_table()
            } else {
                let tables: Vec<String> = TABLES.iter().map(|t| format!("[{t}]")).collect();
                return Err(format!(
                    "{name}: unknown key \"{key}\" (expected a table: {}, or [[notify]])",
                    tables.join(", ")
                ));
            };
            if !fits {
                let shape = if TABLE_ARRAYS.contains(&key.as_str()) {
                    format!("one or more [[{key}]] tables")
                } else {
                    format!("a table, [{key}]")
                };
                return Err(format!("{name}: `{key}` must be {shape}"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            table,
        })
    }

    /// The `[[name]]` tables (empty when absent).
    pub fn table_array(&self, name: &str) -> Vec<toml::Table> {
        self.table
            .get(name)
            .and_then(toml::Value::as_array)
            .map(|items| items.iter().filter_map(|v| v.as_table().cloned()).collect())
            .unwrap_or_default()
    }

    /// The section `name`: its `[name]` table, with every field given by a flag or an
    /// environment variable in `given` laid over it. Fields still `None` take their default
    /// in the section's `resolve`.
    pub fn section<T>(&self, name: &str, given: &ArgMatches) -> Result<T, String>
    where
        T: FromArgMatches + DeserializeOwned + Default,
    {
        let mut section: T = self.file_section(name)?;
        // clap's derived update sets a field only when `contains_id` says it was given, by a
        // flag or its environment variable (no section field has a clap default, which would
        // count as given), so the file's value stays wherever neither was.
        section
            .update_from_arg_matches(given)
            .map_err(|e| e.to_string())?;
        Ok(section)
    }

    /// The section `[outer.name]` (e.g. `[agent.audio]`), layered like [`Self::section`].
    pub fn section_in<T>(&self, outer: &str, name: &str, given: &ArgMatches) -> Result<T, String>
    where
        T: FromArgMatches + DeserializeOwned + Default,
    {
        let inner = ConfigFile {
            name: format!("{} [{outer}]", self.name),
            table: self
                .table
                .get(outer)
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default(),
        };
        inner.section(name, given)
    }

    /// The `[name]` table alone as `T` (`T::default()` when absent). Every unknown key is
    /// refused by name, with the keys `T` knows; a wrong value names its key.
    fn file_section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, String> {
        let Some(value) = self.table.get(name) else {
            return Ok(T::default());
        };
        let known = struct_keys::<T>();
        let unknown: Vec<String> = value
            .as_table()
            .into_iter()
            .flat_map(|table| table.keys())
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| format!("\"{name}.{key}\""))
            .collect();
        if !unknown.is_empty() {
            let plural = if unknown.len() > 1 { "s" } else { "" };
            return Err(format!(
                "{}: unknown key{plural} {} (known keys: {})",
                self.name,
                unknown.join(", "),
                known.join(", ")
            ));
        }
        serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            format!(
                "{}: {name}.{}: {}",
                self.name,
                e.path(),
                e.inner().message()
            )
        })
    }
}

/// The section `T` from `file` (its `[name]` table) and `argv` (flags, and whatever
/// `DOORBELL_*` variables the test process has), as `doorbell` would layer them.
#[cfg(test)]
pub fn layered<T>(name: &str, file: &str, argv: &[&str]) -> Result<T, String>
where
    T: clap::Args + FromArgMatches + DeserializeOwned + Default,
{
    let file = ConfigFile::parse("test.toml", file)?;
    let given = T::augment_args(clap::Command::new("doorbell"))
        .try_get_matches_from(std::iter::once("doorbell").chain(argv.iter().copied()))
        .map_err(|e| e.to_string())?;
    file.section(name, &given)
}

/// Whether users other than the owner (and its group) may read `path`.
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_top_level_keys_are_named_with_the_file() {
        let err = ConfigFile::parse("d.toml", "[sever]\nlisten = \"1.2.3.4:5\"").unwrap_err();
        assert!(err.starts_with("d.toml: unknown key \"sever\""), "{err}");
        assert!(ConfigFile::parse("d.toml", "server = 3").is_err());
        assert!(ConfigFile::parse("d.toml", "[server]\n[agent]").is_ok());
        assert!(ConfigFile::parse("d.toml", "[[notify]]\nkind = \"console\"").is_ok());
        let err = ConfigFile::parse("d.toml", "[notify]\nkind = \"console\"").unwrap_err();
        assert!(err.contains("[[notify]]"), "{err}");
    }

    #[test]
    fn inline_secrets_are_found_by_key_and_file_keys_are_not() {
        let config = ConfigFile::parse(
            "d.toml",
            "[[notify]]\nkind = \"telegram\"\nbot_token = \"1:x\"\nchat_id = 1\n\
             [[notify]]\nkind = \"email\"\npassword_file = \"/etc/doorbell/smtp\"\n",
        )
        .unwrap();
        assert_eq!(config.inline_secrets(), ["notify[0].bot_token"]);
    }

    #[test]
    fn a_world_readable_file_is_told_apart() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_others(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!readable_by_others(&path));
    }
}
