//! Receiving uploads: streamed to a temporary file (sealed as it arrives, with encryption
//! at rest), hashed, size-checked and typed by content, then stored under their address
//! and recorded all or nothing, within the caller's quotas.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::blobs::TempFile;
use crate::crypto::files::FileSealer;
use crate::domain::attachments::{
    cfb_root_clsid_offset, clean_name, sniff, Kind, Refusal, TextCheck, HEAD_BYTES,
};
use crate::domain::ids::AttachmentId;
use crate::domain::quotas;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments::{self as store, AttachmentRow};
use crate::store::Conn;

use crate::service::audit::{record, AuditEntry};
use crate::service::{AppState, Caller};

use super::{io_error, remove_blobs, AttachmentView};

/// A file of an upload request, received in full: on disk, synced, hashed and typed.
pub struct Received {
    temp: TempFile,
    /// Where its bytes are kept (see `PracticeKey::file_address`).
    address: String,
    /// The SHA-256 of its plain bytes.
    sha256: String,
    /// Whether the temporary file holds them sealed.
    sealed: bool,
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
/// from its bytes. With encryption the bytes are sealed with `key` before they reach the
/// disk (the caller's practice's key). `index` and `raw_name` only name the file in errors.
pub async fn receive<S, E>(
    state: &AppState,
    caller: &Caller,
    index: usize,
    raw_name: &str,
    chunks: S,
) -> AppResult<Received>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (temp, file) = state
        .blobs
        .temp_file()
        .await
        .map_err(io_error("creating an upload's temporary file"))?;
    let max = state.config.limits.attachment_max_bytes;
    let key = {
        let mut conn = state.store.read().await?;
        caller.key(&mut conn).await?
    };
    let sealer = key.file_sealer();
    let sealed = sealer.is_some();
    let seen = write_out(file, chunks, max, sealer)
        .await?
        .ok_or_else(|| too_large(state, index, raw_name))?;
    let kind = sniff(
        &seen.head,
        seen.size,
        seen.text.is_text(),
        seen.clsid,
        raw_name,
        &allowed_kinds(state),
    )
    .map_err(|r| refusal(state, index, raw_name, r))?;
    Ok(Received {
        temp,
        address: key.file_address(&seen.sha256),
        sha256: seen.sha256,
        sealed,
        size: seen.size,
        kind,
        name: clean_name(raw_name, kind),
    })
}

/// What was learnt of a file while it streamed to disk.
struct Seen {
    sha256: String,
    size: u64,
    /// Its first bytes, for typing by content.
    head: Vec<u8>,
    text: TextCheck,
    /// The class id of an OLE compound file's root entry, when the head says where it
    /// lies (it tells a .doc from other compound files).
    clsid: Option<[u8; 16]>,
}

/// Catches the 16 bytes of the class id as they stream past (the file on disk may be
/// sealed, so it is not read back).
#[derive(Default)]
struct ClsidCatch {
    offset: Option<u64>,
    looked: bool,
    bytes: [u8; 16],
    filled: usize,
}

impl ClsidCatch {
    /// `chunk` starts at `at` in the file; `head` holds the file's first bytes so far.
    fn feed(&mut self, head: &[u8], at: u64, chunk: &[u8]) {
        if !self.looked && head.len() >= 0x34 {
            self.looked = true;
            self.offset = cfb_root_clsid_offset(head);
        }
        let Some(offset) = self.offset else { return };
        let end = at + chunk.len() as u64;
        for pos in offset.max(at)..(offset + 16).min(end) {
            self.bytes[(pos - offset) as usize] = chunk[(pos - at) as usize];
            self.filled += 1;
        }
    }

    fn get(&self) -> Option<[u8; 16]> {
        (self.filled == 16).then_some(self.bytes)
    }
}

/// What the receiving task hands the writer.
enum Piece {
    Bytes(Bytes),
    /// The whole file has come: seal its end and sync it.
    End,
}

