//! Practices: the first-start setup link, and creating a practice with its administrator
//! (from the setup page or the command line).

use crate::auth::token_hash;
use crate::domain::password::NewPassword;
use crate::domain::values::{EmailAddress, MobileNumber, PersonName, PracticeName, PracticeSlug};
use crate::domain::Code;
use crate::domain::{PracticeId, Role};
use crate::error::{AppError, AppResult};
use crate::store::practices::{self as practice_store, PracticeRow};
use crate::store::{is_unique_violation, tokens, Conn};

use super::audit::{record_raw, AuditEntry};
use super::people::{insert_person, NewPerson};
use super::{invitations, AppState, Person, RequestMeta};

const SETUP_PURPOSE: &str = "setup";
const SETUP_VALID_HOURS: i64 = 24;

/// The raw fields of a new practice and its first administrator.
pub struct NewPracticeInput<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub admin_name: &'a str,
    pub admin_email: &'a str,
    /// `None`: the administrator is invited and gets a one-time link instead.
    pub admin_password: Option<&'a str>,
}

pub struct CreatedPractice {
    pub practice: PracticeRow,
    pub admin: Person,
    /// The administrator's invitation link, when no password was given.
    pub invitation_url: Option<String>,
}

/// Creates a practice and its administrator in one transaction.
#[tracing::instrument(skip_all)]
pub async fn create_practice(
    state: &AppState,
    meta: &RequestMeta,
    input: NewPracticeInput<'_>,
) -> AppResult<CreatedPractice> {
    create_practice_consuming(state, meta, input, None).await
}

