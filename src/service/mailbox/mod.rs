//! The mailbox use-cases: composing, replying, reading, folders, drafts and deletion.
//! Every view passes through [`visible_participants`], so that a client never learns who
//! the other clients of a thread are, nor anyone's email address.

pub mod compose;
pub mod conversations;
pub mod delete;
pub mod drafts;
pub mod filing;
pub mod folders;
pub mod idempotency;
pub mod read;
pub mod recipients;
pub mod scheduled;
pub mod teams;

use anyhow::anyhow;

use crate::domain::conversations::{self as rules, ThreadKind, Timing};
use crate::domain::events::EventKind;
use crate::domain::mailbox::{hidden_from, reply_policy, Group, Placement, ReplyPolicy};
use crate::domain::{PersonId, Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::events::NewEvent;
use crate::store::messages::MessageWithSender;
use crate::store::threads::{self, ParticipantRow, ThreadRow};
use crate::store::Conn;

use super::{AppState, Caller};

/// A person as shown inside a thread: an email address only to a conversation's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRef {
    pub id: String,
    pub name: String,
    /// `None` for a participant the viewer may not know.
    pub role: Option<Role>,
    /// Only for the host of a conversation.
    pub email: Option<String>,
}

/// One participant of a thread, read back and checked: an unknown stored role, status,
/// group or placement is an error, never a default.
#[derive(Debug, Clone)]
pub struct Participant {
    pub person_id: PersonId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub status: Status,
    pub via_group: Option<Group>,
    pub placement: Placement,
    pub unread: bool,
    pub has_sent: bool,
}

impl TryFrom<ParticipantRow> for Participant {
    type Error = AppError;

    fn try_from(row: ParticipantRow) -> AppResult<Participant> {
        let bad = |what: &str, value: &str| {
            AppError::internal(anyhow!(
                "participant {} of thread {} has unknown {what} {value:?}",
                row.person_id,
                row.thread_id
            ))
        };
        Ok(Participant {
            role: row.role.parse().map_err(|_| bad("role", &row.role))?,
            status: row.status.parse().map_err(|_| bad("status", &row.status))?,
            via_group: match &row.via_group {
                Some(g) => Some(Group::parse(g).ok_or_else(|| bad("group", g))?),
                None => None,
            },
            placement: Placement::from_stored(&row.folder)
                .map_err(|_| bad("folder", &row.folder))?,
            unread: row.unread != 0,
            has_sent: row.has_sent != 0,
            name: row.name,
            email: row.email,
            person_id: PersonId::from_trusted(row.person_id),
        })
    }
}

/// Reads participant rows back as [`Participant`]s.
pub fn participants_from(rows: Vec<ParticipantRow>) -> AppResult<Vec<Participant>> {
    rows.into_iter().map(Participant::try_from).collect()
}

/// A thread the caller takes part in, with everyone in it.
pub struct ThreadCtx {
    pub thread: ThreadRow,
    pub participants: Vec<Participant>,
    /// The caller's own row among `participants`.
    me: usize,
}

impl ThreadCtx {
    pub fn me(&self) -> &Participant {
        &self.participants[self.me]
    }

    pub fn roles(&self) -> Vec<Role> {
        self.participants.iter().map(|p| p.role).collect()
    }

    /// The roles of the other activated participants: whom a reply reaches.
    pub fn roles_a_reply_reaches(&self, caller: &Caller) -> Vec<Role> {
        self.participants
            .iter()
            .filter(|p| p.person_id != caller.person.id && p.status.is_activated())
            .map(|p| p.role)
            .collect()
    }

    pub fn kind(&self) -> ThreadKind {
        kind_of(&self.thread)
    }

    /// Whether the thread has started and whether it is completed, as of `now`.
    pub fn timing(&self, now: i64) -> Timing {
        Timing {
            starts_at: self.thread.starts_at,
            completed_at: self.thread.completed_at,
            now,
        }
    }

    pub fn reply_policy(&self) -> ReplyPolicy {
        // Everyone in a conversation may reply, whatever the number of clients.
        if self.kind() == ThreadKind::Conversation {
            return ReplyPolicy::Allowed;
        }
        // The thread's make-up is fixed when it is composed.
        if self.thread.client_count >= 2 {
            ReplyPolicy::MultipleClients
        } else {
            reply_policy(&self.roles())
        }
    }
}

/// A thread's kind as stored; anything unknown is read as a message thread, whose rules
/// hide the most.
pub fn kind_of(thread: &ThreadRow) -> ThreadKind {
    ThreadKind::parse(&thread.kind).unwrap_or_default()
}

/// The groups a thread was addressed to, as the viewer may see them: clients do not
/// learn that external agents were addressed.
pub fn groups_of(viewer: &Caller, thread: &ThreadRow) -> Vec<String> {
    thread
        .groups
        .split_whitespace()
        .filter_map(Group::parse)
        .filter(|g| !hidden_from(viewer.role(), g.role()))
        .map(|g| format!("group:{}", g.as_str()))
        .collect()
}

fn not_found() -> AppError {
    AppError::not_found("thread")
}

/// Loads a thread of the caller's practice that the caller takes part in and has not
/// removed from their mailbox; anything else is 404, whether or not it exists.
pub async fn load_thread(
    conn: &mut Conn,
    caller: &Caller,
    thread_id: &str,
) -> AppResult<ThreadCtx> {
    load(conn, caller, thread_id, false).await
}

/// [`load_thread`] inside a write that depends on the participants: their people rows
/// stay as read until the transaction ends.
pub async fn load_thread_for_write(
    conn: &mut Conn,
    caller: &Caller,
    thread_id: &str,
) -> AppResult<ThreadCtx> {
    load(conn, caller, thread_id, true).await
}

