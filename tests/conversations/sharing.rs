//! Sharing a thread with the team, and converting it to a group.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, reply_ok, user};

on_both_backends!(
    staff_share_a_thread_with_staff_who_then_see_its_whole_history,
    no_client_is_ever_added_to_an_existing_thread,
    converting_to_a_group_starts_a_linked_conversation_without_the_history,
);

async fn staff_share_a_thread_with_staff_who_then_see_its_whole_history(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Billing question")
        .await;
    reply_ok(&app, &cast.client, &id, "Can someone check my invoice?").await;
    assert_problem(
        &app.thread(&cast.biller, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let path = format!("/api/v1/threads/{id}/participants");
    let by_client = app
        .post(&path, &cast.client, json!({"people": [user(&cast.biller)]}))
        .await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let outsider = app
        .post(&path, &cast.front, json!({"people": [user(&cast.biller)]}))
        .await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");

    let (status, shared) = app
        .post(
            &path,
            &cast.provider,
            json!({"people": [user(&cast.biller), user(&cast.provider)]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert_eq!(shared["added"], json!([user(&cast.biller)]));
    assert_eq!(app.folder(&cast.biller, "inbox").await, vec![id.clone()]);
    let (_, seen) = app.thread(&cast.biller, &id).await;
    assert_eq!(
        seen["messages"].as_array().unwrap().len(),
        2,
        "the whole history"
    );
    reply_ok(&app, &cast.biller, &id, "Checked: the invoice is right.").await;
    // Sharing again adds nobody; the event and the audit say who did it.
    let (_, again) = app
        .post(
            &path,
            &cast.provider,
            json!({"people": [user(&cast.biller)]}),
        )
        .await;
    assert_eq!(again["added"], json!([]));
    let (_, audit) = app.get("/api/v1/audit?limit=500", &cast.admin).await;
    let text = audit.to_string();
    assert!(
        text.contains("share_thread") && text.contains("added_to_thread"),
        "{text}"
    );
    // The client sees the new participant like any staff member.
    let (_, client_view) = app.thread(&cast.client, &id).await;
    assert!(client_view.to_string().contains("Bo Biller"));
}

async fn no_client_is_ever_added_to_an_existing_thread(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Private")
        .await;
    let path = format!("/api/v1/threads/{id}/participants");
    let refused = app
        .post(
            &path,
            &cast.provider,
            json!({"people": [user(&cast.biller), user(&cast.other_client)]}),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "recipient_not_allowed");
    assert_eq!(refused.1["field"], "people");
    assert_problem(
        &app.thread(&cast.biller, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &app.thread(&cast.other_client, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let invited = app
        .person(&cast.practice, Role::Biller, "Ivy Invited")
        .await;
    app.update_person(&cast.admin, &invited.id, json!({"status": "disabled"}))
        .await;
    let disabled = app
        .post(&path, &cast.provider, json!({"people": [user(&invited)]}))
        .await;
    assert_problem(
        &disabled,
        StatusCode::BAD_REQUEST,
        "recipient_not_activated",
    );
    let junk = app
        .post(&path, &cast.provider, json!({"people": ["group:billers"]}))
        .await;
    assert_problem(&junk, StatusCode::BAD_REQUEST, "invalid_field");
}

async fn converting_to_a_group_starts_a_linked_conversation_without_the_history(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let old = app
        .send(&cast.provider, &[&user(&cast.client)], "One to one")
        .await;
    reply_ok(&app, &cast.client, &old, "Something only for my provider.").await;
    let (status, group) = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client), user(&cast.other_client)],
                "subject": "Now as a group",
                "body": "Let us continue as a group.",
                "kind": "conversation",
                "linked_from": old,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["linked_from"], json!(old));
    assert_eq!(
        group["messages"].as_array().unwrap().len(),
        1,
        "no history copied"
    );
    let id = group["id"].as_str().unwrap();
    let (_, seen) = app.thread(&cast.other_client, id).await;
    assert!(
        seen.get("linked_from").is_none(),
        "not to someone outside the old thread"
    );
    assert!(!seen.to_string().contains("only for my provider"));
    let (_, seen) = app.thread(&cast.client, id).await;
    assert_eq!(seen["linked_from"], json!(old));

    // Only from a thread one takes part in, and only into a conversation.
    let stranger = app
        .person(&cast.practice, Role::Provider, "Sam Second")
        .await;
    let foreign = app
        .post(
            "/api/v1/threads",
            &stranger,
            json!({"to": [user(&cast.client)], "subject": "Group", "body": "Taking it over here.", "kind": "conversation", "linked_from": old}),
        )
        .await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(foreign.1["field"], "linked_from");
    let plain = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({"to": [user(&cast.client)], "subject": "Plain", "body": "Not a conversation.", "linked_from": old}),
        )
        .await;
    assert_problem(&plain, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(plain.1["field"], "linked_from");
}
