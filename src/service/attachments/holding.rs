//! Handing checked uploads to messages and drafts.

use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments as store;
use crate::store::Conn;

use crate::service::{AppState, Caller};

fn unknown_attachment(index: usize, id: &str) -> AppError {
    AppError::field(
        Code::AttachmentNotFound,
        &format!("attachment_ids[{index}]"),
        format!("attachment_ids[{index}]: there is no pending upload of yours with id {id:?}."),
    )
}

/// Most attachments one message or draft carries.
pub const MAX_PER_MESSAGE: usize = 100;

/// Checks that every id names a distinct pending upload of the caller's, free or held by
/// `draft_id`.
pub async fn check_usable(
    conn: &mut Conn,
    caller: &Caller,
    draft_id: Option<&str>,
    ids: &[String],
) -> AppResult<()> {
    if ids.len() > MAX_PER_MESSAGE {
        return Err(AppError::invalid(
            "attachment_ids",
            format!("attachment_ids holds at most {MAX_PER_MESSAGE} ids."),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(AppError::invalid(
                &format!("attachment_ids[{i}]"),
                format!("attachment_ids[{i}]: {id:?} is listed twice."),
            ));
        }
    }
    let found = store::usable(conn, &caller.keys, caller.person.id.as_str(), draft_id, ids).await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.iter().any(|a| &a.id == id) {
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}

/// Gives checked uploads to a new message, inside its transaction.
pub async fn attach(
    conn: &mut Conn,
    caller: &Caller,
    draft_id: Option<&str>,
    ids: &[String],
    message_id: &str,
    thread_id: &str,
) -> AppResult<()> {
    // Rows are updated in one order (by id), so that concurrent sends cannot deadlock.
    let mut order: Vec<(usize, &String)> = ids.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.cmp(b.1));
    for (i, id) in order {
        let done = store::attach_to_message(
            conn,
            id,
            caller.person.id.as_str(),
            draft_id,
            message_id,
            thread_id,
            i as i64,
        )
        .await?;
        if !done {
            // Used by another send meanwhile: this one rolls back.
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}

/// Makes a draft hold exactly `ids` (checked); uploads it let go are pending again.
pub async fn hold_for_draft(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    draft_id: &str,
    ids: &[String],
) -> AppResult<()> {
    store::release_from_draft(conn, draft_id, ids, state.now()).await?;
    for (i, id) in ids.iter().enumerate() {
        if !store::hold_for_draft(conn, id, caller.person.id.as_str(), draft_id).await? {
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}
