//! Encryption at rest (issue 17): what a copy of the database shows, what a changed or
//! moved value does, sealing a database written before encryption, and the keys.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::Arc;

use confide::app::App;
use confide::crypto::Kek;
use reqwest::StatusCode;
use serde_json::json;

use confide::clock::ManualClock;

use crate::helpers::user;
use crate::helpers::{
    assert_problem, test_config, Backend, Binary, Cast, Session, TestApp, TestDatabase,
};
use crate::on_both_backends;

on_both_backends!(
    a_copy_of_the_database_shows_no_subject_body_draft_note_chart_note_or_file_name,
    a_changed_moved_or_plain_value_is_refused_never_shown,
    content_written_before_encryption_is_sealed_at_start_and_resumes_where_it_stopped,
    a_node_without_the_key_or_with_encryption_off_refuses_to_start,
    keys_rotate_rewraps_every_data_key_while_the_server_runs,
    keys_rekey_seals_everything_again_with_a_new_data_key_while_the_server_runs,
);

/// Words written into every sealed field; none may appear in a copy of the database.
const MARKERS: [&str; 8] = [
    "Quillwort9Subject",
    "Quillwort9Body",
    "Quillwort9Draft",
    "Quillwort9Note",
    "Quillwort9Chart",
    "Quillwort9Banner",
    "Quillwort9File",
    "Quillwort9Bytes",
];

/// Everything the database holds, as bytes: the SQLite file and its write-ahead log, or
/// a `pg_dump` of the PostgreSQL database.
fn database_bytes(db: &TestDatabase) -> Vec<u8> {
    if db.url.starts_with("sqlite:") {
        let mut bytes = Vec::new();
        for name in ["confide.db", "confide.db-wal"] {
            if let Ok(b) = std::fs::read(db.data_dir().join(name)) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 4096, "the SQLite file was read");
        bytes
    } else {
        let out = std::process::Command::new("pg_dump")
            .arg("--data-only")
            .arg(&db.url)
            .stderr(Stdio::inherit())
            .output()
            .expect("pg_dump runs");
        assert!(out.status.success(), "pg_dump failed");
        out.stdout
    }
}

/// Every file under `dir`, as bytes.
fn directory_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(directory_bytes(&path));
        } else if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    bytes
}

