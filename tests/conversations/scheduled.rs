//! Scheduled sends: held, editable and cancellable; sent once at their time through every
//! rule; a refusal comes back to the sender.

use confide::service::mailbox::scheduled;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Session, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    a_scheduled_message_is_sent_once_at_its_time_across_nodes,
    a_scheduled_send_refused_at_its_time_comes_back_with_the_reason,
    scheduled_sends_are_edited_cancelled_and_bounded,
);

fn at(app: &TestApp, minutes: i64) -> Value {
    json!(confide::clock::to_datetime(
        app.clock_now() + minutes * 60_000
    ))
}

async fn schedule(
    app: &TestApp,
    who: &Session,
    to: &Session,
    subject: &str,
    minutes: i64,
) -> Value {
    let (status, item) = app
        .post(
            "/api/v1/threads",
            who,
            json!({
                "to": [user(to)],
                "subject": subject,
                "body": "Written now, sent later on.",
                "send_at": at(app, minutes),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{item}");
    item
}

async fn a_scheduled_message_is_sent_once_at_its_time_across_nodes(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let item = schedule(
            &app,
            &cast.client,
            &cast.provider,
            &format!("Later {i}"),
            10,
        )
        .await;
        assert!(item["send_at"].is_string(), "{item}");
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    let (_, listed) = app.get("/api/v1/scheduled", &cast.client).await;
    assert_eq!(listed["scheduled"].as_array().unwrap().len(), 5);
    let (_, drafts) = app.get("/api/v1/drafts", &cast.client).await;
    assert_eq!(drafts["drafts"], json!([]), "not among the drafts");
    assert_eq!(scheduled::send_due(&app.state).await.unwrap(), 0, "not yet");
    assert!(app.folder(&cast.provider, "inbox").await.is_empty());

    let sibling = app.spawn_sibling(|_| {}).await;
    app.clock.advance_minutes(11);
    let (a, b) = tokio::join!(
        scheduled::send_due(&app.state),
        scheduled::send_due(&sibling.state)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(scheduled::send_due(&app.state).await.unwrap(), 0);
    let provider = app.login_as(&cast.practice, &cast.provider.email).await;
    let inbox = app.folder(&provider, "inbox").await;
    assert_eq!(inbox.len(), 5, "each sent exactly once: {inbox:?}");
    let client = app.login_as(&cast.practice, &cast.client.email).await;
    let (_, listed) = app.get("/api/v1/scheduled", &client).await;
    assert_eq!(listed["scheduled"], json!([]));
}

async fn a_scheduled_send_refused_at_its_time_comes_back_with_the_reason(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let item = schedule(&app, &cast.provider, &cast.client, "Reminder", 10).await;
    let (status, _) = app
        .update_person(&cast.admin, &cast.client.id, json!({"status": "disabled"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_minutes(11);
    // (Each server's own worker may get there first: the outcome is what counts.)
    scheduled::send_due(&app.state).await.unwrap();
    let provider = app.login_as(&cast.practice, &cast.provider.email).await;
    let (_, listed) = app.get("/api/v1/scheduled", &provider).await;
    let failed = &listed["scheduled"][0];
    assert_eq!(failed["id"], item["id"]);
    assert_eq!(
        failed["failure"]["code"], "recipient_not_activated",
        "{failed}"
    );
    assert!(failed.get("send_at").is_none());
    assert!(
        app.folder(&provider, "sent").await.is_empty(),
        "nothing half sent"
    );
    assert_eq!(
        scheduled::send_due(&app.state).await.unwrap(),
        0,
        "not tried again"
    );
}

async fn scheduled_sends_are_edited_cancelled_and_bounded(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    for (minutes, why) in [(-1, "in the past"), (367 * 24 * 60, "over a year ahead")] {
        let refused = app
            .post(
                "/api/v1/threads",
                &cast.client,
                json!({"to": [user(&cast.provider)], "subject": "When", "body": "Some time or other.", "send_at": at(&app, minutes)}),
            )
            .await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(refused.1["field"], "send_at", "{why}");
    }
    // Checked at once as it would be sent.
    let refused = app
        .post(
            "/api/v1/threads",
            &cast.client,
            json!({"to": [user(&cast.other_client)], "subject": "No", "body": "Not to a client.", "send_at": at(&app, 5)}),
        )
        .await;
    assert!(refused.0.is_client_error(), "{refused:?}");

    let item = schedule(&app, &cast.client, &cast.provider, "Edit me", 10).await;
    let id = item["id"].as_str().unwrap();
    let path = format!("/api/v1/scheduled/{id}");
    let (status, edited) = app
        .patch(
            &path,
            &cast.client,
            json!({"body": "Edited before it went.", "send_at": at(&app, 20)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "Edited before it went.");
    let outsider = app
        .patch(&path, &cast.provider, json!({"body": "Mine now, is it?"}))
        .await;
    assert_problem(&outsider, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app.delete(&path, &cast.client).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = app.get("/api/v1/scheduled", &cast.client).await;
    assert_eq!(listed["scheduled"], json!([]));

    // A reply, scheduled: it lands in the thread at its time.
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Question")
        .await;
    let (status, later) = app
        .reply(
            &cast.client,
            &thread,
            json!({"body": "I will answer tomorrow morning.", "send_at": at(&app, 15)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{later}");
    assert_eq!(later["thread_id"], json!(thread));
    app.clock.advance_minutes(16);
    scheduled::send_due(&app.state).await.unwrap();
    let provider = app.login_as(&cast.practice, &cast.provider.email).await;
    let (_, seen) = app.thread(&provider, &thread).await;
    assert_eq!(
        seen["messages"][1]["body"],
        "I will answer tomorrow morning."
    );
}
