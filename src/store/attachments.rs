//! Attachments and the content-addressed blobs they point at.

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::{placeholders, Conn};
use crate::crypto::Field;

#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub practice_id: String,
    pub uploader_id: String,
    /// Where the bytes are kept: with encryption, a keyed hash of their SHA-256.
    pub sha256: String,
    /// The SHA-256 of the plain bytes, when they are stored sealed (sealed itself).
    pub content_sha256: Option<String>,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub message_id: Option<String>,
    pub thread_id: Option<String>,
    pub draft_id: Option<String>,
    pub position: i64,
    pub pending_since: i64,
    pub created_at: i64,
}

impl SealedRow for AttachmentRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::AttachmentName, &self.id, &mut self.name)?;
        key.open_opt_in_place(Field::AttachmentDigest, &self.id, &mut self.content_sha256)
    }
}

const COLUMNS: &str =
    "id, practice_id, uploader_id, sha256, name, size, content_type, message_id, \
     thread_id, draft_id, position, pending_since, created_at, content_sha256";

/// Records a blob, or takes back its pending removal. On PostgreSQL this waits for (and
/// then holds) the row's lock, so that a concurrent removal of the same bytes either
/// finished before or will see the blob in use.
pub async fn upsert_blob(
    conn: &mut Conn,
    sha256: &str,
    size: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blobs (sha256, size, deleting, created_at) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (sha256) DO UPDATE SET deleting = 0",
    )
    .bind(sha256)
    .bind(size)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an upload, its file name sealed with `key`.
pub async fn insert(
    conn: &mut Conn,
    key: &PracticeKey,
    a: &AttachmentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO attachments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&a.id)
    .bind(&a.practice_id)
    .bind(&a.uploader_id)
    .bind(&a.sha256)
    .bind(key.seal(Field::AttachmentName, &a.id, &a.name))
    .bind(a.size)
    .bind(&a.content_type)
    .bind(&a.message_id)
    .bind(&a.thread_id)
    .bind(&a.draft_id)
    .bind(a.position)
    .bind(a.pending_since)
    .bind(a.created_at)
    .bind(key.seal_opt(Field::AttachmentDigest, &a.id, a.content_sha256.as_deref()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut Conn,
    keys: &Keyring,
    practice_id: &str,
    id: &str,
) -> Result<Option<AttachmentRow>, sqlx::Error> {
    let mut row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE practice_id = $1 AND id = $2"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    keys.open_row(conn, &mut row).await?;
    Ok(row)
}

/// Of `ids`, the pending uploads of `uploader_id` that are free or held by `draft_id`.
pub async fn usable(
    conn: &mut Conn,
    keys: &Keyring,
    uploader_id: &str,
    draft_id: Option<&str>,
    ids: &[String],
) -> Result<Vec<AttachmentRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM attachments WHERE uploader_id = $1 AND message_id IS NULL \
         AND (draft_id IS NULL OR draft_id = CAST($2 AS TEXT)) AND id IN ({})",
        placeholders(3, ids.len())
    );
    let mut q = sqlx::query_as(&sql).bind(uploader_id).bind(draft_id);
    for id in ids {
        q = q.bind(id);
    }
    let mut rows = q.fetch_all(&mut *conn).await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// Gives a pending upload to a message; false if it is no longer usable.