/// The thread ids a search finds for `who`, once the index answers and has `expected`.
async fn found_by_search(app: &TestApp, who: &Session, q: &str, expected: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, page) = app.post("/api/v1/search", who, json!({ "q": q })).await;
        if status == StatusCode::OK {
            let found: Vec<String> = page["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["thread_id"].as_str().unwrap().to_string())
                .collect();
            if found.len() == expected || std::time::Instant::now() > deadline {
                assert_eq!(found.len(), expected, "{q}: {page}");
                return found;
            }
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
            assert!(
                std::time::Instant::now() < deadline,
                "the index was never ready"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn found_in(bytes: &[u8], marker: &str) -> bool {
    bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
}

/// Writes a marker into each sealed field; returns (thread, draft, chart note, file).
async fn write_markers(app: &TestApp, cast: &Cast) -> (String, String, String, String) {
    let file = app
        .upload_part(
            &cast.provider,
            reqwest::multipart::Part::bytes(b"plain lab values Quillwort9Bytes".to_vec())
                .file_name("Quillwort9File.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .await;
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({"to": [user(&cast.client)], "subject": "Quillwort9Subject results",
                   "body": "Your Quillwort9Body results are in.", "attachment_ids": [file]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    let thread = thread["id"].as_str().unwrap().to_string();
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.client,
            json!({"to": [user(&cast.provider)], "subject": "Quillwort9Draft question",
                   "body": "Quillwort9Draft body"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let (status, note) = app
        .post(
            &format!("/api/v1/threads/{thread}/notes"),
            &cast.provider,
            json!({"body": "Quillwort9Note: call back"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let (status, banner) = app
        .put(
            &format!("/api/v1/threads/{thread}/announcement"),
            &cast.provider,
            json!({"text": "Quillwort9Banner closed Friday"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{banner}");
    let (status, chart) = app
        .post(
            &format!("/api/v1/threads/{thread}/quick-note"),
            &cast.provider,
            json!({"content": "Quillwort9Chart follow-up"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chart}");
    (
        thread,
        draft["id"].as_str().unwrap().to_string(),
        chart["id"].as_str().unwrap().to_string(),
        file,
    )
}

/// Every marker is still there for those allowed to read it.
async fn markers_readable(app: &TestApp, cast: &Cast, ids: &(String, String, String, String)) {
    let (thread, draft, chart, file) = ids;
    let (status, view) = app.thread(&cast.provider, thread).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["subject"], "Quillwort9Subject results");
    assert_eq!(view["announcement"], "Quillwort9Banner closed Friday");
    let text = view.to_string();
    for marker in ["Quillwort9Body", "Quillwort9Note", "Quillwort9File.txt"] {
        assert!(text.contains(marker), "{marker} in {view}");
    }
    let (status, list) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["threads"][0]["subject"], "Quillwort9Subject results");
    assert!(list["threads"][0]["preview"]
        .as_str()
        .unwrap()
        .contains("Quillwort9Body"));
    let (status, d) = app
        .get(&format!("/api/v1/drafts/{draft}"), &cast.client)
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["subject"], "Quillwort9Draft question");
    assert_eq!(d["body"], "Quillwort9Draft body");
    let (status, c) = app
        .get(
            &format!("/api/v1/chart-notes/{chart}?format=json"),
            &cast.provider,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["content"], "Quillwort9Chart follow-up", "{c}");
    let (status, f) = app
        .get(&format!("/api/v1/attachments/{file}/info"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(f["name"], "Quillwort9File.txt");
    let got = app
        .client
        .get(app.url(&format!("/api/v1/attachments/{file}")))
        .bearer_auth(&cast.client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.text().await.unwrap(),
        "plain lab values Quillwort9Bytes"
    );
}

/// The attachment directory and the database, as bytes.
fn stored_bytes(db: &TestDatabase) -> Vec<u8> {
    let mut bytes = database_bytes(db);
    bytes.extend(directory_bytes(&db.data_dir().join("attachments")));
    bytes
}

async fn a_copy_of_the_database_shows_no_subject_body_draft_note_chart_note_or_file_name(
    backend: Backend,
) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let ids = write_markers(&app, &cast).await;
    markers_readable(&app, &cast, &ids).await;
    let bytes = stored_bytes(&app.db);
    for marker in MARKERS {
        assert!(!found_in(&bytes, marker), "{marker} is readable at rest");
    }
    // The check itself finds what is there in plain text: people's names stay plain.
    assert!(found_in(&bytes, "Casey Client"));

    // The search index finds every word, phrase and exclusion, and holds none of them
    // (it would hold them lower-cased).
    let thread = vec![ids.0.clone()];
    for q in [
        "quillwort9body",
        "Quillwort9Subject",
        "\"Quillwort9Body results\"",
        "subject:quillwort9subject",
        "Quillwort9File",
        "results -quillwort9absent",
    ] {
        assert_eq!(
            found_by_search(&app, &cast.client, q, 1).await,
            thread,
            "{q}"
        );
    }
    for q in [
        "\"results Quillwort9Body\"",
        "quillwort9",
        "results -quillwort9body",
    ] {
        assert!(
            found_by_search(&app, &cast.client, q, 0).await.is_empty(),
            "{q}"
        );
    }
    let (_, page) = app
        .post(
            "/api/v1/search",
            &cast.client,
            json!({"q": "quillwort9body"}),
        )
        .await;
    let snippet = page["hits"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<b>Quillwort9Body</b>"), "{snippet}");
    let index = directory_bytes(&app.db.data_dir().join("search"));
    assert!(index.len() > 1000, "the index was read");
    for marker in MARKERS {
        let lower = marker.to_lowercase();
        assert!(!found_in(&index, &lower), "{lower} is in the search index");
        assert!(!found_in(&index, marker), "{marker} is in the search index");
    }
    assert!(
        !found_in(&index, "casey"),
        "names are hashed in the index too"
    );
}

/// Runs one SQL statement behind the server's back.
async fn sql(app: &TestApp, statement: &str, binds: &[&str]) {
    let mut conn = app.db.connect().await;
    let mut q = sqlx::query(statement);
    for b in binds {
        q = q.bind(*b);
    }
    let done = q.execute(&mut conn).await.expect("the statement runs");
    assert_eq!(done.rows_affected(), 1, "{statement}");
}

async fn one(app: &TestApp, query: &str, bind: &str) -> String {
    let mut conn = app.db.connect().await;
    sqlx::query_scalar(query)
        .bind(bind)
        .fetch_one(&mut conn)
        .await
        .expect("one value")
}

async fn refused(app: &TestApp, who: &Session, thread: &str) {
    let result = app.thread(who, thread).await;
    assert_problem(&result, StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
}

async fn a_changed_moved_or_plain_value_is_refused_never_shown(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let first = app
        .send(&cast.provider, &[&user(&cast.client)], "First")
        .await;
    let second = app
        .send(&cast.provider, &[&user(&cast.client)], "Second")
        .await;
    let third = app
        .send(&cast.provider, &[&user(&cast.client)], "Third")
        .await;
    for t in [&first, &second, &third] {
        assert_eq!(app.thread(&cast.client, t).await.0, StatusCode::OK);
    }

    // One flipped character in a stored body.
    let body = one(
        &app,
        "SELECT body FROM messages WHERE thread_id = $1",
        &first,
    )
    .await;
    let mut chars: Vec<char> = body.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    sql(
        &app,
        "UPDATE messages SET body = $1 WHERE thread_id = $2",
        &[&flipped, &first],
    )
    .await;
    refused(&app, &cast.client, &first).await;

    // A sealed body copied into another message's row.
    let other = one(
        &app,
        "SELECT body FROM messages WHERE thread_id = $1",
        &third,
    )
    .await;
    sql(
        &app,
        "UPDATE messages SET body = $1 WHERE thread_id = $2",
        &[&other, &second],
    )
    .await;
    refused(&app, &cast.client, &second).await;

    // A sealed subject moved to another column of its own row.
    let subject = one(&app, "SELECT subject FROM threads WHERE id = $1", &third).await;
    sql(
        &app,
        "UPDATE threads SET preview = $1 WHERE id = $2",
        &[&subject, &third],
    )
    .await;
    refused(&app, &cast.client, &third).await;
    // The list that would show it is refused as a whole, never shown half-forged.
    let result = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    assert_problem(&result, StatusCode::INTERNAL_SERVER_ERROR, "internal_error");

    // A plain value written by someone with the database but not the key.
    let fourth = app
        .send(&cast.provider, &[&user(&cast.client)], "Fourth")
        .await;
    sql(
        &app,
        "UPDATE threads SET subject = $1 WHERE id = $2",
        &["Pay to account 123", &fourth],
    )
    .await;
    refused(&app, &cast.client, &fourth).await;
}

/// Stops `app` and starts another server on its database and clock with `tweak`.
async fn restart(app: TestApp, tweak: impl FnOnce(&mut confide::config::Config)) -> TestApp {
    let (db, clock) = (app.db.clone(), app.clock.clone());
    drop(app);
    // The old server's pool lets go of the SQLite file shortly after its shutdown.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    TestApp::spawn_on(db, clock, tweak).await
}

async fn content_written_before_encryption_is_sealed_at_start_and_resumes_where_it_stopped(
    backend: Backend,
) {
    // A server from before encryption at rest writes everything in plain text.
    let app = TestApp::spawn_with(backend, |c| c.encryption.enabled = false).await;
    let cast = Cast::new(&app).await;
    let ids = write_markers(&app, &cast).await;
    let before = stored_bytes(&app.db);
    assert!(found_in(&before, "Quillwort9Body"));
    assert!(found_in(&before, "Quillwort9Bytes"));

    // The first start with encryption seals it all in place, losing nothing.
    let app = restart(app, |_| {}).await;
    markers_readable(&app, &cast, &ids).await;
    let bytes = stored_bytes(&app.db);
    for marker in MARKERS {
        assert!(!found_in(&bytes, marker), "{marker} is still in plain text");
    }

    // A start cut short: the messages after the first were still plain when it stopped.
    let thread = &ids.0;
    for text in ["Second Quillwort9Late", "Third Quillwort9Late"] {
        let (status, reply) = app.reply(&cast.client, thread, json!({"body": text})).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let mut conn = app.db.connect().await;
    let mut messages: Vec<String> =
        sqlx::query_scalar("SELECT id FROM messages WHERE thread_id = $1")
            .bind(thread)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    messages.sort();
    assert_eq!(messages.len(), 3);
    sqlx::query("DELETE FROM sealing_progress WHERE name = 'all'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE sealing_progress SET last_id = $1, done = 0 WHERE name = 'messages'")
        .bind(&messages[0])
        .execute(&mut conn)
        .await
        .unwrap();
    for (i, id) in messages[1..].iter().enumerate() {
        sqlx::query("UPDATE messages SET body = $1, body_html = $2 WHERE id = $3")
            .bind(format!("Plain Quillwort9Late {i}"))
            .bind(format!("<p>Plain Quillwort9Late {i}</p>"))
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    let app = restart(app, |_| {}).await;
    let (status, view) = app.thread(&cast.provider, thread).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let bodies: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    // The message before the mark was sealed once only (twice, it would not open).
    let originals = [
        "Your Quillwort9Body results are in.",
        "Second Quillwort9Late",
        "Third Quillwort9Late",
    ];
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().any(|b| originals.contains(b)), "{bodies:?}");
    assert!(bodies.contains(&"Plain Quillwort9Late 0"), "{bodies:?}");
    assert!(bodies.contains(&"Plain Quillwort9Late 1"), "{bodies:?}");
    assert!(!found_in(&database_bytes(&app.db), "Quillwort9Late"));
}

async fn build_error(
    db: &Arc<TestDatabase>,
    tweak: impl FnOnce(&mut confide::config::Config),
) -> String {
    let mut config = test_config(db);
    tweak(&mut config);
    match App::build_with_clock(config, Arc::new(ManualClock::default())).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

async fn a_node_without_the_key_or_with_encryption_off_refuses_to_start(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Kept")
        .await;
    let error = build_error(&app.db, |c| c.encryption.enabled = false).await;
    assert!(error.contains("content is encrypted"), "{error}");
    let other = "ab".repeat(32);
    let error = build_error(&app.db, |c| c.encryption.key = other.as_str().into()).await;
    assert!(error.contains("key-encryption key"), "{error}");
    assert!(
        error.contains(Kek::from_hex(&other).unwrap().id()),
        "{error}"
    );
    let error = build_error(&app.db, |c| c.encryption.key = "not hex".into()).await;
    assert!(
        error.contains("encryption.key must hold 64 hexadecimal digits"),
        "{error}"
    );
    // A key file others may read is refused before anything is read with it.
    let shared = app.db.data_dir().with_extension("shared.key");
    std::fs::write(&shared, "cd".repeat(32)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = build_error(&app.db, |c| c.encryption.key_file = shared.clone()).await;
    assert!(error.contains("may be read by other users"), "{error}");
    // The key file made on first start is the owner's alone.
    let made = app.db.data_dir().join("confide.key");
    let mode = std::fs::metadata(&made).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // The server that has the key still serves.
    assert_eq!(app.thread(&cast.client, &thread).await.0, StatusCode::OK);
}

fn keys_command(db: &TestDatabase, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Binary::command(db, env)
        .arg("keys")
        .args(args)
        .output()
        .expect("confide keys runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn keys_rotate_rewraps_every_data_key_while_the_server_runs(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let other = Cast::in_practice(&app, "elm").await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Rotated")
        .await;
    let old_text = std::fs::read_to_string(app.db.data_dir().join("confide.key")).unwrap();
    let old = Kek::from_hex(&old_text).unwrap();

    let (ok, status) = keys_command(&app.db, &[], &["status"]);
    assert!(ok, "{status}");
    assert!(
        status.contains(&format!("this node's key-encryption key: {}", old.id())),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "practice oak: data key generation 1 wrapped under {}",
            old.id()
        )),
        "{status}"
    );
    assert!(
        status.contains("practice elm: data key generation 1"),
        "{status}"
    );

    let new_text = "5e".repeat(32);
    let new = Kek::from_hex(&new_text).unwrap();
    let new_file = app.db.data_dir().join("new.key");
    std::fs::write(&new_file, &new_text).unwrap();
    let new_path = new_file.to_str().unwrap();
    let (ok, out) = keys_command(&app.db, &[], &["rotate", "--new-key-file", new_path]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "2 data keys now wrapped under key-encryption key {}",
            new.id()
        )),
        "{out}"
    );
    // Run again (as after an interruption): nothing left to do, nothing broken.
    let (ok, out) = keys_command(&app.db, &[], &["rotate", "--new-key-file", new_path]);
    assert!(ok, "{out}");

    // The running server keeps serving with what it unwrapped.
    assert_eq!(app.thread(&cast.client, &thread).await.0, StatusCode::OK);
    // A node with the old key no longer starts; one with the new key reads everything.
    let error = build_error(&app.db, |_| {}).await;
    assert!(error.contains(new.id()), "{error}");
    let new_env = [("CONFIDE__ENCRYPTION__KEY_FILE", new_path)];
    let (ok, status) = keys_command(&app.db, &new_env, &["status"]);
    assert!(ok, "{status}");
    assert!(!status.contains("NOT this node's key"), "{status}");
    let node = app
        .spawn_sibling(|c| c.encryption.key_file = new_file.clone())
        .await;
    let provider = node.login_as(&cast.practice, &cast.provider.email).await;
    let (status, view) = node.thread(&provider, &thread).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["subject"], "Rotated");
    let elm = node.login_as(&other.practice, &other.admin.email).await;
    assert_eq!(
        node.get("/api/v1/threads?folder=inbox", &elm).await.0,
        StatusCode::OK
    );
}

/// Every sealed value of the database, as (column, value).
async fn sealed_values(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = app.db.connect().await;
    let mut out = Vec::new();
    for (table, columns) in [
        ("threads", &["subject", "preview", "announcement"][..]),
        ("messages", &["body", "body_html"][..]),
        ("drafts", &["subject", "body"][..]),
        ("thread_notes", &["body", "body_html"][..]),
        ("chart_note_versions", &["content"][..]),
        ("attachments", &["name", "content_sha256"][..]),
    ] {
        for column in columns {
            let values: Vec<Option<String>> =
                sqlx::query_scalar(&format!("SELECT {column} FROM {table}"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for v in values.into_iter().flatten() {
                out.push((format!("{table}.{column}"), v));
            }
        }
    }
    out
}

async fn keys_rekey_seals_everything_again_with_a_new_data_key_while_the_server_runs(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.encryption.refresh_seconds = 1).await;
    let cast = Cast::new(&app).await;
    let ids = write_markers(&app, &cast).await;
    let before = sealed_values(&app).await;
    assert!(before.len() >= 12, "{before:?}");
    for (column, value) in &before {
        assert_eq!(confide::crypto::generation_of(value), Some(1), "{column}");
    }
    let (_, info) = app
        .get(
            &format!("/api/v1/attachments/{}/info", ids.3),
            &cast.provider,
        )
        .await;
    let address = app
        .blob_address(&cast.practice, info["sha256"].as_str().unwrap())
        .await;
    let read_file = || async {
        use tokio::io::AsyncReadExt;
        let mut bytes = Vec::new();
        let mut file = app.state.blobs.open(&address).await.unwrap();
        file.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let file_before = read_file().await;

    let env = [("CONFIDE__ENCRYPTION__REFRESH_SECONDS", "1")];
    let (ok, out) = keys_command(&app.db, &env, &["rekey", "--practice", "oak"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("data key generation 2 now seals everything"),
        "{out}"
    );

    let after = sealed_values(&app).await;
    assert_eq!(after.len(), before.len());
    for (column, value) in &after {
        assert_eq!(confide::crypto::generation_of(value), Some(2), "{column}");
    }
    let file_after = read_file().await;
    assert_eq!(confide::crypto::files::generation_of(&file_after), Some(2));
    assert_ne!(file_after, file_before);
    assert_eq!(file_after.len(), file_before.len());

    // The running server took up the new key: it reads everything, finds it again, and
    // seals what it writes now with the new generation.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    markers_readable(&app, &cast, &ids).await;
    assert_eq!(
        found_by_search(&app, &cast.client, "quillwort9body", 1).await,
        vec![ids.0.clone()]
    );
    let new = app
        .send(&cast.provider, &[&user(&cast.client)], "After the rekey")
        .await;
    let subject = one(&app, "SELECT subject FROM threads WHERE id = $1", &new).await;
    assert_eq!(confide::crypto::generation_of(&subject), Some(2));
    // Nothing is left under the first generation for someone who kept its key.
    let (ok, status) = keys_command(&app.db, &[], &["status"]);
    assert!(ok, "{status}");
    assert!(
        status.contains("practice oak: data key generation 2"),
        "{status}"
    );
}
