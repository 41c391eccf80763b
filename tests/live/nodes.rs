//! Several nodes on one database: one secret for all (a node with another refuses to
//! start), forms served by one node accepted by another, and the janitor on one node at a
//! time.

use std::sync::Arc;
use std::time::Duration;

use confide::clock::ManualClock;
use confide::App;

use crate::helpers::{test_config, Backend, TestApp, TestDatabase, PASSWORD};
use crate::on_both_backends;
use crate::web::WebUser;

on_both_backends!(
    the_key_file_is_made_private_on_first_start_and_kept,
    a_node_with_another_secret_refuses_to_start,
    a_page_form_served_by_one_node_is_accepted_by_another,
    the_janitor_works_on_one_node_at_a_time,
);

const SECRET: &str = "a-cluster-secret-of-forty-characters-00";

/// Without `server.secret_key`, the first start makes `secret.key` (0600, 64 hex digits)
/// in the data directory; a restart uses the same one.
async fn the_key_file_is_made_private_on_first_start_and_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = confide::service::keys::key_file(app.db.data_dir());
    let first = std::fs::read_to_string(&path).expect("the key file");
    assert_eq!(first.trim().len(), 64);
    assert!(first.trim().chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = app.spawn_sibling(|_| {}).await;
    drop(again);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
}

/// A second node whose secret differs from the first's (or is too short) does not start,
/// and says why without printing either secret.
async fn a_node_with_another_secret_refuses_to_start(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let clock = Arc::new(ManualClock::default());
    let _first = TestApp::spawn_on(db.clone(), clock.clone(), |c| {
        c.server.secret_key = SECRET.into()
    })
    .await;
    let mut config = test_config(&db);
    config.server.secret_key = "another-secret-of-at-least-32-characters".into();
    let error = match App::build_with_clock(config, clock.clone()).await {
        Ok(_) => panic!("a node with another secret started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("server.secret_key"), "{error}");
    assert!(!error.contains("another-secret") && !error.contains(SECRET));
    let mut config = test_config(&db);
    config.server.secret_key = "short".into();
    let error = match App::build_with_clock(config, clock).await {
        Ok(_) => panic!("a node with a short secret started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("at least 32 characters"), "{error}");
}

/// The sign-in form (its CSRF token and cookie) from node A is accepted by node B, and
/// B's session works on A: nodes behind a load balancer behave as one.
async fn a_page_form_served_by_one_node_is_accepted_by_another(backend: Backend) {
    let (a, cast) = TestApp::with_cast(backend).await;
    let b = a.spawn_sibling(|_| {}).await;
    let mut user = WebUser::new(&a, &cast.practice);
    let portal = user.get(&user.path("")).await;
    assert_eq!(portal.status, reqwest::StatusCode::OK);
    user.base = b.url("");
    let done = user
        .post(
            &user.path("sign-in"),
            &[
                ("email", &cast.front.email),
                ("password", PASSWORD),
                ("next", ""),
            ],
        )
        .await;
    done.assert_redirect(&user.path("mail/inbox"));
    user.base = a.url("");
    let inbox = user.get(&user.path("mail/inbox")).await;
    assert_eq!(inbox.status, reqwest::StatusCode::OK);
}

/// Two nodes ask for the janitor's lease: one gets it; the other only once it lapses.
async fn the_janitor_works_on_one_node_at_a_time(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.spawn_sibling(|_| {}).await;
    let every = Duration::from_secs(300);
    let take = |app: &TestApp, holder: &'static str| {
        let state = app.state.clone();
        async move {
            confide::service::take_lease(&state, "test-janitor", holder, every)
                .await
                .unwrap()
        }
    };
    assert!(take(&a, "node-a").await);
    assert!(!take(&b, "node-b").await);
    assert!(take(&a, "node-a").await, "the holder extends it");
    a.clock.advance_minutes(5);
    assert!(take(&b, "node-b").await, "lapsed: the other node takes it");
    assert!(!take(&a, "node-a").await);
}
