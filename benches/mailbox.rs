//! Mailbox benchmark (issue 3): on 1,000,000 messages in 100,000 threads across 10,000
//! people, measures
//! - sending through the HTTP API with 32 concurrent senders, next to a baseline that
//!   inserts the same rows with plain SQL, one durable transaction per message, at the
//!   same concurrency, in the same run;
//! - the first page of the Inbox for a person with 100,000 threads and one with 1,000;
//! - the server's peak memory (VmHWM of the server process).
//!
//! Run: `cargo bench --bench mailbox -- sqlite` or `-- postgres` (PostgreSQL needs
//! CONFIDE_TEST_POSTGRES_URL). Options: `--messages N` (default 1000000), `--sends N`
//! (default 20000). The server is the release `confide` binary, run as its own process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confide::auth::PasswordHasher;
use confide::store::Store;
use serde_json::{json, Value};
use sqlx::{Any, Connection};

const PASSWORD: &str = "violet-harbor-quantum-88";
const PEOPLE: usize = 10_000;
const CONCURRENCY: usize = 32;

fn id() -> String {
    data_encoding::BASE32_DNSSEC.encode(&rand::random::<[u8; 16]>())
}

struct Args {
    backend: String,
    messages: usize,
    sends: usize,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        messages: 1_000_000,
        sends: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "sqlite" | "postgres" => a.backend = arg,
            "--messages" => {
                a.messages = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--messages N")
            }
            "--sends" => a.sends = it.next().and_then(|v| v.parse().ok()).expect("--sends N"),
            _ => {}
        }
    }
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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

