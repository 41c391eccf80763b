//! `Idempotency-Key` on compose, replies and sending a draft: a retry of the same request (same key, same content)
//! answers with the first result instead of sending again; the same key with other content
//! is refused. Keys are remembered for a week.

use sha2::{Digest, Sha256};

use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::{idempotency, Conn, Tx};

use super::super::{AppState, Caller};

/// How long a send's Idempotency-Key is remembered.
const IDEMPOTENCY_DAYS: i64 = 7;

/// A send under an idempotency key: the caller's key and the hash of what they send.
#[derive(Clone)]
pub struct Idempotent {
    person_id: String,
    key: String,
    request_hash: String,
}

impl Idempotent {
    /// The send's key, checked; `None` without one. `canonical` is what the request
    /// sends: the same key with anything else is refused.
    pub fn new(
        caller: &Caller,
        canonical: serde_json::Value,
        key: Option<&str>,
    ) -> AppResult<Option<Self>> {
        let Some(key) = key else { return Ok(None) };
        if key.is_empty() || key.len() > 200 {
            return Err(AppError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 200 characters.",
            ));
        }
        let canonical = canonical.to_string();
        Ok(Some(Idempotent {
            person_id: caller.person.id.to_string(),
            key: key.to_string(),
            request_hash: hex::encode(Sha256::digest(canonical.as_bytes())),
        }))
    }

    /// The result of an earlier send under this key, if there was one; 409
    /// `idempotency_key_reused` if it sent something else.
    pub async fn earlier(&self, conn: &mut Conn) -> AppResult<Option<(String, String)>> {
        match idempotency::find(conn, &self.person_id, &self.key).await? {
            Some((hash, thread_id, message_id)) if hash == self.request_hash => {
                Ok(Some((thread_id, message_id)))
            }
            Some(_) => Err(AppError::field(
                Code::IdempotencyKeyReused,
                "Idempotency-Key",
                "This Idempotency-Key was used for a different message.",
            )),
            None => Ok(None),
        }
    }

    /// After losing a race to a concurrent retry: its result, or `error` if there is none.
    pub async fn earlier_or(
        &self,
        state: &AppState,
        error: AppError,
    ) -> AppResult<(String, String)> {
        let mut conn = state.store.read().await?;
        self.earlier(&mut conn).await?.ok_or(error)
    }

    /// Remembers the result under the key, inside the send's transaction.
    pub async fn remember(
        &self,
        tx: &mut Tx,
        state: &AppState,
        (thread_id, message_id): &(String, String),
    ) -> Result<(), sqlx::Error> {
        idempotency::insert(
            tx,
            &self.person_id,
            &self.key,
            &self.request_hash,
            thread_id,
            message_id,
            state.now(),
        )
        .await
    }
}

/// Forgets idempotency keys older than a week (run by the janitor).
pub async fn forget_old_keys(state: &AppState) -> AppResult<u64> {
    let mut conn = state.store.write().await?;
    Ok(
        idempotency::delete_older_than(&mut conn, state.now() - IDEMPOTENCY_DAYS * 86_400_000)
            .await?,
    )
}
