//! Composing a new message: whom the viewer may write to, a Markdown body with a preview,
//! attachments, Send and Save draft; and resuming a draft in the same form.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::domain::conversations::{may_host, ThreadKind};
use crate::domain::ids::{AttachmentId, DraftId};
use crate::domain::markdown;
use crate::error::{AppError, AppResult};
use crate::service::attachments::{self as attachment_service, AttachmentView};
use crate::service::mailbox::compose::{self, ComposeInput};
use crate::service::mailbox::drafts::{self, DraftInput};
use crate::service::mailbox::scheduled;
use crate::service::{people, AppState, Caller};

use super::super::form::{read_posted, Fields, Posted};
use super::{
    csrf_refusal, local_time, local_value, page_error, render, role_name, see_other, visit, Chrome,
    Visit,
};

/// People offered in To at most; beyond, the form says so.
const MAX_CHOICES: usize = 500;

/// A file attached to a message or kept for one.
pub struct Attached {
    pub id: String,
    pub name: String,
    pub size: String,
}

/// One recipient to tick in To.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub detail: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "web/inbox/compose.html")]
struct ComposePage {
    chrome: Chrome,
    groups: Vec<Choice>,
    people: Vec<Choice>,
    more_people: bool,
    subject: String,
    body: String,
    kept: Vec<Attached>,
    draft_id: String,
    send_key: String,
    preview: Option<String>,
    error: Option<String>,
    error_field: String,
    /// Providers and admins may open a group conversation instead.
    can_host: bool,
    conversation: bool,
    /// A conversation's start, as the form's `datetime-local` value (UTC).
    starts_at: String,
    /// "Convert to a group": the thread the conversation is started from.
    linked_from: String,
}

/// What the form holds: empty, a draft, or what was posted.
#[derive(Default)]
struct Filled {
    to: Vec<String>,
    subject: String,
    body: String,
    kept: Vec<Attached>,
    draft_id: String,
    send_key: String,
    conversation: bool,
    starts_at: String,
    linked_from: String,
}

/// The compose page for `filled`, with the recipients the caller may write to.
async fn compose_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
    filled: Filled,
) -> Result<ComposePage, Response> {
    let chrome = visit.chrome(state, csrf, "compose").await?;
    let caller = &visit.caller;
    let ticked = |value: &str| filled.to.iter().any(|t| t == value);
    let groups = people::groups(state, caller)
        .await
        .map_err(page_error)?
        .into_iter()
        .map(|g| {
            let value = format!("group:{}", g.group.as_str());
            Choice {
                checked: ticked(&value),
                value,
                label: g.group.display_name().to_string(),
                detail: "everyone in the team",
            }
        })
        .collect();
    let found = people::addressable(state, caller, MAX_CHOICES + 1)
        .await
        .map_err(page_error)?;
    let more_people = found.len() > MAX_CHOICES;
    let people = found
        .into_iter()
        .take(MAX_CHOICES)
        .map(|p| {
            let value = format!("user:{}", p.id);
            Choice {
                checked: ticked(&value),
                value,
                label: p.name,
                detail: role_name(p.role),
            }
        })
        .collect();
    Ok(ComposePage {
        chrome,
        groups,
        people,
        more_people,
        subject: filled.subject,
        body: filled.body,
        kept: filled.kept,
        draft_id: filled.draft_id,
        send_key: if filled.send_key.is_empty() {
            crate::auth::new_token()
        } else {
            filled.send_key
        },
        preview: None,
        error: None,
        error_field: String::new(),
        can_host: may_host(caller.role()).is_ok(),
        conversation: filled.conversation,
        starts_at: filled.starts_at,
        linked_from: filled.linked_from,
    })
}

#[derive(Deserialize, Default)]
pub struct ComposeQuery {
    /// "Convert to a group": a thread whose people the new conversation starts with.
    from: Option<String>,
}

#[handler]
pub async fn compose_page(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<ComposeQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let filled = match query.from.as_deref() {
        Some(from) => or_page!(converted(&state, &visit, from).await.map_err(page_error)),
        None => Filled::default(),
    };
    match compose_view(&state, &visit, csrf, filled).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(page) => page,
    }
}

/// The compose form of a conversation started from a thread: its people ticked (those the
/// caller may know), its subject, the link; never its history.
async fn converted(state: &AppState, visit: &Visit, from: &str) -> AppResult<Filled> {
    use crate::service::mailbox::read;
    let view = read::view_of(state, &visit.caller, from, false, read::Messages::None).await?;
    let me = visit.caller.person.id.as_str();
    Ok(Filled {
        to: view
            .summary
            .participants
            .iter()
            .filter(|p| p.id != me && !p.id.is_empty())
            .map(|p| format!("user:{}", p.id))
            .collect(),
        subject: view.summary.subject,
        conversation: true,
        linked_from: view.summary.id,
        ..Filled::default()
    })
}

