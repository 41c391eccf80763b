//! The conversation actions of a thread's page: the announcement, completing and
//! reopening, reactions and internal notes. Each is a form POST answered by a 303 back to
//! the thread.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path};
use poem::{handler, Body, Request, Response};

use crate::domain::ids::{MessageId, ThreadId};
use crate::service::mailbox::teams::{self, TeamChange};
use crate::service::mailbox::{conversations, read};
use crate::service::{people, AppState};

use super::{not_found, page_error, posted, render, role_name, visit, Chrome};

/// Sets the announcement (`action=set`, `text`) or clears it (`action=clear`).
#[handler]
pub async fn announcement(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let text = match form.get("action") {
        "clear" => None,
        _ => Some(form.get("text")),
    };
    let thread = ThreadId::from_trusted(id.clone());
    visit.then_go(
        conversations::set_announcement(&state, &visit.caller, &thread, text).await,
        &format!("threads/{id}"),
    )
}

/// Completes (`action=complete`) or reopens (`action=reopen`) the thread.
#[handler]
pub async fn completion(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let thread = ThreadId::from_trusted(id.clone());
    let done = match form.get("action") {
        "reopen" => conversations::reopen(&state, &visit.caller, &thread).await,
        _ => conversations::complete(&state, &visit.caller, &thread).await,
    };
    visit.then_go(done, &format!("threads/{id}"))
}

/// Gives or takes back a reaction to a message of the thread (`reaction` = `add <emoji>`
/// or `remove <emoji>`).
#[handler]
pub async fn react(
    req: &Request,
    Path((slug, id, message)): Path<(String, String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    // The button says both what to do and with which emoji: "add 👍" or "remove 👍".
    let (action, emoji) = form.get("reaction").split_once(' ').unwrap_or(("", ""));
    let message_id = MessageId::from_trusted(message.clone());
    visit.then_go(
        conversations::react(
            &state,
            &visit.caller,
            &message_id,
            emoji,
            action != "remove",
        )
        .await,
        &format!("threads/{id}#m-{message}"),
    )
}

/// Pins (`action=pin`) or unpins the thread for oneself.
#[handler]
pub async fn pin_thread(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let thread = ThreadId::from_trusted(id.clone());
    let on = form.get("action") != "unpin";
    visit.then_go(
        conversations::pin_thread(&state, &visit.caller, &thread, on).await,
        &format!("threads/{id}"),
    )
}

/// Pins (`action=pin`) or unpins a message at the top of the thread (staff).
#[handler]
pub async fn pin_message(
    req: &Request,
    Path((slug, id, message)): Path<(String, String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let message_id = MessageId::from_trusted(message.clone());
    let on = form.get("action") != "unpin";
    visit.then_go(
        conversations::pin_message(&state, &visit.caller, &message_id, on).await,
        &format!("threads/{id}#m-{message}"),
    )
}

/// The viewer's team's state of the thread: `action=assign` with `assignee` (a member's
/// id, or empty for nobody), `action=done` or `action=open`.
#[handler]
pub async fn team(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let change = match form.get("action") {
        "done" => TeamChange {
            done: Some(true),
            ..Default::default()
        },
        "open" => TeamChange {
            done: Some(false),
            ..Default::default()
        },
        _ => TeamChange {
            assignee: Some(
                Some(form.get("assignee"))
                    .filter(|a| !a.is_empty())
                    .map(|a| format!("user:{a}")),
            ),
            ..Default::default()
        },
    };
    let thread = ThreadId::from_trusted(id.clone());
    visit.then_go(
        teams::update(&state, &visit.caller, &thread, change).await,
        &format!("threads/{id}?done=team"),
    )
}

/// Adds an internal note (`body`).
#[handler]
pub async fn add_note(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let thread = ThreadId::from_trusted(id.clone());
    visit.then_go(
        conversations::add_note(&state, &visit.caller, &thread, form.get("body")).await,
        &format!("threads/{id}#notes"),
    )
}

#[derive(Template)]
#[template(path = "web/inbox/share.html")]
struct SharePage {
    chrome: Chrome,
    id: String,
    subject: String,
    /// Staff of the practice not in the thread yet: (id, name, role).
    staff: Vec<(String, String, &'static str)>,
}

/// The staff one may add to a thread (staff participants).
#[handler]
pub async fn share_page(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let view = or_page!(
        read::view_of(&state, &visit.caller, &id, false, read::Messages::None)
            .await
            .map_err(page_error)
    );
    if !view.staff_actions {
        return not_found();
    }
    let chrome = or_page!(visit.chrome(&state, csrf, &view.summary.folder).await);
    let inside: Vec<&str> = view
        .summary
        .participants
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let people = or_page!(people::addressable(&state, &visit.caller, 2000)
        .await
        .map_err(page_error));
    let staff = people
        .into_iter()
        .filter(|p| p.role.is_staff() && !inside.contains(&p.id.as_str()))
        .map(|p| (p.id, p.name, role_name(p.role)))
        .collect();
    render(
        StatusCode::OK,
        &SharePage {
            chrome,
            id: view.summary.id,
            subject: view.summary.subject,
            staff,
        },
    )
}

/// Adds the chosen staff (`person`, repeated) to the thread.
#[handler]
pub async fn share(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let thread = ThreadId::from_trusted(id.clone());
    let people = form.all("person");
    visit.then_go(
        conversations::share(&state, &visit.caller, &thread, &people).await,
        &format!("threads/{id}?done=shared"),
    )
}
