//! The pages in a real browser (headless Chromium): the setup page and the API docs under
//! the strict Content-Security-Policy.

use reqwest::StatusCode;

use crate::browser::Browser;
use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    setup_page_creates_the_practice_in_a_browser,
    api_docs_run_under_the_csp_and_reach_the_api,
    email_change_page_confirms_in_a_browser,
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
    let (app, practice) = TestApp::with_practice(backend).await;
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

/// The page behind an email-change link, as its user sees it on a desktop and on a phone:
/// nothing overflows, axe-core finds nothing, and the button confirms the new address.
async fn email_change_page_confirms_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // The worker would mail its own link (and void this test's): it waits an hour here.
    let app = TestApp::spawn_with(backend, |c| c.notifications.delay_seconds = 3600).await;
    let practice = app.create_practice("oak").await;
    let admin = app.admin(&practice).await;
    let client = app
        .person(&practice, confide::domain::Role::Client, "Casey Client")
        .await;
    let (status, _) = app
        .patch(
            &format!("/api/v1/people/{}", client.id),
            &admin,
            serde_json::json!({"email": "casey@home.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The link the worker would mail (the mail itself is the notify tests' business).
    let token = {
        let mut tx = app.state.store.begin().await.unwrap();
        let practice_id = admin_practice_id(&app, &admin).await;
        let row = confide::store::people::find(&mut tx, &practice_id, &client.id)
            .await
            .unwrap()
            .unwrap();
        let person = confide::service::Person::try_from(row).unwrap();
        let token = confide::service::email_changes::issue(
            &mut tx,
            &app.state,
            &person,
            "casey@home.example",
        )
        .await
        .unwrap()
        .expect("the address asked for");
        tx.commit().await.unwrap();
        token
    };
    browser
        .goto(&app.url(&format!("/email-changes/{token}")))
        .await;
    for (width, height) in [(1280, 800), (375, 800)] {
        browser.set_size(width, height).await;
        browser
            .wait_for_text("h1", "Confirm your new email address")
            .await;
        assert!(!browser.scrolls_sideways().await, "overflows at {width} px");
        let violations = browser.accessibility_violations().await;
        assert!(violations.is_empty(), "at {width} px: {violations:?}");
    }
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text("h1", "Your new email address is confirmed")
        .await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{violations:?}");
    browser.quit().await;
    assert_eq!(
        app.sign_in(&practice, "casey@home.example", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// The practice id of a signed-in person.
async fn admin_practice_id(app: &TestApp, who: &crate::helpers::Session) -> String {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar("SELECT practice_id FROM people WHERE id = $1")
        .bind(&who.id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}
