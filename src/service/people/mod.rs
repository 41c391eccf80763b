//! The practice directory: listing, creating and changing people, one's own profile and
//! password, and the staff groups one may address.

mod changes;
mod me;

pub use changes::{update, write_person, PersonPatch};
pub use me::{change_password, me, update_me, Me};

use crate::domain::mailbox::{may_receive, may_write_to, roles_a_client_may_write_to, Group};
use crate::domain::people::{may_create_person, may_see_email, may_see_person};
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::domain::Code;
use crate::domain::{PersonId, PracticeId, Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::people::{self as people_store, ListFilter, PersonRow};
use crate::store::{is_unique_violation, Conn};

use crate::service::audit::{record, AuditEntry};
use crate::service::cursor::List;
use crate::service::mailbox::conversations::starts_reply_only;
use crate::service::mailbox::teams;
use crate::service::{notifications, person, AppState, Caller, Person};

/// A person as one particular viewer may see them: hidden fields are `None`.
#[derive(Debug, Clone)]
pub struct PersonView {
    pub id: String,
    pub role: Role,
    pub name: String,
    pub status: Option<Status>,
    pub email: Option<String>,
    /// A new address waiting for confirmation.
    pub pending_email: Option<String>,
    pub mobile: Option<String>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    /// For staff looking at a client (read where the view is made): whether the client
    /// may start threads or only reply.
    pub may_start_threads: Option<bool>,
}

/// Whether a client may start threads, for a staff viewer; `None` otherwise.
pub(crate) async fn may_start_threads_of(
    conn: &mut Conn,
    viewer: &Caller,
    person: &Person,
) -> AppResult<Option<bool>> {
    if !viewer.role().is_staff() || person.role != Role::Client {
        return Ok(None);
    }
    let reply_only = crate::store::conversations::is_reply_only(conn, person.id.as_str()).await?;
    Ok(Some(!reply_only))
}

pub fn view(viewer: &Caller, person: &Person) -> PersonView {
    let is_self = viewer.person.id == person.id;
    let full = may_see_email(viewer.role(), is_self);
    PersonView {
        id: person.id.to_string(),
        role: person.role,
        name: person.name.clone(),
        status: full.then_some(person.status),
        email: full.then(|| person.email.clone()),
        pending_email: if full {
            person.pending_email.clone()
        } else {
            None
        },
        mobile: if full { person.mobile.clone() } else { None },
        consent_email: full.then_some(person.consent_email),
        consent_sms: full.then_some(person.consent_sms),
        may_start_threads: None,
    }
}

pub struct ListQuery {
    pub role: Option<Role>,
    pub status: Option<Status>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// A page of the directory as the caller may see it, and the cursor of the next page.
#[tracing::instrument(skip_all)]
pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: ListQuery,
) -> AppResult<(Vec<PersonView>, Option<String>)> {
    let holder = caller.person.id.as_str();
    let after: Option<(String, String)> = query
        .cursor
        .as_deref()
        .map(|c| state.cursors.decode(List::People, holder, c))
        .transpose()?;
    let limit = query.limit.clamp(1, 200);
    let client_viewer = (!caller.role().is_staff()).then(|| {
        let roles = roles_a_client_may_write_to(caller.person.status)
            .iter()
            .map(|r| r.as_str())
            .collect();
        (caller.person.id.as_str(), roles)
    });
    let mut conn = state.store.read().await?;
    let rows = people_store::list(
        &mut conn,
        &ListFilter {
            practice_id: caller.practice_id(),
            role: query.role.map(Role::as_str),
            status: query.status.map(Status::as_str),
            client_viewer,
            after: after.as_ref().map(|(n, i)| (n.as_str(), i.as_str())),
            limit: limit + 1,
        },
    )
    .await?;
    let mut people = Vec::with_capacity(rows.len());
    for row in rows {
        let p = person(row)?;
        // The SQL filter and the rule must agree; the rule has the last word.
        if may_see_person(
            caller.role(),
            caller.person.status,
            p.id == caller.person.id,
            p.role,
            p.status,
        ) {
            people.push(p);
        }
    }
    let next = state
        .cursors
        .next_page(List::People, holder, &mut people, limit, |p| {
            (p.name.clone(), p.id.to_string())
        });
    drop(conn);
    let entry = AuditEntry::new("list_people", "practice", caller.practice_id());
    crate::service::audit::record_read(state, caller, entry).await?;
    Ok((people.iter().map(|p| view(caller, p)).collect(), next))
}

/// The people the caller may write to, by name, at most `max` of them: activated, not
/// the caller, and of a role the caller may write to (what compose offers).
pub async fn addressable(
    state: &AppState,
    caller: &Caller,
    max: usize,
) -> AppResult<Vec<PersonView>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListQuery {
            role: None,
            status: None,
            cursor: cursor.take(),
            limit: 200,
        };
        let (page, next) = list(state, caller, query).await?;
        out.extend(page.into_iter().filter(|p| {
            p.id != caller.person.id.as_str()
                && p.status.is_none_or(may_receive)
                && may_write_to(caller.role(), caller.person.status, p.role)
        }));
        match next {
            Some(next) if out.len() < max => cursor = Some(next),
            _ => break,
        }
    }
    out.truncate(max);
    Ok(out)
}

