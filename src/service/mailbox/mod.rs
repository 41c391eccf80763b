//! The mailbox use-cases: composing, replying, reading, folders, drafts and deletion.
//! Every view passes through [`visible_participants`], so that a client never learns who
//! the other clients of a thread are, nor anyone's email address.

pub mod compose;
pub mod delete;
pub mod drafts;
pub mod folders;
pub mod read;
pub mod state;

use crate::domain::mailbox::{hides_other_clients, reply_policy, Group, ReplyPolicy};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::events::{self, NewEvent};
use crate::store::messages::MessageWithSender;
use crate::store::threads::{self, ParticipantRow, ThreadRow};
use crate::store::Conn;

use super::{AppState, Caller};

/// A person as shown inside a thread: never an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRef {
    pub id: String,
    pub name: String,
    /// `None` for a participant the viewer may not know.
    pub role: Option<Role>,
}

/// A thread the caller takes part in, with everyone in it.
pub struct ThreadCtx {
    pub thread: ThreadRow,
    pub participants: Vec<ParticipantRow>,
    /// The caller's own row among `participants`.
    me: usize,
}

impl ThreadCtx {
    pub fn me(&self) -> &ParticipantRow {
        &self.participants[self.me]
    }

    pub fn roles(&self) -> Vec<Role> {
        self.participants.iter().map(role_of).collect()
    }

    pub fn reply_policy(&self) -> ReplyPolicy {
        // The thread's make-up is fixed when it is composed.
        if self.thread.client_count >= 2 {
            ReplyPolicy::MultipleClients
        } else {
            reply_policy(&self.roles())
        }
    }
}

/// The groups a thread was addressed to, as the viewer may see them: clients do not
/// learn that external agents were addressed.
pub fn groups_of(viewer: &Caller, thread: &ThreadRow) -> Vec<String> {
    thread
        .groups
        .split_whitespace()
        .filter_map(Group::parse)
        .filter(|g| !hides(viewer.role(), g.role()))
        .map(|g| format!("group:{}", g.as_str()))
        .collect()
}

pub fn role_of(p: &ParticipantRow) -> Role {
    p.role.parse().unwrap_or(Role::Client)
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
    let thread = threads::find(conn, caller.practice_id(), thread_id)
        .await?
        .ok_or_else(not_found)?;
    let participants = threads::participants(conn, &thread.id).await?;
    let me = participants
        .iter()
        .position(|p| p.person_id == caller.person.id.as_str() && p.folder != "removed")
        .ok_or_else(not_found)?;
    Ok(ThreadCtx {
        thread,
        participants,
        me,
    })
}

/// Whom the viewer may see among a thread's participants, and how many other clients
/// there are. A client sees the practice's staff and themself: other clients are only
/// "N other recipients", and external agents are invisible to clients altogether.
pub fn visible_participants(
    viewer: &Caller,
    participants: &[ParticipantRow],
) -> (Vec<PersonRef>, i64) {
    let mut shown = Vec::new();
    let mut other_clients = 0;
    for p in participants {
        let role = role_of(p);
        let is_self = p.person_id == viewer.person.id.as_str();
        if !is_self && hides(viewer.role(), role) {
            other_clients += i64::from(role == Role::Client);
        } else {
            shown.push(PersonRef {
                id: p.person_id.clone(),
                name: p.name.clone(),
                role: Some(role),
            });
        }
    }
    (shown, other_clients)
}

/// Whether `viewer` must not learn who a participant of role `role` is.
fn hides(viewer: Role, role: Role) -> bool {
    hides_other_clients(viewer) && (role == Role::Client || role == Role::ExternalAgent)
}

/// The sender of a message as the viewer may see them.
pub fn sender_ref(viewer: &Caller, m: &MessageWithSender) -> PersonRef {
    sender_ref_of(viewer, &m.message.sender_id, &m.sender_name, &m.sender_role)
}

/// [`sender_ref`] from the sender's id, name and role.
pub fn sender_ref_of(viewer: &Caller, sender_id: &str, name: &str, role: &str) -> PersonRef {
    let role: Role = role.parse().unwrap_or(Role::Client);
    if sender_id != viewer.person.id.as_str() && hides(viewer.role(), role) {
        return PersonRef {
            id: String::new(),
            name: "Another recipient".into(),
            role: None,
        };
    }
    PersonRef {
        id: sender_id.to_string(),
        name: name.to_string(),
        role: Some(role),
    }
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

pub(crate) async fn append_event(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    kind: &str,
    thread_id: Option<&str>,
    message_id: Option<&str>,
) -> AppResult<()> {
    events::append(
        conn,
        &NewEvent {
            practice_id: caller.practice_id(),
            kind,
            thread_id,
            message_id,
            actor_id: Some(caller.person.id.as_str()),
            at: state.now(),
        },
    )
    .await?;
    Ok(())
}
