//! The audit log: append-only (triggers refuse UPDATE and DELETE) and hash-chained, each
//! row's hash covering the previous row's hash and every field of its own.

use std::future::Future;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::Conn;

/// One audit event as it is appended. Never holds message content or secrets.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub at: i64,
    pub practice_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub session_ref: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub practice_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub session_ref: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

fn chain_hash(prev_hash: &str, seq: i64, e: &NewAuditEvent) -> String {
    let mut hasher = Sha256::new();
    let opt = |v: &Option<String>| {
        v.clone()
            .map(|s| format!("+{s}"))
            .unwrap_or_else(|| "-".into())
    };
    for part in [
        prev_hash.to_string(),
        seq.to_string(),
        e.at.to_string(),
        opt(&e.practice_id),
        opt(&e.actor_id),
        e.action.clone(),
        opt(&e.object_type),
        opt(&e.object_id),
        e.outcome.clone(),
        opt(&e.ip),
        opt(&e.session_ref),
    ] {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

tokio::task_local! {
    /// Inside a group commit: where the events a write appends wait for its group's commit.
    static DEFERRED: Arc<Mutex<Vec<NewAuditEvent>>>;
}

/// Runs `work` with the events it appends kept in `into` instead of written, so that a
/// group commit appends every write's events together ([`append_all`]).
pub(super) async fn deferring<F: Future>(
    into: Arc<Mutex<Vec<NewAuditEvent>>>,
    work: F,
) -> F::Output {
    DEFERRED.scope(into, work).await
}

/// Appends one event. Call inside the write transaction of the change it records; inside
/// a group commit, it is appended with the group's others just before the commit.
pub async fn append(conn: &mut Conn, event: &NewAuditEvent) -> Result<(), sqlx::Error> {
    let deferred = DEFERRED.try_with(|d| {
        d.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone())
    });
    match deferred {
        Ok(()) => Ok(()),
        Err(_) if conn.backend_name() == "PostgreSQL" => append_in_database(conn, event).await,
        Err(_) => append_all(conn, std::slice::from_ref(event)).await,
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds an event's nine fields, in the order they are stored.
fn bind_event<'q>(query: Query<'q>, e: &'q NewAuditEvent) -> Query<'q> {
    query
        .bind(e.at)
        .bind(&e.practice_id)
        .bind(&e.actor_id)
        .bind(&e.action)
        .bind(&e.object_type)
        .bind(&e.object_id)
        .bind(&e.outcome)
        .bind(&e.ip)
        .bind(&e.session_ref)
}

/// Appends one event on PostgreSQL in one statement (migration 0021 chains it there, with
/// the hash [`chain_hash`] computes): the head, locked until the commit, is then held for
/// that statement and the commit only, where taking it here cost three round trips.
async fn append_in_database(conn: &mut Conn, e: &NewAuditEvent) -> Result<(), sqlx::Error> {
    let query = sqlx::query("SELECT confide_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9)");
    bind_event(query, e).execute(conn).await.map(drop)
}

/// Puts events in `audit_pending` (PostgreSQL), for the chainer to chain after the commit
/// (see `super::chain`).
pub(super) async fn queue(conn: &mut Conn, events: &[NewAuditEvent]) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", super::placeholders(i * 9 + 1, 9)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO audit_pending (at, practice_id, actor_id, action, object_type, \
             object_id, outcome, ip, session_ref) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = bind_event(query, e);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(FromRow)]
struct PendingRow {
    id: i64,
    at: i64,
    practice_id: Option<String>,
    actor_id: Option<String>,
    action: String,
    object_type: Option<String>,
    object_id: Option<String>,
    outcome: String,
    ip: Option<String>,
    session_ref: Option<String>,
}

/// Takes up to `limit` of the oldest pending events out of `audit_pending`, in the order
/// they were queued. A concurrent taker (another node) waits for this transaction and
/// then finds them gone.
pub(super) async fn take_pending(
    conn: &mut Conn,
    limit: usize,
) -> Result<Vec<NewAuditEvent>, sqlx::Error> {
    let mut rows: Vec<PendingRow> = sqlx::query_as(
        "DELETE FROM audit_pending WHERE id IN \
         (SELECT id FROM audit_pending ORDER BY id LIMIT $1) \
         RETURNING id, at, practice_id, actor_id, action, object_type, object_id, outcome, \
         ip, session_ref",
    )
    .bind(limit as i64)
    .fetch_all(conn)
    .await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows
        .into_iter()
        .map(|r| NewAuditEvent {
            at: r.at,
            practice_id: r.practice_id,
            actor_id: r.actor_id,
            action: r.action,
            object_type: r.object_type,
            object_id: r.object_id,
            outcome: r.outcome,
            ip: r.ip,
            session_ref: r.session_ref,
        })
        .collect())
}

/// Rows one INSERT takes (12 values each).
const ROWS_PER_INSERT: usize = 50;

/// Appends events in order: one update of the head for all of them.
pub(super) async fn append_all(
    conn: &mut Conn,
    events: &[NewAuditEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    // Taking the head row first serialises appenders (a row lock on PostgreSQL, the write
    // lock on SQLite), so the chain never forks.
    let (last, mut prev_hash): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
            .bind(events.len() as i64)
            .fetch_one(&mut *conn)
            .await?;
    let first = last - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let seq = first + i as i64;
        let hash = chain_hash(&prev_hash, seq, event);
        rows.push((
            seq,
            event,
            std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        ));
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", super::placeholders(i * 12 + 1, 12)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO audit_events (seq, at, practice_id, actor_id, action, object_type, \
             object_id, outcome, ip, session_ref, prev_hash, hash) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for (seq, event, prev, hash) in chunk {
            query = bind_event(query.bind(*seq), event).bind(prev).bind(hash);
        }
        query.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "seq, at, practice_id, actor_id, action, object_type, object_id, outcome, \
                       ip, session_ref, prev_hash, hash";

/// A practice's events, newest first, before `before_seq`.
/// Narrows an audit list: events of one action, and events whose actor or object is one
/// person (or anything else by id).
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditFilter<'a> {
    pub action: Option<&'a str>,
    pub involving: Option<&'a str>,
}

pub async fn list(
    conn: &mut Conn,
    practice_id: &str,
    filter: AuditFilter<'_>,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE practice_id = $1 AND seq < $2 \
         AND (CAST($4 AS TEXT) IS NULL OR action = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR actor_id = $5 OR object_id = $5) \
         ORDER BY seq DESC LIMIT $3"
    ))
    .bind(practice_id)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .bind(filter.action)
    .bind(filter.involving)
    .fetch_all(conn)
    .await
}

