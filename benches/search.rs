//! Search benchmark (issue 5): on 1,000,000 messages in 100,000 threads across 10,000
//! people, with text drawn from a fixed vocabulary (Zipf-distributed words after one of a
//! few stock sentences, so words, pairs and phrases match from hundreds to tens of
//! thousands of messages), measures
//! - **raw tantivy**: indexing the same documents, built in memory, into a fresh index
//!   (the baseline for a rebuild);
//! - **`confide reindex`**: the full rebuild from the database, as the command line runs it;
//! - **queries**: p50/p99 of `POST /api/v1/search` for one-word, two-word, phrase and
//!   operator queries, for a person who reads every message and for one who reads 10,000,
//!   next to the same queries run directly against the same index in this process (parse,
//!   the same tantivy query ranked by the searcher's own documents' statistics, the first
//!   20 candidates with their ids: what the server asks of the index for a page of 20), and
//!   the same again ranked by the whole index's statistics (the cost of that privacy);
//! - **indexing while sending**: 32 concurrent senders, and a probe that sends a message
//!   with a word of its own and times how long until a search finds it;
//! - **reindex while serving**: searches keep answering while `confide reindex` runs.
//!
//! Run: `cargo bench --bench search -- sqlite` or `-- postgres` (PostgreSQL needs
//! CONFIDE_TEST_POSTGRES_URL). Options: `--messages N` (default 1000000), `--sends N`
//! (default 10000), `--reps N` (default 200 per query), `--keep` (keep the data
//! directory and the database).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{id, percentile, populate, sign_in, Backend, Database, Dataset, Server};
use confide::search::query::{self, Viewer};
use confide::search::Active;
use confide::store::Store;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tantivy::collector::Count;
use tantivy::TantivyDocument;

const CONCURRENCY: usize = 32;

struct Args {
    backend: String,
    messages: usize,
    sends: usize,
    reps: usize,
    /// Keep the data directory (and the SQLite database) for a look afterwards.
    keep: bool,
}

fn args() -> Args {
    let cli = common::CommandLine::read();
    Args {
        messages: cli.number("--messages", 1_000_000),
        sends: cli.number("--sends", 10_000),
        reps: cli.number("--reps", 200),
        keep: cli.flag("--keep"),
        backend: cli.backend,
    }
}

/// Stock sentences: every body starts with one, so their word pairs make phrases that
/// match about one message in sixteen.
const SENTENCES: &[&str] = &[
    "Could we move my appointment to next week?",
    "My insurance claim was denied again.",
    "Please send a refill to my pharmacy.",
    "The blood test results came back today.",
    "I will be running late on Thursday.",
    "Can you confirm my appointment on Friday morning?",
    "The billing statement shows a charge I do not recognise.",
    "Thank you for the session yesterday.",
    "Our next session is on Tuesday at three.",
    "I have a question about the new medication.",
    "The intake forms are attached as requested.",
    "My daughter has a fever and will miss school.",
    "The referral letter has not arrived yet.",
    "Could you call me back this afternoon?",
    "The copay amount looks different from last month.",
    "I would like to update my emergency contact.",
];

const SUBJECTS: &[&str] = &[
    "Rescheduling next week",
    "Billing question",
    "Prescription refill",
    "Test results",
    "Insurance paperwork",
    "Session notes",
    "Running late",
    "Forms for intake",
    "Referral",
    "Medication side effects",
    "Emergency contact",
    "School note",
];

const FILES: &[&str] = &[
    "lab-results.pdf",
    "insurance-card.png",
    "intake-form.docx",
    "referral letter.pdf",
    "receipt.jpg",
];

/// Frequent real words first, so that they sit high in the Zipf ranking.
const WORDS: &str = "the and to of a in for is on that with you it be this are was have \
    at from we can will please my your our about would could should time today tomorrow \
    week morning afternoon evening doctor nurse office clinic visit appointment session \
    call phone email message form forms letter note notes question answer help thanks \
    thank insurance claim refill pharmacy prescription medication dose tablets blood test \
    results lab scan referral billing statement invoice payment copay balance deductible \
    schedule reschedule cancel confirm monday tuesday wednesday thursday friday saturday \
    sunday january february march april may june july august september october november \
    december therapy therapist counselling sleep anxiety stress pain headache fever cough \
    allergy vaccine school work family daughter son mother father partner child";

