//! The mailbox rulebook (DESIGN.md §2: composing, threads and replies, inactive clients,
//! deleting). Pure functions over roles, statuses and ids.

use super::ids::FolderId;
use super::values::bounded_chars;
use super::{Role, RuleViolation, Status};
use crate::domain::Code;

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
            Placement::Removed => "removed",
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
            "removed" => Ok(Placement::Removed),
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

/// Whom a sender may write to: the one rule, which the directory, the group list, compose
/// and replies all follow. Staff: anyone of their practice. A client: providers, front
/// office and billers, never other clients nor external agents; an inactive client only
/// front office and billers.
pub fn may_write_to(sender_role: Role, sender_status: Status, recipient: Role) -> bool {
    if sender_role.is_staff() {
        return true;
    }
    match sender_status {
        Status::Inactive => matches!(recipient, Role::FrontOffice | Role::Biller),
        _ => matches!(recipient, Role::Provider | Role::FrontOffice | Role::Biller),
    }
}

/// The roles a client of `status` may write to (and so see in the directory).
pub fn roles_a_client_may_write_to(status: Status) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| may_write_to(Role::Client, status, *r))
        .collect()
}

/// Whom a sender's role may address at all, whatever their status (an inactive client's
/// narrower reach is refused as `client_inactive` by [`check_inactive_client`]).
pub fn may_address(sender: Role, recipient: Role) -> bool {
    may_write_to(sender, Status::Active, recipient)
}

/// The same rule for a group.
pub fn may_address_group(sender: Role, group: Group) -> bool {
    may_address(sender, group.role())
}

/// Only activated people can receive messages.
pub fn may_receive(status: Status) -> bool {
    status.is_activated()
}

/// Checks the inactive-client rule for a message from `sender` to people of `recipients`.
pub fn check_inactive_client(
    sender_role: Role,
    sender_status: Status,
    recipients: &[Role],
) -> Result<(), RuleViolation> {
    if sender_role == Role::Client
        && sender_status == Status::Inactive
        && recipients
            .iter()
            .any(|r| r.is_staff() && !may_write_to(sender_role, sender_status, *r))
    {
        return Err(RuleViolation::new(
            Code::ClientInactive,
            "Your account is inactive: you can write to the front office and billing only.",
        ));
    }
    Ok(())
}

/// Why a thread does or does not take replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyPolicy {
    Allowed,
    /// Two or more clients: a new message must be composed.
    MultipleClients,
}

/// 1:1 threads and threads with at most one client take replies (which go to everyone);
/// threads with two or more clients take none.
pub fn reply_policy(participant_roles: &[Role]) -> ReplyPolicy {
    let clients = participant_roles
        .iter()
        .filter(|r| **r == Role::Client)
        .count();
    if clients >= 2 {
        ReplyPolicy::MultipleClients
    } else {
        ReplyPolicy::Allowed
    }
}

pub fn check_reply(policy: ReplyPolicy) -> Result<(), RuleViolation> {
    match policy {
        ReplyPolicy::Allowed => Ok(()),
        ReplyPolicy::MultipleClients => Err(RuleViolation::new(
            Code::RepliesNotAllowed,
            "This thread has several clients, so nobody may reply; compose a new message instead.",
        )),
    }
}

/// Whether `viewer` must not learn who a participant of role `participant` is: clients in
/// a thread with other clients never learn who those are (BCC semantics), and external
/// agents are invisible to clients altogether.
pub fn hidden_from(viewer: Role, participant: Role) -> bool {
    viewer == Role::Client && matches!(participant, Role::Client | Role::ExternalAgent)
}

/// Staff permanently delete a message they sent; clients delete nothing.
pub fn may_delete_message(actor: Role, is_sender: bool) -> Result<(), RuleViolation> {
    if !actor.is_staff() {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "Clients cannot delete messages; move the thread to your Trash instead.",
        ));
    }
    if !is_sender {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "You can delete only messages you sent.",
        ));
    }
    Ok(())
}

