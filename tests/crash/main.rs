//! Crash safety (issue 19): the real binary killed with SIGKILL at random moments while 32
//! senders upload files and send them and readers list, restarted each time, on SQLite
//! and PostgreSQL, with attachments on disk and in S3 (moto). After the last cycle:
//! every acknowledged send is there exactly once with its file's bytes intact, an
//! unacknowledged one is either wholly there or not at all, search finds every
//! acknowledged message, no file is stored without its row (nor a row without its file),
//! every message queued its notification and none reached anyone twice, and SQLite's
//! `integrity_check` is ok.
//!
//! `CONFIDE_CRASH_CYCLES` sets the number of kills (5 by default; the documented full run
//! is 50: `CONFIDE_CRASH_CYCLES=50 tests/run --test crash`).

#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/mail.rs"]
mod mail;
#[path = "../common/s3.rs"]
mod s3;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use helpers::{Backend, Binary, TestDatabase};
use mail::{free_port, python_with, SmtpSink};

const SENDERS: usize = 32;
const READERS: usize = 4;
/// The people the messages go to, in turn.
const RECIPIENTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    Disk,
    S3,
}

macro_rules! crash_tests {
    ($($name:ident: $storage:expr),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::crash_loop($crate::helpers::Backend::Sqlite, $storage).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_none() {
                    $crate::helpers::report_skip("CONFIDE_TEST_POSTGRES_URL (PostgreSQL)");
                    return;
                }
                super::crash_loop($crate::helpers::Backend::Postgres, $storage).await;
            }
        }
    )*};
}

crash_tests!(
    acknowledged_sends_survive_kill_9_with_files_on_disk: super::Storage::Disk,
    acknowledged_sends_survive_kill_9_with_files_in_s3: super::Storage::S3,
);

/// One send as a sender tried it.
#[derive(Debug, Clone)]
struct Sent {
    subject: String,
    /// A word only this message holds, for search.
    word: String,
    recipient: usize,
    bytes: Vec<u8>,
}

/// What the senders did over every cycle.
#[derive(Default)]
struct Ledger {
    /// Every send begun (its upload may not even have happened).
    tried: Vec<Sent>,
    /// The sends answered 201.
    acknowledged: Vec<Sent>,
}

