//! Signing in and out, and turning a bearer token back into a caller.

use crate::auth::{new_token, token_hash};
use crate::domain::values::EmailAddress;
use crate::domain::Code;
use crate::domain::SessionId;
use crate::error::{AppError, AppResult};
use crate::store::people::PersonRow;
use crate::store::practices::PracticeRow;
use crate::store::sessions::SessionRow;
use crate::store::Conn;
use crate::store::{devices, people as people_store, practices, sessions, sign_in_attempts};

use super::audit::{record, record_raw, AuditEntry};
use super::{person, throttle, AppState, Caller, Person, RequestMeta};

/// Trusted devices remembered per person; the oldest go first.
const MAX_DEVICES: i64 = 20;

/// A session is refreshed in the database at most this often, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

pub struct SignedIn {
    pub token: String,
    /// Identifies this device at the next sign-in (see [`sign_in`]).
    pub device_token: String,
    pub expires_at: i64,
    pub person: Person,
    pub practice: PracticeRow,
}

fn invalid_credentials() -> AppError {
    // One answer for an unknown practice, an unknown address, a wrong password and an
    // account that cannot sign in: nothing tells them apart.
    AppError::new(
        Code::InvalidCredentials,
        "The practice, email or password is not correct.",
    )
}

/// Signs a person in with their practice, email and password.
///
/// Failed attempts are counted per account, so that guessing one person's password stops
/// after a few tries. A device that signed in as that person before (its `device_token`,
/// from the answer or the device cookie) is counted on its own instead (OWASP's device
/// cookies): guesses from elsewhere lock out only the untrusted, and never lock the person
/// out of their own device.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: &AppState,
    meta: &RequestMeta,
    practice_slug: &str,
    email: &str,
    password: &str,
    device_token: Option<&str>,
) -> AppResult<SignedIn> {
    if practice_slug.trim().is_empty() {
        return Err(AppError::invalid("practice", "practice is required."));
    }
    let email = EmailAddress::parse("email", email)?;
    if password.is_empty() {
        return Err(AppError::invalid("password", "password is required."));
    }
    let slug = practice_slug.trim().to_ascii_lowercase();
    let claimed = look_up(state, &slug, &email, device_token).await?;

    // Counted before the password is checked, so parallel guesses cannot slip through.
    let key = match &claimed.trusted_device {
        Some(device) => throttle::device_key(device),
        None => throttle::account_key(&slug, &email.normalized()),
    };
    let attempt = match throttle::count_attempt(state, meta, &key).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            audit_failure(state, meta, &claimed, "throttled").await?;
            return Err(throttled);
        }
    };

    let hash = claimed.found.as_ref().and_then(|(_, hash)| hash.as_deref());
    let password_ok = state.hasher.verify(password, hash).await?;
    let signed_in = match (&claimed.practice, &claimed.found) {
        (Some(practice), Some((row, _))) if password_ok => {
            let person = person(row.clone())?;
            person
                .status
                .is_activated()
                .then(|| (practice.clone(), person))
        }
        _ => None,
    };
    let Some((practice, person)) = signed_in else {
        audit_failure(state, meta, &claimed, "failure").await?;
        return Err(invalid_credentials());
    };
    open_session(
        state,
        meta,
        practice,
        person,
        claimed.trusted_device,
        &attempt,
    )
    .await
}

/// What a sign-in names: the practice, the person with their password hash, and whether
/// the device presented signed in as that person before.
struct Claimed {
    practice: Option<PracticeRow>,
    found: Option<(PersonRow, Option<String>)>,
    trusted_device: Option<String>,
}

/// Finds the practice, the person and the device a sign-in names (any may be missing).
async fn look_up(
    state: &AppState,
    slug: &str,
    email: &EmailAddress,
    device_token: Option<&str>,
) -> AppResult<Claimed> {
    let mut conn = state.store.read().await?;
    let practice = practices::find_by_slug(&mut conn, slug).await?;
    let found = match &practice {
        Some(p) => people_store::find_for_sign_in(&mut conn, &p.id, &email.normalized()).await?,
        None => None,
    };
    let trusted_device = match (device_token, &found) {
        (Some(device), Some((person, _))) => {
            devices::person_of(&mut conn, &token_hash(device), state.now())
                .await?
                .filter(|owner| *owner == person.id)
                .map(|_| device.to_string())
        }
        _ => None,
    };
    Ok(Claimed {
        practice,
        found,
        trusted_device,
    })
}