/// Inserts rows in multi-row statements of `rows_per_statement`.
async fn insert_rows(
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

struct Dataset {
    heavy_email: String,
    light_email: String,
    sender_emails: Vec<String>,
    client_ids: Vec<String>,
    practice_id: String,
    staff_ids: Vec<String>,
}

/// Loads the dataset with plain SQL: people, threads, participants, messages.
async fn populate(store: &Store, messages: usize) -> Dataset {
    let started = Instant::now();
    let hash = PasswordHasher::new(1)
        .unwrap()
        .hash(PASSWORD)
        .await
        .unwrap();
    let practice_id = id();
    let mut conn = store.write().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO practices (id, slug, name, created_at) VALUES ($1, 'bench', 'Bench', $2)",
    )
    .bind(&practice_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
    // 1 heavy provider (every thread), 1 light front-office person (1,000 threads), 98 more
    // staff (the senders come from them), and clients.
    let mut people = Vec::new();
    let mut person = |role: &str, name: String| {
        let pid = id();
        let email = format!("{}@bench.example", name.to_lowercase().replace(' ', "."));
        people.push(vec![
            json!(pid.clone()),
            json!(practice_id.clone()),
            json!(role),
            json!("active"),
            json!(name),
            json!(email.clone()),
            json!(email.clone()),
            json!(1),
            json!(0),
            json!(hash.clone()),
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
    let mut tx = conn.begin().await.unwrap();
    insert_rows(
        &mut tx,
        "people",
        &[
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
        ],
        &people,
    )
    .await;
    tx.commit().await.unwrap();

    let threads = messages / 10;
    let body = "Hello, could we move our appointment to Thursday afternoon? Any time after two works for me. Thanks!";
    let html = format!("<p>{body}</p>\n");
    let batch = 2_000;
    for start in (0..threads).step_by(batch) {
        let mut t_rows = Vec::new();
        let mut p_rows = Vec::new();
        let mut m_rows = Vec::new();
        for t in start..(start + batch).min(threads) {
            let tid = id();
            let at = now - ((threads - t) as i64) * 60_000;
            let client = &client_ids[t % client_ids.len()];
            t_rows.push(vec![
                json!(tid.clone()),
                json!(practice_id.clone()),
                json!("Rescheduling next week"),
                json!(heavy.clone()),
                json!(1),
                json!(""),
                json!(10),
                json!(10),
                json!(body),
                json!(at - 600_000),
                json!(at),
            ]);
            for (who, unread, sent) in [(&heavy, 0, 1), (client, 1, 0)] {
                p_rows.push(vec![
                    json!(tid.clone()),
                    json!(who.clone()),
                    json!(practice_id.clone()),
                    json!(null),
                    json!("inbox"),
                    json!(unread),
                    json!(sent),
                    json!(at),
                ]);
            }
            if t % (threads / 1000).max(1) == 0 {
                p_rows.push(vec![
                    json!(tid.clone()),
                    json!(light.clone()),
                    json!(practice_id.clone()),
                    json!(null),
                    json!("inbox"),
                    json!(1),
                    json!(0),
                    json!(at),
                ]);
            }
            for seq in 0..10 {
                let sender = if seq % 2 == 0 { &heavy } else { client };
                m_rows.push(vec![
                    json!(id()),
                    json!(tid.clone()),
                    json!(practice_id.clone()),
                    json!(sender.clone()),
                    json!(seq),
                    json!(body),
                    json!(html.clone()),
                    json!(at - (10 - seq) * 60_000),
                ]);
            }
        }
        let mut tx = conn.begin().await.unwrap();
        insert_rows(
            &mut tx,
            "threads",
            &[
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
            ],
            &t_rows,
        )
        .await;
        insert_rows(
            &mut tx,
            "thread_participants",
            &[
                "thread_id",
                "person_id",
                "practice_id",
                "via_group",
                "folder",
                "unread",
                "has_sent",
                "last_activity_at",
            ],
            &p_rows,
        )
        .await;
        insert_rows(
            &mut tx,
            "messages",
            &[
                "id",
                "thread_id",
                "practice_id",
                "sender_id",
                "seq",
                "body",
                "body_html",
                "created_at",
            ],
            &m_rows,
        )
        .await;
        tx.commit().await.unwrap();
    }
    if store.backend() == confide::store::Backend::Postgres {
        sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
    }
    println!(
        "loaded {threads} threads, {messages} messages, {PEOPLE} people in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Dataset {
        heavy_email,
        light_email,
        sender_emails,
        client_ids,
        practice_id,
        staff_ids,
    }
}

/// The baseline: the rows a send writes (thread, two participants, message, event, audit
/// event with its chain head), by plain SQL, one durable transaction per message.
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

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(database_url: &str, data_dir: &std::path::Path) -> Server {
        let config = data_dir.join("bench.toml");
        std::fs::write(&config, "[auth]\nmax_failures_per_address = 1000000\n").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_confide"))
            .arg("serve")
            .env("CONFIDE_CONFIG", &config)
            .env("CONFIDE__SERVER__BIND", "127.0.0.1:0")
            .env("CONFIDE__DATABASE__URL", database_url)
            .env("CONFIDE__DATABASE__MAX_CONNECTIONS", "16")
            .env("CONFIDE__STORAGE__DATA_DIR", data_dir)
            .env("CONFIDE__LOG__LEVEL", "warn")
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

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
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

async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> String {
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

async fn http_sends(http: &reqwest::Client, server: &Server, data: &Dataset, sends: usize) -> f64 {
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
    summary("HTTP API: POST /api/v1/threads", all, started.elapsed())
}

async fn first_page(http: &reqwest::Client, base: &str, email: &str, label: &str) -> f64 {
    let token = sign_in(http, base, email).await;
    let url = format!("{base}/api/v1/threads?folder=inbox&limit=50");
    for _ in 0..50 {
        http.get(&url).bearer_auth(&token).send().await.unwrap();
    }
    let mut latencies = Vec::new();
    for _ in 0..1000 {
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
    println!("| first Inbox page (50), {label} | 1000 | | {p50:.2} ms | {p99:.2} ms |");
    p99
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut pg_admin = None;
    let url = match args.backend.as_str() {
        "postgres" => {
            let admin =
                std::env::var("CONFIDE_TEST_POSTGRES_URL").expect("CONFIDE_TEST_POSTGRES_URL");
            let name = format!("confide_bench_{}", hex::encode(rand::random::<[u8; 4]>()));
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin
                .split('?')
                .next()
                .unwrap()
                .rsplit_once('/')
                .unwrap()
                .0
                .to_string();
            pg_admin = Some((admin, name.clone()));
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", data_dir.join("confide.db").display()),
    };
    println!(
        "backend: {}; {} messages; {} sends per phase; {CONCURRENCY} concurrent",
        args.backend, args.messages, args.sends
    );
    let store = Store::open(&url, CONCURRENCY as u32, 10_000).await.unwrap();
    let data = populate(&store, args.messages).await;
    println!();
    println!("| what | requests | rate | p50 | p99 |");
    println!("|---|---|---|---|---|");
    let base_rate = baseline(&store, &data, args.sends).await;
    store.close().await;

    let server = Server::start(&url, &data_dir);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let api_rate = http_sends(&http, &server, &data, args.sends).await;
    // The sends queued a notification each; the sender drains them meanwhile.
    let busy_heavy = first_page(
        &http,
        &server.base,
        &data.heavy_email,
        "person with 100,000+ threads, while notifications drain",
    )
    .await;
    let reader = Store::open(&url, 2, 10_000).await.unwrap();
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
    let heavy = first_page(
        &http,
        &server.base,
        &data.heavy_email,
        "person with 100,000+ threads",
    )
    .await;
    let light = first_page(
        &http,
        &server.base,
        &data.light_email,
        "person with 1,000 threads",
    )
    .await;
    println!();
    println!("first page p99 while notifications drain: {busy_heavy:.2} ms");
    println!();
    println!("API / baseline send rate: {:.2}", api_rate / base_rate);
    println!("first page p99, heavy / light: {:.2}", heavy / light);
    println!("server peak memory (VmHWM): {:.0} MB", server.peak_rss_mb());
    drop(server);
    if let Some((admin, name)) = pg_admin {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}