async fn create_practice_consuming(
    state: &AppState,
    meta: &RequestMeta,
    input: NewPracticeInput<'_>,
    setup_token: Option<&str>,
) -> AppResult<CreatedPractice> {
    let slug = PracticeSlug::parse("slug", input.slug)?;
    let name = PracticeName::parse("name", input.name)?;
    let admin = NewPerson {
        role: Role::Admin,
        name: PersonName::parse("admin_name", input.admin_name)?,
        email: EmailAddress::parse("admin_email", input.admin_email)?,
        mobile: None::<MobileNumber>,
    };
    let hash = admin_password_hash(state, &admin, input.admin_password).await?;
    let now = state.now();
    let practice = PracticeRow {
        id: PracticeId::generate().into_string(),
        slug: slug.as_str().into(),
        name: name.as_str().into(),
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    settle_setup_link(&mut tx, setup_token, now).await?;
    match practice_store::insert(&mut tx, &state.keys, &practice).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e, "practices_slug_key", "practices.slug") => {
            return Err(AppError::field(
                Code::SlugTaken,
                "slug",
                "slug is already used by another practice.",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let practice_id = PracticeId::from_trusted(practice.id.clone());
    let admin = insert_person(&mut tx, state, &practice_id, &admin, hash.as_deref()).await?;
    let invitation = match hash {
        Some(_) => None,
        None => Some(invitations::issue(&mut tx, state, &admin).await?),
    };
    for entry in [
        AuditEntry::new("create_practice", "practice", &practice.id),
        AuditEntry::new("create_person", "person", admin.id.as_str()),
    ] {
        record_raw(&mut tx, state, Some(&practice.id), None, None, meta, entry).await?;
    }
    tx.commit().await?;
    Ok(CreatedPractice {
        practice,
        invitation_url: invitation.map(|t| invitations::url(state, &t)),
        admin,
    })
}

/// The hash of the first admin's password, when one is given (otherwise they are invited).
async fn admin_password_hash(
    state: &AppState,
    admin: &NewPerson,
    raw: Option<&str>,
) -> AppResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let context = [admin.name.as_str(), admin.email.as_str()];
    let password = NewPassword::parse("password", raw, &context)?;
    Ok(Some(state.hasher.hash(password.expose()).await?))
}

/// The setup link creates the first practice only; a practice made otherwise ends any
/// setup link still printed on a console.
async fn settle_setup_link(tx: &mut Conn, setup_token: Option<&str>, now: i64) -> AppResult<()> {
    match setup_token {
        Some(token) => {
            let consumed = tokens::consume(tx, &token_hash(token), SETUP_PURPOSE, now).await?;
            if consumed.is_none() || practice_store::count(tx).await? > 0 {
                return Err(invalid_setup_link());
            }
        }
        None => tokens::revoke_unused(tx, SETUP_PURPOSE, None).await?,
    }
    Ok(())
}

/// Creates a person from the command line: active with a password, or invited.
pub async fn create_user(
    state: &AppState,
    practice_slug: &str,
    role: Role,
    email: &str,
    name: &str,
    password: Option<&str>,
) -> AppResult<(Person, Option<String>)> {
    let new = NewPerson {
        role,
        name: PersonName::parse("name", name)?,
        email: EmailAddress::parse("email", email)?,
        mobile: None,
    };
    let hash = match password {
        Some(raw) => {
            let password =
                NewPassword::parse("password", raw, &[new.name.as_str(), new.email.as_str()])?;
            Some(state.hasher.hash(password.expose()).await?)
        }
        None => None,
    };
    let mut tx = state.store.begin().await?;
    let practice = practice_store::find_by_slug(&mut tx, &practice_slug.to_ascii_lowercase())
        .await?
        .ok_or_else(|| AppError::not_found("practice").with_field("practice"))?;
    let practice_id = PracticeId::from_trusted(practice.id.clone());
    let person = insert_person(&mut tx, state, &practice_id, &new, hash.as_deref()).await?;
    let invitation = match hash {
        Some(_) => None,
        None => Some(invitations::issue(&mut tx, state, &person).await?),
    };
    record_raw(
        &mut tx,
        state,
        Some(&practice.id),
        None,
        None,
        &RequestMeta::default(),
        AuditEntry::new("create_person", "person", person.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok((person, invitation.map(|t| invitations::url(state, &t))))
}

/// On an empty database, a fresh one-time setup link (earlier ones stop working).
pub async fn setup_link_if_empty(state: &AppState) -> AppResult<Option<String>> {
    let mut tx = state.store.begin().await?;
    if practice_store::count(&mut tx).await? > 0 {
        return Ok(None);
    }
    let link = super::links::NewLink {
        purpose: SETUP_PURPOSE,
        person_id: None,
        address: None,
        valid_ms: SETUP_VALID_HOURS * 3_600_000,
    };
    let token = super::links::issue(&mut tx, state, link).await?;
    tx.commit().await?;
    Ok(Some(format!("{}/setup/{token}", state.public_url)))
}

fn invalid_setup_link() -> AppError {
    AppError::new(
        Code::InvalidToken,
        "This setup link is unknown, has been used, or has expired. Restart the server on an empty database for a new one.",
    )
}

pub async fn setup_link_is_valid(state: &AppState, token: &str) -> AppResult<bool> {
    let mut conn = state.store.read().await?;
    Ok(
        tokens::find_valid(&mut conn, &token_hash(token), SETUP_PURPOSE, state.now())
            .await?
            .is_some(),
    )
}

/// Creates the first practice and its administrator from the setup page; the link is
/// used up in the same transaction.
#[tracing::instrument(skip_all)]
pub async fn complete_setup(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    input: NewPracticeInput<'_>,
) -> AppResult<CreatedPractice> {
    if !setup_link_is_valid(state, token).await? {
        return Err(invalid_setup_link());
    }
    if input.admin_password.is_none() {
        return Err(AppError::invalid("password", "password is required."));
    }
    create_practice_consuming(state, meta, input, Some(token)).await
}

/// The address name (slug) of a practice.
pub async fn slug_of(state: &AppState, practice_id: &str) -> AppResult<String> {
    let mut conn = state.store.read().await?;
    practice_store::find(&mut conn, practice_id)
        .await?
        .map(|p| p.slug)
        .ok_or_else(|| AppError::not_found("practice"))
}

/// The practice a portal address names, if there is one.
pub async fn portal(state: &AppState, slug: &str) -> AppResult<Option<PracticeRow>> {
    let mut conn = state.store.read().await?;
    Ok(practice_store::find_by_slug(&mut conn, &slug.trim().to_ascii_lowercase()).await?)
}
