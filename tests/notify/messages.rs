//! New-message notifications: no content, consent, one recipient each, coalescing,
//! cancellation on deletion, and SMS.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{user, Backend, Session, TestApp};
use crate::mail::SmsReceiver;
use crate::{on_both_backends, with_sink};

on_both_backends!(
    notifications_carry_no_content,
    no_consent_no_notification,
    one_recipient_per_email,
    notifications_are_coalesced_while_unread,
    deleting_a_message_cancels_its_notifications,
    text_messages_go_through_the_gateway_without_content,
    a_coalesced_notification_outlives_one_deleted_message,
    withdrawn_consent_stops_a_waiting_notification,
);

async fn consent(app: &TestApp, who: &Session, body: serde_json::Value) {
    let (status, me) = app.patch("/api/v1/me", who, body).await;
    assert_eq!(status, StatusCode::OK, "{me}");
}

const SUBJECT_MARK: &str = "SUBJECTMARK-41d7";
const BODY_MARK: &str = "BODYMARK-9c2e confidential";

async fn notifications_carry_no_content(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let sender = app
        .person(&practice, Role::Provider, "Quillon Senderly")
        .await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    consent(&app, &client, json!({"consent_email": true})).await;
    let (status, thread) = app
        .compose(
            &sender,
            &[&user(&client), &user(&biller)],
            SUBJECT_MARK,
            BODY_MARK,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let thread_id = thread["id"].as_str().unwrap();
    for who in [&client, &biller] {
        let emails = sink.wait_for(&who.email, 1, 10).await;
        assert_eq!(emails.len(), 1, "{}", who.email);
        let email = &emails[0];
        assert_eq!(
            email.header("Subject").as_deref(),
            Some("You have a new secure message")
        );
        let text = email.decoded();
        for secret in [SUBJECT_MARK, "BODYMARK", "Quillon", "Senderly", thread_id] {
            assert!(
                !text.contains(secret),
                "the email holds {secret:?}:\n{text}"
            );
        }
        assert_eq!(
            email.link("/p/").as_deref(),
            Some(format!("{}/p/oak/", app.base).as_str())
        );
        assert!(text.contains("Practice oak"), "it says which practice");
    }
    // The portal link works.
    let page = app
        .client
        .get(format!("{}/p/oak/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // The sender is not told about their own message.
    assert!(sink.wait_for(&sender.email, 1, 1).await.is_empty());
}

async fn no_consent_no_notification(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let quiet = app.person(&practice, Role::Biller, "Quiet Biller").await;
    let keen = app.person(&practice, Role::FrontOffice, "Keen Front").await;
    consent(&app, &quiet, json!({"consent_email": false})).await;
    app.send(
        &provider,
        &[&user(&client), &user(&quiet), &user(&keen)],
        "Hello",
    )
    .await;
    // Staff are told by default: once that email is in, the sender has passed the others.
    assert_eq!(sink.wait_for(&keen.email, 1, 10).await.len(), 1);
    assert!(
        sink.wait_for(&client.email, 1, 1).await.is_empty(),
        "clients only with consent"
    );
    assert!(
        sink.wait_for(&quiet.email, 1, 1).await.is_empty(),
        "staff who turned it off"
    );
    let mut conn = app.state.store.read().await.unwrap();
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE person_id = $1 OR person_id = $2",
    )
    .bind(&client.id)
    .bind(&quiet.id)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(queued, 0);
}

async fn one_recipient_per_email(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let mut staff = Vec::new();
    for name in ["Ann Front", "Ben Front", "Cy Front"] {
        staff.push(app.person(&practice, Role::FrontOffice, name).await);
    }
    app.send(&provider, &["group:front_office"], "To the desk")
        .await;
    for who in &staff {
        let emails = sink.wait_for(&who.email, 1, 10).await;
        assert_eq!(emails.len(), 1);
        assert_eq!(
            emails[0].header("To").as_deref(),
            Some(who.email.as_str()),
            "one recipient, no one else named"
        );
        assert!(emails[0].header("Cc").is_none() && emails[0].header("Bcc").is_none());
    }
}

async fn notifications_are_coalesced_while_unread(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    app.send(&provider, &[&user(&front)], "First").await;
    assert_eq!(sink.wait_for(&front.email, 1, 10).await.len(), 1);
    app.send(&provider, &[&user(&front)], "Second").await;
    app.send(&provider, &[&user(&front)], "Third").await;
    assert_eq!(
        sink.wait_for(&front.email, 2, 1).await.len(),
        1,
        "nothing more within ten minutes"
    );
    app.clock.advance_minutes(10);
    assert_eq!(
        sink.wait_for(&front.email, 2, 10).await.len(),
        2,
        "one more, for both"
    );
    assert_eq!(sink.wait_for(&front.email, 3, 1).await.len(), 2);
    // Once everything is read, a waiting notification has nothing to say.
    app.send(&provider, &[&user(&front)], "Fourth").await;
    for id in app.folder(&front, "inbox").await {
        app.thread(&front, &id).await;
    }
    app.clock.advance_minutes(10);
    assert_eq!(sink.wait_for(&front.email, 3, 2).await.len(), 2);
}

async fn deleting_a_message_cancels_its_notifications(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |c| c.notifications.delay_seconds = 60).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let (_, thread) = app
        .compose(
            &provider,
            &[&user(&front)],
            "Oops",
            "Sent to the wrong person.",
        )
        .await;
    app.send(&provider, &[&user(&biller)], "Control").await;
    let message = thread["messages"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/messages/{message}"), &provider)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    app.clock.advance_minutes(2);
    assert_eq!(
        sink.wait_for(&biller.email, 1, 10).await.len(),
        1,
        "the control went out"
    );
    assert!(
        sink.wait_for(&front.email, 1, 1).await.is_empty(),
        "the deleted message was never announced"
    );
}

async fn text_messages_go_through_the_gateway_without_content(backend: Backend) {
    let gateway = SmsReceiver::start().await;
    let url = gateway.url.clone();
    let Some((app, sink)) = with_sink(backend, |c| {
        c.sms.url = url;
        c.sms.authorization = "Bearer gateway-key".into();
        c.sms.from = "+15550000000".into();
    })
    .await
    else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app
        .person(&practice, Role::Provider, "Quillon Senderly")
        .await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let silent = app.person(&practice, Role::Client, "Silent Client").await;
    consent(
        &app,
        &client,
        json!({"consent_sms": true, "mobile": "+1 555 010 2000"}),
    )
    .await;
    consent(&app, &silent, json!({"mobile": "+1 555 010 3000"})).await;
    app.compose(&provider, &[&user(&client)], SUBJECT_MARK, BODY_MARK)
        .await;
    app.compose(&provider, &[&user(&silent)], SUBJECT_MARK, BODY_MARK)
        .await;
    for _ in 0..200 {
        if !gateway.received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let received = gateway.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "only with SMS consent: {received:?}");
    let (auth, body) = &received[0];
    assert_eq!(auth, "Bearer gateway-key");
    assert_eq!(body["to"], "+15550102000");
    assert_eq!(body["from"], "+15550000000");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("/p/oak/"), "{text}");
    for secret in [SUBJECT_MARK, "BODYMARK", "Quillon"] {
        assert!(!text.contains(secret), "{text}");
    }
    // No email consent: no email.
    assert!(sink.wait_for(&client.email, 1, 1).await.is_empty());
}

async fn a_coalesced_notification_outlives_one_deleted_message(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    app.send(&provider, &[&user(&front)], "First").await;
    assert_eq!(sink.wait_for(&front.email, 1, 10).await.len(), 1);
    // Two more within the window: one waiting notification covers both…
    let (_, second) = app
        .compose(&provider, &[&user(&front)], "Second", "The second message.")
        .await;
    app.send(&provider, &[&user(&front)], "Third").await;
    // …and deleting the one it was queued for does not silence the other.
    let message = second["messages"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/messages/{message}"), &provider)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    app.clock.advance_minutes(10);
    assert_eq!(sink.wait_for(&front.email, 2, 10).await.len(), 2);
}

async fn withdrawn_consent_stops_a_waiting_notification(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |c| c.notifications.delay_seconds = 60).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    consent(&app, &client, json!({"consent_email": true})).await;
    app.send(&provider, &[&user(&client)], "Waiting").await;
    consent(&app, &client, json!({"consent_email": false})).await;
    app.send(&provider, &[&user(&biller)], "Control").await;
    app.clock.advance_minutes(2);
    assert_eq!(
        sink.wait_for(&biller.email, 1, 10).await.len(),
        1,
        "the control went out"
    );
    assert!(
        sink.wait_for(&client.email, 1, 1).await.is_empty(),
        "consent is checked when sending"
    );
}
