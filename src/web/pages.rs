//! The first-start setup page and the invitation page: plain HTML forms, CSRF-protected.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Form, Html, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::api::request_meta;
use crate::domain::Code;
use crate::error::AppError;
use crate::service::practices::{self, NewPracticeInput};
use crate::service::{email_changes, invitations, AppState};

#[derive(Template)]
#[template(path = "web/setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
    name: &'a str,
    slug: &'a str,
    admin_name: &'a str,
    admin_email: &'a str,
}

#[derive(Template)]
#[template(path = "web/invitation.html")]
struct InvitationPage<'a> {
    token: &'a str,
    csrf_token: &'a str,
    name: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/notice.html")]
struct Notice<'a> {
    heading: &'a str,
    text: &'a str,
    link: Option<&'a str>,
    link_text: &'a str,
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(e) => {
            AppError::internal(anyhow::Error::new(e).context("rendering a page")).into_response()
        }
    }
}

fn notice(status: StatusCode, heading: &str, text: &str) -> Response {
    render(
        status,
        &Notice {
            heading,
            text,
            link: None,
            link_text: "",
        },
    )
}

/// An error as a page, for browsers (the API answers problem+json instead).
pub(super) fn error_page(status: StatusCode, detail: &str) -> Response {
    let heading = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "What you sent is too large",
        StatusCode::REQUEST_TIMEOUT => "This took too long",
        StatusCode::UNAUTHORIZED => "Please sign in",
        _ => status.canonical_reason().unwrap_or("Something went wrong"),
    };
    notice(status, heading, detail)
}

fn expired_form() -> Response {
    notice(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Go back, reload the page and submit the form again.",
    )
}

fn dead_link(err: AppError) -> Response {
    if err.status().is_server_error() {
        return err.into_response();
    }
    notice(
        StatusCode::NOT_FOUND,
        "This link does not work",
        &err.detail,
    )
}

