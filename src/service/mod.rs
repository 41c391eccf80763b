//! Use-cases: one function per action. The only callers of `store/`; each checks the
//! rulebook in `domain/` before it writes, and writes its audit event in the same transaction.

pub mod attachments;
pub mod audit;
pub mod changes;
pub mod chart;
pub mod cursor;
pub mod email_changes;
pub mod invitations;
pub mod keys;
pub mod legal_holds;
pub mod links;
pub mod mailbox;
pub mod notifications;
pub mod password_resets;
pub mod people;
pub mod practices;
pub mod retention;
pub mod sealing;
pub mod search;
pub mod seed;
pub mod sessions;
pub mod throttle;

use std::sync::Arc;

use anyhow::anyhow;

use crate::auth::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{PersonId, PracticeId, Role, SessionId, Status};
use crate::error::AppResult;
use crate::metrics::Metrics;
use crate::store::people::PersonRow;
use crate::store::Store;

/// Everything a use-case may need, shared by every request and worker.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub hasher: PasswordHasher,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// The base of links shown to people, e.g. `https://mail.example.org`.
    pub public_url: String,
    pub mailer: crate::notify::Mailer,
    /// Where attachment bytes live.
    pub blobs: crate::blobs::BlobStore,
    /// The search index (kept current by the indexer thread while serving).
    pub search: crate::search::SearchIndex,
    pub sms: Option<crate::notify::SmsGateway>,
    /// Signs and checks every list's cursors.
    pub cursors: cursor::Cursors,
    /// The key of the pages' CSRF tokens, shared by every node through the database.
    pub csrf_key: [u8; 32],
    /// This node's live updates: the event log's stable position and the open streams.
    pub live: crate::events::Live,
    /// Each practice's data keys (encryption at rest).
    pub keys: Arc<crate::store::keys::Keyring>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// A person, parsed from their row.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: PersonId,
    pub practice_id: PracticeId,
    pub role: Role,
    pub status: Status,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    /// A new address waiting for confirmation; `email` stays in use until then.
    pub pending_email: Option<String>,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<PersonRow> for Person {
    type Error = anyhow::Error;

    fn try_from(row: PersonRow) -> Result<Self, Self::Error> {
        Ok(Person {
            role: row
                .role
                .parse()
                .map_err(|_| anyhow!("person {} has unknown role {:?}", row.id, row.role))?,
            status: row
                .status
                .parse()
                .map_err(|_| anyhow!("person {} has unknown status {:?}", row.id, row.status))?,
            id: PersonId::from_trusted(row.id),
            practice_id: PracticeId::from_trusted(row.practice_id),
            name: row.name,
            email: row.email,
            mobile: row.mobile,
            pending_email: row.pending_email,
            consent_email: row.consent_email != 0,
            consent_sms: row.consent_sms != 0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl Person {
    pub fn to_row(&self) -> PersonRow {
        PersonRow {
            id: self.id.to_string(),
            practice_id: self.practice_id.to_string(),
            role: self.role.as_str().into(),
            status: self.status.as_str().into(),
            name: self.name.clone(),
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            pending_email: self.pending_email.clone(),
            consent_email: self.consent_email as i64,
            consent_sms: self.consent_sms as i64,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) fn person(row: PersonRow) -> AppResult<Person> {
    Ok(Person::try_from(row)?)
}

/// Where a request came from, for the audit log and throttling.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
}

/// The signed-in person making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub person: Person,
    pub session_id: SessionId,
    pub meta: RequestMeta,
    /// The keys content is sealed and opened with.
    pub keys: Arc<crate::store::keys::Keyring>,
}

impl Caller {
    /// The caller's practice's data key, to seal what they write.
    pub async fn key(
        &self,
        conn: &mut crate::store::Conn,
    ) -> Result<Arc<crate::store::keys::PracticeKey>, sqlx::Error> {
        self.keys.practice(conn, self.practice_id()).await
    }

    pub fn practice_id(&self) -> &str {
        self.person.practice_id.as_str()
    }

    pub fn role(&self) -> Role {
        self.person.role
    }
}

/// Takes the lease `name` for `holder` for a little less than `every` (so that it is free
/// again by the next round, on whichever node comes first); whether `holder` has it.
pub async fn take_lease(
    state: &AppState,
    name: &str,
    holder: &str,
    every: std::time::Duration,
) -> crate::error::AppResult<bool> {
    let now = state.now();
    let until = now + (every.as_millis() as i64) * 4 / 5;
    let mut conn = state.store.write().await?;
    Ok(crate::store::leases::take(&mut conn, name, holder, now, until).await?)
}
