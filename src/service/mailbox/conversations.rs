//! What staff and participants do to a thread beyond writing in it: the announcement,
//! completing and reopening, reactions, internal notes, and the practice's settings.
//! Every rule is in `domain::conversations`; this module loads, checks and writes.

use crate::domain::conversations::ThreadKind;
use crate::domain::conversations::{
    self as rules, check_may_react, check_not_completed, check_staff_action, parse_announcement,
    parse_note, parse_reaction, PracticeSettings,
};
use crate::domain::events::EventKind;
use crate::domain::ids::{MessageId, NoteId, ThreadId};
use crate::domain::mailbox::Placement;
use crate::domain::{markdown, Code, Role};
use crate::error::{AppError, AppResult};
use crate::store::attachments::{self as attachment_store, AttachmentRow};
use crate::store::conversations::{self as store, NoteRow, SettingsRow};
use crate::store::keys::Keyring;
use crate::store::people as people_store;
use crate::store::threads::{self, NewParticipant};
use crate::store::{messages, Conn};

use super::super::audit::{record, AuditEntry};
use super::super::{notifications, AppState, Caller};
use super::{
    load_thread, load_thread_for_write, record_event, sender_ref_in, thread_event, PersonRef,
    ThreadCtx,
};

/// A practice's settings, or the defaults if its admins never changed them.
pub async fn practice_settings(conn: &mut Conn, practice_id: &str) -> AppResult<PracticeSettings> {
    Ok(match store::settings(conn, practice_id).await? {
        Some(row) => PracticeSettings {
            client_message_max_chars: row.client_message_max_chars,
            new_clients_can_start_threads: row.new_clients_can_start_threads != 0,
            conversation_max_participants: row.conversation_max_participants,
            retention_years: row.retention_years,
        },
        None => PracticeSettings::default(),
    })
}

fn admins_only(caller: &Caller) -> AppResult<()> {
    if caller.role() != Role::Admin {
        return Err(AppError::forbidden(
            "Only administrators change the practice's settings.",
        ));
    }
    Ok(())
}

/// The caller's practice's settings (admins).
pub async fn settings(state: &AppState, caller: &Caller) -> AppResult<PracticeSettings> {
    admins_only(caller)?;
    let mut conn = state.store.read().await?;
    practice_settings(&mut conn, caller.practice_id()).await
}

/// A change to the practice's settings; `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct SettingsChange {
    /// `Some(None)` removes the practice's own limit.
    pub client_message_max_chars: Option<Option<i64>>,
    pub new_clients_can_start_threads: Option<bool>,
    pub conversation_max_participants: Option<i64>,
    /// `Some(None)`: keep threads forever.
    pub retention_years: Option<Option<i64>>,
}

/// Changes the caller's practice's settings (admins); audited.
pub async fn update_settings(
    state: &AppState,
    caller: &Caller,
    change: SettingsChange,
) -> AppResult<PracticeSettings> {
    admins_only(caller)?;
    let mut tx = state.store.begin().await?;
    let mut s = practice_settings(&mut tx, caller.practice_id()).await?;
    if let Some(limit) = change.client_message_max_chars {
        s.client_message_max_chars = limit;
    }
    if let Some(open) = change.new_clients_can_start_threads {
        s.new_clients_can_start_threads = open;
    }
    if let Some(max) = change.conversation_max_participants {
        s.conversation_max_participants = max;
    }
    if let Some(years) = change.retention_years {
        s.retention_years = years;
    }
    s.check(state.config.limits.body_max_chars)?;
    let row = SettingsRow {
        client_message_max_chars: s.client_message_max_chars,
        new_clients_can_start_threads: i64::from(s.new_clients_can_start_threads),
        conversation_max_participants: s.conversation_max_participants,
        retention_years: s.retention_years,
    };
    store::save_settings(&mut tx, caller.practice_id(), &row, state.now()).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("update_settings", "practice", caller.practice_id()),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Loads a thread for a staff action: participants only (404 otherwise), staff only.
async fn staff_thread(tx: &mut Conn, caller: &Caller, thread_id: &str) -> AppResult<ThreadCtx> {
    let ctx = load_thread_for_write(tx, caller, thread_id).await?;
    check_staff_action(caller.role())?;
    Ok(ctx)
}

/// Sets (`Some`) or clears (`None`) a thread's announcement (staff participants).
pub async fn set_announcement(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    text: Option<&str>,
) -> AppResult<Option<String>> {
    let text = text.map(parse_announcement).transpose()?;
    let mut tx = state.store.begin().await?;
    let ctx = staff_thread(&mut tx, caller, thread_id.as_str()).await?;
    let key = caller.key(&mut tx).await?;
    store::set_announcement(&mut tx, &key, &ctx.thread.id, text.as_deref()).await?;
    thread_event(
        &mut tx,
        state,
        caller,
        EventKind::ThreadUpdated,
        &ctx.thread.id,
    )
    .await?;
    let action = match text {
        Some(_) => "set_announcement",
        None => "clear_announcement",
    };
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(action, "thread", &ctx.thread.id),
    )
    .await?;
    tx.commit().await?;
    Ok(text)
}

