//! The pages in a real browser (headless Chromium): the setup page and the API docs under
//! the strict Content-Security-Policy.

use reqwest::StatusCode;

use crate::browser::Browser;
use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    setup_page_creates_the_practice_in_a_browser,
    api_docs_run_under_the_csp_and_reach_the_api,
);

async fn setup_page_creates_the_practice_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let link = confide::service::practices::setup_link_if_empty(&app.state)
        .await
        .unwrap()
        .unwrap();
    browser.goto(&link).await;
    browser.wait_for_text("h1", "Set up your practice").await;
    browser.type_into("#name", "Oak Street Therapy").await;
    browser.type_into("#slug", "oak-street").await;
    browser.type_into("#admin_name", "Avery Admin").await;
    browser.type_into("#admin_email", "avery@oak.example").await;
    browser.type_into("#password", PASSWORD).await;
    browser
        .type_into("#password_again", "not the same password")
        .await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text(".error", "The two passwords differ.")
        .await;
    // The browser kept its CSRF cookie; the re-rendered form carries a fresh token.
    browser.type_into("#password", PASSWORD).await;
    browser.type_into("#password_again", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("h1", "Your practice is ready").await;
    let violations: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    assert!(violations.is_empty(), "{violations:?}");
    browser.quit().await;
    assert_eq!(
        app.sign_in("oak-street", "avery@oak.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn api_docs_run_under_the_csp_and_reach_the_api(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let practice = app.create_practice("oak").await;
    browser.goto(&app.url("/api/docs")).await;
    // Swagger UI renders only if its inline scripts were allowed by their hashes.
    assert!(browser
        .text(".swagger-ui .info .title")
        .await
        .starts_with("Confide"));
    assert!(browser.source().await.contains("/sessions"));
    // What "Try it out" does: sign in, then call the API with the token, from the page.
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        (async () => {{
          const signIn = await fetch('/api/v1/sessions', {{method: 'POST', headers: {{'content-type': 'application/json'}},
            body: JSON.stringify({{practice: '{practice}', email: 'admin@oak.example', password: '{PASSWORD}'}})}});
          const {{token}} = await signIn.json();
          const created = await fetch('/api/v1/people', {{method: 'POST',
            headers: {{'content-type': 'application/json', authorization: 'Bearer ' + token}},
            body: JSON.stringify({{role: 'provider', name: 'Pat Provider', email: 'pat@oak.example'}})}});
          done([signIn.status, created.status]);
        }})().catch(e => done(String(e)));"#
    );
    let statuses = browser.run_async(&script).await;
    assert_eq!(statuses, serde_json::json!([201, 201]));
    let violations: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    assert!(violations.is_empty(), "{violations:?}");
    browser.quit().await;
}
