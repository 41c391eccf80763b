//! Configuration: `config.toml` (or `--config`/`CONFIDE_CONFIG`), overridden by
//! `CONFIDE__SECTION__KEY` environment variables. Unknown keys and wrong types are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

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
    pub metrics: MetricsConfig,
}

/// Who may read `/metrics`, and where.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token `/metrics` requires. Empty: only requests from this machine
    /// (loopback, not forwarded by a proxy) are answered.
    pub token: String,
    /// Serve metrics on this address (e.g. `127.0.0.1:9090`) instead of the main one.
    /// Empty: on the main address.
    pub bind: String,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &if self.token.is_empty() { "" } else { "(set)" })
            .field("bind", &self.bind)
            .finish()
    }
}

/// The search index writer's pace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// New messages become searchable within about this many milliseconds (at most 1000).
    pub commit_interval_ms: u64,
    /// How often the indexer looks at the event log, in milliseconds.
    pub poll_interval_ms: u64,
    /// Memory the index writer may use, in MiB.
    pub writer_memory_mb: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            commit_interval_ms: 500,
            poll_interval_ms: 100,
            writer_memory_mb: 64,
        }
    }
}

/// How email leaves: `.eml` files under `<data_dir>/outbox/` (the default, no mail server
/// needed) or SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The sender of every email.
    pub from: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "(set)"
                },
            )
            .finish()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Confide <no-reply@confide.invalid>".into(),
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            user: String::new(),
            password: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// At most one new-message notification per person per this many minutes while they
    /// have unread messages.
    pub coalesce_minutes: i64,
    /// A notification is sent this many seconds after its message at the earliest.
    pub delay_seconds: i64,
    /// Attempts before a notification is given up (with back-off between them).
    pub max_attempts: i64,
    /// How often the worker looks for due notifications, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            coalesce_minutes: 10,
            delay_seconds: 0,
            max_attempts: 10,
            poll_interval_ms: 1000,
        }
    }
}

/// An optional HTTP gateway for text messages: it receives a JSON POST
/// `{"to", "from", "text"}` with the configured Authorization header.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Empty: no text messages are sent.
    pub url: String,
    pub authorization: String,
    pub from: String,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &if self.url.is_empty() { "" } else { "(set)" })
            .field(
                "authorization",
                &if self.authorization.is_empty() {
                    ""
                } else {
                    "(set)"
                },
            )
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The address people use to reach this server; links in emails and the console use it.
    /// Empty: derived from `bind`.
    pub public_url: String,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// A connection must send a whole request head within this many seconds; the same
    /// bound closes a kept-alive connection that sends nothing.
    pub header_read_timeout_secs: u64,
    /// A request (reading its body and answering it) must finish within this many seconds;
    /// streamed uploads are bounded by `body_idle_timeout_secs` instead.
    pub request_timeout_secs: u64,
    /// A streamed upload that sends nothing for this many seconds is cut off.
    pub body_idle_timeout_secs: u64,
    /// Connections open at once; more wait until one closes.
    pub max_connections: usize,
    /// Connections open at once from one client address; more are closed at once. Not
    /// applied with `trust_forwarded_for` (every connection then comes from the proxy).
    pub max_connections_per_address: usize,
    /// A response the client reads nothing of for this many seconds is cut off.
    pub send_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            trust_forwarded_for: false,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            body_idle_timeout_secs: 30,
            max_connections: 1024,
            max_connections_per_address: 128,
            send_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`. Empty: `confide.db` in `storage.data_dir`.
    pub url: String,
    pub max_connections: u32,
    /// How long SQLite waits for a lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 10,
            busy_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Holds the SQLite file, attachments, the search index and the mail outbox.
    pub data_dir: PathBuf,
    /// Where attachment bytes go: empty for `<data_dir>/attachments`, or
    /// `s3://bucket/prefix` for an S3-compatible object store (see `storage.s3`).
    pub attachments: String,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            attachments: String::new(),
            s3: S3Config::default(),
        }
    }
}

