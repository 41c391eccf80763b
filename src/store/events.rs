//! The event log: every mailbox change appends a row in the same transaction; derived
//! state (search, live push, notifications, sync) follows it with a cursor.

use super::Conn;
use crate::domain::events::EventKind;

pub struct NewEvent<'a> {
    pub practice_id: &'a str,
    pub kind: EventKind,
    pub thread_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub at: i64,
}

/// Appends `e`; returns its sequence number.
pub async fn append(conn: &mut Conn, e: &NewEvent<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO events (practice_id, kind, thread_id, message_id, actor_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(e.practice_id)
    .bind(e.kind.as_str())
    .bind(e.thread_id)
    .bind(e.message_id)
    .bind(e.actor_id)
    .bind(e.at)
    .fetch_one(conn)
    .await
}

/// The channel on which PostgreSQL nodes hear of new events.
pub const CHANNEL: &str = "confide_events";

/// Tells the other PostgreSQL nodes, when this transaction commits, that the log grew.
pub async fn notify_nodes(conn: &mut Conn) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// The sequence numbers after `after`, in order, at most `limit`.
pub async fn seqs_after(conn: &mut Conn, after: i64, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// The last sequence number in the log (0 when it is empty).
pub async fn max_seq(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events")
        .fetch_one(conn)
        .await
}
