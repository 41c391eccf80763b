//! Composing: recipients, groups, subject and body, idempotent sends.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, user, Cast};

on_both_backends!(
    compose_to_a_person_and_a_group,
    subject_is_required,
    body_needs_at_least_ten_characters,
    body_has_a_configurable_maximum,
    recipient_not_activated_refuses_the_whole_message,
    unknown_or_foreign_recipient_is_not_activated,
    clients_write_only_to_providers_front_office_and_billers,
    group_expands_to_its_active_members_at_send_time,
    empty_group_is_refused,
    malformed_recipients_name_the_field,
    idempotency_key_returns_the_first_result,
    unknown_attachment_is_refused,
    a_recipient_disabled_during_a_send_is_refused,
    the_answer_to_a_new_thread_is_the_thread_its_sender_reads_next,
    a_person_named_twice_or_with_the_sender_is_reached_once,
    a_sender_disabled_during_a_send_sends_nothing,
);

async fn compose_to_a_person_and_a_group(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client), "group:billers"],
            "Your invoice",
            "Hello, your **invoice** is attached soon.",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    assert_eq!(thread["subject"], "Your invoice");
    assert_eq!(thread["groups"], json!(["group:billers"]));
    assert_eq!(
        thread["messages"][0]["body_html"],
        "<p>Hello, your <strong>invoice</strong> is attached soon.</p>\n"
    );
    assert_eq!(thread["messages"][0]["sender"]["name"], "Pat Provider");
    assert_eq!(thread["reply"]["allowed"], true);
    let id = thread["id"].as_str().unwrap().to_string();
    // The sender has it read in their Inbox and in Sent; recipients have it unread.
    assert_eq!(app.folder(&cast.provider, "sent").await, vec![id.clone()]);
    for who in [&cast.client, &cast.biller] {
        let (_, page) = app.get("/api/v1/threads", who).await;
        assert_eq!(page["threads"][0]["id"], id.as_str());
        assert_eq!(page["threads"][0]["unread"], true);
    }
    assert_eq!(
        app.folder(&cast.biller, "team:billers").await,
        vec![id.clone()]
    );
    assert!(app.folder(&cast.front, "inbox").await.is_empty());
    // Reading marks it read.
    let (status, _) = app.thread(&cast.client, &id).await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = app.get("/api/v1/threads", &cast.client).await;
    assert_eq!(page["threads"][0]["unread"], false);
}

async fn subject_is_required(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    for subject in ["", "   ", &"s".repeat(201)] {
        let result = app
            .compose(
                &cast.provider,
                &[&user(&cast.client)],
                subject,
                "A body long enough.",
            )
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(result.1["field"], "subject");
    }
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
}

async fn body_needs_at_least_ten_characters(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Hi",
            "  123456789   ",
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "body");
    let (status, _) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Hi",
            "  1234567890  ",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn body_has_a_configurable_maximum(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.body_max_chars = 50).await;
    let cast = Cast::new(&app).await;
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Hi",
            &"x".repeat(51),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "body_too_long");
    assert_eq!(result.1["field"], "body");
    assert_eq!(
        app.compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Hi",
            &"x".repeat(50)
        )
        .await
        .0,
        StatusCode::CREATED
    );
}

async fn recipient_not_activated_refuses_the_whole_message(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, invited) = app
        .post(
            "/api/v1/people",
            &cast.admin,
            json!({"role": "client", "name": "Ivy", "email": "ivy@oak.example"}),
        )
        .await;
    let invited = format!("user:{}", invited["id"].as_str().unwrap());
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.client), &invited],
            "Hi",
            "A body long enough.",
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
    assert_eq!(result.1["field"], "to");
    assert!(result.1["detail"].as_str().unwrap().contains(&invited));
    // Nothing was sent to anyone.
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
    assert!(app.folder(&cast.provider, "sent").await.is_empty());
    // A disabled person is refused alike.
    app.update_person(&cast.admin, &cast.biller.id, json!({"status": "disabled"}))
        .await;
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.biller)],
            "Hi",
            "A body long enough.",
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
}

