//! Signing in and out of the web inbox, and asking for a password reset link.
//!
//! A web session is a row of the same session table as an API token, with the same idle
//! and absolute limits; its token travels in the `confide-session` cookie (HttpOnly,
//! SameSite=Lax, Secure under https, scoped to the practice's pages). Every sign-in makes
//! a new session and ends the one the browser held, so a session id never outlives it.

use askama::Template;
use poem::http::{header, StatusCode};
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::api::{cookie_value, device_cookie, request_meta, DEVICE_COOKIE};
use crate::error::AppError;
use crate::service::{password_resets, practices, sessions as session_service, AppState};
use crate::store::practices::PracticeRow;

use super::{
    checked_form, message_page, not_found, page_error, render, return_route, see_other,
    SESSION_COOKIE,
};

#[derive(Template)]
#[template(path = "web/sign_in.html")]
struct SignInPage<'a> {
    practice: &'a str,
    slug: &'a str,
    csrf_token: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<String>,
    prompt: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "web/forgot.html")]
struct ForgotPage<'a> {
    practice: &'a str,
    slug: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct PortalQuery {
    next: Option<String>,
}

async fn practice_of(state: &AppState, slug: &str) -> Result<PracticeRow, Response> {
    match practices::portal(state, slug).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(not_found()),
        Err(e) => Err(page_error(e)),
    }
}

/// The portal address in every notification: the sign-in form, or the inbox for someone
/// already signed in.
#[handler]
pub async fn portal(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<PortalQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let practice = or_page!(practice_of(&state, &slug).await);
    let next = query
        .next
        .as_deref()
        .and_then(|n| return_route(&practice.slug, n))
        .unwrap_or_default();
    if cookie_value(req, SESSION_COOKIE).is_some() {
        if let Ok(_visit) = super::visit(&state, req, &practice.slug).await {
            let to = if next.is_empty() {
                inbox(&practice.slug)
            } else {
                next
            };
            return see_other(&to);
        }
    }
    let page = SignInPage {
        practice: &practice.name,
        slug: &practice.slug,
        csrf_token: &csrf.0,
        next: &next,
        email: "",
        error: None,
        prompt: (!next.is_empty()).then_some("Please sign in to continue."),
    };
    render(StatusCode::OK, &page)
}

fn inbox(slug: &str) -> String {
    format!("/p/{slug}/mail/inbox")
}

/// The cookie holding a web session: for this practice's pages only.
fn session_cookie(state: &AppState, slug: &str, token: &str, max_age_secs: i64) -> String {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={token}; Path=/p/{slug}/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    )
}

#[handler]
pub async fn sign_in(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let practice = or_page!(practice_of(&state, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let next = return_route(&practice.slug, form.get("next")).unwrap_or_default();
    let to = if next.is_empty() {
        inbox(&practice.slug)
    } else {
        next.clone()
    };
    let email = form.get("email");
    match start_session(
        &state,
        req,
        &practice.slug,
        email,
        form.get("password"),
        &to,
    )
    .await
    {
        Ok(resp) => resp,
        Err(e) if e.status().is_client_error() => {
            let page = SignInPage {
                practice: &practice.name,
                slug: &practice.slug,
                csrf_token: &csrf.0,
                next: &next,
                email,
                error: Some(e.detail.clone()),
                prompt: None,
            };
            let resp = render(e.status(), &page);
            match e.retry_after_secs {
                Some(secs) => resp
                    .with_header(header::RETRY_AFTER, secs.to_string())
                    .into_response(),
                None => resp,
            }
        }
        Err(e) => page_error(e),
    }
}

/// Signs a person in with their password, ends the session the browser held before, and
/// answers with a redirect to `to` that sets the session and device cookies.
pub async fn start_session(
    state: &AppState,
    req: &Request,
    slug: &str,
    email: &str,
    password: &str,
    to: &str,
) -> crate::error::AppResult<Response> {
    let meta = request_meta(req, &state.config);
    let device = cookie_value(req, DEVICE_COOKIE);
    let done =
        session_service::sign_in(state, &meta, slug, email, password, device.as_deref()).await?;
    end_earlier_session(state, req).await;
    let max_age = (done.expires_at - state.now()).max(0) / 1000;
    let mut resp = see_other(to);
    let headers = resp.headers_mut();
    for cookie in [
        session_cookie(state, slug, &done.token, max_age),
        device_cookie(state, &done.device_token),
    ] {
        if let Ok(value) = cookie.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(resp)
}

/// Ends the session the browser held before signing in again (rotation): its id must not
/// live on next to the new one.
async fn end_earlier_session(state: &AppState, req: &Request) {
    let Some(token) = cookie_value(req, SESSION_COOKIE) else {
        return;
    };
    let meta = request_meta(req, &state.config);
    if let Ok(earlier) = session_service::authenticate(state, &token, meta).await {
        if let Err(e) = session_service::sign_out(state, &earlier).await {
            tracing::warn!(error = %e.describe(), "ending the earlier web session failed");
        }
    }
}

#[handler]
pub async fn sign_out(
    req: &Request,
    Path(slug): Path<String>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let _form = or_page!(checked_form(verifier, body).await);
    let practice = or_page!(practice_of(&state, &slug).await);
    if let Ok(visit) = super::visit(&state, req, &practice.slug).await {
        if let Err(e) = session_service::sign_out(&state, &visit.caller).await {
            return page_error(e);
        }
    }
    let mut resp = see_other(&format!("/p/{}/", practice.slug));
    if let Ok(value) = session_cookie(&state, &practice.slug, "", 0).parse() {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    resp
}

#[handler]
pub async fn forgot_page(
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    match practice_of(&state, &slug).await {
        Ok(practice) => render(
            StatusCode::OK,
            &ForgotPage {
                practice: &practice.name,
                slug: &practice.slug,
                csrf_token: &csrf.0,
                error: None,
            },
        ),
        Err(page) => page,
    }
}

/// Sends a reset link if the address belongs to someone of the practice; the answer is
/// the same either way.
#[handler]
pub async fn forgot_submit(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let practice = or_page!(practice_of(&state, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let meta = request_meta(req, &state.config);
    match password_resets::request(&state, &meta, &practice.slug, form.get("email")).await {
        Ok(()) => message_page(
            StatusCode::OK,
            "Check your email",
            "If the address belongs to someone of this practice, a link to choose a new password is on its way. It works for a short while.",
        ),
        Err(e) if e.status().is_client_error() => refused(&practice, csrf, e),
        Err(e) => page_error(e),
    }
}

fn refused(practice: &PracticeRow, csrf: &CsrfToken, e: AppError) -> Response {
    let page = ForgotPage {
        practice: &practice.name,
        slug: &practice.slug,
        csrf_token: &csrf.0,
        error: Some(e.detail.clone()),
    };
    let resp = render(e.status(), &page);
    match e.retry_after_secs {
        Some(secs) => resp
            .with_header(header::RETRY_AFTER, secs.to_string())
            .into_response(),
        None => resp,
    }
}
