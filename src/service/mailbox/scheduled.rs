//! Scheduled sends: a new thread or a reply to be sent later. Until then it is a draft
//! with a time (so it holds its uploads, and its sender edits or cancels it); at that time
//! the worker sends it as a draft is sent — every rule checked again, in the transaction
//! that removes it, so it goes exactly once whatever the restarts and nodes. A refusal
//! (say, a recipient disabled meanwhile) keeps it, with the reason, and nothing is sent.

use std::time::Duration;

use crate::domain::conversations::check_send_at;
use crate::domain::ids::{DraftId, ThreadId};
use crate::domain::{Code, SessionId};
use crate::error::{AppError, AppResult};
use crate::store::drafts as draft_store;
use crate::store::people as people_store;

use super::super::{person, AppState, Caller, RequestMeta};
use super::compose::{check_thread_now, prepare_reply, ComposeInput, ReplyInput};
use super::drafts::{self, view, DraftInput, DraftView};

/// What cannot be scheduled yet: a draft does not keep who may see which file, nor the
/// message a reply answers.
fn check_schedulable(visibility_empty: bool, in_reply_to: bool) -> AppResult<()> {
    if !visibility_empty {
        return Err(AppError::invalid(
            "send_at",
            "send_at: a message with files limited to some participants cannot be scheduled; send it now.",
        ));
    }
    if in_reply_to {
        return Err(AppError::invalid(
            "send_at",
            "send_at: a reply to a particular message cannot be scheduled; send it now.",
        ));
    }
    Ok(())
}

/// Schedules a new thread: checked now as it would be sent (and again when it is sent).
pub async fn schedule_thread(
    state: &AppState,
    caller: &Caller,
    input: ComposeInput,
    send_at: i64,
) -> AppResult<DraftView> {
    check_send_at(send_at, state.now())?;
    check_schedulable(input.attachment_visibility.is_empty(), false)?;
    {
        let mut conn = state.store.read().await?;
        check_thread_now(&mut conn, state, caller, &input).await?;
    }
    let draft = drafts::create(state, caller, input.into()).await?;
    set(state, caller, &draft.id, Some(send_at)).await
}

/// Schedules a reply to a thread.
pub async fn schedule_reply(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    input: ReplyInput,
    send_at: i64,
) -> AppResult<DraftView> {
    check_send_at(send_at, state.now())?;
    check_schedulable(
        input.attachment_visibility.is_empty(),
        input.in_reply_to.is_some(),
    )?;
    {
        let mut conn = state.store.read().await?;
        prepare_reply(&mut conn, state, caller, thread_id.as_str(), &input, None).await?;
    }
    let draft = drafts::create(
        state,
        caller,
        DraftInput {
            thread_id: Some(thread_id.to_string()),
            body: input.body,
            attachment_ids: input.attachment_ids,
            ..Default::default()
        },
    )
    .await?;
    set(state, caller, &draft.id, Some(send_at)).await
}

/// Schedules one of the caller's drafts, checked now as it would be sent.
pub async fn schedule_draft(
    state: &AppState,
    caller: &Caller,
    id: &DraftId,
    send_at: i64,
) -> AppResult<DraftView> {
    check_send_at(send_at, state.now())?;
    let draft = drafts::get(state, caller, id).await?;
    {
        let mut conn = state.store.read().await?;
        match &draft.thread_id {
            Some(thread_id) => {
                let input = ReplyInput {
                    body: draft.body.clone(),
                    attachment_ids: draft.attachment_ids.clone(),
                    ..Default::default()
                };
                prepare_reply(&mut conn, state, caller, thread_id, &input, Some(&draft.id)).await?;
            }
            None => {
                let input = ComposeInput {
                    to: draft.to.clone(),
                    subject: draft.subject.clone(),
                    body: draft.body.clone(),
                    kind: draft.kind,
                    starts_at: draft.starts_at,
                    linked_from: draft.linked_from.clone(),
                    ..Default::default()
                };
                check_thread_now(&mut conn, state, caller, &input).await?;
            }
        }
    }
    set(state, caller, &draft.id, Some(send_at)).await
}

/// Sets (or with `None` takes off) the time of one of the caller's drafts.
async fn set(
    state: &AppState,
    caller: &Caller,
    id: &str,
    send_at: Option<i64>,
) -> AppResult<DraftView> {
    let mut tx = state.store.begin().await?;
    let me = caller.person.id.as_str();
    if !draft_store::set_send_at(&mut tx, me, id, send_at).await? {
        return Err(AppError::not_found("scheduled"));
    }
    let row = draft_store::find(&mut tx, &caller.keys, me, id)
        .await?
        .ok_or_else(|| AppError::not_found("scheduled"))?;
    tx.commit().await?;
    Ok(view(row))
}

