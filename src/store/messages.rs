//! Messages of threads.

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::Conn;
use crate::crypto::Field;

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: String,
    pub thread_id: String,
    pub practice_id: String,
    pub sender_id: String,
    pub seq: i64,
    pub body: String,
    pub body_html: String,
    pub created_at: i64,
    /// The message of the same thread this one answers, if any.
    pub in_reply_to: Option<String>,
    /// 1 for an autoresponder's reply.
    pub automatic: i64,
    /// Set while staff have it pinned at the top of the thread.
    pub pinned_at: Option<i64>,
}

/// A message with its sender's name and role.
#[derive(Debug, Clone, FromRow)]
pub struct MessageWithSender {
    #[sqlx(flatten)]
    pub message: MessageRow,
    pub sender_name: String,
    pub sender_role: String,
}

impl SealedRow for MessageRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::MessageBody, &self.id, &mut self.body)?;
        key.open_in_place(Field::MessageHtml, &self.id, &mut self.body_html)
    }
}

impl SealedRow for MessageWithSender {
    fn practice_id(&self) -> &str {
        &self.message.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        self.message.open_with(key)
    }
}

const COLUMNS: &str =
    "m.id, m.thread_id, m.practice_id, m.sender_id, m.seq, m.body, m.body_html, m.created_at, \
     m.in_reply_to, m.automatic, m.pinned_at";

/// Records a message, sealing its body (Markdown and HTML) with `key`.
pub async fn insert(conn: &mut Conn, key: &PracticeKey, m: &MessageRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (id, thread_id, practice_id, sender_id, seq, body, body_html, created_at, \
         in_reply_to, automatic) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&m.id)
    .bind(&m.thread_id)
    .bind(&m.practice_id)
    .bind(&m.sender_id)
    .bind(m.seq)
    .bind(key.seal(Field::MessageBody, &m.id, &m.body))
    .bind(key.seal(Field::MessageHtml, &m.id, &m.body_html))
    .bind(m.created_at)
    .bind(&m.in_reply_to)
    .bind(m.automatic)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn for_thread(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
) -> Result<Vec<MessageWithSender>, sqlx::Error> {
    let mut rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, pe.name AS sender_name, pe.role AS sender_role FROM messages m \
         JOIN people pe ON pe.id = m.sender_id WHERE m.thread_id = $1 ORDER BY m.seq"
    ))
    .bind(thread_id)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// The last `limit` messages of a thread before the one numbered `before_seq`, in order.
pub async fn latest_of_thread(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
    before_seq: i64,
    limit: i64,
) -> Result<Vec<MessageWithSender>, sqlx::Error> {
    let mut rows: Vec<MessageWithSender> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, pe.name AS sender_name, pe.role AS sender_role FROM messages m \
         JOIN people pe ON pe.id = m.sender_id WHERE m.thread_id = $1 AND m.seq < $2 \
         ORDER BY m.seq DESC LIMIT $3"
    ))
    .bind(thread_id)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.reverse();
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// Messages of a thread by their ids (those it holds), in order.
pub async fn of_thread_by_ids(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
    ids: &[&str],
) -> Result<Vec<MessageWithSender>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS}, pe.name AS sender_name, pe.role AS sender_role FROM messages m \
         JOIN people pe ON pe.id = m.sender_id WHERE m.thread_id = $1 AND m.id IN ({}) \
         ORDER BY m.seq",
        super::placeholders(2, ids.len())
    );
    let mut query = sqlx::query_as(&sql).bind(thread_id);
    for id in ids {
        query = query.bind(*id);
    }
    let mut rows: Vec<MessageWithSender> = query.fetch_all(&mut *conn).await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// The number of a message of a thread.
pub async fn seq_in_thread(
    conn: &mut Conn,
    thread_id: &str,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM messages WHERE thread_id = $1 AND id = $2")
        .bind(thread_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn find(
    conn: &mut Conn,
    keys: &Keyring,
    practice_id: &str,
    id: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    let mut row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.practice_id = $1 AND m.id = $2"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    keys.open_row(conn, &mut row).await?;
    Ok(row)
}

/// The ids of a thread's messages.
pub async fn ids_for_thread(conn: &mut Conn, thread_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM messages WHERE thread_id = $1")
        .bind(thread_id)
        .fetch_all(conn)
        .await
}

/// The latest message left in a thread, if any.
pub async fn latest(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    let mut row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.thread_id = $1 ORDER BY m.seq DESC LIMIT 1"
    ))
    .bind(thread_id)
    .fetch_optional(&mut *conn)
    .await?;
    keys.open_row(conn, &mut row).await?;
    Ok(row)
}

/// Pins a message at the top of its thread (`Some((at, by))`) or unpins it.
pub async fn set_pinned(
    conn: &mut Conn,
    id: &str,
    pinned: Option<(i64, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE messages SET pinned_at = $1, pinned_by = $2 WHERE id = $3")
        .bind(pinned.map(|(at, _)| at))
        .bind(pinned.map(|(_, by)| by))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a message; false if it was already gone. Replies to it no longer name it.
pub async fn delete(conn: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET in_reply_to = NULL \
         WHERE thread_id = (SELECT thread_id FROM messages WHERE id = $1) AND in_reply_to = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_for_thread(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM messages WHERE thread_id = $1")
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}
