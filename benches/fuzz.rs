//! Fuzzing (issue 19): the parsers that take what anyone may send, each for a time, with
//! proptest generating inputs both from scratch and by mutating a corpus kept in
//! `tests/fuzz/<target>/` (every file of it is also run as it is, first).
//!
//! - `markdown`: no rendered body ever holds an element or attribute that runs, loads or
//!   submits anything, as html5ever (through `scraper`) parses the output.
//! - `search`: the query parser never panics and never accepts more than its limits.
//! - `recipient`: `to` entries parse to exactly `user:<id>` or a known group, or are
//!   refused naming `to`.
//! - `cursor`: only a cursor the server made, for that list and that person, is accepted;
//!   anything else is `invalid_field` on `cursor`.
//! - `upload`: random multipart bodies (boundaries, headers, names, truncations) against
//!   the real binary: never a 5xx, a refused upload leaves no file, an accepted one
//!   serves back exactly the bytes sent under a clean name.
//!
//! Run: `cargo bench --bench fuzz -- --seconds 600` (ten minutes per target; `--only NAME`
//! for one). CI runs `--seconds 30` on a debug build. A failing input is written to the
//! target's corpus directory as `crash-…` and the run fails; fix it and keep the file.

use std::collections::HashSet;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confide::domain::mailbox::{Group, Recipient};
use confide::domain::search::{self, Clause};
use confide::domain::Code;
use confide::service::cursor::{Cursors, List};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

mod common;

use common::{create_practice, fresh_database, sign_in, CommandLine, Server};

fn main() {
    let args = CommandLine::read();
    let seconds = args.number("--seconds", 30) as u64;
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    let run = |name: &str| only.is_empty() || only == name;
    let budget = Duration::from_secs(seconds);
    if run("markdown") {
        markdown(budget);
    }
    if run("search") {
        search(budget);
    }
    if run("recipient") {
        recipient(budget);
    }
    if run("cursor") {
        cursor(budget);
    }
    if run("upload") {
        upload(budget);
    }
}

/// Where a target's corpus lives.
fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target)
}

/// The corpus of `target`, as bytes.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("the corpus of {target}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn corpus_text(target: &str) -> Vec<String> {
    corpus(target)
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// A corpus entry changed a little: pieces of `dictionary` or of any text put in, spans
/// taken out, one part doubled.
fn mutated(seeds: Vec<String>, dictionary: &'static [&'static str]) -> BoxedStrategy<String> {
    let edit = prop_oneof![
        (
            any::<prop::sample::Index>(),
            prop::sample::select(dictionary)
        )
            .prop_map(|(at, piece)| Edit::Insert(at, piece.to_string())),
        (any::<prop::sample::Index>(), ".{0,6}").prop_map(|(at, piece)| Edit::Insert(at, piece)),
        (any::<prop::sample::Index>(), 1usize..24).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<prop::sample::Index>().prop_map(Edit::Double),
    ];
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit, 0..10),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for edit in edits {
                let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
                match edit {
                    Edit::Insert(i, piece) => {
                        let at = at(&i, chars.len());
                        chars.splice(at..at, piece.chars());
                    }
                    Edit::Delete(i, n) => {
                        let at = at(&i, chars.len());
                        let end = (at + n).min(chars.len());
                        chars.drain(at..end);
                    }
                    Edit::Double(i) => {
                        let at = at(&i, chars.len());
                        let tail: Vec<char> = chars[at..].iter().take(40).copied().collect();
                        chars.splice(at..at, tail);
                    }
                }
            }
            chars.into_iter().collect()
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Double(prop::sample::Index),
}

