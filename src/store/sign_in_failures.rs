//! Failed sign-ins, counted in the database so that limits hold across server processes.

use super::Conn;

pub async fn record(conn: &mut Conn, scope: &str, key: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sign_in_failures (scope, key, at) VALUES ($1, $2, $3)")
        .bind(scope)
        .bind(key)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many failures since `since`, and when the oldest of them happened.
pub async fn count_since(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    since: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), MIN(at) FROM sign_in_failures WHERE scope = $1 AND key = $2 AND at > $3",
    )
    .bind(scope)
    .bind(key)
    .bind(since)
    .fetch_one(conn)
    .await
}

pub async fn clear(conn: &mut Conn, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_older_than(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
