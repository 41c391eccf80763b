//! Idempotency keys of sends: a retried request returns the first result.

use super::Conn;

/// (request hash, thread id, message id) stored under a person's key.
pub async fn find(
    conn: &mut Conn,
    person_id: &str,
    key: &str,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT request_hash, thread_id, message_id FROM idempotency_keys WHERE person_id = $1 AND key = $2")
        .bind(person_id)
        .bind(key)
        .fetch_optional(conn)
        .await
}

pub async fn insert(
    conn: &mut Conn,
    person_id: &str,
    key: &str,
    request_hash: &str,
    thread_id: &str,
    message_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (person_id, key, request_hash, thread_id, message_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(person_id)
    .bind(key)
    .bind(request_hash)
    .bind(thread_id)
    .bind(message_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_older_than(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Forgets the keys of a deleted thread.
pub async fn delete_for_thread(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE thread_id = $1")
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}
