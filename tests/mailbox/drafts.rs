//! Drafts: saved idempotently, sent atomically, left as they were when a send fails.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    drafts_save_idempotently_and_send_atomically,
    a_refused_send_leaves_the_draft_as_it_was,
    reply_drafts_send_as_replies,
    drafts_are_private,
    a_draft_sent_twice_at_once_is_sent_once,
);

async fn drafts_save_idempotently_and_send_atomically(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.provider,
            json!({"subject": "Half-written"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let id = draft["id"].as_str().unwrap().to_string();
    let content = json!({"to": [user(&cast.client)], "subject": "Finished", "body": "The whole message, finally."});
    let (status, first) = app
        .put(
            &format!("/api/v1/drafts/{id}"),
            &cast.provider,
            content.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, second) = app
        .put(
            &format!("/api/v1/drafts/{id}"),
            &cast.provider,
            content.clone(),
        )
        .await;
    assert_eq!(first["subject"], second["subject"]);
    assert_eq!(first["to"], second["to"]);
    let (_, page) = app.get("/api/v1/drafts", &cast.provider).await;
    assert_eq!(
        page["drafts"].as_array().unwrap().len(),
        1,
        "saving twice keeps one draft"
    );
    let (_, folders) = app.get("/api/v1/folders", &cast.provider).await;
    let drafts = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "drafts")
        .unwrap()
        .clone();
    assert_eq!(drafts["total"], 1);
    let (status, sent) = app
        .post(
            &format!("/api/v1/drafts/{id}/send"),
            &cast.provider,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let thread_id = sent["thread_id"].as_str().unwrap();
    assert_eq!(
        app.folder(&cast.client, "inbox").await,
        vec![thread_id.to_string()]
    );
    let result = app
        .get(&format!("/api/v1/drafts/{id}"), &cast.provider)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .post(
            &format!("/api/v1/drafts/{id}/send"),
            &cast.provider,
            json!({}),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.folder(&cast.client, "inbox").await.len(),
        1,
        "sent once"
    );
}

async fn a_refused_send_leaves_the_draft_as_it_was(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let content = json!({"to": [user(&cast.agent)], "subject": "", "body": "A message without a subject line."});
    let (_, draft) = app.post("/api/v1/drafts", &cast.client, content).await;
    let id = draft["id"].as_str().unwrap();
    let result = app
        .post(
            &format!("/api/v1/drafts/{id}/send"),
            &cast.client,
            json!({}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "subject");
    let (status, after) = app.get(&format!("/api/v1/drafts/{id}"), &cast.client).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, draft);
    // Fixing the subject is not enough: a client cannot write to an external agent.
    app.put(&format!("/api/v1/drafts/{id}"), &cast.client, json!({"to": [user(&cast.agent)], "subject": "Hello", "body": "A message with a subject line."})).await;
    let result = app
        .post(
            &format!("/api/v1/drafts/{id}/send"),
            &cast.client,
            json!({}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
    assert_eq!(
        app.get(&format!("/api/v1/drafts/{id}"), &cast.client)
            .await
            .0,
        StatusCode::OK
    );
    assert!(app.folder(&cast.client, "sent").await.is_empty());
}

async fn reply_drafts_send_as_replies(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Reply to me")
        .await;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.client,
            json!({"thread_id": thread, "body": "My considered reply."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, sent) = app
        .post(
            &format!("/api/v1/drafts/{}/send", draft["id"].as_str().unwrap()),
            &cast.client,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sent["thread_id"], thread.as_str());
    let (_, view) = app.thread(&cast.provider, &thread).await;
    assert_eq!(view["messages"][1]["body"], "My considered reply.");
    // A reply draft for a thread one is not part of is refused.
    let other = app
        .send(&cast.provider, &[&user(&cast.biller)], "Not yours")
        .await;
    let result = app
        .post(
            "/api/v1/drafts",
            &cast.client,
            json!({"thread_id": other, "body": "Sneaky reply."}),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(result.1["field"], "thread_id");
}

async fn drafts_are_private(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.provider,
            json!({"subject": "Mine only"}),
        )
        .await;
    let id = draft["id"].as_str().unwrap();
    for result in [
        app.get(&format!("/api/v1/drafts/{id}"), &cast.biller).await,
        app.put(
            &format!("/api/v1/drafts/{id}"),
            &cast.biller,
            json!({"subject": "Taken over"}),
        )
        .await,
        app.delete(&format!("/api/v1/drafts/{id}"), &cast.biller)
            .await,
        app.post(
            &format!("/api/v1/drafts/{id}/send"),
            &cast.biller,
            json!({}),
        )
        .await,
    ] {
        assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(
        app.delete(&format!("/api/v1/drafts/{id}"), &cast.provider)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

async fn a_draft_sent_twice_at_once_is_sent_once(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let content = json!({"to": [user(&cast.client)], "subject": "Only once", "body": "This draft must be sent once."});
    let (_, draft) = app.post("/api/v1/drafts", &cast.provider, content).await;
    let url = app.url(&format!(
        "/api/v1/drafts/{}/send",
        draft["id"].as_str().unwrap()
    ));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, url, token) = (app.client.clone(), url.clone(), cast.provider.token.clone());
        sends.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = sends.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::NOT_FOUND
        ]
        .contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.folder(&cast.client, "inbox").await.len(), 1);
}
