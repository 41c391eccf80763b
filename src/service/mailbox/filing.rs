//! One's own state of threads: which folder they sit in, read or unread; one at a time
//! or up to 500 at once.

use crate::domain::events::EventKind;
use crate::domain::ids::ThreadId;
use crate::domain::mailbox::Placement;
use crate::error::{AppError, AppResult};
use crate::store::threads;
use crate::store::Conn;

use super::super::audit::{record, AuditEntry};
use super::super::{AppState, Caller};
use super::read::{resolve_folder, FolderRef};
use super::thread_event;

pub const MAX_BULK: usize = 500;

/// A folder a thread can be moved to: Inbox, Archive, Trash or a custom folder.
async fn target_folder(conn: &mut Conn, caller: &Caller, name: &str) -> AppResult<Placement> {
    match resolve_folder(conn, caller, name).await? {
        FolderRef::Place(place) => Ok(place),
        FolderRef::Sent | FolderRef::Team(_) => Err(AppError::invalid(
            "folder",
            "folder: Sent and team folders are views; move a thread to inbox, archive, trash or a folder of yours.",
        )),
    }
}

/// The caller's (folder, unread) of a thread, if it is in their mailbox.
async fn my_state(
    conn: &mut Conn,
    caller: &Caller,
    thread_id: &str,
) -> AppResult<Option<(String, bool)>> {
    Ok(
        threads::state_of(conn, thread_id, caller.person.id.as_str())
            .await?
            .filter(|(folder, _)| folder != Placement::Removed.as_stored()),
    )
}

/// Moves a thread and/or marks it read or unread, for the caller only.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    folder: Option<&str>,
    read: Option<bool>,
) -> AppResult<(String, bool)> {
    let thread_id = thread_id.as_str();
    if folder.is_none() && read.is_none() {
        return Err(AppError::invalid("folder", "Give folder, read or both."));
    }
    let mut tx = state.store.begin().await?;
    let folder = match folder {
        Some(name) => Some(target_folder(&mut tx, caller, name).await?),
        None => None,
    };
    my_state(&mut tx, caller, thread_id)
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    apply(
        &mut tx,
        state,
        caller,
        thread_id,
        folder.as_ref(),
        read.map(|r| !r),
    )
    .await?;
    let now = my_state(&mut tx, caller, thread_id)
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    tx.commit().await?;
    Ok(now)
}

async fn apply(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    folder: Option<&Placement>,
    unread: Option<bool>,
) -> AppResult<()> {
    let stored = folder.map(Placement::as_stored);
    threads::set_state(conn, thread_id, caller.person.id.as_str(), stored, unread).await?;
    thread_event(
        conn,
        state,
        caller,
        EventKind::ThreadStateChanged,
        thread_id,
    )
    .await?;
    if folder.is_some() {
        record(
            conn,
            state,
            caller,
            AuditEntry::new("move_thread", "thread", thread_id),
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    MarkRead,
    MarkUnread,
    Move,
    Archive,
    Trash,
    Restore,
}

/// Applies one action to many of the caller's threads: all of them or none.
#[tracing::instrument(skip_all, fields(count = thread_ids.len()))]
pub async fn bulk(
    state: &AppState,
    caller: &Caller,
    thread_ids: &[String],
    action: BulkAction,
    folder: Option<&str>,
) -> AppResult<usize> {
    if thread_ids.is_empty() || thread_ids.len() > MAX_BULK {
        return Err(AppError::invalid(
            "thread_ids",
            format!("thread_ids must hold 1 to {MAX_BULK} ids."),
        ));
    }
    let mut ids: Vec<&str> = thread_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = state.store.begin().await?;
    let (folder, unread) = match action {
        BulkAction::MarkRead => (None, Some(false)),
        BulkAction::MarkUnread => (None, Some(true)),
        BulkAction::Archive => (Some(Placement::Archive), None),
        BulkAction::Trash => (Some(Placement::Trash), None),
        BulkAction::Restore => (Some(Placement::Inbox), None),
        BulkAction::Move => {
            let name = folder.ok_or_else(|| {
                AppError::invalid("folder", "folder is required to move threads.")
            })?;
            (Some(target_folder(&mut tx, caller, name).await?), None)
        }
    };
    for id in &ids {
        if my_state(&mut tx, caller, id).await?.is_none() {
            return Err(AppError::not_found("thread")
                .with_field("thread_ids")
                .with_detail(format!(
                    "thread_ids: no thread {id:?} in your mailbox; nothing was changed."
                )));
        }
    }
    for id in &ids {
        apply(&mut tx, state, caller, id, folder.as_ref(), unread).await?;
    }
    tx.commit().await?;
    Ok(ids.len())
}
