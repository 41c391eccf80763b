//! Replies to a message, reactions, read receipts and retry-safe replies.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{
    first_message, on_both_backends, open_conversation, post_with_key, react, reply_ok, user,
};

on_both_backends!(
    a_reply_names_the_message_it_answers,
    reactions_come_from_a_fixed_set_one_of_each_per_person,
    clients_among_several_clients_cannot_react,
    read_receipts_are_shown_to_staff_only,
    a_retried_reply_with_its_idempotency_key_is_sent_once,
    a_retried_draft_send_with_its_idempotency_key_is_sent_once,
);

async fn a_reply_names_the_message_it_answers(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Forms")
        .await;
    let (_, thread) = app.thread(&cast.client, &id).await;
    let first = first_message(&thread);
    let (status, answer) = app
        .reply(
            &cast.client,
            &id,
            json!({"body": "Yes, I filled them in.", "in_reply_to": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["in_reply_to"]["message_id"], first);
    assert_eq!(answer["in_reply_to"]["sender"]["name"], "Pat Provider");
    assert_eq!(
        answer["in_reply_to"]["excerpt"],
        "A message body that is long enough."
    );
    let (_, seen) = app.thread(&cast.provider, &id).await;
    assert_eq!(seen["messages"][1]["in_reply_to"]["message_id"], first);
    assert!(seen["messages"][0].get("in_reply_to").is_none());

    // A message of another thread, or none at all, is refused and nothing is sent.
    let other = app
        .send(&cast.provider, &[&user(&cast.client)], "Other")
        .await;
    let (_, other_thread) = app.thread(&cast.client, &other).await;
    for wrong in [first_message(&other_thread), "nosuchmessage".into()] {
        let refused = app
            .reply(
                &cast.client,
                &id,
                json!({"body": "Answering the wrong one.", "in_reply_to": wrong}),
            )
            .await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(refused.1["field"], "in_reply_to");
    }
    assert_eq!(app.thread(&cast.client, &id).await.1["message_count"], 2);

    // Once the quoted message is deleted, the reply no longer quotes it.
    let (status, _) = app
        .delete(&format!("/api/v1/messages/{first}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = app.thread(&cast.client, &id).await;
    assert!(after["messages"][0].get("in_reply_to").is_none(), "{after}");
}

async fn reactions_come_from_a_fixed_set_one_of_each_per_person(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Update",
        )
        .await;
    let (_, thread) = app.thread(&cast.client, &id).await;
    let message = first_message(&thread);
    for _ in 0..2 {
        let (status, body) = react(&app, &cast.client, &message, "👍", true).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    react(&app, &cast.biller, &message, "👍", true).await;
    react(&app, &cast.biller, &message, "❤️", true).await;
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert_eq!(
        seen["messages"][0]["reactions"],
        json!([
            {"emoji": "👍", "count": 2, "mine": true},
            {"emoji": "❤️", "count": 1, "mine": false},
        ])
    );
    let refused = react(&app, &cast.client, &message, "🔥", true).await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "emoji");
    let outsider = react(&app, &cast.front, &message, "👍", true).await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");

    let (status, _) = react(&app, &cast.client, &message, "👍", false).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, seen) = app.thread(&cast.biller, &id).await;
    assert_eq!(
        seen["messages"][0]["reactions"][0],
        json!({"emoji": "👍", "count": 1, "mine": true})
    );
}

async fn clients_among_several_clients_cannot_react(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.other_client)],
            "Notice",
        )
        .await;
    let (_, thread) = app.thread(&cast.client, &id).await;
    let message = first_message(&thread);
    assert_eq!(thread["reactions_allowed"], false);
    assert_eq!(thread["reactions_refusal"], "reactions_not_allowed");
    let refused = react(&app, &cast.client, &message, "👍", true).await;
    assert_problem(&refused, StatusCode::CONFLICT, "reactions_not_allowed");
    let (status, _) = react(&app, &cast.provider, &message, "🙏", true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A client sees counts, never who reacted.
    let (_, seen) = app.thread(&cast.other_client, &id).await;
    assert_eq!(
        seen["messages"][0]["reactions"],
        json!([{"emoji": "🙏", "count": 1, "mine": false}])
    );
    // In a conversation the same clients may react.
    let group = open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), &user(&cast.other_client)],
        "Group",
    )
    .await;
    let (status, _) = react(&app, &cast.client, &first_message(&group), "😊", true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn read_receipts_are_shown_to_staff_only(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Results",
        )
        .await;
    let before = app.clock_now();
    app.clock.advance_minutes(5);
    let (_, seen_by_client) = app.thread(&cast.client, &id).await;
    let text = seen_by_client.to_string();
    assert!(
        !text.contains("read_by"),
        "clients never see receipts: {text}"
    );

    let (_, seen) = app.thread(&cast.provider, &id).await;
    let receipts = seen["messages"][0]["read_by"].as_array().unwrap().clone();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["person_id"], cast.client.id);
    assert_eq!(receipts[0]["name"], "Casey Client");
    assert_eq!(crate::ms(&receipts[0]["read_at"]), before + 5 * 60_000);

    // A later message is unread until read again; the first read keeps its time.
    reply_ok(&app, &cast.provider, &id, "One more result came in.").await;
    app.clock.advance_minutes(5);
    app.thread(&cast.biller, &id).await;
    let (_, seen) = app.thread(&cast.biller, &id).await;
    let first: Vec<&str> = seen["messages"][0]["read_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["Casey Client", "Bo Biller"]);
    let second: Vec<&str> = seen["messages"][1]["read_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(second, ["Bo Biller"]);
}

async fn a_retried_reply_with_its_idempotency_key_is_sent_once(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Question")
        .await;
    let path = format!("/api/v1/threads/{id}/messages");
    let body = json!({"body": "Sent from a shaky connection."});
    let (status, first) = post_with_key(&app, &cast.client, &path, "k-1", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_with_key(&app, &cast.client, &path, "k-1", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.thread(&cast.provider, &id).await.1["message_count"], 2);

    let other = post_with_key(
        &app,
        &cast.client,
        &path,
        "k-1",
        Some(json!({"body": "Something else entirely."})),
    )
    .await;
    assert_problem(&other, StatusCode::CONFLICT, "idempotency_key_reused");
    assert_eq!(app.thread(&cast.provider, &id).await.1["message_count"], 2);
}

async fn a_retried_draft_send_with_its_idempotency_key_is_sent_once(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.client,
            json!({"to": [user(&cast.provider)], "subject": "Draft", "body": "A draft I will send twice."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let path = format!("/api/v1/drafts/{}/send", draft["id"].as_str().unwrap());
    let (status, first) = post_with_key(&app, &cast.client, &path, "d-1", None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_with_key(&app, &cast.client, &path, "d-1", None).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first);
    assert_eq!(app.folder(&cast.provider, "inbox").await.len(), 1);
    // Without the key the draft is gone.
    let (status, _) = app.post(&path, &cast.client, json!(null)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
