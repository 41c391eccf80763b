//! Opaque, non-sequential identifiers: 128 random bits in lowercase base32.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(random_id())
            }

            /// Wraps a value read back from the database or a path; anything is accepted
            /// because an unknown id simply finds nothing.
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }

            /// Whether `value` has the shape of a generated id.
            pub fn is_well_formed(value: &str) -> bool {
                is_well_formed(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A practice.
    PracticeId
);
id_type!(
    /// A person (staff or client).
    PersonId
);
id_type!(
    /// A sign-in session (never the token itself).
    SessionId
);
id_type!(
    /// A thread (a conversation).
    ThreadId
);
id_type!(
    /// A message of a thread.
    MessageId
);
id_type!(
    /// A legal hold on a client's or a thread's data.
    LegalHoldId
);
id_type!(
    /// A person's custom folder.
    FolderId
);
id_type!(
    /// A draft.
    DraftId
);
id_type!(
    /// A chart note.
    ChartNoteId
);
id_type!(
    /// A queued notification.
    NotificationId
);

fn is_well_formed(value: &str) -> bool {
    value.len() == 26
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        && data_encoding::BASE32_DNSSEC
            .decode(value.as_bytes())
            .is_ok()
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    data_encoding::BASE32_DNSSEC.encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_opaque() {
        let a = PersonId::generate();
        let b = PersonId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 26);
        assert!(a.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
id_type!(
    /// An uploaded attachment.
    AttachmentId
);

/// A fresh random name, e.g. for a temporary file.
pub fn new_random_id() -> String {
    random_id()
}
id_type!(
    /// An internal note on a thread.
    NoteId
);