#[handler]
pub async fn setup_page(
    Path(token): Path<String>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    match practices::setup_link_is_valid(&state, &token).await {
        Ok(true) => render(
            StatusCode::OK,
            &SetupPage {
                token: &token,
                csrf_token: &csrf.0,
                error: None,
                name: "",
                slug: "",
                admin_name: "",
                admin_email: "",
            },
        ),
        Ok(false) => notice(
            StatusCode::NOT_FOUND,
            "This setup link does not work",
            "It has been used or has expired. Restart the server on an empty database for a new one.",
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct SetupForm {
    csrf_token: String,
    name: String,
    slug: String,
    admin_name: String,
    admin_email: String,
    password: String,
    password_again: String,
}

#[handler]
pub async fn setup_submit(
    req: &Request,
    Path(token): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    Form(form): Form<SetupForm>,
) -> Response {
    if !verifier.is_valid(&form.csrf_token) {
        return expired_form();
    }
    let again = |error: String| {
        render(
            StatusCode::BAD_REQUEST,
            &SetupPage {
                token: &token,
                csrf_token: &csrf.0,
                error: Some(error),
                name: &form.name,
                slug: &form.slug,
                admin_name: &form.admin_name,
                admin_email: &form.admin_email,
            },
        )
    };
    if form.password != form.password_again {
        return again("The two passwords differ.".into());
    }
    let meta = request_meta(req, &state.config);
    let input = NewPracticeInput {
        slug: &form.slug,
        name: &form.name,
        admin_name: &form.admin_name,
        admin_email: &form.admin_email,
        admin_password: Some(&form.password),
    };
    match practices::complete_setup(&state, &meta, &token, input).await {
        Ok(created) => {
            tracing::info!(practice = %created.practice.id, "practice created from the setup page");
            render(
                StatusCode::OK,
                &Notice {
                    heading: "Your practice is ready",
                    text: &format!(
                        "{} is set up. Sign in as {} with the practice address “{}”.",
                        created.practice.name, created.admin.email, created.practice.slug
                    ),
                    link: Some(&format!("/p/{}/", created.practice.slug)),
                    link_text: "Sign in",
                },
            )
        }
        Err(e) if e.code == Code::InvalidToken => dead_link(e),
        Err(e) if e.status().is_client_error() => again(e.detail),
        Err(e) => e.into_response(),
    }
}

#[handler]
pub async fn invitation_page(
    Path(token): Path<String>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    match invitations::find(&state, &token).await {
        Ok(person) if person.status == crate::domain::Status::Invited => render(
            StatusCode::OK,
            &InvitationPage {
                token: &token,
                csrf_token: &csrf.0,
                name: &person.name,
                error: None,
            },
        ),
        Ok(_) => notice(
            StatusCode::NOT_FOUND,
            "This link does not work",
            "It has already been used.",
        ),
        Err(e) => dead_link(e),
    }
}

/// The form of a page that sets a password (accepting an invitation, resetting).
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    password: String,
    password_again: String,
}

/// Checks a password form, runs `set`, and turns the outcome into a page: a notice saying
/// `done`, a dead-link page, or the form again (`again`) with what went wrong.
async fn set_password_from_form<Fut>(
    form: &PasswordForm,
    verifier: &CsrfVerifier,
    again: impl Fn(String) -> Response,
    set: impl FnOnce() -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Result<Response, AppError>>,
{
    if !verifier.is_valid(&form.csrf_token) {
        return expired_form();
    }
    if form.password != form.password_again {
        return again("The two passwords differ.".into());
    }
    match set().await {
        Ok(done) => done,
        Err(e) if e.code == Code::InvalidToken => dead_link(e),
        Err(e) if e.status().is_client_error() => again(e.detail),
        Err(e) => e.into_response(),
    }
}

#[handler]
pub async fn invitation_submit(
    req: &Request,
    Path(token): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let person = match invitations::find(&state, &token).await {
        Ok(p) => p,
        Err(e) => return dead_link(e),
    };
    let again = |error: String| {
        render(
            StatusCode::BAD_REQUEST,
            &InvitationPage {
                token: &token,
                csrf_token: &csrf.0,
                name: &person.name,
                error: Some(error),
            },
        )
    };
    let meta = request_meta(req, &state.config);
    let set = || async {
        // The new password signs them in at once, straight into their inbox.
        let person = invitations::accept(&state, &meta, &token, &form.password).await?;
        let slug = practices::slug_of(&state, person.practice_id.as_str()).await?;
        let inbox = format!("/p/{slug}/mail/inbox");
        let signed_in =
            super::inbox::start_session(&state, req, &slug, &person.email, &form.password, &inbox)
                .await;
        // The password is set whatever happens next: a sign-in that fails now (throttled,
        // say) must not look like a failed invitation.
        Ok(signed_in.unwrap_or_else(|_| {
            render(
                StatusCode::OK,
                &Notice {
                    heading: "Your password is set",
                    text: "Sign in with your email address and this password.",
                    link: Some(&format!("/p/{slug}/")),
                    link_text: "Sign in",
                },
            )
        }))
    };
    set_password_from_form(&form, verifier, again, set).await
}

#[derive(Template)]
#[template(path = "web/reset.html")]
struct ResetPage<'a> {
    token: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
}

#[handler]
pub async fn reset_page(Path(token): Path<String>, csrf: &CsrfToken) -> Response {
    // Whether the link still works is told on submission: the page itself checks nothing,
    // so that it cannot be used to test links.
    render(
        StatusCode::OK,
        &ResetPage {
            token: &token,
            csrf_token: &csrf.0,
            error: None,
        },
    )
}

#[handler]
pub async fn reset_submit(
    req: &Request,
    Path(token): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let again = |error: String| {
        render(
            StatusCode::BAD_REQUEST,
            &ResetPage {
                token: &token,
                csrf_token: &csrf.0,
                error: Some(error),
            },
        )
    };
    let meta = request_meta(req, &state.config);
    let set = || async {
        crate::service::password_resets::complete(&state, &meta, &token, &form.password).await?;
        Ok(notice(
            StatusCode::OK,
            "Your password is set",
            "Sign in again with your new password.",
        ))
    };
    set_password_from_form(&form, verifier, again, set).await
}

#[derive(Template)]
#[template(path = "web/email_change.html")]
struct EmailChangePage<'a> {
    token: &'a str,
    csrf_token: &'a str,
}

/// The link sent to a new email address: a button confirms it. Opening the page changes
/// nothing (mail scanners open links).
#[handler]
pub async fn email_change_page(
    Path(token): Path<String>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    match email_changes::is_valid(&state, &token).await {
        Ok(true) => render(
            StatusCode::OK,
            &EmailChangePage {
                token: &token,
                csrf_token: &csrf.0,
            },
        ),
        Ok(false) => notice(
            StatusCode::NOT_FOUND,
            "This link does not work",
            "It has been used or has expired. Ask for the change again.",
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
}

#[handler]
pub async fn email_change_submit(
    req: &Request,
    Path(token): Path<String>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if !verifier.is_valid(&form.csrf_token) {
        return expired_form();
    }
    let meta = request_meta(req, &state.config);
    match email_changes::confirm(&state, &meta, &token).await {
        Ok(slug) => {
            let sign_in = format!("/p/{slug}/");
            render(
                StatusCode::OK,
                &Notice {
                    heading: "Your new email address is confirmed",
                    text: "You were signed out everywhere. Sign in again with your new address.",
                    link: Some(&sign_in),
                    link_text: "Sign in",
                },
            )
        }
        Err(e) if e.code == Code::EditConflict => notice(
            StatusCode::CONFLICT,
            "Please try again",
            "Your account was being changed at the same moment. The link still works: confirm again.",
        ),
        Err(e) if e.code == Code::EmailTaken => notice(
            StatusCode::CONFLICT,
            "This address is already in use",
            "Another account of your practice uses it. Ask your practice for help.",
        ),
        Err(e) => dead_link(e),
    }
}
