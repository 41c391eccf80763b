//! Who a message reaches. Resolved inside the transaction that writes it, reading the
//! people concerned with a share lock, so that a recipient disabled, a group member
//! removed or a sender made inactive at the same moment is either seen or waits for the
//! commit: the rules hold on the state the write commits on.

use std::collections::HashMap;

use crate::domain::mailbox::{
    check_inactive_client, may_address, may_address_group, may_receive, Group, Recipient,
};
use crate::domain::{Code, Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::people as people_store;
use crate::store::Conn;

use super::super::{person, Caller};

/// At most this many entries in `to`, and at most this many people after groups expand.
pub const MAX_RECIPIENTS: usize = 500;

/// One person a new thread reaches.
pub struct Addressee {
    pub person_id: String,
    /// The group they were reached through, if any.
    pub via_group: Option<Group>,
    /// Named in `to` themselves, not only reached through a group: leaving the group
    /// does not take the thread away.
    pub direct: bool,
    pub role: Role,
}

/// The people (and groups) a new thread reaches, checked against the rulebook.
pub struct Addressees {
    pub people: Vec<Addressee>,
    pub groups: Vec<Group>,
}

impl Addressees {
    fn add(&mut self, caller: &Caller, a: Addressee) {
        if a.person_id == caller.person.id.as_str() {
            return;
        }
        match self.people.iter_mut().find(|x| x.person_id == a.person_id) {
            Some(existing) => {
                existing.via_group = existing.via_group.or(a.via_group);
                existing.direct |= a.direct;
            }
            None => self.people.push(a),
        }
    }
}

fn not_activated(label: &str) -> AppError {
    AppError::field(
        Code::RecipientNotActivated,
        "to",
        format!("to: {label} is not an active person of this practice; nothing was sent."),
    )
}

/// The caller's status as it stands now (it may have changed since sign-in): a disabled
/// sender sends nothing.
pub async fn sender_status(conn: &mut Conn, caller: &Caller) -> AppResult<Status> {
    let row =
        people_store::find_for_write(conn, caller.practice_id(), caller.person.id.as_str()).await?;
    status_of_sender(row)
}

/// [`sender_status`] from the sender's row as read (`None`: not found).
fn status_of_sender(row: Option<people_store::PersonRow>) -> AppResult<Status> {
    let row = row.ok_or_else(|| AppError::unauthenticated("Your account no longer exists."))?;
    let me = person(row)?;
    if !me.status.is_activated() {
        return Err(AppError::unauthenticated(
            "Your account is disabled; nothing was sent.",
        ));
    }
    Ok(me.status)
}

/// Resolves `to` into the people a new thread reaches and checks every rule on them.
pub async fn resolve(
    conn: &mut Conn,
    caller: &Caller,
    recipients: &[Recipient],
) -> AppResult<Addressees> {
    // The sender and everyone named, read (and share-locked) in one statement.
    let me = caller.person.id.as_str();
    let mut ids: Vec<&str> = recipients
        .iter()
        .filter_map(|r| match r {
            Recipient::Person(id) => Some(id.as_str()),
            Recipient::Group(_) => None,
        })
        .chain([me])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: HashMap<String, people_store::PersonRow> =
        people_store::find_many_for_write(conn, caller.practice_id(), &ids)
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
    let status = status_of_sender(rows.get(me).cloned())?;
    let mut out = Addressees {
        people: Vec::new(),
        groups: Vec::new(),
    };
    for recipient in recipients {
        match recipient {
            Recipient::Person(id) => {
                let a = one_person(caller, rows.get(id.as_str()).cloned(), &recipient.label())?;
                out.add(caller, a);
            }
            Recipient::Group(group) => {
                for a in group_members(conn, caller, *group, &recipient.label()).await? {
                    out.add(caller, a);
                }
                out.groups.push(*group);
            }
        }
    }
    if out.people.is_empty() {
        return Err(AppError::invalid(
            "to",
            "to: write to someone other than yourself.",
        ));
    }
    if out.people.len() > MAX_RECIPIENTS {
        return Err(AppError::invalid(
            "to",
            format!("to reaches more than {MAX_RECIPIENTS} people."),
        ));
    }
    let roles: Vec<Role> = out.people.iter().map(|a| a.role).collect();
    check_inactive_client(caller.role(), status, &roles)?;
    Ok(out)
}

/// A person named in `to` (their row as read, `None`: not found): an activated person of
/// the practice the caller may address.
fn one_person(
    caller: &Caller,
    row: Option<people_store::PersonRow>,
    label: &str,
) -> AppResult<Addressee> {
    let Some(row) = row else {
        return Err(not_activated(label));
    };
    let target = person(row)?;
    // A client cannot tell a person they may not write to from nobody at all.
    if !may_address(caller.role(), target.role) || !may_receive(target.status) {
        return Err(not_activated(label));
    }
    Ok(Addressee {
        person_id: target.id.to_string(),
        via_group: None,
        direct: true,
        role: target.role,
    })
}

/// A group named in `to`: its active members other than the caller.
async fn group_members(
    conn: &mut Conn,
    caller: &Caller,
    group: Group,
    label: &str,
) -> AppResult<Vec<Addressee>> {
    if !may_address_group(caller.role(), group) {
        return Err(AppError::field(
            Code::RecipientNotAllowed,
            "to",
            format!("to: you cannot write to {label}; nothing was sent."),
        ));
    }
    let members = people_store::active_in_role_for_write(
        conn,
        caller.practice_id(),
        group.role().as_str(),
        MAX_RECIPIENTS as i64 + 1,
    )
    .await?;
    let members: Vec<Addressee> = members
        .into_iter()
        .filter(|m| m.id != caller.person.id.as_str())
        .map(|m| Addressee {
            person_id: m.id,
            via_group: Some(group),
            direct: false,
            role: group.role(),
        })
        .collect();
    if members.is_empty() {
        return Err(AppError::field(
            Code::GroupEmpty,
            "to",
            format!("to: {label} has no active members; nothing was sent."),
        ));
    }
    Ok(members)
}
