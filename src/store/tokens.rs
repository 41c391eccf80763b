//! Single-use links (setup, invitations). Only hashes are stored; using one is atomic.

use super::Conn;

/// A token to store (its hash only).
pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub purpose: &'a str,
    pub person_id: Option<&'a str>,
    /// The address an email-change token confirms.
    pub address: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut Conn, token: &NewToken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, person_id, address, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token.token_hash)
    .bind(token.purpose)
    .bind(token.person_id)
    .bind(token.address)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the token is unused and unexpired, and whose it is.
pub async fn find_valid(
    conn: &mut Conn,
    token_hash: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT person_id FROM one_time_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Marks the token used if it is valid; `None` if it was not (unknown, used or expired).
pub async fn consume(
    conn: &mut Conn,
    token_hash: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE one_time_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING person_id",
    )
    .bind(now)
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(conn)
    .await
}

/// Invalidates the unused tokens of this purpose (for a person, or all of them when `None`).
pub async fn revoke_unused(
    conn: &mut Conn,
    purpose: &str,
    person_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM one_time_tokens WHERE purpose = $1 AND used_at IS NULL \
         AND (CAST($2 AS TEXT) IS NULL OR person_id = $2)",
    )
    .bind(purpose)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses a token bound to an address if it is valid: whose it is, and the address.
pub async fn consume_with_address(
    conn: &mut Conn,
    token_hash: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<(Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE one_time_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING person_id, address",
    )
    .bind(now)
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(conn)
    .await
}
