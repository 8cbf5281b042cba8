//! Where each setting comes from. Highest first: command-line flags, the
//! `CLM_*` environment variables (the library's own, read by
//! `ClmConfig::from_vars`, plus the CLI's `CLM_API_KEY_FILE`, `CLM_OUTPUT`,
//! `CLM_CONFIG` and `CLM_CONFIG_DIR`), the `clm.toml` file (`--config`,
//! `CLM_CONFIG`, or `./clm.toml` when present), then defaults.
//!
//! The store's location and the master key are each taken whole from the
//! highest layer that names them: `--data-dir` beats PostgreSQL URLs in the
//! environment, `--master-key-file` beats `CLM_MASTER_KEY`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clm::ClmConfig;

use crate::error::{CliResult, invalid};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Built in.
    Default,
    /// The `clm.toml` file.
    File,
    /// A `CLM_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl Source {
    /// The name `clm config show` prints.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

/// One setting: its `clm.toml` key, its environment variable, and whether
/// its value is secret (never printed).
struct Key {
    name: &'static str,
    env: &'static str,
    secret: bool,
    /// Read by the library (`ClmConfig::from_vars`), not by the CLI only.
    library: bool,
    /// Allowed in `clm.toml` (the master key itself is not: keep it in a file).
    in_file: bool,
}

const fn key(name: &'static str, env: &'static str) -> Key {
    Key {
        name,
        env,
        secret: false,
        library: true,
        in_file: true,
    }
}

/// Every setting. The library's variables are those of
/// `clm::config` (its module documentation lists them).
const KEYS: &[Key] = &[
    key("data_dir", "CLM_DATA_DIR"),
    Key {
        secret: true,
        ..key("secure_url", "CLM_SECURE_DATABASE_URL")
    },
    Key {
        secret: true,
        ..key("core_url", "CLM_CORE_DATABASE_URL")
    },
    Key {
        secret: true,
        ..key("secure_replica_url", "CLM_SECURE_REPLICA_URL")
    },
    Key {
        secret: true,
        ..key("core_replica_url", "CLM_CORE_REPLICA_URL")
    },
    key("database_sslmode", "CLM_DATABASE_SSLMODE"),
    key("database_sslrootcert", "CLM_DATABASE_SSLROOTCERT"),
    key("database_sslcert", "CLM_DATABASE_SSLCERT"),
    key("database_sslkey", "CLM_DATABASE_SSLKEY"),
    key("master_key_file", "CLM_MASTER_KEY_FILE"),
    Key {
        secret: true,
        in_file: false,
        ..key("master_key", "CLM_MASTER_KEY")
    },
    key("max_connections", "CLM_MAX_CONNECTIONS"),
    key("cache_ttl_ms", "CLM_CACHE_TTL_MS"),
    key("ocsp_sign_with_ca_key", "CLM_OCSP_SIGN_WITH_CA_KEY"),
    key("public_base_url", "CLM_PUBLIC_BASE_URL"),
    key("slow_statement_ms", "CLM_SLOW_STATEMENT_MS"),
    key("audit_retention_days", "CLM_AUDIT_RETENTION_DAYS"),
    key("audit_archive_dir", "CLM_AUDIT_ARCHIVE_DIR"),
    Key {
        library: false,
        ..key("api_key_file", "CLM_API_KEY_FILE")
    },
    Key {
        library: false,
        ..key("output", "CLM_OUTPUT")
    },
];

/// Settings that say where the store is: taken from one layer only.
const LOCATION: &[&str] = &[
    "data_dir",
    "secure_url",
    "core_url",
    "secure_replica_url",
    "core_replica_url",
];
/// Settings that give the master key: taken from one layer only.
const MASTER_KEY: &[&str] = &["master_key", "master_key_file"];

