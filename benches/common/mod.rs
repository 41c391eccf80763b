//! What the benchmarks share: the 1,000,000-message dataset loaded with plain SQL, a
//! database of their own, the release server as its own process, and percentiles.

#![allow(dead_code)] // each benchmark uses a part of this

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confide::auth::PasswordHasher;
use confide::store::Store;
use serde_json::{json, Value};
use sqlx::{Any, Connection};

pub const PASSWORD: &str = "violet-harbor-quantum-88";
pub const PEOPLE: usize = 10_000;

/// A benchmark's command line: `sqlite` or `postgres` (SQLite without either), options
/// `--name N` and flags `--name`; anything else (cargo's own `--bench`) is ignored.
pub struct CommandLine {
    pub backend: String,
    args: Vec<String>,
}

impl CommandLine {
    pub fn read() -> CommandLine {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let backend = args
            .iter()
            .find(|a| *a == "sqlite" || *a == "postgres")
            .cloned()
            .unwrap_or_else(|| "sqlite".into());
        CommandLine { backend, args }
    }

    /// `--name N`, or `default` without it.
    pub fn number(&self, name: &str, default: usize) -> usize {
        match self.args.iter().position(|a| a == name) {
            Some(i) => self
                .args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} N")),
            None => default,
        }
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }
}

pub fn id() -> String {
    data_encoding::BASE32_DNSSEC.encode(&rand::random::<[u8; 16]>())
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Inserts rows in multi-row statements.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) {
    let per = (30_000 / columns.len()).min(500);
    for chunk in rows.chunks(per) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 1;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let ph: Vec<String> = (0..columns.len()).map(|k| format!("${}", n + k)).collect();
            n += columns.len();
            sql.push('(');
            sql.push_str(&ph.join(", "));
            sql.push(')');
        }
        let mut q = sqlx::query::<Any>(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Value::String(s) => q.bind(s.clone()),
                    Value::Number(n) => q.bind(n.as_i64().unwrap()),
                    Value::Null => q.bind(None::<String>),
                    other => panic!("unsupported {other}"),
                };
            }
        }
        q.execute(&mut *conn).await.expect("bulk insert");
    }
}

/// The one blob the loaded attachments share.
const BLOB: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub struct Dataset {
    pub heavy_id: String,
    pub light_id: String,
    pub heavy_email: String,
    pub light_email: String,
    pub sender_emails: Vec<String>,
    pub client_ids: Vec<String>,
    pub practice_id: String,
    pub staff_ids: Vec<String>,
}

/// Loads the dataset with plain SQL: people, threads, participants, messages. Thread `t`
/// has `subject(t)`; its message `seq` says `body(t, seq)` (Markdown that is one paragraph).
/// Thread `t` was last active `threads - t` minutes ago. Message `seq` of thread `t` carries
/// a file named `attachment(t, seq)`, if that is one (all share one blob row: no bytes).
pub async fn populate(
    store: &Store,
    messages: usize,
    subject: impl Fn(usize) -> String,
    mut body: impl FnMut(usize, usize) -> String,
    attachment: impl Fn(usize, usize) -> Option<String>,
) -> Dataset {
    let started = Instant::now();
    let hash = PasswordHasher::new(1)
        .unwrap()
        .hash(PASSWORD)
        .await
        .unwrap();
    let practice_id = id();
    let mut conn = store.write().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    insert_practice(&mut conn, &practice_id, now).await;
    let people = people(&practice_id, &hash, now);
    let mut tx = conn.begin().await.unwrap();
    insert_rows(&mut tx, "people", &PEOPLE_COLUMNS, &people.rows).await;
    tx.commit().await.unwrap();

    let threads = messages / 10;
    let load = Load {
        practice_id: &practice_id,
        heavy: &people.heavy,
        light: &people.light,
        client_ids: &people.client_ids,
        threads,
        now,
    };
    let mut content = Content {
        subject: &subject,
        body: &mut body,
        attachment: &attachment,
    };
    insert_threads(&mut conn, &load, &mut content).await;
    if store.backend() == confide::store::Backend::Postgres {
        sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
    }
    println!(
        "loaded {threads} threads, {messages} messages, {PEOPLE} people in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Dataset {
        heavy_id: people.heavy,
        light_id: people.light,
        heavy_email: people.heavy_email,
        light_email: people.light_email,
        sender_emails: people.sender_emails,
        client_ids: people.client_ids,
        practice_id,
        staff_ids: people.staff_ids,
    }
}