/// Runs `check` on every corpus entry, then on generated values until `budget` is spent.
/// A failure (shrunk by proptest) is saved to the corpus and ends the run.
fn fuzz<S>(
    target: &str,
    budget: Duration,
    seeds: Vec<S::Value>,
    strategy: S,
    save: impl Fn(&S::Value) -> Vec<u8>,
    check: impl Fn(&S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let fail = |why: &str, value: &S::Value| -> ! {
        let bytes = save(value);
        let name = format!("crash-{}", common::id());
        std::fs::write(corpus_dir(target).join(&name), &bytes).unwrap();
        panic!("fuzz {target}: {why}\ninput (kept as tests/fuzz/{target}/{name}): {value:?}");
    };
    for seed in &seeds {
        if let Err(e) = check(seed) {
            fail(&e.to_string(), seed);
        }
    }
    let started = Instant::now();
    let config = Config {
        cases: 64,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    // A runner counts its passes and stops at `cases`: one per batch, each with its own
    // random stream drawn from one source.
    let mut source = TestRunner::new(config.clone());
    let mut cases = seeds.len();
    while started.elapsed() < budget {
        let mut runner = TestRunner::new_with_rng(config.clone(), source.new_rng());
        match runner.run(&strategy, |value| check(&value)) {
            Ok(()) => cases += 64,
            Err(TestError::Fail(why, value)) => fail(&why.to_string(), &value),
            Err(TestError::Abort(why)) => panic!("fuzz {target}: aborted: {why}"),
        }
    }
    println!(
        "fuzz {target}: {cases} inputs in {:.0} s ({} from the corpus), no failure",
        started.elapsed().as_secs_f64(),
        seeds.len()
    );
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($why)+)));
        }
    };
}

// ---------------------------------------------------------------- markdown

const MARKDOWN_PIECES: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x]: data:text/html;base64,PHNjcmlwdD4= \n[x]",
    "![x](https://tracker.example/p.gif)",
    "<svg onload=alert(1)>",
    "<math><mi xlink:href=\"javascript:alert(1)\">",
    "<iframe srcdoc=\"<script>\">",
    "<style>*{}</style>",
    "<form action=https://evil.example><button>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<a href='vbscript:x'>",
    "<div style=\"background:url(javascript:x)\">",
    "<object data=x>",
    "<embed src=x>",
    "<base href=//evil.example>",
    "<meta http-equiv=refresh content=0;url=x>",
    "<link rel=stylesheet href=x>",
    "<template><script>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "`<script>`",
    "```\n<script>\n```",
    "\n\n",
    "| a | b |\n|---|---|\n| <b onclick=x>c</b> | d |",
    "&lt;script&gt;",
    "<a href=\"https://ok.example\" onclick=\"x\">",
    "<<script>script>",
    "\u{0}",
    " onmouseover=alert(1) ",
    "\"",
    "'",
    ">",
];

