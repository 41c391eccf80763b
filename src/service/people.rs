//! The practice directory: listing, creating and changing people, one's own profile and
//! password, and the staff groups one may address.

use crate::domain::mailbox::{may_write_to, roles_a_client_may_write_to, Group};
use crate::domain::password::NewPassword;
use crate::domain::people::{
    may_change_person, may_create_person, may_see_email, may_see_person,
    sms_consent_survives_new_mobile, PersonChange,
};
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::domain::Code;
use crate::domain::{PersonId, PracticeId, Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::people::{self as people_store, ListFilter, PersonRow};
use crate::store::{is_unique_violation, practices, Conn};

use super::audit::{record, AuditEntry};
use super::cursor::List;
use super::{email_changes, notifications, person, throttle, AppState, Caller, Person};

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
    let next = if people.len() as i64 > limit {
        people.truncate(limit as usize);
        people.last().map(|p| {
            state
                .cursors
                .encode(List::People, holder, &(&p.name, p.id.as_str()))
        })
    } else {
        None
    };
    Ok((people.iter().map(|p| view(caller, p)).collect(), next))
}

/// Loads a person of the caller's practice that the caller may see; otherwise 404.
async fn visible_person(conn: &mut Conn, caller: &Caller, id: &str) -> AppResult<Person> {
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

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> AppResult<PersonView> {
    let mut conn = state.store.read().await?;
    let p = visible_person(&mut conn, caller, id).await?;
    Ok(view(caller, &p))
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
        Ok(()) => person(row),
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
#[tracing::instrument(skip_all)]
pub async fn resend_invitation(state: &AppState, caller: &Caller, id: &str) -> AppResult<()> {
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

/// A change to a person; `None` leaves a field as it is.
#[derive(Default)]
pub struct PersonPatch {
    pub name: Option<PersonName>,
    pub email: Option<EmailAddress>,
    /// `Some(None)` clears the number.
    pub mobile: Option<Option<MobileNumber>>,
    pub role: Option<Role>,
    pub status: Option<Status>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
}

/// Applies the patch but for the email address, which changes only through
/// [`email_changes::request`]. A mobile number someone else enters has not been consented
/// to: SMS consent lapses with it.
fn apply(target: &mut Person, patch: PersonPatch, is_self: bool) {
    if let Some(name) = patch.name {
        target.name = name.as_str().into();
    }
    if let Some(mobile) = patch.mobile {
        let mobile = mobile.map(|m| m.as_str().to_string());
        if mobile != target.mobile {
            target.consent_sms &= sms_consent_survives_new_mobile(is_self);
        }
        target.mobile = mobile;
    }
    if let Some(role) = patch.role {
        target.role = role;
    }
    if let Some(status) = patch.status {
        target.status = status;
    }
    if let Some(consent) = patch.consent_email {
        target.consent_email = consent;
    }
    if let Some(consent) = patch.consent_sms {
        target.consent_sms = consent;
    }
}

/// Changes a person of the practice under the directory rules.
#[tracing::instrument(skip_all)]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    mut patch: PersonPatch,
) -> AppResult<PersonView> {
    let mut tx = state.store.begin().await?;
    let mut target = visible_person(&mut tx, caller, id).await?;
    let is_self = target.id == caller.person.id;
    if is_self && patch.email.is_some() {
        return Err(AppError::invalid(
            "email",
            "email: change your own address through PATCH /me, with your current password.",
        ));
    }
    let new_email = new_address(&target, patch.email.take());
    let change = PersonChange {
        profile: patch.name.is_some() || patch.mobile.is_some(),
        email: new_email.is_some(),
        role: patch.role.filter(|r| *r != target.role),
        status: patch.status.filter(|s| *s != target.status),
        grants_consent: grants_consent(&target, &patch),
    };
    may_change_person(caller.role(), is_self, target.role, target.status, change)?;
    if change.status.is_some_and(Status::is_activated)
        && people_store::password_hash(&mut tx, target.id.as_str())
            .await?
            .is_none()
    {
        // Someone who never accepted their invitation has no password to sign in with.
        return Err(AppError::new(
            Code::InvitationPending,
            "This person has not accepted their invitation yet; resend it instead.",
        )
        .with_field("status"));
    }
    let was_activated = target.status.is_activated();
    let consent_before = (target.consent_email, target.consent_sms);
    apply(&mut target, patch, is_self);
    check_sms_consent(&target)?;
    if let Some(email) = &new_email {
        email_changes::request(&mut tx, state, &mut target, email, true).await?;
    }
    write_person(&mut tx, state, &mut target).await?;
    record_consent_change(&mut tx, state, caller, &target, consent_before).await?;
    if was_activated && target.status == Status::Disabled {
        super::sessions::end_all(&mut tx, target.id.as_str(), None).await?;
    }
    let action = match change.status {
        Some(Status::Disabled) => "disable_person",
        Some(_) => "change_person_status",
        None if change.role.is_some() => "change_person_role",
        None if new_email.is_some() => "request_email_change",
        None => "update_person",
    };
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(action, "person", target.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(view(caller, &target))
}

/// Writes a changed person unless someone else changed them since they were read (two
/// admins, or an admin and the person themself, at once): then 409 and nothing is written.
pub async fn write_person(conn: &mut Conn, state: &AppState, person: &mut Person) -> AppResult<()> {
    let read_at = person.updated_at;
    // Strictly later, so that two changes in one millisecond still tell apart.
    person.updated_at = state.now().max(read_at + 1);
    match people_store::update(conn, &person.to_row(), read_at).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AppError::new(
            Code::EditConflict,
            "This person was changed by someone else meanwhile; reload and try again.",
        )),
        Err(e) if is_unique_violation(&e, "people_practice_email_key", "people.email_norm") => {
            Err(email_taken())
        }
        Err(e) => Err(e.into()),
    }
}

fn check_sms_consent(person: &Person) -> AppResult<()> {
    if person.consent_sms && person.mobile.is_none() {
        return Err(AppError::invalid(
            "consent_sms",
            "consent_sms needs a mobile number; set mobile first.",
        ));
    }
    Ok(())
}

pub struct Me {
    pub person: Person,
    pub practice_slug: String,
    pub practice_name: String,
}

pub async fn me(state: &AppState, caller: &Caller) -> AppResult<Me> {
    let mut conn = state.store.read().await?;
    let practice = practices::find(&mut conn, caller.practice_id())
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("practice of a signed-in person is missing"))
        })?;
    Ok(Me {
        person: caller.person.clone(),
        practice_slug: practice.slug,
        practice_name: practice.name,
    })
}

