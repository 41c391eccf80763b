//! Changing an email address (DESIGN.md §2 People and consent): only an admin changes
//! another person's address, a new address counts only once confirmed through the link
//! sent to it, the old address gets a notice without content, and every session ends.

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, Backend, PASSWORD};
use crate::{on_both_backends, token_of, with_sink};

on_both_backends!(
    staff_cannot_take_over_a_client_by_changing_their_email,
    a_changed_email_counts_only_once_confirmed,
    own_email_change_needs_the_password_and_the_link,
    an_invited_persons_address_changes_with_a_new_invitation,
    a_link_confirms_only_the_address_it_was_sent_to,
    own_email_change_cannot_probe_who_uses_an_address,
);

/// The attack from the review: a front office person points a client's account at their
/// own address and resets its password. Every non-admin staff role is refused, nothing
/// changes, and the reset goes nowhere.
async fn staff_cannot_take_over_a_client_by_changing_their_email(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let thread = app
        .send(&provider, &[&format!("user:{}", client.id)], "Private")
        .await;
    for (role, name) in [
        (Role::FrontOffice, "Fran Front"),
        (Role::Biller, "Bo Biller"),
        (Role::ExternalAgent, "Eve Agent"),
        (Role::Provider, "Other Provider"),
    ] {
        let attacker = app.person(&practice, role, name).await;
        let result = app
            .update_person(
                &attacker,
                &client.id,
                json!({"email": "attacker@evil.example"}),
            )
            .await;
        assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(result.1["field"], "email");
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/password-resets",
                None,
                Some(json!({"practice": practice, "email": "attacker@evil.example"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        if role != Role::Provider {
            let result = app.thread(&attacker, &thread).await;
            assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
        }
    }
    let (_, person) = app
        .get(
            &format!("/api/v1/people/{}", client.id),
            &app.admin(&practice).await,
        )
        .await;
    assert_eq!(person["email"], client.email);
    assert!(person.get("pending_email").is_none(), "{person}");
    assert!(sink
        .wait_for("attacker@evil.example", 1, 2)
        .await
        .is_empty());
}

async fn a_changed_email_counts_only_once_confirmed(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let (status, person) = app
        .update_person(
            &admin,
            &client.id,
            json!({"email": "casey.new@home.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{person}");
    assert_eq!(
        person["email"], client.email,
        "the old address stays in use"
    );
    assert_eq!(person["pending_email"], "casey.new@home.example");

    // The new address gets the link; the old one a notice that names neither address.
    let link_email = &sink.wait_for("casey.new@home.example", 1, 10).await[0];
    assert_eq!(
        link_email.header("Subject").as_deref(),
        Some("Confirm your new email address")
    );
    let link = link_email.link("/email-changes/").expect("a link");
    assert_eq!(token_of(&link).len(), 43, "256 random bits");
    let notice = &sink.wait_for(&client.email, 1, 10).await[0];
    assert_eq!(
        notice.header("Subject").as_deref(),
        Some("Your email address is being changed")
    );
    let text = notice.decoded();
    assert!(!text.contains("casey.new"), "{text}");
    assert!(!text.contains("/email-changes/"), "{text}");

    // Until it is confirmed, sign-in and resets use the old address.
    assert_eq!(
        app.sign_in(&practice, "casey.new@home.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in(&practice, &client.email, PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    app.call(
        Method::POST,
        "/api/v1/password-resets",
        None,
        Some(json!({"practice": practice, "email": "casey.new@home.example"})),
    )
    .await;
    assert_eq!(sink.wait_for("casey.new@home.example", 2, 2).await.len(), 1);
    let (status, _) = app.me(&client).await;
    assert_eq!(status, StatusCode::OK);

    // Confirming makes it the address and ends every session; the link works once.
    let path = format!("/api/v1/email-changes/{}", token_of(&link));
    let (status, _) = app.call(Method::POST, &path, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let result = app.me(&client).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        app.sign_in(&practice, &client.email, PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in(&practice, "casey.new@home.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let result = app.call(Method::POST, &path, None, None).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    let (_, person) = app.person_of(&admin, &client.id).await;
    assert_eq!(person["email"], "casey.new@home.example");
    assert!(person.get("pending_email").is_none(), "{person}");
    let mut conn = app.state.store.read().await.unwrap();
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY seq")
            .bind(&client.id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert!(
        actions.contains(&"request_email_change".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"confirm_email_change".to_string()),
        "{actions:?}"
    );
}

async fn own_email_change_needs_the_password_and_the_link(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let result = app
        .update_me(&client, json!({"email": "casey@new.example"}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "current_password");
    let result = app
        .update_me(
            &client,
            json!({"email": "casey@new.example", "current_password": "not-my-password-1"}),
        )
        .await;
    assert_problem(
        &result,
        StatusCode::BAD_REQUEST,
        "current_password_incorrect",
    );
    let (status, me) = app
        .update_me(
            &client,
            json!({"email": "casey@new.example", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], client.email);
    assert_eq!(me["pending_email"], "casey@new.example");

    // The page behind the link asks first (opening it changes nothing), then confirms.
    let link = sink.wait_for("casey@new.example", 1, 10).await[0]
        .link("/email-changes/")
        .unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let (status, _) = app.me(&client).await;
    assert_eq!(status, StatusCode::OK, "opening the page changed nothing");
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    let forged = browser
        .post(&link)
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let done = browser
        .post(&link)
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("is confirmed"));
    assert_eq!(
        app.sign_in(&practice, "casey@new.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        browser.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn an_invited_persons_address_changes_with_a_new_invitation(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let (_, invited) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy Quinn", "email": "ivy@typo.example"}),
        )
        .await;
    let first = sink.wait_for("ivy@typo.example", 1, 10).await[0]
        .link("/invitations/")
        .unwrap();
    let (status, person) = app
        .patch(
            &format!("/api/v1/people/{}", invited["id"].as_str().unwrap()),
            &admin,
            json!({"email": "ivy@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{person}");
    assert_eq!(person["email"], "ivy@oak.example");
    let second = sink.wait_for("ivy@oak.example", 1, 10).await[0]
        .link("/invitations/")
        .unwrap();
    let accept = |link: &str| format!("/api/v1/invitations/{}/accept", token_of(link));
    let result = app
        .call(
            Method::POST,
            &accept(&first),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    let (status, _) = app
        .call(
            Method::POST,
            &accept(&second),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Asking for A and then for B: A's link confirms nothing (else A's owner would make B the
/// account's address without B's owner ever seeing a link). The race that matters: a link
/// for A made while B is already asked for (a worker that read A just before).
async fn a_link_confirms_only_the_address_it_was_sent_to(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let path = format!("/api/v1/people/{}", client.id);
    app.patch(&path, &admin, json!({"email": "first@home.example"}))
        .await;
    let first = sink.wait_for("first@home.example", 1, 10).await[0]
        .link("/email-changes/")
        .unwrap();
    app.patch(&path, &admin, json!({"email": "second@home.example"}))
        .await;
    let second = sink.wait_for("second@home.example", 1, 10).await[0]
        .link("/email-changes/")
        .unwrap();
    let confirm = |link: &str| format!("/api/v1/email-changes/{}", token_of(link));
    let result = app.call(Method::POST, &confirm(&first), None, None).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    // A token for A, stored as a late worker would have stored it, confirms nothing.
    let late = confide::auth::new_token();
    {
        let mut conn = app.state.store.write().await.unwrap();
        sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, purpose, person_id, address, created_at, expires_at) \
             VALUES ($1, 'email_change', $2, 'first@home.example', $3, $4)",
        )
        .bind(confide::auth::token_hash(&late))
        .bind(&client.id)
        .bind(app.clock_now())
        .bind(app.clock_now() + 3_600_000)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let result = app
        .call(
            Method::POST,
            &format!("/api/v1/email-changes/{late}"),
            None,
            None,
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    let (status, _) = app.call(Method::POST, &confirm(&second), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, person) = app.get(&path, &admin).await;
    assert_eq!(person["email"], "second@home.example");
}

/// A client asking for an address someone of the practice uses learns nothing from the
/// answer (the link then fails with `email_taken`), and typing it costs no sign-in attempt.
async fn own_email_change_cannot_probe_who_uses_an_address(backend: Backend) {
    // One counted attempt would be one too many.
    let Some((app, sink)) = with_sink(backend, |c| c.auth.max_failures_per_account = 1).await
    else {
        return;
    };
    let practice = app.create_practice("oak").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let mut answers = Vec::new();
    let mut first_links = Vec::new();
    for email in ["admin@oak.example", "nobody@oak.example"] {
        let (status, me) = app
            .update_me(
                &client,
                json!({"email": email, "current_password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{me}");
        answers.push(me["pending_email"].clone());
        let sent = sink.wait_for(email, 1, 10).await;
        first_links.push(sent[0].link("/email-changes/").unwrap());
    }
    assert_eq!(
        answers,
        [json!("admin@oak.example"), json!("nobody@oak.example")]
    );
    // The earlier request's link is void; confirming a taken address is refused.
    app.update_me(
        &client,
        json!({"email": "admin@oak.example", "current_password": PASSWORD}),
    )
    .await;
    let link = sink
        .wait_for("admin@oak.example", 2, 10)
        .await
        .iter()
        .filter_map(|e| e.link("/email-changes/"))
        .find(|l| !first_links.contains(l))
        .expect("a new link");
    let result = app
        .call(
            Method::POST,
            &format!("/api/v1/email-changes/{}", token_of(&link)),
            None,
            None,
        )
        .await;
    assert_problem(&result, StatusCode::CONFLICT, "email_taken");
    assert_eq!(
        app.sign_in(&practice, &client.email, PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}
