//! Serving an attachment to those allowed, after checking its bytes against their hash.

use std::io;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::blobs::BlobFile;
use crate::crypto::files;
use crate::domain::ids::AttachmentId;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments::{self as store, AttachmentRow};
use crate::store::keys::PracticeKey;
use crate::store::Conn;

use crate::service::audit::{record, AuditEntry};
use crate::service::mailbox::conversations::may_see_attachment;
use crate::service::mailbox::load_thread;
use crate::service::{AppState, Caller};

use super::io_error;

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
pub(super) async fn load_readable(
    conn: &mut Conn,
    caller: &Caller,
    id: &str,
) -> AppResult<AttachmentRow> {
    let not_found = || AppError::not_found("attachment");
    let row = store::find(conn, &caller.keys, caller.practice_id(), id)
        .await?
        .ok_or_else(not_found)?;
    match (&row.message_id, &row.thread_id) {
        (Some(_), Some(thread_id)) => {
            load_thread(conn, caller, thread_id)
                .await
                .map_err(|e| match e.code {
                    Code::NotFound => not_found(),
                    _ => e,
                })?;
            if !may_see_attachment(conn, caller.person.id.as_str(), &row).await? {
                return Err(not_found());
            }
        }
        _ if row.uploader_id == caller.person.id.as_str() => {}
        _ => return Err(not_found()),
    }
    Ok(row)
}

/// Opens a sealed file into an unlinked temporary file, a chunk at a time, checking each
/// chunk and then the whole against `sha256` and `size`; `None` if anything does not fit.
pub(super) async fn open_sealed(
    state: &AppState,
    key: &PracticeKey,
    mut sealed: BlobFile,
    sha256: &str,
    size: u64,
) -> io::Result<Option<BlobFile>> {
    let mut header = [0u8; files::HEADER_LEN];
    if !read_fully(&mut sealed, &mut header).await? {
        return Ok(None);
    }
    let Ok(mut opener) = key.file_opener(&header) else {
        return Ok(None);
    };
    let (temp, mut plain) = state.blobs.temp_file().await?;
    drop(temp); // unlinked now; the open handle keeps the bytes until closed
    let mut hasher = Sha256::new();
    let mut chunk = Vec::with_capacity(files::CHUNK + files::TAG);
    let count = files::chunks(size);
    for i in 0..count {
        chunk.resize(files::chunk_len(size, i), 0);
        if !read_fully(&mut sealed, &mut chunk).await?
            || opener.open_next(&mut chunk, i + 1 == count).is_err()
        {
            return Ok(None);
        }
        hasher.update(&chunk);
        plain.write_all(&chunk).await?;
    }
    // Nothing may follow the last chunk.
    if sealed.read(&mut [0u8; 1]).await? != 0 || hex::encode(hasher.finalize()) != sha256 {
        return Ok(None);
    }
    plain.flush().await?;
    plain.seek(io::SeekFrom::Start(0)).await?;
    Ok(Some(plain))
}

/// Fills `buf`; false if the file ends first.
async fn read_fully(file: &mut BlobFile, buf: &mut [u8]) -> io::Result<bool> {
    match file.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The stored bytes of an attachment, if they still match its hash (`None` if not, or if
/// they are missing); 404 if the attachment was deleted meanwhile. Sealed bytes are
/// opened into a temporary file first; with encryption on, plain bytes are refused.
async fn verified_bytes(
    state: &AppState,
    caller: &Caller,
    row: &AttachmentRow,
) -> AppResult<Option<BlobFile>> {
    match state.blobs.open(&row.sha256).await {
        Ok(file) if row.content_sha256.is_some() || caller.keys.enabled() => {
            let Some(sha256) = &row.content_sha256 else {
                return Ok(None);
            };
            let key = {
                let mut conn = state.store.read().await?;
                caller.key(&mut conn).await?
            };
            open_sealed(state, &key, file, sha256, row.size as u64)
                .await
                .map_err(io_error("reading an attachment"))
        }
        Ok(mut file) => match digest(&mut file).await {
            Ok((sha256, len)) if sha256 == row.sha256 && len == row.size as u64 => {
                file.seek(io::SeekFrom::Start(0))
                    .await
                    .map_err(io_error("reading an attachment"))?;
                Ok(Some(file))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(io_error("reading an attachment")(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Deleted meanwhile (with its message)? Then it is simply gone.
            let mut conn = state.store.read().await?;
            match store::find(&mut conn, &caller.keys, caller.practice_id(), &row.id).await? {
                None => Err(AppError::not_found("attachment")),
                Some(_) => Ok(None),
            }
        }
        Err(e) => Err(io_error("opening an attachment")(e)),
    }
}

/// Opens an attachment for download after verifying its bytes against their hash; a
/// mismatch (or missing bytes) is refused and audited. The download is audited too.
#[tracing::instrument(skip_all, fields(attachment_id = %id))]
pub async fn open(
    state: &AppState,
    caller: &Caller,
    id: &AttachmentId,
) -> AppResult<(AttachmentRow, BlobFile)> {
    let id = id.as_str();
    let row = {
        let mut conn = state.store.read().await?;
        load_readable(&mut conn, caller, id).await?
    };
    let verified = verified_bytes(state, caller, &row).await?;
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
