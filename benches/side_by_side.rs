//! Side by side with Dovecot (issue 18, goal 6): the same three operations on the same
//! machine in the same run, against the same mail.
//!
//! - **send** a message to one recipient: Confide's `POST /api/v1/threads` against
//!   Dovecot's LMTP delivery (one message per transaction), 32 concurrent senders (each
//!   with its own connection), recipients taken in turn from ten other mailboxes;
//! - **list** the first 50 of a mailbox with `--messages` (100,000) messages: Confide's
//!   `GET /api/v1/threads?folder=inbox&limit=50` against IMAP `SELECT INBOX` plus `FETCH`
//!   of the newest 50 (`UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE`) on a logged-in
//!   connection;
//! - **search** that mailbox's text: Confide's `POST /api/v1/search` (a page of 20 with
//!   snippets, the database's re-check, the audit row) against IMAP `UID SEARCH TEXT`
//!   answered from Dovecot's Xapian index (`fts_xapian`, `fts_enforced`), which returns
//!   every matching UID.
//!
//! The mail is generated once and loaded into both: Confide by plain SQL (`--messages`
//! messages in threads of ten, every one in the mailbox of one provider), Dovecot by
//! `doveadm import` of a Maildir, then `doveadm index` (the Xapian index; minutes for
//! 100,000 messages, so the loaded mailbox is kept in `target/tmp` and copied per run).
//! The two are measured in turn, each operation on one side then on the other, while the
//! other side idles.
//!
//! Durability: Confide's SQLite runs in WAL with `synchronous=FULL` (PostgreSQL: its
//! defaults): a send is acknowledged once its transaction (or its group's) is synced; its
//! search index catches up within half a second. Dovecot runs with its default
//! `mail_fsync = optimized`: the message, the map and the mailbox index logs are synced
//! before LMTP's final `250`; its Xapian index is updated after the reply.
//!
//! Needs Dovecot from Debian (`dovecot-imapd dovecot-lmtpd dovecot-fts-xapian`) and root
//! (Dovecot drops to `nobody` for the mail and to its own users for its services).
//!
//! Run: `cargo bench --bench side_by_side` (or `-- postgres`). Options: `--messages N`
//! (100000), `--sends N` (5000 per side), `--pages N` (1000), `--reps N` (200 searches per
//! query).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{percentile, populate, sign_in, Server};
use confide::store::Store;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CONCURRENCY: usize = 32;
/// The uid Dovecot keeps the mail as (`nobody`).
const MAIL_UID: u32 = 65534;
/// The queries, as IMAP `SEARCH` keys and as Confide's query language.
const QUERIES: [(&str, &str, &str); 4] = [
    ("one word", "TEXT insurance", "insurance"),
    (
        "two words",
        "TEXT insurance TEXT premium",
        "insurance premium",
    ),
    (
        "phrase",
        "TEXT \"insurance premium\"",
        "\"insurance premium\"",
    ),
    ("a rare word", "TEXT pharmacy", "pharmacy"),
];

struct Args {
    backend: String,
    messages: usize,
    sends: usize,
    pages: usize,
    reps: usize,
}

fn args() -> Args {
    let cli = common::CommandLine::read();
    Args {
        messages: cli.number("--messages", 100_000),
        sends: cli.number("--sends", 5_000),
        pages: cli.number("--pages", 1_000),
        reps: cli.number("--reps", 200),
        backend: cli.backend,
    }
}

// ---------------------------------------------------------------------------------------
// The mail both sides hold.

const VOCABULARY: &str = "appointment schedule thursday friday monday morning afternoon \
    evening week next last visit clinic office doctor nurse therapist session results \
    blood test lab report follow up question answer call phone email portal form consent \
    records history plan treatment dose medication tablet daily twice night sleep pain \
    headache back knee shoulder exercise walk diet water rest better worse same change \
    please thanks thank you hello hi regards best wishes kind note reminder confirm cancel \
    move reschedule available time date early late today tomorrow yesterday soon again \
    family child parent partner work school travel holiday weekend home car bus train \
    bill invoice payment balance claim copay receipt statement account card bank transfer \
    address number update new old letter fax copy send sent received check review sign \
    signature document file scan photo picture upload download attached attachment page \
    feeling tired anxious calm stress worry mood energy focus appetite weight pressure \
    heart rate sugar level normal high low range stable recent result summary notes";

