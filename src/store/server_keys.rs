//! Keys the server makes for itself, shared by every node through the database.

use super::Conn;

/// The key named `name`: the stored one, or `fresh` stored now if there is none yet (the
/// first node to start wins; the others read its key).
pub async fn get_or_insert(
    conn: &mut Conn,
    name: &str,
    fresh: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
}
