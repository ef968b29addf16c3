//! The TOML config file shared by every subcommand: one table per subcommand (`[server]`,
//! `[agent]`, …). Each subcommand deserialises its own table with `deny_unknown_fields`;
//! [`check_tables`] refuses tables nobody reads, so a typo is an error naming the key.

use serde::de::DeserializeOwned;

/// Top-level tables of the config file. Add a subcommand's table here.
pub const TABLES: &[&str] = &["server", "agent", "demo"];

/// Arrays of tables (`[[notify]]`: one per notification channel).
pub const TABLE_ARRAYS: &[&str] = &["notify"];

/// Refuses a top-level key that is not one of [`TABLES`] or [`TABLE_ARRAYS`], or one of the
/// wrong shape.
pub fn check_tables(table: &toml::Table) -> Result<(), String> {
    for (key, value) in table {
        if TABLE_ARRAYS.contains(&key.as_str()) {
            let ok = value
                .as_array()
                .is_some_and(|items| items.iter().all(toml::Value::is_table));
            if !ok {
                return Err(format!(
                    "config: `{key}` must be one or more [[{key}]] tables"
                ));
            }
            continue;
        }
        if !TABLES.contains(&key.as_str()) {
            return Err(format!(
                "config: unknown key `{key}` (expected a table: {}, or [[notify]])",
                TABLES
                    .iter()
                    .map(|t| format!("[{t}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !value.is_table() {
            return Err(format!("config: `{key}` must be a table, [{key}]"));
        }
    }
    Ok(())
}

/// The `[[name]]` tables (empty when absent).
pub fn table_array(file: &toml::Table, name: &str) -> Vec<toml::Table> {
    file.get(name)
        .and_then(toml::Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_table().cloned()).collect())
        .unwrap_or_default()
}

/// The `[name]` table as `T` (its default when absent); errors name the table and the key.
pub fn table<T: DeserializeOwned + Default>(file: &toml::Table, name: &str) -> Result<T, String> {
    match file.get(name) {
        None => Ok(T::default()),
        Some(value) => value
            .clone()
            .try_into()
            .map_err(|e| format!("config [{name}]: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_cmd::ServerFile;

    #[test]
    fn unknown_top_level_keys_are_named() {
        let file: toml::Table = "[sever]\nlisten = \"1.2.3.4:5\"".parse().unwrap();
        let err = check_tables(&file).unwrap_err();
        assert!(err.contains("`sever`"), "{err}");
        let file: toml::Table = "server = 3".parse().unwrap();
        assert!(check_tables(&file).is_err());
        let file: toml::Table = "[server]\n[agent]".parse().unwrap();
        assert!(check_tables(&file).is_ok());
        let file: toml::Table = "[[notify]]\nkind = \"console\"".parse().unwrap();
        assert!(check_tables(&file).is_ok());
        let file: toml::Table = "[notify]\nkind = \"console\"".parse().unwrap();
        assert!(check_tables(&file).unwrap_err().contains("[[notify]]"));
    }

    #[test]
    fn unknown_keys_in_a_table_are_named() {
        let file: toml::Table = "[server]\nopen-room = true".parse().unwrap();
        let err = table::<ServerFile>(&file, "server").unwrap_err();
        assert!(
            err.contains("[server]") && err.contains("open-room"),
            "{err}"
        );
        let empty = toml::Table::new();
        assert!(
            table::<ServerFile>(&empty, "server")
                .unwrap()
                .listen
                .is_none()
        );
    }
}
