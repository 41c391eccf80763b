//! Pins: one's own pinned threads list first; staff pin messages for everyone.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{first_message, on_both_backends, reply_ok, user};

on_both_backends!(
    pinned_threads_list_first_for_whoever_pinned_them,
    staff_pin_messages_for_everyone_in_the_thread,
);

fn ids(page: &Value) -> Vec<String> {
    page["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn pinned_threads_list_first_for_whoever_pinned_them(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let mut sent = Vec::new();
    for subject in ["First", "Second", "Third", "Fourth"] {
        sent.push(
            app.send(&cast.provider, &[&user(&cast.client)], subject)
                .await,
        );
        app.clock.advance_minutes(1);
    }
    let oldest = sent[0].clone();
    let (status, _) = app
        .put(
            &format!("/api/v1/threads/{oldest}/pin"),
            &cast.client,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = app
        .get("/api/v1/threads?folder=inbox&limit=2", &cast.client)
        .await;
    assert_eq!(
        ids(&page),
        [oldest.clone(), sent[3].clone(), sent[2].clone()]
    );
    assert_eq!(page["threads"][0]["pinned"], true);
    assert_eq!(page["threads"][1]["pinned"], false);
    let (_, next) = app
        .get(
            &format!(
                "/api/v1/threads?folder=inbox&limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &cast.client,
        )
        .await;
    assert_eq!(
        ids(&next),
        [sent[1].clone()],
        "not listed again in its place"
    );
    // Only for the one who pinned it.
    let (_, theirs) = app
        .get("/api/v1/threads?folder=sent&limit=10", &cast.provider)
        .await;
    assert_eq!(ids(&theirs)[0], sent[3]);
    // Pinned in the Archive too, once moved there.
    app.file_thread(&cast.client, &oldest, json!({"folder": "archive"}))
        .await;
    let (_, archive) = app
        .get("/api/v1/threads?folder=archive", &cast.client)
        .await;
    assert_eq!(archive["threads"][0]["pinned"], true);
    let (_, inbox) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    assert!(!ids(&inbox).contains(&oldest));
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{oldest}/pin"), &cast.client)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, seen) = app.thread(&cast.client, &oldest).await;
    assert_eq!(seen["pinned"], false);
    let outsider = app
        .put(
            &format!("/api/v1/threads/{oldest}/pin"),
            &cast.biller,
            json!(null),
        )
        .await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");
}

async fn staff_pin_messages_for_everyone_in_the_thread(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Plan")
        .await;
    reply_ok(&app, &cast.client, &id, "Thanks for the plan.").await;
    let (_, thread) = app.thread(&cast.client, &id).await;
    let message = first_message(&thread);
    let path = format!("/api/v1/messages/{message}/pin");
    let by_client = app.put(&path, &cast.client, json!(null)).await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app.put(&path, &cast.provider, json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert_eq!(seen["messages"][0]["pinned"], true);
    assert_eq!(seen["messages"][1]["pinned"], false);
    let (status, _) = app.delete(&path, &cast.provider).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.thread(&cast.client, &id).await.1["messages"][0]["pinned"],
        false
    );
    let outsider = app.put(&path, &cast.biller, json!(null)).await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");
}
