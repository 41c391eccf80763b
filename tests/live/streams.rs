//! The event streams: `GET /api/v1/events` (bearer) and `GET /p/{slug}/events` (cookie):
//! a new state when something changes for the person, never content; `Last-Event-ID`
//! resumes; the stream ends with the session; nodes hear each other's events.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::{bearer, changes, ids, on_both_backends, settle, user, Sse};

on_both_backends!(
    a_stream_hears_a_new_message_without_content_and_resumes_with_last_event_id,
    a_stream_ends_at_sign_out_and_at_session_expiry,
    the_pages_stream_follows_the_session_cookie,
    a_stream_hears_nothing_of_what_is_not_the_persons,
    a_message_sent_through_one_node_reaches_a_stream_on_another,
    streams_of_several_people_share_one_http2_connection,
);

const SOON: Duration = Duration::from_secs(5);

/// The first event is the state now; a message to the person brings a new one naming
/// only what changed (no subject, no body, no id of anyone); a stream opened again with
/// `Last-Event-ID` first says what changed while it was closed.
async fn a_stream_hears_a_new_message_without_content_and_resumes_with_last_event_id(
    backend: Backend,
) {
    let (app, cast) = TestApp::with_cast(backend).await;
    settle(&app).await;
    let auth = bearer(&cast.client);
    let mut sse = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), None).await;
    let first = sse.next(SOON).await.expect("a first event");
    assert_eq!(first.event, "state");
    assert_eq!(first.data["kinds"], json!([]));
    assert_eq!(first.id, first.data["state"].as_str().unwrap());
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Lab results are in")
        .await;
    let next = sse.next(SOON).await.expect("an event for the message");
    assert_eq!(next.event, "state");
    assert_eq!(next.data["kinds"], json!(["threads", "folders"]));
    let keys: Vec<&String> = next.data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kinds", "state"], "a state and kinds, nothing else");
    assert!(!sse.raw.contains("Lab results") && !sse.raw.contains(&id));
    // The state is one /changes takes.
    let c = changes(&app, &cast.client, &first.id).await;
    assert_eq!(ids(&c, "created"), [id.as_str()]);
    drop(sse);

    // Closed while a reply arrives; opened again from the last id it had.
    app.reply(
        &cast.provider,
        &id,
        json!({"body": "And one more thing to add."}),
    )
    .await;
    settle(&app).await;
    let mut again = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), Some(&next.id)).await;
    let resumed = again.next(SOON).await.expect("a first event");
    assert_eq!(resumed.data["kinds"], json!(["threads", "folders"]));
    assert_eq!(
        ids(&changes(&app, &cast.client, &next.id).await, "updated"),
        [id]
    );
    // An unknown Last-Event-ID: everything may have changed.
    let mut unknown = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), Some("junk")).await;
    let reset = unknown.next(SOON).await.expect("a first event");
    assert_eq!(reset.data["kinds"], json!(["threads", "folders", "drafts"]));
}

/// Signing out ends the stream at once; a session past its idle limit ends it at the
/// next look (every `keep_alive_secs`). Without a session there is no stream.
async fn a_stream_ends_at_sign_out_and_at_session_expiry(backend: Backend) {
    let (first, cast) = TestApp::with_cast(backend).await;
    let app = first.spawn_sibling(|c| c.live.keep_alive_secs = 1).await;
    let auth = bearer(&cast.client);
    let mut sse = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), None).await;
    sse.next(SOON).await.expect("a first event");
    let (status, _) = app.delete("/api/v1/sessions/current", &cast.client).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        sse.ends_within(Duration::from_secs(3)).await,
        "ends at sign-out"
    );
    assert_eq!(app.state.live.open_streams(), 0);

    let auth = bearer(&cast.provider);
    let mut sse = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), None).await;
    sse.next(SOON).await.expect("a first event");
    // While the session holds, a comment every keep-alive (1 s here) keeps it open, and
    // the node counts it among its open streams.
    assert!(!sse.ends_within(Duration::from_millis(1500)).await);
    assert!(sse.raw.ends_with("\n\n:\n\n"), "{:?}", sse.raw);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("\nconfide_event_streams_open 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nconfide_heap_in_use_bytes "),
        "{metrics}"
    );
    // Holding the stream open is not activity: the idle limit passes.
    let idle = app.state.config.auth.session_idle_minutes;
    app.clock.advance_minutes(idle + 1);
    assert!(
        sse.ends_within(Duration::from_secs(4)).await,
        "ends at expiry"
    );
    let resp = app
        .client
        .get(app.url("/api/v1/events"))
        .header(auth.0, &auth.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// The pages' stream takes the session cookie; without one it sends to sign-in.
async fn the_pages_stream_follows_the_session_cookie(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    settle(&app).await;
    let path = format!("/p/{}/events", cast.practice);
    let cookie = format!("confide-session={}", cast.client.token);
    let mut sse = Sse::open(&app, &path, ("cookie", &cookie), None).await;
    sse.next(SOON).await.expect("a first event");
    app.send(&cast.front, &[&user(&cast.client)], "Your appointment")
        .await;
    let next = sse.next(SOON).await.expect("an event for the message");
    assert_eq!(next.data["kinds"], json!(["threads", "folders"]));
    let resp = app.client.get(app.url(&path)).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .contains(&cast.practice));
}