/// Chunks on their way from the socket to the writer: the next arrives while the writer
/// hashes, seals and writes one.
const IN_FLIGHT: usize = 1;
/// What the writer gathers before one write to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Receives the chunks and hands them to a writer on a blocking thread, which hashes,
/// checks, seals (with `sealer`) and writes them to `file` and syncs it; so receiving the
/// next chunk overlaps the work on the last one, and that work never holds up the
/// runtime's threads. `None` as soon as the size goes over `max` (the rest is not read).
async fn write_out<S, E>(
    file: tokio::fs::File,
    mut chunks: S,
    max: u64,
    sealer: Option<FileSealer>,
) -> AppResult<Option<Seen>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let file = file.into_std().await;
    let (pieces, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || digest_and_write(file, rx, sealer));
    let received: AppResult<bool> = async {
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(bad_multipart)?;
            size += chunk.len() as u64;
            if size > max {
                return Ok(false);
            }
            if pieces.send(Piece::Bytes(chunk)).await.is_err() {
                // The writer failed; its error is the answer.
                return Ok(true);
            }
        }
        let _ = pieces.send(Piece::End).await;
        Ok(true)
    }
    .await;
    // Without `End` the writer stops at once, neither finishing nor syncing the file.
    drop(pieces);
    let written = writer
        .await
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("writing an upload")));
    match received {
        Ok(true) => written?.map(Some),
        Ok(false) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The writer's side of [`write_out`]: runs on a blocking thread until `End` (or until the
/// receiving side gives up, which leaves the file unfinished, for its owner to remove).
fn digest_and_write(
    mut file: std::fs::File,
    mut pieces: tokio::sync::mpsc::Receiver<Piece>,
    mut sealer: Option<FileSealer>,
) -> AppResult<Seen> {
    use std::io::Write;
    let mut hasher = Sha256::new();
    let (mut size, mut head, mut text) = (0u64, Vec::new(), TextCheck::default());
    let mut clsid = ClsidCatch::default();
    // What goes to the file next, sealed or plain (one copy of the bytes either way).
    let mut out = Vec::with_capacity(WRITE_BUFFER + crate::crypto::files::CHUNK + 64);
    if let Some(sealer) = &sealer {
        out.extend_from_slice(sealer.header());
    }
    loop {
        let chunk = match pieces.blocking_recv() {
            Some(Piece::Bytes(chunk)) => chunk,
            Some(Piece::End) => break,
            None => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "an upload stopped before its end"
                )))
            }
        };
        let at = size;
        size += chunk.len() as u64;
        hasher.update(&chunk);
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        clsid.feed(&head, at, &chunk);
        text.feed(&chunk);
        match &mut sealer {
            Some(sealer) => sealer.update(&chunk, &mut out),
            None => out.extend_from_slice(&chunk),
        }
        if out.len() >= WRITE_BUFFER {
            file.write_all(&out).map_err(write_error_of)?;
            out.clear();
        }
    }
    if let Some(sealer) = sealer {
        sealer.finish(&mut out);
    }
    file.write_all(&out).map_err(write_error_of)?;
    file.sync_all().map_err(io_error("syncing an upload"))?;
    Ok(Seen {
        sha256: hex::encode(hasher.finalize()),
        size,
        head,
        text,
        clsid: clsid.get(),
    })
}

fn write_error_of(e: std::io::Error) -> AppError {
    io_error("writing an upload")(e)
}

/// The kinds `limits.attachment_types` allows.
fn allowed_kinds(state: &AppState) -> Vec<Kind> {
    state
        .config
        .limits
        .attachment_types
        .iter()
        .filter_map(|k| Kind::parse(k))
        .collect()
}

