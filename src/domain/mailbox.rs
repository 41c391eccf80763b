//! The mailbox rulebook (DESIGN.md §2: composing, threads and replies, inactive clients,
//! deleting). Pure functions over roles, statuses and ids.

use super::values::bounded_chars;
use super::{Role, RuleViolation, Status};
use crate::domain::Code;

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

/// Whom a sender may address. Staff: anyone activated in their practice. Clients: only
/// providers, front office and billers — never other clients, never external agents.
pub fn may_address(sender: Role, recipient: Role) -> bool {
    sender.is_staff() || recipient.is_addressable_by_clients()
}

/// The same rule for a group.
pub fn may_address_group(sender: Role, group: Group) -> bool {
    may_address(sender, group.role())
}

/// Only activated people can receive messages.
pub fn may_receive(status: Status) -> bool {
    status.is_activated()
}

/// An inactive client may still reach front office and billers, and no other staff.
pub fn inactive_client_may_reach(recipient: Role) -> bool {
    matches!(recipient, Role::FrontOffice | Role::Biller)
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
            .any(|r| r.is_staff() && !inactive_client_may_reach(*r))
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

/// Clients in a thread with other clients never learn who those are (BCC semantics).
pub fn hides_other_clients(viewer: Role) -> bool {
    viewer == Role::Client
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