const PEOPLE_COLUMNS: [&str; 12] = [
    "id",
    "practice_id",
    "role",
    "status",
    "name",
    "email",
    "email_norm",
    "consent_email",
    "consent_sms",
    "password_hash",
    "created_at",
    "updated_at",
];

const THREAD_COLUMNS: [&str; 11] = [
    "id",
    "practice_id",
    "subject",
    "started_by",
    "client_count",
    "groups",
    "message_count",
    "next_seq",
    "preview",
    "created_at",
    "last_activity_at",
];

const PARTICIPANT_COLUMNS: [&str; 8] = [
    "thread_id",
    "person_id",
    "practice_id",
    "via_group",
    "folder",
    "unread",
    "has_sent",
    "last_activity_at",
];

const MESSAGE_COLUMNS: [&str; 8] = [
    "id",
    "thread_id",
    "practice_id",
    "sender_id",
    "seq",
    "body",
    "body_html",
    "created_at",
];

const ATTACHMENT_COLUMNS: [&str; 11] = [
    "id",
    "practice_id",
    "uploader_id",
    "sha256",
    "name",
    "size",
    "content_type",
    "message_id",
    "thread_id",
    "pending_since",
    "created_at",
];

/// Inserts the benchmark's practice, `bench`.
async fn insert_practice(conn: &mut sqlx::AnyConnection, practice_id: &str, now: i64) {
    sqlx::query(
        "INSERT INTO practices (id, slug, name, created_at) VALUES ($1, 'bench', 'Bench', $2)",
    )
    .bind(practice_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// The practice's people, as rows of [`PEOPLE_COLUMNS`], and who is who among them.
struct People {
    rows: Vec<Vec<Value>>,
    heavy: String,
    heavy_email: String,
    light: String,
    light_email: String,
    staff_ids: Vec<String>,
    sender_emails: Vec<String>,
    client_ids: Vec<String>,
}

/// 1 heavy provider (every thread), 1 light front-office person (1,000 threads), 98 more
/// staff (the senders come from them), and clients, all active with the password `hash`.
fn people(practice_id: &str, hash: &str, now: i64) -> People {
    let mut rows = Vec::new();
    let mut person = |role: &str, name: String| {
        let pid = id();
        let email = format!("{}@bench.example", name.to_lowercase().replace(' ', "."));
        rows.push(vec![
            json!(pid.clone()),
            json!(practice_id),
            json!(role),
            json!("active"),
            json!(name),
            json!(email.clone()),
            json!(email.clone()),
            json!(1),
            json!(0),
            json!(hash),
            json!(now),
            json!(now),
        ]);
        (pid, email)
    };
    let (heavy, heavy_email) = person("provider", "Heavy Provider".into());
    let (light, light_email) = person("front_office", "Light Front".into());
    let mut staff_ids = Vec::new();
    let mut sender_emails = Vec::new();
    for i in 0..98 {
        let (pid, email) = person("provider", format!("Staff {i}"));
        staff_ids.push(pid);
        sender_emails.push(email);
    }
    let client_ids: Vec<String> = (0..PEOPLE - 100)
        .map(|i| person("client", format!("Client {i}")).0)
        .collect();
    People {
        rows,
        heavy,
        heavy_email,
        light,
        light_email,
        staff_ids,
        sender_emails,
        client_ids,
    }
}

/// What every loaded thread shares: the practice, the heavy and light participants, the
/// clients taking turns, the number of threads and the time of loading.
struct Load<'a> {
    practice_id: &'a str,
    heavy: &'a str,
    light: &'a str,
    client_ids: &'a [String],
    threads: usize,
    now: i64,
}

/// The caller's texts: a thread's subject, a message's body, an attachment's name.
struct Content<'c> {
    subject: &'c dyn Fn(usize) -> String,
    body: &'c mut dyn FnMut(usize, usize) -> String,
    attachment: &'c dyn Fn(usize, usize) -> Option<String>,
}

/// One thread being loaded: its id, number, last activity and client.
struct Thread<'a> {
    id: String,
    t: usize,
    at: i64,
    client: &'a str,
}

