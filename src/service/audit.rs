//! Appending, reading, verifying and exporting audit events.

use bytes::Bytes;
use futures_util::Stream;

use crate::error::{AppError, AppResult};
use crate::store::audit::{self as audit_store, AuditRow, NewAuditEvent};
pub use crate::store::audit::{AuditFilter, ChainCheck};
use crate::store::{Conn, Store};

use super::cursor::List;
use super::{AppState, Caller, Person, RequestMeta};

/// What an audit event is about. Ids only, never content.
pub struct AuditEntry<'a> {
    pub action: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub outcome: &'a str,
}

impl<'a> AuditEntry<'a> {
    pub fn new(action: &'a str, object_type: &'a str, object_id: &'a str) -> Self {
        Self {
            action,
            object_type: Some(object_type),
            object_id: Some(object_id),
            outcome: "success",
        }
    }

    pub fn outcome(mut self, outcome: &'a str) -> Self {
        self.outcome = outcome;
        self
    }
}

/// Records an action of a signed-in caller, inside the caller's transaction.
pub async fn record(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    entry: AuditEntry<'_>,
) -> AppResult<()> {
    audit_store::append(conn, &caller_event(state, caller, entry)).await?;
    Ok(())
}

/// The event of something the caller did, in their session.
fn caller_event(state: &AppState, caller: &Caller, entry: AuditEntry<'_>) -> NewAuditEvent {
    new_event(
        state,
        Some(caller.practice_id()),
        Some(caller.person.id.as_str()),
        Some(caller.session_id.as_str()),
        &caller.meta,
        entry,
    )
}

/// Records, in a transaction of its own, that the caller was shown something they may
/// see (a list of threads, a draft, a directory page): reads of health information are
/// audited like changes.
pub async fn record_read(
    state: &AppState,
    caller: &Caller,
    entry: AuditEntry<'_>,
) -> AppResult<()> {
    let event = caller_event(state, caller, entry);
    // Committed with whatever else is being written now (group commit), durably before
    // the caller is shown anything.
    state
        .store
        .grouped(move |tx| Box::pin(async move { audit_store::append(tx, &event).await }))
        .await?;
    Ok(())
}

/// Records what a person did about their own account through a link, without a session
/// (a password reset, an email confirmation).
pub async fn record_for_self(
    conn: &mut Conn,
    state: &AppState,
    person: &Person,
    meta: &RequestMeta,
    action: &str,
) -> AppResult<()> {
    let id = person.id.as_str();
    let entry = AuditEntry::new(action, "person", id);
    record_raw(
        conn,
        state,
        Some(person.practice_id.as_str()),
        Some(id),
        None,
        meta,
        entry,
    )
    .await
}

/// Records an action whose actor may not be known (sign-in attempts, setup, the CLI).
pub async fn record_raw(
    conn: &mut Conn,
    state: &AppState,
    practice_id: Option<&str>,
    actor_id: Option<&str>,
    session_ref: Option<&str>,
    meta: &RequestMeta,
    entry: AuditEntry<'_>,
) -> AppResult<()> {
    let event = new_event(state, practice_id, actor_id, session_ref, meta, entry);
    audit_store::append(conn, &event).await?;
    Ok(())
}

fn new_event(
    state: &AppState,
    practice_id: Option<&str>,
    actor_id: Option<&str>,
    session_ref: Option<&str>,
    meta: &RequestMeta,
    entry: AuditEntry<'_>,
) -> NewAuditEvent {
    NewAuditEvent {
        at: state.now(),
        practice_id: practice_id.map(str::to_string),
        actor_id: actor_id.map(str::to_string),
        action: entry.action.to_string(),
        object_type: entry.object_type.map(str::to_string),
        object_id: entry.object_id.map(str::to_string),
        outcome: entry.outcome.to_string(),
        ip: meta.ip.clone(),
        session_ref: session_ref.map(str::to_string),
    }
}

/// A page of the caller's practice's audit log, newest first (admins only), and the
/// cursor of the next page.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: AuditFilter<'_>,
    cursor: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<AuditRow>, Option<String>)> {
    let holder = caller.person.id.as_str();
    let before: Option<i64> = cursor
        .map(|c| state.cursors.decode(List::Audit, holder, c))
        .transpose()?;
    if caller.role() != crate::domain::Role::Admin {
        return Err(AppError::forbidden(
            "Only administrators read the audit log.",
        ));
    }
    let limit = limit.clamp(1, 500);
    let mut conn = state.store.read().await?;
    let mut rows =
        audit_store::list(&mut conn, caller.practice_id(), filter, before, limit + 1).await?;
    let next = state
        .cursors
        .next_page(List::Audit, holder, &mut rows, limit, |r| r.seq);
    Ok((rows, next))
}

fn admins_only(caller: &Caller) -> AppResult<()> {
    if caller.role() != crate::domain::Role::Admin {
        return Err(AppError::forbidden(
            "Only administrators read the audit log.",
        ));
    }
    Ok(())
}