/// Completes a thread (staff participants): nobody posts, reacts or adds notes, and it
/// moves to every participant's Archive. Completing a completed thread changes nothing.
pub async fn complete(state: &AppState, caller: &Caller, thread_id: &ThreadId) -> AppResult<()> {
    set_completed(state, caller, thread_id, true).await
}

/// Reopens a completed thread (staff participants). It stays where each person filed it.
pub async fn reopen(state: &AppState, caller: &Caller, thread_id: &ThreadId) -> AppResult<()> {
    set_completed(state, caller, thread_id, false).await
}

async fn set_completed(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    completed: bool,
) -> AppResult<()> {
    let mut tx = state.store.begin().await?;
    let ctx = staff_thread(&mut tx, caller, thread_id.as_str()).await?;
    if ctx.thread.completed_at.is_some() == completed {
        return Ok(());
    }
    let me = caller.person.id.as_str();
    store::set_completed(
        &mut tx,
        &ctx.thread.id,
        completed.then(|| (state.now(), me)),
    )
    .await?;
    if completed {
        store::archive_for_everyone(&mut tx, &ctx.thread.id).await?;
    }
    thread_event(
        &mut tx,
        state,
        caller,
        EventKind::ThreadUpdated,
        &ctx.thread.id,
    )
    .await?;
    let action = if completed {
        "complete_thread"
    } else {
        "reopen_thread"
    };
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(action, "thread", &ctx.thread.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Loads the thread of a message the caller can see; 404 `message` otherwise.
async fn message_thread(
    conn: &mut Conn,
    caller: &Caller,
    message_id: &str,
) -> AppResult<(ThreadCtx, String)> {
    let message = messages::find(conn, &caller.keys, caller.practice_id(), message_id)
        .await?
        .ok_or_else(|| AppError::not_found("message"))?;
    let ctx = load_thread_for_write(conn, caller, &message.thread_id)
        .await
        .map_err(|e| match e.code {
            Code::NotFound => AppError::not_found("message"),
            _ => e,
        })?;
    Ok((ctx, message.id))
}

/// Gives (`add`) or takes back a reaction to a message. Giving one twice, or taking back
/// one not given, changes nothing.
pub async fn react(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
    emoji: &str,
    add: bool,
) -> AppResult<()> {
    let emoji = parse_reaction(emoji)?;
    let mut tx = state.store.begin().await?;
    let (ctx, message_id) = message_thread(&mut tx, caller, message_id.as_str()).await?;
    check_may_react(
        caller.role(),
        ctx.kind(),
        ctx.thread.client_count,
        ctx.timing(state.now()),
    )?;
    let me = caller.person.id.as_str();
    let changed = if add {
        store::add_reaction(&mut tx, &ctx.thread.id, &message_id, me, emoji, state.now()).await?
    } else {
        store::remove_reaction(&mut tx, &message_id, me, emoji).await?
    };
    if changed {
        super::append_event(
            &mut tx,
            state,
            caller,
            EventKind::ReactionsChanged,
            Some(&ctx.thread.id),
            Some(&message_id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// An internal note as staff see it.
#[derive(Debug, Clone)]
pub struct NoteView {
    pub id: String,
    pub author: PersonRef,
    pub body: String,
    pub body_html: String,
    pub created_at: i64,
}

fn note_view(caller: &Caller, ctx: &ThreadCtx, n: NoteRow) -> AppResult<NoteView> {
    Ok(NoteView {
        author: sender_ref_in(
            caller,
            ctx.kind(),
            &n.author_id,
            &n.author_name,
            &n.author_role,
        )?,
        id: n.id,
        body: n.body,
        body_html: n.body_html,
        created_at: n.created_at,
    })
}

/// A thread's internal notes (staff participants; a client gets 404, as for anything
/// they may not know exists).
pub async fn notes(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
) -> AppResult<Vec<NoteView>> {
    if !caller.role().is_staff() {
        return Err(AppError::not_found("thread"));
    }
    let mut conn = state.store.read().await?;
    let ctx = load_thread(&mut conn, caller, thread_id.as_str()).await?;
    notes_of(&mut conn, caller, &ctx).await
}

/// The notes of a loaded thread, for a staff caller; nothing for a client.
pub(crate) async fn notes_of(
    conn: &mut Conn,
    caller: &Caller,
    ctx: &ThreadCtx,
) -> AppResult<Vec<NoteView>> {
    if !caller.role().is_staff() {
        return Ok(Vec::new());
    }
    store::notes(conn, &caller.keys, &ctx.thread.id)
        .await?
        .into_iter()
        .map(|n| note_view(caller, ctx, n))
        .collect()
}

/// Adds an internal note (staff participants). It notifies nobody and no client ever sees
/// it; the audit log records that a note was added, never what it says.
pub async fn add_note(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    body: &str,
) -> AppResult<NoteView> {
    if !caller.role().is_staff() {
        return Err(AppError::not_found("thread"));
    }
    let body = parse_note(body)?;
    let html = markdown::render(&body);
    let mut tx = state.store.begin().await?;
    let ctx = staff_thread(&mut tx, caller, thread_id.as_str()).await?;
    check_not_completed(ctx.timing(state.now()))?;
    let id = NoteId::generate().into_string();
    let now = state.now();
    let key = caller.key(&mut tx).await?;
    store::insert_note(
        &mut tx,
        &key,
        &store::NewNote {
            id: &id,
            thread_id: &ctx.thread.id,
            practice_id: caller.practice_id(),
            author_id: caller.person.id.as_str(),
            body: &body,
            body_html: &html,
            created_at: now,
        },
    )
    .await?;
    // Staff participants' streams hear that the thread changed; clients hear nothing.
    thread_event(&mut tx, state, caller, EventKind::NoteAdded, &ctx.thread.id).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("add_note", "note", &id),
    )
    .await?;
    tx.commit().await?;
    Ok(NoteView {
        id,
        author: PersonRef {
            id: caller.person.id.to_string(),
            name: caller.person.name.clone(),
            role: Some(caller.role()),
            email: None,
        },
        body,
        body_html: html,
        created_at: now,
    })
}

/// Whether a client may start threads (`false` makes them reply-only), set by staff.
pub async fn set_may_start_threads(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    person_id: &str,
    may: bool,
) -> AppResult<()> {
    store::set_reply_only(conn, practice_id, person_id, !may, state.now()).await?;
    Ok(())
}

/// Whether a newly created person of `role` starts reply-only in this practice.
pub async fn starts_reply_only(conn: &mut Conn, practice_id: &str, role: Role) -> AppResult<bool> {
    if role != Role::Client {
        return Ok(false);
    }
    Ok(!practice_settings(conn, practice_id)
        .await?
        .new_clients_can_start_threads)
}

/// The attachments of a thread that `viewer` may see: a file its sender limited to some
/// participants does not exist for anyone else.
pub async fn files_seen_by(
    conn: &mut Conn,
    keys: &Keyring,
    viewer: &str,
    thread_id: &str,
) -> AppResult<Vec<AttachmentRow>> {
    let files = attachment_store::for_thread(conn, keys, thread_id).await?;
    let audience = store::audiences(conn, thread_id).await?;
    Ok(visible_files(viewer, files, &audience))
}

/// `files` without those limited to people other than `viewer`.
pub fn visible_files(
    viewer: &str,
    files: Vec<AttachmentRow>,
    audience: &[(String, String)],
) -> Vec<AttachmentRow> {
    files
        .into_iter()
        .filter(|f| {
            let people: Vec<&str> = audience
                .iter()
                .filter(|(a, _)| *a == f.id)
                .map(|(_, p)| p.as_str())
                .collect();
            rules::may_see_file(viewer, &f.uploader_id, &people)
        })
        .collect()
}

/// Whether `viewer` may see one attachment of a thread.
pub async fn may_see_attachment(
    conn: &mut Conn,
    viewer: &str,
    file: &AttachmentRow,
) -> AppResult<bool> {
    let audience = store::audience_of(conn, &file.id).await?;
    let people: Vec<&str> = audience.iter().map(String::as_str).collect();
    Ok(rules::may_see_file(viewer, &file.uploader_id, &people))
}

/// Shares a thread with staff members (staff participants): each sees its whole history
/// from their Inbox. No client is ever added to an existing thread (`recipient_not_allowed`):
/// the history would reach them. Returns the people added (those already in it are left).
pub async fn share(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    people: &[String],
) -> AppResult<Vec<String>> {
    let wanted = rules::parse_people(people)?;
    let mut tx = state.store.begin().await?;
    let ctx = staff_thread(&mut tx, caller, thread_id.as_str()).await?;
    let mut added = Vec::new();
    let mut returning = Vec::new();
    for id in &wanted {
        let row = people_store::find_for_write(&mut tx, caller.practice_id(), id).await?;
        let person = match row {
            Some(row) => crate::service::person(row)?,
            None => return Err(not_active(id)),
        };
        rules::check_share_with(person.role, person.status).map_err(|v| match v.code {
            Code::RecipientNotActivated => not_active(id),
            _ => v.into(),
        })?;
        match ctx.participants.iter().find(|p| p.person_id.as_str() == id) {
            Some(p) if p.placement.is_in_mailbox() => {}
            Some(_) => returning.push(id.clone()),
            None => added.push(id.clone()),
        }
    }
    if ctx.kind() == ThreadKind::Conversation {
        let max = practice_settings(&mut tx, caller.practice_id())
            .await?
            .conversation_max_participants;
        rules::check_participant_count(ctx.participants.len() + added.len(), max)
            .map_err(|v| AppError::from(v).with_field("people"))?;
    }
    added.sort();
    for id in &added {
        let row = NewParticipant {
            person_id: id,
            via_group: None,
            direct: true,
            folder: Placement::Inbox.as_stored(),
            unread: true,
            has_sent: false,
        };
        threads::insert_participant(&mut tx, &ctx.thread, &row).await?;
    }
    for id in &returning {
        threads::set_state(&mut tx, &ctx.thread.id, id, Some("inbox"), Some(true)).await?;
        threads::mark_direct(&mut tx, &ctx.thread.id, id).await?;
    }
    added.extend(returning);
    if added.is_empty() {
        return Ok(added);
    }
    if let Some(latest) = messages::latest(&mut tx, &caller.keys, &ctx.thread.id).await? {
        notifications::new_message(
            &mut tx,
            state,
            caller.practice_id(),
            &ctx.thread.id,
            &latest.id,
            &added,
        )
        .await?;
    }
    let newcomers: Vec<&str> = added.iter().map(String::as_str).collect();
    record_event(
        &mut tx,
        state,
        caller,
        EventKind::ThreadShared,
        Some(&ctx.thread.id),
        None,
        &newcomers,
    )
    .await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("share_thread", "thread", &ctx.thread.id),
    )
    .await?;
    for id in &added {
        record(
            &mut tx,
            state,
            caller,
            AuditEntry::new("added_to_thread", "person", id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(added)
}

fn not_active(id: &str) -> AppError {
    AppError::field(
        Code::RecipientNotActivated,
        "people",
        format!(
            "people: user:{id} is not an active staff member of this practice; nobody was added."
        ),
    )
}

/// Pins (`on`) or unpins a thread for the caller (any participant): pinned threads list
/// first in every list of theirs.
pub async fn pin_thread(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    on: bool,
) -> AppResult<()> {
    let mut tx = state.store.begin().await?;
    let ctx = load_thread(&mut tx, caller, thread_id.as_str()).await?;
    let me = caller.person.id.as_str();
    let pins = threads::pinned_ids(&mut tx, me).await?;
    if on == pins.contains(&ctx.thread.id) {
        return Ok(());
    }
    if on {
        rules::check_pin(pins.len() as i64)?;
    }
    threads::set_pin(&mut tx, me, &ctx.thread.id, on.then(|| state.now())).await?;
    thread_event(
        &mut tx,
        state,
        caller,
        EventKind::ThreadStateChanged,
        &ctx.thread.id,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Pins (`on`) or unpins a message at the top of its thread, for everyone in it (staff
/// participants).
pub async fn pin_message(
    state: &AppState,
    caller: &Caller,
    message_id: &MessageId,
    on: bool,
) -> AppResult<()> {
    let mut tx = state.store.begin().await?;
    let (ctx, message_id) = message_thread(&mut tx, caller, message_id.as_str()).await?;
    check_staff_action(caller.role())?;
    let me = caller.person.id.as_str();
    messages::set_pinned(&mut tx, &message_id, on.then(|| (state.now(), me))).await?;
    super::append_event(
        &mut tx,
        state,
        caller,
        EventKind::ThreadUpdated,
        Some(&ctx.thread.id),
        Some(&message_id),
    )
    .await?;
    let action = if on { "pin_message" } else { "unpin_message" };
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(action, "message", &message_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