/// The caller's scheduled sends and those refused, soonest first.
pub async fn list(state: &AppState, caller: &Caller) -> AppResult<Vec<DraftView>> {
    let me = caller.person.id.as_str();
    let rows = {
        let mut conn = state.store.read().await?;
        draft_store::scheduled(&mut conn, &caller.keys, me).await?
    };
    let entry = crate::service::audit::AuditEntry::new("list_scheduled", "person", me);
    crate::service::audit::record_read(state, caller, entry).await?;
    Ok(rows.into_iter().map(view).collect())
}

/// One of the caller's scheduled sends (or refused ones); 404 for anything else.
async fn find(state: &AppState, caller: &Caller, id: &DraftId) -> AppResult<DraftView> {
    let draft = drafts::get(state, caller, id)
        .await
        .map_err(|_| AppError::not_found("scheduled"))?;
    if draft.send_at.is_none() && draft.failure.is_none() {
        return Err(AppError::not_found("scheduled"));
    }
    Ok(draft)
}

/// Changes a scheduled send: its content (as a draft is saved) and/or its time. A refused
/// one given a new time is tried again then.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &DraftId,
    content: Option<DraftInput>,
    send_at: Option<i64>,
) -> AppResult<DraftView> {
    let current = find(state, caller, id).await?;
    if let Some(at) = send_at {
        check_send_at(at, state.now())?;
    }
    if let Some(content) = content {
        drafts::save(state, caller, id, content).await?;
    }
    match send_at.or(current.send_at) {
        Some(at) => set(state, caller, id.as_str(), Some(at)).await,
        None => find(state, caller, id).await,
    }
}

/// Cancels a scheduled send: it is deleted with its uploads.
pub async fn cancel(state: &AppState, caller: &Caller, id: &DraftId) -> AppResult<()> {
    find(state, caller, id).await?;
    drafts::delete(state, caller, id).await
}

/// Sends every scheduled send that is due; returns how many were handled (sent, or
/// refused and returned to their sender).
pub async fn send_due(state: &AppState) -> AppResult<usize> {
    let due = {
        let mut conn = state.store.read().await?;
        draft_store::due(&mut conn, state.now(), 50).await?
    };
    let mut handled = 0;
    for (id, person_id, practice_id) in due {
        if send_one(state, &id, &person_id, &practice_id).await? {
            handled += 1;
        }
    }
    Ok(handled)
}

/// Sends one due item as its sender; false if it was no longer there to send.
async fn send_one(
    state: &AppState,
    id: &str,
    person_id: &str,
    practice_id: &str,
) -> AppResult<bool> {
    let row = {
        let mut conn = state.store.read().await?;
        people_store::find(&mut conn, practice_id, person_id).await?
    };
    let Some(row) = row else { return Ok(false) };
    let caller = Caller {
        person: person(row)?,
        // Audited as the sender's own act, by the scheduler rather than a session.
        session_id: SessionId::from_trusted("scheduled".into()),
        meta: RequestMeta::default(),
        keys: state.keys.clone(),
    };
    let draft_id = DraftId::from_trusted(id.to_string());
    let draft = match drafts::get(state, &caller, &draft_id).await {
        Ok(d) if d.send_at.is_some_and(|at| at <= state.now()) => d,
        // Sent, cancelled or moved by someone faster.
        _ => return Ok(false),
    };
    match drafts::send(state, &caller, &draft_id, None).await {
        Ok(_) => Ok(true),
        // Another node sent it, or its sender changed it meanwhile: nothing to do.
        Err(e) if matches!(e.code, Code::DraftChanged | Code::NotFound) => Ok(false),
        Err(e) if e.status().is_client_error() => {
            let mut conn = state.store.write().await?;
            let failed = draft_store::fail(
                &mut conn,
                &draft.id,
                draft.updated_at,
                e.code.as_str(),
                &e.detail,
            )
            .await?;
            Ok(failed)
        }
        Err(e) => Err(e),
    }
}

/// Runs until the task is aborted: sends what is due every few seconds.
pub async fn run(state: AppState) {
    let interval = Duration::from_secs(5);
    loop {
        match send_due(&state).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.describe(), "scheduled sends"),
        }
        tokio::time::sleep(interval).await;
    }
}
