//! The web inbox under `/p/{slug}/`: server-rendered pages over the same `service::`
//! functions as the API. Every action is a form POST with a CSRF token, answered by a
//! redirect (303), so that everything works without JavaScript.
//!
//! Nothing a person wrote (subjects, bodies, names of files or folders, queries) is ever
//! put in a URL, a page title or a log line: URLs hold only ids and opaque cursors.

/// The value of a `Result<T, Response>`, or the page it holds returned from the handler.
macro_rules! or_page {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(page) => return page,
        }
    };
}

mod actions;
mod admin;
mod compose;
mod find;
mod folders;
mod live;
mod mail;
mod practice;
mod session;
mod settings;
mod thread;
mod together;

use askama::Template;
use chrono::{DateTime, Utc};
use poem::http::{header, StatusCode};
use poem::web::{CsrfToken, CsrfVerifier, Html};
use poem::{handler, IntoResponse, Request, Response};

use super::form::Fields;
use crate::api::{cookie_value, request_meta};
use crate::domain::{Code, Role};
use crate::error::{AppError, AppResult};
use crate::service::mailbox::folders::FolderView;
use crate::service::{practices, sessions as session_service, AppState, Caller};
use crate::store::practices::PracticeRow;

pub use actions::{
    delete_message, delete_message_page, delete_thread, delete_thread_page, export, quick_note,
};
pub use admin::{audit_page, create_person, people_page, resend_invitation, set_status};
pub use compose::{compose_page, compose_submit, draft_page};
pub use find::search;
pub use folders::{create_folder, delete_folder, rename_folder};
pub use live::{events, updates};
pub use mail::{bulk, cancel_scheduled, folder_page};
pub use practice::{practice_settings_page, practice_settings_submit};
pub use session::{forgot_page, forgot_submit, portal, sign_in, sign_out, start_session};
pub use settings::{end_session, settings_page, settings_submit};
pub use thread::{download, reply, thread_page};
pub use together::{
    add_note, announcement, completion, pin_message, pin_thread, react, share, share_page, team,
};

/// The cookie that holds a web session's token (the same sessions as API tokens).
pub const SESSION_COOKIE: &str = "confide-session";

/// What every page of the inbox shows around its content: the practice, who is signed in,
/// the folders with their unread counts, the search box and the sign-out button.
pub struct Chrome {
    pub slug: String,
    pub practice: String,
    pub name: String,
    pub role: &'static str,
    pub csrf: String,
    pub folders: Vec<FolderView>,
    /// The folder to highlight in the sidebar.
    pub current: String,
    pub is_staff: bool,
    pub is_admin: bool,
    /// Providers and admins open (host) group conversations.
    pub may_host: bool,
    /// The largest file one may attach, in words.
    pub max_file: String,
}

impl Chrome {
    /// The address of a page of this practice.
    pub fn href(&self, rest: &str) -> String {
        format!("/p/{}/{rest}", self.slug)
    }

    pub fn custom_folders(&self) -> impl Iterator<Item = &FolderView> {
        self.folders.iter().filter(|f| f.kind == "custom")
    }
}

/// A signed-in visit to one practice's pages.
pub struct Visit {
    pub caller: Caller,
    pub practice: PracticeRow,
}

impl Visit {
    /// The page frame, with the caller's folders read fresh.
    pub async fn chrome(
        &self,
        state: &AppState,
        csrf: &CsrfToken,
        current: &str,
    ) -> Result<Chrome, Response> {
        let folders = crate::service::mailbox::folders::list(state, &self.caller)
            .await
            .map_err(page_error)?;
        Ok(Chrome {
            slug: self.practice.slug.clone(),
            practice: self.practice.name.clone(),
            name: self.caller.person.name.clone(),
            role: role_name(self.caller.role()),
            csrf: csrf.0.clone(),
            folders,
            current: current.to_string(),
            is_staff: self.caller.role().is_staff(),
            is_admin: self.caller.role() == Role::Admin,
            may_host: crate::domain::conversations::may_host(self.caller.role()).is_ok(),
            max_file: human_size(state.config.limits.attachment_max_bytes as i64),
        })
    }

    pub fn href(&self, rest: &str) -> String {
        format!("/p/{}/{rest}", self.practice.slug)
    }

    /// After an action: a 303 to this practice's page `rest` when it was done, else the
    /// error as a page.
    pub fn then_go<T>(&self, done: crate::error::AppResult<T>, rest: &str) -> Response {
        match done {
            Ok(_) => see_other(&self.href(rest)),
            Err(e) => page_error(e),
        }
    }
}