/// A draft resumed in the compose form.
#[handler]
pub async fn draft_page(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let draft = or_page!(
        drafts::open(&state, &visit.caller, &DraftId::from_trusted(id))
            .await
            .map_err(page_error)
    );
    let mut kept = Vec::new();
    for id in &draft.attachment_ids {
        let id = AttachmentId::from_trusted(id.clone());
        if let Ok(view) = attachment_service::get(&state, &visit.caller, &id).await {
            kept.push(Attached::of(view));
        }
    }
    let filled = Filled {
        to: draft.to,
        subject: draft.subject,
        body: draft.body,
        kept,
        draft_id: draft.id,
        conversation: draft.kind == ThreadKind::Conversation,
        linked_from: draft.linked_from.unwrap_or_default(),
        starts_at: draft.starts_at.map(local_value).unwrap_or_default(),
        ..Filled::default()
    };
    match compose_view(&state, &visit, csrf, filled).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(page) => page,
    }
}

#[handler]
pub async fn compose_submit(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let posted = or_page!(read_posted(&state, &visit.caller, req, body)
        .await
        .map_err(page_error));
    if let Some(page) = csrf_refusal(verifier, posted.fields.get("csrf_token")) {
        return page;
    }
    match posted.fields.get("action") {
        "autosave" => return autosave(&state, &visit, &posted.fields).await,
        "discard" => return discard(&state, &visit, posted.fields.get("draft_id")).await,
        _ => {}
    }
    let (fields, files, refused) = gather_files(&state, &visit.caller, posted).await;
    let action = fields.get("action").to_string();
    let outcome = match (refused, action.as_str()) {
        (Some(e), _) => Err(e),
        (None, "preview") => Ok(None),
        (None, "save") => save(&state, &visit.caller, &fields, &files).await.map(Some),
        (None, "schedule") => schedule(&state, &visit.caller, &fields, &files)
            .await
            .map(Some),
        (None, _) => send(&state, &visit.caller, &fields, &files).await.map(Some),
    };
    let error = match outcome {
        Ok(Some(location)) => return see_other(&visit.href(&location)),
        Ok(None) => None,
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => Some(e),
        Err(e) => return page_error(e),
    };
    let filled = Filled {
        to: fields.all("to"),
        subject: fields.get("subject").to_string(),
        body: fields.get("body").to_string(),
        kept: files.into_iter().map(Attached::of).collect(),
        draft_id: fields.get("draft_id").to_string(),
        send_key: fields.get("send_key").to_string(),
        conversation: fields.get("kind") == "conversation",
        starts_at: fields.get("starts_at").to_string(),
        linked_from: fields.get("linked_from").to_string(),
    };
    let mut page = or_page!(compose_view(&state, &visit, csrf, filled).await);
    let status = match error {
        Some(e) => {
            page.error_field = e.field.clone().unwrap_or_default();
            page.error = Some(e.detail.clone());
            e.status()
        }
        None => {
            page.preview = Some(markdown::render(&page.body));
            StatusCode::OK
        }
    };
    render(status, &page)
}

fn input_of(fields: &Fields, files: &[AttachmentView]) -> AppResult<ComposeInput> {
    let kind = match fields.get("kind") {
        "conversation" => ThreadKind::Conversation,
        _ => ThreadKind::Message,
    };
    let starts_at = local_time(fields, "starts_at")?;
    Ok(ComposeInput {
        to: fields.all("to"),
        subject: fields.get("subject").to_string(),
        body: fields.get("body").to_string(),
        attachment_ids: files.iter().map(|f| f.id.clone()).collect(),
        kind,
        starts_at,
        linked_from: Some(fields.get("linked_from").to_string()).filter(|l| !l.is_empty()),
        ..Default::default()
    })
}

/// Sends the message (from its draft when it was one); the page to go to after.
async fn send(
    state: &AppState,
    caller: &Caller,
    fields: &Fields,
    files: &[AttachmentView],
) -> AppResult<String> {
    let input = input_of(fields, files)?;
    let draft_id = fields.get("draft_id");
    let (thread_id, _) = if draft_id.is_empty() {
        let key = Some(fields.get("send_key")).filter(|k| !k.is_empty());
        compose::compose(state, caller, input, key).await?
    } else {
        let id = DraftId::from_trusted(draft_id.to_string());
        drafts::save(state, caller, &id, DraftInput::from(input)).await?;
        let key = Some(fields.get("send_key")).filter(|k| !k.is_empty());
        drafts::send(state, caller, &id, key).await?
    };
    Ok(format!("threads/{thread_id}"))
}

