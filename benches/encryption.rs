//! What encryption at rest costs (issue 17): the same commit on two databases loaded
//! alike, one server with `encryption.enabled = false` and one with encryption on, both
//! running, measured in rounds; in each round every kind of measurement runs on one side
//! and then on the other, the first side alternating from round to round, so that both
//! see the machine alike. The figures are the medians of the rounds:
//! - sending through the API (32 concurrent senders): rate, p50, p99;
//! - the first Inbox page of a person with many threads: p50, p99;
//! - searches (a word, a phrase, a word without another): p50, p99;
//! - uploads of 10 MiB files (4 at a time): MB/s;
//! - how long the first start with encryption takes to seal the loaded data (the
//!   migration of an existing database);
//! - in this process, what sealing and opening one short value costs, and hashing one
//!   search token.
//!
//! Run: `cargo bench --bench encryption -- sqlite` or `-- postgres` (PostgreSQL needs
//! CONFIDE_TEST_POSTGRES_URL). Options: `--messages N` (default 100000), `--rounds N`
//! (default 5), and per round and side `--sends N` (in all, default 5000), `--uploads N`
//! (default 100), `--reps N` (requests per latency, default 300).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{percentile, populate, sign_in, Dataset, Server};
use confide::store::Store;
use serde_json::json;

const CONCURRENCY: usize = 32;
const UPLOAD_BYTES: usize = 10 * 1024 * 1024;
const DAYS: [&str; 5] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
const QUERIES: [&str; 3] = [
    "thursday",
    "\"appointment to Thursday\"",
    "appointment -friday",
];

struct Args {
    backend: String,
    messages: usize,
    sends: usize,
    uploads: usize,
    reps: usize,
    rounds: usize,
}

/// p50 and p99 of latencies in seconds, in milliseconds.
fn p50_p99(mut latencies: Vec<f64>) -> (f64, f64) {
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3,
    )
}

/// One side's figures in one round.
#[derive(Clone, Copy, Default)]
struct Figures {
    send_rate: f64,
    send: (f64, f64),
    page: (f64, f64),
    search: (f64, f64),
    upload_mb_s: f64,
}

/// A line of the table: what, which figure, its unit, the goal for on / off.
type Row = (
    &'static str,
    fn(&Figures) -> f64,
    &'static str,
    &'static str,
);

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `count` requests made by `CONCURRENCY` workers with `request(n)`; returns the rate and
/// the latencies.
async fn concurrently<F, Fut>(count: usize, workers: usize, request: F) -> (f64, Vec<f64>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (next, request) = (next.clone(), request.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    break;
                }
                let t0 = Instant::now();
                request(n).await;
                latencies.push(t0.elapsed().as_secs_f64());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    (count as f64 / started.elapsed().as_secs_f64(), all)
}

