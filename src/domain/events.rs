//! What the event log records: each kind of change to a mailbox, by its stable name, and
//! whom each change concerns. The services write events; the search indexer, `/changes`
//! and the live streams read them.

/// Declares the event kinds with their stored names.
macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// A kind of change in the event log, stored as its stable name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// A stored name read back; `None` for a name this version does not know.
            pub fn parse(name: &str) -> Option<EventKind> {
                match name { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }
    };
}

event_kinds! {
    /// A new thread was composed (its first message follows as `MessageSent`).
    ThreadCreated = "thread_created",
    /// A message was sent: a new thread's first or a reply.
    MessageSent = "message_sent",
    /// A participant read a thread.
    ThreadRead = "thread_read",
    /// A participant moved a thread or marked it read or unread.
    ThreadStateChanged = "thread_state_changed",
    /// A participant emptied a thread from their Trash.
    ThreadRemoved = "thread_removed",
    /// Staff permanently deleted a whole thread.
    ThreadDeleted = "thread_deleted",
    /// Staff permanently deleted one message.
    MessageDeleted = "message_deleted",
    /// A draft was saved.
    DraftSaved = "draft_saved",
    /// A draft was deleted.
    DraftDeleted = "draft_deleted",
    /// A custom folder was created.
    FolderCreated = "folder_created",
    /// A custom folder was renamed.
    FolderRenamed = "folder_renamed",
    /// A custom folder was deleted (its threads went back to the Inbox).
    FolderDeleted = "folder_deleted",
    /// Staff changed a thread for everyone: its announcement, or completed or reopened it.
    ThreadUpdated = "thread_updated",
    /// Someone reacted to a message, or took a reaction back.
    ReactionsChanged = "reactions_changed",
    /// Staff added staff members to a thread (they see its whole history).
    ThreadShared = "thread_shared",
    /// Staff added an internal note to a thread (staff participants only).
    NoteAdded = "note_added",
    /// A person no longer has a thread: they left the group it was addressed to.
    ThreadLeft = "thread_left",
    /// A team thread was assigned, unassigned, done or reopened (staff only).
    TeamUpdated = "team_updated",
}

/// What an event did to one thread, as one person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadChange {
    /// It is new in their mailbox.
    Created,
    /// Something about it that they may see changed.
    Updated,
    /// It is gone from their mailbox.
    Destroyed,
}

impl ThreadChange {
    pub const fn as_str(self) -> &'static str {
        match self {
            ThreadChange::Created => "created",
            ThreadChange::Updated => "updated",
            ThreadChange::Destroyed => "destroyed",
        }
    }

    pub fn parse(name: &str) -> Option<ThreadChange> {
        match name {
            "created" => Some(ThreadChange::Created),
            "updated" => Some(ThreadChange::Updated),
            "destroyed" => Some(ThreadChange::Destroyed),
            _ => None,
        }
    }
}

/// One person's share of an event: what it did to the thread (if any) and whether their
/// folder counts or drafts changed. Never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonChange {
    pub person_id: String,
    pub thread: Option<ThreadChange>,
    pub folders: bool,
    pub drafts: bool,
}

/// A participant of the event's thread, as the audience rule needs them.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub person_id: &'a str,
    pub is_client: bool,
    /// Invisible to clients (another client, an external agent).
    pub hidden_from_clients: bool,
}

