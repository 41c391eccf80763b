//! Appending and reading audit events.

use crate::error::{AppError, AppResult};
pub use crate::store::audit::AuditFilter;
use crate::store::audit::{self as audit_store, AuditRow, NewAuditEvent};
use crate::store::Conn;

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
    record_raw(
        conn,
        state,
        Some(caller.practice_id()),
        Some(caller.person.id.as_str()),
        Some(caller.session_id.as_str()),
        &caller.meta,
        entry,
    )
    .await
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
    audit_store::append(
        conn,
        &NewAuditEvent {
            at: state.now(),
            practice_id: practice_id.map(str::to_string),
            actor_id: actor_id.map(str::to_string),
            action: entry.action.to_string(),
            object_type: entry.object_type.map(str::to_string),
            object_id: entry.object_id.map(str::to_string),
            outcome: entry.outcome.to_string(),
            ip: meta.ip.clone(),
            session_ref: session_ref.map(str::to_string),
        },
    )
    .await?;
    Ok(())
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
