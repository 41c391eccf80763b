//! Threads and replies, and inactive clients.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, user, Cast};

on_both_backends!(
    one_to_one_threads_allow_replies,
    staff_plus_one_client_anyone_replies_to_all,
    two_or_more_clients_nobody_may_reply,
    a_new_message_brings_the_thread_back_to_the_inbox,
    inactive_client_reaches_only_front_office_and_billers,
    inactive_client_cannot_reply_to_a_provider,
    reactivated_client_writes_to_providers_again,
    concurrent_replies_all_land_in_order,
    a_long_thread_opens_on_its_latest_messages_and_pages_back,
);

async fn reply(
    app: &TestApp,
    who: &crate::helpers::Session,
    thread: &str,
) -> (StatusCode, serde_json::Value) {
    app.post(
        &format!("/api/v1/threads/{thread}/messages"),
        who,
        json!({"body": "Thank you, that works for me."}),
    )
    .await
}

async fn one_to_one_threads_allow_replies(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.client, &[&user(&cast.provider)], "Appointment")
        .await;
    let (status, message) = reply(&app, &cast.provider, &id).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["sender"]["name"], "Pat Provider");
    let (status, message) = reply(&app, &cast.client, &id).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let (_, thread) = app.thread(&cast.provider, &id).await;
    assert_eq!(thread["messages"].as_array().unwrap().len(), 3);
    assert_eq!(thread["message_count"], 3);
}

async fn staff_plus_one_client_anyone_replies_to_all(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller), &user(&cast.front)],
            "Care team",
        )
        .await;
    for who in [&cast.client, &cast.biller, &cast.front, &cast.provider] {
        assert_eq!(reply(&app, who, &id).await.0, StatusCode::CREATED);
    }
    for who in [&cast.client, &cast.biller, &cast.front, &cast.provider] {
        let (_, thread) = app.get(&format!("/api/v1/threads/{id}"), who).await;
        assert_eq!(
            thread["messages"].as_array().unwrap().len(),
            5,
            "everyone sees every message"
        );
        assert_eq!(thread["reply"]["allowed"], true);
    }
}

async fn two_or_more_clients_nobody_may_reply(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app.person("oak", Role::Client, "Second Client").await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&second), &user(&cast.biller)],
            "Group session",
        )
        .await;
    for who in [&cast.provider, &cast.client, &second, &cast.biller] {
        let result = reply(&app, who, &id).await;
        assert_problem(&result, StatusCode::CONFLICT, "replies_not_allowed");
        let (_, thread) = app.get(&format!("/api/v1/threads/{id}"), who).await;
        assert_eq!(
            thread["reply"],
            json!({"allowed": false, "reason": "replies_not_allowed"})
        );
        assert_eq!(thread["reply_allowed"], false);
    }
    let (_, thread) = app.thread(&cast.provider, &id).await;
    assert_eq!(thread["messages"].as_array().unwrap().len(), 1);
}

