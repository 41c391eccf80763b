//! The notification queue.

use sqlx::FromRow;

use super::Conn;
use crate::domain::mailbox::REMOVED;

#[derive(Debug, Clone, FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub practice_id: String,
    pub person_id: String,
    pub kind: String,
    pub channel: String,
    pub message_id: Option<String>,
    /// Where it goes when that is not the person's current address (the notice of an email
    /// change goes to the old one).
    pub address: Option<String>,
    pub created_at: i64,
    pub due_at: i64,
    pub attempts: i64,
}

const COLUMNS: &str =
    "id, practice_id, person_id, kind, channel, message_id, address, created_at, due_at, attempts";
const OPEN: &str = "sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL";

/// Queues a notification unless one of the same person, kind and channel is waiting
/// (the unique index `notifications_one_open` decides, also between concurrent senders).
pub async fn insert(conn: &mut Conn, n: &NotificationRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (id, practice_id, person_id, kind, channel, message_id, address, created_at, due_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0) ON CONFLICT DO NOTHING",
    )
    .bind(&n.id)
    .bind(&n.practice_id)
    .bind(&n.person_id)
    .bind(&n.kind)
    .bind(&n.channel)
    .bind(&n.message_id)
    .bind(&n.address)
    .bind(n.created_at)
    .bind(n.due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether one is waiting to go out, and when the last one went out, for a person, kind
/// and channel.
pub async fn state_for(
    conn: &mut Conn,
    person_id: &str,
    kind: &str,
    channel: &str,
) -> Result<(bool, Option<i64>), sqlx::Error> {
    let (open, last_sent): (i64, Option<i64>) = sqlx::query_as(&format!(
        "SELECT COUNT(CASE WHEN {OPEN} THEN 1 END), MAX(sent_at) FROM notifications \
         WHERE person_id = $1 AND kind = $2 AND channel = $3"
    ))
    .bind(person_id)
    .bind(kind)
    .bind(channel)
    .fetch_one(conn)
    .await?;
    Ok((open > 0, last_sent))
}

/// Those due by `now`, oldest first.
pub async fn due(
    conn: &mut Conn,
    now: i64,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE {OPEN} AND due_at <= $1 ORDER BY due_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Takes a due notification for sending until `lease_until`: false if another worker
/// took it, or it was sent or cancelled meanwhile.
pub async fn claim(
    conn: &mut Conn,
    id: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(&format!(
        "UPDATE notifications SET due_at = $1, attempts = attempts + 1 WHERE id = $2 AND due_at <= $3 AND {OPEN}"
    ))
    .bind(lease_until)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the send of the attempt numbered `attempt` (the claim's), unless another claim
/// took the notification since.
pub async fn mark_sent(
    conn: &mut Conn,
    id: &str,
    attempt: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET sent_at = $1, last_error = NULL WHERE id = $2 AND attempts = $3",
    )
    .bind(now)
    .bind(id)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed attempt (numbered `attempt`): try again at `next_due`, or give up.
pub async fn mark_failed(
    conn: &mut Conn,
    id: &str,
    attempt: i64,
    now: i64,
    next_due: i64,
    give_up: bool,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET due_at = $1, last_error = $2, failed_at = CASE WHEN $3 = 1 THEN $4 ELSE failed_at END \
         WHERE id = $5 AND attempts = $6",
    )
    .bind(next_due)
    .bind(error)
        .bind(i64::from(give_up))
    .bind(now)
    .bind(id)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn cancel(conn: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET cancelled_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The waiting notifications a message caused: (id, person).
pub async fn open_for_messages(
    conn: &mut Conn,
    message_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, person_id FROM notifications WHERE {OPEN} AND message_id IN ({})",
        super::placeholders(1, message_ids.len())
    );
    let mut query = sqlx::query_as(&sql);
    for id in message_ids {
        query = query.bind(id);
    }
    query.fetch_all(conn).await
}

/// Unties a waiting notification from the message that caused it (which is gone).
pub async fn detach(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET message_id = NULL WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels the waiting notifications of one person, kind and channel.
pub async fn cancel_open(
    conn: &mut Conn,
    person_id: &str,
    kind: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(&format!(
        "UPDATE notifications SET cancelled_at = $1 WHERE person_id = $2 AND kind = $3 AND {OPEN}"
    ))
    .bind(now)
    .bind(person_id)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Whether a person has unread threads other than `except_thread`.
pub async fn has_unread_besides(
    conn: &mut Conn,
    person_id: &str,
    except_thread: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM thread_participants WHERE person_id = $1 AND unread = 1 \
         AND folder <> '{REMOVED}' AND thread_id <> $2 LIMIT 1",
    ))
    .bind(person_id)
    .bind(except_thread)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Whether a person has anything unread in their mailbox.
pub async fn has_unread(conn: &mut Conn, person_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM thread_participants WHERE person_id = $1 AND unread = 1 \
         AND folder <> '{REMOVED}' LIMIT 1",
    ))
    .bind(person_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}
