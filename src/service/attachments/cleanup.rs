//! Removing stored bytes once nothing references them, and unused uploads after a day.

use crate::error::AppResult;
use crate::store::attachments as store;
use crate::store::Conn;

use crate::service::AppState;

use super::io_error;

/// Inside a deletion's transaction: of the blobs that `hashes` pointed at, marks those
/// nothing references any more. Pass the result to [`remove_blobs`] after committing.
pub async fn release_blobs(conn: &mut Conn, hashes: Vec<String>) -> AppResult<Vec<String>> {
    let mut hashes = hashes;
    hashes.sort();
    hashes.dedup();
    let mut marked = Vec::new();
    for chunk in hashes.chunks(500) {
        marked.extend(store::mark_unreferenced(conn, chunk).await?);
    }
    Ok(marked)
}

/// Removes the bytes of marked blobs that are still unreferenced. Each goes in its own
/// transaction holding the blob's row, so that an upload of the same content either
/// happened before (and the blob stays) or waits and stores the bytes again.
pub async fn remove_blobs(state: &AppState, hashes: &[String]) {
    for sha256 in hashes {
        let removed = async {
            let mut tx = state.store.begin().await?;
            if store::claim_removal(&mut tx, sha256).await? {
                state
                    .blobs
                    .delete(sha256)
                    .await
                    .map_err(io_error("removing stored attachment bytes"))?;
            } else {
                // Marked while a new upload took it up again: in use after all.
                store::unmark_if_referenced(&mut tx, sha256).await?;
            }
            tx.commit().await?;
            AppResult::Ok(())
        }
        .await;
        if let Err(e) = removed {
            // The blob stays marked; the janitor tries again.
            tracing::warn!(error = %e.describe(), "removing unreferenced attachment bytes failed");
        }
    }
}

/// The janitor's part: removes uploads unused for `limits.pending_attachment_hours`, and
/// the bytes of every blob still marked for removal.
pub async fn sweep(state: &AppState) -> AppResult<usize> {
    let before = state.now() - state.config.limits.pending_attachment_hours * 3_600_000;
    let mut expired = 0;
    loop {
        let mut tx = state.store.begin().await?;
        let hashes = store::delete_unused_before(&mut tx, before, 500).await?;
        let n = hashes.len();
        expired += n;
        release_blobs(&mut tx, hashes).await?;
        tx.commit().await?;
        if n < 500 {
            break;
        }
    }
    loop {
        let marked = {
            let mut conn = state.store.read().await?;
            store::marked(&mut conn, 500).await?
        };
        if marked.is_empty() {
            break;
        }
        remove_blobs(state, &marked).await;
        let mut conn = state.store.read().await?;
        if store::marked(&mut conn, 500).await? == marked {
            break; // nothing could be removed this round
        }
    }
    Ok(expired)
}
