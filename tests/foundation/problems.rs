//! Problems that only arise when something goes wrong around a request: a concurrent
//! change, an index not ready, a database that stalls or breaks, a body of the wrong type.
//! Each asserts the exact status and `code` from the one table in `domain/problem.rs`.

use std::sync::Arc;

use confide::domain::{Code, Role};
use confide::service::Person;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use confide::clock::ManualClock;

use crate::helpers::{assert_problem, Backend, TestApp, TestDatabase};
use crate::on_both_backends;

on_both_backends!(
    a_change_over_a_stale_read_is_an_edit_conflict,
    search_is_unavailable_until_the_index_is_ready,
    a_request_the_database_stalls_ends_with_server_timeout,
    an_internal_error_tells_nothing_of_its_cause,
    a_body_that_is_not_json_is_an_unsupported_media_type,
);

async fn a_change_over_a_stale_read_is_an_edit_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;

    let mut read = app.state.store.read().await.unwrap();
    let row = confide::store::people::find_any_practice(&mut read, &client.id)
        .await
        .unwrap()
        .expect("the client");
    drop(read);
    let mut stale = Person::try_from(row).unwrap();

    // Someone else changes the person after the read…
    let (status, _) = app
        .patch(
            &format!("/api/v1/people/{}", client.id),
            &admin,
            json!({"name": "Casey Changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // …so the write over the stale copy is refused, and nothing of it is written.
    stale.name = "Stale Name".into();
    let mut tx = app.state.store.begin().await.unwrap();
    let err = confide::service::people::write_person(&mut tx, &app.state, &mut stale)
        .await
        .unwrap_err();
    drop(tx);
    assert_eq!(err.code, Code::EditConflict);
    assert_eq!(err.status().as_u16(), 409);
    let (_, person) = app
        .get(&format!("/api/v1/people/{}", client.id), &admin)
        .await;
    assert_eq!(person["name"], "Casey Changed");
}

async fn search_is_unavailable_until_the_index_is_ready(backend: Backend) {
    // A data directory whose `search` is a file: the index can never be built there.
    let db = TestDatabase::create(backend).await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    std::fs::write(db.data_dir().join("search"), b"not a directory").unwrap();
    let app = TestApp::spawn_on(db, Arc::new(ManualClock::default()), |_| {}).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;

    let result = app
        .post("/api/v1/search", &admin, json!({"q": "anything"}))
        .await;
    assert_problem(
        &result,
        StatusCode::SERVICE_UNAVAILABLE,
        "search_unavailable",
    );
    // The rest of the mailbox works without the index.
    let (status, _) = app.get("/api/v1/folders", &admin).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_request_the_database_stalls_ends_with_server_timeout(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.server.request_timeout_secs = 1).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;

    // Another writer holds the lock every folder write needs.
    let mut other = app.db.connect().await;
    match backend {
        Backend::Sqlite => {
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut other)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::raw_sql("BEGIN; LOCK TABLE folders IN EXCLUSIVE MODE")
                .execute(&mut other)
                .await
                .unwrap();
        }
    }
    let result = app
        .post("/api/v1/folders", &admin, json!({"name": "Later"}))
        .await;
    assert_problem(&result, StatusCode::SERVICE_UNAVAILABLE, "server_timeout");
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();

    // The abandoned request wrote nothing, and the next one goes through.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, folders) = app.get("/api/v1/folders", &admin).await;
    let names: Vec<&str> = folders
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(!names.contains(&"Later"), "{folders}");
    let (status, _) = app
        .post("/api/v1/folders", &admin, json!({"name": "Later"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn an_internal_error_tells_nothing_of_its_cause(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;

    let mut other = app.db.connect().await;
    sqlx::raw_sql("ALTER TABLE folders RENAME TO folders_gone")
        .execute(&mut other)
        .await
        .unwrap();
    let result = app.get("/api/v1/folders", &admin).await;
    assert_problem(&result, StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    let text = result.1.to_string();
    for leak in [
        "folders", "sqlite", "postgres", "relation", "table", "SELECT",
    ] {
        assert!(
            !text.to_lowercase().contains(&leak.to_lowercase()),
            "{leak}: {text}"
        );
    }
    sqlx::raw_sql("ALTER TABLE folders_gone RENAME TO folders")
        .execute(&mut other)
        .await
        .unwrap();
    let (status, _) = app.get("/api/v1/folders", &admin).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_body_that_is_not_json_is_an_unsupported_media_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let resp = app
        .client
        .post(app.url("/api/v1/folders"))
        .bearer_auth(&admin.token)
        .header("content-type", "text/plain")
        .body("name=Later")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_problem(
        &(status, body),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}
