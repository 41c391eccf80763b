//! What staff and clients do in the web inbox, without JavaScript.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::web::WebUser;
use crate::{on_both_backends, user};

on_both_backends!(
    a_client_signs_in_reads_replies_and_exchanges_files,
    a_provider_writes_to_two_clients_and_a_group_and_no_client_learns_of_the_other,
    a_thread_with_two_clients_shows_no_reply_form_and_says_why,
    an_inactive_client_is_offered_only_front_office_and_billers,
    a_biller_works_through_the_billing_team_folder,
    drafts_are_saved_resumed_and_sent,
    search_finds_a_message,
    bulk_archive_and_restore,
    custom_folders_are_created_renamed_and_deleted,
    a_refused_file_keeps_the_rest_of_the_form,
    a_file_over_the_limit_is_refused_with_the_limit_said,
    sign_out_ends_the_session_on_the_server,
    an_idle_session_signs_in_again_and_returns_to_the_page_wanted,
    a_wrong_password_gets_the_same_answer_as_the_api,
    the_scripts_polling_does_not_keep_an_idle_session_alive,
);

async fn a_client_signs_in_reads_replies_and_exchanges_files(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Your exercises")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let inbox = client.get(&client.path("mail/inbox")).await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.html.contains("Your exercises"));
    assert!(inbox.html.contains("class=\"unread\""), "unread in bold");
    assert_eq!(
        inbox.ids_after(&client.path("threads/")),
        vec![thread.clone()]
    );

    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("A message body that is long enough."));
    assert!(page.html.contains("Pat Provider"));
    let inbox = client.get(&client.path("mail/inbox")).await;
    assert!(!inbox.html.contains("class=\"unread\""), "read once opened");

    let note = b"Breathing: 4 in, 7 hold, 8 out.\n";
    let sent = client
        .post_files(
            &client.path(&format!("threads/{thread}/reply")),
            &[("body", "Thank you, **done**.")],
            &[("exercises.txt", note)],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    assert!(sent
        .location()
        .starts_with(&client.path(&format!("threads/{thread}#m-"))));
    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    assert!(
        page.html.contains("<strong>done</strong>"),
        "rendered Markdown"
    );
    let files = page.ids_after(&client.path("attachments/"));
    assert_eq!(files.len(), 1, "{}", page.html);
    let download = client
        .client
        .get(format!(
            "{}{}",
            client.base,
            client.path(&format!("attachments/{}", files[0]))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(download.bytes().await.unwrap().as_ref(), note);

    // The provider sees the reply and its file through the API.
    let (_, view) = app.thread(&cast.provider, &thread).await;
    let last = view["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["sender"]["id"], cast.client.id.as_str());
    assert_eq!(last["attachments"][0]["name"], "exercises.txt");
}

async fn a_provider_writes_to_two_clients_and_a_group_and_no_client_learns_of_the_other(
    backend: Backend,
) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let compose = provider.get(&provider.path("compose")).await;
    assert_eq!(compose.status, StatusCode::OK);
    for offered in [
        user(&cast.client),
        user(&cast.other_client),
        "group:billers".into(),
    ] {
        assert!(compose.values("to").contains(&offered), "{offered} offered");
    }
    let (to_a, to_b) = (user(&cast.client), user(&cast.other_client));
    let sent = provider
        .post_files(
            &provider.path("compose"),
            &[
                ("to", to_a.as_str()),
                ("to", to_b.as_str()),
                ("to", "group:billers"),
                ("subject", "Group schedule"),
                ("body", "The group meets on Thursday."),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let thread = sent
        .location()
        .strip_prefix(&provider.path("threads/"))
        .unwrap()
        .to_string();
    assert_eq!(
        app.folder(&cast.biller, "team:billers").await,
        vec![thread.clone()]
    );

    for (me, other) in [
        (&cast.client, "Dana Client"),
        (&cast.other_client, "Casey Client"),
    ] {
        let client = WebUser::sign_in(&app, &cast.practice, &me.email).await;
        let inbox = client.get(&client.path("mail/inbox")).await;
        assert!(inbox.html.contains("1 other recipient"), "{}", inbox.html);
        let page = client.get(&client.path(&format!("threads/{thread}"))).await;
        assert!(page.html.contains("1 other client"));
        for seen in [&inbox, &page] {
            assert!(
                !seen.html.contains(other),
                "a client never sees another's name"
            );
            assert!(!seen.html.contains("@oak.example"), "nor any address");
        }
    }
}

async fn a_thread_with_two_clients_shows_no_reply_form_and_says_why(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.other_client)],
            "Office closed",
        )
        .await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let page = provider
        .get(&provider.path(&format!("threads/{thread}")))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("/reply\""), "no reply form");
    assert!(page
        .html
        .contains("This message went to several clients, so replies are turned off."));
    // A forged reply is refused by the same rule, and nothing is written.
    let forged = provider
        .post_files(
            &provider.path(&format!("threads/{thread}/reply")),
            &[("body", "Forged reply")],
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::CONFLICT, "{}", forged.html);
    assert!(forged.html.contains("role=\"alert\""));
    let (_, view) = app.thread(&cast.provider, &thread).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 1);
}

