//! What staff do to a thread besides replying: a quick note to the client's chart, a CSV
//! export, and permanent deletion of their own messages and threads (each behind a page
//! that asks first).

use askama::Template;
use poem::http::{header, StatusCode};
use poem::web::{CsrfToken, CsrfVerifier, Data, Path};
use poem::{handler, Body, IntoResponse, Request, Response};

use crate::domain::ids::{MessageId, ThreadId};
use crate::domain::mailbox::{may_delete_message, may_delete_thread};
use crate::error::AppError;
use crate::service::chart;
use crate::service::mailbox::{delete, read};
use crate::service::AppState;

use super::{page_error, posted, render, see_other, visit, Chrome};

#[derive(Template)]
#[template(path = "web/inbox/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    heading: &'static str,
    text: &'static str,
    action: String,
    button: &'static str,
    cancel: String,
}

/// Saves a quick note (the text given, or else the transcript) to the client's chart.
#[handler]
pub async fn quick_note(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let content = Some(form.get("content").trim()).filter(|c| !c.is_empty());
    let thread = ThreadId::from_trusted(id.clone());
    visit.then_go(
        chart::quick_note(
            &state,
            &visit.caller,
            &thread,
            content,
            form.get("include_notes") == "on",
        )
        .await,
        &format!("threads/{id}?done=noted"),
    )
}

/// The thread as CSV, one row per message, with the same privacy as its page.
#[handler]
pub async fn export(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let thread = ThreadId::from_trusted(id.clone());
    match chart::export_csv(&state, &visit.caller, &thread).await {
        Ok(csv) => {
            let file: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            csv.with_content_type("text/csv; charset=utf-8")
                .with_header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"thread-{file}.csv\""),
                )
                .into_response()
        }
        Err(e) => page_error(e),
    }
}

/// Asks before a thread is deleted for everyone.
#[handler]
pub async fn delete_thread_page(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    // Only a thread the caller may delete is asked about, by its own id; one they see but
    // may not delete gets the refusal the deletion itself would give.
    let view = or_page!(
        read::view_of(&state, &visit.caller, &id, false, read::Messages::None)
            .await
            .map_err(page_error)
    );
    if !view.can_delete {
        let refusal = may_delete_thread(visit.caller.role(), false).err();
        return page_error(refusal.map_or_else(|| AppError::not_found("thread"), Into::into));
    }
    let id = view.summary.id;
    let chrome = or_page!(visit.chrome(&state, csrf, "").await);
    let page = ConfirmPage {
        action: visit.href(&format!("threads/{id}/delete")),
        cancel: visit.href(&format!("threads/{id}")),
        chrome,
        heading: "Delete this conversation?",
        text: "Every message and attachment in it is deleted for everyone who took part, \
               permanently. This cannot be undone.",
        button: "Delete for everyone",
    };
    render(StatusCode::OK, &page)
}

#[handler]
pub async fn delete_thread(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, _) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let thread = ThreadId::from_trusted(id);
    visit.then_go(
        delete::delete_thread(&state, &visit.caller, &thread).await,
        "mail/inbox?done=deleted",
    )
}

/// Asks before a message is deleted for everyone.
#[handler]
pub async fn delete_message_page(
    req: &Request,
    Path((slug, thread, id)): Path<(String, String, String)>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    // Only a message of that thread the caller may delete is asked about; one they see but
    // may not delete gets the refusal the deletion itself would give.
    let view = or_page!(read::view_of(
        &state,
        &visit.caller,
        &thread,
        false,
        read::Messages::Only(&id)
    )
    .await
    .map_err(page_error));
    let Some(message) = view.messages.iter().find(|m| m.id == id) else {
        return super::not_found();
    };
    if !message.can_delete {
        let refusal = may_delete_message(visit.caller.role(), false).err();
        return page_error(refusal.map_or_else(|| AppError::not_found("message"), Into::into));
    }
    let (thread, id) = (view.summary.id.clone(), message.id.clone());
    let chrome = or_page!(visit.chrome(&state, csrf, "").await);
    let page = ConfirmPage {
        action: visit.href(&format!("threads/{thread}/messages/{id}/delete")),
        cancel: visit.href(&format!("threads/{thread}#m-{id}")),
        chrome,
        heading: "Delete this message?",
        text: "The message and its attachments are deleted for everyone who received it, \
               permanently. This cannot be undone.",
        button: "Delete for everyone",
    };
    render(StatusCode::OK, &page)
}

#[handler]
pub async fn delete_message(
    req: &Request,
    Path((slug, thread, id)): Path<(String, String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, _) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let message = MessageId::from_trusted(id);
    if let Err(e) = delete::delete_message(&state, &visit.caller, &message).await {
        return page_error(e);
    }
    // A thread goes with its last message: then back to the inbox.
    match read::view_of(&state, &visit.caller, &thread, false, read::Messages::None).await {
        Ok(_) => see_other(&visit.href(&format!("threads/{thread}?done=deleted"))),
        Err(_) => see_other(&visit.href("mail/inbox?done=deleted")),
    }
}