/// An anchor as written down: `SEQ:HASH`, the chain's head at some moment.
pub fn parse_anchor(value: &str) -> AppResult<(i64, String)> {
    let bad = || {
        AppError::invalid(
            "anchor",
            "An anchor is SEQ:HASH, as `confide audit anchor` prints it.",
        )
    };
    let (seq, hash) = value.split_once(':').ok_or_else(bad)?;
    let seq: i64 = seq.trim().parse().map_err(|_| bad())?;
    let hash = hash.trim().to_ascii_lowercase();
    if seq < 1 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, hash))
}

/// Walks the whole chain (and checks `anchor`, a head written down earlier).
pub async fn verify(store: &Store, anchor: Option<&(i64, String)>) -> AppResult<ChainCheck> {
    let mut conn = store.read().await?;
    let anchor = anchor.map(|(seq, hash)| (*seq, hash.as_str()));
    Ok(audit_store::verify_chain(&mut conn, anchor).await?)
}

/// [`verify`], for an administrator.
pub async fn verify_for(
    state: &AppState,
    caller: &Caller,
    anchor: Option<&str>,
) -> AppResult<ChainCheck> {
    admins_only(caller)?;
    let anchor = anchor.map(parse_anchor).transpose()?;
    let entry = AuditEntry::new("verify_audit", "practice", caller.practice_id());
    record_read(state, caller, entry).await?;
    verify(&state.store, anchor.as_ref()).await
}

/// The chain's head now: written down elsewhere, it proves later that the history up to
/// it was not rewritten.
pub async fn anchor(store: &Store) -> AppResult<(i64, String)> {
    let mut conn = store.read().await?;
    Ok(audit_store::head(&mut conn).await?)
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one row per event.
    Csv,
}

impl ExportFormat {
    pub fn parse(value: Option<&str>) -> AppResult<Self> {
        match value.unwrap_or("jsonl") {
            "jsonl" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            _ => Err(AppError::invalid("format", "The format is jsonl or csv.")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

const CSV_HEADER: &str =
    "seq,at,actor_id,action,object_type,object_id,outcome,ip,session_ref,prev_hash,hash\n";

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn write_row(out: &mut String, format: ExportFormat, row: &AuditRow) {
    let at = crate::clock::to_datetime(row.at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match format {
        ExportFormat::Jsonl => {
            let line = serde_json::json!({
                "seq": row.seq,
                "at": at,
                "actor_id": row.actor_id,
                "action": row.action,
                "object_type": row.object_type,
                "object_id": row.object_id,
                "outcome": row.outcome,
                "ip": row.ip,
                "session_ref": row.session_ref,
                "prev_hash": row.prev_hash,
                "hash": row.hash,
            });
            out.push_str(&line.to_string());
        }
        ExportFormat::Csv => {
            let seq = row.seq.to_string();
            let fields = [
                seq.as_str(),
                at.as_str(),
                row.actor_id.as_deref().unwrap_or(""),
                &row.action,
                row.object_type.as_deref().unwrap_or(""),
                row.object_id.as_deref().unwrap_or(""),
                &row.outcome,
                row.ip.as_deref().unwrap_or(""),
                row.session_ref.as_deref().unwrap_or(""),
                &row.prev_hash,
                &row.hash,
            ];
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(out, field);
            }
        }
    }
    out.push('\n');
}

/// Where an export stands between two reads.
struct Exporting {
    store: Store,
    practice_id: String,
    format: ExportFormat,
    from: Option<i64>,
    to: Option<i64>,
    after: i64,
    upto: i64,
    started: bool,
}

/// The caller's practice's audit events at or after `from` and before `to` (milliseconds),
/// oldest first, as `format`, read a page at a time as the stream is written
/// (administrators only). The export is itself audited, and ends with the events up to
/// the moment it began.
pub async fn export(
    state: &AppState,
    caller: &Caller,
    format: ExportFormat,
    from: Option<i64>,
    to: Option<i64>,
) -> AppResult<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static> {
    admins_only(caller)?;
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            return Err(AppError::invalid("to", "`to` must come after `from`."));
        }
    }
    let mut tx = state.store.begin().await?;
    let practice_id = caller.practice_id().to_string();
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("export_audit", "practice", &practice_id),
    )
    .await?;
    let upto = audit_store::head(&mut tx).await?.0;
    tx.commit().await?;
    let exporting = Exporting {
        store: state.store.clone(),
        practice_id,
        format,
        from,
        to,
        after: 0,
        upto,
        started: false,
    };
    Ok(futures_util::stream::try_unfold(
        exporting,
        |mut e| async move {
            let rows = {
                let mut conn = e.store.read().await.map_err(std::io::Error::other)?;
                audit_store::export_page(&mut conn, &e.practice_id, (e.after, e.upto), e.from, e.to)
                    .await
                    .map_err(std::io::Error::other)?
            };
            let mut out = String::new();
            if !e.started && e.format == ExportFormat::Csv {
                out.push_str(CSV_HEADER);
            }
            e.started = true;
            let Some(last) = rows.last() else {
                return Ok((!out.is_empty()).then(|| (Bytes::from(out), e)));
            };
            e.after = last.seq;
            for row in &rows {
                write_row(&mut out, e.format, row);
            }
            Ok(Some((Bytes::from(out), e)))
        },
    ))
}