async fn an_inactive_client_is_offered_only_front_office_and_billers(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, body) = app
        .update_person(&cast.front, &cast.client.id, json!({"status": "inactive"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let compose = client.get(&client.path("compose")).await;
    let offered = compose.values("to");
    assert!(offered.contains(&user(&cast.front)));
    assert!(offered.contains(&user(&cast.biller)));
    assert!(offered.contains(&"group:billers".to_string()));
    assert!(!offered.contains(&user(&cast.provider)), "{offered:?}");
    assert!(!offered.contains(&"group:providers".to_string()));
    assert!(!offered.contains(&user(&cast.other_client)));

    let to = user(&cast.provider);
    let forged = client
        .post_files(
            &client.path("compose"),
            &[
                ("to", to.as_str()),
                ("subject", "Let me in"),
                ("body", "Please write back."),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert!(forged.html.contains("role=\"alert\""));
    assert!(
        forged.html.contains("value=\"Let me in\""),
        "the form is kept"
    );
    assert!(app.folder(&cast.provider, "inbox").await.is_empty());
}

async fn a_biller_works_through_the_billing_team_folder(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.client, &["group:billers"], "Invoice question")
        .await;
    let biller = WebUser::sign_in(&app, &cast.practice, &cast.biller.email).await;
    let inbox = biller.get(&biller.path("mail/inbox")).await;
    assert!(inbox.html.contains("href=\"/p/oak/mail/team:billers\""));
    assert!(inbox.html.contains(">Billing<"));
    let team = biller.get(&biller.path("mail/team:billers")).await;
    assert_eq!(team.status, StatusCode::OK);
    assert_eq!(
        team.ids_after(&biller.path("threads/")),
        vec![thread.clone()]
    );
    let page = biller.get(&biller.path(&format!("threads/{thread}"))).await;
    assert!(page.html.contains("/reply\""));
    let sent = biller
        .post_files(
            &biller.path(&format!("threads/{thread}/reply")),
            &[("body", "It is paid in full.")],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    // A front office person has no Billing folder, and its address answers not found.
    let front = WebUser::sign_in(&app, &cast.practice, &cast.front.email).await;
    let refused = front.get(&front.path("mail/team:billers")).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

async fn drafts_are_saved_resumed_and_sent(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("compose")).await;
    let to = user(&cast.provider);
    let saved = client
        .post_files(
            &client.path("compose"),
            &[
                ("to", to.as_str()),
                ("subject", "Half-written"),
                ("body", "I wanted to ask"),
                ("action", "save"),
            ],
            &[("notes.txt", b"my notes\n".as_slice())],
        )
        .await;
    saved.assert_redirect(&client.path("mail/drafts?done=saved"));
    let drafts = client.get(&client.path("mail/drafts")).await;
    assert!(drafts.html.contains("Half-written"));
    let ids = drafts.ids_after(&client.path("drafts/"));
    assert_eq!(ids.len(), 1);
    let resumed = client
        .get(&client.path(&format!("drafts/{}", ids[0])))
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert!(resumed.html.contains("value=\"Half-written\""));
    assert!(resumed.html.contains(">I wanted to ask</textarea>"));
    assert!(resumed.html.contains("notes.txt"), "its attachment is kept");
    assert!(resumed.html.contains(&format!("value=\"{to}\" checked")));
    let kept = resumed.values("attachment_id");
    let sent = client
        .post_files(
            &client.path("compose"),
            &[
                ("draft_id", ids[0].as_str()),
                ("to", to.as_str()),
                ("subject", "Half-written"),
                ("body", "I wanted to ask about Thursday."),
                ("attachment_id", kept[0].as_str()),
                ("action", "send"),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let inbox = app.folder(&cast.provider, "inbox").await;
    assert_eq!(inbox.len(), 1);
    let (_, view) = app.thread(&cast.provider, &inbox[0]).await;
    assert_eq!(view["messages"][0]["attachments"][0]["name"], "notes.txt");
    let drafts = client.get(&client.path("mail/drafts")).await;
    assert!(
        !drafts.html.contains("Half-written"),
        "the draft is gone once sent"
    );
}

async fn search_finds_a_message(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Marmalade recipe")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("mail/inbox")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let found = loop {
        let page = client
            .post(&client.path("search"), &[("q", "marmalade")])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        if !page.ids_after(&client.path("threads/")).is_empty()
            || std::time::Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(found.ids_after(&client.path("threads/")), vec![thread]);
    assert!(found.html.contains("Marmalade recipe"));
    let snippet = client
        .post(&client.path("search"), &[("q", "enough")])
        .await;
    assert!(snippet.html.contains("<b>enough</b>"), "{}", snippet.html);
    let nothing = client
        .post(&client.path("search"), &[("q", "-marmalade")])
        .await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    assert!(nothing.html.contains("role=\"alert\""));
}

async fn bulk_archive_and_restore(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let first = app
        .send(&cast.provider, &[&user(&cast.client)], "First")
        .await;
    let second = app
        .send(&cast.provider, &[&user(&cast.client)], "Second")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("mail/inbox")).await;
    let done = client
        .post(
            &client.path("mail/bulk"),
            &[
                ("thread_id", first.as_str()),
                ("thread_id", second.as_str()),
                ("from", "inbox"),
                ("action", "archive"),
            ],
        )
        .await;
    done.assert_redirect(&client.path("mail/inbox?done=archived"));
    let inbox = client.get(&client.path("mail/inbox?done=archived")).await;
    assert!(inbox.html.contains("Moved to Archive."));
    assert!(inbox.ids_after(&client.path("threads/")).is_empty());
    let archive = client.get(&client.path("mail/archive")).await;
    let mut listed = archive.ids_after(&client.path("threads/"));
    listed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    let done = client
        .post(
            &client.path("mail/bulk"),
            &[
                ("thread_id", first.as_str()),
                ("from", "archive"),
                ("action", "restore"),
            ],
        )
        .await;
    done.assert_redirect(&client.path("mail/archive?done=restored"));
    assert_eq!(app.folder(&cast.client, "inbox").await, vec![first]);
    assert_eq!(
        app.folder(&cast.provider, "inbox").await.len(),
        2,
        "only the client's own"
    );
}

async fn custom_folders_are_created_renamed_and_deleted(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.client, &[&user(&cast.provider)], "Keep this")
        .await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    provider.get(&provider.path("mail/inbox")).await;
    let created = provider
        .post(&provider.path("folders"), &[("name", "Intake")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let folder = created
        .location()
        .strip_prefix(&provider.path("mail/"))
        .and_then(|l| l.strip_suffix("?done=folder_created"))
        .unwrap()
        .to_string();
    let page = provider.get(created.location()).await;
    assert!(page.html.contains(">Intake<"));
    assert_eq!(
        page.title().split(" · ").next(),
        Some("Folder"),
        "no folder name in titles"
    );
    let moved = provider
        .post(
            &provider.path("mail/bulk"),
            &[
                ("thread_id", thread.as_str()),
                ("folder", folder.as_str()),
                ("action", "move"),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.folder(&cast.provider, &folder).await,
        vec![thread.clone()]
    );
    let renamed = provider
        .post(
            &provider.path(&format!("folders/{folder}/rename")),
            &[("name", "New clients")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    let page = provider.get(renamed.location()).await;
    assert!(page.html.contains(">New clients<"));
    let taken = provider
        .post(&provider.path("folders"), &[("name", "New clients")])
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    provider.get(&provider.path("mail/inbox")).await;
    let deleted = provider
        .post(&provider.path(&format!("folders/{folder}/delete")), &[])
        .await;
    deleted.assert_redirect(&provider.path("mail/inbox?done=folder_deleted"));
    assert_eq!(app.folder(&cast.provider, "inbox").await, vec![thread]);
}

async fn a_refused_file_keeps_the_rest_of_the_form(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("compose")).await;
    let to = user(&cast.provider);
    let mut program = b"MZ\x90\x00".to_vec();
    program.resize(4096, 0);
    let refused = client
        .post_files(
            &client.path("compose"),
            &[
                ("to", to.as_str()),
                ("subject", "My forms"),
                ("body", "Both forms attached."),
                ("action", "send"),
            ],
            &[
                ("form.txt", b"name: Casey\n".as_slice()),
                ("setup.exe", &program),
            ],
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(refused.html.contains("role=\"alert\""));
    assert!(
        refused.html.contains("setup.exe"),
        "the refused file is named"
    );
    assert!(refused.html.contains("value=\"My forms\""));
    assert!(refused.html.contains(">Both forms attached.</textarea>"));
    assert!(
        refused.html.contains("form.txt"),
        "the accepted file is kept"
    );
    assert!(refused.html.contains(&format!("value=\"{to}\" checked")));
    assert!(
        app.folder(&cast.provider, "inbox").await.is_empty(),
        "nothing sent"
    );
}

async fn sign_out_ends_the_session_on_the_server(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let cookie = client.cookie("confide-session").expect("a session cookie");
    client.get(&client.path("mail/inbox")).await;
    let out = client.post(&client.path("sign-out"), &[]).await;
    out.assert_redirect(&client.path(""));
    let cleared = out.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("confide-session=;") && cleared.contains("Max-Age=0"));
    // The old cookie, replayed, no longer opens anything.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&client.path("mail/inbox")))
        .header("cookie", format!("confide-session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        replay.headers()["location"],
        "/p/oak/?next=/p/oak/mail/inbox"
    );
}

async fn an_idle_session_signs_in_again_and_returns_to_the_page_wanted(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Later")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    app.clock.advance_minutes(31);
    let wanted = client.path(&format!("threads/{thread}"));
    let away = client.get(&wanted).await;
    away.assert_redirect(&format!("/p/oak/?next={wanted}"));
    assert!(!away.location().contains("Later"));
    let portal = client.get(away.location()).await;
    assert!(portal.html.contains("Please sign in to continue."));
    assert_eq!(portal.values("next"), vec![wanted.clone()]);
    let back = client
        .post(
            &client.path("sign-in"),
            &[
                ("email", cast.client.email.as_str()),
                ("password", crate::helpers::PASSWORD),
                ("next", wanted.as_str()),
            ],
        )
        .await;
    back.assert_redirect(&wanted);
    assert_eq!(client.get(&wanted).await.status, StatusCode::OK);
    // A return address that leaves the practice's pages is ignored.
    let elsewhere = WebUser::new(&app, &cast.practice)
        .try_sign_in(
            &cast.client.email,
            crate::helpers::PASSWORD,
            "//evil.example/",
        )
        .await;
    elsewhere.assert_redirect("/p/oak/mail/inbox");
}

async fn a_wrong_password_gets_the_same_answer_as_the_api(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let visitor = WebUser::new(&app, &cast.practice);
    let wrong = visitor
        .try_sign_in(&cast.client.email, "not-the-password-at-all", "")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong
        .html
        .contains("The practice, email or password is not correct."));
    let unknown = visitor
        .try_sign_in("nobody@oak.example", "not-the-password-at-all", "")
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown
        .html
        .contains("The practice, email or password is not correct."));
    assert!(wrong
        .headers
        .get("set-cookie")
        .is_none_or(|c| !c.to_str().unwrap().starts_with("confide-session")));
}

async fn the_scripts_polling_does_not_keep_an_idle_session_alive(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let poll = client.path("updates?folder=inbox");
    let first = client.get(&poll).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.html.len(), 24, "a short digest: {}", first.html);
    app.send(&cast.provider, &[&user(&cast.client)], "News")
        .await;
    let second = client.get(&poll).await;
    assert_ne!(second.html, first.html, "a new message changes the digest");
    assert_eq!(
        client.get(&poll).await.html,
        second.html,
        "and nothing else does"
    );
    for _ in 0..3 {
        app.clock.advance_minutes(11);
        // The script's own requests, polling and refreshing, are not activity.
        let _ = client.get(&poll).await;
        let _ = client
            .client
            .get(app.url(&client.path("mail/inbox")))
            .header("x-confide-refresh", "1")
            .send()
            .await
            .unwrap();
    }
    let after = client.get(&client.path("mail/inbox")).await;
    after.assert_redirect("/p/oak/?next=/p/oak/mail/inbox");
}

async fn a_file_over_the_limit_is_refused_with_the_limit_said(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.attachment_max_bytes = 64 * 1024).await;
    let cast = crate::Cast::new(&app).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("compose")).await;
    let to = user(&cast.provider);
    let big = vec![b'a'; 100 * 1024];
    let refused = client
        .post_files(
            &client.path("compose"),
            &[
                ("to", to.as_str()),
                ("subject", "Scan"),
                ("body", "My scan is attached."),
                ("action", "send"),
            ],
            &[("scan.txt", &big)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        refused
            .html
            .contains("is larger than 64 KB, the most a file may be. It was not attached."),
        "{}",
        refused.html
    );
    assert!(refused.html.contains(">My scan is attached.</textarea>"));
    assert!(app.folder(&cast.provider, "inbox").await.is_empty());
}