async fn unknown_or_foreign_recipient_is_not_activated(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let elm = app.create_practice("elm").await;
    let elm_admin = app.admin(&elm).await;
    for to in ["user:doesnotexist0000000000".to_string(), user(&elm_admin)] {
        let result = app
            .compose(&cast.provider, &[&to], "Hi", "A body long enough.")
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
    }
}

async fn clients_write_only_to_providers_front_office_and_billers(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let other = app.person("oak", Role::Client, "Other Client").await;
    for to in [
        user(&cast.provider),
        user(&cast.front),
        user(&cast.biller),
        "group:providers".into(),
        "group:billers".into(),
    ] {
        let (status, body) = app
            .compose(
                &cast.client,
                &[&to],
                "Question",
                "I have a question for you.",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{to}: {body}");
    }
    // People a client may not write to are indistinguishable from nobody.
    for to in [user(&other), user(&cast.agent), user(&cast.admin)] {
        let result = app
            .compose(
                &cast.client,
                &[&to],
                "Question",
                "I have a question for you.",
            )
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
    }
    let result = app
        .compose(
            &cast.client,
            &["group:external_agents"],
            "Question",
            "I have a question for you.",
        )
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "recipient_not_allowed");
    assert!(app.folder(&other, "inbox").await.is_empty());
    assert!(app.folder(&cast.agent, "inbox").await.is_empty());
}

async fn group_expands_to_its_active_members_at_send_time(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app.person("oak", Role::Provider, "Second Provider").await;
    let gone = app.person("oak", Role::Provider, "Gone Provider").await;
    app.update_person(&cast.admin, &gone.id, json!({"status": "disabled"}))
        .await;
    let id = app
        .send(&cast.client, &["group:providers"], "To all providers")
        .await;
    assert_eq!(app.folder(&cast.provider, "inbox").await, vec![id.clone()]);
    assert_eq!(
        app.folder(&second, "team:providers").await,
        vec![id.clone()]
    );
    let mut conn = app.state.store.read().await.unwrap();
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM thread_participants WHERE thread_id = $1")
            .bind(&id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(count, 3, "the client and the two active providers");
    drop(conn);
    // The team folder is a shared inbox (issue 15, rule 17): someone who joins the group
    // later sees the group's earlier threads too; a disabled member is not given them.
    let later = app.person("oak", Role::Provider, "Later Provider").await;
    assert_eq!(app.folder(&later, "team:providers").await, vec![id.clone()]);
    let mut conn = app.state.store.read().await.unwrap();
    let gone_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM thread_participants WHERE person_id = $1")
            .bind(&gone.id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(gone_rows, 0);
}

async fn empty_group_is_refused(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let result = app
        .compose(&provider, &["group:billers"], "Hi", "A body long enough.")
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "group_empty");
    assert_eq!(result.1["field"], "to");
}

async fn malformed_recipients_name_the_field(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    for (to, code) in [
        (json!([]), "invalid_field"),
        (json!(["casey@oak.example"]), "invalid_field"),
        (json!(["group:clients"]), "unknown_group"),
        (json!([user(&cast.provider)]), "invalid_field"),
    ] {
        let result = app
            .post(
                "/api/v1/threads",
                &cast.provider,
                json!({"to": to, "subject": "Hi", "body": "A body long enough."}),
            )
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, code);
        assert_eq!(result.1["field"], "to", "{to}");
    }
    let result = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({"to": "user:x", "subject": "Hi", "body": "A body long enough."}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "to");
}

