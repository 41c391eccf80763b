//! The autoresponder: one automatic reply to a client per thread every 30 minutes.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::{on_both_backends, reply_ok, user};

on_both_backends!(
    an_autoresponder_answers_a_clients_message_once_per_half_hour,
    an_autoresponder_answers_no_staff_and_nothing_outside_its_periods,
);

const AWAY: &str = "I am away until Monday; the front office can help meanwhile.";

fn automatic(thread: &Value) -> Vec<bool> {
    thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["automatic"].as_bool().unwrap())
        .collect()
}

async fn an_autoresponder_answers_a_clients_message_once_per_half_hour(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let from = confide::clock::to_datetime(app.clock_now() - 60_000);
    let (status, me) = app
        .update_me(
            &cast.provider,
            json!({"autoresponder": {"text": AWAY, "periods": [{"from": from}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["autoresponder"]["text"], AWAY);
    assert!(me["autoresponder"]["periods"][0]["until"].is_null());

    let id = app
        .send(&cast.client, &[&user(&cast.provider)], "Question")
        .await;
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert_eq!(automatic(&seen), [false, true]);
    assert_eq!(seen["messages"][1]["body"], AWAY);
    assert_eq!(seen["messages"][1]["sender"]["name"], "Pat Provider");
    // The provider has not read the client's message: the thread stays unread for them.
    let (_, inbox) = app
        .get("/api/v1/threads?folder=inbox", &cast.provider)
        .await;
    assert_eq!(inbox["threads"][0]["unread"], true, "{inbox}");

    reply_ok(&app, &cast.client, &id, "One more detail about it.").await;
    assert_eq!(
        automatic(&app.thread(&cast.client, &id).await.1),
        [false, true, false]
    );
    app.clock.advance_minutes(20);
    app.thread(&cast.client, &id).await;
    app.clock.advance_minutes(11);
    reply_ok(&app, &cast.client, &id, "Still here, any news?").await;
    assert_eq!(
        automatic(&app.thread(&cast.client, &id).await.1),
        [false, true, false, false, true]
    );

    // Switched off, it answers no more. (The provider's session idled out meanwhile.)
    let provider = app.login_as(&cast.practice, &cast.provider.email).await;
    let (status, me) = app
        .update_me(&provider, json!({"autoresponder": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(me.get("autoresponder").is_none());
    let other = app
        .send(&cast.client, &[&user(&cast.provider)], "Another question")
        .await;
    assert_eq!(
        automatic(&app.thread(&cast.client, &other).await.1),
        [false]
    );
}

async fn an_autoresponder_answers_no_staff_and_nothing_outside_its_periods(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let now = app.clock_now();
    let later = confide::clock::to_datetime(now + 86_400_000);
    let until = confide::clock::to_datetime(now + 2 * 86_400_000);
    let (status, _) = app
        .update_me(
            &cast.provider,
            json!({"autoresponder": {"text": AWAY, "periods": [{"from": later, "until": until}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = app
        .send(&cast.client, &[&user(&cast.provider)], "Before the period")
        .await;
    assert_eq!(automatic(&app.thread(&cast.client, &id).await.1), [false]);

    let from = confide::clock::to_datetime(now - 60_000);
    app.update_me(
        &cast.provider,
        json!({"autoresponder": {"text": AWAY, "periods": [{"from": from}]}}),
    )
    .await;
    let staff = app
        .send(&cast.biller, &[&user(&cast.provider)], "From a colleague")
        .await;
    assert_eq!(
        automatic(&app.thread(&cast.biller, &staff).await.1),
        [false]
    );

    let refused = app
        .update_me(
            &cast.client,
            json!({"autoresponder": {"text": AWAY, "periods": [{"from": from}]}}),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let short = app
        .update_me(
            &cast.provider,
            json!({"autoresponder": {"text": "Away", "periods": [{"from": from}]}}),
        )
        .await;
    assert_problem(&short, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(short.1["field"], "autoresponder.text");
    let backwards = app
        .update_me(
            &cast.provider,
            json!({"autoresponder": {"text": AWAY, "periods": [{"from": until, "until": later}]}}),
        )
        .await;
    assert_problem(&backwards, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(backwards.1["field"], "autoresponder.periods");
}
