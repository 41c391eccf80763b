//! The sections on where data lives: `[database]`, `[storage]` (with `[storage.s3]`) and
//! the search index's `[search]`.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`. Empty: `confide.db` in `storage.data_dir`.
    pub url: String,
    pub max_connections: u32,
    /// How long SQLite waits for a lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Whether sends, replies and audited reads that arrive together commit together (one
    /// transaction, one sync), each still checked alone and answered after the commit.
    /// SQLite only: on PostgreSQL each write keeps a transaction of its own.
    pub group_commit: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 10,
            busy_timeout_ms: 10_000,
            group_commit: true,
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

/// Live updates and sync (`/changes`, the event streams).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// How often each node looks at the event log when nothing told it to, in
    /// milliseconds (a poke from this node or a PostgreSQL notification wakes it at once).
    pub poll_interval_ms: u64,
    /// A comment on every open stream this often, in seconds, so that proxies keep it.
    pub keep_alive_secs: u64,
    /// How long `/changes` can look back, in days; an older state answers 410.
    pub changes_retention_days: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            keep_alive_secs: 25,
            changes_retention_days: 30,
        }
    }
}

/// The audit log's anchor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How often each node writes the chain's head to its log and to `/metrics`, in
    /// minutes: copied elsewhere, it proves later that history was not rewritten.
    pub anchor_interval_minutes: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            anchor_interval_minutes: 60,
        }
    }
}

/// Encryption at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// Off only to measure what encryption costs; a database whose content is sealed
    /// refuses to start with it off.
    pub enabled: bool,
    /// The key-encryption key's file (64 hexadecimal digits). Empty: `confide.key` in the
    /// data directory, made (0600) on first start.
    pub key_file: PathBuf,
    /// The key itself, 64 hexadecimal digits; best given as CONFIDE__ENCRYPTION__KEY.
    /// Wins over `key_file`.
    pub key: super::server::SecretString,
    /// How often each node reads the practices' data keys again, in seconds: a new
    /// generation made by `confide keys rekey` is used by every node within this time.
    pub refresh_seconds: u64,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key_file: PathBuf::new(),
            key: Default::default(),
            refresh_seconds: 60,
        }
    }
}
