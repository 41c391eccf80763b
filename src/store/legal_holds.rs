//! Legal holds: a client's or a thread's data kept whatever else asks for its deletion.

use sqlx::FromRow;

use super::Conn;

#[derive(Debug, Clone, FromRow)]
pub struct HoldRow {
    pub id: String,
    pub practice_id: String,
    pub client_id: Option<String>,
    pub thread_id: Option<String>,
    pub placed_by: String,
    pub placed_at: i64,
}

const COLUMNS: &str = "id, practice_id, client_id, thread_id, placed_by, placed_at";

pub async fn insert(conn: &mut Conn, hold: &HoldRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO legal_holds ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&hold.id)
    .bind(&hold.practice_id)
    .bind(&hold.client_id)
    .bind(&hold.thread_id)
    .bind(&hold.placed_by)
    .bind(hold.placed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A practice's holds in force, oldest first.
pub async fn active(conn: &mut Conn, practice_id: &str) -> Result<Vec<HoldRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM legal_holds WHERE practice_id = $1 AND released_at IS NULL \
         ORDER BY placed_at, id"
    ))
    .bind(practice_id)
    .fetch_all(conn)
    .await
}

/// Releases a hold in force; false when there is none by that id in the practice.
pub async fn release(
    conn: &mut Conn,
    practice_id: &str,
    id: &str,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE legal_holds SET released_by = $1, released_at = $2 \
         WHERE id = $3 AND practice_id = $4 AND released_at IS NULL",
    )
    .bind(by)
    .bind(at)
    .bind(id)
    .bind(practice_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a hold in force covers the thread: on the thread itself, or on a client who
/// takes part in it (or did).
pub async fn covers_thread(conn: &mut Conn, thread_id: &str) -> Result<bool, sqlx::Error> {
    let holds: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM legal_holds h WHERE h.released_at IS NULL \
         AND (h.thread_id = $1 OR h.client_id IN \
              (SELECT p.person_id FROM thread_participants p WHERE p.thread_id = $1))",
    )
    .bind(thread_id)
    .fetch_one(conn)
    .await?;
    Ok(holds > 0)
}
