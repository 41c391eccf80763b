//! Each practice's data keys: stored wrapped under the key-encryption key, unwrapped by
//! each node and kept in memory (read again every `encryption.refresh_seconds`, so that a
//! new generation made by `confide keys rekey` is taken up by every node). Writes seal
//! with the practice's newest generation; reads open each value with the generation it
//! names. The search index's and file addresses' keys come from the practice's first
//! generation, which is kept: changing them would mean rebuilding the index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::Row;

use super::Conn;
use crate::crypto::files::{self, FileOpener, FileSealer};
use crate::crypto::{self, DataKey, DataKeyBytes, Field, Kek, Unsealable};

/// A practice's data keys, or nothing when encryption is off (values pass as they are).
pub struct PracticeKey {
    /// Newest first; empty when encryption is off.
    generations: Vec<DataKey>,
}

impl PracticeKey {
    fn plain() -> Self {
        PracticeKey {
            generations: Vec::new(),
        }
    }

    fn current(&self) -> Option<&DataKey> {
        self.generations.first()
    }

    /// The first generation: the one search tokens and file addresses are keyed with.
    fn first(&self) -> Option<&DataKey> {
        self.generations.last()
    }

    /// A stored value sealed again with the newest generation, if it was sealed with an
    /// older one (`None` if it is already current).
    pub fn reseal(
        &self,
        field: Field,
        row: &str,
        stored: &str,
    ) -> Result<Option<String>, Unsealable> {
        if self.generations.is_empty() || crypto::generation_of(stored) == Some(self.generation()) {
            return Ok(None);
        }
        let plain = self.open(field, row, stored)?;
        Ok(Some(self.seal(field, row, &plain)))
    }

    /// The generation new values are sealed with (0 when encryption is off).
    pub fn generation(&self) -> u32 {
        self.current().map_or(0, DataKey::generation)
    }

    pub fn seal(&self, field: Field, row: &str, plain: &str) -> String {
        match self.current() {
            Some(key) => key.seal(field, row, plain),
            None => plain.to_string(),
        }
    }

    pub fn seal_opt(&self, field: Field, row: &str, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal(field, row, p))
    }

    /// The plain value of a stored one; refused if it was changed, moved, or is not
    /// sealed while encryption is on.
    pub fn open(&self, field: Field, row: &str, stored: &str) -> Result<String, Unsealable> {
        if self.generations.is_empty() {
            return Ok(stored.to_string());
        }
        let generation = crypto::generation_of(stored);
        match self
            .generations
            .iter()
            .find(|k| Some(k.generation()) == generation)
        {
            Some(key) => key.open(field, row, stored),
            None => Err(Unsealable {
                field: field.as_str(),
                row: row.to_string(),
                why: if generation.is_some() {
                    "sealed with a key generation this practice does not have"
                } else {
                    "not sealed"
                },
            }),
        }
    }

    /// Opens a field in place (for rows read from the database).
    pub fn open_in_place(
        &self,
        field: Field,
        row: &str,
        value: &mut String,
    ) -> Result<(), sqlx::Error> {
        if !self.generations.is_empty() {
            *value = self.open(field, row, value).map_err(unsealable)?;
        }
        Ok(())
    }

    pub fn open_opt_in_place(
        &self,
        field: Field,
        row: &str,
        value: &mut Option<String>,
    ) -> Result<(), sqlx::Error> {
        match value {
            Some(v) => self.open_in_place(field, row, v),
            None => Ok(()),
        }
    }

    /// Whether files are sealed (encryption is on).
    pub fn seals_files(&self) -> bool {
        self.current().is_some()
    }

    /// Where a file with this SHA-256 is kept: a keyed hash, so that nobody learns from
    /// the store whether two practices hold the same file (the digest itself when
    /// encryption is off).
    pub fn file_address(&self, sha256_hex: &str) -> String {
        match self.first() {
            Some(key) => key.file_address(sha256_hex),
            None => sha256_hex.to_string(),
        }
    }

    /// A sealer for a new file, or `None` when encryption is off.
    pub fn file_sealer(&self) -> Option<FileSealer> {
        self.current().map(FileSealer::new)
    }

    /// An opener for a sealed file that starts with `header`.
    pub fn file_opener(&self, header: &[u8]) -> Result<FileOpener, &'static str> {
        let generation = files::generation_of(header).ok_or("not a sealed file")?;
        let key = self
            .generations
            .iter()
            .find(|k| k.generation() == generation)
            .ok_or("sealed with a key generation this practice does not have")?;
        FileOpener::new(key, header)
    }

    /// A search token as the index holds it (the token itself when encryption is off).
    pub fn index_token(&self, token: &str) -> String {
        match self.first() {
            Some(key) => key.index_token(token),
            None => token.to_string(),
        }
    }
}