/// A small, fixed generator, so that both sides get the same text.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Message `i`'s body: 20–30 words, with "insurance" and "premium" in 2% of messages
/// each, the phrase "insurance premium" in 0.5%, "refill" in 1% and "pharmacy" in 0.5%.
fn body(i: usize) -> String {
    let words: Vec<&str> = VOCABULARY.split_whitespace().collect();
    let mut rng = Lcg(i as u64 ^ 0x5eed);
    let n = 20 + rng.below(11) as usize;
    let mut out: Vec<&str> = (0..n)
        .map(|_| words[rng.below(words.len() as u64) as usize])
        .collect();
    for (word, per_thousand) in [
        ("insurance", 20),
        ("premium", 20),
        ("refill", 10),
        ("pharmacy", 5),
    ] {
        if rng.below(1000) < per_thousand {
            let at = rng.below(out.len() as u64) as usize;
            out.insert(at, word);
        }
    }
    if rng.below(1000) < 5 {
        let at = rng.below(out.len() as u64) as usize;
        out.insert(at, "premium");
        out.insert(at, "insurance");
    }
    let mut text = out.join(" ");
    text.push('.');
    text
}

fn subject(t: usize) -> String {
    format!("Question about my visit {t}")
}

// ---------------------------------------------------------------------------------------
// Figures.

struct Figures {
    label: String,
    latencies: Vec<f64>,
    elapsed: Duration,
}

impl Figures {
    fn new(label: &str, mut latencies: Vec<f64>, elapsed: Duration) -> Figures {
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Figures {
            label: label.into(),
            latencies,
            elapsed,
        }
    }

    fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q) * 1e3
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn row(what: &str, confide: &Figures, dovecot: &Figures, with_rate: bool) {
    let rate = |f: &Figures| {
        if with_rate {
            format!("{:.0}/s, ", f.rate())
        } else {
            String::new()
        }
    };
    println!(
        "| {what} | {}p50 {:.2} ms, p99 {:.2} ms | {}p50 {:.2} ms, p99 {:.2} ms | {:.2} |",
        rate(confide),
        confide.p(0.5),
        confide.p(0.99),
        rate(dovecot),
        dovecot.p(0.5),
        dovecot.p(0.99),
        if with_rate {
            confide.rate() / dovecot.rate()
        } else {
            dovecot.p(0.99) / confide.p(0.99)
        },
    );
    eprintln!("({} / {})", confide.label, dovecot.label);
}

// ---------------------------------------------------------------------------------------
// Confide.

struct ConfideSide {
    http: reqwest::Client,
    base: String,
    reader: String,
    senders: Vec<String>,
    recipients: Vec<String>,
}

impl ConfideSide {
    async fn send(&self, sends: usize) -> Figures {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for token in self.senders.clone() {
            let (http, base, next) = (self.http.clone(), self.base.clone(), next.clone());
            let recipients = self.recipients.clone();
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= sends {
                        break;
                    }
                    let to = format!("user:{}", recipients[n % recipients.len()]);
                    let t0 = Instant::now();
                    let resp = http
                        .post(format!("{base}/api/v1/threads"))
                        .bearer_auth(&token)
                        .json(&json!({"to": [to], "subject": subject(n), "body": body(n)}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        resp.status(),
                        201,
                        "{}",
                        resp.text().await.unwrap_or_default()
                    );
                    latencies.push(t0.elapsed().as_secs_f64());
                }
                latencies
            });
        }
        let mut all = Vec::new();
        while let Some(l) = tasks.join_next().await {
            all.extend(l.unwrap());
        }
        Figures::new("POST /api/v1/threads", all, started.elapsed())
    }

    async fn list(&self, pages: usize) -> Figures {
        let mut latencies = Vec::new();
        for i in 0..pages + 50 {
            let t0 = Instant::now();
            let resp = self
                .http
                .get(format!(
                    "{}/api/v1/threads?folder=inbox&limit=50",
                    self.base
                ))
                .bearer_auth(&self.reader)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let page: Value = resp.json().await.unwrap();
            assert_eq!(page["threads"].as_array().map(Vec::len), Some(50));
            if i >= 50 {
                latencies.push(t0.elapsed().as_secs_f64());
            }
        }
        Figures::new("GET /api/v1/threads", latencies, Duration::ZERO)
    }

    async fn search(&self, q: &str, reps: usize) -> (Figures, u64) {
        let mut latencies = Vec::new();
        let mut total = 0;
        for i in 0..reps + 10 {
            let t0 = Instant::now();
            let resp = self
                .http
                .post(format!("{}/api/v1/search", self.base))
                .bearer_auth(&self.reader)
                .json(&json!({"q": q, "limit": 20}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let page: Value = resp.json().await.unwrap();
            total = page["hits"].as_array().map_or(0, Vec::len) as u64;
            if i >= 10 {
                latencies.push(t0.elapsed().as_secs_f64());
            }
        }
        (
            Figures::new("POST /api/v1/search", latencies, Duration::ZERO),
            total,
        )
    }
}

async fn start_confide(args: &Args) -> (tempfile::TempDir, common::Database, Server, ConfideSide) {
    let (dir, data_dir, database) = common::fresh_database(&args.backend).await;
    let store = Store::open(&database.url, 4, 10_000).await.unwrap();
    let data = populate(
        &store,
        args.messages,
        subject,
        |t, seq| body(t * 10 + seq),
        |_, _| None,
    )
    .await;
    store.close().await;
    let (said, took) = common::reindex(&database.url, &data_dir);
    println!("Confide: {said} ({:.1} s)", took.as_secs_f64());
    let server = Server::start(&database.url, &data_dir);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let reader = sign_in(&http, &server.base, &data.heavy_email).await;
    let mut senders = Vec::new();
    for email in data.sender_emails.iter().take(CONCURRENCY) {
        senders.push(sign_in(&http, &server.base, email).await);
    }
    let side = ConfideSide {
        http,
        base: server.base.clone(),
        reader,
        senders,
        recipients: data.client_ids.iter().take(10).cloned().collect(),
    };
    (dir, database, server, side)
}

// ---------------------------------------------------------------------------------------
// Dovecot.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chown_tree(path: &Path) {
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{MAIL_UID}:{MAIL_UID}"))
        .arg(path));
}

