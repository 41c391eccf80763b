//! Invitation and password-reset emails: single-use links that expire, weak passwords
//! refused, answers that never reveal whether an address exists.

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, PASSWORD};
use crate::{on_both_backends, token_of, with_sink};

on_both_backends!(
    creating_a_person_sends_an_invitation,
    a_resent_invitation_invalidates_the_old_link,
    invitation_links_expire_after_seven_days,
    password_reset_never_reveals_whether_an_address_exists,
    password_reset_sets_the_password_and_ends_every_session,
    reset_links_are_single_use_and_expire_in_an_hour,
    reset_requests_are_limited,
);

async fn creating_a_person_sends_an_invitation(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let (status, _) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy Quinn", "email": "ivy@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let emails = sink.wait_for("ivy@oak.example", 1, 10).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].header("Subject").as_deref(),
        Some("Your invitation to secure messaging")
    );
    let link = emails[0].link("/invitations/").expect("a link");
    assert!(link.starts_with(&app.base));
    let token = token_of(&link);
    assert_eq!(token.len(), 43, "256 random bits");
    let mut conn = app.state.store.read().await.unwrap();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM one_time_tokens WHERE purpose = 'invitation'")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert!(!stored.contains(&token), "the token itself is not stored");
    assert!(
        stored.contains(&confide::auth::token_hash(&token)),
        "its hash is"
    );
    drop(conn);
    let accept = format!("/api/v1/invitations/{token}/accept");
    for weak in ["short-pass", "password1234567", "ivy-quinn-is-me-2026"] {
        let result = app
            .call(Method::POST, &accept, None, Some(json!({"password": weak})))
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "weak_password");
    }
    let (status, _) = app
        .call(
            Method::POST,
            &accept,
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let result = app
        .call(
            Method::POST,
            &accept,
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    assert_eq!(
        app.sign_in(&practice, "ivy@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let result = app
        .post(
            &format!("/api/v1/people/{}/invitation", admin.id),
            &admin,
            json!({}),
        )
        .await;
    assert_problem(&result, StatusCode::CONFLICT, "not_invited");
}

async fn a_resent_invitation_invalidates_the_old_link(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    let (_, person) = app
        .post(
            "/api/v1/people",
            &front,
            json!({"role": "client", "name": "Ivy Quinn", "email": "ivy@oak.example"}),
        )
        .await;
    let first = token_of(
        &sink.wait_for("ivy@oak.example", 1, 10).await[0]
            .link("/invitations/")
            .unwrap(),
    );
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/people/{}/invitation",
                person["id"].as_str().unwrap()
            ),
            &front,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let emails = sink.wait_for("ivy@oak.example", 2, 10).await;
    assert_eq!(emails.len(), 2);
    let second: Vec<String> = emails
        .iter()
        .filter_map(|e| e.link("/invitations/"))
        .map(|l| token_of(&l))
        .filter(|t| *t != first)
        .collect();
    assert_eq!(second.len(), 1);
    let result = app
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{first}/accept"),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    let tampered = crate::helpers::tampered(&second[0]);
    let result = app
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{tampered}/accept"),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{}/accept", second[0]),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn invitation_links_expire_after_seven_days(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    for (name, email) in [
        ("Ivy Quinn", "ivy@oak.example"),
        ("Jo Rivers", "jo@oak.example"),
    ] {
        app.post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": name, "email": email}),
        )
        .await;
    }
    let ivy = token_of(
        &sink.wait_for("ivy@oak.example", 1, 10).await[0]
            .link("/invitations/")
            .unwrap(),
    );
    let jo = token_of(
        &sink.wait_for("jo@oak.example", 1, 10).await[0]
            .link("/invitations/")
            .unwrap(),
    );
    let accept = |token: &str| format!("/api/v1/invitations/{token}/accept");
    app.clock.advance_minutes(7 * 24 * 60 - 1);
    let (status, _) = app
        .call(
            Method::POST,
            &accept(&ivy),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still valid a minute before seven days"
    );
    app.clock.advance_minutes(2);
    let result = app
        .call(
            Method::POST,
            &accept(&jo),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
}

async fn password_reset_never_reveals_whether_an_address_exists(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let mut answers = Vec::new();
    for email in ["admin@oak.example", "nobody@oak.example"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/password-resets",
                None,
                Some(json!({"practice": practice, "email": email})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        answers.push(body);
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/password-resets",
            None,
            Some(json!({"practice": "elm", "email": "admin@oak.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    answers.push(body);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    assert_eq!(sink.wait_for("admin@oak.example", 1, 10).await.len(), 1);
    assert!(sink.wait_for("nobody@oak.example", 1, 1).await.is_empty());
    let result = app
        .call(
            Method::POST,
            "/api/v1/password-resets",
            None,
            Some(json!({"practice": practice, "email": "not an address"})),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
}

async fn password_reset_sets_the_password_and_ends_every_session(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let session = app.admin(&practice).await;
    app.call(
        Method::POST,
        "/api/v1/password-resets",
        None,
        Some(json!({"practice": practice, "email": "admin@oak.example"})),
    )
    .await;
    let email = &sink.wait_for("admin@oak.example", 1, 10).await[0];
    assert_eq!(
        email.header("Subject").as_deref(),
        Some("Reset your password")
    );
    let link = email.link("/password-resets/").unwrap();
    // The link opens a page with a form.
    assert_eq!(
        app.client.get(&link).send().await.unwrap().status(),
        StatusCode::OK
    );
    let path = format!("/api/v1/password-resets/{}", token_of(&link));
    let result = app
        .call(
            Method::POST,
            &path,
            None,
            Some(json!({"password": "password1234567"})),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "weak_password");
    let new_password = "saffron-glacier-lattice-41";
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            None,
            Some(json!({"password": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let result = app.me(&session).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", new_password)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn reset_links_are_single_use_and_expire_in_an_hour(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let request = json!({"practice": practice, "email": "admin@oak.example"});
    app.call(
        Method::POST,
        "/api/v1/password-resets",
        None,
        Some(request.clone()),
    )
    .await;
    let first = token_of(
        &sink.wait_for("admin@oak.example", 1, 10).await[0]
            .link("/password-resets/")
            .unwrap(),
    );
    let path = |t: &str| format!("/api/v1/password-resets/{t}");
    let (status, _) = app
        .call(
            Method::POST,
            &path(&first),
            None,
            Some(json!({"password": "saffron-glacier-lattice-41"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let result: (StatusCode, Value) = app
        .call(
            Method::POST,
            &path(&first),
            None,
            Some(json!({"password": "copper-lantern-orbit-93"})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    app.call(Method::POST, "/api/v1/password-resets", None, Some(request))
        .await;
    let emails = sink.wait_for("admin@oak.example", 2, 10).await;
    let second: Vec<String> = emails
        .iter()
        .filter_map(|e| e.link("/password-resets/"))
        .map(|l| token_of(&l))
        .filter(|t| *t != first)
        .collect();
    app.clock.advance_minutes(61);
    let result = app
        .call(
            Method::POST,
            &path(&second[0]),
            None,
            Some(json!({"password": "copper-lantern-orbit-93"})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
}

async fn reset_requests_are_limited(backend: Backend) {
    let Some((app, _sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let request = json!({"practice": practice, "email": "admin@oak.example"});
    for _ in 0..5 {
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/password-resets",
                None,
                Some(request.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let result = app
        .call(Method::POST, "/api/v1/password-resets", None, Some(request))
        .await;
    assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // Limited alike for an address that does not exist.
    let unknown = json!({"practice": practice, "email": "ghost@oak.example"});
    for _ in 0..5 {
        app.call(
            Method::POST,
            "/api/v1/password-resets",
            None,
            Some(unknown.clone()),
        )
        .await;
    }
    let result = app
        .call(Method::POST, "/api/v1/password-resets", None, Some(unknown))
        .await;
    assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // Sign-in is not locked by them.
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}