/// A value that fails to open is a decode error of its column: the request fails (500)
/// and the log names the field and the row, never the value.
pub fn unsealable(e: Unsealable) -> sqlx::Error {
    tracing::error!(field = e.field, row = %e.row, why = e.why, "a sealed value was refused");
    sqlx::Error::Decode(Box::new(e))
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("enabled", &self.enabled())
            .finish_non_exhaustive()
    }
}

/// Every practice's keys this node has unwrapped, and the key-encryption key (none when
/// `[encryption] enabled = false`).
pub struct Keyring {
    kek: Option<Kek>,
    /// Each practice's keys, with when they were read.
    cache: RwLock<HashMap<String, (Arc<PracticeKey>, Instant)>>,
    refresh: Duration,
    plain: Arc<PracticeKey>,
}

impl Keyring {
    pub fn new(kek: Option<Kek>) -> Self {
        Self::with_refresh(kek, Duration::from_secs(60))
    }

    /// A keyring that reads each practice's keys again after `refresh`.
    pub fn with_refresh(kek: Option<Kek>, refresh: Duration) -> Self {
        Keyring {
            kek,
            cache: RwLock::new(HashMap::new()),
            refresh,
            plain: Arc::new(PracticeKey::plain()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.kek.is_some()
    }

    pub fn kek(&self) -> Option<&Kek> {
        self.kek.as_ref()
    }

    /// The practice's keys, unwrapped from the database on first use.
    pub async fn practice(
        &self,
        conn: &mut Conn,
        practice_id: &str,
    ) -> Result<Arc<PracticeKey>, sqlx::Error> {
        let Some(kek) = &self.kek else {
            return Ok(self.plain.clone());
        };
        if let Some((key, read)) = self.cache.read().expect("not poisoned").get(practice_id) {
            if read.elapsed() < self.refresh {
                return Ok(key.clone());
            }
        }
        let rows = wrapped_keys(conn, practice_id).await?;
        if rows.is_empty() {
            return Err(sqlx::Error::Protocol(format!(
                "practice {practice_id} has no data key"
            )));
        }
        let mut generations = Vec::with_capacity(rows.len());
        for row in rows {
            if row.kek_id != kek.id() {
                return Err(sqlx::Error::Protocol(format!(
                    "the data key of practice {practice_id} (generation {}) is wrapped under \
                     key-encryption key {}, but this node has {}: give it that key \
                     ([encryption] key_file)",
                    row.generation,
                    row.kek_id,
                    kek.id()
                )));
            }
            let bytes = kek
                .unwrap(practice_id, row.generation, &row.wrapped)
                .map_err(|why| {
                    sqlx::Error::Protocol(format!(
                        "the data key of practice {practice_id} (generation {}) does not \
                         unwrap: {why}",
                        row.generation
                    ))
                })?;
            generations.push(DataKey::new(row.generation, &bytes));
        }
        let key = Arc::new(PracticeKey { generations });
        self.cache
            .write()
            .expect("not poisoned")
            .insert(practice_id.to_string(), (key.clone(), Instant::now()));
        Ok(key)
    }

    /// Makes the practice's first data key unless it has one (in the practice's creating
    /// transaction, or when sealing existing data).
    pub async fn create(
        &self,
        conn: &mut Conn,
        practice_id: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let Some(kek) = &self.kek else {
            return Ok(());
        };
        let wrapped = kek.wrap(practice_id, 1, &DataKeyBytes::random());
        sqlx::query(
            "INSERT INTO practice_keys (practice_id, generation, kek_id, wrapped, created_at) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (practice_id, generation) DO NOTHING",
        )
        .bind(practice_id)
        .bind(kek.id())
        .bind(wrapped)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Adds a new newest generation to the practice's data keys (`confide keys rekey`);
    /// returns its number.
    pub async fn add_generation(
        &self,
        conn: &mut Conn,
        practice_id: &str,
        now: i64,
    ) -> Result<u32, sqlx::Error> {
        let Some(kek) = &self.kek else {
            return Err(sqlx::Error::Protocol("encryption is off".into()));
        };
        let newest = wrapped_keys(conn, practice_id)
            .await?
            .first()
            .map_or(0, |k| k.generation);
        let generation = newest + 1;
        sqlx::query(
            "INSERT INTO practice_keys (practice_id, generation, kek_id, wrapped, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(practice_id)
        .bind(i64::from(generation))
        .bind(kek.id())
        .bind(kek.wrap(practice_id, generation, &DataKeyBytes::random()))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        self.forget(practice_id);
        Ok(generation)
    }

    /// Forgets what this node unwrapped (after a new generation was made).
    pub fn forget(&self, practice_id: &str) {
        self.cache
            .write()
            .expect("not poisoned")
            .remove(practice_id);
    }
}

/// A row with sealed fields, opened after it is read.
pub trait SealedRow: Clone {
    fn practice_id(&self) -> &str;
    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error>;
}

impl Keyring {
    /// Opens the sealed fields of rows just read, each with its practice's key.
    pub async fn open_rows<T: SealedRow>(
        &self,
        conn: &mut Conn,
        rows: &mut [T],
    ) -> Result<(), sqlx::Error> {
        if !self.enabled() {
            return Ok(());
        }
        let mut last: Option<Arc<PracticeKey>> = None;
        let mut last_id = String::new();
        for row in rows.iter_mut() {
            if last.is_none() || last_id != row.practice_id() {
                last_id = row.practice_id().to_string();
                last = Some(self.practice(conn, &last_id).await?);
            }
            let stored = row.clone();
            if let Err(e) = row.open_with(last.as_deref().expect("set above")) {
                // Sealed with a generation made since this node read the keys? Read them
                // again once; anything else fails the same way again.
                *row = stored;
                self.forget(&last_id);
                let fresh = self.practice(conn, &last_id).await?;
                if fresh.generation() == last.as_deref().expect("set above").generation() {
                    return Err(e);
                }
                row.open_with(&fresh)?;
                last = Some(fresh);
            }
        }
        Ok(())
    }

    pub async fn open_row<T: SealedRow>(
        &self,
        conn: &mut Conn,
        row: &mut Option<T>,
    ) -> Result<(), sqlx::Error> {
        match row {
            Some(r) => self.open_rows(conn, std::slice::from_mut(r)).await,
            None => Ok(()),
        }
    }
}

/// One stored data key.
pub struct WrappedKey {
    pub practice_id: String,
    pub generation: u32,
    pub kek_id: String,
    pub wrapped: String,
    pub created_at: i64,
}

fn wrapped_from(row: &sqlx::any::AnyRow) -> Result<WrappedKey, sqlx::Error> {
    Ok(WrappedKey {
        practice_id: row.try_get("practice_id")?,
        generation: u32::try_from(row.try_get::<i64, _>("generation")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        kek_id: row.try_get("kek_id")?,
        wrapped: row.try_get("wrapped")?,
        created_at: row.try_get("created_at")?,
    })
}

const KEY_COLUMNS: &str = "practice_id, generation, kek_id, wrapped, created_at";

/// A practice's data keys, newest generation first.
pub async fn wrapped_keys(
    conn: &mut Conn,
    practice_id: &str,
) -> Result<Vec<WrappedKey>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM practice_keys WHERE practice_id = $1 ORDER BY generation DESC"
    ))
    .bind(practice_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(wrapped_from)
    .collect()
}

/// Every stored data key, by practice then generation.
pub async fn all_wrapped(conn: &mut Conn) -> Result<Vec<WrappedKey>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM practice_keys ORDER BY practice_id, generation"
    ))
    .fetch_all(conn)
    .await?
    .iter()
    .map(wrapped_from)
    .collect()
}

/// Replaces one data key's wrapping (rotation of the key-encryption key).
pub async fn rewrap(
    conn: &mut Conn,
    key: &WrappedKey,
    kek_id: &str,
    wrapped: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE practice_keys SET kek_id = $1, wrapped = $2 \
         WHERE practice_id = $3 AND generation = $4 AND kek_id = $5",
    )
    .bind(kek_id)
    .bind(wrapped)
    .bind(&key.practice_id)
    .bind(i64::from(key.generation))
    .bind(&key.kek_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Practices without a data key.
pub async fn practices_without_key(conn: &mut Conn) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p.id FROM practices p WHERE NOT EXISTS \
         (SELECT 1 FROM practice_keys k WHERE k.practice_id = p.id) ORDER BY p.id",
    )
    .fetch_all(conn)
    .await
}
