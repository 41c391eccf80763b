//! Invitations: a single-use link (256-bit token, stored hashed, valid 7 days) with which
//! an invited person chooses their password. Issuing a new one invalidates the old.

use crate::auth::token_hash;
use crate::domain::password::NewPassword;
use crate::domain::Code;
use crate::domain::Status;
use crate::error::{AppError, AppResult};
use crate::store::{people as people_store, tokens, Conn};

use super::audit::{record_raw, AuditEntry};
use super::links::{self, NewLink};
use super::{AppState, Person, RequestMeta};

pub const INVITATION_DAYS: i64 = 7;
const PURPOSE: &str = "invitation";

/// Issues a fresh invitation token for `person`, revoking earlier ones; returns the token.
pub async fn issue(conn: &mut Conn, state: &AppState, person: &Person) -> AppResult<String> {
    let link = NewLink {
        purpose: PURPOSE,
        person_id: Some(person.id.as_str()),
        address: None,
        valid_ms: INVITATION_DAYS * 86_400_000,
    };
    links::issue(conn, state, link).await
}

/// The link a person opens to accept their invitation.
pub fn url(state: &AppState, token: &str) -> String {
    format!("{}/invitations/{token}", state.public_url)
}

fn invalid_token() -> AppError {
    AppError::new(
        Code::InvalidToken,
        "This link is unknown, has been used, or has expired. Ask your practice for a new one.",
    )
}

/// The invited person, if the token is still valid.
pub async fn find(state: &AppState, token: &str) -> AppResult<Person> {
    let mut conn = state.store.read().await?;
    super::links::holder(&mut conn, PURPOSE, token, state.now(), invalid_token).await
}

/// Sets the invited person's password and activates them; the link then stops working.
#[tracing::instrument(skip_all)]
pub async fn accept(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    password: &str,
) -> AppResult<Person> {
    let mut invited = find(state, token).await?;
    if invited.status != Status::Invited {
        return Err(invalid_token());
    }
    let password = NewPassword::parse("password", password, &[&invited.name, &invited.email])?;
    let hash = state.hasher.hash(password.expose()).await?;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    if tokens::consume(&mut tx, &token_hash(token), PURPOSE, now)
        .await?
        .is_none()
    {
        return Err(invalid_token());
    }
    if !people_store::activate_invited(&mut tx, invited.id.as_str(), &hash, now).await? {
        return Err(invalid_token());
    }
    // Their role as it is now: an admin may have changed it since the link was read.
    let role = match people_store::find_for_write(
        &mut tx,
        invited.practice_id.as_str(),
        invited.id.as_str(),
    )
    .await?
    {
        Some(row) => super::person(row)?.role,
        None => return Err(invalid_token()),
    };
    crate::service::mailbox::teams::sync_member(
        &mut tx,
        state,
        invited.practice_id.as_str(),
        invited.id.as_str(),
        Some((role, Status::Invited)),
        (role, Status::Active),
    )
    .await?;
    record_raw(
        &mut tx,
        state,
        Some(invited.practice_id.as_str()),
        Some(invited.id.as_str()),
        None,
        meta,
        AuditEntry::new("accept_invitation", "person", invited.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    invited.status = Status::Active;
    Ok(invited)
}
