//! Who may see, create and change whom in a practice's directory (DESIGN.md §1, §2).
//! Every function here is pure; the service layer feeds it rows and obeys the answer.

use super::mailbox::may_write_to;
use super::{Role, RuleViolation, Status};
use crate::domain::Code;

/// Whether `viewer` may see `target` in the directory (both of one practice).
/// Staff see everyone; a client sees themself and the active staff they may write to.
pub fn may_see_person(
    viewer_role: Role,
    viewer_status: Status,
    is_self: bool,
    target_role: Role,
    target_status: Status,
) -> bool {
    if is_self || viewer_role.is_staff() {
        return true;
    }
    may_write_to(viewer_role, viewer_status, target_role) && target_status == Status::Active
}

/// Clients never see another person's email address; staff do.
pub fn may_see_email(viewer_role: Role, is_self: bool) -> bool {
    is_self || viewer_role.is_staff()
}

/// Admins create anyone; other staff create clients; clients create no one.
pub fn may_create_person(actor: Role, new_role: Role) -> Result<(), RuleViolation> {
    match (actor, new_role) {
        (Role::Admin, _) => Ok(()),
        (actor, Role::Client) if actor.is_staff() => Ok(()),
        (Role::Client, _) => Err(RuleViolation::new(
            Code::Forbidden,
            "Clients cannot create people.",
        )),
        _ => Err(RuleViolation::field(
            Code::Forbidden,
            "role",
            "Only administrators create staff accounts.",
        )),
    }
}

/// What a change to a person touches, for [`may_change_person`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PersonChange {
    pub profile: bool,
    /// A new email address (it counts once confirmed through a link sent to it).
    pub email: bool,
    pub role: Option<Role>,
    pub status: Option<Status>,
    /// A notification consent switched on: the request field that does it.
    pub grants_consent: Option<&'static str>,
}

/// Whether `actor` may apply `change` to `target`. Admins change anyone but not their own
/// role or status (so a practice cannot lock itself out); other staff change clients only.
/// Only an admin changes another person's email: whoever controls the address controls the
/// account through a password reset. Consent to notifications is the person's own act:
/// staff may withdraw it, never grant it.
pub fn may_change_person(
    actor: Role,
    is_self: bool,
    target_role: Role,
    target_status: Status,
    change: PersonChange,
) -> Result<(), RuleViolation> {
    may_change_account_of(actor, target_role)?;
    may_change_email(actor, is_self, change)?;
    may_grant_consent(is_self, change)?;
    may_change_own_account(is_self, change)?;
    may_change_role(target_role, change)?;
    if let Some(to) = change.status {
        status_transition(actor, change.role.unwrap_or(target_role), target_status, to)?;
    }
    Ok(())
}

/// Clients change no one; staff other than admins change clients only.
fn may_change_account_of(actor: Role, target_role: Role) -> Result<(), RuleViolation> {
    if !actor.is_staff() {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "Clients cannot change people; use /api/v1/me for your own profile.",
        ));
    }
    if actor != Role::Admin && target_role.is_staff() {
        return Err(RuleViolation::new(
            Code::Forbidden,
            "Only administrators change staff accounts.",
        ));
    }
    Ok(())
}

/// Only an admin changes another person's email address.
fn may_change_email(actor: Role, is_self: bool, change: PersonChange) -> Result<(), RuleViolation> {
    if change.email && !is_self && actor != Role::Admin {
        return Err(RuleViolation::field(
            Code::Forbidden,
            "email",
            "Only administrators change another person's email address.",
        ));
    }
    Ok(())
}

/// Only the person themself switches a notification consent on.
fn may_grant_consent(is_self: bool, change: PersonChange) -> Result<(), RuleViolation> {
    if let (Some(field), false) = (change.grants_consent, is_self) {
        return Err(RuleViolation::field(
            Code::ConsentIsPersonal,
            field,
            format!(
                "{field}: only the person themself grants consent to notifications (staff may \
                 only withdraw it)."
            ),
        ));
    }
    Ok(())
}

