//! Conversations (DESIGN.md §2 "Conversations", issue 15): the two kinds of thread,
//! announcements, the scheduled start, completing, replies to a message, reactions, read
//! receipts, internal notes, retry-safe replies, practice settings and voice notes. Every
//! test runs on SQLite and on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;

mod autoresponder;
mod files;
mod kinds;
mod messages;
mod notes;
mod pins;
mod scheduled;
mod settings;
mod sharing;
mod teams;

pub use helpers::{user, Cast};

use helpers::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Opens a conversation that must succeed; returns the thread.
pub async fn open_conversation(app: &TestApp, host: &Session, to: &[&str], subject: &str) -> Value {
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            host,
            json!({
                "to": to,
                "subject": subject,
                "body": "Welcome to the group, everyone.",
                "kind": "conversation",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    assert_eq!(thread["kind"], "conversation");
    thread
}

/// A reply that must succeed; returns the message.
pub async fn reply_ok(app: &TestApp, who: &Session, thread: &str, body: &str) -> Value {
    let (status, message) = app.reply(who, thread, json!({ "body": body })).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    message
}

/// The id of a thread's first message.
pub fn first_message(thread: &Value) -> String {
    thread["messages"][0]["id"].as_str().unwrap().to_string()
}

/// `PUT` (`add`) or `DELETE /api/v1/messages/{id}/reactions/{emoji}`.
pub async fn react(
    app: &TestApp,
    who: &Session,
    message: &str,
    emoji: &str,
    add: bool,
) -> (StatusCode, Value) {
    let method = if add {
        reqwest::Method::PUT
    } else {
        reqwest::Method::DELETE
    };
    let path = format!("/api/v1/messages/{message}/reactions/{emoji}");
    app.call(method, &path, Some(&who.token), None).await
}

/// A POST with an `Idempotency-Key`.
pub async fn post_with_key(
    app: &TestApp,
    who: &Session,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(&who.token)
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A time the API sent, in milliseconds since the epoch.
pub fn ms(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}
