//! One's own profile, consents, email address and password.

use crate::domain::conversations::Autoresponder;
use crate::domain::password::NewPassword;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::conversations as conversation_store;
use crate::store::people::{self as people_store};
use crate::store::practices;

use crate::service::audit::{record, AuditEntry};
use crate::service::{email_changes, throttle, AppState, Caller, Person};

use super::changes::{apply, check_sms_consent, new_address, record_consent_change};
use super::{visible_person, write_person, PersonPatch};
pub struct Me {
    pub person: Person,
    pub practice_slug: String,
    pub practice_name: String,
    /// Staff: their autoresponder, if set.
    pub autoresponder: Option<Autoresponder>,
}

pub async fn me(state: &AppState, caller: &Caller) -> AppResult<Me> {
    let mut conn = state.store.read().await?;
    let practice = practices::find(&mut conn, caller.practice_id())
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("practice of a signed-in person is missing"))
        })?;
    let autoresponder =
        match conversation_store::autoresponder(&mut conn, caller.person.id.as_str()).await? {
            Some((text, periods)) => Some(Autoresponder {
                text,
                periods: serde_json::from_str(&periods).map_err(|e| {
                    AppError::internal(anyhow::Error::new(e).context("reading an autoresponder"))
                })?,
            }),
            None => None,
        };
    Ok(Me {
        autoresponder,
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
    let autoresponder = patch.autoresponder.take();
    if autoresponder.is_some() && !caller.role().is_staff() {
        return Err(
            AppError::forbidden("Autoresponders are for staff.").with_field("autoresponder")
        );
    }
    let new_email = new_address(&caller.person, patch.email.take());
    if new_email.is_some() {
        verify_current_password(state, caller, current_password).await?;
    }
    let mut tx = state.store.begin().await?;
    if let Some(auto) = &autoresponder {
        let periods = auto
            .as_ref()
            .map(|a| serde_json::to_string(&a.periods))
            .transpose()
            .map_err(|e| AppError::internal(e.into()))?;
        let value = auto
            .as_ref()
            .zip(periods.as_deref())
            .map(|(a, p)| (a.text.as_str(), p));
        conversation_store::set_autoresponder(
            &mut tx,
            caller.practice_id(),
            caller.person.id.as_str(),
            value,
            state.now(),
        )
        .await?;
        let action = if auto.is_some() {
            "set_autoresponder"
        } else {
            "clear_autoresponder"
        };
        record(
            &mut tx,
            state,
            caller,
            AuditEntry::new(action, "person", caller.person.id.as_str()),
        )
        .await?;
    }
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
    crate::service::sessions::end_all(
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