async fn idempotency_key_returns_the_first_result(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let body = json!({"to": [user(&cast.client)], "subject": "Once", "body": "Sent exactly once, please."});
    let send = |body: serde_json::Value| {
        app.client
            .post(app.url("/api/v1/threads"))
            .bearer_auth(&cast.provider.token)
            .header("Idempotency-Key", "retry-me-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(app.folder(&cast.client, "inbox").await.len(), 1);
    let other = send(json!({"to": [user(&cast.client)], "subject": "Other", "body": "A different message body."})).await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(
        other.json::<serde_json::Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
}

async fn unknown_attachment_is_refused(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let result = app
        .post("/api/v1/threads", &cast.provider, json!({"to": [user(&cast.client)], "subject": "Hi", "body": "A body long enough.", "attachment_ids": ["nope"]}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "attachment_not_found");
    assert_eq!(result.1["field"], "attachment_ids[0]");
}

#[tokio::test]
async fn idempotency_keys_are_forgotten_after_a_week() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let cast = Cast::new(&app).await;
    let body = json!({"to": [user(&cast.client)], "subject": "Weekly", "body": "A message sent with a key."});
    let send = || {
        app.client
            .post(app.url("/api/v1/threads"))
            .bearer_auth(&cast.provider.token)
            .header("Idempotency-Key", "weekly-1")
            .json(&body)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::CREATED);
    app.clock.advance_minutes(7 * 24 * 60 + 1);
    let forgotten = confide::service::mailbox::idempotency::forget_old_keys(&app.state)
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    // The session has ended meanwhile; sign in again and reuse the key: a new send.
    let provider = app.login_as("oak", &cast.provider.email).await;
    let again = app
        .client
        .post(app.url("/api/v1/threads"))
        .bearer_auth(&provider.token)
        .header("Idempotency-Key", "weekly-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let client = app.login_as("oak", &cast.client.email).await;
    assert_eq!(app.folder(&client, "inbox").await.len(), 2);
}

/// The recipients are checked inside the transaction that writes the message: a disable
/// that commits while a send is under way either comes first and refuses it, or waits.
/// Here another connection holds the disable uncommitted while the send (a new message,
/// then a draft) reads; it commits once the send has read the recipient as active.
async fn a_recipient_disabled_during_a_send_is_refused(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, draft) = app
        .post(
            "/api/v1/drafts",
            &cast.provider,
            json!({"to": [user(&cast.front)], "subject": "Later", "body": "A draft sent later on."}),
        )
        .await;
    let sends = [
        (
            cast.client.id.clone(),
            "/api/v1/threads".to_string(),
            json!({"to": [user(&cast.client)], "subject": "Results", "body": "Your results are in."}),
        ),
        (
            cast.front.id.clone(),
            format!("/api/v1/drafts/{}/send", draft["id"].as_str().unwrap()),
            json!({}),
        ),
    ];
    for (recipient, path, body) in sends {
        let mut admin_tx = app.db.connect().await;
        sqlx::raw_sql("BEGIN").execute(&mut admin_tx).await.unwrap();
        sqlx::query("UPDATE people SET status = 'disabled' WHERE id = $1")
            .bind(&recipient)
            .execute(&mut admin_tx)
            .await
            .unwrap();
        let send = {
            let (client, url, token) = (
                app.client.clone(),
                app.url(&path),
                cast.provider.token.clone(),
            );
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                (
                    status,
                    resp.json::<serde_json::Value>().await.unwrap_or_default(),
                )
            })
        };
        // Long enough for the send to read the recipient (still active to it) and reach
        // its write, which waits for the disable's lock.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        sqlx::raw_sql("COMMIT")
            .execute(&mut admin_tx)
            .await
            .unwrap();
        admin_tx.close().await.unwrap();
        let result = send.await.unwrap();
        assert_problem(&result, StatusCode::BAD_REQUEST, "recipient_not_activated");
    }
    assert!(app.folder(&cast.provider, "sent").await.is_empty());
    let (_, drafts) = app.get("/api/v1/drafts", &cast.provider).await;
    assert_eq!(
        drafts["drafts"].as_array().map(Vec::len),
        Some(1),
        "{drafts}"
    );
}

/// The sender's own row is read (and share-locked) with the recipients': a sender
/// disabled while their send waits sends nothing, though they were active when it began.
async fn a_sender_disabled_during_a_send_sends_nothing(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let mut admin_tx = app.db.connect().await;
    sqlx::raw_sql("BEGIN").execute(&mut admin_tx).await.unwrap();
    sqlx::query("UPDATE people SET status = 'disabled' WHERE id = $1")
        .bind(&cast.provider.id)
        .execute(&mut admin_tx)
        .await
        .unwrap();
    let send = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/threads"),
            cast.provider.token.clone(),
        );
        let body = json!({"to": [user(&cast.client)], "subject": "Results", "body": "Your results are in."});
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        })
    };
    // Long enough for the send to authenticate (still active) and reach its write.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut admin_tx)
        .await
        .unwrap();
    admin_tx.close().await.unwrap();
    let result = send.await.unwrap();
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
}

