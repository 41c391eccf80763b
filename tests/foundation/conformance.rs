//! The API against its own document, as a new integrator tries it (issue 19):
//! schemathesis (pinned in tests/tools/requirements.txt) runs every check against the
//! real binary, signed in as each of admin, provider, front office and client, on data
//! seeded through the API. Zero failures, or the test shows schemathesis' report.
//!
//! Every phase runs: examples, coverage, fuzzing, and the stateful phase, which follows
//! the document's links from what a request created (a thread, a message, an upload, a
//! draft, a person) to the operations that take its id.
//!
//! What the test tells schemathesis besides the document (`config_for`):
//! - opaque values only the server makes (list cursors, the sync state, an audit anchor)
//!   are pinned to real ones, handed out to that person;
//! - rules that depend on stored data, the clock or several fields at once, which no
//!   schema states (the caller's current password, a date in the future, ids of one's
//!   own uploads, one field or the other), may refuse a schema-valid request with 400 on
//!   the operations that have them (`DATA_RULES`, each with its rule), and only there.
//!
//! Signing out (`DELETE /sessions/current`) is left out: it would end the session the
//! rest of the run uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, Binary, TestDatabase};
use crate::on_both_backends;

on_both_backends!(schemathesis_finds_no_failure_for_any_role);

/// Examples per operation and phase: enough to cover every parameter's edges in the
/// coverage phase; more in a documented long run (README "Tests").
fn max_examples() -> String {
    std::env::var("CONFIDE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "5".into())
}

/// schemathesis' `st`, next to the test tools' Python.
fn schemathesis() -> Option<PathBuf> {
    let st = std::env::var("CONFIDE_TEST_PYTHON")
        .map(|python| PathBuf::from(python).with_file_name("st"))
        .ok();
    if let Some(st) = st.filter(|st| st.exists()) {
        Some(st)
    } else {
        crate::helpers::report_skip("schemathesis (st next to CONFIDE_TEST_PYTHON)");
        None
    }
}

/// Operations whose rules on stored data, the clock or field combinations may refuse a
/// schema-valid request with 400.
const DATA_RULES: &[(&str, &str)] = &[
    (
        "POST /me/password",
        "current_password must be the caller's password",
    ),
    (
        "PATCH /me",
        "an email change needs the current password; autoresponder periods end after they start",
    ),
    ("GET /audit/export", "`to` comes after `from`"),
    (
        "GET /threads",
        "`assignee` filters a team folder only (`folder=team:<group>`)",
    ),
    (
        "PATCH /threads/{id}",
        "one's own state (folder, read) or the team's (assignee, done), not both at once",
    ),
    (
        "PATCH /people/{id}",
        "a client stays a client and staff stay staff; one's own address changes through PATCH /me",
    ),
    (
        "POST /threads",
        "`send_at` lies in the future; attachments are the caller's pending uploads",
    ),
    (
        "POST /threads/{id}/messages",
        "`send_at` lies in the future; attachments are the caller's pending uploads",
    ),
    (
        "POST /drafts",
        "attachments are the caller's pending uploads",
    ),
    (
        "PUT /drafts/{id}",
        "attachments are the caller's pending uploads",
    ),
    (
        "POST /drafts/{id}/send",
        "the stored draft names its recipients",
    ),
    (
        "POST /legal-holds",
        "exactly one of `client_id` and `thread_id`",
    ),
    (
        "POST /search",
        "`cursor` is one the server handed out to the caller",
    ),
    (
        "GET /audit",
        "`cursor` is one the server handed out to the caller",
    ),
    (
        "GET /people",
        "`cursor` is one the server handed out to the caller",
    ),
    (
        "GET /drafts",
        "`cursor` is one the server handed out to the caller",
    ),
    ("POST /threads/bulk", "`move` names the folder to move to"),
    (
        "POST /attachments",
        "a file's content (not its name) is of a type the practice allows",
    ),
    (
        "POST /threads/{id}/participants",
        "the people are active staff of the caller's practice",
    ),
];

struct Person {
    role: &'static str,
    email: &'static str,
    token: String,
    id: String,
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let url = format!("{base}/api/v1{path}");
    let request = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    body
}

/// Threads, replies and drafts, so that every role's lists have a second page.
async fn seed(http: &reqwest::Client, base: &str, people: &[Person]) {
    let by = |role: &str| people.iter().find(|p| p.role == role).unwrap();
    let (provider, client) = (by("provider"), by("client"));
    for n in 0..2 {
        let thread = call(
            http,
            base,
            &provider.token,
            "POST",
            "/threads",
            Some(json!({
                "to": [format!("user:{}", client.id)],
                "subject": format!("Rescheduling visit {n}"),
                "body": "Could we move our appointment to Thursday?",
            })),
        )
        .await;
        let id = thread["id"].as_str().expect("a thread id").to_string();
        call(
            http,
            base,
            &client.token,
            "POST",
            &format!("/threads/{id}/messages"),
            Some(json!({"body": "Thursday works. Rescheduling is fine."})),
        )
        .await;
        call(
            http,
            base,
            &provider.token,
            "POST",
            "/threads",
            Some(json!({
                "to": [format!("user:{}", by("admin").id), format!("user:{}", by("front_office").id)],
                "subject": format!("Rescheduling the rota {n}"),
                "body": "Rescheduling Thursday's clinic.",
            })),
        )
        .await;
    }
    for person in people {
        for _ in 0..2 {
            call(
                http,
                base,
                &person.token,
                "POST",
                "/drafts",
                Some(json!({"subject": "Draft", "body": "Not sent yet."})),
            )
            .await;
        }
    }
}

/// A TOML string.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The schemathesis configuration for one person: their real cursors and state, and
/// the operations with rules on stored data.
async fn config_for(http: &reqwest::Client, base: &str, person: &Person) -> String {
    let mut config = String::new();
    // A server error fails its own check (`not_a_server_error`), as in schemathesis' own
    // defaults. A body beyond `limits.request_body_max_bytes` is refused with 413 whatever its
    // schema says: the limit is in bytes of JSON, which no schema of characters states.
    config.push_str(
        "[checks.positive_data_acceptance]\n\
         expected-statuses = [\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"413\", \"429\", \"5xx\"]\n\
         [checks.negative_data_rejection]\n\
         expected-statuses = [\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\", \"428\", \"429\", \"5xx\"]\n\n",
    );
    // Per operation: the parameters pinned, then (below) whether a data rule applies;
    // one `[[operations]]` entry each, as schemathesis takes the first that matches.
    let mut pins: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut pin = |operation: &'static str, key: &str, value: Option<&str>| {
        let value =
            value.unwrap_or_else(|| panic!("{}: no {key} to pin for {operation}", person.role));
        pins.entry(operation)
            .or_default()
            .push(format!("{} = {}", quoted(key), quoted(value)));
    };
    let threads = call(http, base, &person.token, "GET", "/threads?limit=1", None).await;
    pin(
        "GET /threads",
        "query.cursor",
        threads["next_cursor"].as_str(),
    );
    pin("GET /changes", "query.since", threads["state"].as_str());
    let drafts = call(http, base, &person.token, "GET", "/drafts?limit=1", None).await;
    pin(
        "GET /drafts",
        "query.cursor",
        drafts["next_cursor"].as_str(),
    );
    // The index follows the event log: wait until it holds the seeded threads.
    let mut found = Value::Null;
    for _ in 0..100 {
        found = call(
            http,
            base,
            &person.token,
            "POST",
            "/search",
            Some(json!({"q": "rescheduling", "limit": 1})),
        )
        .await;
        if found["next_cursor"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    pin("POST /search", "body.cursor", found["next_cursor"].as_str());
    if person.role != "client" {
        let people = call(http, base, &person.token, "GET", "/people?limit=1", None).await;
        pin(
            "GET /people",
            "query.cursor",
            people["next_cursor"].as_str(),
        );
    }
    if person.role == "admin" {
        let audit = call(http, base, &person.token, "GET", "/audit?limit=1", None).await;
        pin("GET /audit", "query.cursor", audit["next_cursor"].as_str());
        let verify = call(http, base, &person.token, "GET", "/audit/verify", None).await;
        let anchor = format!(
            "{}:{}",
            verify["head_seq"],
            verify["head_hash"].as_str().unwrap()
        );
        pin("GET /audit/verify", "query.anchor", Some(&anchor));
    }
    let rules: BTreeMap<&str, &str> = DATA_RULES.iter().copied().collect();
    let operations: BTreeSet<&str> = pins.keys().chain(rules.keys()).copied().collect();
    for operation in operations {
        config.push_str(&format!(
            "[[operations]]\ninclude-name = {}\n",
            quoted(operation)
        ));
        if let Some(pinned) = pins.get(operation) {
            config.push_str(&format!("parameters = {{ {} }}\n", pinned.join(", ")));
        }
        if let Some(why) = rules.get(operation) {
            config.push_str(&format!(
                "# {why}\n\
                 [operations.checks.positive_data_acceptance]\n\
                 expected-statuses = [\"2xx\", \"3xx\", \"400\", \"401\", \"403\", \"404\", \"409\", \"413\", \"429\", \"5xx\"]\n"
            ));
        }
        config.push('\n');
    }
    config
}

async fn schemathesis_finds_no_failure_for_any_role(backend: Backend) {
    let Some(st) = schemathesis() else { return };
    let db = TestDatabase::create(backend).await;
    let env = [("CONFIDE__LOG__LEVEL", "error")];
    Binary::create_practice(&db, &env);
    for (role, email, name) in [
        ("provider", "pat@oak.example", "Dr. Pat Provider"),
        ("front_office", "fran@oak.example", "Fran Front"),
        ("client", "cam@oak.example", "Cam Client"),
    ] {
        Binary::create_user(&db, &env, role, email, name);
    }
    let server = Binary::serve(&db, &env);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let mut people = Vec::new();
    for (role, email) in [
        ("admin", "avery@oak.example"),
        ("provider", "pat@oak.example"),
        ("front_office", "fran@oak.example"),
        ("client", "cam@oak.example"),
    ] {
        let (token, id) = server.sign_in(email).await;
        people.push(Person {
            role,
            email,
            token,
            id,
        });
    }
    seed(&http, &base, &people).await;
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    for person in &people {
        let config = dir.path().join(format!("{}.toml", person.role));
        std::fs::write(&config, config_for(&http, &base, person).await).unwrap();
        configs.push(config);
    }
    // One run per person, side by side: each is one Python process, mostly waiting on
    // its own requests.
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = people
            .iter()
            .zip(&configs)
            .map(|(person, config)| {
                let (st, dir, base) = (&st, dir.path(), &base);
                scope.spawn(move || {
                    Command::new(st)
                        .current_dir(dir)
                        .arg("--config-file")
                        .arg(config)
                        .args(["run", &format!("{base}/api/openapi.json")])
                        .args([
                            "--checks",
                            "all",
                            "--phases",
                            "examples,coverage,fuzzing,stateful",
                        ])
                        .args([
                            "--max-examples",
                            &max_examples(),
                            "--seed",
                            "1",
                            "--no-color",
                        ])
                        .args(["--exclude-name", "DELETE /sessions/current"])
                        .arg("-H")
                        .arg(format!("Authorization: Bearer {}", person.token))
                        .output()
                        .expect("run schemathesis")
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let mut failed = Vec::new();
    for (person, output) in people.iter().zip(outputs) {
        let report = String::from_utf8_lossy(&output.stdout);
        // What was run, for `--nocapture`: the phases' lines and the count of cases.
        for line in report
            .lines()
            .filter(|l| l.contains("passed") || l.contains("generated") || l.contains("Stateful"))
        {
            eprintln!("{} | {line}", person.role);
        }
        if output.status.success() && !report.contains("Stateful (in") {
            failed.push(format!(
                "== {}: the stateful phase did not run (no links to follow?)\n{report}",
                person.role
            ));
        } else if !output.status.success() {
            failed.push(format!(
                "== {} ({}): exit {:?}\n{}\n{}",
                person.role,
                person.email,
                output.status.code(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // The session stayed good through the run: schemathesis tested as this person.
        let me = http
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&person.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            me.status(),
            StatusCode::OK,
            "{}'s session ended",
            person.role
        );
    }
    assert!(
        failed.is_empty(),
        "schemathesis failures:\n{}",
        failed.join("\n")
    );
}

on_both_backends!(generated_clients_run_the_scenario);

/// Runs `command`; it must succeed without a warning. Returns what it printed.
fn run_clean(what: &str, command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{printed}");
    assert!(
        !printed.to_lowercase().contains("warn"),
        "{what} warned:\n{printed}"
    );
    printed
}

/// Clients generated from the served document, in Python (openapi-python-client) and in
/// TypeScript (openapi-typescript types, openapi-fetch requests, `tsc --strict`), run
/// the scenario in tests/tools/clients: sign in, upload, compose, list, read, reply,
/// search, download.
async fn generated_clients_run_the_scenario(backend: Backend) {
    let Some(st) = schemathesis() else { return };
    let generator = st.with_file_name("openapi-python-client");
    let python = st.with_file_name("python");
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/clients");
    let node_modules = tools.join("node_modules");
    if !node_modules.exists() || !generator.exists() {
        crate::helpers::report_skip("the client generators (tests/setup.sh installs them)");
        return;
    }
    let db = TestDatabase::create(backend).await;
    let env = [("CONFIDE__LOG__LEVEL", "error")];
    Binary::create_practice(&db, &env);
    Binary::create_user(&db, &env, "provider", "pat@oak.example", "Dr. Pat Provider");
    Binary::create_user(&db, &env, "client", "cam@oak.example", "Cam Client");
    let server = Binary::serve(&db, &env);
    let document = reqwest::get(format!("{}/api/openapi.json", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.json"), &document).unwrap();
    let scenario_env = [
        ("CONFIDE_BASE", server.base.as_str()),
        ("CONFIDE_PRACTICE", "oak"),
        ("CONFIDE_PASSWORD", crate::helpers::PASSWORD),
        ("CONFIDE_PROVIDER", "pat@oak.example"),
        ("CONFIDE_CLIENT", "cam@oak.example"),
    ];

    // Python. A download is served as the type it was stored with (`*/*`), which this
    // generator takes as a file once told so; no formatter runs on the output.
    std::fs::write(
        dir.path().join("generator.json"),
        r#"{"content_type_overrides": {"*/*": "application/octet-stream"}, "post_hooks": []}"#,
    )
    .unwrap();
    run_clean(
        "openapi-python-client",
        Command::new(&generator)
            .current_dir(dir.path())
            .args(["generate", "--path", "openapi.json", "--meta", "none"])
            .args([
                "--output-path",
                "confide_client",
                "--config",
                "generator.json",
            ]),
    );
    let printed = run_clean(
        "the Python scenario",
        Command::new(&python)
            .arg(tools.join("python_scenario.py"))
            .env("PYTHONPATH", dir.path())
            .envs(scenario_env),
    );
    assert!(printed.contains("scenario done"), "{printed}");

    // TypeScript, compiled strictly against the generated types, run by node.
    let ts = dir.path().join("ts");
    std::fs::create_dir(&ts).unwrap();
    std::os::unix::fs::symlink(&node_modules, ts.join("node_modules")).unwrap();
    std::fs::write(ts.join("package.json"), r#"{"type": "module"}"#).unwrap();
    std::fs::copy(tools.join("scenario.ts"), ts.join("scenario.ts")).unwrap();
    run_clean(
        "openapi-typescript",
        Command::new("node")
            .current_dir(&ts)
            .arg("node_modules/openapi-typescript/bin/cli.js")
            .args(["../openapi.json", "-o", "confide.d.ts"]),
    );
    run_clean(
        "tsc",
        Command::new("node")
            .current_dir(&ts)
            .arg("node_modules/typescript/bin/tsc")
            .args(["--strict", "--target", "es2022", "--module", "nodenext"])
            .args(["--moduleResolution", "nodenext", "--types", "node"])
            .args(["--outDir", "out", "scenario.ts"]),
    );
    let printed = run_clean(
        "the TypeScript scenario",
        Command::new("node")
            .current_dir(&ts)
            .arg("out/scenario.js")
            .envs(scenario_env),
    );
    assert!(printed.contains("scenario done"), "{printed}");
}
