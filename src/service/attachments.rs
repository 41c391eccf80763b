//! Attachments: receiving uploads (streamed to disk, typed by content, all or nothing),
//! handing them to messages and drafts, serving them to those allowed after checking their
//! hash, and removing stored bytes once nothing references them.

use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::blobs::{BlobFile, TempFile};
use crate::domain::attachments::{
    cfb_root_clsid_offset, clean_name, sniff, Kind, Refusal, TextCheck, HEAD_BYTES,
};
use crate::domain::ids::AttachmentId;
use crate::domain::quotas;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments::{self as store, AttachmentRow};
use crate::store::Conn;

use super::audit::{record, AuditEntry};
use super::mailbox::load_thread;
use super::{AppState, Caller};

/// An attachment as its uploader and a thread's participants see it.
#[derive(Debug, Clone)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
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
            sha256: a.sha256.clone(),
            created_at: a.created_at,
        }
    }
}

fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> AppError {
    move |e| AppError::internal(anyhow::Error::new(e).context(context))
}

/// A file of an upload request, received in full: on disk, synced, hashed and typed.
pub struct Received {
    temp: TempFile,
    sha256: String,
    size: u64,
    kind: Kind,
    name: String,
}

/// How a refused file is named in an error: its position, and its name as the uploader
/// sent it, escaped and shortened.
fn which(index: usize, raw_name: &str) -> String {
    let shown: String = raw_name.chars().take(80).collect();
    format!("file {} ({:?})", index + 1, shown)
}

/// The refusal of an upload that is larger than the limit.
pub fn too_large(state: &AppState, index: usize, raw_name: &str) -> AppError {
    AppError::new(
        Code::AttachmentTooLarge,
        format!(
            "{} is larger than {} bytes; nothing was uploaded.",
            which(index, raw_name),
            state.config.limits.attachment_max_bytes
        ),
    )
    .with_field("file")
}

/// An upload request that is not well-formed multipart/form-data.
pub fn bad_multipart(detail: impl std::fmt::Display) -> AppError {
    AppError::new(
        Code::InvalidMultipart,
        format!("The upload is not valid multipart/form-data ({detail}); nothing was uploaded."),
    )
    .with_field("file")
}

/// Streams one file of an upload to a temporary file, hashing it and checking its size as
/// it goes (so a false or missing Content-Length changes nothing), then decides its kind
/// from its bytes. `index` and `raw_name` only name the file in errors.
pub async fn receive<S, E>(
    state: &AppState,
    index: usize,
    raw_name: &str,
    mut chunks: S,
) -> AppResult<Received>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let max = state.config.limits.attachment_max_bytes;
    let (temp, file) = state
        .blobs
        .temp_file()
        .await
        .map_err(io_error("creating an upload's temporary file"))?;
    let mut file = file;
    // tokio buffers up to 2 MiB per file by default; 20 uploads at once would hold 40 MiB.
    file.set_max_buf_size(128 * 1024);
    let mut writer = tokio::io::BufWriter::with_capacity(128 * 1024, file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::new();
    let mut text = TextCheck::default();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(bad_multipart)?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(state, index, raw_name));
        }
        hasher.update(&chunk);
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        text.feed(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(io_error("writing an upload"))?;
    }
    writer
        .flush()
        .await
        .map_err(io_error("writing an upload"))?;
    let mut file = writer.into_inner();
    file.sync_all()
        .await
        .map_err(io_error("syncing an upload"))?;
    let clsid = match cfb_root_clsid_offset(&head) {
        Some(offset) if offset + 16 <= size => {
            let mut id = [0u8; 16];
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(io_error("reading an upload"))?;
            file.read_exact(&mut id)
                .await
                .map_err(io_error("reading an upload"))?;
            Some(id)
        }
        _ => None,
    };
    let allowed: Vec<Kind> = state
        .config
        .limits
        .attachment_types
        .iter()
        .filter_map(|k| Kind::parse(k))
        .collect();
    let kind = sniff(&head, size, text.is_text(), clsid, raw_name, &allowed).map_err(|r| {
        let file = which(index, raw_name);
        let (code, detail) = match r {
            Refusal::Empty => (Code::AttachmentEmpty, format!("{file} is empty")),
            Refusal::NotAllowed => (
                Code::AttachmentTypeNotAllowed,
                format!(
                    "{file} is not of an allowed type (by its content): {}",
                    state.config.limits.attachment_types.join(", ")
                ),
            ),
            Refusal::Mismatch { content, named } => (
                Code::AttachmentTypeNotAllowed,
                format!("{file} is named as {named} but its content is {content}"),
            ),
        };
        AppError::field(code, "file", format!("{detail}; nothing was uploaded."))
    })?;
    Ok(Received {
        temp,
        sha256: hex::encode(hasher.finalize()),
        size,
        kind,
        name: clean_name(raw_name, kind),
    })
}

