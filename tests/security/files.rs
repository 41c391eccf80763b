//! Data files are private to the server's user: the data directory is 0700 and every file
//! in it 0600 (the database, attachments, the search index, the outbox's `.eml` files with
//! their live links); an existing directory open to others is fixed at start, and the log
//! says so. Against the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use crate::Binary;

on_both_backends!(data_files_are_private_to_the_server);

/// Every entry under `dir` whose mode lets anyone but the owner in.
fn open_entries(dir: &Path) -> Vec<String> {
    let mut open = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        if (meta.is_file() || meta.is_dir()) && mode != wanted {
            open.push(format!("{} {:o}", path.display(), mode));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    open
}

async fn data_files_are_private_to_the_server(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    Binary::create_practice(&db, &[]);
    Binary::admin_command(
        &db,
        &[],
        &[
            "create-user",
            "--practice",
            "oak",
            "--role",
            "client",
            "--email",
            "dana@oak.example",
            "--name",
            "Dana Client",
            "--password-stdin",
        ],
    );
    // A data directory left open by an earlier version, with a file others may read.
    let data = db.data_dir();
    std::fs::create_dir_all(data.join("outbox")).unwrap();
    std::fs::write(data.join("outbox/old.eml"), "a live link").unwrap();
    for (path, mode) in [
        (data.to_path_buf(), 0o755),
        (data.join("outbox"), 0o755),
        (data.join("outbox/old.eml"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let server = Binary::serve(&db, &[("CONFIDE__SEARCH__COMMIT_INTERVAL_MS", "50")]);
    let log = server.startup_log();
    assert!(
        log.contains("the data directory was open to other users")
            && log.contains("made files and directories in the data directory private"),
        "the log says what was fixed: {log}"
    );

    // Put something everywhere: an invitation (an .eml in the outbox), an attachment, a
    // message in the search index.
    let token = server.admin_token().await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/v1/people", server.base))
        .bearer_auth(&token)
        .json(&json!({"role": "client", "name": "Casey Client", "email": "casey@oak.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let people: serde_json::Value = client
        .get(format!(
            "{}/api/v1/people?role=client&status=active",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = people["people"][0]["id"].as_str().unwrap().to_string();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"Sleep log: seven hours a night.".to_vec())
            .file_name("log.txt"),
    );
    let resp = client
        .post(format!("{}/api/v1/attachments", server.base))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let upload: serde_json::Value = resp.json().await.unwrap();
    let resp = client
        .post(format!("{}/api/v1/threads", server.base))
        .bearer_auth(&token)
        .json(&json!({
            "to": [format!("user:{client_id}")],
            "subject": "Check-in",
            "body": "How did you sleep this week?",
            "attachment_ids": [upload["attachments"][0]["id"]],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The indexer and the outbox writer work in the background.
    for _ in 0..100 {
        let outbox = std::fs::read_dir(data.join("outbox")).unwrap().count();
        let index = data.join("search");
        if outbox >= 2 && index.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(data.join("attachments").exists());
    assert!(data.join("search").exists());
    assert!(std::fs::read_dir(data.join("outbox")).unwrap().count() >= 2);
    assert_eq!(open_entries(data), Vec::<String>::new());
}
