//! Typed helpers: spawn the real server on port 0 with a fresh data directory (and a fresh
//! PostgreSQL database), sign people in, and call the API. Shared by the integration test
//! binaries, each of which uses only some of it.
#![allow(dead_code)]

use std::sync::Arc;

use confide::clock::ManualClock;
use confide::domain::Role;
use confide::service::practices::{self, NewPracticeInput};
use confide::service::{AppState, RequestMeta};
use confide::{App, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "violet-harbor-quantum-88";

#[path = "binary.rs"]
mod binary;
#[path = "cast.rs"]
mod cast;
#[path = "database.rs"]
mod database;

#[allow(unused_imports)]
pub use binary::Binary;
#[allow(unused_imports)]
pub use cast::{user, Cast};
#[allow(unused_imports)]
pub use database::{postgres_url, Backend, Database};

/// Says, past the test harness's output capture, that this test did not run something for
/// want of `missing`: a visible `SKIPPED <test>: <missing>` line. Under CI it fails instead.
pub fn report_skip(missing: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {missing}"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
}

/// Runs an async test function once on SQLite and once on PostgreSQL (when configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_none() {
                    $crate::helpers::report_skip("CONFIDE_TEST_POSTGRES_URL (PostgreSQL)");
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
}

/// A database created for one test (with its data directory) and dropped after it.
pub struct TestDatabase {
    pub database: Database,
    pub url: String,
    _dir: Arc<TempDir>,
    data_dir: std::path::PathBuf,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Arc<TestDatabase> {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = dir.path().join("data");
        let database = Database::create(backend, &data_dir).await;
        Arc::new(TestDatabase {
            url: database.url.clone(),
            database,
            _dir: dir,
            data_dir,
        })
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// A connection of the test's own, beside the app's pool.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        self.database.connect().await
    }
}

pub struct TestApp {
    pub base: String,
    /// Where metrics are served when `metrics.bind` is set.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub db: Arc<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn test_config(db: &TestDatabase) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.database.url = db.url.clone();
    config.database.max_connections = 5;
    config.storage.data_dir = db.data_dir().to_path_buf();
    config.log.level = "warn".into();
    config
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub id: String,
    pub email: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDatabase::create(backend).await;
        Self::spawn_on(db, Arc::new(ManualClock::default()), tweak).await
    }

    /// A second server process on the same database and clock (as several nodes would be).
    pub async fn spawn_sibling(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(self.db.clone(), self.clock.clone(), tweak).await
    }

    pub async fn spawn_on(
        db: Arc<TestDatabase>,
        clock: Arc<ManualClock>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = test_config(&db);
        tweak(&mut config);
        let app = App::build_with_clock(config, clock.clone())
            .await
            .expect("build app");
        let base = format!("http://{}", app.address());
        let metrics_base = app.metrics_address().map(|a| format!("http://{a}"));
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            metrics_base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            state,
            db,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a practice with an active administrator (password [`PASSWORD`]).
    /// Where practice `slug` keeps the bytes whose SHA-256 (as the API shows it) is
    /// `sha256`: a keyed hash of it with encryption, the digest itself without.
    pub async fn blob_address(&self, slug: &str, sha256: &str) -> String {
        let mut conn = self.state.store.read().await.unwrap();
        let practice = confide::store::practices::find_by_slug(&mut conn, slug)
            .await
            .unwrap()
            .expect("the practice exists");
        let key = self
            .state
            .keys
            .practice(&mut conn, &practice.id)
            .await
            .unwrap();
        key.file_address(sha256)
    }

    pub async fn create_practice(&self, slug: &str) -> String {
        let created = practices::create_practice(
            &self.state,
            &RequestMeta::default(),
            NewPracticeInput {
                slug,
                name: &format!("Practice {slug}"),
                admin_name: "Avery Admin",
                admin_email: &format!("admin@{slug}.example"),
                admin_password: Some(PASSWORD),
            },
        )
        .await
        .expect("create practice");
        created.practice.slug
    }

    /// Adds an active person with password [`PASSWORD`]; returns their id.
    pub async fn add_person(&self, practice: &str, role: Role, name: &str, email: &str) -> String {
        let (person, _) =
            practices::create_user(&self.state, practice, role, email, name, Some(PASSWORD))
                .await
                .expect("create user");
        person.id.to_string()
    }

    pub async fn sign_in(&self, practice: &str, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/sessions"))
            .json(&json!({"practice": practice, "email": email, "password": password}))
            .send()
            .await
            .expect("sign-in request")
    }

    pub async fn login_as(&self, practice: &str, email: &str) -> Session {
        let resp = self.sign_in(practice, email, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "sign in {email}");
        let body: Value = resp.json().await.unwrap();
        Session {
            token: body["token"].as_str().unwrap().to_string(),
            id: body["user"]["id"].as_str().unwrap().to_string(),
            email: email.to_string(),
        }
    }

    /// A practice's administrator, signed in.
    pub async fn admin(&self, practice: &str) -> Session {
        self.login_as(practice, &format!("admin@{practice}.example"))
            .await
    }

    /// Adds a person of `role` and signs them in.
    pub async fn person(&self, practice: &str, role: Role, name: &str) -> Session {
        let email = format!(
            "{}@{practice}.example",
            name.to_lowercase().replace(' ', ".")
        );
        self.add_person(practice, role, name, &email).await;
        self.login_as(practice, &email).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, who: &Session) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&who.token), None).await
    }

    /// `GET /metrics` as this machine sees it (no token needed from loopback).
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Uploads a small text file as `who`; returns its id.
    pub async fn upload_text(&self, who: &Session, name: &str) -> String {
        let part = reqwest::multipart::Part::bytes(format!("contents of {name}\n").into_bytes())
            .file_name(name.to_string())
            .mime_str("text/plain")
            .unwrap();
        self.upload_part(who, part).await
    }

    /// Uploads one multipart file part as `who`, which must succeed; returns its id.
    pub async fn upload_part(&self, who: &Session, part: reqwest::multipart::Part) -> String {
        let resp = self
            .client
            .post(self.url("/api/v1/attachments"))
            .bearer_auth(&who.token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        body["attachments"][0]["id"].as_str().unwrap().to_string()
    }

    pub async fn post(&self, path: &str, who: &Session, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&who.token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, who: &Session, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(&who.token), Some(body))
            .await
    }
}

