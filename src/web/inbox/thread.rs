//! A thread's page: its messages, the reply form (or why there is none), the actions on
//! the thread; replying; and downloading attachments.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::domain::attachments::content_disposition;
use crate::domain::chart::may_take_quick_note;
use crate::domain::ids::{AttachmentId, ThreadId};
use crate::domain::Role;
use crate::service::attachments::{self as attachment_service, AttachmentView};
use crate::service::mailbox::compose;
use crate::service::mailbox::read::{self, MessageView};
use crate::service::AppState;

use super::super::form::read_posted;
use super::compose::{gather_files, Attached};
use super::{
    csrf_refusal, human_size, long_time, page_error, render, reply_refusal_text, role_name,
    see_other, visit, Chrome, Visit,
};

pub struct Message {
    pub id: String,
    pub can_delete: bool,
    pub sender: String,
    pub role: Option<&'static str>,
    pub time: String,
    pub datetime: String,
    pub body_html: String,
    pub files: Vec<Attached>,
}

impl Message {
    fn of(m: MessageView) -> Message {
        let (time, datetime) = long_time(m.created_at);
        Message {
            can_delete: m.can_delete,
            id: m.id,
            sender: m.sender.name,
            role: m.sender.role.map(role_name),
            time,
            datetime,
            body_html: m.body_html,
            files: m.attachments.into_iter().map(Attached::of).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "web/inbox/thread.html")]
struct ThreadPage {
    chrome: Chrome,
    id: String,
    subject: String,
    who: String,
    folder: String,
    messages: Vec<Message>,
    refusal: Option<&'static str>,
    can_delete: bool,
    /// Staff who may save a quick note to the client's chart from this thread.
    can_note: bool,
    notice: Option<&'static str>,
    /// The reply being written, when it has to be shown again.
    body: String,
    kept: Vec<Attached>,
    error: Option<String>,
    error_field: String,
}

/// The thread page, with a reply that did not go through when there is one.
async fn thread_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
    id: &str,
    as_read: bool,
) -> Result<ThreadPage, Response> {
    let view = read::view(state, &visit.caller, id, as_read)
        .await
        .map_err(page_error)?;
    let folder = view.summary.folder.clone();
    let chrome = visit.chrome(state, csrf, &folder).await?;
    let summary = view.summary;
    let clients = summary
        .participants
        .iter()
        .filter(|p| p.role == Some(Role::Client))
        .count() as i64
        + summary.other_recipients;
    let can_note = may_take_quick_note(visit.caller.role(), clients).is_ok();
    let viewer = visit.caller.person.id.as_str();
    let mut names: Vec<String> = summary
        .participants
        .iter()
        .filter(|p| p.id != viewer)
        .map(|p| p.name.clone())
        .collect();
    if summary.other_recipients > 0 {
        names.push(format!(
            "{} other client{}",
            summary.other_recipients,
            if summary.other_recipients == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    Ok(ThreadPage {
        chrome,
        id: summary.id,
        subject: summary.subject,
        who: names.join(", "),
        folder,
        messages: view.messages.into_iter().map(Message::of).collect(),
        refusal: view.reply_refusal.map(reply_refusal_text),
        can_delete: view.can_delete,
        can_note,
        notice: None,
        body: String::new(),
        kept: Vec::new(),
        error: None,
        error_field: String::new(),
    })
}

#[derive(Deserialize)]
pub struct ThreadQuery {
    done: Option<String>,
}

#[handler]
pub async fn thread_page(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<ThreadQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    match thread_view(&state, &visit, csrf, &id, true).await {
        Ok(mut page) => {
            page.notice = match query.done.as_deref() {
                Some("noted") => Some("Saved to the client's chart."),
                Some("deleted") => Some("The message was deleted for everyone."),
                _ => None,
            };
            render(StatusCode::OK, &page)
        }
        Err(page) => page,
    }
}

#[handler]
pub async fn reply(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let posted = or_page!(read_posted(&state, req, body).await.map_err(page_error));
    if let Some(page) = csrf_refusal(verifier, posted.fields.get("csrf_token")) {
        return page;
    }
    let (fields, files, refused) = gather_files(&state, &visit.caller, posted).await;
    let text = fields.get("body").to_string();
    let error = match refused {
        Some(e) => e,
        None => {
            let ids: Vec<String> = files.iter().map(|f| f.id.clone()).collect();
            let thread = ThreadId::from_trusted(id.clone());
            match compose::reply(&state, &visit.caller, &thread, &text, &ids).await {
                Ok(message_id) => {
                    return see_other(&visit.href(&format!("threads/{id}#m-{message_id}")));
                }
                Err(e) => e,
            }
        }
    };
    if !error.status().is_client_error() || error.status() == StatusCode::NOT_FOUND {
        return page_error(error);
    }
    match thread_view(&state, &visit, csrf, &id, false).await {
        Ok(mut page) => {
            page.body = text;
            page.kept = files.into_iter().map(Attached::of).collect();
            page.error_field = error.field.clone().unwrap_or_else(|| "body".into());
            page.error = Some(error.detail.clone());
            render(error.status(), &page)
        }
        Err(page) => page,
    }
}

/// Downloads an attachment: for the same people as the API, after the same hash check.
#[handler]
pub async fn download(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let id = AttachmentId::from_trusted(id);
    match attachment_service::open(&state, &visit.caller, &id).await {
        Ok((row, file)) => Body::from_async_read(file)
            .with_content_type(row.content_type.as_str())
            .with_header("content-disposition", content_disposition(&row.name))
            .with_header("content-security-policy", "sandbox")
            .into_response(),
        Err(e) => page_error(e),
    }
}

impl Attached {
    pub fn of(v: AttachmentView) -> Attached {
        Attached {
            size: human_size(v.size),
            id: v.id,
            name: v.name,
        }
    }
}
