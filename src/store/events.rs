//! The event log: every mailbox change appends a row in the same transaction; derived
//! state (search, live push, notifications, sync) follows it with a cursor.

use super::Conn;
use crate::domain::events::EventKind;

#[derive(Clone)]
pub struct NewEvent<'a> {
    pub practice_id: &'a str,
    pub kind: EventKind,
    pub thread_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub at: i64,
}

/// Appends `events` in one statement; returns their sequence numbers, in order. On
/// PostgreSQL the transaction takes its id before the numbers, so that a reader who sees
/// a hole can tell, from the transactions still running, whether it may yet fill (see
/// `events::gaps`).
pub async fn append_all(conn: &mut Conn, events: &[NewEvent<'_>]) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let columns = "INSERT INTO events (practice_id, kind, thread_id, message_id, actor_id, at)";
    let sql = if is_postgres(conn) {
        let rows = (0..events.len())
            .map(|i| format!("SELECT {} FROM xact", super::placeholders(i * 6 + 1, 6)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        format!(
            "WITH xact AS MATERIALIZED (SELECT pg_current_xact_id() AS id) {columns} {rows} \
             RETURNING seq"
        )
    } else {
        let rows = (0..events.len())
            .map(|i| format!("({})", super::placeholders(i * 6 + 1, 6)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{columns} VALUES {rows} RETURNING seq")
    };
    let mut query = sqlx::query_scalar(&sql);
    for e in events {
        query = query
            .bind(e.practice_id)
            .bind(e.kind.as_str())
            .bind(e.thread_id)
            .bind(e.message_id)
            .bind(e.actor_id)
            .bind(e.at);
    }
    // Numbers are drawn as the rows go in, in the order given.
    let mut seqs: Vec<i64> = query.fetch_all(conn).await?;
    seqs.sort_unstable();
    Ok(seqs)
}

fn is_postgres(conn: &Conn) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// What one read of the log saw of the transactions running (PostgreSQL): every
/// transaction with an id below `oldest` had ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub oldest: i64,
}

/// The column that says, in the same snapshot as a read's rows, which transactions had
/// ended: the snapshot's xmin.
pub const IN_FLIGHT_COLUMN: &str =
    "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS oldest";

/// A transaction id above every one given out so far (PostgreSQL): the reader takes one
/// of its own, in a transaction that writes nothing and is not waited for on disk. (A
/// snapshot's xmax does not do: a transaction may run with a higher id than any ended.)
pub async fn xact_id_bound(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let id = sqlx::query_scalar("SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The channel on which PostgreSQL nodes hear of new events.
pub const CHANNEL: &str = "confide_events";

/// The sequence numbers after `after`, in order, at most `limit`, and (on PostgreSQL,
/// when there are any) the transactions running as they were read.
pub async fn seqs_after(
    conn: &mut Conn,
    after: i64,
    limit: i64,
) -> Result<(Vec<i64>, Option<InFlight>), sqlx::Error> {
    if !is_postgres(conn) {
        let seqs =
            sqlx::query_scalar("SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(conn)
                .await?;
        return Ok((seqs, None));
    }
    let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT seq, {IN_FLIGHT_COLUMN} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let in_flight = rows.first().map(|&(_, oldest)| InFlight { oldest });
    Ok((rows.into_iter().map(|(seq, _)| seq).collect(), in_flight))
}

/// The last sequence number in the log (0 when it is empty).
pub async fn max_seq(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events")
        .fetch_one(conn)
        .await
}
