//! Quick notes into a client's chart, chart notes (amended, never deleted), and thread
//! exports. Everything here is audited.

use crate::clock::to_datetime;
use crate::domain::chart::{
    csv_export, fhir_document_reference, may_take_quick_note, may_use_chart_notes, parse_content,
    transcript, NoteForFhir, TranscriptMessage,
};
use crate::domain::ids::ChartNoteId;
use crate::domain::ids::PersonId;
use crate::domain::ids::ThreadId;
use crate::domain::Code;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::attachments::AttachmentRow;
use crate::store::chart_notes::{self as note_store, ChartNoteRow, VersionRow};
use crate::store::keys::Keyring;
use crate::store::threads::ThreadRow;
use crate::store::{messages, people as people_store, Conn};

/// The names of a message's attachments, in order.
fn names_of<'a>(files: &'a [AttachmentRow], message_id: &str) -> Vec<&'a str> {
    files
        .iter()
        .filter(|f| f.message_id.as_deref() == Some(message_id))
        .map(|f| f.name.as_str())
        .collect()
}

use super::audit::{record, AuditEntry};
use super::mailbox::conversations::{files_seen_by, notes_of};
use super::mailbox::{load_thread, sender_ref};
use super::{AppState, Caller};

#[derive(Debug, Clone)]
pub struct NoteVersion {
    pub version: i64,
    pub content: String,
    pub author_id: String,
    pub author_name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ChartNoteView {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub source_thread_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The current version is the last.
    pub versions: Vec<NoteVersion>,
}

impl ChartNoteView {
    pub fn current(&self) -> Option<&NoteVersion> {
        self.versions.last()
    }
}

async fn view(conn: &mut Conn, keys: &Keyring, note: ChartNoteRow) -> AppResult<ChartNoteView> {
    let client = people_store::find(conn, &note.practice_id, &note.client_id).await?;
    let versions = note_store::versions(conn, keys, &note.id)
        .await?
        .into_iter()
        .map(|v: VersionRow| NoteVersion {
            version: v.version,
            content: v.content,
            author_id: v.author_id,
            author_name: v.author_name,
            created_at: v.created_at,
        })
        .collect();
    Ok(ChartNoteView {
        id: note.id,
        client_id: note.client_id,
        client_name: client.map(|c| c.name).unwrap_or_default(),
        source_thread_id: note.source_thread_id,
        created_at: note.created_at,
        updated_at: note.updated_at,
        versions,
    })
}

/// Saves a chart note to the one client of a thread: `content` as given, or else the
/// thread's transcript, followed by its internal notes only when `include_notes` asks.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn quick_note(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    content: Option<&str>,
    include_notes: bool,
) -> AppResult<ChartNoteView> {
    let thread_id = thread_id.as_str();
    // Nothing of the thread is loaded for someone who may not keep chart notes.
    may_use_chart_notes(caller.role())?;
    let given = content.map(parse_content).transpose()?;
    let mut tx = state.store.begin().await?;
    let ctx = load_thread(&mut tx, caller, thread_id).await?;
    may_take_quick_note(caller.role(), ctx.thread.client_count)?;
    let client = ctx
        .participants
        .iter()
        .find(|p| p.role == Role::Client)
        .ok_or_else(|| {
            AppError::new(
                Code::QuickNoteRequiresSingleClient,
                "A quick note needs a thread with exactly one client.",
            )
        })?;
    let content = match given {
        Some(content) => content,
        None => transcript_of(&mut tx, caller, &ctx.thread).await?,
    };
    let content = if include_notes {
        let notes = notes_of(&mut tx, caller, &ctx).await?;
        let lines: Vec<String> = notes
            .iter()
            .map(|n| {
                format!(
                    "- {} ({}): {}",
                    n.author.name,
                    to_datetime(n.created_at).format("%Y-%m-%d %H:%M UTC"),
                    n.body
                )
            })
            .collect();
        if lines.is_empty() {
            content
        } else {
            parse_content(&format!(
                "{content}\n\nInternal notes:\n{}",
                lines.join("\n")
            ))?
        }
    } else {
        content
    };
    let now = state.now();
    let note = ChartNoteRow {
        id: ChartNoteId::generate().into_string(),
        practice_id: caller.practice_id().into(),
        client_id: client.person_id.to_string(),
        author_id: caller.person.id.to_string(),
        source_thread_id: Some(ctx.thread.id.clone()),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    note_store::insert(&mut tx, &note).await?;
    let key = caller.key(&mut tx).await?;
    note_store::insert_version(
        &mut tx,
        &key,
        &note.id,
        1,
        &content,
        caller.person.id.as_str(),
        now,
    )
    .await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("quick_note", "chart_note", &note.id),
    )
    .await?;
    let view = view(&mut tx, &caller.keys, note).await?;
    tx.commit().await?;
    Ok(view)
}

