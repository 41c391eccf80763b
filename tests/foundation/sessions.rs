//! Sign-in, sessions and throttling (issue 2 §4).

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    sign_in_returns_a_token_stored_only_hashed,
    unknown_address_and_wrong_password_get_the_same_answer,
    invited_and_disabled_accounts_cannot_sign_in,
    sign_out_ends_the_session,
    session_ends_after_30_idle_minutes,
    session_ends_after_12_hours_in_all,
    password_change_ends_the_other_sessions,
    disabling_an_account_ends_its_sessions,
    repeated_failures_are_throttled_per_account,
    repeated_failures_are_throttled_per_client_address,
    throttling_holds_across_server_processes,
    missing_or_bogus_token_is_unauthenticated,
    bad_sign_in_input_names_the_field,
    parallel_guesses_cannot_pass_the_limit,
    current_password_guesses_are_throttled_too,
    unknown_address_and_wrong_password_take_about_as_long,
);

async fn sign_in_returns_a_token_stored_only_hashed(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let resp = app.sign_in(&practice, "ADMIN@oak.example", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    // 256 random bits, URL-safe base64: far above the 128 required.
    assert!(token.len() >= 43, "{token}");
    assert_eq!(body["user"]["email"], "admin@oak.example");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["practice"]["slug"], "oak");
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let hours = (expires.timestamp_millis() - app.clock_now()) as f64 / 3_600_000.0;
    assert!((hours - 12.0).abs() < 0.01, "{hours}");

    let mut conn = app.state.store.read().await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(stored, vec![hex::encode(Sha256::digest(token.as_bytes()))]);

    let me = app.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(me.0, StatusCode::OK);
    assert_eq!(me.1["email"], "admin@oak.example");
}