pub async fn attach_to_message(
    conn: &mut Conn,
    id: &str,
    uploader_id: &str,
    draft_id: Option<&str>,
    message_id: &str,
    thread_id: &str,
    position: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attachments SET message_id = $1, thread_id = $2, draft_id = NULL, position = $3 \
         WHERE id = $4 AND uploader_id = $5 AND message_id IS NULL \
         AND (draft_id IS NULL OR draft_id = CAST($6 AS TEXT))",
    )
    .bind(message_id)
    .bind(thread_id)
    .bind(position)
    .bind(id)
    .bind(uploader_id)
    .bind(draft_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lets a draft's uploads go (pending again, for another day), except those in `keep`.
pub async fn release_from_draft(
    conn: &mut Conn,
    draft_id: &str,
    keep: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = if keep.is_empty() {
        "UPDATE attachments SET draft_id = NULL, pending_since = $1 \
         WHERE draft_id = $2 AND message_id IS NULL"
            .to_string()
    } else {
        format!(
            "UPDATE attachments SET draft_id = NULL, pending_since = $1 \
             WHERE draft_id = $2 AND message_id IS NULL AND id NOT IN ({})",
            placeholders(3, keep.len())
        )
    };
    let mut q = sqlx::query(&sql).bind(now).bind(draft_id);
    for id in keep {
        q = q.bind(id);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Holds a pending upload for a draft; false if it is no longer usable.
pub async fn hold_for_draft(
    conn: &mut Conn,
    id: &str,
    uploader_id: &str,
    draft_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attachments SET draft_id = $1 WHERE id = $2 AND uploader_id = $3 \
         AND message_id IS NULL AND (draft_id IS NULL OR draft_id = $1)",
    )
    .bind(draft_id)
    .bind(id)
    .bind(uploader_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A thread's attachments, in message order.
pub async fn for_thread(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
) -> Result<Vec<AttachmentRow>, sqlx::Error> {
    let mut rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE thread_id = $1 ORDER BY message_id, position"
    ))
    .bind(thread_id)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// (thread id, number of attachments `viewer` may see) for those of `thread_ids` that have
/// any: a file limited to other people is not counted.
pub async fn counts_for_threads(
    conn: &mut Conn,
    thread_ids: &[String],
    viewer: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    if thread_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.thread_id, COUNT(*) FROM attachments a WHERE a.thread_id IN ({}) \
         AND (a.uploader_id = $1 \
              OR NOT EXISTS (SELECT 1 FROM attachment_audience x WHERE x.attachment_id = a.id) \
              OR EXISTS (SELECT 1 FROM attachment_audience x \
                         WHERE x.attachment_id = a.id AND x.person_id = $1)) \
         GROUP BY a.thread_id",
        placeholders(2, thread_ids.len())
    );
    let mut q = sqlx::query_as(&sql).bind(viewer);
    for id in thread_ids {
        q = q.bind(id);
    }
    q.fetch_all(conn).await
}

async fn delete_returning(
    conn: &mut Conn,
    filter: &str,
    values: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!("DELETE FROM attachments WHERE {filter} RETURNING sha256");
    let mut q = sqlx::query_scalar(&sql);
    for v in values {
        q = q.bind(*v);
    }
    q.fetch_all(conn).await
}

/// Deletes a message's attachments; returns the hashes they pointed at.
pub async fn delete_for_message(
    conn: &mut Conn,
    message_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    delete_returning(conn, "message_id = $1", &[message_id]).await
}

/// Deletes the attachments of a thread's messages and of its reply drafts.
pub async fn delete_for_thread(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    delete_returning(
        conn,
        "thread_id = $1 OR (message_id IS NULL AND draft_id IN \
         (SELECT id FROM drafts WHERE thread_id = $1))",
        &[thread_id],
    )
    .await
}

/// Deletes the uploads a draft holds.
pub async fn delete_for_draft(conn: &mut Conn, draft_id: &str) -> Result<Vec<String>, sqlx::Error> {
    delete_returning(conn, "draft_id = $1 AND message_id IS NULL", &[draft_id]).await
}

/// Deletes uploads no message or draft has used since `before`.
pub async fn delete_unused_before(
    conn: &mut Conn,
    before: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM attachments WHERE id IN (SELECT id FROM attachments WHERE message_id IS NULL \
         AND draft_id IS NULL AND pending_since < $1 ORDER BY id LIMIT $2) RETURNING sha256",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records a blob as about to be removed unless a row exists: before an upload stores
/// its bytes, so that an upload that fails or dies leaves them to the janitor.
pub async fn insert_blob_if_missing(
    conn: &mut Conn,
    sha256: &str,
    size: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blobs (sha256, size, deleting, created_at) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(size)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes back a removal mark from a blob that something references again.
pub async fn unmark_if_referenced(conn: &mut Conn, sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE blobs SET deleting = 0 WHERE sha256 = $1 AND deleting = 1 AND EXISTS \
         (SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)",
    )
    .bind(sha256)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks those of `hashes` that nothing references any more for removal; returns them.
pub async fn mark_unreferenced(
    conn: &mut Conn,
    hashes: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE blobs SET deleting = 1 WHERE sha256 IN ({}) AND NOT EXISTS \
         (SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256) RETURNING sha256",
        placeholders(1, hashes.len())
    );
    let mut q = sqlx::query_scalar(&sql);
    for h in hashes {
        q = q.bind(h);
    }
    q.fetch_all(conn).await
}

/// Removes a blob's row if it is still marked and unreferenced; true if it did. The
/// caller removes the bytes before committing, while the row's lock is held.
pub async fn claim_removal(conn: &mut Conn, sha256: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM blobs WHERE sha256 = $1 AND deleting = 1 AND NOT EXISTS \
         (SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)",
    )
    .bind(sha256)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Blobs marked for removal (left behind by a crash between the two steps).
pub async fn marked(conn: &mut Conn, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sha256 FROM blobs WHERE deleting = 1 ORDER BY sha256 LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// How many attachments point at a blob, and whether its row exists (for tests and checks).
pub async fn blob_refs(conn: &mut Conn, sha256: &str) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM attachments WHERE sha256 = $1), \
         (SELECT COUNT(*) FROM blobs WHERE sha256 = $1)",
    )
    .bind(sha256)
    .fetch_one(conn)
    .await
}

/// Deletes a pending upload that no draft holds; returns its hash if it did.
pub async fn delete_pending(
    conn: &mut Conn,
    id: &str,
    uploader_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM attachments WHERE id = $1 AND uploader_id = $2 AND message_id IS NULL \
         AND draft_id IS NULL RETURNING sha256",
    )
    .bind(id)
    .bind(uploader_id)
    .fetch_optional(conn)
    .await
}

/// Bytes of a person's unsent uploads (free or held by a draft).
pub async fn pending_bytes(conn: &mut Conn, uploader_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments \
         WHERE uploader_id = $1 AND message_id IS NULL",
    )
    .bind(uploader_id)
    .fetch_one(conn)
    .await
}

/// Files a person uploaded in the hour window starting at `window_start`.
pub async fn uploads_in_window(
    conn: &mut Conn,
    person_id: &str,
    window_start: i64,
) -> Result<i64, sqlx::Error> {
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT count FROM upload_counts WHERE person_id = $1 AND window_start = $2",
    )
    .bind(person_id)
    .bind(window_start)
    .fetch_optional(conn)
    .await?;
    Ok(count.unwrap_or(0))
}

/// Adds `files` to a person's count for the window; returns the new count. Earlier windows
/// of theirs are forgotten.
pub async fn count_uploads(
    conn: &mut Conn,
    person_id: &str,
    window_start: i64,
    files: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query("DELETE FROM upload_counts WHERE person_id = $1 AND window_start < $2")
        .bind(person_id)
        .bind(window_start)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO upload_counts (person_id, window_start, count) VALUES ($1, $2, $3) \
         ON CONFLICT (person_id, window_start) DO UPDATE SET count = upload_counts.count + $3 \
         RETURNING count",
    )
    .bind(person_id)
    .bind(window_start)
    .bind(files)
    .fetch_one(conn)
    .await
}
