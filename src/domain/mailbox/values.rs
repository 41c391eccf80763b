//! The mailbox's values: where a thread sits, the staff groups, recipients as written in
//! `to`, subjects and bodies. Each parses its input and refuses what the rulebook does not
//! allow.

use crate::domain::ids::FolderId;
use crate::domain::values::bounded_chars;
use crate::domain::{Code, Role, RuleViolation};

/// How a thread emptied from a participant's Trash is stored (see [`Placement::Removed`]).
pub const REMOVED: &str = "removed";

/// Where a thread sits in one participant's mailbox (stored in the `folder` column by
/// [`Placement::as_stored`]; the API names the same places the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Inbox,
    Archive,
    Trash,
    /// Emptied from the Trash: gone from this mailbox, kept for the other participants.
    Removed,
    /// A custom folder of the participant's.
    Folder(FolderId),
}

impl Placement {
    pub fn as_stored(&self) -> &str {
        match self {
            Placement::Inbox => "inbox",
            Placement::Archive => "archive",
            Placement::Trash => "trash",
            Placement::Removed => REMOVED,
            Placement::Folder(id) => id.as_str(),
        }
    }

    /// Inbox, Archive or Trash by name.
    pub fn system(name: &str) -> Option<Placement> {
        match name {
            "inbox" => Some(Placement::Inbox),
            "archive" => Some(Placement::Archive),
            "trash" => Some(Placement::Trash),
            _ => None,
        }
    }

    /// A stored value read back; anything but a system place or a folder id is an error.
    pub fn from_stored(value: &str) -> Result<Placement, String> {
        if let Some(system) = Placement::system(value) {
            return Ok(system);
        }
        match value {
            REMOVED => Ok(Placement::Removed),
            id if FolderId::is_well_formed(id) => {
                Ok(Placement::Folder(FolderId::from_trusted(id.to_string())))
            }
            other => Err(format!("unknown folder placement {other:?}")),
        }
    }

    /// Whether the thread is still in the participant's mailbox.
    pub fn is_in_mailbox(&self) -> bool {
        *self != Placement::Removed
    }
}

/// A staff group that may be addressed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Providers,
    FrontOffice,
    Billers,
    ExternalAgents,
}

impl Group {
    pub const ALL: [Group; 4] = [
        Group::Providers,
        Group::FrontOffice,
        Group::Billers,
        Group::ExternalAgents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Providers => "providers",
            Group::FrontOffice => "front_office",
            Group::Billers => "billers",
            Group::ExternalAgents => "external_agents",
        }
    }

    pub fn parse(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The role whose active members the group reaches.
    pub fn role(self) -> Role {
        match self {
            Group::Providers => Role::Provider,
            Group::FrontOffice => Role::FrontOffice,
            Group::Billers => Role::Biller,
            Group::ExternalAgents => Role::ExternalAgent,
        }
    }

    /// The group a role belongs to, if any (admins and clients have none).
    pub fn of_role(role: Role) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.role() == role)
    }

    /// The name of its team folder.
    pub fn display_name(self) -> &'static str {
        match self {
            Group::Providers => "Providers",
            Group::FrontOffice => "Front office",
            Group::Billers => "Billing",
            Group::ExternalAgents => "External agents",
        }
    }
}

/// One entry of a message's `to`: a person or a staff group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    Person(String),
    Group(Group),
}

impl Recipient {
    pub fn parse(raw: &str) -> Result<Recipient, RuleViolation> {
        let raw = raw.trim();
        if let Some(id) = raw.strip_prefix("user:") {
            if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(Recipient::Person(id.to_string()));
            }
        } else if let Some(name) = raw.strip_prefix("group:") {
            if let Some(group) = Group::parse(name) {
                return Ok(Recipient::Group(group));
            }
            return Err(RuleViolation::field(Code::UnknownGroup,
                "to",
                format!("to: there is no group named {name:?}; use providers, front_office, billers or external_agents."),
            ));
        }
        Err(RuleViolation::field(
            Code::InvalidField,
            "to",
            "to: each recipient is user:<id> or group:<name>.",
        ))
    }

    pub fn label(&self) -> String {
        match self {
            Recipient::Person(id) => format!("user:{id}"),
            Recipient::Group(g) => format!("group:{}", g.as_str()),
        }
    }
}

/// Parses a `to` list: at least one entry, at most `max`, duplicates dropped.
pub fn parse_recipients(raw: &[String], max: usize) -> Result<Vec<Recipient>, RuleViolation> {
    if raw.is_empty() {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "to",
            "to needs at least one recipient.",
        ));
    }
    if raw.len() > max {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "to",
            format!("to has more than {max} recipients."),
        ));
    }
    let mut out: Vec<Recipient> = Vec::with_capacity(raw.len());
    for entry in raw {
        let r = Recipient::parse(entry)?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// A message subject: 1–200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        bounded_chars("subject", raw, 1, 200).map(Subject)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Markdown message body: at least 10 characters after trimming, at most `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: &str, max: usize) -> Result<Self, RuleViolation> {
        let trimmed = raw.trim();
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "body",
                "body must not contain control characters.",
            ));
        }
        let chars = trimmed.chars().count();
        if chars < 10 {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "body",
                "body must be at least 10 characters.",
            ));
        }
        if chars > max {
            return Err(RuleViolation::field(
                Code::BodyTooLong,
                "body",
                format!("body must be at most {max} characters."),
            ));
        }
        Ok(MessageBody(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