/// No one changes their own role or status.
fn may_change_own_account(is_self: bool, change: PersonChange) -> Result<(), RuleViolation> {
    if is_self && (change.role.is_some() || change.status.is_some()) {
        return Err(RuleViolation::field(
            Code::CannotChangeOwnAccount,
            if change.role.is_some() {
                "role"
            } else {
                "status"
            },
            "You cannot change your own role or status.",
        ));
    }
    Ok(())
}

/// A new role stays on the same side: a client stays a client, staff stay staff.
fn may_change_role(target_role: Role, change: PersonChange) -> Result<(), RuleViolation> {
    if let Some(new_role) = change.role {
        if new_role.is_staff() != target_role.is_staff() {
            return Err(RuleViolation::field(
                Code::RoleChangeNotAllowed,
                "role",
                "A client cannot become staff, nor staff a client; create a new account instead.",
            ));
        }
    }
    Ok(())
}

/// A mobile number someone else enters has not been consented to: SMS consent survives a
/// new number only when the person sets it themself.
pub fn sms_consent_survives_new_mobile(is_self: bool) -> bool {
    is_self
}

/// The allowed status changes: `inactive` exists for clients only; an invited person
/// becomes active by accepting their invitation, not by a change; only admins disable
/// accounts or bring disabled ones back.
pub fn status_transition(
    actor: Role,
    role: Role,
    from: Status,
    to: Status,
) -> Result<(), RuleViolation> {
    use Status::*;
    if from == to {
        return Ok(());
    }
    if to == Inactive && role != Role::Client {
        return Err(RuleViolation::field(
            Code::StatusNotAllowed,
            "status",
            "Only clients can be set inactive; disable a staff account instead.",
        ));
    }
    if to == Invited {
        return Err(RuleViolation::field(
            Code::StatusNotAllowed,
            "status",
            "A person cannot be set back to invited; resend the invitation instead.",
        ));
    }
    if from == Invited && to != Disabled {
        return Err(RuleViolation::field(
            Code::InvitationPending,
            "status",
            "This person has not accepted their invitation yet.",
        ));
    }
    if (to == Disabled || from == Disabled) && actor != Role::Admin {
        return Err(RuleViolation::field(
            Code::Forbidden,
            "status",
            "Only administrators disable accounts or enable disabled ones.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;
    use Status::*;

    #[test]
    fn clients_see_only_active_staff_they_may_write_to() {
        assert!(may_see_person(Client, Active, false, Provider, Active));
        assert!(may_see_person(Client, Active, false, FrontOffice, Active));
        assert!(may_see_person(Client, Active, false, Biller, Active));
        assert!(!may_see_person(
            Client,
            Active,
            false,
            ExternalAgent,
            Active
        ));
        assert!(!may_see_person(Client, Active, false, Admin, Active));
        assert!(!may_see_person(Client, Active, false, Client, Active));
        assert!(!may_see_person(Client, Active, false, Provider, Invited));
        assert!(!may_see_person(Client, Active, false, Provider, Disabled));
        assert!(may_see_person(Client, Inactive, true, Client, Inactive));
    }

    #[test]
    fn inactive_clients_see_only_front_office_and_billers() {
        assert!(!may_see_person(Client, Inactive, false, Provider, Active));
        assert!(may_see_person(Client, Inactive, false, FrontOffice, Active));
        assert!(may_see_person(Client, Inactive, false, Biller, Active));
    }

    #[test]
    fn staff_see_everyone() {
        for role in Role::ALL {
            assert!(may_see_person(FrontOffice, Active, false, role, Invited));
        }
    }

    #[test]
    fn clients_never_see_emails_of_others() {
        assert!(!may_see_email(Client, false));
        assert!(may_see_email(Client, true));
        assert!(may_see_email(Biller, false));
    }

    #[test]
    fn only_admins_create_staff() {
        assert!(may_create_person(Admin, Provider).is_ok());
        assert!(may_create_person(Provider, Client).is_ok());
        assert_eq!(
            may_create_person(Provider, Biller).unwrap_err().code,
            Code::Forbidden
        );
        assert_eq!(
            may_create_person(Client, Client).unwrap_err().code,
            Code::Forbidden
        );
    }

    #[test]
    fn inactive_is_for_clients_only() {
        let err = status_transition(Admin, Provider, Active, Inactive).unwrap_err();
        assert_eq!(err.code, Code::StatusNotAllowed);
        assert!(status_transition(FrontOffice, Client, Active, Inactive).is_ok());
        assert!(status_transition(FrontOffice, Client, Inactive, Active).is_ok());
    }

    #[test]
    fn invited_people_activate_only_by_accepting() {
        let err = status_transition(Admin, Client, Invited, Active).unwrap_err();
        assert_eq!(err.code, Code::InvitationPending);
        assert!(status_transition(Admin, Client, Invited, Disabled).is_ok());
    }

    #[test]
    fn only_admins_disable() {
        assert_eq!(
            status_transition(Provider, Client, Active, Disabled)
                .unwrap_err()
                .code,
            Code::Forbidden
        );
        assert!(status_transition(Admin, Client, Active, Disabled).is_ok());
        assert!(status_transition(Admin, Client, Disabled, Active).is_ok());
    }

    #[test]
    fn staff_other_than_admins_change_clients_only() {
        let change = PersonChange {
            profile: true,
            ..Default::default()
        };
        assert!(may_change_person(Provider, false, Client, Active, change).is_ok());
        assert_eq!(
            may_change_person(Provider, false, Biller, Active, change)
                .unwrap_err()
                .code,
            Code::Forbidden
        );
        assert_eq!(
            may_change_person(Client, true, Client, Active, change)
                .unwrap_err()
                .code,
            Code::Forbidden
        );
    }

    #[test]
    fn only_admins_change_another_persons_email() {
        let change = PersonChange {
            email: true,
            ..Default::default()
        };
        for actor in [Provider, FrontOffice, Biller, ExternalAgent] {
            let err = may_change_person(actor, false, Client, Active, change).unwrap_err();
            assert_eq!((err.code, err.field), (Code::Forbidden, Some("email")));
        }
        assert!(may_change_person(Admin, false, Client, Active, change).is_ok());
        assert!(may_change_person(Admin, false, Provider, Active, change).is_ok());
    }

    #[test]
    fn staff_withdraw_consent_but_never_grant_it() {
        let grant = PersonChange {
            grants_consent: Some("consent_sms"),
            ..Default::default()
        };
        for actor in [Admin, Provider, FrontOffice, Biller] {
            let err = may_change_person(actor, false, Client, Active, grant).unwrap_err();
            assert_eq!(
                (err.code, err.field),
                (Code::ConsentIsPersonal, Some("consent_sms"))
            );
        }
        let withdraw = PersonChange {
            profile: true,
            ..Default::default()
        };
        assert!(may_change_person(Biller, false, Client, Active, withdraw).is_ok());
    }

    #[test]
    fn nobody_changes_their_own_status_or_role() {
        let change = PersonChange {
            status: Some(Disabled),
            ..Default::default()
        };
        assert_eq!(
            may_change_person(Admin, true, Admin, Active, change)
                .unwrap_err()
                .code,
            Code::CannotChangeOwnAccount
        );
    }

    #[test]
    fn clients_and_staff_do_not_swap_sides() {
        let change = PersonChange {
            role: Some(Provider),
            ..Default::default()
        };
        assert_eq!(
            may_change_person(Admin, false, Client, Active, change)
                .unwrap_err()
                .code,
            Code::RoleChangeNotAllowed
        );
    }
}
