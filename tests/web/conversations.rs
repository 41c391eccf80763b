//! Conversations in the web inbox: opening a group, the announcement, completing,
//! reactions, replies to a message, internal notes, read receipts, practice settings.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::web::WebUser;
use crate::{on_both_backends, user};

on_both_backends!(
    a_provider_opens_a_group_conversation_whose_clients_see_each_other,
    staff_run_a_thread_from_its_page_and_clients_see_only_what_is_theirs,
    a_reply_to_a_message_quotes_it,
    an_admin_changes_the_practice_settings_on_their_page,
    staff_share_a_thread_and_convert_it_to_a_group_from_its_page,
    a_provider_switches_on_an_automatic_reply_in_settings,
    pins_from_the_thread_page,
    a_message_is_scheduled_listed_and_cancelled_from_the_pages,
    a_biller_assigns_and_marks_done_in_the_shared_billing_folder,
);

async fn a_biller_assigns_and_marks_done_in_the_shared_billing_folder(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let colleague = app
        .person(
            &cast.practice,
            confide::domain::Role::Biller,
            "Cy Colleague",
        )
        .await;
    let id = app
        .send(&cast.client, &["group:billers"], "Statement question")
        .await;
    let biller = WebUser::sign_in(&app, &cast.practice, &cast.biller.email).await;
    let page = biller.get(&biller.path(&format!("threads/{id}"))).await;
    assert!(page.html.contains("Nobody is assigned."), "{}", page.html);
    for option in [
        "<option value=\"\">Nobody</option>".to_string(),
        format!("<option value=\"{}\">Cy Colleague</option>", colleague.id),
        format!("<option value=\"{}\">Bo Biller</option>", cast.biller.id),
    ] {
        assert!(page.html.contains(&option), "{option} in {}", page.html);
    }
    let assigned = biller
        .post(
            &biller.path(&format!("threads/{id}/team")),
            &[("action", "assign"), ("assignee", colleague.id.as_str())],
        )
        .await;
    assigned.assert_redirect(&biller.path(&format!("threads/{id}?done=team")));
    let folder = biller.get(&biller.path("mail/team:billers")).await;
    assert!(
        folder.html.contains("Assigned to Cy Colleague"),
        "{}",
        folder.html
    );
    let mine = biller
        .get(&biller.path("mail/team:billers?show=mine"))
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(mine.html.contains("<h1>Billing</h1>"), "{}", mine.html);
    assert!(!mine.html.contains("Statement question"));
    let theirs = WebUser::sign_in(&app, &cast.practice, &colleague.email).await;
    let mine = theirs
        .get(&theirs.path("mail/team:billers?show=mine"))
        .await;
    assert!(mine.html.contains("Statement question"), "{}", mine.html);
    assert!(mine.html.contains("Assigned to you"));

    let done = theirs
        .post(
            &theirs.path(&format!("threads/{id}/team")),
            &[("action", "done")],
        )
        .await;
    done.assert_redirect(&theirs.path(&format!("threads/{id}?done=team")));
    assert!(app.folder(&cast.biller, "inbox").await.is_empty());
    let listed = biller
        .get(&biller.path("mail/team:billers?show=done"))
        .await;
    assert!(listed.html.contains("Statement question"));
    let page = biller.get(&biller.path(&format!("threads/{id}"))).await;
    assert!(page.html.contains("Done for the team."));
    assert!(page.html.contains("Reopen for the team"));

    // The client's page says nothing of who handles it.
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path(&format!("threads/{id}"))).await;
    assert!(!page.html.contains("Assigned to"));
    assert!(!page.html.contains("Done for the team"));
    assert!(!page.html.contains("team-state"));
    let refused = client
        .post(
            &client.path(&format!("threads/{id}/team")),
            &[("action", "done")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

async fn a_message_is_scheduled_listed_and_cancelled_from_the_pages(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    provider.get(&provider.path("compose")).await;
    let later = confide::clock::to_datetime(app.clock_now() + 3 * 60 * 60_000)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let to = user(&cast.client);
    let form = |when: &str| {
        vec![
            ("to", to.clone()),
            ("subject", "Reminder for tomorrow".to_string()),
            ("body", "See you tomorrow at ten.".to_string()),
            ("send_later", when.to_string()),
            ("action", "schedule".to_string()),
        ]
    };
    let fields = form("");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let missing = provider
        .post_files(&provider.path("compose"), &fields, &[])
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.html.contains(
        "id=\"send_later\" name=\"send_later\" type=\"datetime-local\" aria-invalid=\"true\""
    ));
    let fields = form(&later);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = provider
        .post_files(&provider.path("compose"), &fields, &[])
        .await;
    done.assert_redirect(&provider.path("mail/scheduled?done=scheduled"));
    let page = provider.get(&provider.path("mail/scheduled")).await;
    assert!(page.html.contains("Reminder for tomorrow"));
    assert!(page.html.contains("Sends "));
    let ids = page.ids_after(&provider.path("scheduled/"));
    assert_eq!(ids.len(), 1, "{}", page.html);
    assert!(app.folder(&cast.client, "inbox").await.is_empty());
    let cancelled = provider
        .post(&provider.path(&format!("scheduled/{}/cancel", ids[0])), &[])
        .await;
    cancelled.assert_redirect(&provider.path("mail/scheduled?done=cancelled"));
    let (_, listed) = app.get("/api/v1/scheduled", &cast.provider).await;
    assert_eq!(listed["scheduled"], json!([]));
}

async fn pins_from_the_thread_page(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let older = app
        .send(&cast.provider, &[&user(&cast.client)], "Older one")
        .await;
    app.clock.advance_minutes(1);
    app.send(&cast.provider, &[&user(&cast.client)], "Newer one")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path(&format!("threads/{older}"))).await;
    let pinned = client
        .post(
            &client.path(&format!("threads/{older}/pin")),
            &[("action", "pin")],
        )
        .await;
    assert_eq!(pinned.status, StatusCode::SEE_OTHER, "{}", pinned.html);
    let inbox = client.get(&client.path("mail/inbox")).await;
    assert_eq!(inbox.ids_after(&client.path("threads/"))[0], older);
    assert!(inbox.html.contains("Pinned: </span>"));

    let (_, seen) = app.thread(&cast.provider, &older).await;
    let message = seen["messages"][0]["id"].as_str().unwrap().to_string();
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    provider
        .get(&provider.path(&format!("threads/{older}")))
        .await;
    let done = provider
        .post(
            &provider.path(&format!("threads/{older}/messages/{message}/pin")),
            &[("action", "pin")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let page = client.get(&client.path(&format!("threads/{older}"))).await;
    assert!(page.html.contains("class=\"pinned-message\""));
    assert!(
        !page.html.contains("Pin to the top"),
        "clients pin no messages"
    );
    let forged = client
        .post(
            &client.path(&format!("threads/{older}/messages/{message}/pin")),
            &[("action", "unpin")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn a_provider_switches_on_an_automatic_reply_in_settings(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let page = provider.get(&provider.path("settings")).await;
    assert!(page.html.contains("Automatic reply"));
    let short = provider
        .post(
            &provider.path("settings"),
            &[
                ("form", "autoresponder"),
                ("auto_text", "Away"),
                ("action", "on"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.html.contains("aria-invalid=\"true\""));
    let saved = provider
        .post(
            &provider.path("settings"),
            &[
                ("form", "autoresponder"),
                (
                    "auto_text",
                    "On leave this week; the front office can help.",
                ),
                ("action", "on"),
            ],
        )
        .await;
    saved.assert_redirect(&provider.path("settings?done=autoresponder"));
    let thread = app
        .send(&cast.client, &[&user(&cast.provider)], "Question")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert!(page.html.contains("Automatic reply"));
    assert!(page.html.contains("On leave this week"));
    // A client's settings have no automatic reply.
    let settings = client.get(&client.path("settings")).await;
    assert!(!settings.html.contains("auto_text"));
    provider.get(&provider.path("settings")).await;
    let off = provider
        .post(
            &provider.path("settings"),
            &[("form", "autoresponder"), ("action", "off")],
        )
        .await;
    off.assert_redirect(&provider.path("settings?done=autoresponder"));
    let (_, me) = app.me(&cast.provider).await;
    assert!(me.get("autoresponder").is_none(), "{me}");
}

async fn staff_share_a_thread_and_convert_it_to_a_group_from_its_page(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Insurance forms")
        .await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let share = provider
        .get(&provider.path(&format!("threads/{thread}/share")))
        .await;
    assert_eq!(share.status, StatusCode::OK);
    let offered = share.values("person");
    assert!(offered.contains(&user(&cast.biller)), "{offered:?}");
    assert!(!offered.contains(&user(&cast.client)), "never a client");
    assert!(!offered.contains(&user(&cast.other_client)));
    let biller = user(&cast.biller);
    let done = provider
        .post(
            &provider.path(&format!("threads/{thread}/share")),
            &[("person", biller.as_str())],
        )
        .await;
    done.assert_redirect(&provider.path(&format!("threads/{thread}?done=shared")));
    assert_eq!(
        app.folder(&cast.biller, "inbox").await,
        vec![thread.clone()]
    );
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    assert_eq!(
        client
            .get(&client.path(&format!("threads/{thread}/share")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let convert = provider
        .get(&provider.path(&format!("compose?from={thread}")))
        .await;
    assert_eq!(convert.status, StatusCode::OK);
    assert!(convert.values("linked_from").contains(&thread));
    assert!(convert.html.contains("value=\"conversation\" checked"));
    let (client_to, biller_to) = (user(&cast.client), user(&cast.biller));
    let sent = provider
        .post_files(
            &provider.path("compose"),
            &[
                ("to", client_to.as_str()),
                ("to", biller_to.as_str()),
                ("subject", "Insurance group"),
                ("body", "Continuing as a group from here."),
                ("kind", "conversation"),
                ("linked_from", thread.as_str()),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let group = sent.location().rsplit('/').next().unwrap().to_string();
    let (_, seen) = app.thread(&cast.client, &group).await;
    assert_eq!(seen["kind"], "conversation");
    assert_eq!(seen["linked_from"], json!(thread));
    assert_eq!(seen["messages"].as_array().unwrap().len(), 1);
}

async fn a_provider_opens_a_group_conversation_whose_clients_see_each_other(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let compose = provider.get(&provider.path("compose")).await;
    assert!(
        compose.html.contains("Group conversation"),
        "hosts are offered it"
    );
    let (a, b) = (user(&cast.client), user(&cast.other_client));
    let sent = provider
        .post_files(
            &provider.path("compose"),
            &[
                ("to", a.as_str()),
                ("to", b.as_str()),
                ("subject", "Tuesday group"),
                ("body", "Welcome to the Tuesday group."),
                ("kind", "conversation"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let thread = sent.location().rsplit('/').next().unwrap().to_string();

    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Group conversation"));
    assert!(
        page.html.contains("Dana Client"),
        "clients of a group see each other"
    );
    assert!(!page.html.contains(&cast.other_client.email));
    let replied = client
        .post_files(
            &client.path(&format!("threads/{thread}/reply")),
            &[("body", "Hello everyone, glad to join.")],
            &[],
        )
        .await;
    assert_eq!(replied.status, StatusCode::SEE_OTHER, "{}", replied.html);

    // Front office may not host: the choice is not offered, and a forged post is refused.
    let front = WebUser::sign_in(&app, &cast.practice, &cast.front.email).await;
    let compose = front.get(&front.path("compose")).await;
    assert!(!compose.html.contains("name=\"kind\""));
    let forged = front
        .post_files(
            &front.path("compose"),
            &[
                ("to", a.as_str()),
                ("subject", "Group"),
                ("body", "Welcome to the group."),
                ("kind", "conversation"),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
}

async fn staff_run_a_thread_from_its_page_and_clients_see_only_what_is_theirs(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Check-in")
        .await;
    let (_, seen) = app.thread(&cast.client, &thread).await;
    let message = seen["messages"][0]["id"].as_str().unwrap().to_string();
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let at = |rest: &str| provider.path(&format!("threads/{thread}{rest}"));
    provider.get(&at("")).await;
    let set = provider
        .post(
            &at("/announcement"),
            &[("text", "Back on Monday"), ("action", "set")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.html);
    let noted = provider
        .post(
            &at("/notes"),
            &[("body", "Consider a referral to the clinic.")],
        )
        .await;
    assert_eq!(noted.status, StatusCode::SEE_OTHER, "{}", noted.html);
    let staff_page = provider.get(&at("")).await;
    assert!(staff_page.html.contains("Back on Monday"));
    assert!(staff_page.html.contains("Consider a referral"));
    assert!(
        staff_page.html.contains("Read by Casey Client"),
        "{}",
        staff_page.html
    );

    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let reacted = {
        client.get(&client.path(&format!("threads/{thread}"))).await;
        client
            .post(
                &client.path(&format!("threads/{thread}/messages/{message}/reactions")),
                &[("reaction", "add 🙏")],
            )
            .await
    };
    assert_eq!(reacted.status, StatusCode::SEE_OTHER, "{}", reacted.html);
    let client_page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert!(client_page.html.contains("Back on Monday"));
    assert!(
        client_page
            .html
            .contains("aria-pressed=\"true\" title=\"Thank you\" aria-label=\"Thank you, 1\">🙏 1"),
        "{}",
        client_page.html
    );
    for hidden in [
        "Consider a referral",
        "Internal notes",
        "Read by",
        "/announcement",
        "/completion",
    ] {
        assert!(
            !client_page.html.contains(hidden),
            "a client never sees {hidden}"
        );
    }
    let forged = client
        .post(
            &client.path(&format!("threads/{thread}/notes")),
            &[("body", "Can I add a note?")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);

    let done = provider
        .post(&at("/completion"), &[("action", "complete")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let client_page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert!(client_page.html.contains("Completed on"));
    assert!(
        !client_page.html.contains("Send reply"),
        "no reply form once completed"
    );
    let archive = client.get(&client.path("mail/archive")).await;
    assert!(archive.html.contains("Check-in"));
}

async fn a_reply_to_a_message_quotes_it(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Forms")
        .await;
    let (_, seen) = app.thread(&cast.client, &thread).await;
    let first = seen["messages"][0]["id"].as_str().unwrap().to_string();
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client
        .get(&client.path(&format!("threads/{thread}?reply_to={first}")))
        .await;
    assert!(
        page.html.contains("Replying to Pat Provider"),
        "{}",
        page.html
    );
    assert!(page.values("in_reply_to").contains(&first));
    let sent = client
        .post_files(
            &client.path(&format!("threads/{thread}/reply")),
            &[
                ("body", "Yes, all filled in now."),
                ("in_reply_to", first.as_str()),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let (_, after) = app.thread(&cast.provider, &thread).await;
    assert_eq!(
        after["messages"][1]["in_reply_to"]["message_id"],
        json!(first)
    );
    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert!(page.html.contains("Pat Provider wrote:"));
}

async fn an_admin_changes_the_practice_settings_on_their_page(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let admin = WebUser::sign_in(&app, &cast.practice, &cast.admin.email).await;
    let page = admin.get(&admin.path("admin/settings")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Practice settings"));
    let bad = admin
        .post(
            &admin.path("admin/settings"),
            &[
                ("client_message_max_chars", "five"),
                ("conversation_max_participants", "25"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("aria-invalid=\"true\""));
    let saved = admin
        .post(
            &admin.path("admin/settings"),
            &[
                ("client_message_max_chars", "400"),
                ("conversation_max_participants", "8"),
                ("retention_years", "7"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let (_, settings) = app.get("/api/v1/practice/settings", &cast.admin).await;
    assert_eq!(
        settings,
        json!({"client_message_max_chars": 400, "new_clients_can_start_threads": false, "conversation_max_participants": 8, "retention_years": 7})
    );
    let page = admin.get(&admin.path("admin/settings")).await;
    assert!(page
        .html
        .contains(r#"name="retention_years" inputmode="numeric" value="7""#));
    let bad = admin
        .post(
            &admin.path("admin/settings"),
            &[
                ("conversation_max_participants", "8"),
                ("retention_years", "0"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("retention_years must be 1 to 100"));
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    assert_eq!(
        provider.get(&provider.path("admin/settings")).await.status,
        StatusCode::NOT_FOUND
    );
}
