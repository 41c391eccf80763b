//! Changing a person under the directory rules: a patch applied, checked and written
//! unless someone else changed them meanwhile; consents granted only by the person.

use crate::domain::conversations::Autoresponder;
use crate::domain::ids::PersonId;
use crate::domain::people::{may_change_person, sms_consent_survives_new_mobile, PersonChange};
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::domain::Code;
use crate::domain::{Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::people::{self as people_store};
use crate::store::{is_unique_violation, Conn};

use super::{email_taken, may_start_threads_of, view, visible_person, PersonView};
use crate::service::audit::{record, AuditEntry};
use crate::service::mailbox::conversations::set_may_start_threads;
use crate::service::mailbox::teams;
use crate::service::{email_changes, AppState, Caller, Person};
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
    /// For a client: whether they may start threads (staff decide; see the practice
    /// setting `new_clients_can_start_threads`).
    pub may_start_threads: Option<bool>,
    /// One's own autoresponder (staff): `Some(None)` turns it off. Only through `/me`.
    pub autoresponder: Option<Option<Autoresponder>>,
}

/// Applies the patch but for the email address, which changes only through
/// [`email_changes::request`]. A mobile number someone else enters has not been consented
/// to: SMS consent lapses with it.
pub(super) fn apply(target: &mut Person, patch: PersonPatch, is_self: bool) {
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
#[tracing::instrument(skip_all, fields(person_id = %id))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &PersonId,
    mut patch: PersonPatch,
) -> AppResult<PersonView> {
    let id = id.as_str();
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
    if change.status.is_some_and(Status::is_activated) {
        may_be_activated(&mut tx, &target).await?;
    }
    if patch.autoresponder.is_some() {
        return Err(AppError::invalid(
            "autoresponder",
            "autoresponder: each staff member sets their own, through PATCH /me.",
        ));
    }
    let start_threads = patch.may_start_threads.take();
    if let Some(may) = start_threads {
        if !caller.role().is_staff() || target.role != Role::Client {
            return Err(AppError::invalid(
                "may_start_threads",
                "may_start_threads: staff set it, and only for clients.",
            ));
        }
        set_may_start_threads(
            &mut tx,
            state,
            caller.practice_id(),
            target.id.as_str(),
            may,
        )
        .await?;
    }
    let was_activated = target.status.is_activated();
    let before = (target.role, target.status);
    if change.role.is_some() || change.status.is_some() {
        teams::lock_membership(&mut tx, caller.practice_id()).await?;
    }
    let consent_before = (target.consent_email, target.consent_sms);
    apply(&mut target, patch, is_self);
    check_sms_consent(&target)?;
    if let Some(email) = &new_email {
        email_changes::request(&mut tx, state, &mut target, email, true).await?;
    }
    write_person(&mut tx, state, &mut target).await?;
    if before != (target.role, target.status) {
        teams::sync_member(
            &mut tx,
            state,
            caller.practice_id(),
            target.id.as_str(),
            Some(before),
            (target.role, target.status),
        )
        .await?;
    }
    record_consent_change(&mut tx, state, caller, &target, consent_before).await?;
    if was_activated && target.status == Status::Disabled {
        crate::service::sessions::end_all(&mut tx, target.id.as_str(), None).await?;
    }
    let action = audit_action(&change);
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new(action, "person", target.id.as_str()),
    )
    .await?;
    let mut shown = view(caller, &target);
    shown.may_start_threads = may_start_threads_of(&mut tx, caller, &target).await?;
    tx.commit().await?;
    Ok(shown)
}

/// Someone who never accepted their invitation has no password to sign in with: they
/// cannot be made active, only invited again.
async fn may_be_activated(conn: &mut Conn, target: &Person) -> AppResult<()> {
    if people_store::password_hash(conn, target.id.as_str())
        .await?
        .is_none()
    {
        return Err(AppError::field(
            Code::InvitationPending,
            "status",
            "This person has not accepted their invitation yet; resend it instead.",
        ));
    }
    Ok(())
}

/// How a change to a person is named in the audit log.
fn audit_action(change: &PersonChange) -> &'static str {
    match change.status {
        Some(Status::Disabled) => "disable_person",
        Some(_) => "change_person_status",
        None if change.role.is_some() => "change_person_role",
        None if change.email => "request_email_change",
        None => "update_person",
    }
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

pub(super) fn check_sms_consent(person: &Person) -> AppResult<()> {
    if person.consent_sms && person.mobile.is_none() {
        return Err(AppError::invalid(
            "consent_sms",
            "consent_sms needs a mobile number; set mobile first.",
        ));
    }
    Ok(())
}

/// The requested address, unless it is the one the person already has.
pub(super) fn new_address(target: &Person, email: Option<EmailAddress>) -> Option<EmailAddress> {
    email.filter(|e| e.normalized() != target.email.to_lowercase())
}

/// The consent a patch switches on, if any (for the rule that only the person grants it).
/// SMS consent given for one number is not consent for another: asking to keep it while
/// changing the number grants it too.
pub(super) fn grants_consent(target: &Person, patch: &PersonPatch) -> Option<&'static str> {
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
pub(super) async fn record_consent_change(
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