/// Whom an event concerns and how: the one rule behind `/changes` and the live streams.
///
/// `participants` are those who have the thread in their mailbox as the event leaves it
/// (for a deleted thread, as they were just before); `newcomers` are those an event gave
/// the thread to (sharing, joining a team, a new message bringing back a thread they had
/// emptied from their Trash). A client hears only of what their own view shows: nothing
/// of internal notes, of read receipts, of team state, of another person's filing, or of
/// people invisible to them joining.
pub fn audience(
    kind: EventKind,
    actor: Option<&str>,
    participants: &[Reader<'_>],
    newcomers: &[&str],
) -> Vec<PersonChange> {
    use EventKind::*;
    let change = |person_id: &str, thread: Option<ThreadChange>, folders: bool| PersonChange {
        person_id: person_id.to_string(),
        thread,
        folders,
        drafts: false,
    };
    let everyone = |thread: ThreadChange, folders: bool| {
        participants
            .iter()
            .map(|p| change(p.person_id, Some(thread), folders))
            .collect::<Vec<_>>()
    };
    let only_actor = |thread: Option<ThreadChange>, folders: bool, drafts: bool| {
        actor
            .map(|a| PersonChange {
                drafts,
                ..change(a, thread, folders)
            })
            .into_iter()
            .collect::<Vec<_>>()
    };
    match kind {
        ThreadCreated => everyone(ThreadChange::Created, true),
        // Unread counts move for the others; the sender's Sent folder for them. A thread
        // someone had emptied from their Trash comes back to them: new again.
        MessageSent => participants
            .iter()
            .map(|p| {
                let back = newcomers.contains(&p.person_id);
                let thread = if back {
                    ThreadChange::Created
                } else {
                    ThreadChange::Updated
                };
                change(p.person_id, Some(thread), true)
            })
            .collect(),
        MessageDeleted | ThreadUpdated | ReactionsChanged => everyone(ThreadChange::Updated, true),
        // A team's done state moves its members' copies between Inbox and Archive.
        TeamUpdated => participants
            .iter()
            .filter(|p| !p.is_client)
            .map(|p| change(p.person_id, Some(ThreadChange::Updated), true))
            .collect(),
        ThreadDeleted => everyone(ThreadChange::Destroyed, true),
        // The reader's own counts; staff see who read (read receipts), clients do not.
        ThreadRead => participants
            .iter()
            .filter(|p| Some(p.person_id) == actor || !p.is_client)
            .map(|p| {
                let own = Some(p.person_id) == actor;
                change(p.person_id, Some(ThreadChange::Updated), own)
            })
            .collect(),
        ThreadStateChanged => only_actor(Some(ThreadChange::Updated), true, false),
        ThreadRemoved | ThreadLeft => only_actor(Some(ThreadChange::Destroyed), true, false),
        DraftSaved | DraftDeleted => only_actor(None, true, true),
        FolderCreated | FolderRenamed | FolderDeleted => only_actor(None, true, false),
        ThreadShared => {
            // Clients see the thread's people change only if someone they may see came.
            let seen_by_clients = participants
                .iter()
                .any(|p| newcomers.contains(&p.person_id) && !p.hidden_from_clients);
            participants
                .iter()
                .filter_map(|p| {
                    if newcomers.contains(&p.person_id) {
                        Some(change(p.person_id, Some(ThreadChange::Created), true))
                    } else if p.is_client && !seen_by_clients {
                        None
                    } else {
                        Some(change(p.person_id, Some(ThreadChange::Updated), false))
                    }
                })
                .collect()
        }
        NoteAdded => participants
            .iter()
            .filter(|p| !p.is_client)
            .map(|p| change(p.person_id, Some(ThreadChange::Updated), false))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{audience, EventKind, PersonChange, Reader, ThreadChange};

    #[test]
    fn every_kind_reads_back_as_itself() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::parse("message_snet"), None);
    }

    const STAFF: Reader<'static> = Reader {
        person_id: "staff",
        is_client: false,
        hidden_from_clients: false,
    };
    const CLIENT: Reader<'static> = Reader {
        person_id: "client",
        is_client: true,
        hidden_from_clients: true,
    };
    const AGENT: Reader<'static> = Reader {
        person_id: "agent",
        is_client: false,
        hidden_from_clients: true,
    };

    fn heard(changes: &[PersonChange]) -> Vec<(&str, Option<ThreadChange>, bool)> {
        changes
            .iter()
            .map(|c| (c.person_id.as_str(), c.thread, c.folders))
            .collect()
    }

    #[test]
    fn a_message_reaches_every_participant_and_their_counts() {
        let all = audience(EventKind::MessageSent, Some("staff"), &[STAFF, CLIENT], &[]);
        assert_eq!(
            heard(&all),
            [
                ("staff", Some(ThreadChange::Updated), true),
                ("client", Some(ThreadChange::Updated), true)
            ]
        );
    }

    #[test]
    fn clients_hear_nothing_of_notes_or_of_staff_reading() {
        let notes = audience(EventKind::NoteAdded, Some("staff"), &[STAFF, CLIENT], &[]);
        assert_eq!(
            heard(&notes),
            [("staff", Some(ThreadChange::Updated), false)]
        );
        let read = audience(EventKind::ThreadRead, Some("staff"), &[STAFF, CLIENT], &[]);
        assert_eq!(heard(&read), [("staff", Some(ThreadChange::Updated), true)]);
        // A client reading: staff learn it (read receipts), the client's counts move.
        let read = audience(EventKind::ThreadRead, Some("client"), &[STAFF, CLIENT], &[]);
        assert_eq!(
            heard(&read),
            [
                ("staff", Some(ThreadChange::Updated), false),
                ("client", Some(ThreadChange::Updated), true)
            ]
        );
    }

    #[test]
    fn filing_and_emptying_concern_only_the_person_who_did_it() {
        for kind in [EventKind::ThreadStateChanged, EventKind::ThreadRemoved] {
            let all = audience(kind, Some("client"), &[STAFF, CLIENT], &[]);
            assert_eq!(all.len(), 1);
            assert_eq!(all[0].person_id, "client");
        }
        let drafts = audience(EventKind::DraftSaved, Some("staff"), &[], &[]);
        assert!(drafts[0].drafts && drafts[0].thread.is_none());
    }

    #[test]
    fn sharing_creates_the_thread_for_newcomers_only() {
        let all = audience(
            EventKind::ThreadShared,
            Some("staff"),
            &[STAFF, CLIENT],
            &["client"],
        );
        assert_eq!(
            heard(&all),
            [
                ("staff", Some(ThreadChange::Updated), false),
                ("client", Some(ThreadChange::Created), true)
            ]
        );
    }

    #[test]
    fn clients_hear_nothing_of_team_state_or_of_an_agent_joining() {
        let team = audience(EventKind::TeamUpdated, Some("staff"), &[STAFF, CLIENT], &[]);
        assert_eq!(heard(&team), [("staff", Some(ThreadChange::Updated), true)]);
        let shared = audience(
            EventKind::ThreadShared,
            Some("staff"),
            &[STAFF, CLIENT, AGENT],
            &["agent"],
        );
        assert_eq!(
            heard(&shared),
            [
                ("staff", Some(ThreadChange::Updated), false),
                ("agent", Some(ThreadChange::Created), true)
            ]
        );
    }

    #[test]
    fn a_message_brings_an_emptied_thread_back_as_new() {
        let all = audience(
            EventKind::MessageSent,
            Some("staff"),
            &[STAFF, CLIENT],
            &["client"],
        );
        assert_eq!(
            heard(&all),
            [
                ("staff", Some(ThreadChange::Updated), true),
                ("client", Some(ThreadChange::Created), true)
            ]
        );
    }

    #[test]
    fn a_deleted_thread_is_destroyed_for_everyone_who_had_it() {
        let all = audience(
            EventKind::ThreadDeleted,
            Some("staff"),
            &[STAFF, CLIENT],
            &[],
        );
        assert!(all
            .iter()
            .all(|c| c.thread == Some(ThreadChange::Destroyed)));
        assert_eq!(all.len(), 2);
    }
}
