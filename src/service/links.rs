//! Single-use links (setup, invitations, password resets, email changes): a 256-bit token
//! of which only the hash is stored; issuing one revokes the earlier unused ones of the
//! same purpose (and person).

use crate::auth::{new_token, token_hash};
use crate::error::{AppError, AppResult};
use crate::store::{people as people_store, tokens, Conn};

use super::{person, AppState, Person};

/// What a new link is for.
pub struct NewLink<'a> {
    pub purpose: &'static str,
    pub person_id: Option<&'a str>,
    /// The address an email-change link confirms.
    pub address: Option<&'a str>,
    pub valid_ms: i64,
}

/// Issues a fresh token; returns it (the caller makes the link).
pub async fn issue(conn: &mut Conn, state: &AppState, link: NewLink<'_>) -> AppResult<String> {
    let token = new_token();
    let now = state.now();
    tokens::revoke_unused(conn, link.purpose, link.person_id).await?;
    tokens::insert(
        conn,
        &tokens::NewToken {
            token_hash: &token_hash(&token),
            purpose: link.purpose,
            person_id: link.person_id,
            address: link.address,
            created_at: now,
            expires_at: now + link.valid_ms,
        },
    )
    .await?;
    Ok(token)
}

/// The person a still-valid link of `purpose` was issued to; `invalid` otherwise.
pub async fn holder(
    conn: &mut Conn,
    purpose: &str,
    token: &str,
    now: i64,
    invalid: fn() -> AppError,
) -> AppResult<Person> {
    let person_id = tokens::find_valid(conn, &token_hash(token), purpose, now)
        .await?
        .flatten()
        .ok_or_else(invalid)?;
    let row = people_store::find_any_practice(conn, &person_id)
        .await?
        .ok_or_else(invalid)?;
    person(row)
}
