//! Files for some participants: to everyone else they do not exist.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Session, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    files_limited_to_some_participants_do_not_exist_for_the_others,
    only_staff_limit_files_and_only_in_conversations,
);

/// Uploads a small text file; returns its id.
async fn upload(app: &TestApp, who: &Session, name: &str) -> String {
    app.upload_text(who, name).await
}

fn names(thread: &Value) -> Vec<String> {
    thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["attachments"].as_array().unwrap().clone())
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

async fn files_limited_to_some_participants_do_not_exist_for_the_others(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let private = upload(&app, &cast.provider, "casey-plan.txt").await;
    let shared = upload(&app, &cast.provider, "group-handout.txt").await;
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client), user(&cast.other_client), user(&cast.biller)],
                "subject": "Group materials",
                "body": "Here are this week's materials.",
                "kind": "conversation",
                "attachment_ids": [private, shared],
                "attachment_visibility": {private.clone(): [user(&cast.client)]},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    let id = thread["id"].as_str().unwrap();
    assert_eq!(thread["attachment_count"], 2, "the sender sees both");

    let (_, seen) = app.thread(&cast.client, id).await;
    assert_eq!(names(&seen), ["casey-plan.txt", "group-handout.txt"]);
    for other in [&cast.other_client, &cast.biller] {
        let (_, seen) = app.thread(other, id).await;
        assert_eq!(names(&seen), ["group-handout.txt"]);
        assert_eq!(seen["attachment_count"], 1);
        assert!(!seen.to_string().contains(&private));
        let (_, inbox) = app.get("/api/v1/threads?folder=inbox", other).await;
        assert_eq!(inbox["threads"][0]["attachment_count"], 1, "{inbox}");
        let download = app
            .client
            .get(app.url(&format!("/api/v1/attachments/{private}")))
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), StatusCode::NOT_FOUND);
        let export = app
            .client
            .get(app.url(&format!("/api/v1/threads/{id}/export?format=csv")))
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            export.contains("group-handout.txt") && !export.contains("casey-plan"),
            "{export}"
        );
    }
    let download = app
        .client
        .get(app.url(&format!("/api/v1/attachments/{private}")))
        .bearer_auth(&cast.client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let (_, inbox) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    assert_eq!(inbox["threads"][0]["attachment_count"], 2);
}

async fn only_staff_limit_files_and_only_in_conversations(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let file = upload(&app, &cast.provider, "notes.txt").await;
    let compose = |kind: &str, to: Vec<String>, who: String| {
        json!({
            "to": to,
            "subject": "Files",
            "body": "A file for some of you.",
            "kind": kind,
            "attachment_ids": [file],
            "attachment_visibility": {file.clone(): [who]},
        })
    };
    let to = vec![user(&cast.client), user(&cast.other_client)];
    let message = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            compose("message", to.clone(), user(&cast.client)),
        )
        .await;
    assert_problem(&message, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(message.1["field"], "attachment_visibility");
    let outsider = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            compose("conversation", to.clone(), user(&cast.front)),
        )
        .await;
    assert_problem(&outsider, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(outsider.1["field"], "attachment_visibility");
    // Nothing was sent: the file is still the provider's to use.
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
    let group = crate::open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), &user(&cast.other_client)],
        "Group",
    )
    .await;
    let id = group["id"].as_str().unwrap();
    let client_file = upload(&app, &cast.client, "mine.txt").await;
    let by_client = app
        .reply(
            &cast.client,
            id,
            json!({
                "body": "Only for the provider, please.",
                "attachment_ids": [client_file],
                "attachment_visibility": {client_file.clone(): [user(&cast.provider)]},
            }),
        )
        .await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let (status, reply) = app
        .reply(
            &cast.provider,
            id,
            json!({
                "body": "Your plan, Casey.",
                "attachment_ids": [file],
                "attachment_visibility": {file.clone(): [cast.client.id.clone()]},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (_, seen) = app.thread(&cast.other_client, id).await;
    assert_eq!(seen["messages"][1]["attachments"], json!([]));
}