/// The common calls, typed: each names the route once.
impl TestApp {
    /// The counts a database keeps per person and list (migration 0009), next to the same
    /// counts computed afresh from the participant rows.
    pub async fn kept_and_fresh_counts(
        &self,
    ) -> (
        Vec<(String, String, i64, i64)>,
        Vec<(String, String, i64, i64)>,
    ) {
        let mut conn = self.db.connect().await;
        let kept: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT person_id, list, total, unread FROM mailbox_counts WHERE total <> 0 OR unread <> 0 \
             ORDER BY person_id, list",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let fresh: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT person_id, list, COUNT(*), CAST(SUM(unread) AS BIGINT) FROM ( \
               SELECT person_id, folder AS list, unread FROM thread_participants \
               UNION ALL SELECT person_id, 'sent', unread FROM thread_participants \
                 WHERE has_sent = 1 AND folder <> 'removed' \
               UNION ALL SELECT person_id, 'team:' || via_group, unread FROM thread_participants \
                 WHERE via_group IS NOT NULL AND folder <> 'removed') AS rows \
             GROUP BY person_id, list ORDER BY person_id, list",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        (kept, fresh)
    }

    /// `GET /api/v1/me`.
    pub async fn me(&self, who: &Session) -> (StatusCode, Value) {
        self.get("/api/v1/me", who).await
    }

    /// `PATCH /api/v1/me`.
    pub async fn update_me(&self, who: &Session, body: Value) -> (StatusCode, Value) {
        self.patch("/api/v1/me", who, body).await
    }

    /// `GET /api/v1/people/{id}`.
    pub async fn person_of(&self, who: &Session, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/api/v1/people/{id}"), who).await
    }

    /// `PATCH /api/v1/people/{id}`.
    pub async fn update_person(&self, who: &Session, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/api/v1/people/{id}"), who, body).await
    }

    /// `GET /api/v1/threads/{id}` (which marks it read).
    pub async fn thread(&self, who: &Session, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/api/v1/threads/{id}"), who).await
    }

    /// `PATCH /api/v1/threads/{id}`: one's own folder and read state of a thread.
    pub async fn file_thread(&self, who: &Session, id: &str, body: Value) -> (StatusCode, Value) {
        self.patch(&format!("/api/v1/threads/{id}"), who, body)
            .await
    }

    /// `POST /api/v1/threads/{id}/messages`.
    pub async fn reply(&self, who: &Session, thread: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/threads/{thread}/messages"), who, body)
            .await
    }

    /// `POST /api/v1/threads/{id}/quick-note`.
    pub async fn quick_note(
        &self,
        who: &Session,
        thread: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/threads/{thread}/quick-note"), who, body)
            .await
    }
}

/// Asserts a problem response: exact status and `code`.
#[track_caller]
pub fn assert_problem(result: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(result.0, status, "body: {}", result.1);
    assert_eq!(result.1["code"], code, "body: {}", result.1);
    assert!(
        result.1["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "a sentence for a person: {}",
        result.1
    );
}

impl TestApp {
    pub fn clock_now(&self) -> i64 {
        use confide::clock::Clock;
        self.clock.now_ms()
    }
}

/// Mailbox helpers.
impl TestApp {
    pub async fn put(&self, path: &str, who: &Session, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(&who.token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, who: &Session) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(&who.token), None)
            .await
    }

    /// Composes a new thread.
    pub async fn compose(
        &self,
        who: &Session,
        to: &[&str],
        subject: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        self.post(
            "/api/v1/threads",
            who,
            json!({"to": to, "subject": subject, "body": body}),
        )
        .await
    }

    /// Composes a new thread that must succeed; returns its id.
    pub async fn send(&self, who: &Session, to: &[&str], subject: &str) -> String {
        let (status, thread) = self
            .compose(who, to, subject, "A message body that is long enough.")
            .await;
        assert_eq!(status, StatusCode::CREATED, "{thread}");
        thread["id"].as_str().unwrap().to_string()
    }

    /// The ids of the threads in one of `who`'s folders (first page).
    pub async fn folder(&self, who: &Session, folder: &str) -> Vec<String> {
        let (status, page) = self
            .get(&format!("/api/v1/threads?folder={folder}&limit=200"), who)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// One list's entry in a `GET /api/v1/folders` answer.
pub fn folder_entry<'a>(folders: &'a Value, id: &str) -> &'a Value {
    folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no folder {id} in {folders}"))
}

/// The token with its last character changed (always to a different one).
pub fn tampered(token: &str) -> String {
    let last = token.chars().last().unwrap_or('A');
    let other = if last == 'A' { 'B' } else { 'A' };
    format!("{}{other}", &token[..token.len() - last.len_utf8()])
}
