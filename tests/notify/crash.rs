//! Nothing lost, nothing doubled: notifications queued while the mail server is down go
//! out once the server is back after a kill -9, and none twice.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, Binary, TestDatabase};
use crate::mail::{free_port, python_with, SmtpSink};
use crate::on_both_backends;

on_both_backends!(queued_notifications_survive_a_kill_and_go_out_once);

/// The binary's settings for this test: mail to `smtp_port`, polled often.
fn mail_to(smtp_port: &str) -> [(&'static str, &str); 6] {
    [
        ("CONFIDE__LOG__LEVEL", "error"),
        ("CONFIDE__MAIL__TRANSPORT", "smtp"),
        ("CONFIDE__MAIL__HOST", "127.0.0.1"),
        ("CONFIDE__MAIL__PORT", smtp_port),
        ("CONFIDE__MAIL__TLS", "none"),
        ("CONFIDE__NOTIFICATIONS__POLL_INTERVAL_MS", "100"),
    ]
}

async fn queued_notifications_survive_a_kill_and_go_out_once(backend: Backend) {
    if python_with("aiosmtpd").is_none() {
        return;
    }
    let db = TestDatabase::create(backend).await;
    let smtp_port = free_port().to_string();
    let env = mail_to(&smtp_port);
    Binary::create_practice(&db, &env);
    Binary::create_user(&db, &env, "front_office", "fran@oak.example", "Fran Front");

    // The mail server is down: sending fails and is retried.
    let server = Binary::serve(&db, &env);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let token = &server.admin_token().await;
    let people: Value = http
        .get(format!("{base}/api/v1/people?role=front_office"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fran = people["people"][0]["id"].as_str().unwrap();
    let sent = http
        .post(format!("{base}/api/v1/threads"))
        .bearer_auth(token)
        .json(&json!({"to": [format!("user:{fran}")], "subject": "Queued", "body": "Waiting for the mail server."}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill_9();

    // The mail server comes back, and so does Confide.
    let sink = SmtpSink::start(smtp_port.parse().unwrap()).unwrap();
    let server = Binary::serve(&db, &env);
    let emails = sink.wait_for("fran@oak.example", 1, 45).await;
    assert_eq!(
        emails.len(),
        1,
        "the queued notification went out after the restart"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sink.wait_for("fran@oak.example", 1, 0).await.len(),
        1,
        "and only once"
    );
    server.kill_9();
}