const HOUR_MS: i64 = 3_600_000;

/// Refuses an upload at once, before its bytes are read, when the caller already holds
/// their quota of unsent uploads or has uploaded their hourly number of files.
pub async fn check_quota(state: &AppState, caller: &Caller) -> AppResult<()> {
    let limits = &state.config.limits;
    let mut conn = state.store.read().await?;
    let held = store::pending_bytes(&mut conn, caller.person.id.as_str()).await?;
    quotas::may_hold_uploads(held.max(0) as u64, 1, limits.pending_upload_max_bytes)?;
    let now = state.now();
    let uploaded =
        store::uploads_in_window(&mut conn, caller.person.id.as_str(), now - now % HOUR_MS).await?;
    quotas::may_upload_this_hour(uploaded + 1, limits.uploads_per_hour)
        .map_err(|e| rate_exceeded(e, now))
}

fn rate_exceeded(violation: crate::domain::RuleViolation, now: i64) -> AppError {
    let mut error = AppError::from(violation);
    error.retry_after_secs = Some(((HOUR_MS - now % HOUR_MS) / 1000).max(1) as u64);
    error
}

/// Stores received files and records them as the caller's pending uploads, all or none.
#[tracing::instrument(skip_all, fields(files = files.len()))]
pub async fn store_uploads(
    state: &AppState,
    caller: &Caller,
    files: Vec<Received>,
) -> AppResult<Vec<AttachmentView>> {
    if files.is_empty() {
        return Err(AppError::invalid(
            "file",
            "file: send at least one file (form field \"file\").",
        ));
    }
    // Uploads to an object store happen before the transaction, so that a slow store does
    // not hold the database; a store the transaction then finds missing gets them again.
    for f in &files {
        state
            .blobs
            .stage(&f.sha256, &f.temp)
            .await
            .map_err(io_error("storing an upload"))?;
    }
    let stored = record_uploads(state, caller, &files).await;
    if stored.is_err() {
        // Bytes staged or renamed into place for this upload but recorded by nothing go.
        let mut orphans = Vec::new();
        for f in &files {
            let mut tx = state.store.begin().await?;
            store::insert_blob_if_missing(&mut tx, &f.sha256, f.size as i64, state.now()).await?;
            tx.commit().await?;
            orphans.push(f.sha256.clone());
        }
        remove_blobs(state, &orphans).await;
    }
    stored
}