/// Why a file's content is refused, naming the file.
fn refusal(state: &AppState, index: usize, raw_name: &str, r: Refusal) -> AppError {
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
    // First the bytes' rows, marked for removal unless they exist already, so that bytes
    // put in place by an upload that then dies (a crash between storing them and the
    // transaction that records them) are still the janitor's to remove: never a file
    // that no row names. Recording the upload takes the mark back.
    // (In one order, by hash, as everywhere blob rows are locked.)
    let mut addresses: Vec<(String, i64)> = files
        .iter()
        .map(|f| (f.address.clone(), f.size as i64))
        .collect();
    addresses.sort();
    addresses.dedup();
    let now = state.now();
    let mut tx = state.store.begin().await?;
    for (address, size) in &addresses {
        store::insert_blob_if_missing(&mut tx, address, *size, now).await?;
    }
    tx.commit().await?;
    let stored = async {
        // Uploads to an object store happen before the transaction, so that a slow store
        // does not hold the database; a store the transaction then finds missing gets
        // them again.
        for f in &files {
            state
                .blobs
                .stage(&f.address, &f.temp)
                .await
                .map_err(io_error("storing an upload"))?;
        }
        record_uploads(state, caller, &files).await
    }
    .await;
    if stored.is_err() {
        // Bytes staged or renamed into place for this upload but recorded by nothing go
        // (their rows are still marked; bytes something else uses stay).
        let orphans: Vec<String> = addresses.into_iter().map(|(a, _)| a).collect();
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
    let mut tx = state.store.begin().await?;
    check_quotas_in(&mut tx, state, caller, files, now).await?;
    // Blob rows are locked in one order (by hash) everywhere, so that two uploads or an
    // upload and a deletion cannot deadlock.
    let mut hashes: Vec<(&str, i64)> = files
        .iter()
        .map(|f| (f.address.as_str(), f.size as i64))
        .collect();
    hashes.sort();
    hashes.dedup();
    for (sha256, size) in hashes {
        store::upsert_blob(&mut tx, sha256, size, now).await?;
    }
    let mut views = Vec::with_capacity(files.len());
    for f in files {
        views.push(record_one(&mut tx, state, caller, f, now).await?);
    }
    tx.commit().await?;
    Ok(views)
}

/// The quotas, counted inside the recording transaction: a refusal keeps nothing (not
/// even the count).
async fn check_quotas_in(
    tx: &mut Conn,
    state: &AppState,
    caller: &Caller,
    files: &[Received],
    now: i64,
) -> AppResult<()> {
    let limits = &state.config.limits;
    let me = caller.person.id.as_str();
    let uploaded = store::count_uploads(tx, me, now - now % HOUR_MS, files.len() as i64).await?;
    quotas::may_upload_this_hour(uploaded, limits.uploads_per_hour)
        .map_err(|e| rate_exceeded(e, now))?;
    let held = store::pending_bytes(tx, me).await?;
    let adding = files.iter().map(|f| f.size).sum::<u64>();
    quotas::may_hold_uploads(held.max(0) as u64, adding, limits.pending_upload_max_bytes)?;
    Ok(())
}

/// Puts one file's bytes in place (if they are not there yet) and records it as the
/// caller's pending upload, audited.
async fn record_one(
    tx: &mut Conn,
    state: &AppState,
    caller: &Caller,
    f: &Received,
    now: i64,
) -> AppResult<AttachmentView> {
    state
        .blobs
        .ensure(&f.address, &f.temp)
        .await
        .map_err(io_error("storing an upload"))?;
    let row = AttachmentRow {
        id: AttachmentId::generate().into_string(),
        practice_id: caller.practice_id().to_string(),
        uploader_id: caller.person.id.to_string(),
        sha256: f.address.clone(),
        content_sha256: f.sealed.then(|| f.sha256.clone()),
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
    let key = caller.key(tx).await?;
    store::insert(tx, &key, &row).await?;
    record(
        tx,
        state,
        caller,
        AuditEntry::new("upload_attachment", "attachment", &row.id),
    )
    .await?;
    Ok(AttachmentView::from(&row))
}
