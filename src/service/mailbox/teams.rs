//! Team folders as shared inboxes (issue 15, rule 17): the team state of a thread
//! addressed to a staff group, who of the team handles it, and the participant rows that
//! joining or leaving a group brings. The rules are in `domain::teams`.

use std::collections::HashMap;

use anyhow::anyhow;

use crate::domain::events::EventKind;
use crate::domain::ids::ThreadId;
use crate::domain::mailbox::{Group, Placement};
use crate::domain::teams::{
    acting_team, belongs_to_teams, check_assignee, parse_assignee, placement_for_new_member,
};
use crate::domain::{Role, Status};
use crate::error::{AppError, AppResult};
use crate::service::changes;
use crate::store::events::NewEvent;
use crate::store::people as people_store;
use crate::store::teams::{self as store, TeamRow};
use crate::store::threads::ThreadRow;
use crate::store::Conn;

use super::super::audit::{record, AuditEntry};
use super::super::{AppState, Caller};
use super::{kind_of, load_thread_for_write, thread_event, PersonRef};

/// One team's state of a thread, as staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamView {
    pub group: Group,
    /// The team is done with it: archived for every member until a new message.
    pub done: bool,
    /// The member who handles it, if any.
    pub assignee: Option<PersonRef>,
}

/// A change to the caller's team's state of a thread; `None` leaves a part as it is.
#[derive(Debug, Default)]
pub struct TeamChange {
    /// `Some(None)` assigns the thread to nobody.
    pub assignee: Option<Option<String>>,
    pub done: Option<bool>,
}

impl TeamChange {
    pub fn is_empty(&self) -> bool {
        self.assignee.is_none() && self.done.is_none()
    }
}

fn team_view(row: TeamRow) -> AppResult<TeamView> {
    let group = Group::parse(&row.group_name).ok_or_else(|| {
        AppError::internal(anyhow!(
            "team state of thread {} has unknown group {:?}",
            row.thread_id,
            row.group_name
        ))
    })?;
    let assignee = match (row.assignee_id, row.assignee_name) {
        (Some(id), Some(name)) => Some(PersonRef {
            id,
            name,
            role: Some(group.role()),
            email: None,
        }),
        _ => None,
    };
    Ok(TeamView {
        group,
        done: row.done != 0,
        assignee,
    })
}

/// The team state of some threads as the caller may see it: staff see each team's;
/// clients see none (who handles their message is the practice's business).
pub async fn teams_of(
    conn: &mut Conn,
    caller: &Caller,
    ids: &[String],
) -> AppResult<HashMap<String, Vec<TeamView>>> {
    let mut out: HashMap<String, Vec<TeamView>> = HashMap::new();
    if !caller.role().is_staff() {
        return Ok(out);
    }
    for row in store::of_threads(conn, ids).await? {
        let thread_id = row.thread_id.clone();
        out.entry(thread_id).or_default().push(team_view(row)?);
    }
    Ok(out)
}

/// Makes a new thread belong to the groups it was addressed to (message threads only:
/// a conversation's people are fixed).
pub async fn adopt(conn: &mut Conn, thread: &ThreadRow, groups: &[Group]) -> AppResult<()> {
    if groups.is_empty() || !belongs_to_teams(kind_of(thread)) {
        return Ok(());
    }
    let names: Vec<&str> = groups.iter().map(|g| g.as_str()).collect();
    store::insert(
        conn,
        &thread.id,
        &thread.practice_id,
        &names,
        thread.created_at,
    )
    .await?;
    Ok(())
}

/// A new message in a thread: every team done with it has it open again (the message
/// itself brings it back to each member's Inbox).
pub async fn on_message(conn: &mut Conn, thread: &ThreadRow, now: i64) -> AppResult<()> {
    if !thread.groups.is_empty() {
        store::reopen_all(conn, &thread.id, now).await?;
    }
    Ok(())
}