fn cycles() -> usize {
    std::env::var("CONFIDE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

async fn crash_loop(backend: Backend, storage: Storage) {
    let Some(_) = python_with("aiosmtpd") else {
        helpers::report_skip("aiosmtpd (SMTP sink)");
        return;
    };
    let bucket = match storage {
        Storage::Disk => None,
        Storage::S3 => {
            let Some(moto) = s3::moto() else {
                helpers::report_skip("moto (S3)");
                return;
            };
            Some((moto.port, moto.bucket().await))
        }
    };
    let db = TestDatabase::create(backend).await;
    let sink = SmtpSink::start(free_port()).expect("the SMTP sink");
    let smtp_port = sink.port.to_string();
    let mut env: Vec<(&str, String)> = vec![
        ("CONFIDE__LOG__LEVEL", "error".into()),
        ("CONFIDE__MAIL__TRANSPORT", "smtp".into()),
        ("CONFIDE__MAIL__HOST", "127.0.0.1".into()),
        ("CONFIDE__MAIL__PORT", smtp_port),
        ("CONFIDE__MAIL__TLS", "none".into()),
        ("CONFIDE__NOTIFICATIONS__POLL_INTERVAL_MS", "100".into()),
        // Every message its own notification, so that one sent twice shows.
        ("CONFIDE__NOTIFICATIONS__COALESCE_MINUTES", "0".into()),
        ("CONFIDE__LIMITS__UPLOADS_PER_HOUR", "1000000".into()),
        ("CONFIDE__AUTH__MAX_FAILURES_PER_ADDRESS", "1000000".into()),
    ];
    if let Some((port, bucket)) = &bucket {
        env.extend([
            (
                "CONFIDE__STORAGE__ATTACHMENTS",
                format!("s3://{bucket}/confide/attachments"),
            ),
            (
                "CONFIDE__STORAGE__S3__ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            ("CONFIDE__STORAGE__S3__ALLOW_HTTP", "true".into()),
            ("CONFIDE__STORAGE__S3__ACCESS_KEY_ID", "test".into()),
            ("CONFIDE__STORAGE__S3__SECRET_ACCESS_KEY", "test".into()),
        ]);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Binary::create_practice(&db, &env);
    for r in 0..RECIPIENTS {
        Binary::create_user(
            &db,
            &env,
            "front_office",
            &format!("fran{r}@oak.example"),
            &format!("Fran Front {r}"),
        );
    }

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let mut recipients = Vec::new();
    for cycle in 0..cycles() {
        let server = Binary::serve(&db, &env);
        let token = server.admin_token().await;
        if recipients.is_empty() {
            for r in 0..RECIPIENTS {
                recipients.push(server.sign_in(&format!("fran{r}@oak.example")).await.1);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for s in 0..SENDERS {
            tasks.push(tokio::spawn(sender(
                server.base.clone(),
                token.clone(),
                recipients.clone(),
                cycle,
                s,
                ledger.clone(),
                stop.clone(),
            )));
        }
        for _ in 0..READERS {
            tasks.push(tokio::spawn(reader(
                server.base.clone(),
                token.clone(),
                stop.clone(),
            )));
        }
        // The kill comes at a random moment once sends are going through.
        let before = ledger.lock().unwrap().acknowledged.len();
        let waiting = Instant::now();
        while ledger.lock().unwrap().acknowledged.len() == before {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "no send went through in a minute"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lifetime = rand::random::<u64>() % 2_500;
        tokio::time::sleep(Duration::from_millis(lifetime)).await;
        server.kill_9();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
    }
    let killed_for = started.elapsed();

    let server = Binary::serve(&db, &env);
    let token = server.admin_token().await;
    let http = reqwest::Client::new();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let present = sent_threads(&http, &server.base, &token).await;

    // Exactly once if acknowledged, at most once if not; whole either way.
    let acknowledged: BTreeSet<&str> = ledger
        .acknowledged
        .iter()
        .map(|s| s.subject.as_str())
        .collect();
    let mut per_recipient = [0usize; RECIPIENTS];
    let mut unacknowledged_present = 0;
    for sent in &ledger.tried {
        let ids = present.get(&sent.subject).cloned().unwrap_or_default();
        if acknowledged.contains(sent.subject.as_str()) {
            assert_eq!(
                ids.len(),
                1,
                "{} acknowledged, present {ids:?}",
                sent.subject
            );
        } else {
            assert!(
                ids.len() <= 1,
                "{} present {} times",
                sent.subject,
                ids.len()
            );
            unacknowledged_present += ids.len();
        }
        for id in &ids {
            per_recipient[sent.recipient] += 1;
            let thread = get(
                &http,
                &server.base,
                &token,
                &format!("/api/v1/threads/{id}"),
            )
            .await;
            let files = thread["messages"][0]["attachments"].as_array().unwrap();
            assert_eq!(files.len(), 1, "{}: {thread}", sent.subject);
            let file = files[0]["id"].as_str().unwrap();
            let bytes = http
                .get(format!("{}/api/v1/attachments/{file}", server.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert!(
                bytes[..] == sent.bytes[..],
                "{}: the file's bytes differ",
                sent.subject
            );
        }
    }
    assert_eq!(
        present.values().map(Vec::len).sum::<usize>(),
        per_recipient.iter().sum::<usize>(),
        "a thread in Sent that no sender tried"
    );

    // Search finds every acknowledged message (once the index has caught up).
    let deadline = Instant::now() + Duration::from_secs(120);
    for sent in &ledger.acknowledged {
        let id = &present[&sent.subject][0];
        loop {
            let resp = http
                .post(format!("{}/api/v1/search", server.base))
                .bearer_auth(&token)
                .json(&json!({"q": sent.word}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let found: Value = resp.json().await.unwrap_or_default();
            let hit = status == StatusCode::OK
                && found["hits"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|h| h["thread_id"] == id.as_str()));
            if hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "search never found {} ({status}: {found})",
                sent.subject
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Every recipient was told (one notification waiting covers every message after it),
    // nothing piled up, and nothing went out twice: a recipient never got more emails
    // than notifications were queued for them, and each one recorded as sent arrived.
    let mut conn = db.connect().await;
    let mut sent_mail = 0;
    let mut queued_all = 0;
    for (r, person) in recipients.iter().enumerate() {
        // Ids are letters and digits only.
        let count = |filter: &str| {
            format!(
                "SELECT COUNT(*) FROM notifications \
                 WHERE person_id = '{person}' AND kind = 'new_message'{filter}"
            )
        };
        let queued: i64 = sqlx::query_scalar(&count(""))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let waiting: i64 = sqlx::query_scalar(&count(
            " AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL",
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let recorded: i64 = sqlx::query_scalar(&count(" AND sent_at IS NOT NULL"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if per_recipient[r] > 0 {
            assert!(
                queued >= 1,
                "fran{r} had {} messages and no notification",
                per_recipient[r]
            );
        }
        assert!(waiting <= 1, "{waiting} notifications waiting for fran{r}");
        let address = format!("fran{r}@oak.example");
        // A notification is sent again only when a kill fell between the mail server's
        // acceptance and its record, and its lease (5 minutes) ran out; it then carries
        // the same Message-ID, by which the recipient's mail system knows it. Counted
        // here: distinct notifications received.
        let received = sink.wait_for(&address, recorded as usize, 10).await;
        let emails = received
            .iter()
            .map(|e| e.header("message-id").expect("a Message-ID"))
            .collect::<BTreeSet<_>>()
            .len();
        assert!(
            emails as i64 >= recorded,
            "fran{r}: {recorded} notifications recorded as sent, {emails} arrived"
        );
        assert!(
            emails as i64 <= queued,
            "fran{r} got {emails} emails for {queued} notifications"
        );
        sent_mail += emails;
        queued_all += queued;
    }

    // Every stored file has its row and every row its file.
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT sha256, CAST(deleting AS BIGINT) FROM blobs")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let all_rows: BTreeSet<String> = rows.iter().map(|(a, _)| a.clone()).collect();
    let live_rows: BTreeSet<String> = rows
        .iter()
        .filter(|(_, deleting)| *deleting == 0)
        .map(|(a, _)| a.clone())
        .collect();
    let files = match &bucket {
        None => files_on_disk(&db.data_dir().join("attachments")),
        Some((port, bucket)) => objects_in(*port, bucket).await,
    };
    let orphans: Vec<_> = files.difference(&all_rows).collect();
    let missing: Vec<_> = live_rows.difference(&files).collect();
    assert!(orphans.is_empty(), "files without a row: {orphans:?}");
    assert!(missing.is_empty(), "rows without a file: {missing:?}");
    server.kill_9();

    if backend == Backend::Sqlite {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
    println!(
        "crash loop ({backend:?}, {storage:?}): {} kills in {:.0} s; {} sends acknowledged, \
         {} more begun of which {unacknowledged_present} wholly present and none in part; \
         {} files stored ({} of them marked for the janitor, left by uploads cut short); \
         {queued_all} notifications queued, {sent_mail} delivered, none twice",
        cycles(),
        killed_for.as_secs_f64(),
        ledger.acknowledged.len(),
        ledger.tried.len() - ledger.acknowledged.len(),
        files.len(),
        files.len() - live_rows.len(),
    );
}

/// One sender: uploads a file of its own and sends it, again and again, until the server
/// dies under it.
async fn sender(
    base: String,
    token: String,
    recipients: Vec<String>,
    cycle: usize,
    s: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let word = format!(
            "w{cycle}x{s}x{n}x{}",
            hex::encode(rand::random::<[u8; 3]>())
        );
        let line = format!("cycle {cycle}, sender {s}, send {n}: {word}\n");
        let sent = Sent {
            subject: format!("crash {cycle}-{s}-{n}"),
            word: word.clone(),
            recipient: (s + n) % RECIPIENTS,
            bytes: line
                .repeat(1 + rand::random::<u32>() as usize % 400)
                .into_bytes(),
        };
        ledger.lock().unwrap().tried.push(sent.clone());
        let part = reqwest::multipart::Part::bytes(sent.bytes.clone())
            .file_name("notes.txt")
            .mime_str("text/plain")
            .unwrap();
        let Ok(uploaded) = http
            .post(format!("{base}/api/v1/attachments"))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
        else {
            return;
        };
        let Ok(uploaded) = uploaded.json::<Value>().await else {
            return;
        };
        let Some(file) = uploaded["attachments"][0]["id"].as_str() else {
            panic!("upload refused: {uploaded}");
        };
        let to = format!("user:{}", recipients[sent.recipient]);
        let Ok(resp) = http
            .post(format!("{base}/api/v1/threads"))
            .bearer_auth(&token)
            .json(
                &json!({"to": [to], "subject": sent.subject, "attachment_ids": [file],
                          "body": format!("Crash test message {word} with a file.")}),
            )
            .send()
            .await
        else {
            return;
        };
        match resp.status() {
            StatusCode::CREATED => {
                if resp.json::<Value>().await.is_ok() {
                    ledger.lock().unwrap().acknowledged.push(sent);
                }
            }
            status => panic!(
                "send answered {status}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
}

/// One reader: lists Sent and opens the newest thread, until the server dies.
async fn reader(base: String, token: String, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(resp) = http
            .get(format!("{base}/api/v1/threads?folder=sent&limit=20"))
            .bearer_auth(&token)
            .send()
            .await
        else {
            return;
        };
        let Ok(page) = resp.json::<Value>().await else {
            return;
        };
        if let Some(id) = page["threads"][0]["id"].as_str() {
            if http
                .get(format!("{base}/api/v1/threads/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> Value {
    let resp = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

/// Every thread in the admin's Sent, by subject.
async fn sent_threads(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> HashMap<String, Vec<String>> {
    let mut threads: HashMap<String, Vec<String>> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            "/api/v1/threads?folder=sent&limit=200".to_string()
        } else {
            format!("/api/v1/threads?folder=sent&limit=200&cursor={cursor}")
        };
        let page = get(http, base, token, &path).await;
        for thread in page["threads"].as_array().unwrap() {
            threads
                .entry(thread["subject"].as_str().unwrap().to_string())
                .or_default()
                .push(thread["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return threads,
        }
    }
}

/// The names of the files under `dir`, at any depth.
fn files_on_disk(dir: &std::path::Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return names;
    };
    for entry in entries {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            names.extend(files_on_disk(&entry.path()));
        } else {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

/// The names (last path segment) of the objects in `bucket`.
async fn objects_in(port: u16, bucket: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("http://127.0.0.1:{port}/{bucket}?list-type=2");
        if let Some(t) = &token {
            url.push_str(&format!("&continuation-token={}", urlencode(t)));
        }
        let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
        for piece in xml.split("<Key>").skip(1) {
            let key = &piece[..piece.find("</Key>").unwrap()];
            names.insert(key.rsplit('/').next().unwrap().to_string());
        }
        token = xml
            .split("<NextContinuationToken>")
            .nth(1)
            .and_then(|rest| rest.split("</NextContinuationToken>").next())
            .map(str::to_string);
        if token.is_none() {
            return names;
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
