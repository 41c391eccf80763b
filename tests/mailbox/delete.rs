//! Permanent deletion by staff; clients and other staff cannot; nothing of the content
//! remains, in any mailbox, and the audit log keeps only who, which id and when.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    staff_permanently_delete_a_message_they_sent,
    staff_permanently_delete_a_thread_they_started,
    clients_cannot_delete,
    other_staff_cannot_delete,
    deleting_the_last_message_deletes_the_thread,
    a_retried_send_after_deletion_does_not_send_again,
    legal_hold_keeps_a_thread_from_deletion_until_released,
    legal_hold_on_a_client_covers_every_thread_they_are_in,
    only_admins_place_legal_holds_and_on_their_practice_only,
);

const MARKER: &str = "MARKER-7f3a9 confidential diagnosis";

async fn staff_permanently_delete_a_message_they_sent(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Results")
        .await;
    let (_, message) = app
        .reply(&cast.provider, &id, json!({"body": MARKER}))
        .await;
    let message_id = message["id"].as_str().unwrap().to_string();
    assert_eq!(message["can_delete"], true);
    let (status, _) = app
        .delete(&format!("/api/v1/messages/{message_id}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for who in [&cast.provider, &cast.client] {
        let (_, thread) = app.get(&format!("/api/v1/threads/{id}"), who).await;
        assert_eq!(thread["messages"].as_array().unwrap().len(), 1);
        assert!(!thread.to_string().contains("MARKER-7f3a9"));
        let (_, page) = app.get("/api/v1/threads", who).await;
        assert!(
            !page.to_string().contains("MARKER-7f3a9"),
            "the preview went too"
        );
    }
    let mut conn = app.state.store.read().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE body LIKE '%MARKER-7f3a9%' OR body_html LIKE '%MARKER-7f3a9%'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let preview: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM threads WHERE preview LIKE '%MARKER-7f3a9%'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(preview, 0);
    drop(conn);
    let (_, audit) = app.get("/api/v1/audit", &cast.admin).await;
    let event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "delete_message")
        .expect("audited");
    assert_eq!(event["object_id"], message_id.as_str());
    assert_eq!(event["actor_id"], cast.provider.id.as_str());
    assert!(!audit.to_string().contains("MARKER-7f3a9"));
}

async fn staff_permanently_delete_a_thread_they_started(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.front,
            &[&user(&cast.client), "group:billers"],
            "Invoice",
            MARKER,
        )
        .await;
    let id = thread["id"].as_str().unwrap().to_string();
    assert_eq!(thread["can_delete"], true);
    app.reply(
        &cast.client,
        &id,
        json!({"body": "Thank you for the invoice."}),
    )
    .await;
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.front)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for who in [&cast.front, &cast.client, &cast.biller] {
        let result = app.get(&format!("/api/v1/threads/{id}"), who).await;
        assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
        assert!(app.folder(who, "inbox").await.is_empty());
    }
    let mut conn = app.state.store.read().await.unwrap();
    for table in ["messages", "thread_participants", "threads"] {
        let column = if table == "threads" {
            "id"
        } else {
            "thread_id"
        };
        let left: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"))
                .bind(&id)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM events WHERE thread_id = $1 ORDER BY seq")
            .bind(&id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(kinds.last().map(String::as_str), Some("thread_deleted"));
}

async fn clients_cannot_delete(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.client,
            &[&user(&cast.provider)],
            "Question",
            "Is Friday still fine?",
        )
        .await;
    let id = thread["id"].as_str().unwrap();
    assert_eq!(thread["can_delete"], false);
    assert_eq!(thread["messages"][0]["can_delete"], false);
    let message_id = thread["messages"][0]["id"].as_str().unwrap();
    let result = app
        .delete(&format!("/api/v1/messages/{message_id}"), &cast.client)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    let result = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.client)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    // Nor can the provider delete what the client wrote, or a thread they did not start.
    let result = app
        .delete(&format!("/api/v1/messages/{message_id}"), &cast.provider)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    let result = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.provider)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(app.thread(&cast.provider, id).await.0, StatusCode::OK);
}