/// A thread's transcript, as the content of a chart note.
async fn transcript_of(conn: &mut Conn, caller: &Caller, thread: &ThreadRow) -> AppResult<String> {
    let rows = messages::for_thread(conn, &caller.keys, &thread.id).await?;
    let files = files_seen_by(conn, &caller.keys, caller.person.id.as_str(), &thread.id).await?;
    let mut lines = Vec::with_capacity(rows.len());
    for m in &rows {
        let role = m.sender_role.parse().map_err(|_| {
            AppError::internal(anyhow::anyhow!(
                "message {} has a sender of unknown role {:?}",
                m.message.id,
                m.sender_role
            ))
        })?;
        lines.push(TranscriptMessage {
            sender: &m.sender_name,
            role: Some(role),
            at: to_datetime(m.message.created_at),
            text: &m.message.body,
            attachments: names_of(&files, &m.message.id),
        });
    }
    Ok(parse_content(&transcript(&thread.subject, &lines))?)
}

/// Amends a note: a new version; the earlier ones are kept.
#[tracing::instrument(skip_all, fields(note_id = %note_id))]
pub async fn amend(
    state: &AppState,
    caller: &Caller,
    note_id: &ChartNoteId,
    content: &str,
) -> AppResult<ChartNoteView> {
    let note_id = note_id.as_str();
    may_use_chart_notes(caller.role())?;
    let content = parse_content(content)?;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let version = note_store::next_version(&mut tx, caller.practice_id(), note_id, now)
        .await?
        .ok_or_else(|| AppError::not_found("chart note"))?;
    let key = caller.key(&mut tx).await?;
    note_store::insert_version(
        &mut tx,
        &key,
        note_id,
        version,
        &content,
        caller.person.id.as_str(),
        now,
    )
    .await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("amend_chart_note", "chart_note", note_id),
    )
    .await?;
    let note = note_store::find(&mut tx, caller.practice_id(), note_id)
        .await?
        .ok_or_else(|| AppError::not_found("chart note"))?;
    let view = view(&mut tx, &caller.keys, note).await?;
    tx.commit().await?;
    Ok(view)
}

/// A client's chart notes, newest first (providers and admins).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    client_id: &PersonId,
) -> AppResult<Vec<ChartNoteView>> {
    let client_id = client_id.as_str();
    may_use_chart_notes(caller.role())?;
    let mut tx = state.store.begin().await?;
    let client = people_store::find(&mut tx, caller.practice_id(), client_id).await?;
    if client.is_none_or(|c| c.role != Role::Client.as_str()) {
        return Err(AppError::not_found("client"));
    }
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("list_chart_notes", "person", client_id),
    )
    .await?;
    let mut out = Vec::new();
    for note in note_store::for_client(&mut tx, caller.practice_id(), client_id).await? {
        out.push(view(&mut tx, &caller.keys, note).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// One chart note (providers and admins).
pub async fn get(
    state: &AppState,
    caller: &Caller,
    note_id: &ChartNoteId,
) -> AppResult<ChartNoteView> {
    let note_id = note_id.as_str();
    may_use_chart_notes(caller.role())?;
    let mut tx = state.store.begin().await?;
    let note = note_store::find(&mut tx, caller.practice_id(), note_id)
        .await?
        .ok_or_else(|| AppError::not_found("chart note"))?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("read_chart_note", "chart_note", note_id),
    )
    .await?;
    let view = view(&mut tx, &caller.keys, note).await?;
    tx.commit().await?;
    Ok(view)
}

/// The note as an HL7 FHIR R4 DocumentReference.
pub fn as_fhir(note: &ChartNoteView) -> serde_json::Value {
    let current = note.current();
    let first = note.versions.first();
    fhir_document_reference(&NoteForFhir {
        id: &note.id,
        client_id: &note.client_id,
        client_name: &note.client_name,
        author_id: current.map(|v| v.author_id.as_str()).unwrap_or_default(),
        author_name: current.map(|v| v.author_name.as_str()).unwrap_or_default(),
        created_at: to_datetime(first.map(|v| v.created_at).unwrap_or(note.created_at)),
        updated_at: to_datetime(note.updated_at),
        version: current.map(|v| v.version).unwrap_or(1),
        source_thread_id: note.source_thread_id.as_deref(),
        content: current.map(|v| v.content.as_str()).unwrap_or_default(),
    })
}

/// A thread's transcript as CSV, for a participant, with the same privacy as the thread
/// view: a client never sees who the other clients are.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn export_csv(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
) -> AppResult<String> {
    let thread_id = thread_id.as_str();
    let mut tx = state.store.begin().await?;
    let ctx = load_thread(&mut tx, caller, thread_id).await?;
    let rows = messages::for_thread(&mut tx, &caller.keys, &ctx.thread.id).await?;
    let files = files_seen_by(
        &mut tx,
        &caller.keys,
        caller.person.id.as_str(),
        &ctx.thread.id,
    )
    .await?;
    // Read in full before the export is audited: a failure is not recorded as an export.
    let senders = rows
        .iter()
        .map(|m| sender_ref(caller, ctx.kind(), m))
        .collect::<AppResult<Vec<_>>>()?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("export_thread", "thread", &ctx.thread.id),
    )
    .await?;
    tx.commit().await?;
    let lines: Vec<TranscriptMessage> = rows
        .iter()
        .zip(&senders)
        .map(|(m, sender)| TranscriptMessage {
            sender: &sender.name,
            role: sender.role,
            at: to_datetime(m.message.created_at),
            text: &m.message.body,
            attachments: names_of(&files, &m.message.id),
        })
        .collect();
    csv_export(&lines)
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("writing a CSV export")))
}