/// A self-contained configuration under `dir`, listening on the given ports.
fn write_config(dir: &Path, imap: u16, lmtp: u16) -> PathBuf {
    let d = dir.display();
    let config = format!(
        r#"protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = confide-bench
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = {MAIL_UID}
last_valid_uid = 0
first_valid_gid = 0
mail_location = mdbox:~/mail
mail_fsync = optimized
mail_plugins = $mail_plugins fts fts_xapian
lmtp_save_to_detail_mailbox = no
recipient_delimiter =
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/passwd
}}
protocol imap {{
  mail_max_userip_connections = 10000
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 1
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
  process_limit = 64
}}
service imap {{
  process_limit = 1024
}}
service indexer-worker {{
  vsz_limit = 0
}}
plugin {{
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = yes
  fts_enforced = yes
}}
"#
    );
    let mut passwd = String::new();
    // bench0 holds the loaded mailbox; sends go to bench1..bench10.
    for n in 0..11 {
        passwd.push_str(&format!(
            "bench{n}:{{PLAIN}}benchpass:{MAIL_UID}:{MAIL_UID}::{d}/home/bench{n}::\n"
        ));
        std::fs::create_dir_all(dir.join(format!("home/bench{n}"))).unwrap();
    }
    std::fs::write(dir.join("passwd"), passwd).unwrap();
    let path = dir.join("dovecot.conf");
    std::fs::write(&path, config).unwrap();
    path
}

