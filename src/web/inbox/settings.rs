//! Settings: one's name and mobile number, the email address (changed only once the new
//! one is confirmed), notification consents in plain words, the password, and every
//! session (web and API alike) with a button to end it.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, Request, Response};
use serde::Deserialize;

use crate::domain::conversations::{Autoresponder, Period};
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::error::{AppError, AppResult};
use crate::service::people::{self as me, PersonPatch};
use crate::service::{sessions as session_service, AppState};

use super::super::form::Fields;
use super::{
    checked_form, local_time, local_value, long_time, page_error, render, see_other, visit, Chrome,
    Visit,
};

pub struct SessionLine {
    pub id: String,
    pub started: String,
    pub last_used: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "web/inbox/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    name: String,
    email: String,
    pending_email: Option<String>,
    mobile: String,
    consent_email: bool,
    consent_sms: bool,
    sessions: Vec<SessionLine>,
    /// Staff: the autoresponder's form, filled from the one set (its first period).
    is_staff: bool,
    auto_on: bool,
    auto_text: String,
    auto_from: String,
    auto_until: String,
    notice: Option<&'static str>,
    /// Which form failed (`profile`, `consents`, `email`, `password`), its field and why.
    error_form: String,
    error_field: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

async fn settings_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
) -> Result<SettingsPage, Response> {
    let chrome = visit.chrome(state, csrf, "settings").await?;
    let me = me::me(state, &visit.caller).await.map_err(page_error)?;
    let sessions = session_service::list_mine(state, &visit.caller)
        .await
        .map_err(page_error)?
        .into_iter()
        .map(|s| SessionLine {
            id: s.id,
            started: long_time(s.created_at).0,
            last_used: long_time(s.last_seen_at).0,
            current: s.current,
        })
        .collect();
    let first = me
        .autoresponder
        .as_ref()
        .and_then(|a| a.periods.first().copied());
    let p = me.person;
    Ok(SettingsPage {
        is_staff: p.role.is_staff(),
        auto_on: me.autoresponder.is_some(),
        auto_text: me
            .autoresponder
            .as_ref()
            .map(|a| a.text.clone())
            .unwrap_or_default(),
        auto_from: first.map(|f| local_value(f.from)).unwrap_or_default(),
        auto_until: first
            .and_then(|f| f.until)
            .map(local_value)
            .unwrap_or_default(),
        chrome,
        name: p.name,
        email: p.email,
        pending_email: p.pending_email,
        mobile: p.mobile.unwrap_or_default(),
        consent_email: p.consent_email,
        consent_sms: p.consent_sms,
        sessions,
        notice: None,
        error_form: String::new(),
        error_field: String::new(),
        error: None,
    })
}

#[handler]
pub async fn settings_page(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<SettingsQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let mut page = or_page!(settings_view(&state, &visit, csrf).await);
    page.notice = match query.done.as_deref() {
        Some("profile") => Some("Your details are saved."),
        Some("consents") => Some("Your notification choices are saved."),
        Some("email") => {
            Some("We sent a link to the new address. It takes effect once you open it.")
        }
        Some("password") => Some("Your password is changed. Your other sessions have ended."),
        Some("session") => Some("That session has ended."),
        Some("autoresponder") => Some("Your automatic reply is saved."),
        _ => None,
    };
    render(StatusCode::OK, &page)
}

/// Saves one of the settings forms (`form` says which), then back to the page; a refusal
/// shows the page again with the form's field named.
#[handler]
pub async fn settings_submit(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let which = form.get("form").to_string();
    let saved = save(&state, &visit, &which, &form).await;
    let error = match saved {
        Ok(()) => return see_other(&visit.href(&format!("settings?done={which}"))),
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => e,
        Err(e) => return page_error(e),
    };
    let mut page = or_page!(settings_view(&state, &visit, csrf).await);
    page.error_form = which;
    page.error_field = error.field.clone().unwrap_or_default();
    page.error = Some(error.detail.clone());
    render(error.status(), &page)
}

async fn save(state: &AppState, visit: &Visit, which: &str, form: &Fields) -> AppResult<()> {
    let caller = &visit.caller;
    match which {
        "profile" => {
            let mobile = match form.get("mobile").trim() {
                "" => None,
                raw => Some(MobileNumber::parse("mobile", raw)?),
            };
            let patch = PersonPatch {
                name: Some(PersonName::parse("name", form.get("name"))?),
                mobile: Some(mobile),
                ..PersonPatch::default()
            };
            me::update_me(state, caller, patch, None).await.map(drop)
        }
        "consents" => {
            let patch = PersonPatch {
                consent_email: Some(form.get("consent_email") == "on"),
                consent_sms: Some(form.get("consent_sms") == "on"),
                ..PersonPatch::default()
            };
            me::update_me(state, caller, patch, None).await.map(drop)
        }
        "email" => {
            let patch = PersonPatch {
                email: Some(EmailAddress::parse("email", form.get("email"))?),
                ..PersonPatch::default()
            };
            let current = Some(form.get("current_password"));
            me::update_me(state, caller, patch, current).await.map(drop)
        }
        "password" => {
            if form.get("new_password") != form.get("new_password_again") {
                return Err(AppError::invalid(
                    "new_password_again",
                    "The two new passwords differ.",
                ));
            }
            let (current, new) = (form.get("current_password"), form.get("new_password"));
            me::change_password(state, caller, current, new).await
        }
        "autoresponder" => {
            let value = match form.get("action") {
                "off" => None,
                _ => Some(autoresponder_of(form, state.now())?),
            };
            let patch = PersonPatch {
                autoresponder: Some(value),
                ..PersonPatch::default()
            };
            me::update_me(state, caller, patch, None).await.map(drop)
        }
        _ => Err(AppError::invalid("form", "Choose which settings to save.")),
    }
}

/// The autoresponder's form: a text and one period (UTC), from now when no start is given,
/// until switched off when no end is.
fn autoresponder_of(form: &Fields, now: i64) -> AppResult<Autoresponder> {
    let period = Period {
        from: local_time(form, "auto_from")?.unwrap_or(now),
        until: local_time(form, "auto_until")?,
    };
    Ok(Autoresponder::parse(form.get("auto_text"), vec![period])?)
}

/// Ends one of one's sessions; ending the current one signs out.
#[handler]
pub async fn end_session(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let _form = or_page!(checked_form(verifier, body).await);
    match session_service::end_mine(&state, &visit.caller, &id).await {
        Ok(()) if id == visit.caller.session_id.as_str() => see_other(&visit.href("")),
        Ok(()) => see_other(&visit.href("settings?done=session")),
        Err(e) => page_error(e),
    }
}