/// Rows per read when walking or exporting the log.
const PAGE: i64 = 5000;

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Events that fit the chain, from the first.
    pub events: i64,
    /// The last event that fits: its seq and hash (0 and 64 zeros for an empty log).
    pub head_seq: i64,
    pub head_hash: String,
    /// The first seq that does not fit: edited, removed, out of order, or past a head or
    /// an anchor that says otherwise.
    pub broken_at: Option<i64>,
}

/// The chain's head as the log itself records it (updated with every append).
pub async fn head(conn: &mut Conn) -> Result<(i64, String), sqlx::Error> {
    sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(conn)
        .await
}

fn event_of(row: &AuditRow) -> NewAuditEvent {
    NewAuditEvent {
        at: row.at,
        practice_id: row.practice_id.clone(),
        actor_id: row.actor_id.clone(),
        action: row.action.clone(),
        object_type: row.object_type.clone(),
        object_id: row.object_id.clone(),
        outcome: row.outcome.clone(),
        ip: row.ip.clone(),
        session_ref: row.session_ref.clone(),
    }
}

/// Walks the chain up to the head the log records when the walk begins (events appended
/// meanwhile are left for the next walk), a page at a time: every row must follow the one
/// before (seq one higher, its `prev_hash` the one before's hash, its own hash recomputed
/// from its fields), the last must be that head, and the row at `anchor`'s seq (a head
/// written down earlier, elsewhere) must carry the anchor's hash.
pub async fn verify_chain(
    conn: &mut Conn,
    anchor: Option<(i64, &str)>,
) -> Result<ChainCheck, sqlx::Error> {
    // The head and its row are written in one transaction: every row up to it is there.
    let (head_seq, head_hash) = head(conn).await?;
    let mut check = ChainCheck {
        events: 0,
        head_seq: 0,
        head_hash: "0".repeat(64),
        broken_at: None,
    };
    'pages: loop {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $3 \
             ORDER BY seq LIMIT $2"
        ))
        .bind(check.head_seq)
        .bind(PAGE)
        .bind(head_seq)
        .fetch_all(&mut *conn)
        .await?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            let expected = check.head_seq + 1;
            let anchored = match anchor {
                Some((seq, hash)) if seq == row.seq => hash == row.hash,
                _ => true,
            };
            if row.seq != expected
                || row.prev_hash != check.head_hash
                || chain_hash(&check.head_hash, row.seq, &event_of(&row)) != row.hash
                || !anchored
            {
                check.broken_at = Some(expected.min(row.seq));
                break 'pages;
            }
            check.events += 1;
            check.head_seq = row.seq;
            check.head_hash = row.hash;
        }
        if !full {
            break;
        }
    }
    if check.broken_at.is_none() {
        let (seq, hash) = (head_seq, head_hash);
        // Rows removed from the end, or a head rewritten.
        check.broken_at = match seq.cmp(&check.head_seq) {
            std::cmp::Ordering::Greater => Some(check.head_seq + 1),
            std::cmp::Ordering::Less => Some(seq + 1),
            std::cmp::Ordering::Equal if hash != check.head_hash => Some(seq.max(1)),
            std::cmp::Ordering::Equal => None,
        };
        if let (None, Some((anchored, _))) = (check.broken_at, anchor) {
            if anchored > check.head_seq {
                // The anchor names an event the log no longer has.
                check.broken_at = Some(check.head_seq + 1);
            }
        }
    }
    Ok(check)
}

/// A practice's events with `after < seq <= upto`, at or after `from` and before `to`
/// (milliseconds), oldest first, at most [`PAGE`].
pub async fn export_page(
    conn: &mut Conn,
    practice_id: &str,
    (after, upto): (i64, i64),
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE practice_id = $1 AND seq > $2 AND seq <= $3 \
         AND at >= $4 AND at < $5 ORDER BY seq LIMIT $6"
    ))
    .bind(practice_id)
    .bind(after)
    .bind(upto)
    .bind(from.unwrap_or(i64::MIN))
    .bind(to.unwrap_or(i64::MAX))
    .bind(PAGE)
    .fetch_all(conn)
    .await
}
