//! The pages' own security: headers, CSRF, cookies, and one not-found page for everything
//! a person may not see.

use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp};
use crate::web::{Page, WebUser};
use crate::{on_both_backends, user};

on_both_backends!(
    every_page_sends_the_security_headers_and_keeps_content_out_of_titles,
    a_form_without_its_csrf_token_changes_nothing,
    another_persons_thread_looks_like_a_missing_page,
    a_session_opens_only_its_own_practice,
    the_session_cookie_is_httponly_lax_scoped_and_secure_under_https,
    a_folder_page_shown_is_audited_and_the_scripts_digest_is_not,
);

#[track_caller]
fn assert_safe_headers(page: &Page, what: &str) {
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        header("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert!(
        header("content-security-policy").contains("default-src 'none'"),
        "{what}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
}

async fn every_page_sends_the_security_headers_and_keeps_content_out_of_titles(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let subject = "Confidential diagnosis";
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], subject)
        .await;
    let visitor = WebUser::new(&app, &cast.practice);
    assert_safe_headers(&visitor.get("/p/oak/").await, "sign-in");
    assert_safe_headers(&visitor.get("/p/oak/forgot-password").await, "forgot");
    assert_safe_headers(&visitor.get("/p/nope/").await, "unknown practice");
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    for path in [
        "mail/inbox".to_string(),
        "mail/sent".into(),
        "mail/drafts".into(),
        "mail/archive".into(),
        "mail/trash".into(),
        "compose".into(),
        "settings".into(),
        format!("threads/{thread}"),
        "threads/nothing-here".into(),
        "nothing/here".into(),
    ] {
        let page = client.get(&client.path(&path)).await;
        assert_safe_headers(&page, &path);
        assert!(!page.title().contains(subject), "{path}: {}", page.title());
        assert!(
            page.title().ends_with("· Confide"),
            "{path}: {}",
            page.title()
        );
    }
    let found = client
        .post(&client.path("search"), &[("q", "diagnosis")])
        .await;
    assert_safe_headers(&found, "search");
    assert!(!found.title().contains("diagnosis"));
}

async fn a_form_without_its_csrf_token_changes_nothing(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Keep me")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("mail/inbox")).await;
    for token in ["", "forged-token"] {
        let refused = client
            .post_raw(
                &client.path("mail/bulk"),
                &[
                    ("csrf_token", token),
                    ("thread_id", thread.as_str()),
                    ("action", "trash"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.html.contains("This form has expired"));
    }
    assert_eq!(app.folder(&cast.client, "inbox").await, vec![thread]);
    let to = user(&cast.provider);
    let refused = client
        .post_raw(
            &client.path("compose"),
            &[
                ("to", to.as_str()),
                ("subject", "x"),
                ("body", "y"),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.folder(&cast.provider, "inbox").await.len(),
        1,
        "nothing sent"
    );
    let visitor = WebUser::new(&app, &cast.practice);
    let sign_in = visitor
        .post_raw(
            "/p/oak/sign-in",
            &[
                ("email", cast.client.email.as_str()),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(sign_in.status, StatusCode::FORBIDDEN);
    assert!(sign_in
        .headers
        .get("set-cookie")
        .is_none_or(|c| !c.to_str().unwrap().starts_with("confide-session")));
}

async fn another_persons_thread_looks_like_a_missing_page(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let theirs = app
        .send(&cast.provider, &[&user(&cast.other_client)], "Not yours")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let hidden = client.get(&client.path(&format!("threads/{theirs}"))).await;
    let missing = client.get(&client.path("threads/no-such-thread")).await;
    let elsewhere = client.get(&client.path("no/such/page")).await;
    let practice = client.get("/p/no-such-practice/mail/inbox").await;
    for page in [&hidden, &missing, &elsewhere, &practice] {
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert_eq!(page.html, missing.html, "all alike");
    }
    assert!(!hidden.html.contains("Not yours"));
    let reply = client
        .post_files(
            &client.path(&format!("threads/{theirs}/reply")),
            &[("body", "Hi")],
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.html, missing.html);
    let download = client.get(&client.path("attachments/no-such-file")).await;
    assert_eq!(download.status, StatusCode::NOT_FOUND);
    assert_eq!(download.html, missing.html);
}

async fn a_session_opens_only_its_own_practice(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    app.create_practice("elm").await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let token = client.cookie("confide-session").unwrap();
    // The browser sends the cookie only to /p/oak/; forged onto elm's pages it opens nothing.
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/p/elm/mail/inbox"))
        .header("cookie", format!("confide-session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        forged.headers()["location"],
        "/p/elm/?next=/p/elm/mail/inbox"
    );
    // The same token is no API bearer for another practice either, but is one session.
    let (status, me) = app
        .me(&crate::helpers::Session {
            token,
            id: cast.client.id.clone(),
            email: cast.client.email.clone(),
        })
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], cast.client.id.as_str());
}

async fn the_session_cookie_is_httponly_lax_scoped_and_secure_under_https(backend: Backend) {
    for (public_url, secure) in [("", false), ("https://mail.oak.example", true)] {
        let app = TestApp::spawn_with(backend, |c| c.server.public_url = public_url.into()).await;
        let cast = crate::Cast::new(&app).await;
        let visitor = WebUser::new(&app, &cast.practice);
        let done = visitor
            .try_sign_in(&cast.client.email, crate::helpers::PASSWORD, "")
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let cookie = done
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("confide-session="))
            .expect("a session cookie");
        for part in ["HttpOnly", "SameSite=Lax", "Path=/p/oak/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        assert!(
            cookie.contains("Max-Age=43200"),
            "12 hours at most: {cookie}"
        );
    }
}

/// A folder page shows subjects and previews: each page shown is audited. The script's
/// digest of the mailbox (`/updates`) shows nothing and is not.
async fn a_folder_page_shown_is_audited_and_the_scripts_digest_is_not(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let listings = || async {
        let mut conn = app.state.store.read().await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT object_id FROM audit_events WHERE actor_id = $1 AND action = 'list_threads' \
             ORDER BY seq",
        )
        .bind(&cast.client.id)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        rows
    };
    let before = listings().await;
    assert_eq!(
        client.get(&client.path("mail/inbox")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        client.get(&client.path("mail/archive")).await.status,
        StatusCode::OK
    );
    let poll = client.get(&client.path("updates?folder=inbox")).await;
    assert_eq!(poll.status, StatusCode::OK);
    let after = listings().await;
    assert_eq!(after[before.len()..], ["inbox", "archive"]);
}