/// The signed-in person of a practice's page, or the response to send instead: the same
/// not-found page for an unknown practice, and the sign-in page (coming back here after)
/// when there is no live session of this practice.
pub async fn visit(state: &AppState, req: &Request, slug: &str) -> Result<Visit, Response> {
    // The script's refresh after a change it was told of is not the person's activity.
    let activity = req.header("x-confide-refresh").is_none();
    visit_with(state, req, slug, activity).await
}

/// As [`visit`], for the script's own requests, which do not count as activity.
pub async fn passive_visit(state: &AppState, req: &Request, slug: &str) -> Result<Visit, Response> {
    visit_with(state, req, slug, false).await
}

async fn visit_with(
    state: &AppState,
    req: &Request,
    slug: &str,
    activity: bool,
) -> Result<Visit, Response> {
    let practice = match practices::portal(state, slug).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(page_error(e)),
    };
    let Some(token) = cookie_value(req, SESSION_COOKIE) else {
        return Err(to_sign_in(&practice.slug, req));
    };
    let meta = request_meta(req, &state.config);
    let authenticated = if activity {
        session_service::authenticate(state, &token, meta).await
    } else {
        session_service::authenticate_passively(state, &token, meta).await
    };
    match authenticated {
        Ok(caller) if caller.practice_id() == practice.id => {
            let span = tracing::Span::current();
            span.record("person_id", caller.person.id.as_str());
            span.record("practice_id", caller.practice_id());
            Ok(Visit { caller, practice })
        }
        Ok(_) => Err(to_sign_in(&practice.slug, req)),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(to_sign_in(&practice.slug, req)),
        Err(e) => Err(page_error(e)),
    }
}

/// To the sign-in page, which leads back to this page (a GET's route only: ids, never
/// content) once signed in.
fn to_sign_in(slug: &str, req: &Request) -> Response {
    // The whole path: routes nested under `/p` see only the rest in `uri()`.
    let path = req.original_uri().path();
    let back = (req.method() == poem::http::Method::GET && return_route(slug, path).is_some())
        .then(|| {
            format!(
                "?next={}",
                percent_encoding::utf8_percent_encode(path, NEXT_SET)
            )
        });
    see_other(&format!("/p/{slug}/{}", back.unwrap_or_default()))
}

const NEXT_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_');

/// `path` if it is a page of this practice to come back to after signing in: only
/// letters, digits and `/-_:` (no query, no other host), never the sign-in page itself.
pub fn return_route(slug: &str, path: &str) -> Option<String> {
    let prefix = format!("/p/{slug}/");
    let rest = path.strip_prefix(&prefix)?;
    let plain = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_:".contains(c));
    (plain && !rest.is_empty() && !rest.contains("//")).then(|| path.to_string())
}

/// A 303 to `location` (after a POST, or to sign in).
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// The page to answer a form whose CSRF token is not good with; `None` when it is good.
pub fn csrf_refusal(verifier: &CsrfVerifier, token: &str) -> Option<Response> {
    (!verifier.is_valid(token)).then(|| {
        message_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the page and submit the form again.",
        )
    })
}

/// A urlencoded form whose CSRF token is good, or the page to answer instead.
pub async fn checked_form(verifier: &CsrfVerifier, body: poem::Body) -> Result<Fields, Response> {
    let form = Fields::read(body).await.map_err(page_error)?;
    match csrf_refusal(verifier, form.get("csrf_token")) {
        Some(page) => Err(page),
        None => Ok(form),
    }
}

/// The signed-in visit and the checked form of a POST, or the page to answer instead.
pub async fn posted(
    state: &AppState,
    req: &Request,
    slug: &str,
    verifier: &CsrfVerifier,
    body: poem::Body,
) -> Result<(Visit, Fields), Response> {
    let visit = visit(state, req, slug).await?;
    Ok((visit, checked_form(verifier, body).await?))
}

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(e) => page_error(AppError::internal(
            anyhow::Error::new(e).context("rendering a page"),
        )),
    }
}

#[derive(Template)]
#[template(path = "web/message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    text: &'a str,
}

/// A page with a heading and a sentence: errors and confirmations outside the mailbox.
pub fn message_page(status: StatusCode, heading: &str, text: &str) -> Response {
    let page = MessagePage { heading, text };
    match page.render() {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(_) => (status, heading.to_string()).into_response(),
    }
}

/// The one not-found page: an unknown practice, page or id, and another person's thread
/// all look alike.
pub fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "This page does not exist, or it is not yours to see. Check the address, or go back to your inbox.",
    )
}

/// An error as a friendly page: never a stack, never what failed inside.
pub fn page_error(error: AppError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        // Logged once, with its cause, by the error itself; the page says nothing of it.
        let _ = error.into_response();
        return message_page(
            status,
            "Something went wrong",
            "Your request did not go through. Please try again in a moment.",
        );
    }
    match status {
        StatusCode::NOT_FOUND => not_found(),
        StatusCode::FORBIDDEN => message_page(status, "Not allowed", &error.detail),
        _ => message_page(status, "That did not work", &error.detail),
    }
}

