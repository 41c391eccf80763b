//! The journeys of the web inbox in a real browser (headless Chromium, with its script).

use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{Backend, Session, TestApp, PASSWORD};
use crate::{on_both_backends, user};

on_both_backends!(
    a_provider_writes_to_two_clients_and_a_group_and_neither_client_learns_of_the_other,
    a_biller_answers_through_the_billing_team_folder,
    an_inactive_client_is_offered_only_front_office_and_billers_in_a_browser,
    a_client_attaches_a_file_and_the_provider_downloads_it,
    a_draft_is_saved_resumed_and_sent_in_a_browser,
    threads_are_archived_and_restored_in_bulk,
    sign_out_and_idle_expiry_in_a_browser,
    a_long_thread_opens_on_its_latest_messages_and_pages_back_in_a_browser,
);

async fn sign_in(browser: &Browser, app: &TestApp, who: &Session) {
    browser.goto(&app.url("/p/oak/")).await;
    browser.wait_for_text("h1", "Practice oak").await;
    browser.type_into("#email", &who.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
}

async fn sign_out(browser: &Browser) {
    browser.click(".account button").await;
    browser.wait_for_text("h1", "Practice oak").await;
}

/// Runs `expr` (a JavaScript expression) in the page and returns its value.
async fn eval(browser: &Browser, expr: &str) -> Value {
    browser
        .run_async(&format!(
            "const done = arguments[arguments.length - 1]; Promise.resolve({expr}).then(done);"
        ))
        .await
}

async fn a_provider_writes_to_two_clients_and_a_group_and_neither_client_learns_of_the_other(
    backend: Backend,
) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.provider).await;
    browser.click(".compose-link").await;
    browser.wait_for_text("main h1", "New message").await;
    for to in [
        user(&cast.client),
        user(&cast.other_client),
        "group:billers".into(),
    ] {
        browser.click(&format!("input[value=\"{to}\"]")).await;
    }
    browser.type_into("#subject", "Group starts Thursday").await;
    browser.type_into("#body", "We meet at *six*.").await;
    browser.click("button[value=send]").await;
    browser
        .wait_for_text("h1#subject", "Group starts Thursday")
        .await;
    assert!(browser
        .text(".reply .refusal")
        .await
        .starts_with("This message went to several clients, so replies are turned off."));
    sign_out(&browser).await;
    for (me, other) in [
        (&cast.client, "Dana Client"),
        (&cast.other_client, "Casey Client"),
    ] {
        sign_in(&browser, &app, me).await;
        assert!(browser.text(".threads").await.contains("1 other recipient"));
        assert!(!browser.source().await.contains(other));
        browser.click(".threads a").await;
        browser
            .wait_for_text("h1#subject", "Group starts Thursday")
            .await;
        assert!(browser
            .text(".participants")
            .await
            .contains("1 other client"));
        assert!(
            !browser.source().await.contains(other),
            "never the other client"
        );
        assert!(browser
            .text(".reply")
            .await
            .contains("replies are turned off"));
        sign_out(&browser).await;
    }
    browser.quit().await;
}

async fn a_biller_answers_through_the_billing_team_folder(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.client, &["group:billers"], "Invoice 1042")
        .await;
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.biller).await;
    browser.click("a[href=\"/p/oak/mail/team:billers\"]").await;
    browser.wait_for_text("main h1", "Billing").await;
    browser.click(".threads a").await;
    browser.wait_for_text("h1#subject", "Invoice 1042").await;
    browser.type_into("#body", "Paid in full, thank you.").await;
    browser.click(".reply button[type=submit]").await;
    browser
        .wait_for_text(".message:last-child .body", "Paid in full, thank you.")
        .await;
    let (_, view) = app.thread(&cast.client, &thread).await;
    assert_eq!(view["messages"][1]["sender"]["id"], cast.biller.id.as_str());
    browser.quit().await;
}

async fn an_inactive_client_is_offered_only_front_office_and_billers_in_a_browser(
    backend: Backend,
) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, _) = app
        .update_person(&cast.front, &cast.client.id, json!({"status": "inactive"}))
        .await;
    assert_eq!(status.as_u16(), 200);
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    browser.goto(&app.url("/p/oak/compose")).await;
    browser.wait_for_text("main h1", "New message").await;
    let offered = eval(
        &browser,
        "[...document.querySelectorAll('input[name=to]')].map(i => i.value)",
    )
    .await;
    let mut offered: Vec<String> = offered
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    offered.sort();
    let mut expected = vec![
        "group:billers".to_string(),
        "group:front_office".into(),
        user(&cast.biller),
        user(&cast.front),
    ];
    expected.sort();
    assert_eq!(offered, expected);
    browser.quit().await;
}

