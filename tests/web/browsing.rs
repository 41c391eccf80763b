//! The inbox in a real browser (headless Chromium): a client's journey through every page,
//! with axe-core on each and the layout at phone width.

use crate::browser::Browser;
use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::{on_both_backends, user};

on_both_backends!(
    a_client_uses_every_page_in_a_browser_and_axe_finds_nothing,
    with_javascript_new_mail_appears_and_drafts_save_themselves,
    staff_use_the_conversation_pages_in_a_browser_and_axe_finds_nothing,
    a_biller_uses_the_shared_billing_folder_in_a_browser_and_axe_finds_nothing,
);

/// The billing team's shared folder and a team thread as a biller sees them (who handles
/// it, the assign and done forms, the folder's narrowings), checked by axe at both widths.
async fn a_biller_uses_the_shared_billing_folder_in_a_browser_and_axe_finds_nothing(
    backend: Backend,
) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.client, &["group:billers"], "Statement question")
        .await;
    app.send(&cast.client, &["group:billers"], "Card declined")
        .await;
    app.patch(
        &format!("/api/v1/threads/{id}"),
        &cast.biller,
        serde_json::json!({"assignee": user(&cast.biller)}),
    )
    .await;
    browser.set_size(1280, 900).await;
    browser.goto(&app.url("/p/oak/")).await;
    browser.wait_for_text("h1", "Practice oak").await;
    browser.type_into("#email", &cast.biller.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    browser.goto(&app.url("/p/oak/mail/team:billers")).await;
    browser.wait_for_text("main h1", "Billing").await;
    let listed = browser.text(".threads").await;
    assert!(listed.contains("Assigned to you"), "{listed}");
    assert!(listed.contains("Unassigned"), "{listed}");
    assert_accessible(&browser, "team folder").await;
    assert_fits_a_phone(&browser, "team folder").await;
    browser
        .goto(&app.url(&format!("/p/oak/threads/{id}")))
        .await;
    browser.wait_for_text("main h1", "Statement question").await;
    assert!(browser
        .text(".team-state")
        .await
        .contains("Assigned to Bo Biller"));
    assert_accessible(&browser, "team thread").await;
    assert_fits_a_phone(&browser, "team thread").await;
    browser.quit().await;
}

