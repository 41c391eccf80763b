//! Attachments: receiving uploads (streamed to disk, typed by content, all or nothing),
//! handing them to messages and drafts, serving them to those allowed after checking their
//! hash, and removing stored bytes once nothing references them.

mod cleanup;
mod download;
mod holding;
mod upload;

pub use cleanup::{release_blobs, remove_blobs, sweep};
use download::load_readable;
pub use download::open;
pub use holding::{attach, check_usable, hold_for_draft, MAX_PER_MESSAGE};
pub use upload::{bad_multipart, check_quota, receive, store_uploads, too_large, Received};

use std::io;

use crate::domain::ids::AttachmentId;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments::{self as store, AttachmentRow};

use super::audit::{record, AuditEntry};
use super::{AppState, Caller};

/// An attachment as its uploader and a thread's participants see it.
#[derive(Debug, Clone)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    /// The SHA-256 of the plain bytes (not where they are kept).
    pub sha256: String,
    pub created_at: i64,
}

impl From<&AttachmentRow> for AttachmentView {
    fn from(a: &AttachmentRow) -> Self {
        AttachmentView {
            id: a.id.clone(),
            name: a.name.clone(),
            size: a.size,
            content_type: a.content_type.clone(),
            sha256: a.content_sha256.clone().unwrap_or_else(|| a.sha256.clone()),
            created_at: a.created_at,
        }
    }
}

pub(super) fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> AppError {
    move |e| AppError::internal(anyhow::Error::new(e).context(context))
}

/// An attachment's details, to show the caller (audited).
pub async fn info(
    state: &AppState,
    caller: &Caller,
    id: &AttachmentId,
) -> AppResult<AttachmentView> {
    let view = get(state, caller, id).await?;
    let entry = AuditEntry::new("read_attachment_info", "attachment", id.as_str());
    super::audit::record_read(state, caller, entry).await?;
    Ok(view)
}

/// The caller's pending upload, as it would be listed (not audited: see [`info`]).
pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: &AttachmentId,
) -> AppResult<AttachmentView> {
    let id = id.as_str();
    let mut conn = state.store.read().await?;
    let row = load_readable(&mut conn, caller, id).await?;
    Ok(AttachmentView::from(&row))
}

/// Deletes one of the caller's pending uploads. A sent attachment goes only with its
/// message (409 `attachment_sent`); one a draft holds must leave the draft first.
#[tracing::instrument(skip_all, fields(attachment_id = %id))]
pub async fn delete_pending(state: &AppState, caller: &Caller, id: &AttachmentId) -> AppResult<()> {
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let row = load_readable(&mut tx, caller, id).await?;
    if row.message_id.is_some() {
        return Err(AppError::new(
            Code::AttachmentSent,
            "This attachment belongs to a sent message; it goes only if that message is \
             permanently deleted.",
        ));
    }
    if row.draft_id.is_some() {
        return Err(AppError::new(
            Code::AttachmentInDraft,
            "A draft holds this upload; remove it from the draft first.",
        ));
    }
    let Some(sha256) = store::delete_pending(&mut tx, &row.id, caller.person.id.as_str()).await?
    else {
        return Err(AppError::not_found("attachment"));
    };
    let unreferenced = release_blobs(&mut tx, vec![sha256]).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("delete_attachment", "attachment", &row.id),
    )
    .await?;
    tx.commit().await?;
    remove_blobs(state, &unreferenced).await;
    Ok(())
}
