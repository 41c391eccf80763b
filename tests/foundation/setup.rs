//! First start (setup link and page, CSRF) and invitations (issue 2 §6).

use confide::service::practices::setup_link_if_empty;
use confide::service::{invitations, Person};
use confide::store::people::find_any_practice;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    setup_link_creates_the_first_practice_once,
    setup_form_without_its_csrf_token_is_refused,
    a_form_one_node_served_is_accepted_by_another,
    setup_form_reports_bad_input_and_keeps_the_link,
    invitation_sets_the_password_once,
    invitation_page_sets_the_password,
    new_invitation_invalidates_the_old_one,
    setup_link_dies_once_a_practice_exists,
);

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the form has a CSRF token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn setup_form(csrf: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf_token", csrf.to_string()),
        ("name", "Oak Street Therapy".into()),
        ("slug", "oak-street".into()),
        ("admin_name", "Avery Admin".into()),
        ("admin_email", "avery@oak.example".into()),
        ("password", password.into()),
        ("password_again", password.into()),
    ]
}

async fn setup_link_creates_the_first_practice_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = setup_link_if_empty(&app.state)
        .await
        .unwrap()
        .expect("empty database gets a link");
    assert!(link.starts_with(&app.base));
    let browser = cookie_client();
    let page = browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    let csrf = csrf_token(&html);
    let done = browser
        .post(&link)
        .form(&setup_form(&csrf, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("Your practice is ready"));
    assert_eq!(
        app.sign_in("oak-street", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    // The link is used up, and a non-empty database gets no new one.
    assert_eq!(
        browser.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let again = browser
        .post(&link)
        .form(&setup_form(&csrf, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(setup_link_if_empty(&app.state).await.unwrap().is_none());
}

async fn setup_form_without_its_csrf_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = setup_link_if_empty(&app.state).await.unwrap().unwrap();
    // A forged cross-site post: no CSRF cookie, a made-up token.
    let forged = app
        .client
        .post(&link)
        .form(&setup_form("forged", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A real cookie with someone else's token does not pass either.
    let browser = cookie_client();
    browser.get(&link).send().await.unwrap();
    let mismatched = browser
        .post(&link)
        .form(&setup_form("AAAA", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(mismatched.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.sign_in("oak-street", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.get(&link).send().await.unwrap().status(),
        StatusCode::OK,
        "the link still works"
    );
}

async fn setup_form_reports_bad_input_and_keeps_the_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = setup_link_if_empty(&app.state).await.unwrap().unwrap();
    let browser = cookie_client();
    let csrf = csrf_token(
        &browser
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let weak = browser
        .post(&link)
        .form(&setup_form(&csrf, "password1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let html = weak.text().await.unwrap();
    assert!(html.contains("too easy to guess"), "{html}");
    assert!(
        html.contains("Oak Street Therapy"),
        "the form keeps what was typed"
    );
    assert!(!html.contains("password1234"), "but never the password");
    let csrf = csrf_token(&html);
    let ok = browser
        .post(&link)
        .form(&setup_form(&csrf, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn invited_person(app: &TestApp) -> (Person, String) {
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let (status, created) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy Quinn", "email": "ivy.quinn@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut conn = app.state.store.read().await.unwrap();
    let row = find_any_practice(&mut conn, created["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let person = Person::try_from(row).unwrap();
    let mut tx = app.state.store.begin().await.unwrap();
    let token = invitations::issue(&mut tx, &app.state, &person)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (person, token)
}

async fn invitation_sets_the_password_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (person, token) = invited_person(&app).await;
    let path = format!("/api/v1/invitations/{token}/accept");
    let accept = |password: &str| {
        let body = json!({"password": password});
        let path = path.clone();
        let app = &app;
        async move {
            app.call(reqwest::Method::POST, &path, None, Some(body))
                .await
        }
    };
    let result = accept("short").await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "weak_password");
    let result = accept("ivy-quinn-garden-plot").await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "weak_password");
    let (status, body) = accept(PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    let result = accept(PASSWORD).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    assert_eq!(
        app.sign_in("oak", &person.email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let tampered = format!(
        "/api/v1/invitations/{}/accept",
        crate::helpers::tampered(&token)
    );
    let result = app
        .call(
            reqwest::Method::POST,
            &tampered,
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
}

async fn invitation_page_sets_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (person, token) = invited_person(&app).await;
    let link = app.url(&format!("/invitations/{token}"));
    let browser = cookie_client();
    let html = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Welcome, Ivy Quinn"));
    let form = [
        ("csrf_token", csrf_token(&html)),
        ("password", PASSWORD.to_string()),
        ("password_again", PASSWORD.to_string()),
    ];
    let done = browser.post(&link).form(&form).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        app.sign_in("oak", &person.email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        browser.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn new_invitation_invalidates_the_old_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (person, old) = invited_person(&app).await;
    let mut tx = app.state.store.begin().await.unwrap();
    let new = invitations::issue(&mut tx, &app.state, &person)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let body = Some(json!({"password": PASSWORD}));
    let result = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/invitations/{old}/accept"),
            None,
            body.clone(),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
    // Expired after 7 days.
    app.clock.advance_minutes(7 * 24 * 60 + 1);
    let result: (StatusCode, Value) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/invitations/{new}/accept"),
            None,
            body,
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "invalid_token");
}

async fn setup_link_dies_once_a_practice_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = setup_link_if_empty(&app.state).await.unwrap().unwrap();
    let browser = cookie_client();
    let csrf = csrf_token(
        &browser
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    // Someone creates a practice from the command line meanwhile.
    app.create_practice("elm").await;
    assert_eq!(
        browser.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let late = browser
        .post(&link)
        .form(&setup_form(&csrf, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.sign_in("oak-street", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Several nodes behind a load balancer: the page comes from one, the form goes to the
/// other. They share the CSRF key (kept in the database), so the form is accepted; a
/// forged token is still refused there.
async fn a_form_one_node_served_is_accepted_by_another(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_sibling(|_| {}).await;
    let link = setup_link_if_empty(&first.state).await.unwrap().unwrap();
    let on_second = link.replace(&first.base, &second.base);
    assert_ne!(link, on_second);
    let browser = cookie_client();
    let html = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let forged = browser
        .post(&on_second)
        .form(&setup_form("AAAA", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let done = browser
        .post(&on_second)
        .form(&setup_form(&csrf_token(&html), PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("Your practice is ready"));
}