async fn a_new_message_brings_the_thread_back_to_the_inbox(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Follow-up")
        .await;
    let (status, _) = app
        .file_thread(
            &cast.client,
            &id,
            json!({"folder": "archive", "read": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
    assert_eq!(app.folder(&cast.client, "archive").await, vec![id.clone()]);
    // The client's own reply does not move it for them…
    assert_eq!(reply(&app, &cast.client, &id).await.0, StatusCode::CREATED);
    assert_eq!(app.folder(&cast.client, "archive").await, vec![id.clone()]);
    // …a message from someone else does, unread.
    app.file_thread(&cast.provider, &id, json!({"folder": "trash"}))
        .await;
    assert_eq!(reply(&app, &cast.client, &id).await.0, StatusCode::CREATED);
    let (_, page) = app.get("/api/v1/threads", &cast.provider).await;
    assert_eq!(page["threads"][0]["id"], id.as_str());
    assert_eq!(page["threads"][0]["unread"], true);
    assert_eq!(
        reply(&app, &cast.provider, &id).await.0,
        StatusCode::CREATED
    );
    assert_eq!(app.folder(&cast.client, "inbox").await, vec![id]);
}

async fn make_inactive(app: &TestApp, cast: &Cast) {
    let (status, _) = app
        .update_person(&cast.front, &cast.client.id, json!({"status": "inactive"}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn inactive_client_reaches_only_front_office_and_billers(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    make_inactive(&app, &cast).await;
    for to in [
        vec![user(&cast.provider)],
        vec!["group:providers".into()],
        vec![user(&cast.front), user(&cast.provider)],
    ] {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let result = app
            .compose(&cast.client, &to, "Question", "Can I reschedule, please?")
            .await;
        assert_problem(&result, StatusCode::FORBIDDEN, "client_inactive");
    }
    assert!(
        app.folder(&cast.front, "inbox").await.is_empty(),
        "nothing was sent"
    );
    for to in [
        user(&cast.front),
        user(&cast.biller),
        "group:billers".into(),
        "group:front_office".into(),
    ] {
        let (status, _) = app
            .compose(
                &cast.client,
                &[&to],
                "Question",
                "Can I reschedule, please?",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{to}");
    }
    // Their mailbox is still theirs to read.
    assert_eq!(
        app.get("/api/v1/threads?folder=sent", &cast.client).await.0,
        StatusCode::OK
    );
}

async fn inactive_client_cannot_reply_to_a_provider(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let with_provider = app
        .send(&cast.provider, &[&user(&cast.client)], "Check-in")
        .await;
    let with_front = app
        .send(
            &cast.front,
            &[&user(&cast.client), &user(&cast.biller)],
            "Billing",
        )
        .await;
    make_inactive(&app, &cast).await;
    let result = reply(&app, &cast.client, &with_provider).await;
    assert_problem(&result, StatusCode::FORBIDDEN, "client_inactive");
    // The thread view says so beforehand.
    let (_, view) = app.thread(&cast.client, &with_provider).await;
    assert_eq!(
        view["reply"],
        json!({"allowed": false, "reason": "client_inactive"})
    );
    let (_, view) = app.thread(&cast.client, &with_front).await;
    assert_eq!(view["reply"], json!({"allowed": true}));
    assert_eq!(
        reply(&app, &cast.client, &with_front).await.0,
        StatusCode::CREATED
    );
    let (status, thread) = app.thread(&cast.client, &with_provider).await;
    assert_eq!(status, StatusCode::OK, "still readable");
    assert_eq!(thread["messages"].as_array().unwrap().len(), 1);
}

async fn reactivated_client_writes_to_providers_again(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    make_inactive(&app, &cast).await;
    let result = app
        .compose(
            &cast.client,
            &[&user(&cast.provider)],
            "Question",
            "Can I reschedule, please?",
        )
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "client_inactive");
    app.update_person(&cast.front, &cast.client.id, json!({"status": "active"}))
        .await;
    let (status, _) = app
        .compose(
            &cast.client,
            &[&user(&cast.provider)],
            "Question",
            "Can I reschedule, please?",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn concurrent_replies_all_land_in_order(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller), &user(&cast.front)],
            "Busy thread",
        )
        .await;
    let mut replies = tokio::task::JoinSet::new();
    for (i, who) in [&cast.client, &cast.biller, &cast.front, &cast.provider]
        .into_iter()
        .cycle()
        .take(16)
        .enumerate()
    {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/threads/{id}/messages")),
            who.token.clone(),
        );
        replies.spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("Concurrent reply {i}.")}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let message: serde_json::Value = resp.json().await.unwrap();
            (i, status, message)
        });
    }
    let mut answered = Vec::new();
    while let Some(done) = replies.join_next().await {
        let (i, status, message) = done.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{message}");
        // Each is answered with itself, whatever landed around it.
        let text = message["body"].as_str();
        assert!(
            text.is_some_and(|t| t.contains(&format!("Concurrent reply {i}."))),
            "{message}"
        );
        answered.push(message["id"].as_str().unwrap().to_string());
    }
    let (_, thread) = app.thread(&cast.provider, &id).await;
    let mut landed: Vec<String> = thread["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    landed.sort();
    answered.sort();
    assert_eq!(answered, landed, "the answers name the replies that landed");
    assert_eq!(thread["messages"].as_array().unwrap().len(), 17);
    assert_eq!(thread["message_count"], 17);
}

/// Ids of a thread page's messages, and its `older`.
fn page_of(thread: &serde_json::Value) -> (Vec<String>, Option<String>) {
    let ids = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    (ids, thread["older"].as_str().map(str::to_string))
}

async fn a_long_thread_opens_on_its_latest_messages_and_pages_back(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "A long one")
        .await;
    for _ in 0..6 {
        let (status, body) = reply(&app, &cast.provider, &id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, whole) = app
        .get(&format!("/api/v1/threads/{id}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    let (all, older) = page_of(&whole);
    assert_eq!((all.len(), older), (7, None), "seven messages fit one page");

    let path = |q: &str| format!("/api/v1/threads/{id}?{q}");
    let (status, last) = app.get(&path("limit=3"), &cast.provider).await;
    assert_eq!(status, StatusCode::OK, "{last}");
    assert_eq!(page_of(&last), (all[4..].to_vec(), Some(all[4].clone())));
    let (_, middle) = app
        .get(&path(&format!("limit=3&before={}", all[4])), &cast.provider)
        .await;
    assert_eq!(page_of(&middle), (all[1..4].to_vec(), Some(all[1].clone())));
    let (_, first) = app
        .get(&path(&format!("limit=3&before={}", all[1])), &cast.provider)
        .await;
    assert_eq!(
        page_of(&first),
        (all[..1].to_vec(), None),
        "the first page ends the thread"
    );

    // A message of another thread is not a place in this one; the refusal marks nothing.
    let other = app
        .send(&cast.provider, &[&user(&cast.client)], "Another")
        .await;
    let (_, other_thread) = app
        .get(&format!("/api/v1/threads/{other}"), &cast.provider)
        .await;
    let foreign = page_of(&other_thread).0[0].clone();
    let refused = app
        .get(&path(&format!("before={foreign}")), &cast.client)
        .await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(refused.1["field"], "before");
    let (_, inbox) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    let unread = inbox["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .map(|t| t["unread"].clone());
    assert_eq!(
        unread,
        Some(json!(true)),
        "a refused page leaves the thread unread"
    );

    // Whoever cannot see the thread learns nothing from a page of it.
    let (status, _) = app
        .get(&path(&format!("before={}", all[2])), &cast.front)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A reply to a message of an earlier page quotes it, in its answer and on its page.
    let (status, answer) = app
        .post(
            &format!("/api/v1/threads/{id}/messages"),
            &cast.provider,
            json!({"body": "Answering the very first one.", "in_reply_to": all[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["in_reply_to"]["message_id"], all[0].as_str());
    let (_, latest) = app.get(&path("limit=2"), &cast.provider).await;
    let last = latest["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["id"], answer["id"]);
    assert_eq!(last["in_reply_to"]["message_id"], all[0].as_str());
    assert_eq!(last["in_reply_to"]["sender"]["name"], "Pat Provider");
}
