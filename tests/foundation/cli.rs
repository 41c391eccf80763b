//! The command line: configuration errors, migrate, admin commands, serve and shutdown
//! (issue 2 §1, §2, §6). These run the real `confide` binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Backend, Binary, TestApp, TestDatabase, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    migrate_applies_migrations_and_exits,
    create_practice_reads_the_password_from_stdin,
    create_practice_without_password_prints_a_one_time_link,
    create_user_without_password_is_invited,
    serve_prints_the_setup_link_and_stops_on_sigterm,
    serve_logs_its_own_events_and_other_crates_warnings_only,
    a_request_can_be_followed_in_the_log_without_its_content,
);

fn confide(db: &TestDatabase) -> Command {
    Binary::command(db, &[("CONFIDE__LOG__LEVEL", "warn")])
}

fn run(mut cmd: Command, stdin: Option<&str>) -> (i32, String, String) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_configuration_key_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:0\"\nbindd = \"x\"\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
    cmd.args(["--config", file.to_str().unwrap(), "serve"]);
    let (code, _, stderr) = run(cmd, None);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.bindd"), "{stderr}");
}

#[test]
fn wrong_type_from_the_environment_names_the_key() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
    cmd.env("CONFIDE__AUTH__SESSION_IDLE_MINUTES", "soon")
        .env("CONFIDE_CONFIG", "/nonexistent/confide.toml");
    cmd.arg("migrate");
    let (code, _, stderr) = run(cmd, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("does not exist"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
    cmd.env("CONFIDE__AUTH__SESSION_IDLE_MINUTES", "soon")
        .arg("--config")
        .arg(&file)
        .arg("migrate");
    let (code, _, stderr) = run(cmd, None);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("auth.session_idle_minutes"), "{stderr}");
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
    cmd.env(
        "CONFIDE__DATABASE__URL",
        "postgres://nobody@127.0.0.1:1/none",
    )
    .env("CONFIDE_CONFIG", dir.path().join("c.toml"))
    .env("CONFIDE__STORAGE__DATA_DIR", dir.path());
    std::fs::write(dir.path().join("c.toml"), "").unwrap();
    cmd.arg("migrate");
    let (code, _, stderr) = run(cmd, None);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot connect to the PostgreSQL database in database.url"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

async fn migrate_applies_migrations_and_exits(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut cmd = confide(&db);
    cmd.arg("migrate");
    let (code, stdout, stderr) = run(cmd, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("migrations applied"));
    // Running it again is harmless.
    let mut cmd = confide(&db);
    cmd.arg("migrate");
    assert_eq!(run(cmd, None).0, 0);
}

async fn create_practice_reads_the_password_from_stdin(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-practice",
        "--slug",
        "oak",
        "--name",
        "Oak Therapy",
        "--admin-email",
        "avery@oak.example",
        "--admin-name",
        "Avery Admin",
        "--password-stdin",
    ]);
    let (code, stdout, stderr) = run(cmd, Some(&format!("{PASSWORD}\n")));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("created practice oak"));
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    let app = TestApp::spawn_on(db.clone(), Default::default(), |_| {}).await;
    assert_eq!(
        app.sign_in("oak", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    drop(app);
    // A weak password is refused with a reason, and nothing is created.
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-practice",
        "--slug",
        "elm",
        "--name",
        "Elm",
        "--admin-email",
        "a@elm.example",
        "--admin-name",
        "A",
        "--password-stdin",
    ]);
    let (code, _, stderr) = run(cmd, Some("password\n"));
    assert_eq!(code, 1);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-practice",
        "--slug",
        "oak",
        "--name",
        "Oak 2",
        "--admin-email",
        "b@oak.example",
        "--admin-name",
        "B",
        "--password-stdin",
    ]);
    let (code, _, stderr) = run(cmd, Some(&format!("{PASSWORD}\n")));
    assert_eq!(code, 1);
    assert!(stderr.contains("slug is already used"), "{stderr}");
}

