//! The practice's own settings (admins): a limit on clients' messages, whether new clients
//! may start threads, how many people a conversation may have, and how long threads are
//! kept.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, Request, Response};
use serde::Deserialize;

use crate::domain::conversations::PracticeSettings;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::mailbox::conversations::{self, SettingsChange};
use crate::service::AppState;

use super::super::form::Fields;
use super::{checked_form, not_found, page_error, render, visit, Chrome, Visit};

#[derive(Template)]
#[template(path = "web/inbox/practice.html")]
struct SettingsPage {
    chrome: Chrome,
    settings: PracticeSettings,
    /// The server's own limit on message bodies.
    global_max: usize,
    notice: Option<&'static str>,
    error: Option<String>,
    error_field: String,
}

#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    done: Option<String>,
}

async fn admin_visit(state: &AppState, req: &Request, slug: &str) -> Result<Visit, Response> {
    let visit = visit(state, req, slug).await?;
    if visit.caller.role() == Role::Admin {
        Ok(visit)
    } else {
        Err(not_found())
    }
}

async fn settings_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
) -> Result<SettingsPage, Response> {
    let chrome = visit.chrome(state, csrf, "admin/settings").await?;
    let settings = conversations::settings(state, &visit.caller)
        .await
        .map_err(page_error)?;
    Ok(SettingsPage {
        chrome,
        settings,
        global_max: state.config.limits.body_max_chars,
        notice: None,
        error: None,
        error_field: String::new(),
    })
}

#[handler]
pub async fn practice_settings_page(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<SettingsQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(admin_visit(&state, req, &slug).await);
    let mut page = or_page!(settings_view(&state, &visit, csrf).await);
    page.notice = query
        .done
        .as_deref()
        .filter(|d| *d == "saved")
        .map(|_| "Saved.");
    render(StatusCode::OK, &page)
}

/// The form's fields as a change: every setting is on the form.
fn change_of(form: &Fields) -> AppResult<SettingsChange> {
    let limit = match form.get("client_message_max_chars").trim() {
        "" => None,
        raw => Some(raw.parse::<i64>().map_err(|_| {
            AppError::invalid(
                "client_message_max_chars",
                "Give the limit on clients' messages as a number of characters, or leave it empty.",
            )
        })?),
    };
    let max = form
        .get("conversation_max_participants")
        .trim()
        .parse::<i64>()
        .map_err(|_| {
            AppError::invalid(
                "conversation_max_participants",
                "Give the most people in a conversation as a number.",
            )
        })?;
    let years = match form.get("retention_years").trim() {
        "" => None,
        raw => Some(raw.parse::<i64>().map_err(|_| {
            AppError::invalid(
                "retention_years",
                "Give how long threads are kept as a number of years, or leave it empty.",
            )
        })?),
    };
    Ok(SettingsChange {
        client_message_max_chars: Some(limit),
        new_clients_can_start_threads: Some(form.get("new_clients_can_start_threads") == "on"),
        conversation_max_participants: Some(max),
        retention_years: Some(years),
    })
}

#[handler]
pub async fn practice_settings_submit(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(admin_visit(&state, req, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let saved = match change_of(&form) {
        Ok(change) => conversations::update_settings(&state, &visit.caller, change).await,
        Err(e) => Err(e),
    };
    let error = match saved {
        Ok(_) => return visit.then_go(Ok(()), "admin/settings?done=saved"),
        Err(e) if e.status().is_client_error() => e,
        Err(e) => return page_error(e),
    };
    let mut page = or_page!(settings_view(&state, &visit, csrf).await);
    page.error_field = error.field.clone().unwrap_or_default();
    page.error = Some(error.detail.clone());
    render(error.status(), &page)
}
