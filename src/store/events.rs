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

pub async fn append(conn: &mut Conn, e: &NewEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (practice_id, kind, thread_id, message_id, actor_id, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.practice_id)
    .bind(e.kind.as_str())
    .bind(e.thread_id)
    .bind(e.message_id)
    .bind(e.actor_id)
    .bind(e.at)
    .execute(conn)
    .await?;
    Ok(())
}
