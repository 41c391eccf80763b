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
    insert_all(conn, std::slice::from_ref(n)).await
}

/// Queues several at once, in one statement (each skipped as [`insert`] would).
pub async fn insert_all(conn: &mut Conn, rows: &[NotificationRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(100) {
        let values = (0..chunk.len())
            .map(|i| format!("({}, 0)", super::placeholders(i * 9 + 1, 9)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO notifications (id, practice_id, person_id, kind, channel, message_id, \
             address, created_at, due_at, attempts) VALUES {values} ON CONFLICT DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for n in chunk {
            query = query
                .bind(&n.id)
                .bind(&n.practice_id)
                .bind(&n.person_id)
                .bind(&n.kind)
                .bind(&n.channel)
                .bind(&n.message_id)
                .bind(&n.address)
                .bind(n.created_at)
                .bind(n.due_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// What deciding a new-message notification needs to know of one recipient.
#[derive(Debug, FromRow)]
pub struct Recipient {
    pub id: String,
    pub status: String,
    pub consent_email: i64,
    pub consent_sms: i64,
    pub has_mobile: i64,
    /// Of this kind: one waiting by email, and when the last went out by email.
    pub email_waiting: i64,
    pub email_last_sent: Option<i64>,
    pub sms_waiting: i64,
    pub sms_last_sent: Option<i64>,
    /// Something unread outside the thread at hand.
    pub unread_elsewhere: i64,
}

/// [`Recipient`] for each of `ids` in the practice, in one query.
pub async fn recipients(
    conn: &mut Conn,
    practice_id: &str,
    kind: &str,
    thread_id: &str,
    ids: &[String],
) -> Result<Vec<Recipient>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let of = |channel: &str, what: &str| {
        format!(
            "(SELECT {what} FROM notifications n WHERE n.person_id = p.id AND n.kind = $2 \
             AND n.channel = '{channel}')"
        )
    };
    let waiting = format!("COUNT(CASE WHEN {OPEN} THEN 1 END)");
    let sql = format!(
        "SELECT p.id, p.status, p.consent_email, p.consent_sms, \
         CASE WHEN p.mobile IS NULL THEN 0 ELSE 1 END AS has_mobile, \
         {} AS email_waiting, {} AS email_last_sent, {} AS sms_waiting, {} AS sms_last_sent, \
         CASE WHEN EXISTS (SELECT 1 FROM thread_participants tp WHERE tp.person_id = p.id \
         AND tp.unread = 1 AND tp.folder <> '{REMOVED}' AND tp.thread_id <> $3) \
         THEN 1 ELSE 0 END AS unread_elsewhere \
         FROM people p WHERE p.practice_id = $1 AND p.id IN ({})",
        of("email", &waiting),
        of("email", "MAX(sent_at)"),
        of("sms", &waiting),
        of("sms", "MAX(sent_at)"),
        super::placeholders(4, ids.len()),
    );
    let mut query = sqlx::query_as(&sql)
        .bind(practice_id)
        .bind(kind)
        .bind(thread_id);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(conn).await
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

/// Claims those of `ids` still due by `now` until `lease_until` (counting an attempt
/// each), in one statement; returns the ids it claimed.
pub async fn claim_all(
    conn: &mut Conn,
    ids: &[String],
    now: i64,
    lease_until: i64,
) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE notifications SET due_at = $1, attempts = attempts + 1 \
         WHERE id IN ({}) AND due_at <= $2 AND {OPEN} RETURNING id",
        super::placeholders(3, ids.len())
    );
    let mut query = sqlx::query_scalar(&sql).bind(lease_until).bind(now);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(conn).await
}

/// Records the sends (id, the attempt numbered by its claim) in one statement, each unless
/// another claim took it since.
pub async fn mark_all_sent(
    conn: &mut Conn,
    sent: &[(String, i64)],
    now: i64,
) -> Result<(), sqlx::Error> {
    if sent.is_empty() {
        return Ok(());
    }
    let each = (0..sent.len())
        .map(|i| format!("(id = ${} AND attempts = ${})", 2 * i + 2, 2 * i + 3))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!("UPDATE notifications SET sent_at = $1, last_error = NULL WHERE {each}");
    let mut query = sqlx::query(&sql).bind(now);
    for (id, attempt) in sent {
        query = query.bind(id).bind(*attempt);
    }
    query.execute(conn).await?;
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
