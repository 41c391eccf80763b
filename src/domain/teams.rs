//! Team folders as shared inboxes (DESIGN.md §2, issue 15 rule 17). A message thread
//! addressed to a staff group belongs to the group: every current member of the group
//! sees it in the team folder, a new member too with its whole history; a member assigns
//! it to themselves or a colleague; "done" archives it for the whole team; a new message
//! brings it back for the team.

use super::conversations::ThreadKind;
use super::mailbox::{Group, Placement};
use super::problem::{Code, RuleViolation};
use super::{Role, Status};

/// Whether a thread addressed to groups belongs to them. A conversation's people are
/// fixed when it starts (rule 1): nobody joins it by joining a group later.
pub fn belongs_to_teams(kind: ThreadKind) -> bool {
    kind == ThreadKind::Message
}

/// The group in whose name a person acts on a thread's team state: their own group, if
/// the thread belongs to it. `field` names what was asked (`assignee` or `done`).
pub fn acting_team(
    role: Role,
    teams: &[Group],
    field: &'static str,
) -> Result<Group, RuleViolation> {
    let forbidden = || {
        RuleViolation::field(
            Code::Forbidden,
            field,
            format!("{field}: only members of the team the thread was addressed to may change its team state."),
        )
    };
    // Clients and admins belong to no team.
    let mine = Group::of_role(role).ok_or_else(forbidden)?;
    if teams.is_empty() {
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            format!("{field}: this thread was not addressed to a team; only team threads are assigned or marked done."),
        ));
    }
    if teams.contains(&mine) {
        Ok(mine)
    } else {
        Err(forbidden())
    }
}

/// Whom a team thread may be assigned to: an active member of that team.
pub fn check_assignee(group: Group, role: Role, status: Status) -> Result<(), RuleViolation> {
    if role != group.role() || status != Status::Active {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "assignee",
            "assignee: a team thread is assigned to an active member of its team.",
        ));
    }
    Ok(())
}

/// The person a thread is assigned to: `user:<id>`.
pub fn parse_assignee(raw: &str) -> Result<String, RuleViolation> {
    match raw.strip_prefix("user:") {
        Some(id) if super::ids::PersonId::is_well_formed(id) => Ok(id.to_string()),
        _ => Err(RuleViolation::field(
            Code::InvalidField,
            "assignee",
            "assignee: name a member of the team as user:<id>, or null for nobody.",
        )),
    }
}

/// Where a person who joins a group finds each of its threads: open ones unread in the
/// Inbox, the ones the team is done with read in the Archive.
pub fn placement_for_new_member(done: bool) -> (Placement, bool) {
    if done {
        (Placement::Archive, false)
    } else {
        (Placement::Inbox, true)
    }
}

/// A narrowing of a team folder by assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Assigned to the viewer.
    Mine,
    /// Assigned to nobody.
    Unassigned,
}

impl AssigneeFilter {
    pub fn parse(value: &str) -> Result<AssigneeFilter, RuleViolation> {
        match value {
            "mine" => Ok(AssigneeFilter::Mine),
            "unassigned" => Ok(AssigneeFilter::Unassigned),
            _ => Err(RuleViolation::field(
                Code::InvalidField,
                "assignee",
                "assignee: filter a team folder by mine or unassigned.",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AssigneeFilter::Mine => "mine",
            AssigneeFilter::Unassigned => "unassigned",
        }
    }
}

/// What a team folder shows: all its threads, or narrowed by assignee and/or by whether
/// the team is done with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamFilter {
    pub assignee: Option<AssigneeFilter>,
    pub done: Option<bool>,
}

impl TeamFilter {
    pub fn is_all(&self) -> bool {
        self.assignee.is_none() && self.done.is_none()
    }
}

/// A filter is for team folders only.
pub fn check_filter_on(folder_is_team: bool, filter: TeamFilter) -> Result<(), RuleViolation> {
    if !folder_is_team && !filter.is_all() {
        let field = if filter.assignee.is_some() {
            "assignee"
        } else {
            "done"
        };
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            format!("{field}: only a team folder (team:<group>) is filtered this way."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_message_threads_belong_to_teams() {
        assert!(belongs_to_teams(ThreadKind::Message));
        assert!(!belongs_to_teams(ThreadKind::Conversation));
    }

    #[test]
    fn a_member_acts_for_their_own_team_only() {
        let teams = [Group::Billers, Group::FrontOffice];
        assert_eq!(
            acting_team(Role::Biller, &teams, "done").unwrap(),
            Group::Billers
        );
        let provider = acting_team(Role::Provider, &teams, "assignee").unwrap_err();
        assert_eq!(provider.code, Code::Forbidden);
        assert_eq!(provider.field, Some("assignee"));
        let client = acting_team(Role::Client, &teams, "done").unwrap_err();
        assert_eq!(client.code, Code::Forbidden);
        let client = acting_team(Role::Client, &[], "done").unwrap_err();
        assert_eq!(
            client.code,
            Code::Forbidden,
            "a client learns nothing of teams"
        );
        let none = acting_team(Role::Biller, &[], "done").unwrap_err();
        assert_eq!((none.code, none.field), (Code::InvalidField, Some("done")));
    }

    #[test]
    fn assignees_are_active_members_of_the_team() {
        assert!(check_assignee(Group::Billers, Role::Biller, Status::Active).is_ok());
        for (role, status) in [
            (Role::FrontOffice, Status::Active),
            (Role::Biller, Status::Disabled),
            (Role::Biller, Status::Invited),
            (Role::Client, Status::Active),
        ] {
            let refused = check_assignee(Group::Billers, role, status).unwrap_err();
            assert_eq!(refused.field, Some("assignee"), "{role:?} {status:?}");
        }
    }

    #[test]
    fn an_assignee_is_named_as_a_user() {
        assert!(parse_assignee("user:").is_err());
        assert!(parse_assignee("group:billers").is_err());
        assert_eq!(parse_assignee("bob").unwrap_err().field, Some("assignee"));
    }

    #[test]
    fn new_members_find_open_threads_unread_and_done_ones_archived() {
        assert_eq!(placement_for_new_member(false), (Placement::Inbox, true));
        assert_eq!(placement_for_new_member(true), (Placement::Archive, false));
    }

    #[test]
    fn assignee_filters_parse_and_belong_to_team_folders() {
        assert_eq!(AssigneeFilter::parse("mine").unwrap(), AssigneeFilter::Mine);
        assert_eq!(
            AssigneeFilter::parse("unassigned").unwrap().as_str(),
            "unassigned"
        );
        assert_eq!(
            AssigneeFilter::parse("me").unwrap_err().field,
            Some("assignee")
        );
        let mine = TeamFilter {
            assignee: Some(AssigneeFilter::Mine),
            done: None,
        };
        assert!(check_filter_on(true, mine).is_ok());
        assert_eq!(
            check_filter_on(false, mine).unwrap_err().field,
            Some("assignee")
        );
        let done = TeamFilter {
            assignee: None,
            done: Some(true),
        };
        assert_eq!(
            check_filter_on(false, done).unwrap_err().field,
            Some("done")
        );
        assert!(check_filter_on(false, TeamFilter::default()).is_ok());
    }
}
