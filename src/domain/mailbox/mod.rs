//! The mailbox rulebook (DESIGN.md §2: composing, threads and replies, inactive clients,
//! deleting). Pure functions over roles, statuses and ids.

mod values;

pub use values::{parse_recipients, Group, MessageBody, Placement, Recipient, Subject, REMOVED};

use super::{Role, RuleViolation, Status};
use crate::domain::Code;

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
    use crate::domain::ids::FolderId;
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
