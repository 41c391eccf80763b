//! Changing a person's email address (DESIGN.md §2 People and consent). A new address
//! counts only once confirmed through a single-use link sent to it (256-bit token, stored
//! hashed, valid 24 hours); the old address gets a notice without content. Until then
//! sign-in and password resets use the old address. Confirming ends every session.

use crate::auth::token_hash;
use crate::domain::values::EmailAddress;
use crate::domain::Code;
use crate::domain::Status;
use crate::error::{AppError, AppResult};
use crate::store::{people as people_store, practices, tokens, Conn};

use super::audit::record_for_self;
use super::links::{self, NewLink};
use super::{notifications, person, AppState, Person, RequestMeta};

const PURPOSE: &str = "email_change";
pub const VALID_MS: i64 = 24 * 3_600_000;

/// Issues a fresh confirmation token for `address`, revoking earlier ones of the person,
/// if `address` is still the one asked for (`None` if another change came meanwhile: the
/// token for that one must not be revoked by this late one). The token confirms that
/// address only.
pub async fn issue(
    conn: &mut Conn,
    state: &AppState,
    person: &Person,
    address: &str,
) -> AppResult<Option<String>> {
    let current = people_store::find(conn, person.practice_id.as_str(), person.id.as_str())
        .await?
        .and_then(|p| p.pending_email);
    if current.as_deref() != Some(address) {
        return Ok(None);
    }
    let link = NewLink {
        purpose: PURPOSE,
        person_id: Some(person.id.as_str()),
        address: Some(address),
        valid_ms: VALID_MS,
    };
    Ok(Some(links::issue(conn, state, link).await?))
}

/// The link the new address receives.
pub fn url(state: &AppState, token: &str) -> String {
    format!("{}/email-changes/{token}", state.public_url)
}

/// Asks for `target`'s address to become `new` (the caller writes `target` afterwards).
/// Someone invited has never used their address: it changes at once and the invitation,
/// which proves the new address, goes there instead. Anyone else keeps the old address
/// until the new one is confirmed. `tell_if_taken`: refuse at once an address another
/// person of the practice has (for admins, who see every address; a person changing their
/// own learns it only on confirming, so that nobody can probe who uses which address).
pub async fn request(
    conn: &mut Conn,
    state: &AppState,
    target: &mut Person,
    new: &EmailAddress,
    tell_if_taken: bool,
) -> AppResult<()> {
    if tell_if_taken {
        let practice_id = target.practice_id.as_str();
        if let Some((other, _)) =
            people_store::find_for_sign_in(conn, practice_id, &new.normalized()).await?
        {
            if other.id != target.id.as_str() {
                return Err(super::people::email_taken());
            }
        }
    }
    if target.status == Status::Invited {
        target.email = new.as_str().to_string();
        target.pending_email = None;
        tokens::revoke_unused(conn, "invitation", Some(target.id.as_str())).await?;
        return notifications::invitation(
            conn,
            state,
            target.practice_id.as_str(),
            target.id.as_str(),
        )
        .await;
    }
    target.pending_email = Some(new.as_str().to_string());
    tokens::revoke_unused(conn, PURPOSE, Some(target.id.as_str())).await?;
    notifications::email_change(
        conn,
        state,
        target.practice_id.as_str(),
        target.id.as_str(),
        &target.email,
    )
    .await
}

fn invalid_token() -> AppError {
    AppError::new(
        Code::InvalidToken,
        "This link is unknown, has been used, or has expired. Ask for the change again.",
    )
}

/// Whether the link is still valid (for the page that asks to confirm).
pub async fn is_valid(state: &AppState, token: &str) -> AppResult<bool> {
    let mut conn = state.store.read().await?;
    Ok(
        tokens::find_valid(&mut conn, &token_hash(token), PURPOSE, state.now())
            .await?
            .flatten()
            .is_some(),
    )
}

/// Makes the pending address the person's address; every session of theirs ends. Returns
/// the practice's slug (for the sign-in link).
#[tracing::instrument(skip_all)]
pub async fn confirm(state: &AppState, meta: &RequestMeta, token: &str) -> AppResult<String> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let Some((Some(person_id), Some(address))) =
        tokens::consume_with_address(&mut tx, &token_hash(token), PURPOSE, now).await?
    else {
        return Err(invalid_token());
    };
    let mut target = person(
        people_store::find_any_practice(&mut tx, &person_id)
            .await?
            .ok_or_else(invalid_token)?,
    )?;
    // The link confirms the address it was sent to, and only while that one is asked for.
    if target.pending_email.as_deref() != Some(address.as_str()) {
        return Err(invalid_token());
    }
    target.pending_email = None;
    target.email = address;
    super::people::write_person(&mut tx, state, &mut target).await?;
    super::sessions::end_all(&mut tx, target.id.as_str(), None).await?;
    // Links sent to the old address stop working too.
    tokens::revoke_unused(&mut tx, "password_reset", Some(target.id.as_str())).await?;
    record_for_self(&mut tx, state, &target, meta, "confirm_email_change").await?;
    let slug = practices::find(&mut tx, target.practice_id.as_str())
        .await?
        .map(|p| p.slug)
        .unwrap_or_default();
    tx.commit().await?;
    Ok(slug)
}