/// Rows for a batch of threads, to insert together.
#[derive(Default)]
struct ThreadRows {
    threads: Vec<Vec<Value>>,
    participants: Vec<Vec<Value>>,
    messages: Vec<Vec<Value>>,
    attachments: Vec<Vec<Value>>,
}

impl ThreadRows {
    /// Adds thread `t` with its participants, its ten messages and their attachments.
    fn add_thread(&mut self, load: &Load, content: &mut Content, t: usize) {
        let thread = Thread {
            id: id(),
            t,
            at: load.now - ((load.threads - t) as i64) * 60_000,
            client: &load.client_ids[t % load.client_ids.len()],
        };
        let at = thread.at;
        self.threads.push(vec![
            json!(thread.id.clone()),
            json!(load.practice_id),
            json!((content.subject)(t)),
            json!(load.heavy),
            json!(1),
            json!(""),
            json!(10),
            json!(10),
            json!((content.body)(t, 0)),
            json!(at - 600_000),
            json!(at),
        ]);
        self.add_participants(load, &thread);
        self.add_messages(load, content, &thread);
    }

    /// The heavy provider (has sent) and the client (unread) are in every thread; the light
    /// front-office person (unread) in one thread of every `threads / 1000`.
    fn add_participants(&mut self, load: &Load, thread: &Thread) {
        let (tid, at) = (&thread.id, thread.at);
        for (who, unread, sent) in [(load.heavy, 0, 1), (thread.client, 1, 0)] {
            self.participants.push(vec![
                json!(tid.clone()),
                json!(who),
                json!(load.practice_id),
                json!(null),
                json!("inbox"),
                json!(unread),
                json!(sent),
                json!(at),
            ]);
        }
        if thread.t % (load.threads / 1000).max(1) == 0 {
            self.participants.push(vec![
                json!(tid.clone()),
                json!(load.light),
                json!(load.practice_id),
                json!(null),
                json!("inbox"),
                json!(1),
                json!(0),
                json!(at),
            ]);
        }
    }

    /// Ten messages, a minute apart, sent in turn by the heavy provider and the client,
    /// each with its attachment if the caller names one.
    fn add_messages(&mut self, load: &Load, content: &mut Content, thread: &Thread) {
        let (t, tid, at) = (thread.t, &thread.id, thread.at);
        for seq in 0..10 {
            let text = (content.body)(t, seq as usize);
            let html = format!("<p>{text}</p>\n");
            let sender = if seq % 2 == 0 {
                load.heavy
            } else {
                thread.client
            };
            let message_id = id();
            if let Some(name) = (content.attachment)(t, seq as usize) {
                self.attachments.push(vec![
                    json!(id()),
                    json!(load.practice_id),
                    json!(sender),
                    json!(BLOB),
                    json!(name),
                    json!(1000),
                    json!("application/pdf"),
                    json!(message_id.clone()),
                    json!(tid.clone()),
                    json!(at),
                    json!(at),
                ]);
            }
            self.messages.push(vec![
                json!(message_id),
                json!(tid.clone()),
                json!(load.practice_id),
                json!(sender),
                json!(seq),
                json!(text),
                json!(html),
                json!(at - (10 - seq) * 60_000),
            ]);
        }
    }
}

/// Inserts the threads in batches of 2,000, one transaction each.
async fn insert_threads(
    conn: &mut sqlx::AnyConnection,
    load: &Load<'_>,
    content: &mut Content<'_>,
) {
    let batch = 2_000;
    for start in (0..load.threads).step_by(batch) {
        let mut rows = ThreadRows::default();
        for t in start..(start + batch).min(load.threads) {
            rows.add_thread(load, content, t);
        }
        insert_thread_rows(conn, &rows, load.now).await;
    }
}

/// Inserts a batch of threads in one transaction, with the shared blob row if any of
/// them has attachments.
async fn insert_thread_rows(conn: &mut sqlx::AnyConnection, rows: &ThreadRows, now: i64) {
    let mut tx = conn.begin().await.unwrap();
    insert_rows(&mut tx, "threads", &THREAD_COLUMNS, &rows.threads).await;
    let participants = &rows.participants;
    insert_rows(
        &mut tx,
        "thread_participants",
        &PARTICIPANT_COLUMNS,
        participants,
    )
    .await;
    insert_rows(&mut tx, "messages", &MESSAGE_COLUMNS, &rows.messages).await;
    if !rows.attachments.is_empty() {
        sqlx::query(
            "INSERT INTO blobs (sha256, size, created_at) VALUES ($1, 1000, $2) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(BLOB)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        insert_rows(
            &mut tx,
            "attachments",
            &ATTACHMENT_COLUMNS,
            &rows.attachments,
        )
        .await;
    }
    tx.commit().await.unwrap();
}