/// Changes one's own name, mobile number, notification consents and (with the current
/// password, and only once the new address is confirmed) email address.
#[tracing::instrument(skip_all)]
pub async fn update_me(
    state: &AppState,
    caller: &Caller,
    mut patch: PersonPatch,
    current_password: Option<&str>,
) -> AppResult<Me> {
    if patch.role.is_some() || patch.status.is_some() {
        return Err(AppError::forbidden(
            "Your role and status are changed by your practice.",
        ));
    }
    let new_email = new_address(&caller.person, patch.email.take());
    if new_email.is_some() {
        verify_current_password(state, caller, current_password).await?;
    }
    let mut tx = state.store.begin().await?;
    let mut target = visible_person(&mut tx, caller, caller.person.id.as_str()).await?;
    let consent_before = (target.consent_email, target.consent_sms);
    apply(&mut target, patch, true);
    check_sms_consent(&target)?;
    if let Some(email) = &new_email {
        email_changes::request(&mut tx, state, &mut target, email, false).await?;
    }
    write_person(&mut tx, state, &mut target).await?;
    record_consent_change(&mut tx, state, caller, &target, consent_before).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(
            if new_email.is_some() {
                "request_email_change"
            } else {
                "update_own_profile"
            },
            "person",
            target.id.as_str(),
        ),
    )
    .await?;
    tx.commit().await?;
    let caller = Caller {
        person: target,
        ..caller.clone()
    };
    me(state, &caller).await
}