async fn load(
    conn: &mut Conn,
    caller: &Caller,
    thread_id: &str,
    for_write: bool,
) -> AppResult<ThreadCtx> {
    let thread = threads::find(conn, &caller.keys, caller.practice_id(), thread_id)
        .await?
        .ok_or_else(not_found)?;
    let rows = threads::participants(conn, &thread.id, for_write).await?;
    thread_ctx(caller, thread, rows)
}

fn thread_ctx(
    caller: &Caller,
    thread: ThreadRow,
    rows: Vec<ParticipantRow>,
) -> AppResult<ThreadCtx> {
    let participants = participants_from(rows)?;
    let me = participants
        .iter()
        .position(|p| p.person_id == caller.person.id && p.placement.is_in_mailbox())
        .ok_or_else(not_found)?;
    Ok(ThreadCtx {
        thread,
        participants,
        me,
    })
}

/// Whom the viewer may see among a thread's participants, and how many other clients
/// there are. In a message thread a client sees the practice's staff and themself: other
/// clients are only "N other recipients"; in a conversation clients see each other's
/// names. External agents are invisible to clients in both. Only a conversation's host
/// sees email addresses.
pub fn visible_participants(
    viewer: &Caller,
    thread: &ThreadRow,
    participants: &[Participant],
) -> (Vec<PersonRef>, i64) {
    let kind = kind_of(thread);
    let emails = rules::sees_emails(kind, thread.started_by == viewer.person.id.as_str());
    let mut shown = Vec::new();
    let mut other_clients = 0;
    for p in participants {
        let is_self = p.person_id == viewer.person.id;
        if !is_self && rules::hidden_from(kind, viewer.role(), p.role) {
            other_clients += i64::from(p.role == Role::Client);
        } else {
            shown.push(PersonRef {
                id: p.person_id.to_string(),
                name: p.name.clone(),
                role: Some(p.role),
                email: emails.then(|| p.email.clone()),
            });
        }
    }
    (shown, other_clients)
}

/// The sender of a message of a thread of `kind` as the viewer may see them.
pub fn sender_ref(
    viewer: &Caller,
    kind: ThreadKind,
    m: &MessageWithSender,
) -> AppResult<PersonRef> {
    sender_ref_in(
        viewer,
        kind,
        &m.message.sender_id,
        &m.sender_name,
        &m.sender_role,
    )
}

/// [`sender_ref`] from the sender's id, name and stored role (an unknown one is an error),
/// by the rules of a message thread, which hide the most.
pub fn sender_ref_of(
    viewer: &Caller,
    sender_id: &str,
    name: &str,
    role: &str,
) -> AppResult<PersonRef> {
    sender_ref_in(viewer, ThreadKind::Message, sender_id, name, role)
}

/// A person named in a thread of `kind` (a sender, a note's author) as the viewer may see
/// them.
pub fn sender_ref_in(
    viewer: &Caller,
    kind: ThreadKind,
    sender_id: &str,
    name: &str,
    role: &str,
) -> AppResult<PersonRef> {
    let role: Role = role
        .parse()
        .map_err(|_| AppError::internal(anyhow!("sender {sender_id} has unknown role {role:?}")))?;
    if sender_id != viewer.person.id.as_str() && rules::hidden_from(kind, viewer.role(), role) {
        return Ok(PersonRef {
            id: String::new(),
            name: "Another recipient".into(),
            role: None,
            email: None,
        });
    }
    Ok(PersonRef {
        id: sender_id.to_string(),
        name: name.to_string(),
        role: Some(role),
        email: None,
    })
}

/// Shortened plain text of a body, for lists.
pub fn preview(markdown: &str) -> String {
    let text = crate::domain::markdown::plain_text(markdown);
    let mut out: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// Appends an event about one thread (no message) to the event log.
pub(crate) async fn thread_event(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    kind: EventKind,
    thread_id: &str,
) -> AppResult<()> {
    append_event(conn, state, caller, kind, Some(thread_id), None).await
}

pub(crate) async fn append_event(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    kind: EventKind,
    thread_id: Option<&str>,
    message_id: Option<&str>,
) -> AppResult<()> {
    record_event(conn, state, caller, kind, thread_id, message_id, &[]).await
}

/// Appends an event with those it gave the thread to (sharing): for them the thread is
/// new.
pub(crate) async fn record_event(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    kind: EventKind,
    thread_id: Option<&str>,
    message_id: Option<&str>,
    newcomers: &[&str],
) -> AppResult<()> {
    let event = NewEvent {
        practice_id: caller.practice_id(),
        kind,
        thread_id,
        message_id,
        actor_id: Some(caller.person.id.as_str()),
        at: state.now(),
    };
    crate::service::changes::record(conn, state, &event, newcomers).await?;
    Ok(())
}

/// Appends events about one message of a thread, in order, each with those it gave the
/// thread to: one read of the thread's readers and one write of their changes for all.
pub(crate) async fn record_events(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    message_id: &str,
    events: &[(EventKind, &[&str])],
) -> AppResult<()> {
    let at = state.now();
    let events: Vec<(NewEvent, &[&str])> = events
        .iter()
        .map(|(kind, newcomers)| {
            let event = NewEvent {
                practice_id: caller.practice_id(),
                kind: *kind,
                thread_id: Some(thread_id),
                message_id: Some(message_id),
                actor_id: Some(caller.person.id.as_str()),
                at,
            };
            (event, *newcomers)
        })
        .collect();
    crate::service::changes::record_all(conn, state, &events).await?;
    Ok(())
}
