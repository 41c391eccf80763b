//! Sealing what was stored before encryption at rest: the tables and columns to seal,
//! read a page at a time in key order, and how far the work has come.

use sqlx::Row;

use super::Conn;
use crate::crypto::Field;

/// A table with sealed columns, as the sealing of existing rows walks it.
pub struct Table {
    pub name: &'static str,
    /// Returns `row_id` (what values are sealed to), `key_a`, `key_b`, `practice_id`,
    /// `page_key` (the progress mark), then the fields in order; `$1` is the last page
    /// key done, `$2` the page size.
    select: &'static str,
    /// Binds the sealed fields in order, then `key_a` (and `key_b` when `two_keys`).
    update: &'static str,
    two_keys: bool,
    /// What locks a page's rows on PostgreSQL (`confide keys rekey` runs beside servers).
    lock: &'static str,
    pub fields: &'static [Field],
}

pub const TABLES: &[Table] = &[
    Table {
        name: "threads",
        select: "SELECT id AS row_id, id AS key_a, CAST(0 AS BIGINT) AS key_b, practice_id, id AS page_key, \
                 subject, preview, announcement FROM threads WHERE id > $1 ORDER BY id LIMIT $2",
        update: "UPDATE threads SET subject = $1, preview = $2, announcement = $3 WHERE id = $4",
        two_keys: false,
        lock: "FOR UPDATE",
        fields: &[
            Field::ThreadSubject,
            Field::ThreadPreview,
            Field::ThreadAnnouncement,
        ],
    },
    Table {
        name: "messages",
        select: "SELECT id AS row_id, id AS key_a, CAST(0 AS BIGINT) AS key_b, practice_id, id AS page_key, \
                 body, body_html FROM messages WHERE id > $1 ORDER BY id LIMIT $2",
        update: "UPDATE messages SET body = $1, body_html = $2 WHERE id = $3",
        two_keys: false,
        lock: "FOR UPDATE",
        fields: &[Field::MessageBody, Field::MessageHtml],
    },
    Table {
        name: "drafts",
        select: "SELECT id AS row_id, id AS key_a, CAST(0 AS BIGINT) AS key_b, practice_id, id AS page_key, \
                 subject, body FROM drafts WHERE id > $1 ORDER BY id LIMIT $2",
        update: "UPDATE drafts SET subject = $1, body = $2 WHERE id = $3",
        two_keys: false,
        lock: "FOR UPDATE",
        fields: &[Field::DraftSubject, Field::DraftBody],
    },
    Table {
        name: "thread_notes",
        select: "SELECT id AS row_id, id AS key_a, CAST(0 AS BIGINT) AS key_b, practice_id, id AS page_key, \
                 body, body_html FROM thread_notes WHERE id > $1 ORDER BY id LIMIT $2",
        update: "UPDATE thread_notes SET body = $1, body_html = $2 WHERE id = $3",
        two_keys: false,
        lock: "FOR UPDATE",
        fields: &[Field::NoteBody, Field::NoteHtml],
    },
    Table {
        name: "attachments",
        select: "SELECT id AS row_id, id AS key_a, CAST(0 AS BIGINT) AS key_b, practice_id, id AS page_key, \
                 name, content_sha256 FROM attachments WHERE id > $1 ORDER BY id LIMIT $2",
        update: "UPDATE attachments SET name = $1, content_sha256 = $2 WHERE id = $3",
        two_keys: false,
        lock: "FOR UPDATE",
        fields: &[Field::AttachmentName, Field::AttachmentDigest],
    },
    // A page is a number of notes with all their versions. The versions' no-change
    // trigger lets content change only while this table's sealing is under way.
    Table {
        name: "chart_note_versions",
        select: "SELECT v.note_id || '/' || CAST(v.version AS TEXT) AS row_id, \
                 v.note_id AS key_a, v.version AS key_b, n.practice_id, n.id AS page_key, \
                 v.content FROM chart_note_versions v JOIN chart_notes n ON n.id = v.note_id \
                 WHERE n.id IN (SELECT id FROM chart_notes WHERE id > $1 ORDER BY id LIMIT $2) \
                 ORDER BY v.note_id, v.version",
        update: "UPDATE chart_note_versions SET content = $1 WHERE note_id = $2 AND version = $3",
        two_keys: true,
        lock: "FOR UPDATE OF v",
        fields: &[Field::ChartNoteContent],
    },
];

/// A row as stored before sealing.
pub struct PlainRow {
    pub row_id: String,
    key_a: String,
    key_b: i64,
    pub practice_id: String,
    pub page_key: String,
    pub values: Vec<Option<String>>,
}

/// The next page of `table` after the page key `after`.
pub async fn page(
    conn: &mut Conn,
    table: &Table,
    after: &str,
    limit: i64,
) -> Result<Vec<PlainRow>, sqlx::Error> {
    page_with(conn, table, table.select.into(), after, limit).await
}

