//! The two kinds of thread, announcements, the scheduled start, completing and reopening.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, open_conversation, reply_ok, user};

on_both_backends!(
    only_providers_and_admins_open_conversations,
    everyone_in_a_conversation_replies_even_with_several_clients,
    clients_in_a_conversation_see_each_others_names_never_emails,
    external_agents_stay_invisible_to_clients_in_a_conversation,
    a_conversation_has_at_most_the_practice_maximum_of_participants,
    staff_participants_set_and_clear_the_announcement,
    before_the_start_only_staff_post,
    a_completed_thread_takes_no_posts_and_moves_to_everyones_archive,
    staff_reopen_a_completed_thread,
);

async fn only_providers_and_admins_open_conversations(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let to = [user(&cast.client)];
    for who in [&cast.front, &cast.biller, &cast.agent] {
        let refused = app
            .post(
                "/api/v1/threads",
                who,
                json!({"to": to, "subject": "Group", "body": "Welcome, everyone here.", "kind": "conversation"}),
            )
            .await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(refused.1["field"], "kind");
    }
    let refused = app
        .post(
            "/api/v1/threads",
            &cast.client,
            json!({"to": [user(&cast.provider)], "subject": "Group", "body": "Can we make a group?", "kind": "conversation"}),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let unknown = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({"to": to, "subject": "Group", "body": "Welcome, everyone here.", "kind": "chat"}),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{}", unknown.1);
    for host in [&cast.provider, &cast.admin] {
        let thread = open_conversation(&app, host, &[&user(&cast.client)], "Group").await;
        assert_eq!(thread["reply"]["allowed"], true);
    }
    // A plain compose is still a message thread.
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Plain")
        .await;
    assert_eq!(app.thread(&cast.client, &id).await.1["kind"], "message");
}

async fn everyone_in_a_conversation_replies_even_with_several_clients(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (client, other, biller) = (
        user(&cast.client),
        user(&cast.other_client),
        user(&cast.biller),
    );
    let to = [client.as_str(), other.as_str(), biller.as_str()];
    let group = open_conversation(&app, &cast.provider, &to, "Support group").await;
    let id = group["id"].as_str().unwrap();
    for who in [
        &cast.client,
        &cast.other_client,
        &cast.biller,
        &cast.provider,
    ] {
        reply_ok(&app, who, id, "Thanks, glad to be here.").await;
    }
    let (_, seen) = app.thread(&cast.other_client, id).await;
    assert_eq!(seen["messages"].as_array().unwrap().len(), 5);
    assert_eq!(seen["reply"]["allowed"], true);
    // The same people in a message thread: nobody replies.
    let plain = app.send(&cast.provider, &to, "Not a group").await;
    let refused = app
        .reply(
            &cast.client,
            &plain,
            json!({"body": "Thanks, glad to be here."}),
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "replies_not_allowed");
}

async fn clients_in_a_conversation_see_each_others_names_never_emails(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (client, other, biller) = (
        user(&cast.client),
        user(&cast.other_client),
        user(&cast.biller),
    );
    let to = [client.as_str(), other.as_str(), biller.as_str()];
    let group = open_conversation(&app, &cast.provider, &to, "Support group").await;
    let id = group["id"].as_str().unwrap();
    reply_ok(&app, &cast.other_client, id, "Hello from Dana here.").await;

    let (_, seen) = app.thread(&cast.client, id).await;
    let names: Vec<&str> = seen["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Dana Client"), "{names:?}");
    assert_eq!(seen["other_recipients"], 0);
    assert_eq!(seen["messages"][1]["sender"]["name"], "Dana Client");
    let text = seen.to_string();
    for email in [
        &cast.other_client.email,
        &cast.provider.email,
        &cast.biller.email,
    ] {
        assert!(
            !text.contains(email.as_str()),
            "a client sees no email: {text}"
        );
    }

    // The host sees everyone's email; other staff do not.
    let (_, hosted) = app.thread(&cast.provider, id).await;
    for p in hosted["participants"].as_array().unwrap() {
        assert!(p["email"].as_str().is_some_and(|e| e.contains('@')), "{p}");
    }
    let (_, staff) = app.thread(&cast.biller, id).await;
    assert!(!staff.to_string().contains(&cast.other_client.email));

    // The list shows the same names.
    let (_, inbox) = app.get("/api/v1/threads?folder=inbox", &cast.client).await;
    let listed = inbox["threads"][0].to_string();
    assert!(listed.contains("Dana Client") && !listed.contains(&cast.other_client.email));
}

async fn external_agents_stay_invisible_to_clients_in_a_conversation(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (client, agent) = (user(&cast.client), user(&cast.agent));
    let to = [client.as_str(), agent.as_str()];
    let group = open_conversation(&app, &cast.provider, &to, "With an agent").await;
    let id = group["id"].as_str().unwrap();
    reply_ok(&app, &cast.agent, id, "Agent replying in the group.").await;
    let (_, seen) = app.thread(&cast.client, id).await;
    let text = seen.to_string();
    assert!(!text.contains("Eve Agent"), "{text}");
    assert!(!text.contains(&cast.agent.id), "{text}");
    assert_eq!(seen["messages"][1]["sender"]["name"], "Another recipient");
}

