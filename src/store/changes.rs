//! `mailbox_changes`: what each event did for each person it concerns (see
//! `domain::events::audience`), and how far back that log can still be read.

use sqlx::FromRow;

use super::Conn;
use crate::domain::events::PersonChange;

/// Rows per INSERT: 7 parameters each, well under either backend's limit.
const INSERT_CHUNK: usize = 400;
const HORIZON: &str = "mailbox_changes";

/// What one event did for one person, as it is written.
pub struct NewChange<'a> {
    pub seq: i64,
    pub at: i64,
    pub thread_id: Option<&'a str>,
    pub change: PersonChange,
}

/// Records changes, each as its event's.
pub async fn insert_all(conn: &mut Conn, rows: &[NewChange<'_>]) -> Result<(), sqlx::Error> {
    insert_all_notifying(conn, rows, None).await
}

/// [`insert_all`], and on PostgreSQL, with `channel`, a `pg_notify` on it in the same
/// statement as the last rows (one round trip fewer; the notice goes out at commit).
pub async fn insert_all_notifying(
    conn: &mut Conn,
    rows: &[NewChange<'_>],
    channel: Option<&str>,
) -> Result<(), sqlx::Error> {
    let chunks: Vec<&[NewChange<'_>]> = rows.chunks(INSERT_CHUNK).collect();
    if chunks.is_empty() {
        if let Some(channel) = channel {
            notify(conn, channel).await?;
        }
        return Ok(());
    }
    let last = chunks.len() - 1;
    for (n, chunk) in chunks.into_iter().enumerate() {
        let values = (0..chunk.len())
            .map(|i| format!("({})", super::placeholders(i * 7 + 1, 7)))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO mailbox_changes (seq, person_id, thread_id, thread_change, folders, \
             drafts, at) VALUES {values}"
        );
        let channel = channel.filter(|_| n == last);
        let sql = match channel {
            Some(_) => format!(
                "WITH inserted AS ({insert}) SELECT pg_notify(${}, '')",
                chunk.len() * 7 + 1
            ),
            None => insert,
        };
        let mut query = sqlx::query(&sql);
        for row in chunk {
            let c = &row.change;
            let thread = c.thread.map(|t| t.as_str());
            query = query
                .bind(row.seq)
                .bind(c.person_id.as_str())
                .bind(thread.and(row.thread_id))
                .bind(thread)
                .bind(c.folders as i64)
                .bind(c.drafts as i64)
                .bind(row.at);
        }
        if let Some(channel) = channel {
            query = query.bind(channel);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A notice on `channel` (PostgreSQL), sent when the transaction commits.
pub async fn notify(conn: &mut Conn, channel: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// One stored change.
#[derive(Debug, Clone, FromRow)]
pub struct ChangeRow {
    pub seq: i64,
    pub person_id: String,
    pub thread_id: Option<String>,
    pub thread_change: Option<String>,
    pub folders: i64,
    pub drafts: i64,
}

const COLUMNS: &str = "seq, person_id, thread_id, thread_change, folders, drafts";

/// One person's changes with `after < seq <= upto`, oldest first, at most `limit`.
pub async fn of_person(
    conn: &mut Conn,
    person_id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<ChangeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mailbox_changes WHERE person_id = $1 AND seq > $2 AND seq <= $3 \
         ORDER BY seq LIMIT $4"
    ))
    .bind(person_id)
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Everyone's changes after `(seq, person)` `after` up to `seq <= upto`, in that order,
/// at most `limit`.
pub async fn between(
    conn: &mut Conn,
    after: (i64, &str),
    upto: i64,
    limit: i64,
) -> Result<Vec<ChangeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mailbox_changes \
         WHERE seq >= $1 AND seq <= $3 AND (seq > $1 OR person_id > $2) \
         ORDER BY seq, person_id LIMIT $4"
    ))
    .bind(after.0)
    .bind(after.1)
    .bind(upto)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The oldest state still answerable: changes after it are all kept.
pub async fn horizon(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM log_horizons WHERE name = $1")
        .bind(HORIZON)
        .fetch_optional(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Forgets changes recorded before `before` (Unix ms) and moves the horizon past them.
/// Returns how many rows went.
pub async fn forget_before(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT CAST(MAX(seq) AS BIGINT) FROM mailbox_changes WHERE at < $1")
            .bind(before)
            .fetch_one(&mut *conn)
            .await?;
    let Some(last) = last else { return Ok(0) };
    sqlx::query(
        "INSERT INTO log_horizons (name, seq) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET seq = CASE WHEN excluded.seq > log_horizons.seq \
         THEN excluded.seq ELSE log_horizons.seq END",
    )
    .bind(HORIZON)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    let gone = sqlx::query("DELETE FROM mailbox_changes WHERE seq <= $1")
        .bind(last)
        .execute(conn)
        .await?;
    Ok(gone.rows_affected())
}

/// `(person id, stored role)` of each participant who has a thread in their mailbox (not
/// those who emptied it from their Trash).
pub async fn readers(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.person_id, pe.role FROM thread_participants p JOIN people pe ON pe.id = p.person_id \
         WHERE p.thread_id = $1 AND p.folder <> 'removed'",
    )
    .bind(thread_id)
    .fetch_all(conn)
    .await
}

/// The participants who emptied a thread from their Trash (a new message brings it back).
pub async fn removed_readers(conn: &mut Conn, thread_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT person_id FROM thread_participants WHERE thread_id = $1 AND folder = 'removed'",
    )
    .bind(thread_id)
    .fetch_all(conn)
    .await
}