/// Elements the renderer may produce (plus the document html5ever wraps a fragment in,
/// whose attributes are checked like any other's).
const SAFE_ELEMENTS: &[&str] = &[
    "html",
    "head",
    "body",
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Whether a link target is one of the schemes a message may link to, read as a browser
/// would (ASCII whitespace and controls dropped, case ignored).
fn safe_href(href: &str) -> bool {
    let plain: String = href
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect::<String>()
        .to_ascii_lowercase();
    ["http:", "https:", "mailto:"]
        .iter()
        .any(|s| plain.starts_with(s))
}

fn check_markdown(source: &str) -> Result<(), TestCaseError> {
    let html = confide::domain::markdown::render(source);
    let fragment = scraper::Html::parse_fragment(&html);
    for node in fragment.tree.nodes() {
        let scraper::Node::Element(element) = node.value() else {
            continue;
        };
        let tag = element.name();
        ensure!(SAFE_ELEMENTS.contains(&tag), "element <{tag}> in {html:?}");
        for (name, value) in element.attrs() {
            match name {
                "title" | "rel" => {}
                "align" => ensure!(
                    ["left", "center", "right"].contains(&value),
                    "align={value:?} in {html:?}"
                ),
                "href" => ensure!(tag == "a" && safe_href(value), "href={value:?} in {html:?}"),
                other => return Err(TestCaseError::fail(format!("{other}= in {html:?}"))),
            }
        }
    }
    Ok(())
}

fn markdown(budget: Duration) {
    let seeds = corpus_text("markdown");
    let strategy = prop_oneof![
        4 => mutated(seeds.clone(), MARKDOWN_PIECES),
        1 => "[-*_#>`\\[\\]()<>!a-z0-9 &;:\"'=/\\\\\n|.]{0,300}",
        1 => any::<String>(),
    ];
    fuzz(
        "markdown",
        budget,
        seeds,
        strategy,
        |s| s.as_bytes().to_vec(),
        |s| check_markdown(s),
    );
}

// ---------------------------------------------------------------- search

const SEARCH_PIECES: &[&str] = &[
    "\"",
    "-",
    "from:",
    "to:",
    "subject:",
    "has:attachment",
    "in:inbox",
    "in:",
    "is:unread",
    "is:read",
    "before:2026-01-01",
    "after:2026-13-40",
    "after:",
    " OR ",
    "(",
    ")",
    "*",
    "\\",
    ":",
    "\u{0}",
    "\u{202e}",
    " ",
];

fn check_search(q: &str) -> Result<(), TestCaseError> {
    match search::parse(q) {
        Ok(query) => {
            ensure!(
                q.chars().count() <= search::MAX_QUERY_CHARS,
                "accepted {} characters",
                q.chars().count()
            );
            ensure!(
                query.terms.len() <= search::MAX_CLAUSES,
                "accepted {} clauses",
                query.terms.len()
            );
            for term in &query.terms {
                if let Clause::Any(text)
                | Clause::From(text)
                | Clause::To(text)
                | Clause::Subject(text) = &term.clause
                {
                    ensure!(
                        text.text.split_whitespace().count() <= search::MAX_PHRASE_WORDS,
                        "a phrase of {} words",
                        text.text.split_whitespace().count()
                    );
                }
            }
        }
        Err(e) => {
            ensure!(
                e.message.starts_with("q:"),
                "a refusal that does not name q: {}",
                e.message
            );
            ensure!(
                [
                    Code::InvalidQuery,
                    Code::QueryTooComplex,
                    Code::QueryTooLong
                ]
                .contains(&e.code),
                "refused as {:?}",
                e.code
            );
        }
    }
    Ok(())
}

fn search(budget: Duration) {
    let seeds = corpus_text("search");
    let strategy = prop_oneof![
        4 => mutated(seeds.clone(), SEARCH_PIECES),
        1 => "[-a-z\":() *\\\\]{0,600}",
        1 => any::<String>(),
    ];
    fuzz(
        "search",
        budget,
        seeds,
        strategy,
        |s| s.as_bytes().to_vec(),
        |s| check_search(s),
    );
}

// ---------------------------------------------------------------- recipient

const RECIPIENT_PIECES: &[&str] = &[
    "user:",
    "group:",
    "providers",
    "front_office",
    "billers",
    "external_agents",
    "clients",
    " ",
    "\t",
    "\u{0}",
    "é",
    "0",
    "Z",
    "/",
    ":",
];

fn check_recipient(raw: &str) -> Result<(), TestCaseError> {
    match Recipient::parse(raw) {
        Ok(Recipient::Person(id)) => {
            ensure!(
                !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "a person id {id:?}"
            );
            ensure!(
                raw.trim() == format!("user:{id}"),
                "{raw:?} read as user:{id}"
            );
        }
        Ok(Recipient::Group(group)) => {
            ensure!(
                Group::ALL.contains(&group) && raw.trim().starts_with("group:"),
                "{raw:?} read as {group:?}"
            );
        }
        Err(e) => ensure!(e.field == Some("to"), "a refusal naming {:?}", e.field),
    }
    Ok(())
}

fn recipient(budget: Duration) {
    let seeds = corpus_text("recipient");
    let strategy = prop_oneof![
        4 => mutated(seeds.clone(), RECIPIENT_PIECES),
        1 => "(user|group|User|)[:]?[a-zA-Z0-9_ ]{0,70}",
        1 => any::<String>(),
    ];
    fuzz(
        "recipient",
        budget,
        seeds,
        strategy,
        |s| s.as_bytes().to_vec(),
        |s| check_recipient(s),
    );
}

// ---------------------------------------------------------------- cursor

fn cursor(budget: Duration) {
    let cursors = Cursors::with_key(rand::random());
    // Cursors the server would hand out, for one person and one list.
    let valid: Vec<String> = corpus_text("cursor")
        .iter()
        .map(|position| {
            let position: serde_json::Value =
                serde_json::from_str(position).expect("a position as JSON");
            cursors.encode(List::Threads, "pat", &position)
        })
        .collect();
    let known: HashSet<String> = valid.iter().cloned().collect();
    let strategy = prop_oneof![
        4 => mutated(valid.clone(), &["A", "-", "_", "=", "+", "/", "%", "\u{0}", "é"]),
        1 => "[A-Za-z0-9_-]{0,120}",
        1 => any::<String>(),
    ];
    fuzz(
        "cursor",
        budget,
        valid,
        strategy,
        |s| s.as_bytes().to_vec(),
        |s| {
            let decoded = cursors.decode::<serde_json::Value>(List::Threads, "pat", s);
            match decoded {
                Ok(_) => ensure!(known.contains(s), "accepted a cursor never handed out"),
                Err(e) => ensure!(
                    e.code == Code::InvalidField && e.field.as_deref() == Some("cursor"),
                    "refused as {:?} on {:?}",
                    e.code,
                    e.field
                ),
            }
            if known.contains(s) {
                // Handed to Pat for threads: nobody else's, and no other list's.
                ensure!(
                    cursors
                        .decode::<serde_json::Value>(List::Threads, "pia", s)
                        .is_err(),
                    "another person's cursor accepted"
                );
                ensure!(
                    cursors
                        .decode::<serde_json::Value>(List::Search, "pat", s)
                        .is_err(),
                    "another list's cursor accepted"
                );
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- upload

/// One multipart body as sent, and the parts that are files.
#[derive(Debug, Clone)]
struct Upload {
    boundary: String,
    parts: Vec<Part>,
    /// Bytes cut from the end of the body.
    truncate: usize,
    /// Whether the closing delimiter is left out.
    unclosed: bool,
}

#[derive(Debug, Clone)]
struct Part {
    /// The part's field name (`file` is the one the API takes).
    field: String,
    /// The `filename` parameter, raw, if any.
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

impl Upload {
    fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for part in &self.parts {
            body.extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
            let mut disposition =
                format!("Content-Disposition: form-data; name=\"{}\"", part.field);
            if let Some(name) = &part.filename {
                disposition.push_str(&format!("; filename=\"{name}\""));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            if let Some(t) = &part.content_type {
                body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(&part.bytes);
            body.extend_from_slice(b"\r\n");
        }
        if !self.unclosed {
            body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        }
        body.truncate(body.len().saturating_sub(self.truncate));
        body
    }
}

const NAME_PIECES: &[&str] = &[
    "../",
    "..\\",
    "/etc/passwd",
    "C:\\",
    "\u{202e}",
    "\u{200b}",
    "\u{0}",
    "\r\n",
    "\"",
    ";",
    "filename*=UTF-8''x",
    ".pdf",
    ".txt",
    ".exe",
    ".",
    " ",
    "é",
    "%2e%2e%2f",
];

fn upload_strategy(files: Vec<Vec<u8>>) -> impl Strategy<Value = Upload> {
    let name = prop_oneof![
        mutated(
            vec![
                "report.pdf".into(),
                "notes.txt".into(),
                "scan.png".into(),
                "a".into()
            ],
            NAME_PIECES
        ),
        ".{0,40}",
    ];
    let cut = prop_oneof![3 => Just(0usize), 1 => 1usize..64];
    let bytes =
        (prop::sample::select(files), cut, any::<u8>()).prop_map(|(mut bytes, cut, flip)| {
            // A file of the corpus, its end cut or a byte of its head changed.
            bytes.truncate(bytes.len().saturating_sub(cut));
            if flip % 7 == 0 && !bytes.is_empty() {
                let at = flip as usize % bytes.len();
                bytes[at] ^= flip;
            }
            bytes
        });
    let part = (
        prop_oneof![9 => Just("file".to_string()), 1 => "[a-z\"]{0,8}"],
        prop::option::weighted(0.9, name),
        prop::option::of(prop_oneof![
            Just("application/pdf".to_string()),
            Just("text/plain".to_string()),
            Just("image/png".to_string()),
            "[a-z/;= -]{0,30}",
        ]),
        bytes,
    )
        .prop_map(|(field, filename, content_type, bytes)| Part {
            field,
            filename,
            content_type,
            bytes,
        });
    (
        prop_oneof![Just("fuzzboundary".to_string()), "[A-Za-z0-9_-]{1,70}"],
        prop::collection::vec(part, 0..4),
        prop_oneof![8 => Just(0usize), 1 => 1usize..200],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(boundary, parts, truncate, unclosed)| Upload {
            boundary,
            parts,
            truncate,
            unclosed,
        })
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn upload(budget: Duration) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (root, data_dir, database) = runtime.block_on(fresh_database("sqlite"));
    create_practice(&database.url, &data_dir);
    let server = Server::start(&database.url, &data_dir);
    let http = reqwest::Client::new();
    let token = runtime.block_on(sign_in(&http, &server.base, "admin@bench.example"));
    let attachments = data_dir.join("attachments");
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let files = corpus("upload");
    let seeds: Vec<Upload> = files
        .iter()
        .map(|bytes| Upload {
            boundary: "fuzzboundary".into(),
            parts: vec![Part {
                field: "file".into(),
                filename: Some("seed".into()),
                content_type: None,
                bytes: bytes.clone(),
            }],
            truncate: 0,
            unclosed: false,
        })
        .collect();
    let check = |upload: &Upload| -> Result<(), TestCaseError> {
        runtime.block_on(async {
            let stored = files_under(&attachments);
            let resp = http
                .post(format!("{}/api/v1/attachments", server.base))
                .bearer_auth(&token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={}", upload.boundary),
                )
                .body(upload.body())
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            let status = resp.status().as_u16();
            ensure!(status < 500, "answered {status}");
            let answer: serde_json::Value = resp.json().await.unwrap_or_default();
            if status != 201 {
                ensure!(
                    answer["code"].is_string(),
                    "a {status} without a problem: {answer}"
                );
                ensure!(
                    files_under(&attachments) == stored,
                    "a refused upload ({status}) left a file"
                );
                return Ok(());
            }
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for attachment in answer["attachments"].as_array().unwrap() {
                let name = attachment["name"].as_str().unwrap();
                ensure!(
                    !name.contains(['/', '\\', '\0']) && !name.chars().any(char::is_control),
                    "kept the name {name:?}"
                );
                let id = attachment["id"].as_str().unwrap();
                let served = http
                    .get(format!("{}/api/v1/attachments/{id}", server.base))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                ensure!(
                    upload
                        .parts
                        .iter()
                        .any(|p| p.field == "file" && p.bytes == served[..]),
                    "served {} bytes that no file part sent",
                    served.len()
                );
                let deleted = http
                    .delete(format!("{}/api/v1/attachments/{id}", server.base))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                ensure!(
                    deleted.status() == 204,
                    "delete answered {}",
                    deleted.status()
                );
            }
            Ok(())
        })
    };
    fuzz(
        "upload",
        budget,
        seeds,
        upload_strategy(files),
        Upload::body,
        check,
    );
    println!(
        "fuzz upload: {} of them accepted (and served back intact)",
        accepted.into_inner()
    );
    drop(server);
    drop(root);
}