async fn unknown_address_and_wrong_password_get_the_same_answer(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let wrong_password = app
        .sign_in(&practice, "admin@oak.example", "not-the-password-1")
        .await;
    let unknown_email = app
        .sign_in(&practice, "nobody@oak.example", "not-the-password-1")
        .await;
    let unknown_practice = app.sign_in("elm", "admin@oak.example", PASSWORD).await;
    let mut seen = Vec::new();
    for resp in [wrong_password, unknown_email, unknown_practice] {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_credentials");
        seen.push(body);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
}

async fn invited_and_disabled_accounts_cannot_sign_in(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let (status, _) = app
        .update_person(&admin, &client.id, json!({"status": "disabled"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = app.sign_in(&practice, &client.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "invalid_credentials"
    );

    let (status, invited) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy Invited", "email": "ivy@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(invited["status"], "invited");
    let resp = app.sign_in(&practice, "ivy@oak.example", "").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app.sign_in(&practice, "ivy@oak.example", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "invalid_credentials"
    );
}

async fn sign_out_ends_the_session(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/sessions/current",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let result = app.me(&admin).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn session_ends_after_30_idle_minutes(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    // Activity keeps it alive…
    for _ in 0..3 {
        app.clock.advance_minutes(25);
        assert_eq!(app.me(&admin).await.0, StatusCode::OK);
    }
    // …and 30 idle minutes end it.
    app.clock.advance_minutes(30);
    let result = app.me(&admin).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "session_expired");
    // It stays ended.
    let result = app.me(&admin).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn session_ends_after_12_hours_in_all(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        app.clock.advance_minutes(20);
        assert_eq!(app.me(&admin).await.0, StatusCode::OK);
    }
    app.clock.advance_minutes(20);
    let result = app.me(&admin).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "session_expired");
}

async fn password_change_ends_the_other_sessions(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let here = app.admin(&practice).await;
    let elsewhere = app.admin(&practice).await;
    let new_password = "saffron-glacier-lattice-41";
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &here,
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.me(&here).await.0, StatusCode::OK);
    let result = app.me(&elsewhere).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        app.sign_in(&practice, &here.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in(&practice, &here.email, new_password)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn disabling_an_account_ends_its_sessions(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    assert_eq!(app.me(&provider).await.0, StatusCode::OK);
    let (status, body) = app
        .update_person(&admin, &provider.id, json!({"status": "disabled"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disabled");
    let result = app.me(&provider).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn repeated_failures_are_throttled_per_account(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    for _ in 0..5 {
        let resp = app
            .sign_in(&practice, "admin@oak.example", "wrong-password-123")
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused until the window has passed.
    let resp = app.sign_in(&practice, "admin@oak.example", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    // Unknown addresses are throttled alike, so a 429 tells nothing about existence.
    for _ in 0..5 {
        app.sign_in(&practice, "ghost@oak.example", "wrong-password-123")
            .await;
    }
    assert_eq!(
        app.sign_in(&practice, "ghost@oak.example", "wrong-password-123")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock.advance_minutes(16);
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn repeated_failures_are_throttled_per_client_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.server.trust_forwarded_for = true;
        c.auth.max_failures_per_address = 3;
    })
    .await;
    let practice = app.create_practice("oak").await;
    let attempt = |email: String, ip: &'static str| {
        app.client
            .post(app.url("/api/v1/sessions"))
            .header("x-forwarded-for", ip)
            .json(&json!({"practice": practice, "email": email, "password": "wrong-password-123"}))
            .send()
    };
    for i in 0..3 {
        let resp = attempt(format!("user{i}@oak.example"), "203.0.113.7")
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = attempt("someone.else@oak.example".into(), "203.0.113.7")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // A line the client forged comes before the one its proxy adds: the last line counts.
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("x-forwarded-for", "198.51.100.9")
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"practice": practice, "email": "a@oak.example", "password": "wrong-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let resp = attempt("someone.else@oak.example".into(), "198.51.100.9")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

async fn throttling_holds_across_server_processes(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_sibling(|_| {}).await;
    let practice = first.create_practice("oak").await;
    for i in 0..5 {
        let node = if i % 2 == 0 { &first } else { &second };
        assert_eq!(
            node.sign_in(&practice, "admin@oak.example", "wrong-password-123")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for node in [&first, &second] {
        assert_eq!(
            node.sign_in(&practice, "admin@oak.example", PASSWORD)
                .await
                .status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

async fn missing_or_bogus_token_is_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let result = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
    let result = app
        .call(Method::GET, "/api/v1/people", Some("made-up-token"), None)
        .await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn bad_sign_in_input_names_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (json!({"email": "a@b.org", "password": "x"}), "practice"),
        (
            json!({"practice": "oak", "email": "not-an-email", "password": "x"}),
            "email",
        ),
        (
            json!({"practice": "oak", "email": "a@b.org", "password": 12}),
            "password",
        ),
        (
            json!({"practice": "oak", "email": "a@b.org", "password": "x", "remember": true}),
            "remember",
        ),
    ];
    for (body, field) in cases {
        let result = app
            .call(Method::POST, "/api/v1/sessions", None, Some(body))
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(result.1["field"], field);
    }
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body("{\"practice\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "invalid_json");
}

async fn parallel_guesses_cannot_pass_the_limit(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/sessions"));
        let body = json!({"practice": practice, "email": "admin@oak.example", "password": format!("guess-number-{i}")});
        guesses.spawn(async move { client.post(url).json(&body).send().await.unwrap().status() });
    }
    let mut checked = 0;
    while let Some(status) = guesses.join_next().await {
        let status = status.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        checked += usize::from(status == StatusCode::UNAUTHORIZED);
    }
    // Only as many passwords were tried as the limit allows.
    assert_eq!(checked, 5);
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn current_password_guesses_are_throttled_too(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    for i in 0..5 {
        let result = app
            .post("/api/v1/me/password", &admin, json!({"current_password": format!("guess-{i}-guess"), "new_password": "saffron-glacier-lattice-41"}))
            .await;
        assert_problem(
            &result,
            StatusCode::BAD_REQUEST,
            "current_password_incorrect",
        );
    }
    let result = app
        .post(
            "/api/v1/me/password",
            &admin,
            json!({"current_password": PASSWORD, "new_password": "saffron-glacier-lattice-41"}),
        )
        .await;
    assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

async fn unknown_address_and_wrong_password_take_about_as_long(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    // Enough room in the limits for the measurement itself (four failures, under the
    // account's five). The fastest of each: a busy machine only ever adds time, so the
    // minimum is what the work itself takes (a median of two was the slower one, and a
    // load spike on one side failed the test).
    let fastest = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..4 {
        let started = std::time::Instant::now();
        app.sign_in(
            &practice,
            "admin@oak.example",
            &format!("wrong-password-{i}"),
        )
        .await;
        known.push(started.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        app.sign_in(
            &practice,
            &format!("nobody{i}@oak.example"),
            "wrong-password-x",
        )
        .await;
        unknown.push(started.elapsed().as_secs_f64());
    }
    let (known, unknown) = (fastest(known), fastest(unknown));
    // Both verify a password hash; a missing account is no shortcut. Generous bounds: this
    // guards against skipping the hash, not against microsecond differences.
    assert!(
        unknown > known / 4.0 && unknown < known * 4.0,
        "known {known:.4}s, unknown {unknown:.4}s"
    );
}