struct Corpus {
    words: Vec<String>,
    /// Cumulative Zipf weights (exponent 1) of `words`.
    cumulative: Vec<f64>,
}

impl Corpus {
    fn new() -> Corpus {
        let mut words: Vec<String> = WORDS.split_whitespace().map(String::from).collect();
        // The long tail: made-up words of two and three syllables.
        let syllables = [
            "ba", "ko", "ri", "tum", "sel", "van", "dor", "mi", "pex", "lu", "gra", "hen", "zo",
            "fi", "quin", "sta",
        ];
        for a in syllables {
            for b in syllables {
                words.push(format!("{a}{b}"));
                for c in syllables {
                    words.push(format!("{a}{b}{c}"));
                }
            }
        }
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Corpus { words, cumulative }
    }

    /// The body of message `seq` of thread `t`: the same every time it is asked for.
    fn body(&self, t: usize, seq: usize) -> String {
        let mut rng = rand::rngs::StdRng::seed_from_u64((t * 16 + seq) as u64);
        let mut out = SENTENCES[rng.random_range(0..SENTENCES.len())].to_string();
        let total = *self.cumulative.last().unwrap();
        for _ in 0..rng.random_range(8..24) {
            let x = rng.random_range(0.0..total);
            let r = self.cumulative.partition_point(|&c| c < x);
            out.push(' ');
            out.push_str(&self.words[r.min(self.words.len() - 1)]);
        }
        out.push('.');
        out
    }

    fn subject(t: usize) -> String {
        SUBJECTS[(t * 7919) % SUBJECTS.len()].to_string()
    }

    /// One message in a hundred carries a file.
    fn attachment(t: usize, seq: usize) -> Option<String> {
        ((t * 10 + seq) % 100 == 7).then(|| FILES[t % FILES.len()].to_string())
    }
}

fn categories(recent_day: &str) -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "one word",
            vec!["insurance".into(), "refill".into(), "headache".into()],
        ),
        (
            "two words",
            vec![
                "insurance claim".into(),
                "pharmacy thursday".into(),
                "blood results".into(),
            ],
        ),
        (
            "phrase",
            vec![
                "\"insurance claim\"".into(),
                "\"blood test results\"".into(),
                "\"next week\"".into(),
            ],
        ),
        (
            "operators",
            vec![
                "subject:billing".into(),
                "to:me refill".into(),
                "insurance -claim".into(),
                format!("after:{recent_day} thursday"),
                "in:inbox pharmacy".into(),
                "has:attachment".into(),
            ],
        ),
    ]
}

/// The raw-tantivy baseline: the same documents, built in this process, into a fresh
/// index with the same schema, writer memory and one commit.
fn raw_tantivy(dir: &Path, data: &Dataset, corpus: &Corpus, messages: usize) -> Duration {
    let (schema, f) = confide::search::schema();
    std::fs::create_dir_all(dir).unwrap();
    let index = tantivy::Index::create_in_dir(dir, schema).unwrap();
    // Plain words (the analyzer alone), where Confide's index holds keyed hashes of them.
    index
        .tokenizers()
        .register(confide::search::BLIND, confide::search::analyzer());
    let threads = messages / 10;
    let bodies: Vec<String> = (0..threads * 10)
        .map(|n| corpus.body(n / 10, n % 10))
        .collect();
    let started = Instant::now();
    let mut writer: tantivy::IndexWriter = index.writer(64 * 1024 * 1024).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for t in 0..threads {
        let (tid, client) = (id(), &data.client_ids[t % data.client_ids.len()]);
        let client_name = format!("Client {}", t % data.client_ids.len());
        let subject = Corpus::subject(t);
        for seq in 0..10 {
            let mut doc = TantivyDocument::default();
            let (from, to, from_name, to_name) = if seq % 2 == 0 {
                (
                    &data.heavy_id,
                    client,
                    "Heavy Provider",
                    client_name.as_str(),
                )
            } else {
                (
                    client,
                    &data.heavy_id,
                    client_name.as_str(),
                    "Heavy Provider",
                )
            };
            doc.add_text(f.message_id, id());
            doc.add_text(f.thread_id, &tid);
            doc.add_text(f.practice_id, &data.practice_id);
            doc.add_text(f.from_id, from);
            doc.add_text(f.subject, &subject);
            doc.add_text(f.body, &bodies[t * 10 + seq]);
            doc.add_text(f.from_name, from_name);
            doc.add_text(f.from_name_public, from_name);
            doc.add_text(f.reader, &data.heavy_id);
            doc.add_text(f.reader, client);
            doc.add_text(f.to_id, to);
            doc.add_text(f.to_name, to_name);
            doc.add_text(f.to_name_public, to_name);
            if let Some(name) = Corpus::attachment(t, seq) {
                doc.add_text(f.attachment_name, name);
                doc.add_text(f.has_attachment, "yes");
            }
            doc.add_i64(f.created_at, now - (threads - t) as i64 * 60_000);
            writer.add_document(doc).unwrap();
        }
    }
    writer.commit().unwrap();
    writer.wait_merging_threads().unwrap();
    started.elapsed()
}

