//! Configuration: `config.toml` (or `--config`/`CONFIDE_CONFIG`), overridden by
//! `CONFIDE__SECTION__KEY` environment variables. Unknown keys and wrong types are errors.
//!
//! The sections live in `server` (how HTTP is served: `[server]`, `[auth]`, `[limits]`,
//! `[log]`, `[metrics]`), `storage` (where data lives: `[database]`, `[storage]`,
//! `[search]`) and `messaging` (what leaves the server: `[mail]`, `[notifications]`,
//! `[sms]`); the checks a loaded configuration must pass are in `check`.

mod check;
mod messaging;
mod server;
mod storage;

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

pub use messaging::{MailConfig, MailTransport, NotificationsConfig, SmsConfig, SmtpTls};
pub use server::{AuthConfig, LimitsConfig, LogConfig, LogFormat, MetricsConfig, ServerConfig};
pub use storage::{
    AuditConfig, DatabaseConfig, EncryptionConfig, LiveConfig, S3Config, SearchConfig,
    StorageConfig,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub mail: MailConfig,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub sms: SmsConfig,
    #[serde(default)]
    pub search: SearchConfig,
    #[serde(default)]
    pub live: LiveConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub encryption: EncryptionConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

impl Config {
    /// Reads `path` (it may be missing only when it is the default `./config.toml`) and the
    /// environment. The error is one line naming the offending key.
    pub fn load(path: &Path, path_was_given: bool) -> Result<Self, String> {
        if path_was_given && !path.exists() {
            return Err(format!(
                "configuration file {} does not exist",
                path.display()
            ));
        }
        Self::from_figment(Figment::new().merge(Toml::file(path)))
    }

    /// Defaults plus the environment only (tests build on this).
    pub fn from_env() -> Result<Self, String> {
        Self::from_figment(Figment::new())
    }

    fn from_figment(figment: Figment) -> Result<Self, String> {
        let figment = figment.merge(Env::prefixed("CONFIDE__").split("__"));
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        config.check()?;
        Ok(config)
    }

    /// What `serve` needs beyond a valid file: links in emails carry tokens, so a server
    /// reachable from elsewhere must say where people reach it.
    pub fn check_for_serving(&self) -> Result<(), String> {
        if self.server.public_url.is_empty() && !self.server.bind.ip().is_loopback() {
            return Err(format!(
                "server.bind {} is reachable from other machines, so links in emails must name \
                 the address people use: set server.public_url (e.g. https://mail.example.org, \
                 or CONFIDE__SERVER__PUBLIC_URL)",
                self.server.bind
            ));
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.storage.data_dir.join("confide.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    // figment reports every error it found; the first is the one to fix.
    let error = error
        .into_iter()
        .next()
        .expect("figment errors are never empty");
    let key = error.path.join(".");
    let source = error
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(source) => format!(" (from {source})"),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    let kind = error.kind.to_string();
    let key = match &error.kind {
        figment::error::Kind::UnknownField(field, _) if key.is_empty() => field.clone(),
        figment::error::Kind::UnknownField(field, _) => format!("{key}.{field}"),
        _ => key,
    };
    if key.is_empty() {
        format!("invalid configuration: {kind}{source}")
    } else {
        format!("invalid configuration key {key}: {kind}{source}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err =
            Config::from_figment(Figment::new().merge(Toml::string("[server]\nbindd = \"x\"\n")))
                .unwrap_err();
        assert!(err.contains("server.bindd"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::from_figment(
            Figment::new().merge(Toml::string("[auth]\nsession_idle_minutes = \"soon\"\n")),
        )
        .unwrap_err();
        assert!(err.contains("auth.session_idle_minutes"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_named() {
        let err = Config::from_figment(
            Figment::new().merge(Toml::string("[auth]\nsession_max_hours = 9999999999999\n")),
        )
        .unwrap_err();
        assert!(err.contains("auth.session_max_hours"), "{err}");
    }

    #[test]
    fn a_bare_log_level_is_confides_own_and_others_warn() {
        let mut log = LogConfig::default();
        assert_eq!(log.filter(), "warn,confide=info");
        log.level = "debug".into();
        assert_eq!(log.filter(), "warn,confide=debug");
        log.level = "confide=trace,tantivy=info".into();
        assert_eq!(log.filter(), "confide=trace,tantivy=info");
    }

    #[test]
    fn sqlite_file_lives_in_the_data_dir_by_default() {
        let config = Config::default();
        assert_eq!(config.database_url(), "sqlite://data/confide.db");
    }
}

#[cfg(test)]
mod shipped_file {
    use super::*;

    /// The shipped config.toml states exactly the built-in defaults.
    #[test]
    fn config_toml_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let shipped: Config = Figment::new().merge(Toml::file(&path)).extract().unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{:?}", Config::default()));
    }
}
