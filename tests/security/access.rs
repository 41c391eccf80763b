//! Who reaches what: metrics behind a token or a separate address, https-only transport,
//! per-person quotas, sign-in throttling that cannot lock a person out of their own device,
//! and search results that depend on nothing but the searcher's own mail.

use std::process::Stdio;
use std::time::Duration;

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Session, TestApp, TestDatabase, PASSWORD};
use crate::on_both_backends;
use crate::Binary;

on_both_backends!(
    metrics_need_the_token_or_this_machine,
    metrics_can_live_on_their_own_address,
    https_deployments_get_hsts_and_secure_cookies,
    serve_refuses_a_reachable_address_without_public_url,
    uploads_held_at_once_are_capped,
    uploads_per_hour_are_capped,
    drafts_per_person_are_capped,
    guesses_from_elsewhere_cannot_lock_a_person_out_of_their_device,
    search_ranks_by_the_searchers_own_mail_only,
);

async fn metrics_need_the_token_or_this_machine(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // No token: this machine only, and not through a proxy.
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let proxied = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::UNAUTHORIZED);

    let app = TestApp::spawn_with(backend, |c| c.metrics.token = "m3trics-s3cret".into()).await;
    for auth in [None, Some("Bearer wrong"), Some("m3trics-s3cret")] {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "unauthenticated");
    }
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("m3trics-s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("confide_"));
}

async fn metrics_can_live_on_their_own_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.metrics.bind = "127.0.0.1:0".into()).await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let metrics = app.metrics_base.clone().expect("a metrics address");
    assert_ne!(metrics, app.base);
    let resp = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Only metrics there.
    let resp = app
        .client
        .get(format!("{metrics}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn https_deployments_get_hsts_and_secure_cookies(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.server.public_url = "https://mail.oak.example".into()
    })
    .await;
    let practice = app.create_practice("oak").await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let page = app
        .client
        .get(app.url("/password-resets/abc"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<&str> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(!cookies.is_empty());
    assert!(cookies.iter().all(|c| c.contains("Secure")), "{cookies:?}");
    let sign_in = app.sign_in(&practice, "admin@oak.example", PASSWORD).await;
    let device = sign_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(device.starts_with("confide-device="), "{device}");
    assert!(
        device.contains("Secure") && device.contains("HttpOnly"),
        "{device}"
    );

    // Plain http (a local run): no HSTS, no Secure.
    let (app, practice) = TestApp::with_practice(backend).await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
    let sign_in = app.sign_in(&practice, "admin@oak.example", PASSWORD).await;
    let device = sign_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!device.contains("Secure"), "{device}");
}

/// Links in emails carry tokens: a server reachable from elsewhere must be told the address
/// people use, or it would mail links to a wrong host.
async fn serve_refuses_a_reachable_address_without_public_url(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let out = Binary::command(&db, &[("CONFIDE__SERVER__BIND", "0.0.0.0:0")])
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.public_url"), "{stderr}");
    // With it set, the same address serves.
    let server = Binary::serve(
        &db,
        &[
            ("CONFIDE__SERVER__BIND", "0.0.0.0:0"),
            ("CONFIDE__SERVER__PUBLIC_URL", "https://mail.oak.example"),
        ],
    );
    let port = server.address.rsplit(':').next().unwrap();
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn upload(app: &TestApp, who: &Session, bytes: usize) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'x'; bytes]).file_name("notes.txt"),
    );
    let resp = app
        .client
        .post(app.url("/api/v1/attachments"))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").cloned();
    let mut body: Value = resp.json().await.unwrap_or(Value::Null);
    if let Some(retry) = retry_after {
        body["retry_after"] = json!(retry.to_str().unwrap());
    }
    (status, body)
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap()
}

/// The review: a client could repeat 20 × 10 MiB uploads without end.
async fn uploads_held_at_once_are_capped(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.pending_upload_max_bytes = 5000).await;
    let practice = app.create_practice("oak").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let (status, first) = upload(&app, &client, 3000).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, problem) = upload(&app, &client, 3000).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "upload_quota_exceeded");
    assert_eq!(problem["field"], "file");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM attachments").await, 1);
    let tmp = app.db.data_dir().join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
    // Another person has their own quota; deleting frees one's own.
    let other = app.person(&practice, Role::Client, "Dana Client").await;
    assert_eq!(upload(&app, &other, 3000).await.0, StatusCode::CREATED);
    let id = first["attachments"][0]["id"].as_str().unwrap();
    app.delete(&format!("/api/v1/attachments/{id}"), &client)
        .await;
    assert_eq!(upload(&app, &client, 3000).await.0, StatusCode::CREATED);
    // Up to the limit exactly; one byte more is refused (before a byte is read).
    assert_eq!(upload(&app, &client, 2000).await.0, StatusCode::CREATED);
    let (status, problem) = upload(&app, &client, 1).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "upload_quota_exceeded");
}