/// A new thread's answer is built without re-reading what no one else can have added
/// yet (reactions, notes, pins, files it did not carry): it must still be what `GET`
/// shows the sender, with files, a team, and a client's auto-reply.
async fn the_answer_to_a_new_thread_is_the_thread_its_sender_reads_next(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let file = app.upload_text(&cast.provider, "letter.txt").await;
    let from = confide::clock::to_datetime(app.clock_now() - 60_000);
    let away = "I am away this week; the front office can help.";
    let (status, me) = app
        .update_me(
            &cast.provider,
            json!({"autoresponder": {"text": away, "periods": [{"from": from}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let sends = [
        (
            &cast.provider,
            json!({"to": [user(&cast.client), "group:billers"], "subject": "With a file",
                   "body": "Your letter is attached.", "attachment_ids": [file]}),
        ),
        (
            &cast.provider,
            json!({"to": [user(&cast.client)], "subject": "Plain", "body": "A body long enough."}),
        ),
        (
            &cast.client,
            json!({"to": [user(&cast.provider)], "subject": "From a client",
                   "body": "A question about my appointment."}),
        ),
    ];
    let (mut first, mut last) = (None, None);
    for (who, body) in sends {
        let (status, answer) = app.post("/api/v1/threads", who, body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let id = answer["id"].as_str().unwrap();
        let (status, read) = app.thread(who, id).await;
        assert_eq!(status, StatusCode::OK);
        // Reading marks the thread read through its last message: the only difference.
        let (mut answer, mut read) = (answer, read);
        for view in [&mut answer, &mut read] {
            for m in view["messages"].as_array_mut().unwrap() {
                m.as_object_mut().unwrap().remove("read_by");
            }
        }
        assert_eq!(answer, read);
        first.get_or_insert(answer.clone());
        last = Some(answer);
    }
    // The client's thread holds the provider's auto-reply, in the answer too.
    let last = last.unwrap();
    assert_eq!(last["messages"].as_array().unwrap().len(), 2, "{last}");
    assert_eq!(last["messages"][1]["body"], away);
    // The file and the team are in the first answer.
    let first = first.unwrap();
    assert_eq!(first["attachment_count"], 1, "{first}");
    assert_eq!(first["messages"][0]["attachments"][0]["id"], file.as_str());
    assert_eq!(first["groups"], json!(["group:billers"]));
}

/// The sender and the people named are read in one statement; naming someone twice, or
/// the sender among them, still reaches each person once.
async fn a_person_named_twice_or_with_the_sender_is_reached_once(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, thread) = app
        .compose(
            &cast.provider,
            &[
                &user(&cast.client),
                &user(&cast.provider),
                &user(&cast.client),
            ],
            "Twice",
            "A body long enough.",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    let people: Vec<&str> = thread["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(people.len(), 2, "{thread}");
    assert!(people.contains(&cast.client.id.as_str()));
    assert!(people.contains(&cast.provider.id.as_str()));
    // Only the sender named: nobody else to write to.
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.provider)],
            "Me",
            "A body long enough.",
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "to");
}