async fn other_staff_cannot_delete(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Plan",
            "The plan for next week.",
        )
        .await;
    let id = thread["id"].as_str().unwrap();
    let message_id = thread["messages"][0]["id"].as_str().unwrap();
    // A participant who did not send or start it: forbidden.
    let result = app
        .delete(&format!("/api/v1/messages/{message_id}"), &cast.biller)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    let result = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.biller)
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    // Someone outside the thread, even an administrator: not found.
    let result = app
        .delete(&format!("/api/v1/messages/{message_id}"), &cast.admin)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.admin)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn deleting_the_last_message_deletes_the_thread(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Oops",
            "Sent to the wrong person.",
        )
        .await;
    let id = thread["id"].as_str().unwrap();
    let message_id = thread["messages"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/messages/{message_id}"), &cast.provider)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let result = app.thread(&cast.client, id).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn a_retried_send_after_deletion_does_not_send_again(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let body = json!({"to": [user(&cast.client)], "subject": "Wrong recipient", "body": "This went to the wrong person."});
    let send = || {
        app.client
            .post(app.url("/api/v1/threads"))
            .bearer_auth(&cast.provider.token)
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
    };
    let first: serde_json::Value = send().await.unwrap().json().await.unwrap();
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/threads/{id}"), &cast.provider)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::NOT_FOUND);
    assert!(
        app.folder(&cast.client, "inbox").await.is_empty(),
        "the deleted message was not sent again"
    );
}

/// Places a hold (as the admin); returns its id.
async fn hold(app: &TestApp, admin: &crate::helpers::Session, body: serde_json::Value) -> String {
    let (status, hold) = app.post("/api/v1/legal-holds", admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    hold["id"].as_str().unwrap().to_string()
}

async fn legal_hold_keeps_a_thread_from_deletion_until_released(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Results")
        .await;
    let (_, message) = app
        .reply(&cast.provider, &id, json!({"body": "More results"}))
        .await;
    let message_id = message["id"].as_str().unwrap().to_string();
    let hold_id = hold(&app, &cast.admin, json!({"thread_id": id})).await;

    let (status, holds) = app.get("/api/v1/legal-holds", &cast.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(holds["holds"][0]["id"], hold_id.as_str());
    assert_eq!(holds["holds"][0]["thread_id"], id.as_str());
    assert_eq!(holds["holds"][0]["placed_by"], cast.admin.id.as_str());
    for path in [
        format!("/api/v1/messages/{message_id}"),
        format!("/api/v1/threads/{id}"),
    ] {
        let r = app.delete(&path, &cast.provider).await;
        assert_problem(&r, StatusCode::CONFLICT, "legal_hold");
    }
    let (_, thread) = app
        .get(&format!("/api/v1/threads/{id}"), &cast.client)
        .await;
    assert_eq!(
        thread["messages"].as_array().unwrap().len(),
        2,
        "nothing went"
    );

    let (status, _) = app
        .delete(&format!("/api/v1/legal-holds/{hold_id}"), &cast.admin)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, holds) = app.get("/api/v1/legal-holds", &cast.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(holds["holds"], json!([]));
    let r = app
        .delete(&format!("/api/v1/legal-holds/{hold_id}"), &cast.admin)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{id}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "released: deleted");

    let (_, audit) = app.get("/api/v1/audit", &cast.admin).await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_id"] == hold_id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["release_legal_hold", "place_legal_hold"]);
}

async fn legal_hold_on_a_client_covers_every_thread_they_are_in(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let theirs = app
        .send(&cast.provider, &[&user(&cast.client)], "Yours")
        .await;
    let shared = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.other_client)],
            "Group",
        )
        .await;
    let other = app
        .send(&cast.provider, &[&user(&cast.other_client)], "Not theirs")
        .await;
    hold(&app, &cast.admin, json!({"client_id": cast.client.id})).await;
    for id in [&theirs, &shared] {
        let r = app
            .delete(&format!("/api/v1/threads/{id}"), &cast.provider)
            .await;
        assert_problem(&r, StatusCode::CONFLICT, "legal_hold");
    }
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{other}"), &cast.provider)
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "another client's thread is not held"
    );
}

async fn only_admins_place_legal_holds_and_on_their_practice_only(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Results")
        .await;
    let r = app
        .post(
            "/api/v1/legal-holds",
            &cast.provider,
            json!({"thread_id": id}),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.get("/api/v1/legal-holds", &cast.provider).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");

    for (body, field) in [
        (json!({}), "client_id"),
        (
            json!({"client_id": cast.client.id, "thread_id": id}),
            "client_id",
        ),
    ] {
        let r = app.post("/api/v1/legal-holds", &cast.admin, body).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(r.1["field"], field);
    }
    // A member of staff is not a client; another practice's thread does not exist here.
    let r = app
        .post(
            "/api/v1/legal-holds",
            &cast.admin,
            json!({"client_id": cast.provider.id}),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(r.1["field"], "client_id");
    app.create_practice("elm").await;
    let elm_admin = app.admin("elm").await;
    let r = app
        .post("/api/v1/legal-holds", &elm_admin, json!({"thread_id": id}))
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(r.1["field"], "thread_id");
}
