//! What the event log records: each kind of change to a mailbox, by its stable name.
//! The services write these, and the search indexer (and later live updates) read them.

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
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_reads_back_as_itself() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::parse("message_snet"), None);
    }
}