async fn a_client_attaches_a_file_and_the_provider_downloads_it(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Your forms")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("intake-form.txt");
    std::fs::write(&file, "Name: Casey\nAllergies: none\n").unwrap();
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    browser
        .goto(&app.url(&format!("/p/oak/threads/{thread}")))
        .await;
    browser.type_into("#body", "Here is my form.").await;
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser.click(".reply button[type=submit]").await;
    browser
        .wait_for_text(".message:last-child .files a", "intake-form.txt")
        .await;
    sign_out(&browser).await;
    sign_in(&browser, &app, &cast.provider).await;
    browser
        .goto(&app.url(&format!("/p/oak/threads/{thread}")))
        .await;
    browser
        .wait_for_text(".message:last-child .files a", "intake-form.txt")
        .await;
    let fetched = eval(
        &browser,
        "fetch(document.querySelector('.message:last-child .files a').href).then(r => r.text())",
    )
    .await;
    assert_eq!(fetched, "Name: Casey\nAllergies: none\n");
    browser.quit().await;
}

async fn a_draft_is_saved_resumed_and_sent_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    browser.goto(&app.url("/p/oak/compose")).await;
    browser
        .click(&format!("input[value=\"{}\"]", user(&cast.provider)))
        .await;
    browser.type_into("#subject", "About my next visit").await;
    browser.type_into("#body", "Could we move it").await;
    browser.click("button[value=save]").await;
    browser
        .wait_for_text(".notice", "Your draft was saved.")
        .await;
    browser.click(".drafts a").await;
    browser.wait_for_text("main h1", "Draft").await;
    let subject = eval(&browser, "document.querySelector('#subject').value").await;
    assert_eq!(subject, "About my next visit");
    browser.type_into("#body", " to Friday?").await;
    browser.click("button[value=send]").await;
    browser
        .wait_for_text("h1#subject", "About my next visit")
        .await;
    assert!(browser
        .text(".message .body")
        .await
        .contains("Could we move it to Friday?"));
    let (_, drafts) = app.get("/api/v1/drafts", &cast.client).await;
    assert_eq!(drafts["drafts"].as_array().unwrap().len(), 0);
    browser.quit().await;
}

async fn threads_are_archived_and_restored_in_bulk(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let first = app
        .send(&cast.provider, &[&user(&cast.client)], "One")
        .await;
    let second = app
        .send(&cast.provider, &[&user(&cast.client)], "Two")
        .await;
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    browser.click(&format!("#t-{first}")).await;
    browser.click(&format!("#t-{second}")).await;
    browser.click(".bulk button[value=archive]").await;
    browser.wait_for_text(".notice", "Moved to Archive.").await;
    assert_eq!(app.folder(&cast.client, "inbox").await.len(), 0);
    browser.click("a[href=\"/p/oak/mail/archive\"]").await;
    browser.wait_for_text("main h1", "Archive").await;
    browser.click(&format!("#t-{first}")).await;
    browser.click(".bulk button[value=restore]").await;
    browser
        .wait_for_text(".notice", "Moved back to the Inbox.")
        .await;
    assert_eq!(app.folder(&cast.client, "inbox").await, vec![first]);
    assert_eq!(app.folder(&cast.client, "archive").await, vec![second]);
    browser.quit().await;
}

async fn sign_out_and_idle_expiry_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Later")
        .await;
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    sign_out(&browser).await;
    browser.goto(&app.url("/p/oak/mail/inbox")).await;
    browser
        .wait_for_text(".notice", "Please sign in to continue.")
        .await;

    sign_in(&browser, &app, &cast.client).await;
    app.clock.advance_minutes(31);
    browser
        .goto(&app.url(&format!("/p/oak/threads/{thread}")))
        .await;
    browser
        .wait_for_text(".notice", "Please sign in to continue.")
        .await;
    browser.type_into("#email", &cast.client.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("h1#subject", "Later").await;
    browser.quit().await;
}

async fn a_long_thread_opens_on_its_latest_messages_and_pages_back_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(
            &cast.provider,
            &[&user(&cast.client)],
            "Fifty-five messages",
        )
        .await;
    for n in 1..55 {
        let (status, body) = app
            .reply(
                &cast.provider,
                &thread,
                json!({"body": format!("Update number {n}.")}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }
    browser.set_size(1280, 900).await;
    sign_in(&browser, &app, &cast.client).await;
    browser
        .goto(&app.url(&format!("/p/oak/threads/{thread}")))
        .await;
    browser
        .wait_for_text("main h1", "Fifty-five messages")
        .await;
    let shown = "document.querySelectorAll('ol.messages > li.message').length";
    assert_eq!(eval(&browser, shown).await, json!(50), "the latest fifty");
    assert!(browser.source().await.contains("Update number 54."));
    browser.screenshot("thread-latest-page").await;
    browser.click(".older-messages a").await;
    let mut count = json!(null);
    for _ in 0..100 {
        count = eval(&browser, shown).await;
        if count == json!(5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, json!(5), "the five before them");
    let source = browser.source().await;
    assert!(source.contains("Update number 4.") && !source.contains("Update number 5."));
    assert!(
        !source.contains("Earlier messages"),
        "nothing before the first"
    );
    assert!(source.contains("Latest messages"), "and the way back");
    browser.screenshot("thread-earlier-page").await;
    browser.quit().await;
}