async fn a_conversation_has_at_most_the_practice_maximum_of_participants(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, body) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"conversation_max_participants": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let too_many = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client), user(&cast.other_client), user(&cast.biller)],
                "subject": "Too big",
                "body": "Welcome, everyone here.",
                "kind": "conversation",
            }),
        )
        .await;
    assert_problem(&too_many, StatusCode::BAD_REQUEST, "too_many_participants");
    assert_eq!(too_many.1["field"], "to");
    // A group counts by its members.
    let group = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client), user(&cast.other_client), "group:billers"],
                "subject": "Too big",
                "body": "Welcome, everyone here.",
                "kind": "conversation",
            }),
        )
        .await;
    assert_problem(&group, StatusCode::BAD_REQUEST, "too_many_participants");
    open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), &user(&cast.other_client)],
        "Just right",
    )
    .await;
    // The limit is for conversations: a message thread may reach more.
    app.send(
        &cast.provider,
        &[
            &user(&cast.client),
            &user(&cast.other_client),
            &user(&cast.biller),
        ],
        "A notice",
    )
    .await;
}

async fn staff_participants_set_and_clear_the_announcement(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Care",
        )
        .await;
    let path = format!("/api/v1/threads/{id}/announcement");
    let (status, set) = app
        .put(
            &path,
            &cast.biller,
            json!({"text": "  Office closed on Friday  "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["text"], "Office closed on Friday");
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert_eq!(seen["announcement"], "Office closed on Friday");

    let by_client = app
        .put(&path, &cast.client, json!({"text": "Mine now"}))
        .await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let outsider = app
        .put(&path, &cast.front, json!({"text": "Not mine"}))
        .await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");
    let long = app
        .put(&path, &cast.provider, json!({"text": "x".repeat(121)}))
        .await;
    assert_problem(&long, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(long.1["field"], "text");
    assert_eq!(
        app.thread(&cast.client, &id).await.1["announcement"],
        "Office closed on Friday",
        "a refused change changes nothing"
    );

    let (status, _) = app.delete(&path, &cast.provider).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app
        .thread(&cast.client, &id)
        .await
        .1
        .get("announcement")
        .is_none());
}

async fn before_the_start_only_staff_post(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    // Within the sessions' 30 idle minutes, so that nobody has to sign in again.
    let starts_ms = app.clock_now() + 20 * 60_000;
    let starts = confide::clock::to_datetime(starts_ms);
    let (status, group) = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client), user(&cast.other_client)],
                "subject": "Tuesday group",
                "body": "We start on Tuesday at six.",
                "kind": "conversation",
                "starts_at": starts,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap();
    let (_, seen) = app.thread(&cast.client, id).await;
    assert_eq!(crate::ms(&seen["starts_at"]), starts_ms);
    assert_eq!(seen["reply"]["allowed"], false);
    assert_eq!(seen["reply"]["reason"], "conversation_not_started");
    let early = app
        .reply(&cast.client, id, json!({"body": "Is anyone here yet?"}))
        .await;
    assert_problem(&early, StatusCode::CONFLICT, "conversation_not_started");
    reply_ok(&app, &cast.provider, id, "Reminder: we start soon.").await;

    app.clock.advance_minutes(21);
    reply_ok(&app, &cast.client, id, "Hello, I am here now.").await;

    let message_thread = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({
                "to": [user(&cast.client)],
                "subject": "Not a group",
                "body": "A message body that is long enough.",
                "starts_at": starts,
            }),
        )
        .await;
    assert_problem(&message_thread, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(message_thread.1["field"], "starts_at");
}

async fn a_completed_thread_takes_no_posts_and_moves_to_everyones_archive(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let group = open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), &user(&cast.other_client)],
        "Six-week group",
    )
    .await;
    let id = group["id"].as_str().unwrap();
    let message = crate::first_message(&group);
    let path = format!("/api/v1/threads/{id}/complete");
    let by_client = app.post(&path, &cast.client, json!({})).await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app.post(&path, &cast.provider, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for who in [&cast.provider, &cast.client, &cast.other_client] {
        assert!(app.folder(who, "inbox").await.is_empty());
        assert_eq!(app.folder(who, "archive").await, vec![id.to_string()]);
        let (_, seen) = app.thread(who, id).await;
        assert!(seen["completed_at"].is_string(), "{seen}");
        assert_eq!(seen["reply"]["reason"], "thread_completed");
        let refused = app
            .reply(who, id, json!({"body": "One more thing here."}))
            .await;
        assert_problem(&refused, StatusCode::CONFLICT, "thread_completed");
    }
    let react = crate::react(&app, &cast.client, &message, "👍", true).await;
    assert_problem(&react, StatusCode::CONFLICT, "thread_completed");
    let note = app
        .post(
            &format!("/api/v1/threads/{id}/notes"),
            &cast.provider,
            json!({"body": "late"}),
        )
        .await;
    assert_problem(&note, StatusCode::CONFLICT, "thread_completed");
}

async fn staff_reopen_a_completed_thread(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app
        .person(&cast.practice, Role::Provider, "Sam Second")
        .await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&second)],
            "Intake",
        )
        .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/threads/{id}/complete"),
            &second,
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "any staff participant completes"
    );
    // An email-style thread says it was completed, and when, as a conversation does.
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert!(seen["completed_at"].is_string(), "{seen}");
    let (_, page) = app
        .get("/api/v1/threads?folder=archive", &cast.client)
        .await;
    assert!(page["threads"][0]["completed_at"].is_string(), "{page}");
    let reopen = format!("/api/v1/threads/{id}/reopen");
    let by_client = app.post(&reopen, &cast.client, json!({})).await;
    assert_problem(&by_client, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app.post(&reopen, &cast.provider, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert!(seen.get("completed_at").is_none(), "{seen}");
    reply_ok(&app, &cast.client, &id, "Thanks for reopening this.").await;
    // A new message brings it back to the Inbox.
    assert_eq!(app.folder(&cast.provider, "inbox").await, vec![id.clone()]);
}