/// The pages of conversations as staff see them — a group with an announcement, reactions,
/// receipts and notes; sharing; the Scheduled view; settings with the automatic reply; the
/// practice's settings — each checked by axe at 1280 px and at a phone's width.
async fn staff_use_the_conversation_pages_in_a_browser_and_axe_finds_nothing(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, group) = app
        .post(
            "/api/v1/threads",
            &cast.admin,
            serde_json::json!({
                "to": [user(&cast.client), user(&cast.other_client)],
                "subject": "Tuesday group",
                "body": "Welcome to the **group**.",
                "kind": "conversation",
            }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap().to_string();
    let first = group["messages"][0]["id"].as_str().unwrap().to_string();
    app.put(
        &format!("/api/v1/threads/{id}/announcement"),
        &cast.admin,
        serde_json::json!({"text": "No session next week"}),
    )
    .await;
    app.post(
        &format!("/api/v1/threads/{id}/notes"),
        &cast.admin,
        serde_json::json!({"body": "Check in with Dana."}),
    )
    .await;
    app.call(
        reqwest::Method::PUT,
        &format!("/api/v1/messages/{first}/reactions/👍"),
        Some(&cast.client.token),
        None,
    )
    .await;
    app.thread(&cast.client, &id).await;
    let later = confide::clock::to_datetime(app.clock_now() + 86_400_000);
    app.post(
        "/api/v1/threads",
        &cast.admin,
        serde_json::json!({"to": [user(&cast.client)], "subject": "Reminder", "body": "See you tomorrow at ten.", "send_at": later}),
    )
    .await;

    browser.set_size(1280, 900).await;
    browser.goto(&app.url("/p/oak/")).await;
    browser.wait_for_text("h1", "Practice oak").await;
    browser.type_into("#email", &cast.admin.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    for (path, heading, name) in [
        (
            format!("/p/oak/threads/{id}"),
            "Tuesday group Group conversation",
            "conversation, as staff",
        ),
        (
            format!("/p/oak/threads/{id}/share"),
            "Share “Tuesday group” with the team",
            "share",
        ),
        (
            "/p/oak/mail/scheduled".to_string(),
            "Scheduled",
            "scheduled",
        ),
        ("/p/oak/settings".to_string(), "Settings", "settings"),
        (
            "/p/oak/admin/settings".to_string(),
            "Practice settings",
            "practice settings",
        ),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_for_text("main h1", heading).await;
        assert_accessible(&browser, name).await;
        assert_fits_a_phone(&browser, name).await;
    }
    browser.quit().await;
}

/// Runs axe-core on the page in view; no violation of any impact is accepted.
async fn assert_accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

/// The page at a phone's width: nothing overflows sideways, and axe is still content.
async fn assert_fits_a_phone(browser: &Browser, page: &str) {
    browser.set_size(375, 800).await;
    assert!(
        !browser.scrolls_sideways().await,
        "{page} overflows at 375 px"
    );
    assert_accessible(browser, &format!("{page} at 375 px")).await;
    browser.set_size(1280, 900).await;
}

async fn a_client_uses_every_page_in_a_browser_and_axe_finds_nothing(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Your first visit")
        .await;
    browser.set_size(1280, 900).await;
    browser.goto(&app.url("/p/oak/")).await;
    browser.wait_for_text("h1", "Practice oak").await;
    assert_accessible(&browser, "sign-in").await;
    assert_fits_a_phone(&browser, "sign-in").await;
    browser.type_into("#email", &cast.client.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    assert!(browser.text(".threads").await.contains("Your first visit"));
    assert_accessible(&browser, "inbox").await;
    assert_fits_a_phone(&browser, "inbox").await;

    browser.click(".threads a").await;
    browser
        .wait_for_text("h1#subject", "Your first visit")
        .await;
    assert_accessible(&browser, "thread").await;
    assert_fits_a_phone(&browser, "thread").await;
    browser.type_into("#body", "See you on *Thursday*.").await;
    browser.click(".reply button[type=submit]").await;
    browser
        .wait_for_text(".message:last-child .body", "See you on Thursday.")
        .await;

    browser.goto(&app.url("/p/oak/compose")).await;
    browser.wait_for_text("main h1", "New message").await;
    assert_accessible(&browser, "compose").await;
    assert_fits_a_phone(&browser, "compose").await;
    browser.type_into("#subject", "Parking").await;
    browser.type_into("#body", "Where do I **park**?").await;
    browser.click("button[value=preview]").await;
    browser
        .wait_for_text(".preview .body", "Where do I park?")
        .await;
    assert_accessible(&browser, "compose with a preview").await;
    browser.click("button[value=save]").await;
    browser.wait_for_text("main h1", "Drafts").await;
    assert_accessible(&browser, "drafts").await;

    browser.type_into("#q", "visit").await;
    browser.click(".search button").await;
    browser.wait_for_text("main h1", "Search").await;
    assert_accessible(&browser, "search results").await;

    browser
        .goto(&app.url(&format!("/p/oak/threads/{thread}x")))
        .await;
    browser.wait_for_text("h1", "Not found").await;
    assert_accessible(&browser, "not found").await;
    browser.goto(&app.url("/p/oak/forgot-password")).await;
    browser.wait_for_text("h1", "Forgot your password?").await;
    assert_accessible(&browser, "forgot password").await;
    let csp: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    assert!(csp.is_empty(), "{csp:?}");
    browser.quit().await;
}

/// Waits up to `secs` for the text of `css` to contain `expected`.
async fn wait_until_contains(browser: &Browser, css: &str, expected: &str, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let text = browser.text(css).await;
        if text.contains(expected) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never showed {expected:?}; it shows {text:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn with_javascript_new_mail_appears_and_drafts_save_themselves(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    app.send(&cast.provider, &[&user(&cast.client)], "First note")
        .await;
    browser.set_size(1280, 900).await;
    browser.goto(&app.url("/p/oak/")).await;
    browser.type_into("#email", &cast.client.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    wait_until_contains(&browser, ".threads", "First note", 5).await;
    // A message sent meanwhile shows up in the open inbox, and its count in the sidebar,
    // without a reload.
    app.send(&cast.provider, &[&user(&cast.client)], "Second note")
        .await;
    wait_until_contains(&browser, ".threads", "Second note", 10).await;
    wait_until_contains(&browser, "nav.folders", "Inbox\n2", 10).await;

    // The To list filters by name, and a draft saves itself while one writes.
    browser.goto(&app.url("/p/oak/compose")).await;
    browser.wait_for_text("main h1", "New message").await;
    browser.type_into("#to-filter", "fran").await;
    let shown: serde_json::Value = browser
        .run_async(
            "const done = arguments[arguments.length - 1]; \
             done([...document.querySelectorAll('fieldset.to li')].filter(li => !li.hidden).map(li => li.textContent.trim()));",
        )
        .await;
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert!(shown[0].as_str().unwrap().starts_with("Fran Front"));
    browser.type_into("#subject", "Unfinished thought").await;
    browser.type_into("#body", "I was going to say").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, drafts) = app.get("/api/v1/drafts", &cast.client).await;
        if drafts["drafts"].as_array().is_some_and(|d| d.len() == 1) {
            assert_eq!(drafts["drafts"][0]["subject"], "Unfinished thought");
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "no draft saved: {drafts}; console: {:?}",
                browser.console().await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let csp: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Uncaught"))
        .collect();
    assert!(csp.is_empty(), "{csp:?}");
    browser.quit().await;
}