/// One resolved value and its source.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The value as text (as an environment variable would hold it).
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// The values the flags give (None: not given).
#[derive(Debug, Default, Clone)]
pub struct FlagValues {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--secure-url`.
    pub secure_url: Option<String>,
    /// `--core-url`.
    pub core_url: Option<String>,
    /// `--master-key-file`.
    pub master_key_file: Option<PathBuf>,
    /// `--api-key-file`.
    pub api_key_file: Option<PathBuf>,
    /// `--output`.
    pub output: Option<String>,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, Setting>,
    /// The `clm.toml` read, if any.
    pub config_file: Option<PathBuf>,
    /// Where the session token lives (`CLM_CONFIG_DIR`, else
    /// `$XDG_CONFIG_HOME/clm`, else `~/.config/clm`).
    pub config_dir: PathBuf,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl Settings {
    /// Resolves the settings from the flags and the process environment.
    pub fn resolve(flags: &FlagValues) -> CliResult<Settings> {
        Self::resolve_with(flags, |name| non_empty(std::env::var(name).ok()))
    }

    /// [`Settings::resolve`] over any environment (testable without
    /// touching the process's).
    pub fn resolve_with(
        flags: &FlagValues,
        env: impl Fn(&str) -> Option<String>,
    ) -> CliResult<Settings> {
        let mut layers: Vec<(Source, BTreeMap<&'static str, String>)> = Vec::new();

        let mut flag_layer = BTreeMap::new();
        let flag_pairs: [(&'static str, Option<String>); 6] = [
            ("data_dir", flags.data_dir.as_deref().map(path_text)),
            ("secure_url", flags.secure_url.clone()),
            ("core_url", flags.core_url.clone()),
            (
                "master_key_file",
                flags.master_key_file.as_deref().map(path_text),
            ),
            ("api_key_file", flags.api_key_file.as_deref().map(path_text)),
            ("output", flags.output.clone()),
        ];
        for (name, value) in flag_pairs {
            if let Some(value) = non_empty(value) {
                flag_layer.insert(name, value);
            }
        }

        let mut env_layer = BTreeMap::new();
        for key in KEYS {
            if let Some(value) = env(key.env) {
                env_layer.insert(key.name, value);
            }
        }

        let config_file = match (&flags.config, env("CLM_CONFIG")) {
            (Some(path), _) => Some((path.clone(), true)),
            (None, Some(path)) => Some((PathBuf::from(path), true)),
            (None, None) => {
                let local = PathBuf::from("clm.toml");
                local.is_file().then_some((local, false))
            }
        };
        let file_layer = match &config_file {
            Some((path, _)) => read_config_file(path)?,
            None => BTreeMap::new(),
        };

        layers.push((Source::Flag, flag_layer));
        layers.push((Source::Env, env_layer));
        layers.push((Source::File, file_layer));

        // The location and the master key come whole from one layer.
        for group in [LOCATION, MASTER_KEY] {
            let owner = layers
                .iter()
                .position(|(_, layer)| group.iter().any(|name| layer.contains_key(name)));
            if let Some(owner) = owner {
                for (index, (_, layer)) in layers.iter_mut().enumerate() {
                    if index != owner {
                        layer.retain(|name, _| !group.contains(name));
                    }
                }
            }
        }

        let mut values: BTreeMap<&'static str, Setting> = BTreeMap::new();
        for (source, layer) in layers.into_iter().rev() {
            for (name, value) in layer {
                values.insert(
                    name,
                    Setting {
                        value,
                        source: source.clone(),
                    },
                );
            }
        }

        let home = env("HOME").map(PathBuf::from);
        let postgres = values.contains_key("secure_url") || values.contains_key("core_url");
        if !postgres && !values.contains_key("data_dir") {
            let data_home = env("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".local/share")));
            if let Some(data_home) = data_home {
                values.insert(
                    "data_dir",
                    Setting {
                        value: path_text(&data_home.join("clm")),
                        source: Source::Default,
                    },
                );
            }
        }
        if !postgres
            && !values.contains_key("master_key")
            && !values.contains_key("master_key_file")
            && let Some(dir) = values.get("data_dir")
        {
            let file = Path::new(&dir.value).join("master.key");
            values.insert(
                "master_key_file",
                Setting {
                    value: path_text(&file),
                    source: Source::Default,
                },
            );
        }
        if !values.contains_key("output") {
            values.insert(
                "output",
                Setting {
                    value: "auto".into(),
                    source: Source::Default,
                },
            );
        }

        let config_dir = env("CLM_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| env("XDG_CONFIG_HOME").map(|dir| PathBuf::from(dir).join("clm")))
            .or_else(|| home.map(|home| home.join(".config/clm")))
            .ok_or_else(|| {
                invalid(
                    "CLM_CONFIG_DIR",
                    "no configuration directory: set CLM_CONFIG_DIR or HOME",
                )
            })?;

        Ok(Settings {
            values,
            config_file: config_file.map(|(path, _)| path),
            config_dir,
        })
    }

    /// A setting's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|setting| setting.value.as_str())
    }

    /// A setting with its source.
    #[cfg(test)]
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.values.get(name)
    }

    /// Every setting for `clm config show`: name, environment variable,
    /// value (secrets redacted) and source.
    pub fn rows(&self) -> Vec<serde_json::Value> {
        KEYS.iter()
            .filter_map(|key| {
                self.values.get(key.name).map(|setting| {
                    let value = if key.secret {
                        "[redacted]".to_string()
                    } else {
                        setting.value.clone()
                    };
                    serde_json::json!({
                        "setting": key.name,
                        "variable": key.env,
                        "value": value,
                        "source": setting.source.name(),
                    })
                })
            })
            .collect()
    }

    /// Whether the store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.values.contains_key("secure_url") || self.values.contains_key("core_url")
    }

    /// The master key file, when the master key comes from one.
    pub fn master_key_file(&self) -> Option<PathBuf> {
        if self.values.contains_key("master_key") {
            return None;
        }
        self.get("master_key_file").map(PathBuf::from)
    }

    /// The library's configuration: the library's own parser reads the
    /// resolved values as it would read its environment variables.
    pub fn clm_config(&self) -> CliResult<ClmConfig> {
        let by_env: BTreeMap<&str, &str> = KEYS
            .iter()
            .filter(|key| key.library)
            .filter_map(|key| self.get(key.name).map(|value| (key.env, value)))
            .collect();
        Ok(ClmConfig::from_vars(|name| {
            by_env.get(name).map(|value| value.to_string())
        })?)
    }

    /// Names the store for the session file: the data directory, or the
    /// secure database's URL without its user information.
    pub fn store_label(&self) -> String {
        match self.get("secure_url") {
            Some(url) => strip_user_info(url),
            None => {
                let dir = self.get("data_dir").unwrap_or_default();
                std::fs::canonicalize(dir)
                    .map(|path| path_text(&path))
                    .unwrap_or_else(|_| dir.to_string())
            }
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://host/db`.
pub fn strip_user_info(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Reads `clm.toml`: a flat table of the keys above (strings, numbers or
/// booleans). An unknown key, a nested table or the master key itself is
/// refused by name.
fn read_config_file(path: &Path) -> CliResult<BTreeMap<&'static str, String>> {
    let field = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|err| invalid(&field, format!("cannot read the configuration file: {err}")))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|err| invalid(&field, format!("is not valid TOML: {err}")))?;
    let mut values = BTreeMap::new();
    for (name, value) in table {
        let Some(key) = KEYS.iter().find(|key| key.name == name) else {
            let known: Vec<&str> = KEYS
                .iter()
                .filter(|key| key.in_file)
                .map(|key| key.name)
                .collect();
            return Err(invalid(
                format!("{field}: {name}"),
                format!("is not a setting (known: {})", known.join(", ")),
            ));
        };
        if !key.in_file {
            return Err(invalid(
                format!("{field}: {name}"),
                "the master key does not belong in clm.toml: give master_key_file",
            ));
        }
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(invalid(
                    format!("{field}: {name}"),
                    format!(
                        "must be a string, a number or a boolean, not {}",
                        other.type_str()
                    ),
                ));
            }
        };
        values.insert(key.name, text);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clm.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let (_dir, path) =
            file("data_dir = \"/from/file\"\nmax_connections = 3\noutput = \"yaml\"\n");
        let flags = FlagValues {
            config: Some(path),
            ..FlagValues::default()
        };
        let base = [("HOME", "/home/op")];
        let settings = Settings::resolve_with(&flags, env(&base)).unwrap();
        assert_eq!(settings.get("data_dir"), Some("/from/file"));
        assert_eq!(settings.setting("data_dir").unwrap().source, Source::File);
        assert_eq!(settings.get("max_connections"), Some("3"));
        assert_eq!(
            settings.get("master_key_file"),
            Some("/from/file/master.key")
        );
        assert_eq!(
            settings.setting("master_key_file").unwrap().source,
            Source::Default
        );

        let with_env = [
            ("HOME", "/home/op"),
            ("CLM_DATA_DIR", "/from/env"),
            ("CLM_OUTPUT", "json"),
        ];
        let settings = Settings::resolve_with(&flags, env(&with_env)).unwrap();
        assert_eq!(settings.get("data_dir"), Some("/from/env"));
        assert_eq!(settings.get("output"), Some("json"));
        assert_eq!(settings.get("max_connections"), Some("3"));

        let flags = FlagValues {
            data_dir: Some("/from/flag".into()),
            ..flags
        };
        let settings = Settings::resolve_with(&flags, env(&with_env)).unwrap();
        assert_eq!(settings.get("data_dir"), Some("/from/flag"));
        assert_eq!(settings.setting("data_dir").unwrap().source, Source::Flag);

        let settings = Settings::resolve_with(&FlagValues::default(), env(&base)).unwrap();
        assert_eq!(settings.get("data_dir"), Some("/home/op/.local/share/clm"));
        assert_eq!(settings.get("output"), Some("auto"));
        assert_eq!(settings.config_dir, PathBuf::from("/home/op/.config/clm"));
    }

    #[test]
    fn the_location_and_the_master_key_come_whole_from_one_layer() {
        let vars = [
            ("HOME", "/home/op"),
            ("CLM_SECURE_DATABASE_URL", "postgres://u:pw@db/s"),
            ("CLM_CORE_DATABASE_URL", "postgres://u:pw@db/c"),
            ("CLM_MASTER_KEY", "c2VjcmV0"),
        ];
        let settings = Settings::resolve_with(&FlagValues::default(), env(&vars)).unwrap();
        assert!(settings.is_postgres());
        assert_eq!(settings.master_key_file(), None);
        assert_eq!(settings.store_label(), "postgres://db/s");

        let flags = FlagValues {
            data_dir: Some("/srv/clm".into()),
            master_key_file: Some("/srv/clm.key".into()),
            ..FlagValues::default()
        };
        let settings = Settings::resolve_with(&flags, env(&vars)).unwrap();
        assert!(!settings.is_postgres(), "--data-dir wins over the URLs");
        assert_eq!(
            settings.master_key_file(),
            Some(PathBuf::from("/srv/clm.key"))
        );
        let config = settings.clm_config().unwrap();
        assert!(matches!(
            config.database,
            clm::db::DatabaseConfig::Sqlite { .. }
        ));
        assert!(matches!(
            config.master_key,
            Some(clm::MasterKeySource::File(_))
        ));
    }

    #[test]
    fn secrets_never_show_and_bad_files_are_named() {
        let vars = [
            ("HOME", "/home/op"),
            ("CLM_SECURE_DATABASE_URL", "postgres://u:pw@db/s"),
            ("CLM_CORE_DATABASE_URL", "postgres://u:pw@db/c"),
        ];
        let settings = Settings::resolve_with(&FlagValues::default(), env(&vars)).unwrap();
        let shown = serde_json::to_string(&settings.rows()).unwrap();
        assert!(!shown.contains("pw"), "{shown}");

        for (text, named) in [
            ("colour = \"red\"\n", "colour"),
            ("master_key = \"c2VjcmV0\"\n", "master_key"),
            ("data_dir = [1]\n", "data_dir"),
            ("data_dir = \n", "TOML"),
        ] {
            let (_dir, path) = file(text);
            let flags = FlagValues {
                config: Some(path),
                ..FlagValues::default()
            };
            let err = Settings::resolve_with(&flags, env(&vars)).unwrap_err();
            let crate::error::CliError::Clm(err) = err else {
                panic!("not a clm error")
            };
            assert!(err.to_string().contains(named), "{text}: {err}");
        }
        let flags = FlagValues {
            config: Some("/nonexistent/clm.toml".into()),
            ..FlagValues::default()
        };
        assert!(Settings::resolve_with(&flags, env(&vars)).is_err());
    }
}