/// The script's autosave: the form's text (never its files) saved as a draft; answers
/// the draft's id as plain text, for the form to keep.
async fn autosave(state: &AppState, visit: &Visit, fields: &Fields) -> Response {
    let input = match input_of(fields, &[]) {
        Ok(input) => DraftInput::from(input),
        Err(e) => return e.into_response(),
    };
    let input = DraftInput {
        attachment_ids: fields.all("attachment_id"),
        ..input
    };
    let draft_id = fields.get("draft_id");
    let saved = if draft_id.is_empty() {
        drafts::create(state, &visit.caller, input).await
    } else {
        let id = DraftId::from_trusted(draft_id.to_string());
        drafts::save(state, &visit.caller, &id, input).await
    };
    match saved {
        Ok(draft) => draft
            .id
            .with_content_type("text/plain; charset=utf-8")
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Deletes the draft the form was resumed from (its pending files go with it later, as
/// unused uploads do).
async fn discard(state: &AppState, visit: &Visit, draft_id: &str) -> Response {
    if draft_id.is_empty() {
        return see_other(&visit.href("mail/inbox"));
    }
    let id = DraftId::from_trusted(draft_id.to_string());
    visit.then_go(
        drafts::delete(state, &visit.caller, &id).await,
        "mail/drafts?done=draft_deleted",
    )
}

/// Schedules the form to be sent at `send_later` (UTC): a new scheduled send, or the draft
/// it was resumed from, scheduled.
async fn schedule(
    state: &AppState,
    caller: &Caller,
    fields: &Fields,
    files: &[AttachmentView],
) -> AppResult<String> {
    let at = local_time(fields, "send_later")?.ok_or_else(|| {
        AppError::invalid(
            "send_later",
            "Choose when to send it (a date and a time, UTC).",
        )
    })?;
    let input = input_of(fields, files)?;
    let draft_id = fields.get("draft_id");
    if draft_id.is_empty() {
        scheduled::schedule_thread(state, caller, input, at)
            .await
            .map_err(|e| match e.field.as_deref() {
                Some("send_at") => e.with_field("send_later"),
                _ => e,
            })?;
    } else {
        let id = DraftId::from_trusted(draft_id.to_string());
        drafts::save(state, caller, &id, DraftInput::from(input)).await?;
        scheduled::schedule_draft(state, caller, &id, at)
            .await
            .map_err(|e| match e.field.as_deref() {
                Some("send_at") => e.with_field("send_later"),
                _ => e,
            })?;
    }
    Ok("mail/scheduled?done=scheduled".to_string())
}

/// Saves the form as a draft (a new one, or the one it was resumed from).
async fn save(
    state: &AppState,
    caller: &Caller,
    fields: &Fields,
    files: &[AttachmentView],
) -> AppResult<String> {
    let input = DraftInput::from(input_of(fields, files)?);
    let draft_id = fields.get("draft_id");
    if draft_id.is_empty() {
        drafts::create(state, caller, input).await?;
    } else {
        let id = DraftId::from_trusted(draft_id.to_string());
        drafts::save(state, caller, &id, input).await?;
    }
    Ok("mail/drafts?done=saved".to_string())
}

/// The files of a posted form: those kept from an earlier try (`attachment_id`) and the
/// new ones, stored as the caller's pending uploads; and the first file refused, whose
/// reason the form shows while keeping everything else.
pub async fn gather_files(
    state: &AppState,
    caller: &Caller,
    posted: Posted,
) -> (Fields, Vec<AttachmentView>, Option<AppError>) {
    let Posted {
        fields,
        files,
        refused,
    } = posted;
    let mut views = Vec::new();
    let mut error = refused;
    for id in fields.all("attachment_id") {
        match attachment_service::get(state, caller, &AttachmentId::from_trusted(id)).await {
            Ok(view) => views.push(view),
            Err(e) if e.status().is_server_error() => {
                error.get_or_insert(e);
            }
            // A kept upload that is gone (unused for too long) is asked for again; the
            // rest of the form stays.
            Err(_) => {
                error.get_or_insert(AppError::invalid(
                    "file",
                    "An attached file is no longer available; attach it again.",
                ));
            }
        }
    }
    if !files.is_empty() {
        let stored = match attachment_service::check_quota(state, caller).await {
            Ok(()) => attachment_service::store_uploads(state, caller, files).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(stored) => views.extend(stored),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    (fields, views, error)
}
