//! Administration pages and the invitation journey from the SMTP sink into the inbox.

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{Backend, TestApp};
use crate::mail::with_sink;
use crate::web::WebUser;
use crate::{on_both_backends, user, Cast};

on_both_backends!(
    staff_add_clients_and_set_them_inactive_but_only_admins_manage_staff,
    the_people_list_filters_by_role_and_status,
    admins_read_the_audit_log_with_filters,
    an_invited_client_goes_from_the_email_to_their_inbox_in_a_browser,
    the_portal_link_of_a_notification_leads_through_sign_in_to_the_inbox,
);

async fn staff_add_clients_and_set_them_inactive_but_only_admins_manage_staff(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let page = provider.get(&provider.path("admin/people")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.values("role").len(), 0);
    assert!(page
        .html
        .contains("<option value=\"client\" selected>Client</option>"));
    assert!(
        !page.html.contains("<option value=\"biller\" selected"),
        "staff add clients only"
    );
    let added = provider
        .post(
            &provider.path("admin/people"),
            &[
                ("role", "client"),
                ("name", "Ivy Quinn"),
                ("email", "ivy@oak.example"),
            ],
        )
        .await;
    added.assert_redirect(&provider.path("admin/people?done=created"));
    let forged = provider
        .post(
            &provider.path("admin/people"),
            &[
                ("role", "biller"),
                ("name", "Bill Forge"),
                ("email", "bill@oak.example"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert!(
        forged.html.contains("value=\"Bill Forge\""),
        "the form is kept"
    );
    let taken = provider
        .post(
            &provider.path("admin/people"),
            &[
                ("role", "client"),
                ("name", "Ivy Again"),
                ("email", "ivy@oak.example"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let inactive = provider
        .post(
            &provider.path(&format!("admin/people/{}/status", cast.client.id)),
            &[("status", "inactive")],
        )
        .await;
    inactive.assert_redirect(&provider.path("admin/people?done=status"));
    let (_, person) = app.person_of(&cast.admin, &cast.client.id).await;
    assert_eq!(person["status"], "inactive");
    let refused = provider
        .post(
            &provider.path(&format!("admin/people/{}/status", cast.biller.id)),
            &[("status", "disabled")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let admin = WebUser::sign_in(&app, &cast.practice, &cast.admin.email).await;
    admin.get(&admin.path("admin/people")).await;
    let disabled = admin
        .post(
            &admin.path(&format!("admin/people/{}/status", cast.biller.id)),
            &[("status", "disabled")],
        )
        .await;
    disabled.assert_redirect(&admin.path("admin/people?done=status"));
    assert_eq!(app.me(&cast.biller).await.0, StatusCode::UNAUTHORIZED);
}

async fn the_people_list_filters_by_role_and_status(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, _) = app
        .update_person(
            &cast.admin,
            &cast.other_client.id,
            json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let admin = WebUser::sign_in(&app, &cast.practice, &cast.admin.email).await;
    let clients = admin.get(&admin.path("admin/people?role=client")).await;
    assert!(clients.html.contains("Casey Client") && clients.html.contains("Dana Client"));
    assert!(!clients.html.contains("Pat Provider"));
    let inactive = admin
        .get(&admin.path("admin/people?role=client&status=inactive"))
        .await;
    assert!(inactive.html.contains("Dana Client") && !inactive.html.contains("Casey Client"));
    assert!(inactive.html.contains("Set active"));
}

async fn admins_read_the_audit_log_with_filters(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Audited")
        .await;
    app.thread(&cast.client, &thread).await;
    let admin = WebUser::sign_in(&app, &cast.practice, &cast.admin.email).await;
    let all = admin.get(&admin.path("admin/audit")).await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.html.contains(">read_thread<") && all.html.contains(">sign_in<"));
    let reads = admin
        .get(&admin.path("admin/audit?action=read_thread"))
        .await;
    assert!(reads.html.contains(&format!("thread {thread}")));
    assert!(!reads.html.contains(">sign_in<"));
    let hers = admin
        .get(&admin.path(&format!("admin/audit?involving={}", cast.client.id)))
        .await;
    assert!(hers.html.contains(">read_thread<"));
    assert!(
        !hers.html.contains(&cast.provider.id),
        "only events involving the client"
    );
    assert!(!all.html.contains("Audited"), "no subjects in the log");
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    assert_eq!(
        provider.get(&provider.path("admin/audit")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_invited_client_goes_from_the_email_to_their_inbox_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let cast = Cast::new(&app).await;
    browser.set_size(1280, 900).await;
    browser.goto(&app.url("/p/oak/")).await;
    browser.type_into("#email", &cast.admin.email).await;
    browser
        .type_into("#password", crate::helpers::PASSWORD)
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    browser.goto(&app.url("/p/oak/admin/people")).await;
    browser.wait_for_text("main h1", "People").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "people: {violations:#?}");
    browser.type_into("#new_name", "Ivy Quinn").await;
    browser.type_into("#new_email", "ivy@oak.example").await;
    browser.click("#add-h + p + form button[type=submit]").await;
    browser
        .wait_for_text(
            ".notice",
            "Added. An invitation to choose a password is on its way.",
        )
        .await;
    browser.goto(&app.url("/p/oak/admin/audit")).await;
    browser.wait_for_text("main h1", "Audit log").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "audit: {violations:#?}");
    browser.goto(&app.url("/p/oak/settings")).await;
    browser.wait_for_text("main h1", "Settings").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "settings: {violations:#?}");

    let emails = sink.wait_for("ivy@oak.example", 1, 20).await;
    let link = emails[0].link("/invitations/").expect("an invitation link");
    browser.goto(&link).await;
    browser.wait_for_text("h1", "Welcome, Ivy Quinn").await;
    browser
        .type_into("#password", "juniper-orbit-kettle-73")
        .await;
    browser
        .type_into("#password_again", "juniper-orbit-kettle-73")
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("main h1", "Inbox").await;
    assert!(browser.text(".top .who").await.starts_with("Ivy Quinn"));
    browser.quit().await;
}

async fn the_portal_link_of_a_notification_leads_through_sign_in_to_the_inbox(backend: Backend) {
    let Some((app, sink)) = with_sink(backend, |_| {}).await else {
        return;
    };
    let cast = Cast::new(&app).await;
    let (status, _) = app
        .patch("/api/v1/me", &cast.client, json!({"consent_email": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Lab results")
        .await;
    let emails = sink.wait_for(&cast.client.email, 1, 20).await;
    let link = emails[0].link("/p/").expect("the portal link");
    let path = link.strip_prefix(&app.base).unwrap().to_string();
    assert_eq!(path, "/p/oak/");
    let client = WebUser::new(&app, &cast.practice);
    let portal = client.get(&path).await;
    assert_eq!(portal.status, StatusCode::OK);
    assert!(portal.html.contains("<h1>Practice oak</h1>"));
    let signed_in = client
        .post(
            &client.path("sign-in"),
            &[
                ("email", cast.client.email.as_str()),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    signed_in.assert_redirect(&client.path("mail/inbox"));
    let inbox = client.get(signed_in.location()).await;
    assert_eq!(inbox.ids_after(&client.path("threads/")), vec![thread]);
    // Signed in, the portal address leads straight to the inbox.
    client
        .get(&path)
        .await
        .assert_redirect(&client.path("mail/inbox"));
}
