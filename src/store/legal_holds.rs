//! Legal holds: a client's or a thread's data kept whatever else asks for its deletion;
//! and the threads retention would remove, which no hold covers.

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

/// SQL: the thread `t` is covered by a hold in force, on itself or on a client who takes
/// part in it (or did).
pub const HELD: &str = "EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL \
     AND (h.thread_id = t.id OR h.client_id IN \
          (SELECT p.person_id FROM thread_participants p WHERE p.thread_id = t.id)))";

/// Whether a hold in force covers the thread (see [`HELD`]).
pub async fn covers_thread(conn: &mut Conn, thread_id: &str) -> Result<bool, sqlx::Error> {
    let held: i64 = sqlx::query_scalar(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM threads t WHERE t.id = $1 AND {HELD}"
    ))
    .bind(thread_id)
    .fetch_one(conn)
    .await?;
    Ok(held > 0)
}

/// Whether the thread is still past `cutoff` and not held (see [`expired_threads`]);
/// call it after [`lock_thread`] and [`lock_holds`], as its own statement, so that it sees
/// what committed while they waited.
pub async fn still_expired(
    conn: &mut Conn,
    thread_id: &str,
    cutoff: i64,
) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar(&format!(
        "SELECT t.id FROM threads t WHERE t.id = $1 AND t.last_activity_at < $2 \
         AND NOT {STILL_USED} AND NOT {HELD}"
    ))
    .bind(thread_id)
    .bind(cutoff)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Orders placing holds against deleting on PostgreSQL (SQLite runs one writer at a time):
/// a deletion takes the practice's hold lock shared before it looks for holds and keeps it
/// to its commit; placing a hold takes it alone. So a hold is either seen by a deletion or
/// placed after it, on what is left.
pub async fn lock_holds(
    conn: &mut Conn,
    practice_id: &str,
    placing: bool,
) -> Result<(), sqlx::Error> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    let function = if placing {
        "pg_advisory_xact_lock"
    } else {
        "pg_advisory_xact_lock_shared"
    };
    sqlx::query(&format!("SELECT {function}(1147, hashtext($1))"))
        .bind(practice_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the thread's row until the transaction ends (PostgreSQL), so that a reply or a
/// note waits for a decision to delete it.
pub async fn lock_thread(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    sqlx::query("SELECT id FROM threads WHERE id = $1 FOR UPDATE")
        .bind(thread_id)
        .fetch_optional(conn)
        .await?;
    Ok(())
}

/// A practice's retention: its id, slug and years.
#[derive(Debug, Clone, FromRow)]
pub struct Retention {
    pub practice_id: String,
    pub slug: String,
    pub retention_years: i64,
}

/// The practices that keep threads for a limited time.
pub async fn retentions(conn: &mut Conn) -> Result<Vec<Retention>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id AS practice_id, p.slug, s.retention_years FROM practice_settings s \
         JOIN practices p ON p.id = s.practice_id WHERE s.retention_years IS NOT NULL \
         ORDER BY p.slug",
    )
    .fetch_all(conn)
    .await
}

/// SQL: the thread `t` had an internal note since `$2` or has a send scheduled in it
/// (activity that does not move its last activity, which its clients see).
const STILL_USED: &str = "(EXISTS (SELECT 1 FROM thread_notes n WHERE n.thread_id = t.id \
     AND n.created_at >= $2) \
     OR EXISTS (SELECT 1 FROM drafts d WHERE d.thread_id = t.id AND d.send_at IS NOT NULL))";

/// A practice's threads last active before `cutoff` (messages, internal notes, scheduled
/// sends) that no hold covers, oldest first: (id, last activity).
pub async fn expired_threads(
    conn: &mut Conn,
    practice_id: &str,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT t.id, t.last_activity_at FROM threads t WHERE t.practice_id = $1 \
         AND t.last_activity_at < $2 AND NOT {STILL_USED} AND NOT {HELD} \
         ORDER BY t.last_activity_at, t.id LIMIT $3"
    ))
    .bind(practice_id)
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await
}
