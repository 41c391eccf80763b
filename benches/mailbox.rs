//! Mailbox benchmark (issue 3): on 1,000,000 messages in 100,000 threads across 10,000
//! people, measures
//! - sending through the HTTP API with 32 concurrent senders, next to a baseline that
//!   inserts the same rows with plain SQL, one durable transaction per message, at the
//!   same concurrency, in the same run;
//! - the first page of the Inbox for a person with 100,000 threads and one with 1,000,
//!   through the API and as the web inbox's page (server-rendered HTML, and its weight);
//! - the server's peak memory (VmHWM of the server process).
//!
//! Run: `cargo bench --bench mailbox -- sqlite` or `-- postgres` (PostgreSQL needs
//! CONFIDE_TEST_POSTGRES_URL). Options: `--messages N` (default 1000000), `--sends N`
//! (default 20000), `--pages N` (timed requests per page measurement, default 1000). The server is the release `confide` binary, run as its own process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{id, percentile, populate, sign_in, Dataset, Server};
use confide::store::Store;
use serde_json::{json, Value};

const CONCURRENCY: usize = 32;

struct Args {
    backend: String,
    messages: usize,
    sends: usize,
    /// Timed requests per page measurement.
    pages: usize,
}

fn args() -> Args {
    let cli = common::CommandLine::read();
    Args {
        messages: cli.number("--messages", 1_000_000),
        sends: cli.number("--sends", 20_000),
        pages: cli.number("--pages", 1_000),
        backend: cli.backend,
    }
}

fn summary(name: &str, mut latencies: Vec<f64>, elapsed: Duration) -> f64 {
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "| {name} | {} | {rate:.0} msg/s | {:.2} ms | {:.2} ms |",
        latencies.len(),
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3
    );
    rate
}

/// The baseline: the rows a send writes (thread, two participants with their counter
/// rows, message, event, audit event with its chain head, the recipient's notification
/// unless one waits), by plain SQL, one durable transaction per message.
async fn baseline(store: &Store, data: &Dataset, sends: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (store, next) = (store.clone(), next.clone());
        let practice = data.practice_id.clone();
        let sender = data.staff_ids[worker % data.staff_ids.len()].clone();
        let clients = data.client_ids.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= sends {
                    break;
                }
                let t0 = Instant::now();
                let (tid, mid, now) = (id(), id(), chrono::Utc::now().timestamp_millis());
                let client = &clients[n % clients.len()];
                let mut tx = store.begin().await.unwrap();
                sqlx::query("INSERT INTO threads (id, practice_id, subject, started_by, client_count, groups, message_count, next_seq, preview, created_at, last_activity_at) VALUES ($1, $2, 'Baseline', $3, 1, '', 1, 1, 'Baseline body text', $4, $4)")
                    .bind(&tid).bind(&practice).bind(&sender).bind(now).execute(&mut *tx).await.unwrap();
                for (who, unread, sent) in [(&sender, 0i64, 1i64), (client, 1, 0)] {
                    sqlx::query("INSERT INTO thread_participants (thread_id, person_id, practice_id, via_group, folder, unread, has_sent, last_activity_at) VALUES ($1, $2, $3, NULL, 'inbox', $4, $5, $6)")
                        .bind(&tid).bind(who).bind(&practice).bind(unread).bind(sent).bind(now).execute(&mut *tx).await.unwrap();
                }
                sqlx::query("INSERT INTO messages (id, thread_id, practice_id, sender_id, seq, body, body_html, created_at) VALUES ($1, $2, $3, $4, 0, 'Baseline body text', '<p>Baseline body text</p>', $5)")
                    .bind(&mid).bind(&tid).bind(&practice).bind(&sender).bind(now).execute(&mut *tx).await.unwrap();
                sqlx::query("INSERT INTO events (practice_id, kind, thread_id, message_id, actor_id, at) VALUES ($1, 'message_sent', $2, $3, $4, $5)")
                    .bind(&practice).bind(&tid).bind(&mid).bind(&sender).bind(now).execute(&mut *tx).await.unwrap();
                let (seq, prev): (i64, String) = sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut *tx).await.unwrap();
                sqlx::query("INSERT INTO audit_events (seq, at, practice_id, actor_id, action, object_type, object_id, outcome, ip, session_ref, prev_hash, hash) VALUES ($1, $2, $3, $4, 'send_message', 'message', $5, 'success', NULL, NULL, $6, $7)")
                    .bind(seq).bind(now).bind(&practice).bind(&sender).bind(&mid).bind(&prev).bind(format!("{prev:.8}{seq}")).execute(&mut *tx).await.unwrap();
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(format!("{prev:.8}{seq}")).execute(&mut *tx).await.unwrap();
                // The recipient's notification, unless one already waits (as the API does).
                sqlx::query("INSERT INTO notifications (id, practice_id, person_id, kind, channel, message_id, address, created_at, due_at, attempts) VALUES ($1, $2, $3, 'new_message', 'email', $4, NULL, $5, $5, 0) ON CONFLICT DO NOTHING")
                    .bind(id()).bind(&practice).bind(client).bind(&mid).bind(now).execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                latencies.push(t0.elapsed().as_secs_f64());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    summary(
        "baseline: plain SQL, 1 transaction per message",
        all,
        started.elapsed(),
    )
}