/// Dovecot's copy of the mail: bench0's home with the messages imported and indexed,
/// made once per message count and kept.
async fn mailbox_template(messages: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    let template = root.join(format!("dovecot-bench0-{messages}"));
    if template.join("done").exists() {
        println!("Dovecot: the loaded mailbox from {}", template.display());
        return template;
    }
    let started = Instant::now();
    let work = root.join(format!("dovecot-load-{messages}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (imap, lmtp) = (free_port(), free_port());
    let config = write_config(&work, imap, lmtp);
    // The same messages as Confide's, as a Maildir, oldest first.
    let source = work.join("source");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(source.join(sub)).unwrap();
    }
    let base = 1_600_000_000u64;
    for i in 0..messages {
        let at = base + i as u64 * 60;
        let date = chrono::DateTime::from_timestamp(at as i64, 0)
            .unwrap()
            .to_rfc2822();
        let message = format!(
            "From: Sender {s} <sender{s}@example.com>\r\nTo: bench0@localhost\r\n\
             Subject: {}\r\nDate: {date}\r\nMessage-ID: <m{i}@example.com>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            subject(i / 10),
            body(i),
            s = i % 100,
        );
        let name = source.join(format!("cur/{at}.M{i}P1.bench,S={}:2,", message.len()));
        std::fs::write(&name, message).unwrap();
        let mtime = std::time::UNIX_EPOCH + Duration::from_secs(at);
        std::fs::File::options()
            .write(true)
            .open(&name)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    chown_tree(&work);
    // doveadm asks the running server's auth service who bench0 is.
    let mut server = launch(&config, imap, lmtp).await;
    let doveadm = || {
        let mut c = Command::new("doveadm");
        c.arg("-c").arg(&config);
        c
    };
    run(doveadm()
        .args([
            "-o",
            "mail_fsync=never",
            "-o",
            "mail_plugins=",
            "import",
            "-u",
            "bench0",
        ])
        .arg(format!("maildir:{}:LAYOUT=fs", source.display()))
        .args(["", "all"]));
    let imported = started.elapsed();
    run(doveadm().args(["index", "-u", "bench0", "INBOX"]));
    stop(&mut server);
    println!(
        "Dovecot: imported {messages} messages in {:.1} s, indexed them (Xapian) in {:.1} s",
        imported.as_secs_f64(),
        (started.elapsed() - imported).as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&template);
    run(Command::new("cp")
        .arg("-a")
        .arg(work.join("home/bench0"))
        .arg(&template));
    std::fs::write(template.join("done"), "").unwrap();
    let _ = std::fs::remove_dir_all(&work);
    template
}

/// Starts Dovecot in the foreground on `config` and waits for both greetings (it listens
/// before its services are up).
async fn launch(config: &Path, imap: u16, lmtp: u16) -> Child {
    let child = Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .spawn()
        .expect("dovecot (Debian: dovecot-imapd dovecot-lmtpd dovecot-fts-xapian)");
    for port in [imap, lmtp] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
                let mut first = String::new();
                let mut reader = BufReader::new(stream);
                let read =
                    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut first))
                        .await;
                if matches!(read, Ok(Ok(n)) if n > 0)
                    && (first.starts_with("* OK") || first.starts_with("220"))
                {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot did not answer on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    child
}

/// Stops a Dovecot started by [`launch`] (SIGTERM: the master stops its services).
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

struct Dovecot {
    child: Child,
    imap: u16,
    lmtp: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

async fn start_dovecot(messages: usize) -> Dovecot {
    let template = mailbox_template(messages).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    let dir = tempfile::tempdir_in(&root).unwrap();
    // Dovecot's services read the passwd file as their own users.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (imap, lmtp) = (free_port(), free_port());
    let config = write_config(dir.path(), imap, lmtp);
    let home = dir.path().join("home/bench0");
    std::fs::remove_dir_all(&home).unwrap();
    run(Command::new("cp").arg("-a").arg(&template).arg(&home));
    let _ = std::fs::remove_file(home.join("done"));
    chown_tree(&dir.path().join("home"));
    let child = launch(&config, imap, lmtp).await;
    Dovecot {
        child,
        imap,
        lmtp,
        _dir: dir,
    }
}

/// A line-reading LMTP session.
struct Lmtp {
    reader: BufReader<TcpStream>,
}

impl Lmtp {
    async fn open(port: u16) -> Lmtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut lmtp = Lmtp {
            reader: BufReader::new(stream),
        };
        lmtp.reply("220").await;
        lmtp.send(b"LHLO bench.local\r\n").await;
        lmtp.reply("250").await;
        lmtp
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).await.unwrap();
    }

    /// Reads one reply (its last line has a space after the code), which must be `code`.
    async fn reply(&mut self, code: &str) {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.unwrap();
            assert!(n > 0, "LMTP closed");
            assert!(line.starts_with(code), "LMTP: expected {code}, got {line}");
            if line.as_bytes().get(3) == Some(&b' ') {
                return;
            }
        }
    }

    /// Delivers one message to one recipient: MAIL, RCPT and DATA pipelined.
    async fn deliver(&mut self, to: &str, message: &str) {
        let head =
            format!("MAIL FROM:<sender@example.com>\r\nRCPT TO:<{to}@localhost>\r\nDATA\r\n");
        self.send(head.as_bytes()).await;
        self.reply("250").await;
        self.reply("250").await;
        self.reply("354").await;
        // Lines that start with a dot get another (our text has none at a line's start).
        self.send(message.as_bytes()).await;
        self.send(b"\r\n.\r\n").await;
        self.reply("250").await;
    }
}

/// An IMAP session, logged in as bench0.
struct Imap {
    reader: BufReader<TcpStream>,
    tag: u64,
}

