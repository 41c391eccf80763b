//! Retention: a practice that sets `retention_years` has its threads deleted for good once
//! their last activity is older than that, with everything that belongs to them (messages,
//! files no longer used elsewhere, index entries, notifications), unless a legal hold
//! covers them. Each deletion is audited without content. The janitor runs it; `confide
//! purge --dry-run` lists what would go.

use crate::error::AppResult;
use crate::store::legal_holds::{self as store, Retention};

use super::audit::{record_raw, AuditEntry};
use super::mailbox::delete::remove_thread;
use super::{attachments, AppState, RequestMeta};

/// A year, as retention counts it: 365.25 days, in milliseconds.
const YEAR_MS: i64 = 31_557_600_000;

/// Threads removed per read of the candidates.
const BATCH: i64 = 100;

/// A thread retention would remove now.
#[derive(Debug, Clone)]
pub struct Expired {
    pub practice_slug: String,
    pub thread_id: String,
    pub last_activity_at: i64,
}

fn cutoff(state: &AppState, r: &Retention) -> i64 {
    state
        .now()
        .saturating_sub(r.retention_years.saturating_mul(YEAR_MS))
}

/// The threads retention would remove now, oldest first, at most `limit` per practice.
pub async fn expired(state: &AppState, limit: i64) -> AppResult<Vec<Expired>> {
    let mut conn = state.store.read().await?;
    let mut out = Vec::new();
    for r in store::retentions(&mut conn).await? {
        let threads =
            store::expired_threads(&mut conn, &r.practice_id, cutoff(state, &r), limit).await?;
        out.extend(
            threads
                .into_iter()
                .map(|(thread_id, last_activity_at)| Expired {
                    practice_slug: r.slug.clone(),
                    thread_id,
                    last_activity_at,
                }),
        );
    }
    Ok(out)
}

/// Removes every thread retention asks to remove now; returns how many went.
pub async fn purge(state: &AppState) -> AppResult<usize> {
    let mut purged = 0;
    let retentions = {
        let mut conn = state.store.read().await?;
        store::retentions(&mut conn).await?
    };
    for r in retentions {
        loop {
            let cutoff = cutoff(state, &r);
            let batch = {
                let mut conn = state.store.read().await?;
                store::expired_threads(&mut conn, &r.practice_id, cutoff, BATCH).await?
            };
            let mut went = 0;
            for (thread_id, _) in &batch {
                // One thread failing (a deadlock, a file that will not go) stops neither
                // the others nor the other practices; it is tried again next time.
                match purge_one(state, &r.practice_id, thread_id, cutoff).await {
                    Ok(true) => went += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        thread_id = %thread_id,
                        error = %e.describe(),
                        "retention: a thread could not be deleted"
                    ),
                }
            }
            purged += went;
            if went == 0 || (batch.len() as i64) < BATCH {
                break;
            }
        }
    }
    Ok(purged)
}

/// Removes one thread, checked again in its own transaction (a new message or a hold may
/// have come meanwhile); returns whether it went.
async fn purge_one(
    state: &AppState,
    practice_id: &str,
    thread_id: &str,
    cutoff: i64,
) -> AppResult<bool> {
    let mut tx = state.store.begin().await?;
    store::lock_thread(&mut tx, thread_id).await?;
    store::lock_holds(&mut tx, practice_id, false).await?;
    if !store::still_expired(&mut tx, thread_id, cutoff).await? {
        return Ok(false);
    }
    let unreferenced = remove_thread(&mut tx, state, practice_id, None, thread_id).await?;
    record_raw(
        &mut tx,
        state,
        Some(practice_id),
        None,
        None,
        &RequestMeta::default(),
        AuditEntry::new("purge_thread", "thread", thread_id),
    )
    .await?;
    tx.commit().await?;
    attachments::remove_blobs(state, &unreferenced).await;
    Ok(true)
}
