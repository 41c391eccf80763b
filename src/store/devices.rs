//! Trusted devices: clients that signed in successfully. Only token hashes are stored.

use super::Conn;

/// The person a device token belongs to, if it is known and unexpired.
pub async fn person_of(
    conn: &mut Conn,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT person_id FROM trusted_devices WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await
}

pub async fn insert(
    conn: &mut Conn,
    token_hash: &str,
    person_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trusted_devices (token_hash, person_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(person_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets devices whose trust ran out.
pub async fn delete_expired(conn: &mut Conn, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM trusted_devices WHERE expires_at <= $1")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
