//! The mailbox rulebook (DESIGN.md §2): composing, replies, privacy, inactive clients,
//! deletion, folders, drafts, lists, the event log and the audit of mailbox actions.
//! Every test runs on SQLite and, when CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;

mod compose;
mod delete;
mod drafts;
mod folders;
mod privacy;
mod replies;
mod seed;

use confide::domain::Role;
use helpers::{Session, TestApp};

/// A practice with one person of each kind, signed in.
pub struct Cast {
    pub admin: Session,
    pub provider: Session,
    pub front: Session,
    pub biller: Session,
    pub agent: Session,
    pub client: Session,
}

impl Cast {
    pub async fn new(app: &TestApp) -> Cast {
        let practice = app.create_practice("oak").await;
        Cast {
            admin: app.admin(&practice).await,
            provider: app.person(&practice, Role::Provider, "Pat Provider").await,
            front: app.person(&practice, Role::FrontOffice, "Fran Front").await,
            biller: app.person(&practice, Role::Biller, "Bo Biller").await,
            agent: app
                .person(&practice, Role::ExternalAgent, "Eve Agent")
                .await,
            client: app.person(&practice, Role::Client, "Casey Client").await,
        }
    }
}

pub fn user(who: &Session) -> String {
    format!("user:{}", who.id)
}
