//! The only place with SQL. One SQL text per query serves both backends through sqlx's
//! `Any` driver: times are Unix milliseconds, flags are 0/1 integers, ids are text.

pub mod attachments;
pub mod audit;
mod chain;
pub mod changes;
pub mod chart_notes;
pub mod conversations;
pub mod devices;
pub mod drafts;
pub mod events;
pub mod folders;
mod group;
pub mod idempotency;
pub mod keys;
pub mod leases;
pub mod legal_holds;
pub mod messages;
pub mod notifications;
pub mod people;
pub mod practices;
pub mod sealing;
pub mod search;
pub mod server_keys;
pub mod sessions;
pub mod sign_in_attempts;
pub mod teams;
pub mod threads;
pub mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Row, Transaction};

pub type Conn = sqlx::AnyConnection;
pub type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connection pools for one database. On SQLite every write goes through one connection
/// (SQLite admits one writer anyway) and begins `IMMEDIATE`, so concurrent writers queue
/// instead of failing with "database is locked"; reads use the other pool in parallel.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    reader: AnyPool,
    writer: AnyPool,
    /// Where [`Store::grouped`] writes go; `None`: each in a transaction of its own.
    group: Option<group::GroupCommit>,
    /// PostgreSQL's group commit of the audit chain (see [`chain`]); `None`: each write
    /// chains its own events.
    chainer: Option<chain::Chainer>,
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connects, sets and checks the SQLite pragmas, and applies the migrations.
    pub async fn open(
        url: &str,
        max_connections: u32,
        busy_timeout_ms: u64,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            bail!("database.url must start with sqlite:// or postgres://");
        };
        let store = match backend {
            Backend::Sqlite => Self::open_sqlite(url, max_connections, busy_timeout_ms).await?,
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)
                    .context("database.url is not a valid PostgreSQL URL")?
                    .disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .context("cannot connect to the PostgreSQL database in database.url")?;
                Store {
                    backend,
                    reader: pool.clone(),
                    writer: pool,
                    group: None,
                    chainer: None,
                }
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the SQLite file `url` names (creating it and its directory if need be) with
    /// one writer connection and `max_connections` readers, and checks their pragmas.
    async fn open_sqlite(
        url: &str,
        max_connections: u32,
        busy_timeout_ms: u64,
    ) -> anyhow::Result<Self> {
        let path = sqlite_path(url)?;
        if let Some(parent) = Path::new(&path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the directory {}", parent.display()))?;
        }
        let url = with_create_mode(url);
        let options = AnyConnectOptions::from_str(&url)
            .context("database.url is not a valid SQLite URL")?
            .disable_statement_logging();
        let writer = sqlite_pool(&options, 1, busy_timeout_ms)
            .await
            .with_context(|| format!("cannot open the SQLite database {path}"))?;
        let reader = sqlite_pool(&options, max_connections, busy_timeout_ms)
            .await
            .with_context(|| format!("cannot open the SQLite database {path}"))?;
        let store = Store {
            backend: Backend::Sqlite,
            reader,
            writer,
            group: None,
            chainer: None,
        };
        store.check_sqlite_pragmas(busy_timeout_ms).await?;
        Ok(store)
    }

    /// sqlx sets none of these by default; a database that silently runs without them
    /// loses data or integrity, so start-up refuses it.
    async fn check_sqlite_pragmas(&self, busy_timeout_ms: u64) -> anyhow::Result<()> {
        for pool in [&self.writer, &self.reader] {
            let mut conn = pool.acquire().await?;
            let journal: String = sqlx::query("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let synchronous: i64 = sqlx::query("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let busy: i64 = sqlx::query("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            if !journal.eq_ignore_ascii_case("wal") {
                bail!("SQLite refused WAL mode (journal_mode is {journal}); put storage.data_dir on a local disk");
            }
            if synchronous != 2 {
                bail!("SQLite synchronous is {synchronous}, expected FULL (2)");
            }
            if foreign_keys != 1 {
                bail!("SQLite foreign keys are off");
            }
            if busy != busy_timeout_ms as i64 {
                bail!("SQLite busy_timeout is {busy}, expected {busy_timeout_ms}");
            }
        }
        Ok(())
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATE_SQLITE,
            Backend::Postgres => &MIGRATE_POSTGRES,
        };
        migrator
            .run(&self.writer)
            .await
            .context("applying database migrations")?;
        Ok(())
    }

    /// The same store with group commit on (the server's; the command line's writes
    /// stay alone). On SQLite, [`Store::grouped`] writes that arrive together commit
    /// together; on PostgreSQL, where they commit in parallel, their audit events are
    /// chained together (see [`chain`]).
    pub fn with_group_commit(mut self) -> Self {
        match self.backend {
            Backend::Sqlite => self.group = Some(group::GroupCommit::start(self.clone())),
            Backend::Postgres => self.chainer = Some(chain::Chainer::start(self.clone())),
        }
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for reading.
    pub async fn read(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.reader.acquire().await
    }

    /// A connection for a single writing statement.
    pub async fn write(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.writer.acquire().await
    }

    /// A write transaction; on SQLite it takes the write lock at once.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        match self.reader.acquire().await {
            Ok(mut conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
            Err(_) => false,
        }
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Whether a database error is the violation of the named unique constraint.
/// PostgreSQL names the constraint; SQLite names the columns in its message.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str, sqlite_columns: &str) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.kind() == sqlx::error::ErrorKind::UniqueViolation
                && (db.constraint() == Some(constraint) || db.message().contains(sqlite_columns))
        }
        _ => false,
    }
}

/// The file a `sqlite:` URL names; an in-memory database is refused, as it is not durable.
fn sqlite_path(url: &str) -> anyhow::Result<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    if path.is_empty() || path == ":memory:" {
        bail!("database.url must name a SQLite file: an in-memory database is not durable");
    }
    Ok(path)
}

/// `url` with `mode=rwc` (create the file if missing) unless it names a mode itself.
fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// A pool of up to `max` SQLite connections, each of which sets the pragmas Confide
/// relies on (busy timeout, WAL, full sync, foreign keys) as it connects.
async fn sqlite_pool(
    options: &AnyConnectOptions,
    max: u32,
    busy_timeout_ms: u64,
) -> Result<AnyPool, sqlx::Error> {
    let pragmas = format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
    );
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                conn.execute(pragmas.as_str()).await?;
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await
}

/// `$start, $start+1, …` for an IN list of `n` values.
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` FOR SHARE` on PostgreSQL, where a read inside a transaction must lock the rows a
/// write depends on (a concurrent change waits for the commit, or is seen). On SQLite a
/// writing transaction (`BEGIN IMMEDIATE`) already excludes every other writer.
pub fn share_lock(conn: &Conn) -> &'static str {
    if conn.backend_name() == "PostgreSQL" {
        " FOR SHARE"
    } else {
        ""
    }
}