async fn sends(
    http: &reqwest::Client,
    base: &str,
    data: &Dataset,
    count: usize,
) -> (f64, Vec<f64>) {
    let mut tokens = Vec::new();
    for email in data.sender_emails.iter().take(CONCURRENCY) {
        tokens.push(sign_in(http, base, email).await);
    }
    let (tokens, clients) = (Arc::new(tokens), Arc::new(data.client_ids.clone()));
    let (http, url) = (http.clone(), format!("{base}/api/v1/threads"));
    concurrently(count, CONCURRENCY, move |n| {
        let (http, url, tokens, clients) =
            (http.clone(), url.clone(), tokens.clone(), clients.clone());
        async move {
            let resp = http
                .post(&url)
                .bearer_auth(&tokens[n % tokens.len()])
                .json(&json!({
                    "to": [format!("user:{}", clients[n % clients.len()])],
                    "subject": "Rescheduling",
                    "body": format!("Could we move our appointment to {} afternoon?", DAYS[n % 5]),
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                201,
                "{}",
                resp.text().await.unwrap_or_default()
            );
        }
    })
    .await
}

/// `reps` sequential GETs or POSTs, after 20 to warm up.
async fn repeat(reps: usize, request: impl Fn(usize) -> reqwest::RequestBuilder) -> Vec<f64> {
    for n in 0..20 {
        request(n).send().await.unwrap();
    }
    let mut latencies = Vec::with_capacity(reps);
    for n in 0..reps {
        let t0 = Instant::now();
        let resp = request(n).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        latencies.push(t0.elapsed().as_secs_f64());
    }
    latencies
}

async fn uploads(http: &reqwest::Client, base: &str, token: &str, count: usize) -> f64 {
    let line = b"Blood pressure 120/80, pulse 64, follow-up in six weeks.\n";
    let bytes: Arc<Vec<u8>> = Arc::new(line.iter().copied().cycle().take(UPLOAD_BYTES).collect());
    let (http, url, token) = (
        http.clone(),
        format!("{base}/api/v1/attachments"),
        token.to_string(),
    );
    let (rate, _) = concurrently(count, 4, move |_| {
        let (http, url, token, bytes) = (http.clone(), url.clone(), token.clone(), bytes.clone());
        async move {
            let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name("notes.txt")
                .mime_str("text/plain")
                .unwrap();
            let resp = http
                .post(&url)
                .bearer_auth(&token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                201,
                "{}",
                resp.text().await.unwrap_or_default()
            );
        }
    })
    .await;
    rate * UPLOAD_BYTES as f64 / 1_048_576.0
}

/// One side of the comparison: a server on its own database, loaded like the other's,
/// with encryption off or on, and its callers signed in.
struct Side {
    encrypted: bool,
    start: Duration,
    base: String,
    heavy: String,
    data: Dataset,
    server: Server,
    _database: common::Database,
    _dir: tempfile::TempDir,
}

impl Side {
    /// Loads a new database, starts the server on it (timing the start, which seals the
    /// loaded data when `encrypted`) and waits until its search index answers.
    async fn prepare(args: &Args, http: &reqwest::Client, encrypted: bool) -> Side {
        let (dir, data_dir, database) = common::fresh_database(&args.backend).await;
        let url = database.url.clone();
        let store = Store::open(&url, 4, 10_000).await.unwrap();
        let data = populate(
            &store,
            args.messages,
            |t| format!("Rescheduling visit {t}"),
            |t, seq| {
                format!(
                    "Hello, could we move our appointment to {} afternoon? Any time after two \
                     works for me.",
                    DAYS[(t + seq) % 5]
                )
            },
            |_, _| None,
        )
        .await;
        store.close().await;
        let started = Instant::now();
        let server = Server::start_with(
            &url,
            &data_dir,
            &[(
                "CONFIDE__ENCRYPTION__ENABLED",
                if encrypted { "true" } else { "false" },
            )],
        );
        let start = started.elapsed();
        let base = server.base.clone();
        let heavy = sign_in(http, &base, &data.heavy_email).await;
        common::wait_until_search_ready(http, &base, &heavy, Duration::from_secs(1800)).await;
        Side {
            encrypted,
            start,
            base,
            heavy,
            data,
            server,
            _database: database,
            _dir: dir,
        }
    }

    fn name(&self) -> &'static str {
        if self.encrypted {
            "on"
        } else {
            "off"
        }
    }
}

/// The measurements of one round, one kind after the other, each kind on both sides in
/// turn (`sides` in the order given), so that both see the machine alike.
async fn round(args: &Args, http: &reqwest::Client, sides: [&Side; 2]) -> [Figures; 2] {
    let rounds = args.rounds;
    let mut figures = [Figures::default(); 2];
    for (i, side) in sides.iter().enumerate() {
        let (rate, latencies) = sends(http, &side.base, &side.data, args.sends / rounds).await;
        figures[i].send_rate = rate;
        figures[i].send = p50_p99(latencies);
    }
    // Let both indexers take in what was just sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, side) in sides.iter().enumerate() {
        let page_url = format!("{}/api/v1/threads?folder=inbox&limit=50", side.base);
        let page = repeat(args.reps, |_| http.get(&page_url).bearer_auth(&side.heavy)).await;
        figures[i].page = p50_p99(page);
    }
    for (i, side) in sides.iter().enumerate() {
        let search_url = format!("{}/api/v1/search", side.base);
        let search = repeat(args.reps, |n| {
            http.post(&search_url)
                .bearer_auth(&side.heavy)
                .json(&json!({"q": QUERIES[n % QUERIES.len()]}))
        })
        .await;
        figures[i].search = p50_p99(search);
    }
    for (i, side) in sides.iter().enumerate() {
        figures[i].upload_mb_s = uploads(http, &side.base, &side.heavy, args.uploads).await;
    }
    figures
}