async fn http_sends(
    http: &reqwest::Client,
    server: &Server,
    data: &Dataset,
    sends: usize,
    how: &str,
) -> f64 {
    let mut tokens = Vec::new();
    for email in data.sender_emails.iter().take(CONCURRENCY) {
        tokens.push(sign_in(http, &server.base, email).await);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (http, base, next, clients) = (
            http.clone(),
            server.base.clone(),
            next.clone(),
            data.client_ids.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= sends {
                    break;
                }
                let t0 = Instant::now();
                let resp = http
                    .post(format!("{base}/api/v1/threads"))
                    .bearer_auth(&token)
                    .json(&json!({"to": [format!("user:{}", clients[n % clients.len()])], "subject": "Bench", "body": "Hello, could we move our appointment to Thursday afternoon?"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());
                latencies.push(t0.elapsed().as_secs_f64());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    summary(
        &format!("HTTP API: POST /api/v1/threads, {how}"),
        all,
        started.elapsed(),
    )
}

async fn first_page(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    label: &str,
    pages: usize,
) -> f64 {
    let token = sign_in(http, base, email).await;
    let url = format!("{base}/api/v1/threads?folder=inbox&limit=50");
    for _ in 0..50 {
        http.get(&url).bearer_auth(&token).send().await.unwrap();
    }
    let mut latencies = Vec::new();
    for _ in 0..pages {
        let t0 = Instant::now();
        let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["threads"].as_array().unwrap().len(), 50);
        latencies.push(t0.elapsed().as_secs_f64());
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p99) = (
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3,
    );
    println!("| first Inbox page (50), {label} | {pages} | | {p50:.2} ms | {p99:.2} ms |");
    p99
}

/// The web inbox's first page (`/p/bench/mail/inbox`), server-rendered, for the same
/// person: the session of an API sign-in is a web session too (the same table).
async fn first_web_page(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    label: &str,
    pages: usize,
) -> f64 {
    let token = sign_in(http, base, email).await;
    let url = format!("{base}/p/bench/mail/inbox");
    let cookie = format!("confide-session={token}");
    let get = || http.get(&url).header("cookie", &cookie).send();
    for _ in 0..50 {
        get().await.unwrap();
    }
    let mut latencies = Vec::new();
    let mut bytes = 0;
    for _ in 0..pages {
        let t0 = Instant::now();
        let resp = get().await.unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert_eq!(html.matches("name=\"thread_id\"").count(), 50);
        latencies.push(t0.elapsed().as_secs_f64());
        bytes = html.len();
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p99) = (
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3,
    );
    println!(
        "| web Inbox page (50, {:.1} KB of HTML), {label} | {pages} | | {p50:.2} ms | {p99:.2} ms |",
        bytes as f64 / 1024.0
    );
    p99
}

#[tokio::main]
async fn main() {
    let args = args();
    let (_dir, data_dir, database) = common::fresh_database(&args.backend).await;
    let url = database.url.clone();
    println!(
        "backend: {}; {} messages; {} sends per phase; {CONCURRENCY} concurrent",
        args.backend, args.messages, args.sends
    );
    let store = Store::open(&url, CONCURRENCY as u32, 10_000).await.unwrap();
    let data = load(&store, args.messages).await;
    println!();
    println!("| what | requests | rate | p50 | p99 |");
    println!("|---|---|---|---|---|");
    let base_rate = baseline(&store, &data, args.sends).await;
    store.close().await;

    // The index built first, as a server that has been running has it: otherwise the
    // servers below would rebuild it while they are measured.
    let (said, took) = common::reindex(&url, &data_dir);
    println!();
    println!("{said} ({:.1} s)", took.as_secs_f64());
    println!();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // The same binary with each send in a transaction of its own, then with group commit.
    let alone = Server::start_with(
        &url,
        &data_dir,
        &[("CONFIDE__DATABASE__GROUP_COMMIT", "false")],
    );
    let alone_rate = http_sends(&http, &alone, &data, args.sends, "group commit off").await;
    drop(alone);
    let server = Server::start(&url, &data_dir);
    let api_rate = http_sends(&http, &server, &data, args.sends, "group commit on").await;
    // The sends queued a notification each; the sender drains them meanwhile.
    let busy_heavy = first_page(
        &http,
        &server.base,
        &data.heavy_email,
        "person with 100,000+ threads, while notifications drain",
        args.pages,
    )
    .await;
    drain_notifications(&url).await;
    let heavy = first_page(
        &http,
        &server.base,
        &data.heavy_email,
        "person with 100,000+ threads",
        args.pages,
    )
    .await;
    let light = first_page(
        &http,
        &server.base,
        &data.light_email,
        "person with 1,000 threads",
        args.pages,
    )
    .await;
    let web_heavy = first_web_page(
        &http,
        &server.base,
        &data.heavy_email,
        "person with 100,000+ threads",
        args.pages,
    )
    .await;
    first_web_page(
        &http,
        &server.base,
        &data.light_email,
        "person with 1,000 threads",
        args.pages,
    )
    .await;
    println!();
    println!("first page p99 while notifications drain: {busy_heavy:.2} ms");
    println!();
    println!("API / baseline send rate: {:.2}", api_rate / base_rate);
    println!(
        "API / baseline send rate, group commit off: {:.2}",
        alone_rate / base_rate
    );
    println!("first page p99, heavy / light: {:.2}", heavy / light);
    println!(
        "web page p99 / API page p99 (heavy): {:.2}",
        web_heavy / heavy
    );
    println!("server peak memory (VmHWM): {:.0} MB", server.peak_rss_mb());
    drop(server);
    drop(database);
}

/// The dataset: every thread about rescheduling, every message the same request, no
/// attachments.
async fn load(store: &Store, messages: usize) -> Dataset {
    populate(
        store,
        messages,
        |_| "Rescheduling next week".to_string(),
        |_, _| "Hello, could we move our appointment to Thursday afternoon? Any time after two works for me. Thanks!".to_string(),
        |_, _| None,
    )
    .await
}

/// Waits (10 minutes at most) until every notification that is due has been handled, then
/// prints how many were sent and how long that took.
async fn drain_notifications(url: &str) {
    let reader = Store::open(url, 2, 10_000).await.unwrap();
    let drain_started = Instant::now();
    let mut left = i64::MAX;
    while left > 0 && drain_started.elapsed() < Duration::from_secs(600) {
        let mut conn = reader.read().await.unwrap();
        // Coalesced ones wait out their window on purpose: only what is due counts.
        left = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL AND cancelled_at IS NULL \
             AND failed_at IS NULL AND due_at <= $1",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut conn = reader.read().await.unwrap();
    let sent: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE sent_at IS NOT NULL")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    reader.close().await;
    println!(
        "| notifications sent (file outbox; the rest coalesced) | {sent} | all due ones sent {:.0} s after the page run | | |",
        drain_started.elapsed().as_secs_f64()
    );
}