impl Imap {
    async fn open(port: u16) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut imap = Imap {
            reader: BufReader::new(stream),
            tag: 0,
        };
        let mut greeting = String::new();
        imap.reader.read_line(&mut greeting).await.unwrap();
        imap.command("LOGIN bench0 benchpass").await;
        imap
    }

    /// Runs a command; returns its untagged lines (literals inlined), after a tagged OK.
    async fn command(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = self.read_logical_line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "IMAP {command}: {line}");
                return lines;
            }
            line.truncate(line.trim_end().len());
            lines.push(line);
        }
    }

    /// One response line, with any `{N}` literal read and appended.
    async fn read_logical_line(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.unwrap();
            assert!(n > 0, "IMAP closed");
            let literal = line
                .trim_end()
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            out.push_str(&line);
            match literal {
                Some(size) => {
                    let mut bytes = vec![0; size];
                    self.reader.read_exact(&mut bytes).await.unwrap();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                None => return out,
            }
        }
    }
}

impl Dovecot {
    async fn send(&self, sends: usize) -> Figures {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (port, next) = (self.lmtp, next.clone());
            tasks.spawn(async move {
                let mut lmtp = Lmtp::open(port).await;
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= sends {
                        break;
                    }
                    let message = format!(
                        "From: Sender <sender@example.com>\r\nTo: bench{r}@localhost\r\n\
                         Subject: {}\r\nMessage-ID: <sent{n}@example.com>\r\n\r\n{}",
                        subject(n),
                        body(n),
                        r = 1 + n % 10,
                    );
                    let t0 = Instant::now();
                    lmtp.deliver(&format!("bench{}", 1 + n % 10), &message)
                        .await;
                    latencies.push(t0.elapsed().as_secs_f64());
                }
                lmtp.send(b"QUIT\r\n").await;
                latencies
            });
        }
        let mut all = Vec::new();
        while let Some(l) = tasks.join_next().await {
            all.extend(l.unwrap());
        }
        Figures::new("LMTP delivery", all, started.elapsed())
    }

    async fn list(&self, pages: usize) -> Figures {
        let mut imap = Imap::open(self.imap).await;
        let mut latencies = Vec::new();
        for i in 0..pages + 50 {
            let t0 = Instant::now();
            let selected = imap.command("SELECT INBOX").await;
            let exists: usize = selected
                .iter()
                .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
                .unwrap();
            let fetched = imap
                .command(&format!(
                    "FETCH {}:{exists} (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
                    exists - 49
                ))
                .await;
            assert_eq!(fetched.len(), 50);
            if i >= 50 {
                latencies.push(t0.elapsed().as_secs_f64());
            }
        }
        Figures::new("SELECT + FETCH newest 50", latencies, Duration::ZERO)
    }

    async fn search(&self, key: &str, reps: usize) -> (Figures, u64) {
        let mut imap = Imap::open(self.imap).await;
        imap.command("SELECT INBOX").await;
        let mut latencies = Vec::new();
        let mut found = 0;
        for i in 0..reps + 10 {
            let t0 = Instant::now();
            let lines = imap.command(&format!("UID SEARCH {key}")).await;
            found = lines
                .iter()
                .find_map(|l| l.strip_prefix("* SEARCH"))
                .map_or(0, |uids| uids.split_whitespace().count() as u64);
            if i >= 10 {
                latencies.push(t0.elapsed().as_secs_f64());
            }
        }
        (Figures::new("UID SEARCH", latencies, Duration::ZERO), found)
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    assert!(
        nix_is_root(),
        "Dovecot's side needs root (it keeps the mail as nobody and runs its services as its own users)"
    );
    println!(
        "backend: {}; {} messages in the mailbox; {} sends per side; {CONCURRENCY} concurrent",
        args.backend, args.messages, args.sends
    );
    let (_dir, _database, _server, confide) = start_confide(&args).await;
    let dovecot = start_dovecot(args.messages).await;
    println!();
    println!("| operation | Confide | Dovecot | Confide / Dovecot |");
    println!("|---|---|---|---|");
    let ours = confide.send(args.sends).await;
    let theirs = dovecot.send(args.sends).await;
    row(
        "send to one recipient (rate; ratio of rates)",
        &ours,
        &theirs,
        true,
    );
    let ours = confide.list(args.pages).await;
    let theirs = dovecot.list(args.pages).await;
    row(
        "first 50 of the mailbox (ratio: Dovecot p99 / Confide p99)",
        &ours,
        &theirs,
        false,
    );
    for (name, imap, query) in QUERIES {
        let (ours, shown) = confide.search(query, args.reps).await;
        let (theirs, found) = dovecot.search(imap, args.reps).await;
        row(
            &format!("search, {name} (`{query}`: Dovecot finds {found}, Confide shows {shown} of a page of 20)"),
            &ours,
            &theirs,
            false,
        );
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
