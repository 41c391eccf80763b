//! Attachment upload benchmark (issue 4): 20 concurrent uploads of distinct 10 MiB files
//! through the HTTP API to the release `confide` binary (its own process, SQLite, local
//! attachment directory), next to a baseline that copies the same 20 files to the same disk
//! with the same durability (each file synced) at the same concurrency, in the same run.
//! Also the server's resident-memory growth (VmHWM after the uploads minus VmRSS before).
//!
//! Run: `cargo bench --bench attachments` (options: `--rounds N`, default 5).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{create_practice, sign_in, Backend, Database, Server};

const FILES: usize = 20;
const SIZE: usize = 10 * 1024 * 1024;

/// 20 distinct text files of exactly 10 MiB (text is on the default allow-list).
fn make_sources(dir: &Path, round: usize) -> Vec<PathBuf> {
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("source-{round}-{i}.txt"));
            let mut bytes = vec![0u8; SIZE];
            let mut x: u64 = rand::random();
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = b'a' + (x % 26) as u8;
            }
            std::fs::write(&path, &bytes).unwrap();
            path
        })
        .collect()
}

/// The baseline: the same files copied to the same disk, each synced, 20 at once.
async fn plain_copy(sources: &[PathBuf], target: &Path) -> Duration {
    std::fs::create_dir_all(target).unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, source) in sources.iter().enumerate() {
        let (source, dest) = (source.clone(), target.join(format!("copy-{i}")));
        tasks.spawn(async move {
            tokio::fs::copy(&source, &dest).await.unwrap();
            tokio::fs::File::open(&dest)
                .await
                .unwrap()
                .sync_all()
                .await
                .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    started.elapsed()
}

/// A second baseline: the same copy through user space (read and write with a 64 KiB
/// buffer, then sync), as a plain program would do it.
async fn plain_copy_userspace(sources: &[PathBuf], target: &Path) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    std::fs::create_dir_all(target).unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, source) in sources.iter().enumerate() {
        let (source, dest) = (source.clone(), target.join(format!("user-{i}")));
        tasks.spawn(async move {
            let mut from = tokio::fs::File::open(&source).await.unwrap();
            let mut to = tokio::fs::File::create(&dest).await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = from.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                to.write_all(&buf[..n]).await.unwrap();
            }
            to.sync_all().await.unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    started.elapsed()
}

/// 20 concurrent uploads, each streamed from its file.
async fn api_uploads(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sources: &[PathBuf],
) -> Duration {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (http, url, token, source) = (
            http.clone(),
            format!("{base}/api/v1/attachments"),
            token.to_string(),
            source.clone(),
        );
        tasks.spawn(async move {
            let file = tokio::fs::File::open(&source).await.unwrap();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::wrap_stream(stream),
                SIZE as u64,
            )
            .file_name("notes.txt")
            .mime_str("text/plain")
            .unwrap();
            let form = reqwest::multipart::Form::new().part("file", part);
            let resp = http
                .post(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    started.elapsed()
}

fn mb_per_s(d: Duration) -> f64 {
    (FILES * SIZE) as f64 / 1_048_576.0 / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let rounds = rounds_option();
    // Under target/, so that the copy, the sources and the server share one disk.
    let root = tempfile::Builder::new()
        .prefix("confide-bench-attachments-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let data_dir = root.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let database = Database::create(Backend::Sqlite, &data_dir).await;
    create_practice(&database.url, &data_dir);
    let server = Server::start(&database.url, &data_dir);
    let http = reqwest::Client::new();
    let token = sign_in(&http, &server.base, "admin@bench.example").await;
    warm_up(&http, &server.base, &token, root.path()).await;
    let rss_before = server.status_mb("VmRSS:");

    println!(
        "{FILES} concurrent uploads of {} MiB each, {rounds} rounds (SQLite, local directory)",
        SIZE / 1_048_576
    );
    println!("round  copy MB/s  user-space copy MB/s  API MB/s  ratio (copy)  ratio (user-space)");
    let mut rates = Rates::default();
    for round in 0..rounds {
        rates
            .measure_round(root.path(), round, &http, &server.base, &token)
            .await;
    }
    let peak = server.status_mb("VmHWM:");
    rates.report();
    println!(
        "server memory: {rss_before:.1} MB resident before, {peak:.1} MB peak after; growth {:.1} MB (goal < 64 MB)",
        peak - rss_before
    );
}

/// `--rounds N` from the command line; 5 without it.
fn rounds_option() -> usize {
    common::CommandLine::read().number("--rounds", 5)
}

/// Signs the practice's administrator in; returns the session token.
/// Warm-up: one small upload, so that the baseline memory includes a served request.
async fn warm_up(http: &reqwest::Client, base: &str, token: &str, root: &Path) {
    let warm = root.join("warm.txt");
    std::fs::write(&warm, b"warm-up\n").unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"warm-up file\n".to_vec()).file_name("w.txt"),
    );
    let resp = http
        .post(format!("{base}/api/v1/attachments"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
}

/// The rates (MB/s) and ratios measured in each round.
#[derive(Default)]
struct Rates {
    copies: Vec<f64>,
    users: Vec<f64>,
    apis: Vec<f64>,
    ratios: Vec<f64>,
    user_ratios: Vec<f64>,
}

impl Rates {
    /// One round: fresh sources, both copies and the API uploads, one line printed; the
    /// sources and copies are removed afterwards.
    async fn measure_round(
        &mut self,
        root: &Path,
        round: usize,
        http: &reqwest::Client,
        base: &str,
        token: &str,
    ) {
        let sources = make_sources(root, round);
        let copy = plain_copy(&sources, &root.join(format!("copies-{round}"))).await;
        let user = plain_copy_userspace(&sources, &root.join(format!("copies-{round}"))).await;
        let api = api_uploads(http, base, token, &sources).await;
        let (c, u, a) = (mb_per_s(copy), mb_per_s(user), mb_per_s(api));
        println!(
            "{round:>5}  {c:>9.1}  {u:>20.1}  {a:>8.1}  {:>12.2}  {:>18.2}",
            a / c,
            a / u
        );
        self.users.push(u);
        self.user_ratios.push(a / u);
        self.copies.push(c);
        self.apis.push(a);
        self.ratios.push(a / c);
        for s in sources {
            std::fs::remove_file(s).unwrap();
        }
        std::fs::remove_dir_all(root.join(format!("copies-{round}"))).unwrap();
    }

    /// Prints the medians of every round.
    fn report(mut self) {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        println!(
            "median: copy {:.1} MB/s, user-space copy {:.1} MB/s, API {:.1} MB/s; ratio {:.2} to the copy, {:.2} to the user-space copy (goal >= 0.50)",
            median(&mut self.copies),
            median(&mut self.users),
            median(&mut self.apis),
            median(&mut self.ratios),
            median(&mut self.user_ratios)
        );
    }
}