struct Latencies {
    api: Vec<f64>,
    direct: Vec<f64>,
    /// Direct, ranked by the whole index's statistics (what search did before it ranked by
    /// the searcher's own documents only): the cost of that privacy.
    whole_index: Vec<f64>,
}

fn p(latencies: &mut [f64], q: f64) -> f64 {
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    percentile(latencies, q) * 1e3
}

async fn api_search(http: &reqwest::Client, base: &str, token: &str, q: &str) -> Value {
    let resp = http
        .post(format!("{base}/api/v1/search"))
        .bearer_auth(token)
        .json(&json!({"q": q, "limit": 20}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{q}: {body}");
    body
}

/// Runs every query of a category through the API and directly, `reps` times each.
#[allow(clippy::too_many_arguments)]
async fn measure(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    active: &Active,
    viewer: &Viewer<'_>,
    queries: &[String],
    reps: usize,
    label: &str,
) -> Latencies {
    let mut out = Latencies {
        api: Vec::new(),
        direct: Vec::new(),
        whole_index: Vec::new(),
    };
    let searcher = active.reader.searcher();
    for q in queries {
        let parsed = confide::domain::search::parse(q).unwrap();
        let built = query::build(&active.fields, viewer, &parsed);
        let matches = searcher.search(&*built, &Count).unwrap();
        let first = api_search(http, base, token, q).await;
        println!(
            "  {label}: {q:<28} index matches {matches:>7}, first page {} hits",
            first["hits"].as_array().map(Vec::len).unwrap_or(0)
        );
        for _ in 0..10 {
            api_search(http, base, token, q).await;
        }
        for _ in 0..reps {
            let t0 = Instant::now();
            api_search(http, base, token, q).await;
            out.api.push(t0.elapsed().as_secs_f64());
        }
        out.direct.extend(direct_latencies(active, viewer, q, reps));
        out.whole_index
            .extend(whole_index_latencies(active, viewer, q, reps));
    }
    out
}

/// `q` run directly against the index `reps + 10` times, ranked by the searcher's own
/// documents' statistics as the API ranks; the first 10 (the warm-up) are left out.
fn direct_latencies(active: &Active, viewer: &Viewer<'_>, q: &str, reps: usize) -> Vec<f64> {
    let mut latencies = Vec::new();
    for _ in 0..reps + 10 {
        let t0 = Instant::now();
        let parsed = confide::domain::search::parse(q).unwrap();
        let built = query::build(&active.fields, viewer, &parsed);
        let searcher = active.reader.searcher();
        // The same per-reader statistics as the API: a baseline that skipped them would
        // rank by the whole index's.
        let statistics = query::ReaderStatistics::new(active, &searcher, viewer.person_id);
        let page = query::run(
            active,
            &searcher,
            &statistics,
            &*built,
            parsed.has_text(),
            0,
            20,
        )
        .unwrap();
        std::hint::black_box(page);
        latencies.push(t0.elapsed().as_secs_f64());
    }
    latencies.drain(..10);
    latencies
}

/// `q` run directly against the index `reps + 10` times, ranked by the whole index's
/// statistics; the first 10 (the warm-up) are left out.
fn whole_index_latencies(active: &Active, viewer: &Viewer<'_>, q: &str, reps: usize) -> Vec<f64> {
    let mut latencies = Vec::new();
    for _ in 0..reps + 10 {
        let t0 = Instant::now();
        let parsed = confide::domain::search::parse(q).unwrap();
        let built = query::build(&active.fields, viewer, &parsed);
        let searcher = active.reader.searcher();
        let page = query::run(
            active,
            &searcher,
            &searcher,
            &*built,
            parsed.has_text(),
            0,
            20,
        )
        .unwrap();
        std::hint::black_box(page);
        latencies.push(t0.elapsed().as_secs_f64());
    }
    latencies.drain(..10);
    latencies
}

/// Sends `sends` messages from 32 senders while a probe measures how soon a new message is
/// found. Returns (send rate, probe lags in seconds, seconds until the last is found).
async fn send_while_probing(
    http: &reqwest::Client,
    base: &str,
    data: &Dataset,
    corpus: &Arc<Corpus>,
    sends: usize,
) -> (f64, Vec<f64>, f64) {
    let mut tokens = Vec::new();
    for email in data.sender_emails.iter().take(CONCURRENCY) {
        tokens.push(sign_in(http, base, email).await);
    }
    let prober = sign_in(http, base, &data.heavy_email).await;
    let probe_to = format!("user:{}", data.client_ids[0]);
    let done = Arc::new(AtomicBool::new(false));
    let probing = spawn_prober(http, base, &prober, &probe_to, &done);
    let started = Instant::now();
    send_concurrently(http, base, tokens, data, corpus, sends).await;
    let sending = started.elapsed();
    done.store(true, Ordering::SeqCst);
    // Everything sent before it is indexed before it: the indexer follows the log in order.
    let sends_done = Instant::now();
    probe(http.clone(), base.to_string(), prober, probe_to).await;
    let all_found = sends_done.elapsed().as_secs_f64();
    let lags = probing.await.unwrap();
    (sends as f64 / sending.as_secs_f64(), lags, all_found)
}

/// Sends a message with a word of its own to `to` and returns the seconds until a search
/// finds it (panics after a minute).
async fn probe(http: reqwest::Client, base: String, token: String, to: String) -> f64 {
    let word: String = (0..12)
        .map(|_| (b'a' + rand::random::<u8>() % 26) as char)
        .collect();
    let word = format!("zq{word}");
    let resp = http
        .post(format!("{base}/api/v1/threads"))
        .bearer_auth(&token)
        .json(&json!({"to": [to], "subject": "Probe", "body": format!("Probe {word}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sent = Instant::now();
    loop {
        let page = api_search(&http, &base, &token, &word).await;
        if !page["hits"].as_array().unwrap().is_empty() {
            return sent.elapsed().as_secs_f64();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(60),
            "a probe was never found"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Probes every 200 ms until `done` is set; the task returns the lags measured.
fn spawn_prober(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    to: &str,
    done: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<f64>> {
    let (http, base, token, to, done) = (
        http.clone(),
        base.to_string(),
        token.to_string(),
        to.to_string(),
        done.clone(),
    );
    tokio::spawn(async move {
        let mut lags = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if done.load(Ordering::SeqCst) {
                break;
            }
            lags.push(probe(http.clone(), base.clone(), token.clone(), to.clone()).await);
        }
        lags
    })
}

/// Sends `sends` new threads to the clients in turn, one sender per token at once, with
/// subjects and bodies from the corpus; returns when all are sent.
async fn send_concurrently(
    http: &reqwest::Client,
    base: &str,
    tokens: Vec<String>,
    data: &Dataset,
    corpus: &Arc<Corpus>,
    sends: usize,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (http, base, next, clients, corpus) = (
            http.clone(),
            base.to_string(),
            next.clone(),
            data.client_ids.clone(),
            corpus.clone(),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= sends {
                    break;
                }
                let resp = http
                    .post(format!("{base}/api/v1/threads"))
                    .bearer_auth(&token)
                    .json(&json!({
                        "to": [format!("user:{}", clients[n % clients.len()])],
                        "subject": Corpus::subject(n),
                        "body": corpus.body(2_000_000 + n, 0),
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
            }
        });
    }
    while let Some(sender) = tasks.join_next().await {
        sender.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let database = Database::create(
        Backend::parse(&args.backend).expect("sqlite or postgres"),
        &data_dir,
    )
    .await;
    let url = database.url.clone();
    println!(
        "backend: {}; {} messages; {} sends; {} repetitions per query",
        args.backend, args.messages, args.sends, args.reps
    );
    let corpus = Arc::new(Corpus::new());
    let store = Store::open(&url, CONCURRENCY as u32, 10_000).await.unwrap();
    let data = populate(
        &store,
        args.messages,
        Corpus::subject,
        |t, seq| corpus.body(t, seq),
        Corpus::attachment,
    )
    .await;
    store.close().await;
    measure_rebuilds(dir.path(), &url, &data_dir, &data, &corpus, args.messages);

    let server = Server::start(&url, &data_dir);
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let heavy_token = sign_in(&http, &base, &data.heavy_email).await;
    common::wait_until_search_ready(&http, &base, &heavy_token, Duration::from_secs(60)).await;
    let root = data_dir.join("search");
    let active = Active::open(&root, &confide::search::read_current(&root).unwrap()).unwrap();
    let light_token = sign_in(&http, &base, &data.light_email).await;
    let key = practice_key(&url, &data_dir, &data.practice_id).await;
    let viewers = viewers(&data, &key, args.messages, &heavy_token, light_token);
    let rows = query_rows(&http, &base, &active, &viewers, args.reps).await;
    print_query_table(rows);

    let (rate, lags, all_found) =
        send_while_probing(&http, &base, &data, &corpus, args.sends).await;
    print_sending(args.sends, rate, lags, all_found);
    reindex_while_serving(&http, &base, heavy_token, &url, &data_dir).await;
    println!("server peak memory (VmHWM): {:.0} MB", server.peak_rss_mb());
    drop(server);
    cold_start(&http, &url, &data_dir, &data.heavy_email).await;
    if args.keep {
        println!("kept {}", dir.keep().display());
    } else {
        drop(database);
    }
}

/// Starts the server again on the whole database, the page cache dropped first where the
/// machine allows it: how long until `/readyz` answers 200, and until a search does.
async fn cold_start(http: &reqwest::Client, url: &str, data_dir: &Path, email: &str) {
    let _ = std::process::Command::new("sync").status();
    let cache = match std::fs::write("/proc/sys/vm/drop_caches", "3") {
        Ok(()) => "page cache dropped",
        Err(_) => "page cache warm (dropping it was refused)",
    };
    let started = Instant::now();
    let server = Server::start(url, data_dir);
    let listening = started.elapsed();
    loop {
        let ready = http.get(format!("{}/readyz", server.base)).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready = started.elapsed();
    let token = sign_in(http, &server.base, email).await;
    common::wait_until_search_ready(http, &server.base, &token, Duration::from_secs(60)).await;
    let searching = started.elapsed();
    println!(
        "cold start ({cache}): listening after {:.0} ms, /readyz 200 after {:.0} ms (goal < 1000 ms), first search after {:.0} ms; resident {:.0} MB",
        listening.as_secs_f64() * 1e3,
        ready.as_secs_f64() * 1e3,
        searching.as_secs_f64() * 1e3,
        server.status_mb("VmRSS:")
    );
}

/// The raw-tantivy baseline (in `dir/raw`, removed afterwards) and `confide reindex` on
/// the same messages, each printed with its rate.
fn measure_rebuilds(
    dir: &Path,
    url: &str,
    data_dir: &Path,
    data: &Dataset,
    corpus: &Corpus,
    messages: usize,
) {
    let raw = raw_tantivy(&dir.join("raw"), data, corpus, messages);
    let _ = std::fs::remove_dir_all(dir.join("raw"));
    println!(
        "raw tantivy: {} documents in {:.1} s ({:.0} docs/s)",
        messages,
        raw.as_secs_f64(),
        messages as f64 / raw.as_secs_f64()
    );
    let (said, took) = common::reindex(url, data_dir);
    println!(
        "confide reindex: {said} ({:.1} s with start-up; {:.0} docs/s; {:.2}× the raw time)",
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64(),
        took.as_secs_f64() / raw.as_secs_f64()
    );
}

/// The practice's keys, as the server unwrapped them (queries made here must hash their
/// words as the server's do).
async fn practice_key(
    url: &str,
    data_dir: &Path,
    practice_id: &str,
) -> Arc<confide::store::keys::PracticeKey> {
    let kek = std::fs::read_to_string(data_dir.join("confide.key"))
        .ok()
        .and_then(|text| confide::crypto::Kek::from_hex(&text));
    let keys = confide::store::keys::Keyring::new(kek);
    let store = Store::open(url, 1, 10_000).await.unwrap();
    let mut conn = store.read().await.unwrap();
    let key = keys.practice(&mut conn, practice_id).await.unwrap();
    drop(conn);
    store.close().await;
    key
}

/// The two searchers measured: who they are, their session token and their viewer.
fn viewers<'d>(
    data: &'d Dataset,
    key: &'d confide::store::keys::PracticeKey,
    messages: usize,
    heavy_token: &str,
    light_token: String,
) -> [(String, String, Viewer<'d>); 2] {
    [
        (
            format!("reads all {messages} messages"),
            heavy_token.to_string(),
            Viewer {
                person_id: &data.heavy_id,
                name: "Heavy Provider",
                practice_id: &data.practice_id,
                is_client: false,
                key,
            },
        ),
        (
            "reads 10,000 messages".to_string(),
            light_token,
            Viewer {
                person_id: &data.light_id,
                name: "Light Front",
                practice_id: &data.practice_id,
                is_client: false,
                key,
            },
        ),
    ]
}

/// Measures every category of query for every viewer; one table row each.
async fn query_rows(
    http: &reqwest::Client,
    base: &str,
    active: &Active,
    viewers: &[(String, String, Viewer<'_>)],
    reps: usize,
) -> Vec<String> {
    let recent_day = chrono::Utc::now()
        .date_naive()
        .checked_sub_days(chrono::Days::new(7))
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let mut rows = Vec::new();
    for (who, token, viewer) in viewers {
        for (category, queries) in categories(&recent_day) {
            let label = format!("{category}, {who}");
            let mut l = measure(http, base, token, active, viewer, &queries, reps, &label).await;
            let (a50, a99, d50, d99) = (
                p(&mut l.api, 0.5),
                p(&mut l.api, 0.99),
                p(&mut l.direct, 0.5),
                p(&mut l.direct, 0.99),
            );
            let (w50, w99) = (p(&mut l.whole_index, 0.5), p(&mut l.whole_index, 0.99));
            rows.push(format!(
                "| {category} ({} queries), person who {who} | {a50:.2} ms | {a99:.2} ms | {d50:.2} ms | {d99:.2} ms | {:.2} | {w50:.2} ms | {w99:.2} ms | {:.2} |",
                queries.len(),
                a99 / d99,
                d99 / w99
            ));
        }
    }
    rows
}

/// Prints the query table: its head, then `rows`.
fn print_query_table(rows: Vec<String>) {
    println!();
    println!(
        "| queries | API p50 | API p99 | direct p50 | direct p99 | API / direct p99 | \
         whole-index statistics p50 | p99 | own / whole-index p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

/// Prints what [`send_while_probing`] measured.
fn print_sending(sends: usize, rate: f64, mut lags: Vec<f64>, all_found: f64) {
    println!();
    let indexed = sends as f64 / (sends as f64 / rate + all_found);
    println!(
        "sending while indexing: {} messages at {rate:.0} msg/s from {CONCURRENCY} senders; \
         all indexed at {indexed:.0} msg/s (first send to last findable); \
         {} probes found after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         everything sent was findable {all_found:.2} s after the last send",
        sends,
        lags.len(),
        p(&mut lags, 0.5),
        p(&mut lags, 0.99),
        p(&mut lags, 1.0),
    );
}

/// Rebuild while the server answers: runs `confide reindex` while searching every 20 ms,
/// and prints how the searches fared.
async fn reindex_while_serving(
    http: &reqwest::Client,
    base: &str,
    token: String,
    url: &str,
    data_dir: &Path,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let searching = {
        let (http, base, token, stop) = (http.clone(), base.to_string(), token, stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                api_search(&http, &base, &token, "insurance claim").await;
                latencies.push(t0.elapsed().as_secs_f64());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };
    let (said, took) = {
        let (url, data_dir) = (url.to_string(), data_dir.to_path_buf());
        tokio::task::spawn_blocking(move || common::reindex(&url, &data_dir))
            .await
            .unwrap()
    };
    stop.store(true, Ordering::SeqCst);
    let mut during = searching.await.unwrap();
    println!(
        "confide reindex while serving: {said} ({:.1} s); {} searches meanwhile, all 200, p50 {:.2} ms, p99 {:.2} ms",
        took.as_secs_f64(),
        during.len(),
        p(&mut during, 0.5),
        p(&mut during, 0.99)
    );
}