/// The release `confide` binary, configured for the benchmark's database and data directory.
/// `confide reindex`: what it printed and how long it took.
pub fn reindex(url: &str, data_dir: &Path) -> (String, Duration) {
    let started = Instant::now();
    let out = confide(url, data_dir)
        .arg("reindex")
        .output()
        .expect("run confide reindex");
    assert!(
        out.status.success(),
        "reindex: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        started.elapsed(),
    )
}

pub fn confide(database_url: &str, data_dir: &Path) -> Command {
    let config = data_dir.join("bench.toml");
    // The benchmarks sign in, upload and send far beyond one person's quotas.
    std::fs::write(
        &config,
        "[auth]\nmax_failures_per_address = 1000000\n\
         [limits]\npending_upload_max_bytes = 107374182400\nuploads_per_hour = 1000000\n",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_confide"));
    command
        .env("CONFIDE_CONFIG", &config)
        .env("CONFIDE__SERVER__BIND", "127.0.0.1:0")
        .env("CONFIDE__DATABASE__URL", database_url)
        .env("CONFIDE__DATABASE__MAX_CONNECTIONS", "16")
        .env("CONFIDE__STORAGE__DATA_DIR", data_dir)
        .env("CONFIDE__LOG__LEVEL", "warn");
    command
}

/// Creates the practice `bench` with the admin `admin@bench.example` (password
/// [`PASSWORD`]) through the command line.
pub fn create_practice(database_url: &str, data_dir: &Path) {
    let mut setup = confide(database_url, data_dir)
        .args([
            "admin",
            "create-practice",
            "--slug",
            "bench",
            "--name",
            "Bench",
            "--admin-email",
            "admin@bench.example",
            "--admin-name",
            "Avery Admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("create practice");
    setup
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(setup.wait().unwrap().success(), "create-practice failed");
}

/// The release server, as its own process.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(database_url: &str, data_dir: &Path) -> Server {
        Self::start_with(database_url, data_dir, &[])
    }

    /// As [`Server::start`], with `env` (configuration overrides) on top.
    pub fn start_with(database_url: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut command = confide(database_url, data_dir);
        command.envs(env.iter().copied());
        let mut child = command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start confide");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_string();
        Server { child, base }
    }

    /// The server's peak resident memory (VmHWM), in MiB.
    pub fn peak_rss_mb(&self) -> f64 {
        self.status_mb("VmHWM:")
    }

    /// A memory figure of the server's from /proc (`VmHWM:`, `VmRSS:`…), in MiB.
    pub fn status_mb(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new database of `backend` ("sqlite" or "postgres") with its data directory, in a
/// temporary directory that goes when the first value is dropped.
pub async fn fresh_database(backend: &str) -> (tempfile::TempDir, std::path::PathBuf, Database) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    // As the server wants it (it would make it so, and say so).
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(&data_dir, private).unwrap();
    let database = Database::create(
        Backend::parse(backend).expect("sqlite or postgres"),
        &data_dir,
    )
    .await;
    (dir, data_dir, database)
}

/// Waits until the server's search index answers (it answers 503 while the first one is
/// built), at most `limit`.
pub async fn wait_until_search_ready(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    limit: std::time::Duration,
) {
    let started = Instant::now();
    loop {
        let resp = http
            .post(format!("{base}/api/v1/search"))
            .bearer_auth(token)
            .json(&json!({"q": "ready"}))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            return;
        }
        assert_eq!(resp.status(), 503);
        assert!(started.elapsed() < limit, "search never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> String {
    let resp: Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"practice": "bench", "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["token"]
        .as_str()
        .unwrap_or_else(|| panic!("sign in {email}: {resp}"))
        .to_string()
}

#[path = "../../tests/common/database.rs"]
mod database;

pub use database::{Backend, Database};
