//! The practice most tests need: one person of every role, each signed in.

use confide::domain::Role;

use super::{Backend, Session, TestApp};

/// A practice with an admin, a provider, front office, a biller, an external agent and two
/// clients, all signed in.
pub struct Cast {
    /// The practice's slug.
    pub practice: String,
    pub admin: Session,
    pub provider: Session,
    pub front: Session,
    pub biller: Session,
    pub agent: Session,
    pub client: Session,
    pub other_client: Session,
}

impl Cast {
    /// The cast of the practice `oak`.
    pub async fn new(app: &TestApp) -> Cast {
        Cast::in_practice(app, "oak").await
    }

    /// The cast of a new practice `slug`.
    pub async fn in_practice(app: &TestApp, slug: &str) -> Cast {
        let practice = app.create_practice(slug).await;
        Cast {
            admin: app.admin(&practice).await,
            provider: app.person(&practice, Role::Provider, "Pat Provider").await,
            front: app.person(&practice, Role::FrontOffice, "Fran Front").await,
            biller: app.person(&practice, Role::Biller, "Bo Biller").await,
            agent: app
                .person(&practice, Role::ExternalAgent, "Eve Agent")
                .await,
            client: app.person(&practice, Role::Client, "Casey Client").await,
            other_client: app.person(&practice, Role::Client, "Dana Client").await,
            practice,
        }
    }
}

impl TestApp {
    /// A server on `backend` with the practice `oak` and its cast.
    pub async fn with_cast(backend: Backend) -> (TestApp, Cast) {
        let app = TestApp::spawn(backend).await;
        let cast = Cast::new(&app).await;
        (app, cast)
    }
}

impl TestApp {
    /// A server on `backend` with the (empty) practice `oak`; returns its slug too.
    pub async fn with_practice(backend: Backend) -> (TestApp, String) {
        let app = TestApp::spawn(backend).await;
        let practice = app.create_practice("oak").await;
        (app, practice)
    }
}

/// How `to` names a person.
pub fn user(who: &Session) -> String {
    format!("user:{}", who.id)
}
