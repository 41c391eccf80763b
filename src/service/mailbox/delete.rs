//! Permanent deletion by staff: a message they sent, or a whole thread they started. The
//! content is gone from every mailbox; the audit log keeps who, which id and when. Nothing
//! under a legal hold is deleted (409 `legal_hold`).

use crate::domain::events::EventKind;
use crate::domain::ids::MessageId;
use crate::domain::ids::ThreadId;
use crate::domain::mailbox::{may_delete_message, may_delete_thread};
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::{attachments as attachment_store, drafts, messages, threads, Tx};

use super::super::audit::{record, AuditEntry};
use super::super::{attachments, legal_holds, notifications, AppState, Caller};
use super::{append_event, load_thread, preview};
use crate::store::events::NewEvent;

/// Removes a thread of `practice_id` with everything that belongs to it (messages, their
/// files' rows, reply drafts, notifications), as `actor` (`None`: the server itself).
/// Returns the file hashes no longer used by anything, whose bytes the caller removes
/// after the commit.
pub(crate) async fn remove_thread(
    tx: &mut Tx,
    state: &AppState,
    practice_id: &str,
    actor: Option<&str>,
    thread_id: &str,
) -> AppResult<Vec<String>> {
    // Recorded first: its audience is the participants, whose rows go with the thread.
    let event = NewEvent {
        practice_id,
        kind: EventKind::ThreadDeleted,
        thread_id: Some(thread_id),
        message_id: None,
        actor_id: actor,
        at: state.now(),
    };
    crate::service::changes::record(tx, state, &event, &[]).await?;
    let gone = messages::ids_for_thread(tx, thread_id).await?;
    // Attachments of its messages and of reply drafts go too; their bytes once unused.
    let hashes = attachment_store::delete_for_thread(tx, thread_id).await?;
    let unreferenced = attachments::release_blobs(tx, hashes).await?;
    drafts::delete_for_thread(tx, thread_id).await?;
    // Idempotency keys stay: a late retry of the first send must not send it again.
    messages::delete_for_thread(tx, thread_id).await?;
    threads::delete(tx, thread_id).await?;
    notifications::messages_deleted(tx, state, &gone).await?;
    Ok(unreferenced)
}

/// Permanently deletes a message the caller (staff) sent. A thread left empty goes too.
#[tracing::instrument(skip_all, fields(message_id = %message_id))]
pub async fn delete_message(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
) -> AppResult<()> {
    let message_id = message_id.as_str();
    let mut tx = state.store.begin().await?;
    let message = messages::find(&mut tx, &caller.keys, caller.practice_id(), message_id)
        .await?
        .ok_or_else(|| AppError::not_found("message"))?;
    // Someone outside the thread learns nothing, not even that the message exists.
    let ctx = load_thread(&mut tx, caller, &message.thread_id)
        .await
        .map_err(|e| match e.code {
            Code::NotFound => AppError::not_found("message"),
            _ => e,
        })?;
    may_delete_message(
        caller.role(),
        message.sender_id == caller.person.id.as_str(),
    )?;
    legal_holds::check_not_held(&mut tx, caller.practice_id(), &ctx.thread.id).await?;
    let hashes = attachment_store::delete_for_message(&mut tx, &message.id).await?;
    let mut unreferenced = attachments::release_blobs(&mut tx, hashes).await?;
    if !messages::delete(&mut tx, &message.id).await? {
        return Err(AppError::not_found("message"));
    }

    append_event(
        &mut tx,
        state,
        caller,
        EventKind::MessageDeleted,
        Some(&ctx.thread.id),
        Some(&message.id),
    )
    .await?;
    let key = caller.key(&mut tx).await?;
    match messages::latest(&mut tx, &caller.keys, &ctx.thread.id).await? {
        Some(latest) => {
            let preview = preview(&latest.body);
            threads::record_removal(&mut tx, &key, &ctx.thread.id, &preview).await?;
        }
        None => {
            let me = Some(caller.person.id.as_str());
            let practice = caller.practice_id();
            unreferenced.extend(remove_thread(&mut tx, state, practice, me, &ctx.thread.id).await?);
        }
    }
    notifications::messages_deleted(&mut tx, state, std::slice::from_ref(&message.id)).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("delete_message", "message", &message.id),
    )
    .await?;
    tx.commit().await?;
    attachments::remove_blobs(state, &unreferenced).await;
    Ok(())
}

/// Permanently deletes a whole thread the caller (staff) started.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn delete_thread(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
) -> AppResult<()> {
    let thread_id = thread_id.as_str();
    let mut tx = state.store.begin().await?;
    let ctx = load_thread(&mut tx, caller, thread_id).await?;
    may_delete_thread(
        caller.role(),
        ctx.thread.started_by == caller.person.id.as_str(),
    )?;
    legal_holds::check_not_held(&mut tx, caller.practice_id(), &ctx.thread.id).await?;
    let me = Some(caller.person.id.as_str());
    let unreferenced =
        remove_thread(&mut tx, state, caller.practice_id(), me, &ctx.thread.id).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("delete_thread", "thread", &ctx.thread.id),
    )
    .await?;
    tx.commit().await?;
    attachments::remove_blobs(state, &unreferenced).await;
    Ok(())
}
