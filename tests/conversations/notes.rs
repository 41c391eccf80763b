//! Internal notes: staff participants only, never a client, anywhere.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    internal_notes_are_seen_by_staff_participants_only,
    internal_notes_reach_no_client_in_any_view_or_notification,
    a_quick_note_includes_internal_notes_only_when_asked,
);

async fn a_quick_note_includes_internal_notes_only_when_asked(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Session follow-up")
        .await;
    app.post(
        &format!("/api/v1/threads/{id}/notes"),
        &cast.provider,
        json!({"body": NOTE}),
    )
    .await;
    let (status, plain) = app.quick_note(&cast.provider, &id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert!(!plain.to_string().contains("relapse"), "{plain}");
    let (status, with) = app
        .quick_note(&cast.provider, &id, json!({"include_notes": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{with}");
    let text = with.to_string();
    assert!(
        text.contains("Internal notes") && text.contains("relapse"),
        "{text}"
    );
}

const NOTE: &str = "Discussed with supervisor: watch for relapse signs.";

async fn internal_notes_are_seen_by_staff_participants_only(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Check-in",
        )
        .await;
    let path = format!("/api/v1/threads/{id}/notes");
    let (status, note) = app.post(&path, &cast.provider, json!({"body": NOTE})).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["author"]["name"], "Pat Provider");

    let (status, listed) = app.get(&path, &cast.biller).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["notes"][0]["body"], NOTE);
    let (_, seen) = app.thread(&cast.biller, &id).await;
    assert_eq!(seen["notes"][0]["body"], NOTE);

    // A client learns nothing, not even that the route is there for them.
    assert_problem(
        &app.get(&path, &cast.client).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let by_client = app
        .post(&path, &cast.client, json!({"body": "Can I add one?"}))
        .await;
    assert_problem(&by_client, StatusCode::NOT_FOUND, "not_found");
    // Staff who are not participants neither.
    assert_problem(
        &app.get(&path, &cast.front).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let empty = app
        .post(&path, &cast.provider, json!({"body": "   "}))
        .await;
    assert_problem(&empty, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(empty.1["field"], "body");
}

async fn internal_notes_reach_no_client_in_any_view_or_notification(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Check-in")
        .await;
    app.thread(&cast.client, &id).await;
    let queued = |app: &TestApp, person: String| {
        let store = app.state.store.clone();
        async move {
            let mut conn = store.read().await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notifications WHERE person_id = $1")
                .bind(person)
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        }
    };
    let before = queued(&app, cast.client.id.clone()).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/threads/{id}/notes"),
            &cast.provider,
            json!({"body": NOTE}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        queued(&app, cast.client.id.clone()).await,
        before,
        "no notification"
    );

    let (_, seen) = app.thread(&cast.client, &id).await;
    assert!(seen.get("notes").is_none(), "{seen}");
    assert!(!seen.to_string().contains("relapse"));
    let (_, inbox) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    assert!(!inbox.to_string().contains("relapse"), "{inbox}");
    let export = app
        .client
        .get(app.url(&format!("/api/v1/threads/{id}/export?format=csv")))
        .bearer_auth(&cast.client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(!export.text().await.unwrap().contains("relapse"));
    let (_, folders) = app.get("/api/v1/folders", &cast.client).await;
    let inbox_count = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "inbox")
        .unwrap()
        .clone();
    assert_eq!(inbox_count["unread"], 0, "{inbox_count}");
}
