//! Password reset: asking never reveals whether an address exists; the emailed link is
//! single-use and valid for one hour; using it ends every session of the person.

use crate::auth::token_hash;
use crate::domain::password::NewPassword;
use crate::domain::values::EmailAddress;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::{people as people_store, practices, tokens, Conn};

use super::audit::{record_for_self, record_raw, AuditEntry};
use super::links::{self, NewLink};
use super::{notifications, person, throttle, AppState, Person, RequestMeta};

const PURPOSE: &str = "password_reset";
/// How long a reset link works.
pub const VALID_MS: i64 = 3_600_000;

/// Issues a fresh reset token for `person`, revoking earlier ones; returns the link to it
/// (made when the email is sent, so that nothing secret waits in the queue).
pub async fn issue_link(conn: &mut Conn, state: &AppState, person: &Person) -> AppResult<String> {
    let link = NewLink {
        purpose: PURPOSE,
        person_id: Some(person.id.as_str()),
        address: None,
        valid_ms: VALID_MS,
    };
    let token = links::issue(conn, state, link).await?;
    Ok(format!("{}/password-resets/{token}", state.public_url))
}

/// Queues a reset email if the address belongs to an activated person of the practice.
/// The answer, and the writes behind it, are the same either way; requests are limited
/// per account and per client address like sign-ins.
#[tracing::instrument(skip_all)]
pub async fn request(
    state: &AppState,
    meta: &RequestMeta,
    practice: &str,
    email: &str,
) -> AppResult<()> {
    let email = EmailAddress::parse("email", email)?;
    let slug = practice.trim().to_ascii_lowercase();
    let key = throttle::account_key(&format!("password-reset\n{slug}"), &email.normalized());
    throttle::count_attempt(state, meta, &key).await??;
    let mut tx = state.store.begin().await?;
    let found = match practices::find_by_slug(&mut tx, &slug).await? {
        Some(p) => people_store::find_for_sign_in(&mut tx, &p.id, &email.normalized())
            .await?
            .map(|(r, _)| r),
        None => None,
    };
    let target = found
        .map(person)
        .transpose()?
        .filter(|t| t.status.is_activated());
    if let Some(target) = &target {
        notifications::password_reset(
            &mut tx,
            state,
            target.practice_id.as_str(),
            target.id.as_str(),
        )
        .await?;
    }
    record_raw(
        &mut tx,
        state,
        target.as_ref().map(|t| t.practice_id.as_str()),
        None,
        None,
        meta,
        AuditEntry {
            action: "request_password_reset",
            object_type: Some("person"),
            object_id: target.as_ref().map(|t| t.id.as_str()),
            outcome: "success",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn invalid_token() -> AppError {
    AppError::new(
        Code::InvalidToken,
        "This link is unknown, has been used, or has expired. Ask for a new one.",
    )
}

/// Sets a new password with a reset link; every session of the person ends.
#[tracing::instrument(skip_all)]
pub async fn complete(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    password: &str,
) -> AppResult<()> {
    let now = state.now();
    let hash = token_hash(token);
    let target = {
        let mut conn = state.store.read().await?;
        super::links::holder(&mut conn, PURPOSE, token, now, invalid_token).await?
    };
    let password = NewPassword::parse("password", password, &[&target.name, &target.email])?;
    let new_hash = state.hasher.hash(password.expose()).await?;
    let mut tx = state.store.begin().await?;
    if tokens::consume(&mut tx, &hash, PURPOSE, now)
        .await?
        .is_none()
    {
        return Err(invalid_token());
    }
    if !people_store::set_password(&mut tx, target.id.as_str(), &new_hash, now).await? {
        return Err(invalid_token());
    }
    super::sessions::end_all(&mut tx, target.id.as_str(), None).await?;
    record_for_self(&mut tx, state, &target, meta, "reset_password").await?;
    tx.commit().await?;
    Ok(())
}
