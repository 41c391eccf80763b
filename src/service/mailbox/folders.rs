//! Folders: Inbox, Sent, Drafts, Archive and Trash, one's own folders, and a team folder
//! for one's staff group — each with its unread and total counts.

use crate::domain::events::EventKind;
use crate::domain::ids::FolderId;
use crate::domain::mailbox::{Group, Placement};
use crate::domain::values::bounded_chars;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::folders::{self as folder_store, FolderRow};
use crate::store::{drafts, is_unique_violation, threads};

use super::super::audit::{record, AuditEntry};
use super::super::{AppState, Caller};
use super::{append_event, thread_event};

const MAX_FOLDERS: usize = 200;
pub const RESERVED: [&str; 6] = ["inbox", "sent", "drafts", "scheduled", "archive", "trash"];

#[derive(Debug, Clone)]
pub struct FolderView {
    /// What to pass as `folder`: inbox, sent, drafts, archive, trash, team:<group> or an id.
    pub id: String,
    pub name: String,
    /// system, custom or team.
    pub kind: &'static str,
    pub total: i64,
    pub unread: i64,
}

/// The caller's folders with their counts.
pub async fn list(state: &AppState, caller: &Caller) -> AppResult<Vec<FolderView>> {
    let me = caller.person.id.as_str();
    let mut conn = state.store.read().await?;
    let counts = threads::counts(&mut conn, me).await?;
    let count_of = |folder: &str| {
        counts
            .iter()
            .find(|(f, _, _)| f == folder)
            .map(|(_, total, unread)| (*total, *unread))
            .unwrap_or((0, 0))
    };
    let system = |id: &str, name: &str, (total, unread): (i64, i64)| FolderView {
        id: id.into(),
        name: name.into(),
        kind: "system",
        total,
        unread,
    };
    let mut out = vec![
        system("inbox", "Inbox", count_of("inbox")),
        system("sent", "Sent", count_of("sent")),
        system(
            "drafts",
            "Drafts",
            (drafts::count_plain(&mut conn, me).await?, 0),
        ),
        system(
            "scheduled",
            "Scheduled",
            (drafts::count_scheduled(&mut conn, me).await?, 0),
        ),
        system("archive", "Archive", count_of("archive")),
        system("trash", "Trash", count_of("trash")),
    ];
    for f in folder_store::list(&mut conn, me).await? {
        let (total, unread) = count_of(&f.id);
        out.push(FolderView {
            id: f.id,
            name: f.name,
            kind: "custom",
            total,
            unread,
        });
    }
    if let Some(group) = Group::of_role(caller.role()) {
        let (total, unread) = count_of(&format!("team:{}", group.as_str()));
        out.push(FolderView {
            id: format!("team:{}", group.as_str()),
            name: group.display_name().into(),
            kind: "team",
            total,
            unread,
        });
    }
    Ok(out)
}

fn folder_name(raw: &str) -> AppResult<String> {
    let name = bounded_chars("name", raw, 1, 100)?;
    if RESERVED.contains(&name.to_lowercase().as_str()) || name.to_lowercase().starts_with("team:")
    {
        return Err(AppError::invalid(
            "name",
            format!("name: {name:?} is the name of a built-in folder."),
        ));
    }
    Ok(name)
}

fn name_taken() -> AppError {
    AppError::new(
        Code::FolderNameTaken,
        "name: you already have a folder of that name.",
    )
    .with_field("name")
}

pub async fn create(state: &AppState, caller: &Caller, name: &str) -> AppResult<FolderView> {
    let name = folder_name(name)?;
    let mut tx = state.store.begin().await?;
    if folder_store::list(&mut tx, caller.person.id.as_str())
        .await?
        .len()
        >= MAX_FOLDERS
    {
        return Err(AppError::invalid(
            "name",
            format!("You can have at most {MAX_FOLDERS} folders."),
        ));
    }
    let row = FolderRow {
        id: FolderId::generate().into_string(),
        practice_id: caller.practice_id().into(),
        person_id: caller.person.id.to_string(),
        name,
        created_at: state.now(),
    };
    match folder_store::insert(&mut tx, &row).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e, "folders_person_name_key", "folders.person_id") => {
            return Err(name_taken())
        }
        Err(e) => return Err(e.into()),
    }
    append_event(&mut tx, state, caller, EventKind::FolderCreated, None, None).await?;
    tx.commit().await?;
    Ok(FolderView {
        id: row.id,
        name: row.name,
        kind: "custom",
        total: 0,
        unread: 0,
    })
}

pub async fn rename(
    state: &AppState,
    caller: &Caller,
    id: &FolderId,
    name: &str,
) -> AppResult<FolderView> {
    let id = id.as_str();
    let name = folder_name(name)?;
    let mut tx = state.store.begin().await?;
    let folder = folder_store::find(&mut tx, caller.person.id.as_str(), id)
        .await?
        .ok_or_else(|| AppError::not_found("folder"))?;
    match folder_store::rename(&mut tx, &folder.id, &name).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e, "folders_person_name_key", "folders.person_id") => {
            return Err(name_taken())
        }
        Err(e) => return Err(e.into()),
    }
    append_event(&mut tx, state, caller, EventKind::FolderRenamed, None, None).await?;
    tx.commit().await?;
    let views = list(state, caller).await?;
    views
        .into_iter()
        .find(|v| v.id == folder.id)
        .ok_or_else(|| AppError::not_found("folder"))
}

/// Deletes one of the caller's folders; its threads go back to the Inbox.
pub async fn delete(state: &AppState, caller: &Caller, id: &FolderId) -> AppResult<()> {
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let folder = folder_store::find(&mut tx, caller.person.id.as_str(), id)
        .await?
        .ok_or_else(|| AppError::not_found("folder"))?;
    let moved = threads::ids_in_folder(&mut tx, caller.person.id.as_str(), &folder.id).await?;
    threads::move_all(
        &mut tx,
        caller.person.id.as_str(),
        &folder.id,
        Placement::Inbox.as_stored(),
    )
    .await?;
    folder_store::delete(&mut tx, &folder.id).await?;
    for thread_id in &moved {
        thread_event(
            &mut tx,
            state,
            caller,
            EventKind::ThreadStateChanged,
            thread_id,
        )
        .await?;
    }
    append_event(&mut tx, state, caller, EventKind::FolderDeleted, None, None).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("delete_folder", "folder", &folder.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Empties the caller's Trash: its threads leave the caller's mailbox only.
pub async fn empty_trash(state: &AppState, caller: &Caller) -> AppResult<u64> {
    let mut tx = state.store.begin().await?;
    let me = caller.person.id.as_str();
    let trash = Placement::Trash.as_stored();
    let emptied = threads::ids_in_folder(&mut tx, me, trash).await?;
    let removed = threads::move_all(&mut tx, me, trash, Placement::Removed.as_stored()).await?;
    for thread_id in &emptied {
        thread_event(&mut tx, state, caller, EventKind::ThreadRemoved, thread_id).await?;
    }
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("empty_trash", "person", caller.person.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}