/// Any other address under `/p/`: the same not-found page.
#[handler]
pub fn unknown_page() -> Response {
    not_found()
}

/// The metrics label of an inbox page: its route's shape, ids and names left out.
pub fn page_label(path: &str) -> String {
    let rest: Vec<&str> = path
        .splitn(4, '/')
        .nth(3)
        .unwrap_or("")
        .split('/')
        .collect();
    let shape = match rest.as_slice() {
        [""] => "",
        ["mail", "bulk"] => "mail/bulk",
        ["mail", _] => "mail/{folder}",
        ["threads", _] => "threads/{id}",
        ["threads", _, "reply"] => "threads/{id}/reply",
        ["threads", _, "quick-note"] => "threads/{id}/quick-note",
        ["threads", _, "export"] => "threads/{id}/export",
        ["threads", _, "delete"] => "threads/{id}/delete",
        ["threads", _, "messages", _, "delete"] => "threads/{id}/messages/{id}/delete",
        ["drafts", _] => "drafts/{id}",
        ["attachments", _] => "attachments/{id}",
        ["folders"] => "folders",
        ["folders", _, "rename"] => "folders/{id}/rename",
        ["folders", _, "delete"] => "folders/{id}/delete",
        ["settings", "sessions", _, "end"] => "settings/sessions/{id}/end",
        ["admin", "people"] => "admin/people",
        ["admin", "people", _, "invitation"] => "admin/people/{id}/invitation",
        ["admin", "people", _, "status"] => "admin/people/{id}/status",
        ["admin", "audit"] => "admin/audit",
        ["updates"] => "updates",
        ["events"] => "events",
        [page @ ("sign-in" | "sign-out" | "forgot-password" | "compose" | "search" | "settings")] => {
            page
        }
        _ => "unknown",
    };
    format!("/p/{{practice}}/{shape}")
}

/// How a role is named on the pages.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "Administrator",
        Role::Provider => "Provider",
        Role::FrontOffice => "Front office",
        Role::Biller => "Billing",
        Role::ExternalAgent => "External agent",
        Role::Client => "Client",
    }
}

/// A time as the lists show it: the time of day today, else the date (UTC).
pub fn short_time(ms: i64, now_ms: i64) -> String {
    let at = to_utc(ms);
    if at.date_naive() == to_utc(now_ms).date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%-d %b %Y").to_string()
    }
}

/// A full time for a message, and its machine-readable form.
pub fn long_time(ms: i64) -> (String, String) {
    let at = to_utc(ms);
    (
        at.format("%-d %b %Y, %H:%M UTC").to_string(),
        at.to_rfc3339(),
    )
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The format of a `datetime-local` field's value; the pages read and show it as UTC.
const LOCAL_TIME: &str = "%Y-%m-%dT%H:%M";

/// A `datetime-local` field of a form, read as UTC (ms); `None` when left empty.
pub fn local_time(fields: &Fields, field: &'static str) -> AppResult<Option<i64>> {
    match fields.get(field).trim() {
        "" => Ok(None),
        raw => chrono::NaiveDateTime::parse_from_str(raw, LOCAL_TIME)
            .map(|t| Some(t.and_utc().timestamp_millis()))
            .map_err(|_| AppError::invalid(field, "Give a date and a time (UTC).")),
    }
}

/// A time as the value of a `datetime-local` field (UTC).
pub fn local_value(ms: i64) -> String {
    to_utc(ms).format(LOCAL_TIME).to_string()
}

/// A size in words a person reads.
pub fn human_size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// The plain-words reason a reply form is not offered.
pub fn reply_refusal_text(code: Code) -> &'static str {
    match code {
        Code::ThreadCompleted => "This conversation is completed, so nobody can write in it.",
        Code::ConversationNotStarted => {
            "This conversation has not started yet; you can write once it starts."
        }
        Code::ClientInactive => {
            "Your account is inactive, so you can write only to the front office and billing. \
             Start a new message to them instead."
        }
        _ => {
            "This message went to several clients, so replies are turned off. \
             Start a new message instead."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_routes_of_the_practice_are_returned_to() {
        assert!(return_route("oak", "/p/oak/threads/abc").is_some());
        assert!(return_route("oak", "/p/oak/mail/team:billers").is_some());
        assert!(return_route("oak", "/p/elm/threads/abc").is_none());
        assert!(return_route("oak", "/p/oak/").is_none());
        assert!(return_route("oak", "/p/oak//evil.example").is_none());
        assert!(return_route("oak", "https://evil.example/p/oak/x").is_none());
        assert!(return_route("oak", "/p/oak/x?q=secret").is_none());
    }
}