/// How to reach the object store named by `storage.attachments = "s3://…"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Empty: AWS itself; otherwise the store's URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (a store on the same host or network).
    pub allow_http: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &if self.secret_access_key.is_empty() {
                    ""
                } else {
                    "(set)"
                },
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_idle_minutes: i64,
    pub session_max_hours: i64,
    /// Password hashes computed at once; each takes ~19 MiB and a core for a moment.
    pub max_concurrent_hashes: usize,
    pub failure_window_minutes: i64,
    pub max_failures_per_account: i64,
    pub max_failures_per_address: i64,
    /// A device (browser or API client) that signed in successfully is remembered this many
    /// days: it keeps its own count of failed sign-ins, so guesses from elsewhere cannot
    /// lock the person out of it.
    pub trusted_device_days: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_max_hours: 12,
            max_concurrent_hashes: 2,
            failure_window_minutes: 15,
            max_failures_per_account: 5,
            max_failures_per_address: 50,
            trusted_device_days: 90,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body accepted (and any other body but forms and uploads), in bytes.
    pub json_body_max_bytes: usize,
    /// Largest HTML form body accepted, in bytes.
    pub form_body_max_bytes: usize,
    /// Longest message body accepted, in characters of Markdown.
    pub body_max_chars: usize,
    /// Largest attachment accepted, in bytes.
    pub attachment_max_bytes: u64,
    /// Files accepted in one upload request.
    pub attachments_per_upload: usize,
    /// The kinds of file accepted, decided by their content: any of pdf, doc, docx, txt,
    /// rtf, csv, jpeg, png, gif, bmp, heic.
    pub attachment_types: Vec<String>,
    /// A pending upload that no message or draft uses is removed after this many hours.
    pub pending_attachment_hours: i64,
    /// Bytes of unsent uploads one person may hold at once.
    pub pending_upload_max_bytes: u64,
    /// Files one person may upload per hour.
    pub uploads_per_hour: i64,
    /// Drafts one person may keep.
    pub drafts_per_person: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            json_body_max_bytes: 1024 * 1024,
            form_body_max_bytes: 64 * 1024,
            body_max_chars: 100_000,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachments_per_upload: 20,
            attachment_types: crate::domain::attachments::Kind::ALL
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            pending_attachment_hours: 24,
            pending_upload_max_bytes: 200 * 1024 * 1024,
            uploads_per_hour: 200,
            drafts_per_person: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Confide's own level (`info`, `debug`…; other crates log warnings and errors only), or
    /// a whole tracing filter such as `confide=debug,tantivy=info,warn`. `RUST_LOG` wins.
    pub level: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogConfig {
    /// The tracing filter `level` stands for: a bare level is Confide's own, with every
    /// other crate at `warn` (tantivy, for one, reports each commit at info).
    pub fn filter(&self) -> String {
        let level = self.level.trim();
        if level.contains('=') || level.contains(',') {
            level.to_string()
        } else {
            format!("warn,confide={level}")
        }
    }
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

    fn check(&self) -> Result<(), String> {
        let a = &self.auth;
        // Bounded so that every derived duration stays far from overflow.
        let s = &self.server;
        let ranges: [(&str, i64, i64, i64); 27] = [
            (
                "server.max_connections_per_address",
                s.max_connections_per_address.min(i64::MAX as usize) as i64,
                1,
                1_000_000,
            ),
            (
                "server.send_timeout_secs",
                s.send_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                600,
            ),
            (
                "server.request_timeout_secs",
                s.request_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.body_idle_timeout_secs",
                s.body_idle_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.max_connections",
                s.max_connections.min(i64::MAX as usize) as i64,
                1,
                1_000_000,
            ),
            ("auth.trusted_device_days", a.trusted_device_days, 1, 3650),
            (
                "limits.form_body_max_bytes",
                self.limits.form_body_max_bytes.min(i64::MAX as usize) as i64,
                1024,
                64 << 20,
            ),
            (
                "limits.pending_upload_max_bytes",
                self.limits.pending_upload_max_bytes.min(i64::MAX as u64) as i64,
                1,
                1 << 40,
            ),
            (
                "limits.uploads_per_hour",
                self.limits.uploads_per_hour,
                1,
                1_000_000,
            ),
            (
                "limits.drafts_per_person",
                self.limits.drafts_per_person,
                1,
                1_000_000,
            ),
            (
                "notifications.coalesce_minutes",
                self.notifications.coalesce_minutes,
                0,
                24 * 60,
            ),
            (
                "notifications.delay_seconds",
                self.notifications.delay_seconds,
                0,
                24 * 3600,
            ),
            (
                "notifications.max_attempts",
                self.notifications.max_attempts,
                1,
                100,
            ),
            (
                "auth.session_idle_minutes",
                a.session_idle_minutes,
                1,
                7 * 24 * 60,
            ),
            ("auth.session_max_hours", a.session_max_hours, 1, 24 * 365),
            (
                "auth.failure_window_minutes",
                a.failure_window_minutes,
                1,
                7 * 24 * 60,
            ),
            (
                "auth.max_failures_per_account",
                a.max_failures_per_account,
                1,
                1_000_000,
            ),
            (
                "auth.max_failures_per_address",
                a.max_failures_per_address,
                1,
                1_000_000,
            ),
            (
                "auth.max_concurrent_hashes",
                a.max_concurrent_hashes as i64,
                1,
                256,
            ),
            (
                "database.max_connections",
                self.database.max_connections as i64,
                1,
                1000,
            ),
            (
                "database.busy_timeout_ms",
                self.database.busy_timeout_ms as i64,
                1,
                600_000,
            ),
            (
                "limits.json_body_max_bytes",
                self.limits.json_body_max_bytes as i64,
                1024,
                64 << 20,
            ),
            (
                "limits.body_max_chars",
                self.limits.body_max_chars as i64,
                10,
                1_000_000,
            ),
            (
                "limits.attachment_max_bytes",
                self.limits.attachment_max_bytes.min(i64::MAX as u64) as i64,
                1,
                1 << 30,
            ),
            (
                "limits.attachments_per_upload",
                self.limits.attachments_per_upload as i64,
                1,
                1000,
            ),
            (
                "limits.pending_attachment_hours",
                self.limits.pending_attachment_hours,
                1,
                24 * 365,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "configuration key {key} must be between {min} and {max}, not {value}"
                ));
            }
        }
        if !(10..=1000).contains(&self.search.commit_interval_ms) {
            return Err(
                "configuration key search.commit_interval_ms must be between 10 and 1000".into(),
            );
        }
        if !(10..=1000).contains(&self.search.poll_interval_ms) {
            return Err(
                "configuration key search.poll_interval_ms must be between 10 and 1000".into(),
            );
        }
        if !(16..=4096).contains(&self.search.writer_memory_mb) {
            return Err(
                "configuration key search.writer_memory_mb must be between 16 and 4096".into(),
            );
        }
        if !(10..=60_000).contains(&self.notifications.poll_interval_ms) {
            return Err(
                "configuration key notifications.poll_interval_ms must be between 10 and 60000"
                    .into(),
            );
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "configuration key mail.from is not an email address: {:?}",
                self.mail.from
            ));
        }
        if !self.sms.url.is_empty()
            && !self.sms.url.starts_with("http://")
            && !self.sms.url.starts_with("https://")
        {
            return Err("configuration key sms.url must start with http:// or https://".into());
        }
        for kind in &self.limits.attachment_types {
            if crate::domain::attachments::Kind::parse(kind).is_none() {
                return Err(format!(
                    "configuration key limits.attachment_types: unknown type {kind:?} (known: {})",
                    crate::domain::attachments::Kind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !self.storage.attachments.is_empty() {
            crate::blobs::parse_s3_url(&self.storage.attachments)
                .map_err(|e| format!("configuration key storage.attachments: {e}"))?;
        }
        let url = &self.server.public_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(
                "configuration key server.public_url must start with http:// or https://".into(),
            );
        }
        if !self.metrics.bind.is_empty() && self.metrics.bind.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "configuration key metrics.bind is not an address such as 127.0.0.1:9090: {:?}",
                self.metrics.bind
            ));
        }
        Ok(())
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