/// Audits a refused sign-in (`failure` or `throttled`) and counts it in the metrics.
async fn audit_failure(
    state: &AppState,
    meta: &RequestMeta,
    claimed: &Claimed,
    outcome: &'static str,
) -> AppResult<()> {
    let practice_id = claimed.practice.as_ref().map(|p| p.id.as_str());
    let person_id = claimed.found.as_ref().map(|(p, _)| p.id.as_str());
    let mut tx = state.store.begin().await?;
    record_raw(
        &mut tx,
        state,
        practice_id,
        person_id,
        None,
        meta,
        AuditEntry {
            action: "sign_in",
            object_type: Some("person"),
            object_id: person_id,
            outcome,
        },
    )
    .await?;
    tx.commit().await?;
    state.metrics.sign_in_failures.inc();
    Ok(())
}

/// Opens a session for a person whose password was right, trusts the device they signed
/// in from, clears their failed attempts and audits the sign-in.
async fn open_session(
    state: &AppState,
    meta: &RequestMeta,
    practice: PracticeRow,
    person: Person,
    trusted_device: Option<String>,
    attempt: &throttle::Attempt,
) -> AppResult<SignedIn> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let token = new_token();
    let session = SessionRow {
        id: SessionId::generate().into_string(),
        person_id: person.id.to_string(),
        practice_id: practice.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.config.auth.session_max_hours * 3_600_000,
    };
    sessions::insert(&mut tx, &session, &token_hash(&token)).await?;
    let device_token = match trusted_device {
        Some(device) => device,
        None => trust_new_device(&mut tx, state, &person, now).await?,
    };
    throttle::succeeded(&mut tx, attempt).await?;
    record_raw(
        &mut tx,
        state,
        Some(&practice.id),
        Some(person.id.as_str()),
        Some(&session.id),
        meta,
        AuditEntry::new("sign_in", "person", person.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(SignedIn {
        token,
        device_token,
        expires_at: session.expires_at,
        person,
        practice,
    })
}

/// A new device token for the person (their oldest devices beyond the limit forgotten).
async fn trust_new_device(
    tx: &mut Conn,
    state: &AppState,
    person: &Person,
    now: i64,
) -> AppResult<String> {
    let device = new_token();
    let days = state.config.auth.trusted_device_days;
    devices::insert(
        tx,
        &token_hash(&device),
        person.id.as_str(),
        now,
        now + days * 86_400_000,
    )
    .await?;
    devices::keep_newest(tx, person.id.as_str(), MAX_DEVICES).await?;
    Ok(device)
}

/// The caller behind a bearer token, if the session is still alive; the request counts as
/// activity for the idle limit.
pub async fn authenticate(state: &AppState, token: &str, meta: RequestMeta) -> AppResult<Caller> {
    authenticate_with(state, token, meta, true).await
}

/// As [`authenticate`], for requests a page's script makes on its own (polling for
/// changes): they do not keep an idle session alive, so a screen left open still signs
/// out after the idle limit.
pub async fn authenticate_passively(
    state: &AppState,
    token: &str,
    meta: RequestMeta,
) -> AppResult<Caller> {
    authenticate_with(state, token, meta, false).await
}

async fn authenticate_with(
    state: &AppState,
    token: &str,
    meta: RequestMeta,
    activity: bool,
) -> AppResult<Caller> {
    let now = state.now();
    let mut conn = state.store.read().await?;
    let hash = token_hash(token);
    // The session and its person in one statement; a session whose person is gone is
    // found alone, to be ended below.
    let (session, person_row) = match sessions::find_with_person(&mut conn, &hash).await? {
        Some((session, person)) => (session, Some(person)),
        None => match sessions::find_by_token_hash(&mut conn, &hash).await? {
            Some(session) => (session, None),
            None => {
                return Err(AppError::unauthenticated(
                    "Your session has ended; sign in again.",
                ))
            }
        },
    };
    drop(conn);
    let idle_limit = state.config.auth.session_idle_minutes * 60_000;
    let person = match person_row {
        Some(row) => Some(person(row)?),
        None => None,
    };
    let within_limits = now < session.expires_at && now - session.last_seen_at < idle_limit;
    let person = match person {
        Some(person) if within_limits && person.status.is_activated() => person,
        _ => {
            let mut conn = state.store.write().await?;
            sessions::delete(&mut conn, &session.id).await?;
            return Err(AppError::new(
                Code::SessionExpired,
                "Your session has ended; sign in again.",
            ));
        }
    };
    // Most requests write nothing: the writer (one connection on SQLite) is taken only to
    // refresh the idle clock now and then.
    if activity && now - session.last_seen_at >= TOUCH_EVERY_MS {
        let mut conn = state.store.write().await?;
        sessions::touch(&mut conn, &session.id, now).await?;
    }
    Ok(Caller {
        person,
        session_id: SessionId::from_trusted(session.id),
        meta,
        keys: state.keys.clone(),
    })
}

/// When a session ends if nothing more happens in it (its expiry or its idle limit), or
/// `None` when it has ended already (signed out, expired, its person disabled).
/// `idle_limit_ms` is `auth.session_idle_minutes` in milliseconds.
pub async fn ends_at(
    store: &crate::store::Store,
    now: i64,
    idle_limit_ms: i64,
    session_id: &str,
) -> AppResult<Option<i64>> {
    let mut conn = store.read().await?;
    let Some(session) = sessions::find(&mut conn, session_id).await? else {
        return Ok(None);
    };
    let ends = session.expires_at.min(session.last_seen_at + idle_limit_ms);
    Ok((now < ends).then_some(ends))
}

/// Ends the caller's session.
#[tracing::instrument(skip_all)]
pub async fn sign_out(state: &AppState, caller: &Caller) -> AppResult<()> {
    let mut tx = state.store.begin().await?;
    sessions::delete(&mut tx, caller.session_id.as_str()).await?;
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("sign_out", "person", caller.person.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    state.live.end_session(caller.session_id.as_str());
    Ok(())
}

/// One of a person's sessions (from the web or the API: they are the same).
pub struct SessionView {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The session this request came with.
    pub current: bool,
}

/// The caller's live sessions, the most recently used first.
pub async fn list_mine(state: &AppState, caller: &Caller) -> AppResult<Vec<SessionView>> {
    let now = state.now();
    let idle_limit = state.config.auth.session_idle_minutes * 60_000;
    let mut conn = state.store.read().await?;
    let rows = sessions::list_for_person(&mut conn, caller.person.id.as_str()).await?;
    Ok(rows
        .into_iter()
        .filter(|s| now < s.expires_at && now - s.last_seen_at < idle_limit)
        .map(|s| SessionView {
            current: s.id == caller.session_id.as_str(),
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
        })
        .collect())
}

/// Ends one of the caller's sessions (another browser or an API token); 404 for an id
/// that is not theirs.
#[tracing::instrument(skip_all)]
pub async fn end_mine(state: &AppState, caller: &Caller, id: &str) -> AppResult<()> {
    let mut tx = state.store.begin().await?;
    if !sessions::delete_of_person(&mut tx, id, caller.person.id.as_str()).await? {
        return Err(AppError::not_found("session"));
    }
    record(
        &mut tx,
        state,
        caller,
        AuditEntry::new("end_session", "person", caller.person.id.as_str()),
    )
    .await?;
    tx.commit().await?;
    state.live.end_session(id);
    Ok(())
}

/// Ends a person's sessions (but `keep`) and forgets their trusted devices: after a new
/// password, a new email address or a disabled account, no earlier sign-in counts.
pub async fn end_all(
    conn: &mut crate::store::Conn,
    person_id: &str,
    keep: Option<&str>,
) -> AppResult<()> {
    sessions::delete_for_person(conn, person_id, keep).await?;
    devices::delete_for_person(conn, person_id).await?;
    Ok(())
}

/// Removes expired sessions and old sign-in failures (run by the janitor).
pub async fn sweep(state: &AppState) -> AppResult<()> {
    let now = state.now();
    let auth = &state.config.auth;
    let mut conn = state.store.write().await?;
    sessions::delete_expired(&mut conn, now, now - auth.session_idle_minutes * 60_000).await?;
    sign_in_attempts::delete_windows_before(&mut conn, now - auth.failure_window_minutes * 60_000)
        .await?;
    devices::delete_expired(&mut conn, now).await?;
    Ok(())
}