async fn create_practice_without_password_prints_a_one_time_link(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-practice",
        "--slug",
        "oak",
        "--name",
        "Oak Therapy",
        "--admin-email",
        "avery@oak.example",
        "--admin-name",
        "Avery Admin",
    ]);
    let (code, stdout, stderr) = run(cmd, None);
    assert_eq!(code, 0, "{stderr}");
    let link = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/invitations/"))
        .expect("a one-time link")
        .to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    let app = TestApp::spawn_on(db.clone(), Default::default(), |_| {}).await;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            None,
            Some(serde_json::json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.sign_in("oak", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn create_user_without_password_is_invited(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    Binary::create_practice(&db, &[]);
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-user",
        "--practice",
        "oak",
        "--role",
        "provider",
        "--email",
        "pat@oak.example",
        "--name",
        "Pat Provider",
    ]);
    let (code, stdout, stderr) = run(cmd, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("status invited"), "{stdout}");
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-user",
        "--practice",
        "oak",
        "--role",
        "biller",
        "--email",
        "bo@oak.example",
        "--name",
        "Bo Biller",
        "--password-stdin",
    ]);
    let (code, stdout, _) = run(cmd, Some(PASSWORD));
    assert_eq!(code, 0);
    assert!(stdout.contains("status active"), "{stdout}");
    let mut cmd = confide(&db);
    cmd.args([
        "admin",
        "create-user",
        "--practice",
        "oak",
        "--role",
        "wizard",
        "--email",
        "w@oak.example",
        "--name",
        "W",
    ]);
    let (code, _, stderr) = run(cmd, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("--role must be one of"), "{stderr}");
    let app = TestApp::spawn_on(db.clone(), Default::default(), |_| {}).await;
    assert_eq!(
        app.sign_in("oak", "pat@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in("oak", "bo@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn serve_prints_the_setup_link_and_stops_on_sigterm(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut cmd = confide(&db);
    cmd.arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("/setup/");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("serve printed its link")
        .unwrap();
    let address = lines[0]
        .rsplit("http://")
        .next()
        .unwrap()
        .trim()
        .to_string();
    let link = lines.last().unwrap().trim().to_string();
    let resp = reqwest::get(&link).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        reqwest::get(format!("http://{address}/healthz"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// Serves at the default level until it has started and built its (empty) search index,
/// then stops it; returns what it logged.
async fn startup_log(db: &TestDatabase, format: &str) -> String {
    let mut cmd = confide(db);
    cmd.env("CONFIDE__LOG__LEVEL", "info")
        .env("CONFIDE__LOG__FORMAT", format)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    // The indexer commits its first (empty) index right after start.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    reader.await.unwrap()
}

/// A fresh server used to print nine of tantivy's INFO lines at start (and more on every
/// commit). At the default level only Confide's own events show; `json` makes every line
/// one JSON object.
async fn serve_logs_its_own_events_and_other_crates_warnings_only(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let text = startup_log(&db, "text").await;
    assert!(text.contains("listening"), "{text}");
    assert!(!text.contains("tantivy"), "{text}");
    let json = startup_log(&db, "json").await;
    let lines: Vec<&str> = json.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let event: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(event["level"].is_string(), "{line}");
        let target = event["target"].as_str().unwrap();
        assert!(
            target.starts_with("confide") || event["level"] != "INFO",
            "only Confide's own events at info: {line}"
        );
    }
}

/// At debug level each request is one span with an id, its route and who asked, and the
/// services' spans name the ids they act on; the log holds no path, token or content.
async fn a_request_can_be_followed_in_the_log_without_its_content(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let env = [
        ("CONFIDE__LOG__LEVEL", "debug"),
        ("CONFIDE__LOG__FORMAT", "json"),
    ];
    Binary::create_practice(&db, &env);
    let server = Binary::serve(&db, &env);
    let token = server.admin_token().await;
    let http = reqwest::Client::new();
    let thread_id = "nosuchthreadxxxxxxxxxxxxxx";
    let resp = http
        .get(format!("{}/api/v1/threads/{thread_id}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = http
        .post(format!(
            "{}/api/v1/invitations/secret-link-token/accept",
            server.base
        ))
        .json(&serde_json::json!({"password": "a very secret pass phrase 42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log.lock().unwrap().clone();
    let request = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["fields"]["message"] == "request" && e["span"]["route"] == "get_thread")
        .unwrap_or_else(|| panic!("no request line for get_thread: {log}"));
    assert!(request["span"]["id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(request["span"]["person_id"].is_string(), "{request}");
    assert!(request["span"]["practice_id"].is_string(), "{request}");
    assert!(
        log.contains(&format!("\"thread_id\":\"{thread_id}\"")),
        "{log}"
    );
    for secret in [
        token.as_str(),
        "secret-link-token",
        "a very secret pass phrase",
        "/api/v1",
    ] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}
