//! Live updates benchmark (issue 16): 2,000 people keep an event stream open
//! (`GET /api/v1/events`) while 32 senders write to them through the HTTP API. Measures
//! - the time from a send acknowledged (201) to the event arriving on the recipient's
//!   stream, p50 and p99, on one node and (PostgreSQL) from node A to streams on node B;
//! - the server's memory per open stream: the heap in use (`confide_heap_in_use_bytes` in
//!   `/metrics`) and VmRSS with the streams open, less before, with a connection of
//!   its own for each stream (HTTP/1.1) and with 100 streams on each HTTP/2 connection (as
//!   a load balancer speaking HTTP/2 to the server carries them);
//! - the send rate with the streams open against the same run's send rate without them.
//!
//! Run: `cargo bench --bench live -- sqlite` or `-- postgres` (two nodes; PostgreSQL needs
//! CONFIDE_TEST_POSTGRES_URL). Options: `--streams N` (default 2000), `--sends N` (default
//! 10000), `--messages N` (the dataset, default 100000). The server is the release
//! `confide` binary, as its own process.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{id, percentile, populate, sign_in, Backend, Database, Dataset, Server};
use confide::store::Store;
use futures_util::StreamExt;
use serde_json::json;

const CONCURRENCY: usize = 32;
/// How often the first half's streams are opened and closed before memory is measured.
const WARM_UP_ROUNDS: usize = 6;
/// Streams on each HTTP/2 connection when streams come that way.
const H2_STREAMS_PER_CONNECTION: usize = 100;

struct Args {
    backend: String,
    streams: usize,
    sends: usize,
    messages: usize,
}

fn args() -> Args {
    let cli = common::CommandLine::read();
    Args {
        streams: cli.number("--streams", 2000),
        sends: cli.number("--sends", 10_000),
        messages: cli.number("--messages", 100_000),
        backend: cli.backend,
    }
}

/// A session for each of the first `n` clients, written straight into the database (as
/// many sign-ins would take minutes of password hashing): their bearer tokens.
async fn client_sessions(store: &Store, data: &Dataset, n: usize) -> Vec<(String, String)> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for client in data.client_ids.iter().take(n) {
        let token = confide::auth::new_token();
        let row = confide::store::sessions::SessionRow {
            id: id(),
            person_id: client.clone(),
            practice_id: data.practice_id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + 12 * 3600 * 1000,
        };
        confide::store::sessions::insert(&mut tx, &row, &confide::auth::token_hash(&token))
            .await
            .unwrap();
        out.push((client.clone(), token));
    }
    tx.commit().await.unwrap();
    out
}

/// When each person's stream received an event, by person.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// How streams reach the server.
#[derive(Clone, Copy)]
enum Transport {
    /// One HTTP/1.1 connection per stream, as one browser tab each.
    Http1,
    /// HTTP/2 without TLS (prior knowledge), this many streams on each connection, as a
    /// load balancer speaking HTTP/2 to Confide would carry them.
    Http2(usize),
}

/// Opens one stream per session on `base`, each read by its own task that notes in
/// `arrivals` when each event arrives; returns once every stream has its first event.
async fn open_streams(
    base: &str,
    sessions: &[(String, String)],
    arrivals: &Arrivals,
) -> Vec<tokio::task::JoinHandle<()>> {
    open_streams_over(base, sessions, arrivals, Transport::Http1).await
}

async fn open_streams_over(
    base: &str,
    sessions: &[(String, String)],
    arrivals: &Arrivals,
    transport: Transport,
) -> Vec<tokio::task::JoinHandle<()>> {
    let opened = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut shared = None;
    for (i, (person, token)) in sessions.iter().enumerate() {
        let (base, person, token) = (base.to_string(), person.clone(), token.clone());
        let (arrivals, opened) = (arrivals.clone(), opened.clone());
        let http = match transport {
            Transport::Http1 => reqwest::Client::new(),
            Transport::Http2(per_connection) => {
                if i % per_connection == 0 {
                    shared = Some(
                        reqwest::Client::builder()
                            .http2_prior_knowledge()
                            .build()
                            .unwrap(),
                    );
                }
                shared.clone().expect("made at the first stream")
            }
        };
        tasks.push(tokio::spawn(async move {
            let resp = http
                .get(format!("{base}/api/v1/events"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.bytes_stream();
            let mut first = true;
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if !block.contains("event: state") {
                        continue;
                    }
                    if first {
                        first = false;
                        opened.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let at = Instant::now();
                        arrivals
                            .lock()
                            .unwrap()
                            .entry(person.clone())
                            .or_default()
                            .push(at);
                    }
                }
            }
        }));
    }
    while opened.load(Ordering::SeqCst) < sessions.len() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tasks
}

/// How many stream readers are still running (every stream stayed open).
fn node_a_streams(readers: &[tokio::task::JoinHandle<()>]) -> usize {
    readers.iter().filter(|r| !r.is_finished()).count()
}

/// One send: to whom, when the request started, when it was acknowledged.
struct Sent {
    to: String,
    started: Instant,
    acked: Instant,
}