async fn uploads_per_hour_are_capped(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.uploads_per_hour = 3).await;
    let practice = app.create_practice("oak").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    for _ in 0..3 {
        let (status, up) = upload(&app, &client, 100).await;
        assert_eq!(status, StatusCode::CREATED);
        // Deleting does not give the upload back.
        let id = up["attachments"][0]["id"].as_str().unwrap();
        app.delete(&format!("/api/v1/attachments/{id}"), &client)
            .await;
    }
    let (status, problem) = upload(&app, &client, 100).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["code"], "upload_rate_exceeded");
    assert_eq!(problem["field"], "file");
    let retry: u64 = problem["retry_after"].as_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM attachments").await, 0);
    // The next hour, uploads work again.
    app.clock.advance_minutes(60);
    let client = app.login_as(&practice, &client.email).await;
    assert_eq!(upload(&app, &client, 100).await.0, StatusCode::CREATED);
}

async fn drafts_per_person_are_capped(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.drafts_per_person = 2).await;
    let practice = app.create_practice("oak").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let draft = json!({"subject": "Later", "body": "Something to say later on."});
    let (status, first) = app.post("/api/v1/drafts", &client, draft.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        app.post("/api/v1/drafts", &client, draft.clone()).await.0,
        StatusCode::CREATED
    );
    let result = app.post("/api/v1/drafts", &client, draft.clone()).await;
    assert_problem(
        &result,
        StatusCode::TOO_MANY_REQUESTS,
        "draft_quota_exceeded",
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM drafts").await, 2);
    // Saving an existing draft again is fine; deleting one makes room.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.put(&format!("/api/v1/drafts/{id}"), &client, draft.clone())
            .await
            .0,
        StatusCode::OK
    );
    app.delete(&format!("/api/v1/drafts/{id}"), &client).await;
    assert_eq!(
        app.post("/api/v1/drafts", &client, draft).await.0,
        StatusCode::CREATED
    );
}

async fn sign_in_with(
    app: &TestApp,
    practice: &str,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({"practice": practice, "email": email, "password": password});
    if let Some(device) = device {
        body["device_token"] = json!(device);
    }
    app.call(Method::POST, "/api/v1/sessions", None, Some(body))
        .await
}