/// Another client's mail and a staff-only thread wake nobody else's stream.
async fn a_stream_hears_nothing_of_what_is_not_the_persons(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    settle(&app).await;
    let auth = bearer(&cast.client);
    let mut sse = Sse::open(&app, "/api/v1/events", (auth.0, &auth.1), None).await;
    sse.next(SOON).await.expect("a first event");
    app.send(&cast.provider, &[&user(&cast.other_client)], "Not for you")
        .await;
    app.send(&cast.provider, &[&user(&cast.front)], "Staff only")
        .await;
    // A marker the client does hear: nothing may come before it.
    app.send(&cast.provider, &[&user(&cast.client)], "For you")
        .await;
    settle(&app).await;
    let next = sse.next(SOON).await.expect("the client's own event");
    let c = changes(&app, &cast.client, &{
        let (_, page) = app.get("/api/v1/threads?limit=1", &cast.client).await;
        page["state"].as_str().unwrap().to_string()
    })
    .await;
    assert!(ids(&c, "created").is_empty());
    assert_eq!(next.data["kinds"], json!(["threads", "folders"]));
    let c = changes(&app, &cast.client, &next.id).await;
    assert!(
        ids(&c, "created").is_empty(),
        "nothing after the marker: {c}"
    );
}

/// Two nodes on one database: a stream open on node B hears a message sent through node A
/// within a second. On PostgreSQL node B's poll is a minute, so only A's notification
/// can bring it; on SQLite (one node in production) node B's poll does.
async fn a_message_sent_through_one_node_reaches_a_stream_on_another(backend: Backend) {
    let (a, cast) = TestApp::with_cast(backend).await;
    let poll = match backend {
        Backend::Postgres => 60_000,
        Backend::Sqlite => 100,
    };
    let b = a.spawn_sibling(|c| c.live.poll_interval_ms = poll).await;
    settle(&b).await;
    let auth = bearer(&cast.client);
    let mut sse = Sse::open(&b, "/api/v1/events", (auth.0, &auth.1), None).await;
    sse.next(SOON).await.expect("a first event");
    let started = std::time::Instant::now();
    a.send(&cast.provider, &[&user(&cast.client)], "Across nodes")
        .await;
    let next = sse
        .next(Duration::from_secs(1))
        .await
        .expect("the event reaches node B");
    assert_eq!(next.data["kinds"], json!(["threads", "folders"]));
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Behind a load balancer that speaks HTTP/2 (`server.http2_balancers`), several people's streams
/// share one connection, and each hears only its own person's changes; HTTP/1.1 is still
/// served on the same address.
async fn streams_of_several_people_share_one_http2_connection(backend: Backend) {
    let (first, cast) = TestApp::with_cast(backend).await;
    let app = first
        .spawn_sibling(|c| c.server.http2_balancers = vec!["127.0.0.1".parse().unwrap()])
        .await;
    settle(&app).await;
    let balancer = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = app.url("/api/v1/events");
    let mut client = Sse::open_with(&balancer, &url, &cast.client.token).await;
    let mut other = Sse::open_with(&balancer, &url, &cast.other_client.token).await;
    assert_eq!(client.response.version(), reqwest::Version::HTTP_2);
    assert_eq!(other.response.version(), reqwest::Version::HTTP_2);
    let client_state = client.next(SOON).await.expect("a first event").id;
    let other_state = other.next(SOON).await.expect("a first event").id;
    assert_eq!(app.state.live.open_streams(), 2);

    let for_client = app
        .send(&cast.provider, &[&user(&cast.client)], "Lab results are in")
        .await;
    let for_other = app
        .send(&cast.provider, &[&user(&cast.other_client)], "Your invoice")
        .await;
    let heard = client.next(SOON).await.expect("the client's event");
    assert_eq!(heard.data["kinds"], json!(["threads", "folders"]));
    other.next(SOON).await.expect("the other client's event");
    // Each stream's states lead to its own person's thread only.
    let c = changes(&app, &cast.client, &client_state).await;
    assert_eq!(ids(&c, "created"), [for_client.as_str()]);
    let c = changes(&app, &cast.other_client, &other_state).await;
    assert_eq!(ids(&c, "created"), [for_other.as_str()]);
    assert!(!client.raw.contains(&for_other) && !other.raw.contains(&for_client));

    let plain = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.version(), reqwest::Version::HTTP_11);
}
