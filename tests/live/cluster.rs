//! Two real `confide serve` processes on one PostgreSQL database, attachments in an
//! S3-compatible server (moto), one shared secret, separate data directories (so separate
//! search index replicas), mail to an SMTP sink: they behave as one server.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{postgres_url, report_skip, Backend, Binary, TestDatabase};
use crate::mail::{free_port, python_with, SmtpSink};
use crate::s3::moto;
use crate::Sse;

const SECRET: &str = "the-secret-every-node-of-this-cluster-shares";

/// The settings both nodes share, and node-specific ones on top.
fn node_env(shared: &[(String, String)], data_dir: &str) -> Vec<(String, String)> {
    let mut env = shared.to_vec();
    env.push(("CONFIDE__STORAGE__DATA_DIR".into(), data_dir.into()));
    env
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Polls `check` every 50 ms until it holds or `within` passes; returns how long it took.
async fn within<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_and_s3_behave_as_one() {
    if postgres_url().is_none() {
        return report_skip("CONFIDE_TEST_POSTGRES_URL (PostgreSQL)");
    }
    let (Some(moto), Some(_)) = (moto(), python_with("aiosmtpd")) else {
        return report_skip("moto and aiosmtpd (CONFIDE_TEST_PYTHON)");
    };
    let db = TestDatabase::create(Backend::Postgres).await;
    let bucket = moto.bucket().await;
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port).expect("the SMTP sink");
    let shared: Vec<(String, String)> = [
        ("CONFIDE__LOG__LEVEL", "warn".to_string()),
        ("CONFIDE__SERVER__SECRET_KEY", SECRET.into()),
        // …and the same key-encryption key.
        ("CONFIDE__ENCRYPTION__KEY", "7c".repeat(32)),
        (
            "CONFIDE__STORAGE__ATTACHMENTS",
            format!("s3://{bucket}/confide"),
        ),
        (
            "CONFIDE__STORAGE__S3__ENDPOINT",
            format!("http://127.0.0.1:{}", moto.port),
        ),
        ("CONFIDE__STORAGE__S3__ALLOW_HTTP", "true".into()),
        ("CONFIDE__STORAGE__S3__ACCESS_KEY_ID", "test".into()),
        ("CONFIDE__STORAGE__S3__SECRET_ACCESS_KEY", "test".into()),
        ("CONFIDE__MAIL__TRANSPORT", "smtp".into()),
        ("CONFIDE__MAIL__HOST", "127.0.0.1".into()),
        ("CONFIDE__MAIL__PORT", smtp_port.to_string()),
        ("CONFIDE__MAIL__TLS", "none".into()),
        ("CONFIDE__NOTIFICATIONS__POLL_INTERVAL_MS", "100".into()),
        ("CONFIDE__SEARCH__COMMIT_INTERVAL_MS", "100".into()),
        // Only LISTEN/NOTIFY can bring another node's event within a second.
        ("CONFIDE__LIVE__POLL_INTERVAL_MS", "60000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let root = db.data_dir().parent().unwrap().to_path_buf();
    let (dir_a, dir_b) = (root.join("node-a"), root.join("node-b"));
    let env_a = node_env(&shared, dir_a.to_str().unwrap());
    let env_b = node_env(&shared, dir_b.to_str().unwrap());
    Binary::create_practice(&db, &as_refs(&env_a));
    Binary::create_user(
        &db,
        &as_refs(&env_a),
        "front_office",
        "fran@oak.example",
        "Fran Front",
    );
    let a = Binary::serve(&db, &as_refs(&env_a));
    let b = Binary::serve(&db, &as_refs(&env_b));
    let http = reqwest::Client::new();
    let admin = a.admin_token().await;
    let (fran, fran_id) = b.sign_in("fran@oak.example").await;

    // A stream open on node B.
    let mut sse = Sse::open_at(&b.base, "/api/v1/events", &fran).await;
    sse.next(Duration::from_secs(5))
        .await
        .expect("a first event");

    // A file uploaded through A, a message sent through A.
    let part = reqwest::multipart::Part::bytes(b"%PDF-1.4\n% lab\n%%EOF\n".to_vec())
        .file_name("lab.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let upload: Value = http
        .post(format!("{}/api/v1/attachments", a.base))
        .bearer_auth(&admin)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment = upload["attachments"][0]["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let sent = http
        .post(format!("{}/api/v1/threads", a.base))
        .bearer_auth(&admin)
        .json(&json!({
            "to": [format!("user:{fran_id}")],
            "subject": "Quarterly figures",
            "body": "The reconciliation spreadsheet is attached.",
            "attachment_ids": [attachment],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    let thread: Value = sent.json().await.unwrap();
    let thread_id = thread["id"].as_str().unwrap().to_string();

    // Node B's stream hears it within a second (by NOTIFY: its poll is a minute).
    let event = sse
        .next(Duration::from_secs(1))
        .await
        .expect("the event reaches node B");
    assert_eq!(event.data["kinds"], json!(["threads", "folders"]));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Node B's own index replica finds it within a second.
    let found = within(Duration::from_secs(1), || {
        let (http, base, fran) = (http.clone(), b.base.clone(), fran.clone());
        async move {
            let hits: Value = http
                .post(format!("{base}/api/v1/search"))
                .bearer_auth(&fran)
                .json(&json!({"q": "reconciliation"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            hits["hits"].as_array().is_some_and(|h| !h.is_empty())
        }
    })
    .await;
    assert!(found.is_some(), "node B's search finds it within a second");

    // The file, stored through A, downloads through B.
    let file = http
        .get(format!("{}/api/v1/attachments/{attachment}", b.base))
        .bearer_auth(&fran)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(
        &file.bytes().await.unwrap()[..],
        b"%PDF-1.4\n% lab\n%%EOF\n"
    );

    // One notification email, not one per node.
    let emails = sink.wait_for("fran@oak.example", 1, 20).await;
    assert_eq!(emails.len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.wait_for("fran@oak.example", 1, 0).await.len(),
        1,
        "and only one"
    );

    // A sign-in form served by A is accepted by B (one secret, separate data directories).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let portal = browser
        .get(format!("{}/p/oak/", a.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = portal
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token on the sign-in page")
        .to_string();
    let signed_in = browser
        .post(format!("{}/p/oak/sign-in", b.base))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "fran@oak.example"),
            ("password", crate::helpers::PASSWORD),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert!(signed_in.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/p/oak/mail/inbox"));

    // kill -9 of node A right after it acknowledged a reply: nothing acknowledged is lost.
    let reply = http
        .post(format!("{}/api/v1/threads/{thread_id}/messages", a.base))
        .bearer_auth(&admin)
        .json(&json!({"body": "One more thing before the meeting."}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    a.kill_9();
    let view: Value = http
        .get(format!("{}/api/v1/threads/{thread_id}", b.base))
        .bearer_auth(&fran)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["messages"].as_array().unwrap().len(), 2, "{view}");
    sse.next(Duration::from_secs(2))
        .await
        .expect("node B's stream heard the reply");
    // The reply's notification goes out at most once: from A before it died, from B, or
    // (claimed by A when it died) after A's lease lapses, which this test does not wait
    // for. The first one is never sent again. (Exactly once across a kill -9 is
    // tests/notify's crash test.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails = sink.wait_for("fran@oak.example", 1, 0).await.len();
    assert!((1..=2).contains(&emails), "{emails} emails");
    drop(b);
}