/// MB/s of the bare ciphers over 64 KiB chunks, in place: AES-256-GCM, then
/// XChaCha20-Poly1305 (the baselines for sealing files).
fn bare_cipher_rates() -> (f64, f64) {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::KeyInit;
    fn rate(mut seal: impl FnMut(&mut Vec<u8>)) -> f64 {
        let rounds = 20 * 160;
        let mut chunk = vec![b'x'; 64 * 1024];
        let started = Instant::now();
        for _ in 0..rounds {
            chunk.truncate(64 * 1024);
            seal(&mut chunk);
        }
        (rounds * 64 * 1024) as f64 / 1_048_576.0 / started.elapsed().as_secs_f64()
    }
    let aes = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let xchacha = chacha20poly1305::XChaCha20Poly1305::new(&[7u8; 32].into());
    let aes_rate = rate(|c| {
        aes.encrypt_in_place(&[1u8; 12].into(), b"", c).unwrap();
    });
    let xchacha_rate = rate(|c| {
        xchacha.encrypt_in_place(&[1u8; 24].into(), b"", c).unwrap();
    });
    (aes_rate, xchacha_rate)
}

/// MB/s sealing a 10 MiB file in memory, in 64 KiB pieces.
fn file_sealing_rate() -> f64 {
    use confide::crypto::files::FileSealer;
    use confide::crypto::{DataKey, DataKeyBytes};
    let key = DataKey::new(1, &DataKeyBytes::random());
    let plain = vec![b'x'; UPLOAD_BYTES];
    let mut out = Vec::with_capacity(UPLOAD_BYTES + UPLOAD_BYTES / 1000);
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        out.clear();
        let mut sealer = FileSealer::new(&key);
        for piece in plain.chunks(64 * 1024) {
            sealer.update(piece, &mut out);
        }
        sealer.finish(&mut out);
    }
    (rounds * UPLOAD_BYTES) as f64 / 1_048_576.0 / started.elapsed().as_secs_f64()
}

/// Microseconds per seal, per open of a 120-byte value, and per token hash.
fn value_costs() -> (f64, f64, f64) {
    use confide::crypto::{DataKey, DataKeyBytes, Field};
    let key = DataKey::new(1, &DataKeyBytes::random());
    let text = "Hello, could we move our appointment to Thursday afternoon? Any time after two \
                works for me. Thanks!";
    let n = 100_000;
    let started = Instant::now();
    let sealed: Vec<String> = (0..n)
        .map(|i| key.seal(Field::ThreadPreview, &i.to_string(), text))
        .collect();
    let seal = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    for (i, s) in sealed.iter().enumerate() {
        assert_eq!(
            key.open(Field::ThreadPreview, &i.to_string(), s)
                .unwrap()
                .len(),
            text.len()
        );
    }
    let open = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(key.index_token(DAYS[i % 5]));
    }
    let token = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    (seal, open, token)
}