/// `sends` messages from 32 senders through `base`, the n-th to `recipients[n % len]`;
/// returns them and the rate.
async fn send(
    http: &reqwest::Client,
    base: &str,
    senders: &[String],
    recipients: &[String],
    sends: usize,
) -> (Vec<Sent>, f64) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for token in senders {
        let (http, base, next, token) =
            (http.clone(), base.to_string(), next.clone(), token.clone());
        let recipients = recipients.to_vec();
        tasks.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= sends {
                    break;
                }
                let to = recipients[n % recipients.len()].clone();
                let t0 = Instant::now();
                let resp = http
                    .post(format!("{base}/api/v1/threads"))
                    .bearer_auth(&token)
                    .json(&json!({"to": [format!("user:{to}")], "subject": "Bench", "body": "Hello, could we move our appointment to Thursday afternoon?"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());
                sent.push(Sent { to, started: t0, acked: Instant::now() });
            }
            sent
        });
    }
    let mut all = Vec::new();
    while let Some(s) = tasks.join_next().await {
        all.extend(s.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (all, rate)
}

/// For each send, the first event on its recipient's stream at or after the send began:
/// the latency from its acknowledgement (0 when the event came first). Sends whose event
/// never came count as missing.
async fn latencies(sent: &[Sent], arrivals: &Arrivals) -> (Vec<f64>, usize) {
    // Let the last events arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrivals = arrivals.lock().unwrap();
    let mut out = Vec::new();
    let mut missing = 0;
    for s in sent {
        let first = arrivals
            .get(&s.to)
            .and_then(|times| times.iter().find(|t| **t >= s.started));
        match first {
            Some(t) => out.push(t.saturating_duration_since(s.acked).as_secs_f64()),
            None => missing += 1,
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (out, missing)
}

fn row(name: &str, latencies: &[f64], missing: usize) {
    println!(
        "| {name} | {} | {missing} | {:.1} ms | {:.1} ms |",
        latencies.len(),
        percentile(latencies, 0.5) * 1e3,
        percentile(latencies, 0.99) * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let backend = Backend::parse(&args.backend).expect("sqlite or postgres");
    let database = Database::create(backend, &data_dir).await;
    let url = database.url.clone();
    println!(
        "backend: {}; {} open streams; {} sends per phase; {CONCURRENCY} senders",
        args.backend, args.streams, args.sends
    );
    let store = Store::open(&url, 4, 10_000).await.unwrap();
    let data = populate(
        &store,
        args.messages,
        |_| "Rescheduling next week".to_string(),
        |_, _| "Hello, could we move our appointment to Thursday afternoon?".to_string(),
        |_, _| None,
    )
    .await;
    let sessions = client_sessions(&store, &data, args.streams).await;
    store.close().await;
    let recipients: Vec<String> = sessions.iter().map(|(p, _)| p.clone()).collect();

    let streams = (args.streams + 500).to_string();
    let env = [
        ("CONFIDE__SERVER__HTTP2_BALANCERS", "[\"127.0.0.1\"]"),
        ("CONFIDE__SERVER__MAX_CONNECTIONS", streams.as_str()),
        (
            "CONFIDE__SERVER__MAX_CONNECTIONS_PER_ADDRESS",
            streams.as_str(),
        ),
    ];
    let node_a = Server::start_with(&url, &data_dir, &env);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let mut senders = Vec::new();
    for email in data.sender_emails.iter().take(CONCURRENCY) {
        senders.push(sign_in(&http, &node_a.base, email).await);
    }

    // Without streams, with them, and without again: the rate with streams is compared
    // with the mean of the two without, so that a database growing over the run favours
    // neither side.
    let (_, rate_before) = send(&http, &node_a.base, &senders, &recipients, args.sends).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Memory per stream: what a second stream for each of the first half of the people
    // adds (the same sessions and rows, so the database's caches do not grow with them);
    // those extra streams then close, and the other half opens.
    // Streams opened and closed first warm the database's caches for these people (on
    // SQLite each connection of the pool has its own page cache, and a session is looked up
    // on whichever connection is free, so it takes a few rounds).
    let half = sessions.len() / 2;
    for _ in 0..WARM_UP_ROUNDS {
        for r in open_streams(&node_a.base, &sessions[..half], &Arrivals::default()).await {
            r.abort();
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let arrivals = Arrivals::default();
    let mut readers = open_streams(&node_a.base, &sessions[..half], &arrivals).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_half = node_a.status_mb("VmRSS:");
    let heap_half = heap_in_use(&http, &node_a.base).await;
    let extra = open_streams(&node_a.base, &sessions[..half], &Arrivals::default()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = node_a.status_mb("VmRSS:");
    let heap_open = heap_in_use(&http, &node_a.base).await;
    for r in extra {
        r.abort();
    }
    // The baseline: as many idle HTTP connections, each after one request (`/healthz`),
    // kept alive. What they take is the HTTP server's own (hyper's buffers, the task).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap_closed = heap_in_use(&http, &node_a.base).await;
    let idle = idle_connections(&node_a.base, half).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap_idle = heap_in_use(&http, &node_a.base).await;
    drop(idle);
    // The same second stream for each of them, over HTTP/2 from a load balancer's few
    // connections: what a stream costs when it does not need a connection of its own.
    let over_h2 = Transport::Http2(H2_STREAMS_PER_CONNECTION);
    for r in open_streams_over(
        &node_a.base,
        &sessions[..half],
        &Arrivals::default(),
        over_h2,
    )
    .await
    {
        r.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap_before_h2 = heap_in_use(&http, &node_a.base).await;
    let extra = open_streams_over(
        &node_a.base,
        &sessions[..half],
        &Arrivals::default(),
        over_h2,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap_h2 = heap_in_use(&http, &node_a.base).await;
    for r in extra {
        r.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    readers.extend(open_streams(&node_a.base, &sessions[half..], &arrivals).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent, rate_with) = send(&http, &node_a.base, &senders, &recipients, args.sends).await;
    let (one_node, missing_one) = latencies(&sent, &arrivals).await;
    let open = node_a_streams(&readers);
    for r in readers {
        r.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, rate_after) = send(&http, &node_a.base, &senders, &recipients, args.sends).await;
    let rate_without = (rate_before + rate_after) / 2.0;
    let per_stream_kb = (rss_open - rss_half) * 1024.0 / half as f64;
    let heap_per_stream_kb = (heap_open - heap_half) / 1024.0 / half as f64;
    let heap_per_idle_kb = (heap_idle - heap_closed) / 1024.0 / half as f64;
    let heap_per_h2_stream_kb = (heap_h2 - heap_before_h2) / 1024.0 / half as f64;

    println!();
    println!("| what | events | missing | p50 | p99 |");
    println!("|---|---|---|---|---|");
    row(
        "send acknowledged → event on the stream, one node",
        &one_node,
        missing_one,
    );

    let mut two_nodes = None;
    if backend == Backend::Postgres {
        // Streams on node B (its own data directory), sends through node A.
        let dir_b = dir.path().join("node-b");
        std::fs::create_dir_all(&dir_b).unwrap();
        // Nodes of a cluster share the server secret and the key-encryption key.
        for key in ["secret.key", "confide.key"] {
            std::fs::copy(data_dir.join(key), dir_b.join(key)).unwrap();
        }
        let node_b = Server::start_with(&url, &dir_b, &env);
        let arrivals = Arrivals::default();
        let readers = open_streams(&node_b.base, &sessions, &arrivals).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (sent, _) = send(&http, &node_a.base, &senders, &recipients, args.sends).await;
        let (across, missing) = latencies(&sent, &arrivals).await;
        row(
            "send acknowledged on node A → event on node B",
            &across,
            missing,
        );
        for r in readers {
            r.abort();
        }
        two_nodes = Some(percentile(&across, 0.99) * 1e3);
    }

    println!();
    println!(
        "send rate without streams: {rate_without:.0} msg/s (before {rate_before:.0}, after {rate_after:.0})"
    );
    println!(
        "send rate with {} streams open: {rate_with:.0} msg/s",
        args.streams
    );
    println!("with / without: {:.2}", rate_with / rate_without);
    println!(
        "server heap in use: {:.1} MB with {half} streams open, {:.1} MB with {} (a second for each): {heap_per_stream_kb:.1} KB per stream",
        heap_half / 1048576.0,
        heap_open / 1048576.0,
        2 * half
    );
    println!(
        "server heap in use per idle HTTP connection kept alive (baseline): {heap_per_idle_kb:.1} KB; a stream takes {:.1} KB more",
        heap_per_stream_kb - heap_per_idle_kb
    );
    println!(
        "server heap in use per stream over HTTP/2 ({H2_STREAMS_PER_CONNECTION} streams per connection, the connections' share included): {heap_per_h2_stream_kb:.1} KB"
    );
    println!(
        "server resident memory: {rss_half:.0} MB with {half} streams open, {rss_open:.0} MB with {}: {per_stream_kb:.1} KB per stream; {open} open while sending",
        2 * half
    );
    println!("p99 one node: {:.1} ms", percentile(&one_node, 0.99) * 1e3);
    if let Some(p99) = two_nodes {
        println!("p99 across two nodes: {p99:.1} ms");
    }
    assert_eq!(missing_one, 0, "every send's event reached its stream");
    drop(node_a);
    drop(database);
}

/// The server's heap in use, in bytes, from its `/metrics` (served to this machine).
async fn heap_in_use(http: &reqwest::Client, base: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("confide_heap_in_use_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("confide_heap_in_use_bytes in /metrics")
}

/// `n` connections to the server at `base`, each having had one answer (`GET /healthz`)
/// and kept alive, doing nothing.
async fn idle_connections(base: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = c.read(&mut buf).await.unwrap();
            assert!(read > 0, "the server closed an idle connection early");
            answer.extend_from_slice(&buf[..read]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "/healthz answers 200");
        connections.push(c);
    }
    connections
}