/// Loads a person of the caller's practice that the caller may see; otherwise 404.
pub(super) async fn visible_person(
    conn: &mut Conn,
    caller: &Caller,
    id: &str,
) -> AppResult<Person> {
    let found = people_store::find(conn, caller.practice_id(), id).await?;
    match found {
        Some(row) => {
            let p = person(row)?;
            if may_see_person(
                caller.role(),
                caller.person.status,
                p.id == caller.person.id,
                p.role,
                p.status,
            ) {
                Ok(p)
            } else {
                Err(AppError::not_found("person"))
            }
        }
        None => Err(AppError::not_found("person")),
    }
}

pub async fn get(state: &AppState, caller: &Caller, id: &PersonId) -> AppResult<PersonView> {
    let id = id.as_str();
    let mut conn = state.store.read().await?;
    let p = visible_person(&mut conn, caller, id).await?;
    let mut shown = view(caller, &p);
    shown.may_start_threads = may_start_threads_of(&mut conn, caller, &p).await?;
    drop(conn);
    let entry = AuditEntry::new("read_person", "person", id);
    crate::service::audit::record_read(state, caller, entry).await?;
    Ok(shown)
}

pub struct NewPerson {
    pub role: Role,
    pub name: PersonName,
    pub email: EmailAddress,
    pub mobile: Option<MobileNumber>,
}

/// Inserts a person; a taken address becomes 409 `email_taken`.
pub(crate) async fn insert_person(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &PracticeId,
    new: &NewPerson,
    password_hash: Option<&str>,
) -> AppResult<Person> {
    let now = state.now();
    let row = PersonRow {
        id: PersonId::generate().into_string(),
        practice_id: practice_id.to_string(),
        role: new.role.as_str().into(),
        status: if password_hash.is_some() {
            Status::Active
        } else {
            Status::Invited
        }
        .as_str()
        .into(),
        name: new.name.as_str().into(),
        email: new.email.as_str().into(),
        mobile: new.mobile.as_ref().map(|m| m.as_str().to_string()),
        pending_email: None,
        // Staff are notified by default; clients only once they consent.
        consent_email: new.role.is_staff() as i64,
        consent_sms: 0,
        created_at: now,
        updated_at: now,
    };
    match people_store::insert(conn, &row, password_hash).await {
        Ok(()) => {
            // Clients created while the practice lets new clients only reply start so.
            let practice = practice_id.as_str();
            if starts_reply_only(conn, practice, new.role).await? {
                crate::store::conversations::set_reply_only(conn, practice, &row.id, true, now)
                    .await?;
            }
            let created = (new.role, row.status.parse().unwrap_or(Status::Invited));
            teams::sync_member(conn, state, practice, &row.id, None, created).await?;
            person(row)
        }
        Err(e) if is_unique_violation(&e, "people_practice_email_key", "people.email_norm") => {
            Err(email_taken())
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn email_taken() -> AppError {
    AppError::new(
        Code::EmailTaken,
        "email is already used by another person of this practice.",
    )
    .with_field("email")
}

/// Creates a person as `invited`; they choose a password through their invitation.
#[tracing::instrument(skip_all, fields(role = %new.role))]
pub async fn create(state: &AppState, caller: &Caller, new: NewPerson) -> AppResult<PersonView> {
    may_create_person(caller.role(), new.role)?;
    let mut tx = state.store.begin().await?;
    let created = insert_person(&mut tx, state, &caller.person.practice_id, &new, None).await?;
    notifications::invitation(&mut tx, state, caller.practice_id(), created.id.as_str()).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("create_person", "person", created.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(view(caller, &created))
}

/// Sends an invited person a new invitation; the earlier link stops working at once.
#[tracing::instrument(skip_all, fields(person_id = %id))]
pub async fn resend_invitation(state: &AppState, caller: &Caller, id: &PersonId) -> AppResult<()> {
    let id = id.as_str();
    let mut tx = state.store.begin().await?;
    let target = visible_person(&mut tx, caller, id).await?;
    may_create_person(caller.role(), target.role)?;
    if target.status != Status::Invited {
        return Err(AppError::new(
            Code::NotInvited,
            "This person has already accepted their invitation (or is disabled).",
        ));
    }
    crate::store::tokens::revoke_unused(&mut tx, "invitation", Some(target.id.as_str())).await?;
    notifications::invitation(&mut tx, state, caller.practice_id(), target.id.as_str()).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("resend_invitation", "person", target.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A staff group that may be addressed as a whole, as the caller sees it.
pub struct GroupView {
    pub group: Group,
    /// Staff see how many active members a group has.
    pub active_members: Option<i64>,
}

/// The staff groups the caller may address: clients never see external agents.
pub async fn groups(state: &AppState, caller: &Caller) -> AppResult<Vec<GroupView>> {
    let mut conn = state.store.read().await?;
    let mut out = Vec::new();
    for group in Group::ALL {
        let role = group.role();
        if !may_write_to(caller.role(), caller.person.status, role) {
            continue;
        }
        let active_members = if caller.role().is_staff() {
            Some(
                people_store::count_active_in_role(&mut conn, caller.practice_id(), role.as_str())
                    .await?,
            )
        } else {
            None
        };
        out.push(GroupView {
            group,
            active_members,
        });
    }
    Ok(out)
}