/// Staff permanently delete a whole thread they started.
pub fn may_delete_thread(actor: Role, is_starter: bool) -> Result<(), RuleViolation> {
    if !actor.is_staff() {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "Clients cannot delete threads; move the thread to your Trash instead.",
        ));
    }
    if !is_starter {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "You can delete only threads you started.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    #[test]
    fn recipients_parse_people_and_groups() {
        assert_eq!(
            Recipient::parse("user:abc123").unwrap(),
            Recipient::Person("abc123".into())
        );
        assert_eq!(
            Recipient::parse("group:billers").unwrap(),
            Recipient::Group(Group::Billers)
        );
        assert_eq!(
            Recipient::parse("group:clients").unwrap_err().code,
            Code::UnknownGroup
        );
        assert_eq!(
            Recipient::parse("bob@example.org").unwrap_err().code,
            Code::InvalidField
        );
        assert_eq!(
            Recipient::parse("user:../x").unwrap_err().code,
            Code::InvalidField
        );
        assert_eq!(parse_recipients(&[], 10).unwrap_err().field, Some("to"));
        let twice = parse_recipients(&["user:a".into(), "user:a".into()], 10).unwrap();
        assert_eq!(twice.len(), 1);
    }

    #[test]
    fn subject_is_required_and_bounded() {
        assert!(Subject::parse("  Hello  ").is_ok());
        assert_eq!(Subject::parse("   ").unwrap_err().field, Some("subject"));
        assert!(Subject::parse(&"s".repeat(200)).is_ok());
        assert!(Subject::parse(&"s".repeat(201)).is_err());
    }

    #[test]
    fn body_needs_ten_characters_after_trimming() {
        assert!(MessageBody::parse("  123456789  ", 100).is_err());
        assert!(MessageBody::parse("1234567890", 100).is_ok());
        assert_eq!(
            MessageBody::parse(&"x".repeat(101), 100).unwrap_err().code,
            Code::BodyTooLong
        );
        assert!(MessageBody::parse("line one\n\tline two", 100).is_ok());
        assert!(MessageBody::parse("a body with \u{0} in it", 100).is_err());
    }

    #[test]
    fn clients_write_only_to_providers_front_office_and_billers() {
        for role in [Provider, FrontOffice, Biller] {
            assert!(may_address(Client, role));
        }
        for role in [Client, ExternalAgent, Admin] {
            assert!(!may_address(Client, role), "{role}");
        }
        for role in Role::ALL {
            assert!(may_address(Provider, role));
        }
        assert!(!may_address_group(Client, Group::ExternalAgents));
    }

    #[test]
    fn whom_one_may_write_to_is_one_rule() {
        for staff in Role::ALL.into_iter().filter(|r| r.is_staff()) {
            for recipient in Role::ALL {
                assert!(may_write_to(staff, Status::Active, recipient));
            }
        }
        assert_eq!(
            roles_a_client_may_write_to(Status::Active),
            vec![Provider, FrontOffice, Biller]
        );
        assert_eq!(
            roles_a_client_may_write_to(Status::Inactive),
            vec![FrontOffice, Biller]
        );
    }

    #[test]
    fn placements_read_back_and_refuse_the_unknown() {
        let folder = FolderId::generate();
        for place in [
            Placement::Inbox,
            Placement::Archive,
            Placement::Trash,
            Placement::Removed,
            Placement::Folder(folder.clone()),
        ] {
            assert_eq!(Placement::from_stored(place.as_stored()), Ok(place.clone()));
        }
        assert!(Placement::from_stored("inbx").is_err());
        assert!(Placement::from_stored("").is_err());
        assert!(!Placement::Removed.is_in_mailbox());
    }

    #[test]
    fn inactive_clients_reach_only_front_office_and_billers() {
        assert!(check_inactive_client(Client, Status::Inactive, &[FrontOffice, Biller]).is_ok());
        assert_eq!(
            check_inactive_client(Client, Status::Inactive, &[FrontOffice, Provider])
                .unwrap_err()
                .code,
            Code::ClientInactive
        );
        assert!(check_inactive_client(Client, Status::Active, &[Provider]).is_ok());
    }

    #[test]
    fn replies_follow_the_number_of_clients() {
        assert_eq!(reply_policy(&[Provider, Client]), ReplyPolicy::Allowed);
        assert_eq!(
            reply_policy(&[Provider, Biller, FrontOffice, Client]),
            ReplyPolicy::Allowed
        );
        assert_eq!(reply_policy(&[Provider, Biller]), ReplyPolicy::Allowed);
        assert_eq!(
            reply_policy(&[Provider, Client, Client]),
            ReplyPolicy::MultipleClients
        );
        assert_eq!(
            check_reply(ReplyPolicy::MultipleClients).unwrap_err().code,
            Code::RepliesNotAllowed
        );
    }

    #[test]
    fn only_staff_delete_and_only_their_own() {
        assert!(may_delete_message(Provider, true).is_ok());
        assert_eq!(
            may_delete_message(Provider, false).unwrap_err().code,
            Code::Forbidden
        );
        assert_eq!(
            may_delete_message(Client, true).unwrap_err().code,
            Code::Forbidden
        );
        assert!(may_delete_thread(Biller, true).is_ok());
        assert_eq!(
            may_delete_thread(Admin, false).unwrap_err().code,
            Code::Forbidden
        );
    }
}
