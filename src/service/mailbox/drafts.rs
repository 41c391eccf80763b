//! Drafts of new threads and of replies: saved idempotently, sent atomically; a send that
//! fails validation leaves the draft as it was.

use crate::domain::events::EventKind;
use crate::domain::ids::DraftId;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::service::audit::AuditEntry;
use crate::store::drafts::{self as draft_store, DraftRow};

use super::super::cursor::List;
use super::super::{attachments, AppState, Caller};
use super::compose::{
    prepare_reply, prepare_thread, write_reply, write_thread, ComposeInput, ReplyInput,
};
use super::idempotency::Idempotent;
use super::{append_event, load_thread};
use crate::domain::conversations::ThreadKind;
use crate::store::attachments as attachment_store;

/// What a draft holds; any part may still be missing or invalid until it is sent.
#[derive(Debug, Clone, Default)]
pub struct DraftInput {
    pub thread_id: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachment_ids: Vec<String>,
    /// For a new thread: a message (the default) or a conversation.
    pub kind: ThreadKind,
    pub starts_at: Option<i64>,
    /// For a conversation: the thread it is started from.
    pub linked_from: Option<String>,
}

impl From<ComposeInput> for DraftInput {
    /// A new thread as a draft (who may see which file is not kept in a draft).
    fn from(input: ComposeInput) -> Self {
        DraftInput {
            thread_id: None,
            to: input.to,
            subject: input.subject,
            body: input.body,
            attachment_ids: input.attachment_ids,
            kind: input.kind,
            starts_at: input.starts_at,
            linked_from: input.linked_from,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DraftView {
    pub id: String,
    pub thread_id: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachment_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub kind: ThreadKind,
    pub starts_at: Option<i64>,
    pub linked_from: Option<String>,
    /// A scheduled send's time.
    pub send_at: Option<i64>,
    /// Why a scheduled send was refused: its code and sentence.
    pub failure: Option<(String, String)>,
}

pub(super) fn view(row: DraftRow) -> DraftView {
    DraftView {
        kind: ThreadKind::parse(&row.kind).unwrap_or_default(),
        starts_at: row.starts_at,
        linked_from: row.linked_from,
        send_at: row.send_at,
        failure: row.failure_code.zip(row.failure_detail),
        to: serde_json::from_str(&row.recipients).unwrap_or_default(),
        attachment_ids: serde_json::from_str(&row.attachment_ids).unwrap_or_default(),
        id: row.id,
        thread_id: row.thread_id,
        subject: row.subject,
        body: row.body,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Drafts may be incomplete, but not larger than what could ever be sent.
fn check(state: &AppState, input: &DraftInput) -> AppResult<()> {
    if input.to.len() > 500 || input.to.iter().any(|t| t.chars().count() > 100) {
        return Err(AppError::invalid(
            "to",
            "to holds at most 500 recipients of at most 100 characters.",
        ));
    }
    if input.subject.chars().count() > 200 {
        return Err(AppError::invalid(
            "subject",
            "subject must be at most 200 characters.",
        ));
    }
    if input.body.chars().count() > state.config.limits.body_max_chars {
        return Err(AppError::field(
            Code::BodyTooLong,
            "body",
            format!(
                "body must be at most {} characters.",
                state.config.limits.body_max_chars
            ),
        ));
    }
    if input.attachment_ids.len() > 100 {
        return Err(AppError::invalid(
            "attachment_ids",
            "attachment_ids holds at most 100 ids.",
        ));
    }
    Ok(())
}

fn row(caller: &Caller, id: String, input: &DraftInput, created_at: i64, now: i64) -> DraftRow {
    DraftRow {
        id,
        practice_id: caller.practice_id().into(),
        person_id: caller.person.id.to_string(),
        thread_id: input.thread_id.clone(),
        recipients: serde_json::to_string(&input.to).unwrap_or_else(|_| "[]".into()),
        subject: input.subject.clone(),
        body: input.body.clone(),
        attachment_ids: serde_json::to_string(&input.attachment_ids)
            .unwrap_or_else(|_| "[]".into()),
        created_at,
        updated_at: now,
        kind: input.kind.as_str().to_string(),
        starts_at: input.starts_at,
        linked_from: input.linked_from.clone(),
        send_at: None,
        failure_code: None,
        failure_detail: None,
    }
}

async fn check_thread(state: &AppState, caller: &Caller, input: &DraftInput) -> AppResult<()> {
    if let Some(thread_id) = &input.thread_id {
        let mut conn = state.store.read().await?;
        load_thread(&mut conn, caller, thread_id)
            .await
            .map_err(|e| e.with_field("thread_id"))?;
    }
    Ok(())
}

pub async fn create(state: &AppState, caller: &Caller, input: DraftInput) -> AppResult<DraftView> {
    check(state, &input)?;
    check_thread(state, caller, &input).await?;
    let now = state.now();
    let row = row(caller, DraftId::generate().into_string(), &input, now, now);
    let mut tx = state.store.begin().await?;
    let kept = draft_store::count(&mut tx, caller.person.id.as_str()).await?;
    crate::domain::quotas::may_keep_another_draft(kept, state.config.limits.drafts_per_person)?;
    let key = caller.key(&mut tx).await?;
    draft_store::insert(&mut tx, &key, &row).await?;
    saved(&mut tx, state, caller, &row, &input.attachment_ids).await?;
    tx.commit().await?;
    Ok(view(row))
}

/// After a draft's row is written: it holds exactly `attachment_ids`, and the save is in
/// the event log.
async fn saved(
    tx: &mut crate::store::Tx,
    state: &AppState,
    caller: &Caller,
    row: &DraftRow,
    attachment_ids: &[String],
) -> AppResult<()> {
    attachments::hold_for_draft(tx, state, caller, &row.id, attachment_ids).await?;
    append_event(
        tx,
        state,
        caller,
        EventKind::DraftSaved,
        row.thread_id.as_deref(),
        None,
    )
    .await
}

/// Replaces a draft's content; saving the same content again changes nothing else.
pub async fn save(
    state: &AppState,
    caller: &Caller,
    id: &DraftId,
    input: DraftInput,
) -> AppResult<DraftView> {
    let id = id.as_str();
    check(state, &input)?;
    check_thread(state, caller, &input).await?;
    let mut tx = state.store.begin().await?;
    let existing = draft_store::find(&mut tx, &caller.keys, caller.person.id.as_str(), id)
        .await?
        .ok_or_else(|| AppError::not_found("draft"))?;
    // Strictly later, so that a send racing this save can tell the draft changed.
    let row = row(
        caller,
        existing.id.clone(),
        &input,
        existing.created_at,
        state.now().max(existing.updated_at + 1),
    );
    // Saving keeps a scheduled send's time (and a refusal's reason) as they were.
    let row = DraftRow {
        send_at: existing.send_at,
        failure_code: existing.failure_code.clone(),
        failure_detail: existing.failure_detail.clone(),
        ..row
    };
    let key = caller.key(&mut tx).await?;
    if !draft_store::update(&mut tx, &key, &row).await? {
        return Err(AppError::not_found("draft"));
    }
    saved(&mut tx, state, caller, &row, &input.attachment_ids).await?;
    tx.commit().await?;
    Ok(view(row))
}

/// The caller's draft, to show them (audited).
pub async fn open(state: &AppState, caller: &Caller, id: &DraftId) -> AppResult<DraftView> {
    let draft = get(state, caller, id).await?;
    let entry = AuditEntry::new("read_draft", "draft", id.as_str());
    crate::service::audit::record_read(state, caller, entry).await?;
    Ok(draft)
}

/// The caller's draft, for the server's own use (not audited: see [`open`]).
pub async fn get(state: &AppState, caller: &Caller, id: &DraftId) -> AppResult<DraftView> {
    let id = id.as_str();
    let mut conn = state.store.read().await?;
    draft_store::find(&mut conn, &caller.keys, caller.person.id.as_str(), id)
        .await?
        .map(view)
        .ok_or_else(|| AppError::not_found("draft"))
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    cursor: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<DraftView>, Option<String>)> {
    let holder = caller.person.id.as_str();
    let after: Option<(i64, String)> = cursor
        .map(|c| state.cursors.decode(List::Drafts, holder, c))
        .transpose()?;
    let limit = limit.clamp(1, 200);
    let mut conn = state.store.read().await?;
    let mut rows = draft_store::list(
        &mut conn,
        &caller.keys,
        caller.person.id.as_str(),
        after.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit + 1,
    )
    .await?;
    let next = state
        .cursors
        .next_page(List::Drafts, holder, &mut rows, limit, |r| {
            (r.updated_at, r.id.clone())
        });
    drop(conn);
    let entry = AuditEntry::new("list_drafts", "person", holder);
    crate::service::audit::record_read(state, caller, entry).await?;
    Ok((rows.into_iter().map(view).collect(), next))
}

pub async fn delete(state: &AppState, caller: &Caller, id: &DraftId) -> AppResult<()> {
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let draft = draft_store::find(&mut tx, &caller.keys, caller.person.id.as_str(), id)
        .await?
        .ok_or_else(|| AppError::not_found("draft"))?;
    draft_store::delete(&mut tx, &draft.id).await?;
    // A deleted draft's uploads go with it.
    let hashes = attachment_store::delete_for_draft(&mut tx, &draft.id).await?;
    let unreferenced = attachments::release_blobs(&mut tx, hashes).await?;
    append_event(
        &mut tx,
        state,
        caller,
        EventKind::DraftDeleted,
        draft.thread_id.as_deref(),
        None,
    )
    .await?;
    tx.commit().await?;
    attachments::remove_blobs(state, &unreferenced).await;
    Ok(())
}

/// Removes the draft being sent, if it is still as it was read: a second send of the
/// same draft, or a save in between, makes this one fail and roll back.
async fn take(tx: &mut crate::store::Tx, caller: &Caller, draft: &DraftView) -> AppResult<()> {
    if draft_store::take(tx, caller.person.id.as_str(), &draft.id, draft.updated_at).await? {
        Ok(())
    } else {
        Err(AppError::new(
            Code::DraftChanged,
            "The draft was changed or sent meanwhile; nothing was sent.",
        ))
    }
}

/// Sends a draft: validated exactly as a new message or reply, and written together with
/// the draft's removal. With an idempotency key, a retry after the draft was sent returns
/// the first result. Returns (thread id, message id).
#[tracing::instrument(skip_all, fields(draft_id = %id))]
pub async fn send(
    state: &AppState,
    caller: &Caller,
    id: &DraftId,
    idempotency_key: Option<&str>,
) -> AppResult<(String, String)> {
    let id = id.as_str();
    let key = Idempotent::new(caller, serde_json::json!(["draft", id]), idempotency_key)?;
    if let Some(key) = &key {
        let mut conn = state.store.read().await?;
        if let Some(ids) = key.earlier(&mut conn).await? {
            return Ok(ids);
        }
    }
    let draft = get(state, caller, &DraftId::from_trusted(id.to_string())).await?;
    let mut conn = state.store.read().await?;
    let mut tx;
    let sent = match &draft.thread_id {
        Some(thread_id) => {
            let input = ReplyInput {
                body: draft.body.clone(),
                attachment_ids: draft.attachment_ids.clone(),
                ..Default::default()
            };
            let prepared =
                prepare_reply(&mut conn, state, caller, thread_id, &input, Some(&draft.id)).await?;
            drop(conn);
            tx = state.store.begin().await?;
            if let Err(e) = take(&mut tx, caller, &draft).await {
                drop(tx);
                return lost_race(state, &key, e).await;
            }
            let message_id = write_reply(&mut tx, state, caller, &prepared).await?;
            (thread_id.clone(), message_id)
        }
        None => {
            let input = ComposeInput {
                to: draft.to.clone(),
                subject: draft.subject.clone(),
                body: draft.body.clone(),
                attachment_ids: draft.attachment_ids.clone(),
                kind: draft.kind,
                starts_at: draft.starts_at,
                linked_from: draft.linked_from.clone(),
                ..Default::default()
            };
            let prepared =
                prepare_thread(&mut conn, state, caller, &input, Some(&draft.id)).await?;
            drop(conn);
            tx = state.store.begin().await?;
            if let Err(e) = take(&mut tx, caller, &draft).await {
                drop(tx);
                return lost_race(state, &key, e).await;
            }
            write_thread(&mut tx, state, caller, &prepared).await?
        }
    };
    if let Some(key) = &key {
        // A concurrent retry fails at `take` (the draft is gone) or here, on the key.
        if let Err(e) = key.remember(&mut tx, state, &sent).await {
            drop(tx);
            return key.earlier_or(state, e.into()).await;
        }
    }
    tx.commit().await?;
    Ok(sent)
}

/// After a send of the same draft won: its result under the key, else `error`.
async fn lost_race(
    state: &AppState,
    key: &Option<Idempotent>,
    error: AppError,
) -> AppResult<(String, String)> {
    match key {
        Some(key) => key.earlier_or(state, error).await,
        None => Err(error),
    }
}