async fn record_uploads(
    state: &AppState,
    caller: &Caller,
    files: &[Received],
) -> AppResult<Vec<AttachmentView>> {
    let now = state.now();
    let limits = &state.config.limits;
    let mut tx = state.store.begin().await?;
    // The quotas, counted in this transaction: a refusal keeps nothing (not even the count).
    let uploaded = store::count_uploads(
        &mut tx,
        caller.person.id.as_str(),
        now - now % HOUR_MS,
        files.len() as i64,
    )
    .await?;
    quotas::may_upload_this_hour(uploaded, limits.uploads_per_hour)
        .map_err(|e| rate_exceeded(e, now))?;
    let held = store::pending_bytes(&mut tx, caller.person.id.as_str()).await?;
    let adding = files.iter().map(|f| f.size).sum::<u64>();
    quotas::may_hold_uploads(held.max(0) as u64, adding, limits.pending_upload_max_bytes)?;
    // Blob rows are locked in one order (by hash) everywhere, so that two uploads or an
    // upload and a deletion cannot deadlock.
    let mut hashes: Vec<(&str, i64)> = files
        .iter()
        .map(|f| (f.sha256.as_str(), f.size as i64))
        .collect();
    hashes.sort();
    hashes.dedup();
    for (sha256, size) in hashes {
        store::upsert_blob(&mut tx, sha256, size, now).await?;
    }
    let mut views = Vec::with_capacity(files.len());
    for f in files {
        state
            .blobs
            .ensure(&f.sha256, &f.temp)
            .await
            .map_err(io_error("storing an upload"))?;
        let row = AttachmentRow {
            id: AttachmentId::generate().into_string(),
            practice_id: caller.practice_id().to_string(),
            uploader_id: caller.person.id.to_string(),
            sha256: f.sha256.clone(),
            name: f.name.clone(),
            size: f.size as i64,
            content_type: f.kind.content_type().to_string(),
            message_id: None,
            thread_id: None,
            draft_id: None,
            position: 0,
            pending_since: now,
            created_at: now,
        };
        store::insert(&mut tx, &row).await?;
        record(
            &mut tx,
            state,
            caller,
            AuditEntry::new("upload_attachment", "attachment", &row.id),
        )
        .await?;
        views.push(AttachmentView::from(&row));
    }
    tx.commit().await?;
    Ok(views)
}

fn unknown_attachment(index: usize, id: &str) -> AppError {
    AppError::field(
        Code::AttachmentNotFound,
        &format!("attachment_ids[{index}]"),
        format!("attachment_ids[{index}]: there is no pending upload of yours with id {id:?}."),
    )
}

/// Most attachments one message or draft carries.
pub const MAX_PER_MESSAGE: usize = 100;

/// Checks that every id names a distinct pending upload of the caller's, free or held by
/// `draft_id`.
pub async fn check_usable(
    conn: &mut Conn,
    caller: &Caller,
    draft_id: Option<&str>,
    ids: &[String],
) -> AppResult<()> {
    if ids.len() > MAX_PER_MESSAGE {
        return Err(AppError::invalid(
            "attachment_ids",
            format!("attachment_ids holds at most {MAX_PER_MESSAGE} ids."),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(AppError::invalid(
                &format!("attachment_ids[{i}]"),
                format!("attachment_ids[{i}]: {id:?} is listed twice."),
            ));
        }
    }
    let found = store::usable(conn, caller.person.id.as_str(), draft_id, ids).await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.iter().any(|a| &a.id == id) {
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}

/// Gives checked uploads to a new message, inside its transaction.
pub async fn attach(
    conn: &mut Conn,
    caller: &Caller,
    draft_id: Option<&str>,
    ids: &[String],
    message_id: &str,
    thread_id: &str,
) -> AppResult<()> {
    // Rows are updated in one order (by id), so that concurrent sends cannot deadlock.
    let mut order: Vec<(usize, &String)> = ids.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.cmp(b.1));
    for (i, id) in order {
        let done = store::attach_to_message(
            conn,
            id,
            caller.person.id.as_str(),
            draft_id,
            message_id,
            thread_id,
            i as i64,
        )
        .await?;
        if !done {
            // Used by another send meanwhile: this one rolls back.
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}

/// Makes a draft hold exactly `ids` (checked); uploads it let go are pending again.
pub async fn hold_for_draft(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    draft_id: &str,
    ids: &[String],
) -> AppResult<()> {
    store::release_from_draft(conn, draft_id, ids, state.now()).await?;
    for (i, id) in ids.iter().enumerate() {
        if !store::hold_for_draft(conn, id, caller.person.id.as_str(), draft_id).await? {
            return Err(unknown_attachment(i, id));
        }
    }
    Ok(())
}

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

/// The bytes are not what was stored.
fn corrupted() -> AppError {
    AppError::new(
        Code::AttachmentCorrupted,
        "This attachment's stored bytes failed their integrity check, so they are not served. \
         The practice's administrator has been alerted through the audit log.",
    )
}

/// Reads a whole file, returning its SHA-256 (hex) and length.
async fn digest(file: &mut BlobFile) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), len))
}

