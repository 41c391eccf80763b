//! Sign-in sessions. Only a hash of each token is stored.

use sqlx::FromRow;

use super::people::PersonRow;
use super::Conn;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: String,
    pub person_id: String,
    pub practice_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, person_id, practice_id, created_at, last_seen_at, expires_at";

pub async fn insert(
    conn: &mut Conn,
    row: &SessionRow,
    token_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, person_id, practice_id, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(token_hash)
    .bind(&row.person_id)
    .bind(&row.practice_id)
    .bind(row.created_at)
    .bind(row.last_seen_at)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_by_token_hash(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// A session with its person's row as it is now, in one statement; `None` when either is
/// missing (an unknown token).
pub async fn find_with_person(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<(SessionRow, PersonRow)>, sqlx::Error> {
    #[derive(FromRow)]
    struct Joined {
        session_id: String,
        session_created_at: i64,
        session_last_seen_at: i64,
        session_expires_at: i64,
        #[sqlx(flatten)]
        person: PersonRow,
    }
    let person_columns = super::people::columns_of("p");
    let joined: Option<Joined> = sqlx::query_as(&format!(
        "SELECT s.id AS session_id, s.created_at AS session_created_at, \
         s.last_seen_at AS session_last_seen_at, s.expires_at AS session_expires_at, \
         {person_columns} FROM sessions s \
         JOIN people p ON p.practice_id = s.practice_id AND p.id = s.person_id \
         WHERE s.token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(joined.map(|j| {
        let session = SessionRow {
            id: j.session_id,
            person_id: j.person.id.clone(),
            practice_id: j.person.practice_id.clone(),
            created_at: j.session_created_at,
            last_seen_at: j.session_last_seen_at,
            expires_at: j.session_expires_at,
        };
        (session, j.person)
    }))
}

pub async fn touch(conn: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A person's sessions, the most recently used first.
pub async fn list_for_person(
    conn: &mut Conn,
    person_id: &str,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, person_id, practice_id, created_at, last_seen_at, expires_at \
         FROM sessions WHERE person_id = $1 ORDER BY last_seen_at DESC, id",
    )
    .bind(person_id)
    .fetch_all(conn)
    .await
}

/// Ends one session of a person; false if they have none of that id.
pub async fn delete_of_person(
    conn: &mut Conn,
    id: &str,
    person_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND person_id = $2")
        .bind(id)
        .bind(person_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of a person except `keep` (if given).
pub async fn delete_for_person(
    conn: &mut Conn,
    person_id: &str,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE person_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id <> $2)",
    )
    .bind(person_id)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Removes sessions past their absolute or idle limit.
pub async fn delete_expired(
    conn: &mut Conn,
    now: i64,
    idle_before: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now)
        .bind(idle_before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// A session by id.
pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}