/// As [`page`], with the rows locked until the transaction ends (PostgreSQL; on SQLite a
/// writing transaction excludes every other writer anyway).
pub async fn page_for_update(
    conn: &mut Conn,
    table: &Table,
    after: &str,
    limit: i64,
    backend: super::Backend,
) -> Result<Vec<PlainRow>, sqlx::Error> {
    let sql = match backend {
        super::Backend::Postgres => format!("{} {}", table.select, table.lock).into(),
        super::Backend::Sqlite => table.select.into(),
    };
    page_with(conn, table, sql, after, limit).await
}

async fn page_with(
    conn: &mut Conn,
    table: &Table,
    sql: std::borrow::Cow<'static, str>,
    after: &str,
    limit: i64,
) -> Result<Vec<PlainRow>, sqlx::Error> {
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            let mut values = Vec::with_capacity(table.fields.len());
            for i in 0..table.fields.len() {
                values.push(row.try_get::<Option<String>, _>(5 + i)?);
            }
            Ok(PlainRow {
                row_id: row.try_get("row_id")?,
                key_a: row.try_get("key_a")?,
                key_b: row.try_get("key_b")?,
                practice_id: row.try_get("practice_id")?,
                page_key: row.try_get("page_key")?,
                values,
            })
        })
        .collect()
}

/// Writes a row's sealed values.
pub async fn update(
    conn: &mut Conn,
    table: &Table,
    row: &PlainRow,
    sealed: &[Option<String>],
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(table.update);
    for value in sealed {
        q = q.bind(value.clone());
    }
    q = q.bind(&row.key_a);
    if table.two_keys {
        q = q.bind(row.key_b);
    }
    q.execute(conn).await?;
    Ok(())
}

/// How far sealing `name` has come: (last page key done, finished).
pub async fn progress(conn: &mut Conn, name: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT last_id, done FROM sealing_progress WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(last, done)| (last, done == 1)))
}

pub async fn set_progress(
    conn: &mut Conn,
    name: &str,
    last_id: &str,
    done: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sealing_progress (name, last_id, done) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET last_id = $2, done = $3",
    )
    .bind(name)
    .bind(last_id)
    .bind(i64::from(done))
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether any content was ever sealed here (or any data key made).
pub async fn anything_sealed(conn: &mut Conn) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM sealing_progress) + (SELECT COUNT(*) FROM practice_keys)",
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Rewrites the sealed tables so that no copy of their plain values is left on disk:
/// `VACUUM` and an emptied write-ahead log on SQLite, `VACUUM (FULL, ANALYZE)` on
/// PostgreSQL.
pub async fn rewrite_tables(conn: &mut Conn, backend: super::Backend) -> Result<(), sqlx::Error> {
    match backend {
        super::Backend::Sqlite => {
            sqlx::query("VACUUM").execute(&mut *conn).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(conn)
                .await?;
        }
        super::Backend::Postgres => {
            for table in TABLES {
                // Rewritten tables need their planner statistics again.
                sqlx::query(&format!("VACUUM (FULL, ANALYZE) {}", table.name))
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

/// On PostgreSQL, one node at a time prepares encryption (held on `conn` until released).
pub async fn lock(conn: &mut Conn) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock(7243001)")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn unlock(conn: &mut Conn) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(7243001)")
        .execute(conn)
        .await?;
    Ok(())
}

/// An attachment whose bytes are still plain.
#[derive(sqlx::FromRow)]
pub struct PlainFile {
    pub id: String,
    pub practice_id: String,
    pub sha256: String,
    pub size: i64,
}

/// The next attachments after `after` (by id) whose bytes are plain.
pub async fn plain_files(
    conn: &mut Conn,
    after: &str,
    limit: i64,
) -> Result<Vec<PlainFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, practice_id, sha256, size FROM attachments \
         WHERE id > $1 AND content_sha256 IS NULL ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Points an attachment at its sealed bytes, with its SHA-256 sealed beside it.
pub async fn set_sealed_file(
    conn: &mut Conn,
    id: &str,
    address: &str,
    sealed_sha256: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE attachments SET sha256 = $1, content_sha256 = $2 \
         WHERE id = $3 AND content_sha256 IS NULL",
    )
    .bind(address)
    .bind(sealed_sha256)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of the distinct addresses of a practice's sealed files after `after`, with
/// their sizes.
pub async fn sealed_files(
    conn: &mut Conn,
    practice_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sha256, MAX(size) FROM attachments WHERE practice_id = $1 \
         AND content_sha256 IS NOT NULL AND sha256 > $2 \
         GROUP BY sha256 ORDER BY sha256 LIMIT $3",
    )
    .bind(practice_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Holds a blob's row (and so its bytes) for the transaction, unless it is being removed;
/// whether it was held.
pub async fn hold_blob(conn: &mut Conn, address: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE blobs SET size = size WHERE sha256 = $1 AND deleting = 0")
        .bind(address)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