/// The requested address, unless it is the one the person already has.
fn new_address(target: &Person, email: Option<EmailAddress>) -> Option<EmailAddress> {
    email.filter(|e| e.normalized() != target.email.to_lowercase())
}

/// The consent a patch switches on, if any (for the rule that only the person grants it).
/// SMS consent given for one number is not consent for another: asking to keep it while
/// changing the number grants it too.
fn grants_consent(target: &Person, patch: &PersonPatch) -> Option<&'static str> {
    let new_mobile = patch
        .mobile
        .as_ref()
        .is_some_and(|m| m.as_ref().map(|m| m.as_str()) != target.mobile.as_deref());
    if patch.consent_email == Some(true) && !target.consent_email {
        Some("consent_email")
    } else if patch.consent_sms == Some(true) && (!target.consent_sms || new_mobile) {
        Some("consent_sms")
    } else {
        None
    }
}

/// Audits each consent that changed, with who changed it.
async fn record_consent_change(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    target: &Person,
    (email_before, sms_before): (bool, bool),
) -> AppResult<()> {
    let changes = [
        (
            email_before,
            target.consent_email,
            "grant_consent_email",
            "withdraw_consent_email",
        ),
        (
            sms_before,
            target.consent_sms,
            "grant_consent_sms",
            "withdraw_consent_sms",
        ),
    ];
    for (before, after, granted, withdrawn) in changes {
        if before != after {
            let action = if after { granted } else { withdrawn };
            record(
                conn,
                state,
                caller,
                AuditEntry::new(action, "person", target.id.as_str()),
            )
            .await?;
        }
    }
    Ok(())
}

/// Checks the caller's current password (for a change that needs it). Guesses count against
/// the same limit as sign-ins, per session; the right password is no failed attempt,
/// whatever becomes of the change.
async fn verify_current_password(
    state: &AppState,
    caller: &Caller,
    current: Option<&str>,
) -> AppResult<()> {
    let current = current.ok_or_else(|| {
        AppError::invalid(
            "current_password",
            "current_password is required for this change.",
        )
    })?;
    let hash = {
        let mut conn = state.store.read().await?;
        people_store::password_hash(&mut conn, caller.person.id.as_str()).await?
    };
    // Counted per session: guesses made elsewhere against the account do not stop a
    // signed-in person, and a stolen session cannot guess on without limit.
    let key = throttle::session_key(caller.session_id.as_str());
    let attempt = throttle::count_attempt(state, &caller.meta, &key).await??;
    if !state.hasher.verify(current, hash.as_deref()).await? {
        return Err(AppError::new(
            Code::CurrentPasswordIncorrect,
            "current_password is not your current password.",
        )
        .with_field("current_password"));
    }
    let mut tx = state.store.begin().await?;
    throttle::succeeded(&mut tx, &attempt).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes one's own password; every other session of the person ends. Guesses of the
/// current password count against the same limit as sign-ins.
#[tracing::instrument(skip_all)]
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: &str,
    new: &str,
) -> AppResult<()> {
    verify_current_password(state, caller, Some(current)).await?;
    let new = NewPassword::parse(
        "new_password",
        new,
        &[&caller.person.name, &caller.person.email],
    )?;
    let new_hash = state.hasher.hash(new.expose()).await?;
    let mut tx = state.store.begin().await?;
    // Nothing here writes the status: an account disabled meanwhile stays disabled.
    if !people_store::set_password(&mut tx, caller.person.id.as_str(), &new_hash, state.now())
        .await?
    {
        return Err(AppError::unauthenticated(
            "Your session has ended; sign in again.",
        ));
    }
    super::sessions::end_all(
        &mut tx,
        caller.person.id.as_str(),
        Some(caller.session_id.as_str()),
    )
    .await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("change_password", "person", caller.person.id.as_str()),
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