/// Loads an attachment the caller may download: their own pending upload, or one carried
/// by a message of a thread they take part in. Anything else is 404.
async fn load_readable(conn: &mut Conn, caller: &Caller, id: &str) -> AppResult<AttachmentRow> {
    let not_found = || AppError::not_found("attachment");
    let row = store::find(conn, caller.practice_id(), id)
        .await?
        .ok_or_else(not_found)?;
    match (&row.message_id, &row.thread_id) {
        (Some(_), Some(thread_id)) => {
            load_thread(conn, caller, thread_id)
                .await
                .map_err(|_| not_found())?;
        }
        _ if row.uploader_id == caller.person.id.as_str() => {}
        _ => return Err(not_found()),
    }
    Ok(row)
}

/// Opens an attachment for download after verifying its bytes against their hash; a
/// mismatch (or missing bytes) is refused and audited. The download is audited too.
#[tracing::instrument(skip_all)]
pub async fn open(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> AppResult<(AttachmentRow, BlobFile)> {
    let row = {
        let mut conn = state.store.read().await?;
        load_readable(&mut conn, caller, id).await?
    };
    let verified = match state.blobs.open(&row.sha256).await {
        Ok(mut file) => match digest(&mut file).await {
            Ok((sha256, len)) if sha256 == row.sha256 && len == row.size as u64 => {
                file.seek(io::SeekFrom::Start(0))
                    .await
                    .map_err(io_error("reading an attachment"))?;
                Some(file)
            }
            Ok(_) => None,
            Err(e) => return Err(io_error("reading an attachment")(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Deleted meanwhile (with its message)? Then it is simply gone.
            let mut conn = state.store.read().await?;
            if store::find(&mut conn, caller.practice_id(), &row.id)
                .await?
                .is_none()
            {
                return Err(AppError::not_found("attachment"));
            }
            None
        }
        Err(e) => return Err(io_error("opening an attachment")(e)),
    };
    let mut tx = state.store.begin().await?;
    match verified {
        Some(file) => {
            record(
                &mut tx,
                state,
                caller,
                AuditEntry::new("download_attachment", "attachment", &row.id),
            )
            .await?;
            tx.commit().await?;
            Ok((row, file))
        }
        None => {
            tracing::error!(attachment = %row.id, "stored attachment bytes failed their integrity check");
            record(
                &mut tx,
                state,
                caller,
                AuditEntry::new("download_attachment", "attachment", &row.id)
                    .outcome("integrity_failure"),
            )
            .await?;
            tx.commit().await?;
            Err(corrupted())
        }
    }
}

/// The caller's pending upload, as it would be listed.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> AppResult<AttachmentView> {
    let mut conn = state.store.read().await?;
    let row = load_readable(&mut conn, caller, id).await?;
    Ok(AttachmentView::from(&row))
}

/// Deletes one of the caller's pending uploads. A sent attachment goes only with its
/// message (409 `attachment_sent`); one a draft holds must leave the draft first.
#[tracing::instrument(skip_all)]
pub async fn delete_pending(state: &AppState, caller: &Caller, id: &str) -> AppResult<()> {
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