/// The review: five wrong passwords in 15 minutes locked an account for everyone, so
/// anyone could lock a provider out. Now guesses without the provider's device lock out
/// only other devices; the provider signs in from theirs. A device guessing too often is
/// locked out itself.
async fn guesses_from_elsewhere_cannot_lock_a_person_out_of_their_device(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let email = "pat@oak.example";
    app.add_person(&practice, Role::Provider, "Pat Provider", email)
        .await;
    let (status, signed_in) = sign_in_with(&app, &practice, email, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let device = signed_in["device_token"].as_str().unwrap().to_string();
    assert_eq!(device.len(), 43);

    // An attacker with a device of their own (trusted for their own account) guesses.
    let attacker_email = "mal@oak.example";
    app.add_person(&practice, Role::Biller, "Mal Biller", attacker_email)
        .await;
    let (_, mal) = sign_in_with(&app, &practice, attacker_email, PASSWORD, None).await;
    let mal_device = mal["device_token"].as_str().unwrap().to_string();
    for _ in 0..5 {
        let result =
            sign_in_with(&app, &practice, email, "wrong-guess-000", Some(&mal_device)).await;
        assert_problem(&result, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    for device in [None, Some(mal_device.as_str())] {
        let result = sign_in_with(&app, &practice, email, PASSWORD, device).await;
        assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    }
    // The provider's own device still signs in, by token or by cookie.
    let (status, _) = sign_in_with(&app, &practice, email, PASSWORD, Some(&device)).await;
    assert_eq!(status, StatusCode::CREATED);
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("cookie", format!("confide-device={device}"))
        .json(&json!({"practice": practice, "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // A second device of the provider's, trusted and with no failures of its own.
    let (_, pat) = sign_in_with(&app, &practice, email, PASSWORD, Some(&device)).await;
    let (status, second) = sign_in_with(&app, &practice, email, PASSWORD, Some(&device)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        second["device_token"], device,
        "a trusted device keeps its token"
    );
    let laptop = {
        // Trust is earned by a sign-in the account's bucket lets through: wait it out.
        app.clock.advance_minutes(16);
        let (status, laptop) = sign_in_with(&app, &practice, email, PASSWORD, None).await;
        assert_eq!(status, StatusCode::CREATED, "{laptop}");
        laptop["device_token"].as_str().unwrap().to_string()
    };
    // The attacker fills the account's bucket again; the laptop is not bothered.
    for _ in 0..6 {
        sign_in_with(&app, &practice, email, "wrong-guess-000", None).await;
    }
    let (status, _) = sign_in_with(&app, &practice, email, PASSWORD, Some(&laptop)).await;
    assert_eq!(status, StatusCode::CREATED);

    // A trusted device that guesses is throttled on its own.
    for _ in 0..5 {
        sign_in_with(&app, &practice, email, "wrong-guess-000", Some(&device)).await;
    }
    let result = sign_in_with(&app, &practice, email, PASSWORD, Some(&device)).await;
    assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");

    // A new password forgets every trusted device: the laptop, whose own bucket is empty,
    // is now just another stranger, held back by the account's full bucket.
    let new_password = "saffron-glacier-lattice-41";
    let session = Session {
        token: pat["token"].as_str().unwrap().to_string(),
        id: pat["user"]["id"].as_str().unwrap().to_string(),
        email: email.to_string(),
    };
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &session,
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let result = sign_in_with(&app, &practice, email, new_password, Some(&laptop)).await;
    assert_problem(&result, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

async fn search(app: &TestApp, who: &Session, q: &str) -> Value {
    let (status, page) = app
        .post("/api/v1/search", who, json!({"q": q, "limit": 50}))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

async fn wait_until_indexed(app: &TestApp, who: &Session, q: &str, hits: usize) {
    for _ in 0..200 {
        let page = search(app, who, q).await;
        if page["hits"].as_array().unwrap().len() >= hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{q} never reached {hits} hits");
}

/// The review: a client's BM25 score for a word in their own message dropped from 4.16 to
/// 2.61 when another practice's messages contained it. Scores are gone from the answer, and
/// the ranking comes from the searcher's own documents: another practice writing the same
/// word changes nothing in what the client gets, not even the order.
async fn search_ranks_by_the_searchers_own_mail_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.search.commit_interval_ms = 50).await;
    let oak = app.create_practice("oak").await;
    let provider = app.person(&oak, Role::Provider, "Pat Provider").await;
    let client = app.person(&oak, Role::Client, "Casey Client").await;
    let to_client = format!("user:{}", client.id);
    // Among the client's messages the word is as rare in subjects as in bodies, and a
    // subject match counts double: the first message ranks first.
    for (subject, body) in [
        ("Lantern", "We talked about the evening walk this week."),
        ("Evening", "Bring a lantern when it gets dark outside."),
    ] {
        let (status, _) = app.compose(&provider, &[&to_client], subject, body).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    wait_until_indexed(&app, &client, "lantern", 2).await;
    let before = search(&app, &client, "lantern").await;
    let subjects: Vec<&str> = before["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["Lantern", "Evening"]);
    assert!(
        before["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h.get("score").is_none()),
        "{before}"
    );

    // Another practice puts the word in forty subjects: across the whole index a subject
    // match becomes common and a body match rare, which would turn the client's order.
    let elm = app.create_practice("elm").await;
    let elm_provider = app.person(&elm, Role::Provider, "Eli Provider").await;
    let elm_client = app.person(&elm, Role::Client, "Ezra Client").await;
    for i in 0..40 {
        app.compose(
            &elm_provider,
            &[&format!("user:{}", elm_client.id)],
            &format!("Lantern {i}"),
            "About the festival in the evening, and who comes along.",
        )
        .await;
    }
    wait_until_indexed(&app, &elm_client, "lantern", 40).await;
    let after = search(&app, &client, "lantern").await;
    assert_eq!(
        before, after,
        "nothing the client gets depends on another practice"
    );
}