/// The caller's team assigns the thread, marks it done or opens it again. Returns the
/// caller's own (folder, unread) afterwards and every team's state.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    change: TeamChange,
) -> AppResult<(String, bool, Vec<TeamView>)> {
    let field = if change.assignee.is_some() {
        "assignee"
    } else {
        "done"
    };
    let assignee = match &change.assignee {
        Some(Some(raw)) => Some(Some(parse_assignee(raw)?)),
        Some(None) => Some(None),
        None => None,
    };
    let now = state.now();
    let mut tx = state.store.begin().await?;
    // A member joining meanwhile gets the thread as it is after this change.
    store::lock_membership(&mut tx, caller.practice_id(), false).await?;
    let ctx = load_thread_for_write(&mut tx, caller, thread_id.as_str()).await?;
    let id = ctx.thread.id.clone();
    let groups: Vec<Group> = store::of_threads(&mut tx, std::slice::from_ref(&id))
        .await?
        .into_iter()
        .map(|row| team_view(row).map(|t| t.group))
        .collect::<AppResult<_>>()?;
    let group = acting_team(caller.role(), &groups, field)?;
    let mut actions = Vec::new();
    if let Some(assignee) = assignee {
        if let Some(person) = &assignee {
            let row = people_store::find_for_write(&mut tx, caller.practice_id(), person)
                .await?
                .ok_or_else(|| {
                    AppError::invalid(
                        "assignee",
                        "assignee: a team thread is assigned to an active member of its team.",
                    )
                })?;
            // An unknown stored role or status is an error, never a default.
            let person = crate::service::person(row)?;
            check_assignee(group, person.role, person.status)?;
        }
        store::set_assignee(&mut tx, &id, group.as_str(), assignee.as_deref(), now).await?;
        actions.push(if assignee.is_some() {
            "assign_thread"
        } else {
            "unassign_thread"
        });
    }
    if let Some(done) = change.done {
        if store::set_done(&mut tx, &id, group.as_str(), done, now).await? {
            let (inbox, archive) = (Placement::Inbox.as_stored(), Placement::Archive.as_stored());
            let (from, to) = if done {
                (inbox, archive)
            } else {
                (archive, inbox)
            };
            store::file_for_team(&mut tx, &id, group.as_str(), from, to).await?;
            actions.push(if done { "team_done" } else { "team_reopen" });
        }
    }
    for action in actions {
        record(
            &mut tx,
            state,
            caller,
            AuditEntry::new(action, "thread", &id),
        )
        .await?;
    }
    thread_event(&mut tx, state, caller, EventKind::TeamUpdated, &id).await?;
    let mine = crate::store::threads::state_of(&mut tx, &id, caller.person.id.as_str())
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    let teams = teams_of(&mut tx, caller, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    tx.commit().await?;
    Ok((mine.0, mine.1, teams))
}

/// Takes the practice's membership lock for a change to a person's role or status, before
/// the person's row is written (see [`sync_member`]).
pub async fn lock_membership(conn: &mut Conn, practice_id: &str) -> AppResult<()> {
    Ok(store::lock_membership(conn, practice_id, true).await?)
}

/// The team state of one thread the caller takes part in.
pub async fn of_thread(
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
) -> AppResult<Vec<TeamView>> {
    let mut conn = state.store.read().await?;
    let ids = [thread_id.to_string()];
    Ok(teams_of(&mut conn, caller, &ids)
        .await?
        .remove(thread_id)
        .unwrap_or_default())
}

/// The active members of the caller's own group, (id, name) by name: whom the caller
/// may assign their team's threads to. Empty for clients and admins.
pub async fn my_team(state: &AppState, caller: &Caller) -> AppResult<Vec<(String, String)>> {
    let Some(group) = Group::of_role(caller.role()) else {
        return Ok(Vec::new());
    };
    let mut conn = state.store.read().await?;
    Ok(store::members(&mut conn, caller.practice_id(), group.role().as_str()).await?)
}

/// Keeps a person's team folders in step with their role and status, in the transaction
/// that changes them (which takes [`lock_membership`] before it changes the person, so
/// that a send to a group meanwhile waits for it or is seen by it): an active member of a group has every thread of the group (a new
/// member too, with its history); one who leaves the group loses the group's threads
/// they never wrote in; a disabled member keeps their rows (they cannot sign in) but
/// hands back what was assigned to them. `before` is `None` for a new person.
pub async fn sync_member(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    person_id: &str,
    before: Option<(Role, Status)>,
    after: (Role, Status),
) -> AppResult<()> {
    let now = state.now();
    let old_group = before.and_then(|(role, _)| Group::of_role(role));
    let new_group = Group::of_role(after.0);
    if old_group.is_none() && new_group.is_none() {
        return Ok(());
    }
    store::lock_membership(conn, practice_id, true).await?;
    let mut unassigned = Vec::new();
    if let Some(old) = old_group.filter(|g| Some(*g) != new_group) {
        let (handed_back, lost) =
            store::leave(conn, practice_id, person_id, old.as_str(), now).await?;
        unassigned.extend(handed_back);
        for thread_id in &lost {
            let who = (Some(person_id), &[][..]);
            member_event(
                conn,
                state,
                practice_id,
                EventKind::ThreadLeft,
                thread_id,
                who,
            )
            .await?;
        }
    }
    if after.1 == Status::Disabled {
        unassigned.extend(store::unassign(conn, person_id, now).await?);
    }
    // The team sees the thread's assignee change.
    for thread_id in &unassigned {
        let who = (None, &[][..]);
        member_event(
            conn,
            state,
            practice_id,
            EventKind::TeamUpdated,
            thread_id,
            who,
        )
        .await?;
    }
    if let Some(group) = new_group.filter(|_| after.1 == Status::Active) {
        let place = |done| {
            let (placement, unread) = placement_for_new_member(done);
            (placement.as_stored().to_string(), unread)
        };
        let (open, done) = (place(false), place(true));
        let added = store::join(
            conn,
            practice_id,
            person_id,
            group.as_str(),
            (&open.0, open.1),
            (&done.0, done.1),
        )
        .await?;
        // As for sharing: the search index learns the thread's new reader, and the thread
        // is new in the member's mailbox.
        for thread_id in &added {
            let who = (None, &[person_id][..]);
            member_event(
                conn,
                state,
                practice_id,
                EventKind::ThreadShared,
                thread_id,
                who,
            )
            .await?;
        }
    }
    Ok(())
}

/// Records an event of a membership change about one thread; `who` is the actor and those
/// the thread is new to.
async fn member_event(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    kind: EventKind,
    thread_id: &str,
    who: (Option<&str>, &[&str]),
) -> AppResult<()> {
    let event = NewEvent {
        practice_id,
        kind,
        thread_id: Some(thread_id),
        message_id: None,
        actor_id: who.0,
        at: state.now(),
    };
    changes::record(conn, state, &event, who.1).await?;
    Ok(())
}