#[tokio::main]
async fn main() {
    let cli = common::CommandLine::read();
    let args = Args {
        messages: cli.number("--messages", 100_000),
        sends: cli.number("--sends", 5_000),
        uploads: cli.number("--uploads", 100),
        reps: cli.number("--reps", 300),
        rounds: cli.number("--rounds", 5).max(1),
        backend: cli.backend,
    };
    println!(
        "backend: {}; {} messages loaded; {} rounds, each with {} sends ({CONCURRENCY} \
         senders), {} requests per latency and {} uploads of 10 MiB (4 at a time) per side",
        args.backend,
        args.messages,
        args.rounds,
        args.sends / args.rounds,
        args.reps,
        args.uploads
    );
    let (seal, open, token) = value_costs();
    println!(
        "one 120-byte value: seal {seal:.2} µs, open {open:.2} µs; one search token hashed: \
         {token:.2} µs"
    );
    let (aes, xchacha) = bare_cipher_rates();
    println!(
        "sealing a 10 MiB file in memory: {:.0} MB/s (one core); the bare ciphers over 64 KiB \
         chunks: AES-256-GCM {aes:.0} MB/s, XChaCha20-Poly1305 {xchacha:.0} MB/s",
        file_sealing_rate()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let off = Side::prepare(&args, &http, false).await;
    let on = Side::prepare(&args, &http, true).await;
    println!(
        "first start: {:.1} s with encryption off, {:.1} s with it on (sealing the {} loaded \
         messages)",
        off.start.as_secs_f64(),
        on.start.as_secs_f64(),
        args.messages
    );
    // Round by round, each side measured in turn, the first alternating.
    let mut all: Vec<[Figures; 2]> = Vec::new();
    for r in 0..args.rounds {
        let [a, b] = if r % 2 == 0 { [&off, &on] } else { [&on, &off] };
        let [fa, fb] = round(&args, &http, [a, b]).await;
        let (plain, sealed) = if r % 2 == 0 { (fa, fb) } else { (fb, fa) };
        println!(
            "round {} ({} first): send rate {:.2}, page p99 {:.2}, search p99 {:.2}, upload \
             {:.2} (on / off)",
            r + 1,
            a.name(),
            sealed.send_rate / plain.send_rate,
            sealed.page.1 / plain.page.1,
            sealed.search.1 / plain.search.1,
            sealed.upload_mb_s / plain.upload_mb_s
        );
        all.push([plain, sealed]);
    }
    println!(
        "server peak memory: {:.0} MiB off, {:.0} MiB on",
        off.server.peak_rss_mb(),
        on.server.peak_rss_mb()
    );
    let med = |side: usize, pick: fn(&Figures) -> f64| {
        median(all.iter().map(|f| pick(&f[side])).collect())
    };
    let range = |pick: fn(&Figures) -> f64| {
        let ratios: Vec<f64> = all.iter().map(|f| pick(&f[1]) / pick(&f[0])).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.2}–{hi:.2}")
    };
    println!();
    println!(
        "Medians of {} rounds, each side measured in turn, the first alternating:",
        args.rounds
    );
    println!();
    println!("| what | encryption off | encryption on | on / off | rounds' on / off | goal |");
    println!("|---|---|---|---|---|---|");
    let rows: [Row; 8] = [
        ("send rate", |f| f.send_rate, "msg/s", "≥ 0.90"),
        ("send p50", |f| f.send.0, "ms", ""),
        ("send p99", |f| f.send.1, "ms", ""),
        ("first page p50", |f| f.page.0, "ms", "≤ 1.10"),
        ("first page p99", |f| f.page.1, "ms", "≤ 1.10"),
        ("search p50", |f| f.search.0, "ms", ""),
        ("search p99", |f| f.search.1, "ms", ""),
        ("upload", |f| f.upload_mb_s, "MB/s", "≥ 0.80"),
    ];
    let mut summary = Vec::new();
    for (what, pick, unit, goal) in rows {
        let (plain, sealed) = (med(0, pick), med(1, pick));
        let digits = if unit == "ms" { 2 } else { 0 };
        println!(
            "| {what} | {plain:.digits$} {unit} | {sealed:.digits$} {unit} | {:.2} | {} | \
             {goal} |",
            sealed / plain,
            range(pick)
        );
        if !goal.is_empty() {
            summary.push(format!("{what} on/off: {:.2}", sealed / plain));
        }
    }
    println!();
    println!("{}", summary.join("; "));
}
