//! Legal holds (administrators): a client's or a thread's data is kept while a hold is in
//! force. Staff may not permanently delete held messages or threads (409 `legal_hold`),
//! and nothing held is purged. Placing and releasing a hold are audited.

use crate::domain::ids::LegalHoldId;
use crate::domain::{Code, Role};
use crate::error::{AppError, AppResult};
use crate::store::legal_holds::{self as store, HoldRow};
use crate::store::{people, threads, Conn};

use super::audit::{record, AuditEntry};
use super::{AppState, Caller};

/// What a hold is placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTarget {
    Client(String),
    Thread(String),
}

impl HoldTarget {
    /// Exactly one of a client's id and a thread's id.
    pub fn of(client_id: Option<String>, thread_id: Option<String>) -> AppResult<Self> {
        match (client_id, thread_id) {
            (Some(c), None) => Ok(Self::Client(c)),
            (None, Some(t)) => Ok(Self::Thread(t)),
            _ => Err(AppError::invalid(
                "client_id",
                "Name exactly one of client_id and thread_id.",
            )),
        }
    }
}

fn admins_only(caller: &Caller) -> AppResult<()> {
    if caller.role() != Role::Admin {
        return Err(AppError::forbidden(
            "Only administrators place and release legal holds.",
        ));
    }
    Ok(())
}

/// Places a hold on a client of the practice or on one of its threads.
pub async fn place(state: &AppState, caller: &Caller, target: HoldTarget) -> AppResult<HoldRow> {
    admins_only(caller)?;
    let practice_id = caller.practice_id();
    let mut tx = state.store.begin().await?;
    // A deletion under way finishes first; what it deleted is then not found here.
    store::lock_holds(&mut tx, practice_id, true).await?;
    let (client_id, thread_id) = match target {
        HoldTarget::Client(id) => {
            let person = people::find(&mut tx, practice_id, &id).await?;
            if person.is_none_or(|p| p.role != Role::Client.as_str()) {
                return Err(AppError::not_found("client").with_field("client_id"));
            }
            (Some(id), None)
        }
        HoldTarget::Thread(id) => {
            if threads::find(&mut tx, &state.keys, practice_id, &id)
                .await?
                .is_none()
            {
                return Err(AppError::not_found("thread").with_field("thread_id"));
            }
            (None, Some(id))
        }
    };
    let hold = HoldRow {
        id: LegalHoldId::generate().into_string(),
        practice_id: practice_id.to_string(),
        client_id,
        thread_id,
        placed_by: caller.person.id.as_str().to_string(),
        placed_at: state.now(),
    };
    store::insert(&mut tx, &hold).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("place_legal_hold", "legal_hold", &hold.id),
    )
    .await?;
    tx.commit().await?;
    Ok(hold)
}

/// The practice's holds in force.
pub async fn list(state: &AppState, caller: &Caller) -> AppResult<Vec<HoldRow>> {
    admins_only(caller)?;
    let mut conn = state.store.read().await?;
    Ok(store::active(&mut conn, caller.practice_id()).await?)
}

/// Releases a hold in force; 404 for one released already or not the practice's.
pub async fn release(state: &AppState, caller: &Caller, id: &LegalHoldId) -> AppResult<()> {
    admins_only(caller)?;
    let mut tx = state.store.begin().await?;
    let by = caller.person.id.as_str();
    if !store::release(&mut tx, caller.practice_id(), id.as_str(), by, state.now()).await? {
        return Err(AppError::not_found("legal hold"));
    }
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("release_legal_hold", "legal_hold", id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses to delete a thread of `practice_id`, or anything in it, that a hold in force
/// covers. Call it in the deleting transaction: a hold placed meanwhile waits for it.
pub async fn check_not_held(conn: &mut Conn, practice_id: &str, thread_id: &str) -> AppResult<()> {
    store::lock_holds(conn, practice_id, false).await?;
    if store::covers_thread(conn, thread_id).await? {
        return Err(AppError::new(
            Code::LegalHold,
            "This thread is under a legal hold: nothing in it can be deleted until an \
             administrator releases the hold.",
        ));
    }
    Ok(())
}
