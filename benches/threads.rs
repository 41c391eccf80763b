//! Long threads (issue 18, goal 2): a 5,000-message thread opens as fast as a short one.
//!
//! Loads a small mailbox with plain SQL (100 threads of 10 messages, the loader of the
//! other benchmarks), starts the release `confide` binary, makes one thread 5,000 messages
//! long through the API (replies, 8 at a time), then opens, in the same run:
//!
//! - a 10-message thread,
//! - a 50-message thread (the baseline: it shows as many messages as a page does),
//! - the 5,000-message thread (its latest 50 messages),
//! - a page of that thread 2,500 messages back (`before=`, found by paging back).
//!
//! Run: `cargo bench --bench threads -- sqlite` (or `postgres`, with
//! `CONFIDE_TEST_POSTGRES_URL`); options `--long N` (messages, default 5000) and
//! `--opens N` (timed opens of each, default 300).

use std::time::Instant;

use confide::store::Store;
use serde_json::{json, Value};

mod common;

use common::{percentile, populate, sign_in, Server};

struct Args {
    backend: String,
    long: usize,
    opens: usize,
}

fn args() -> Args {
    let line = common::CommandLine::read();
    Args {
        backend: if line.flag("postgres") {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        long: line.number("--long", 5000),
        opens: line.number("--opens", 300),
    }
}

/// Replies to `thread` until it holds `total` messages, `concurrency` at a time.
async fn lengthen(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    thread: &str,
    have: usize,
    total: usize,
) {
    const CONCURRENCY: usize = 8;
    let started = Instant::now();
    let url = format!("{base}/api/v1/threads/{thread}/messages");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (http, url, token) = (http.clone(), url.clone(), token.to_string());
        let count =
            (total - have) / CONCURRENCY + usize::from(worker < (total - have) % CONCURRENCY);
        tasks.spawn(async move {
            for i in 0..count {
                let body = format!("Reply {worker}-{i}: the appointment moves to Thursday at ten.");
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "body": body }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    println!(
        "lengthened one thread to {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Opens `url` `opens` times (after 20 untimed); prints a table row and returns p50 and
/// p99 in milliseconds.
async fn open(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    label: &str,
    opens: usize,
    expect: usize,
) -> (f64, f64) {
    let get = || async {
        let thread = get_json(http, url, token).await;
        assert_eq!(
            thread["messages"].as_array().unwrap().len(),
            expect,
            "{url}"
        );
    };
    for _ in 0..20 {
        get().await;
    }
    let mut latencies = Vec::with_capacity(opens);
    for _ in 0..opens {
        let t0 = Instant::now();
        get().await;
        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("| {label} | {opens} | {p50:.2} ms | {p99:.2} ms |");
    (p50, p99)
}

/// A GET answered with JSON.
async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let resp = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

/// Pages back from the latest messages until `back` messages lie after the page; returns
/// the `before` that asks for that page.
async fn before_for(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    thread: &str,
    back: usize,
) -> String {
    let mut url = format!("{base}/api/v1/threads/{thread}");
    let mut skipped = 0;
    loop {
        let page = get_json(http, &url, token).await;
        let older = page["older"].as_str().expect("an older page").to_string();
        skipped += page["messages"].as_array().unwrap().len();
        if skipped >= back {
            return older;
        }
        url = format!("{base}/api/v1/threads/{thread}?before={older}");
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let (_dir, data_dir, database) = common::fresh_database(&args.backend).await;
    let store = Store::open(&database.url, 4, 10_000).await.unwrap();
    let data = populate(
        &store,
        1_000,
        |t| format!("Appointment {t}"),
        |t, seq| format!("Message {seq} of thread {t}: see you on Monday."),
        |_, _| None,
    )
    .await;
    store.close().await;
    common::reindex(&database.url, &data_dir);
    let server = Server::start(&database.url, &data_dir);
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    let token = sign_in(&http, &base, &data.heavy_email).await;
    let inbox_url = format!("{base}/api/v1/threads?folder=inbox&limit=3");
    let inbox = get_json(&http, &inbox_url, &token).await;
    let ids: Vec<String> = inbox["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let (long, page, short) = (&ids[0], &ids[1], &ids[2]);
    lengthen(&http, &base, &token, page, 10, 50).await;
    lengthen(&http, &base, &token, long, 10, args.long).await;
    let deep = before_for(&http, &base, &token, long, args.long / 2).await;

    println!(
        "\nOpening threads ({}, {} opens each after 20 untimed)\n",
        args.backend, args.opens
    );
    println!("| thread | opens | p50 | p99 |");
    println!("|---|---|---|---|");
    let thread_url = |id: &str| format!("{base}/api/v1/threads/{id}");
    open(
        &http,
        &thread_url(short),
        &token,
        "10 messages",
        args.opens,
        10,
    )
    .await;
    let (base50, base99) = open(
        &http,
        &thread_url(page),
        &token,
        "50 messages (baseline)",
        args.opens,
        50,
    )
    .await;
    let (long50, long99) = open(
        &http,
        &thread_url(long),
        &token,
        &format!("{} messages, the latest 50", args.long),
        args.opens,
        50,
    )
    .await;
    let (deep50, deep99) = open(
        &http,
        &format!("{}?before={deep}", thread_url(long)),
        &token,
        &format!("{} messages, 50 from {} back", args.long, args.long / 2),
        args.opens,
        50,
    )
    .await;
    println!(
        "\nratio to the 50-message thread: latest {:.2} (p50) {:.2} (p99); deep page {:.2} (p50) {:.2} (p99)",
        long50 / base50,
        long99 / base99,
        deep50 / base50,
        deep99 / base99
    );
}
