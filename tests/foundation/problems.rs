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
    a_cursor_is_honoured_only_by_its_list_for_its_holder_on_any_node,
);

async fn a_change_over_a_stale_read_is_an_edit_conflict(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
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
        .update_person(&admin, &client.id, json!({"name": "Casey Changed"}))
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
    let (_, person) = app.person_of(&admin, &client.id).await;
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
    let (app, practice) = TestApp::with_practice(backend).await;
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
    let (app, practice) = TestApp::with_practice(backend).await;
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

async fn a_cursor_is_honoured_only_by_its_list_for_its_holder_on_any_node(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let other_admin = app.person(&practice, Role::Admin, "Ada Admin").await;
    for name in ["Ann", "Ben", "Cai"] {
        app.person(&practice, Role::Client, name).await;
    }
    let next = |page: &Value| page["next_cursor"].as_str().map(str::to_string);

    // The audit log pages with an opaque cursor, not a sequence number.
    let (status, first) = app.get("/api/v1/audit?limit=2", &admin).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let audit_cursor = next(&first).expect("more than two audit events");
    assert!(audit_cursor.parse::<i64>().is_err(), "{audit_cursor}");
    let (status, second) = app
        .get(
            &format!("/api/v1/audit?limit=2&cursor={audit_cursor}"),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(second["events"][0]["seq"].as_i64() < first["events"][1]["seq"].as_i64());
    let raw_seq = first["events"][1]["seq"].as_i64().unwrap();
    let (_, people) = app.get("/api/v1/people?limit=2", &admin).await;
    let people_cursor = next(&people).expect("more than two people");

    for (path, who) in [
        // A sequence number made up by the client.
        (format!("/api/v1/audit?cursor={raw_seq}"), &admin),
        // Another list's cursor.
        (format!("/api/v1/audit?cursor={people_cursor}"), &admin),
        (format!("/api/v1/threads?cursor={people_cursor}"), &admin),
        // Someone else's cursor.
        (format!("/api/v1/audit?cursor={audit_cursor}"), &other_admin),
        (
            format!("/api/v1/people?cursor={people_cursor}"),
            &other_admin,
        ),
    ] {
        let result = app.get(&path, who).await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(result.1["field"], "cursor", "{path}");
    }

    // Another node on the same database honours the cursor (the key is shared).
    let sibling = app.spawn_sibling(|_| {}).await;
    let (status, again) = sibling
        .get(
            &format!("/api/v1/people?limit=2&cursor={people_cursor}"),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(!again["people"].as_array().unwrap().is_empty());
}
