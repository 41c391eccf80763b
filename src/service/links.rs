//! Single-use links (setup, invitations, password resets, email changes): a 256-bit token
//! of which only the hash is stored; issuing one revokes the earlier unused ones of the
//! same purpose (and person).

use crate::auth::{new_token, token_hash};
use crate::error::AppResult;
use crate::store::{tokens, Conn};

use super::AppState;

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
