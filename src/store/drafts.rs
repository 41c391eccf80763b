//! Drafts of new threads and of replies.

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::Conn;
use crate::crypto::Field;

#[derive(Debug, Clone, FromRow)]
pub struct DraftRow {
    pub id: String,
    pub practice_id: String,
    pub person_id: String,
    pub thread_id: Option<String>,
    /// JSON array of recipients as written (`user:…`, `group:…`).
    pub recipients: String,
    pub subject: String,
    pub body: String,
    /// JSON array of attachment ids.
    pub attachment_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// `message` or `conversation`, for a draft of a new thread.
    pub kind: String,
    pub starts_at: Option<i64>,
    pub linked_from: Option<String>,
    /// A scheduled send: when to send it.
    pub send_at: Option<i64>,
    /// Why a scheduled send was refused (its code and sentence), if it was.
    pub failure_code: Option<String>,
    pub failure_detail: Option<String>,
}

impl SealedRow for DraftRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::DraftSubject, &self.id, &mut self.subject)?;
        key.open_in_place(Field::DraftBody, &self.id, &mut self.body)
    }
}

const COLUMNS: &str = "id, practice_id, person_id, thread_id, recipients, subject, body, attachment_ids, created_at, updated_at, kind, starts_at, linked_from, send_at, failure_code, failure_detail";

/// Records a draft, sealing its subject and body with `key`.
pub async fn insert(conn: &mut Conn, key: &PracticeKey, d: &DraftRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO drafts (id, practice_id, person_id, thread_id, recipients, subject, body, attachment_ids, \
         created_at, updated_at, kind, starts_at, linked_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&d.id)
    .bind(&d.practice_id)
    .bind(&d.person_id)
    .bind(&d.thread_id)
    .bind(&d.recipients)
    .bind(key.seal(Field::DraftSubject, &d.id, &d.subject))
    .bind(key.seal(Field::DraftBody, &d.id, &d.body))
    .bind(&d.attachment_ids)
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(&d.kind)
    .bind(d.starts_at)
    .bind(&d.linked_from)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a draft's content; false if the draft is gone.
pub async fn update(conn: &mut Conn, key: &PracticeKey, d: &DraftRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE drafts SET thread_id = $1, recipients = $2, subject = $3, body = $4, attachment_ids = $5, \
         updated_at = $6, kind = $9, starts_at = $10, linked_from = $11 \
         WHERE id = $7 AND person_id = $8",
    )
    .bind(&d.thread_id)
    .bind(&d.recipients)
    .bind(key.seal(Field::DraftSubject, &d.id, &d.subject))
    .bind(key.seal(Field::DraftBody, &d.id, &d.body))
    .bind(&d.attachment_ids)
    .bind(d.updated_at)
    .bind(&d.id)
    .bind(&d.person_id)
    .bind(&d.kind)
    .bind(d.starts_at)
    .bind(&d.linked_from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a draft if it is still as it was read (by its `updated_at`); false otherwise.
pub async fn take(
    conn: &mut Conn,
    person_id: &str,
    id: &str,
    updated_at: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM drafts WHERE id = $1 AND person_id = $2 AND updated_at = $3")
            .bind(id)
            .bind(person_id)
            .bind(updated_at)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(
    conn: &mut Conn,
    keys: &Keyring,
    person_id: &str,
    id: &str,
) -> Result<Option<DraftRow>, sqlx::Error> {
    let mut row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE person_id = $1 AND id = $2"
    ))
    .bind(person_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    keys.open_row(conn, &mut row).await?;
    Ok(row)
}

/// A person's drafts, most recently saved first, after the keyset `after`.
pub async fn list(
    conn: &mut Conn,
    keys: &Keyring,
    person_id: &str,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<DraftRow>, sqlx::Error> {
    let (at, id) = after.unwrap_or((i64::MAX, ""));
    let mut rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE person_id = $1 AND send_at IS NULL AND failure_code IS NULL \
         AND (updated_at < $2 OR (updated_at = $2 AND id < $3)) \
         ORDER BY updated_at DESC, id DESC LIMIT $4"
    ))
    .bind(person_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// A person's scheduled sends (and those refused), soonest first.
pub async fn scheduled(
    conn: &mut Conn,
    keys: &Keyring,
    person_id: &str,
) -> Result<Vec<DraftRow>, sqlx::Error> {
    let mut rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE person_id = $1 \
         AND (send_at IS NOT NULL OR failure_code IS NOT NULL) ORDER BY send_at, updated_at, id"
    ))
    .bind(person_id)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// Scheduled sends due at `now`, as (draft id, person id, practice id), soonest first.
pub async fn due(
    conn: &mut Conn,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, person_id, practice_id FROM drafts WHERE send_at IS NOT NULL AND send_at <= $1 \
         ORDER BY send_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Schedules a draft (`Some(at)`, clearing an earlier refusal) or takes its time off.
pub async fn set_send_at(
    conn: &mut Conn,
    person_id: &str,
    id: &str,
    send_at: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE drafts SET send_at = $1, failure_code = NULL, failure_detail = NULL \
         WHERE id = $2 AND person_id = $3",
    )
    .bind(send_at)
    .bind(id)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records why a scheduled send was refused and takes its time off, if it is still as
/// it was read.
pub async fn fail(
    conn: &mut Conn,
    id: &str,
    updated_at: i64,
    code: &str,
    detail: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE drafts SET send_at = NULL, failure_code = $1, failure_detail = $2 \
         WHERE id = $3 AND updated_at = $4",
    )
    .bind(code)
    .bind(detail)
    .bind(id)
    .bind(updated_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A person's drafts that are not scheduled sends (the Drafts folder).
pub async fn count_plain(conn: &mut Conn, person_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM drafts WHERE person_id = $1 AND send_at IS NULL \
         AND failure_code IS NULL",
    )
    .bind(person_id)
    .fetch_one(conn)
    .await
}

/// A person's scheduled sends and refused ones (the Scheduled view).
pub async fn count_scheduled(conn: &mut Conn, person_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM drafts WHERE person_id = $1 \
         AND (send_at IS NOT NULL OR failure_code IS NOT NULL)",
    )
    .bind(person_id)
    .fetch_one(conn)
    .await
}

pub async fn count(conn: &mut Conn, person_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM drafts WHERE person_id = $1")
        .bind(person_id)
        .fetch_one(conn)
        .await
}

pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM drafts WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_for_thread(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM drafts WHERE thread_id = $1")
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}
