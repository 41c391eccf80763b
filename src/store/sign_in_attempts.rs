//! Sign-in attempts per (scope, key) in fixed windows, counted in the database so that
//! the limits hold across server processes.

use super::Conn;

/// Counts one more attempt; returns (attempts in the current window, its start).
/// A window older than `window_start_before` starts afresh.
pub async fn count_attempt(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    now: i64,
    window_start_before: i64,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO sign_in_attempts (scope, key, window_start, count) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (scope, key) DO UPDATE SET \
         count = CASE WHEN sign_in_attempts.window_start <= $4 THEN 1 ELSE sign_in_attempts.count + 1 END, \
         window_start = CASE WHEN sign_in_attempts.window_start <= $4 THEN $3 ELSE sign_in_attempts.window_start END \
         RETURNING count, window_start",
    )
    .bind(scope)
    .bind(key)
    .bind(now)
    .bind(window_start_before)
    .fetch_one(conn)
    .await
}

/// Takes back one attempt of a window (a sign-in that succeeded).
pub async fn uncount(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    window_start: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sign_in_attempts SET count = count - 1 WHERE scope = $1 AND key = $2 AND window_start = $3 AND count > 0",
    )
    .bind(scope)
    .bind(key)
    .bind(window_start)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a key's attempts.
pub async fn clear(conn: &mut Conn, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_attempts WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_windows_before(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sign_in_attempts WHERE window_start <= $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
