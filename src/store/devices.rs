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

/// Forgets every device of a person.
pub async fn delete_for_person(conn: &mut Conn, person_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM trusted_devices WHERE person_id = $1")
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets all but a person's `keep` newest devices.
pub async fn keep_newest(conn: &mut Conn, person_id: &str, keep: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM trusted_devices WHERE person_id = $1 AND token_hash NOT IN \
         (SELECT token_hash FROM trusted_devices WHERE person_id = $1 \
          ORDER BY created_at DESC, token_hash LIMIT $2)",
    )
    .bind(person_id)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(())
}
