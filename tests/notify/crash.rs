//! Nothing lost, nothing doubled: notifications queued while the mail server is down go
//! out once the server is back after a kill -9, and none twice.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestDatabase, PASSWORD};
use crate::mail::{free_port, python_with, SmtpSink};
use crate::on_both_backends;

on_both_backends!(queued_notifications_survive_a_kill_and_go_out_once);

fn confide(db: &TestDatabase, smtp_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confide"));
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let config = db.data_dir().join("crash.toml");
    std::fs::write(&config, "").unwrap();
    cmd.env("CONFIDE_CONFIG", &config)
        .env("CONFIDE__DATABASE__URL", &db.url)
        .env("CONFIDE__STORAGE__DATA_DIR", db.data_dir())
        .env("CONFIDE__SERVER__BIND", "127.0.0.1:0")
        .env("CONFIDE__LOG__LEVEL", "error")
        .env("CONFIDE__MAIL__TRANSPORT", "smtp")
        .env("CONFIDE__MAIL__HOST", "127.0.0.1")
        .env("CONFIDE__MAIL__PORT", smtp_port.to_string())
        .env("CONFIDE__MAIL__TLS", "none")
        .env("CONFIDE__NOTIFICATIONS__POLL_INTERVAL_MS", "100");
    cmd
}

fn serve(db: &TestDatabase, smtp_port: u16) -> (Child, String) {
    let mut child = confide(db, smtp_port)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().rsplit(' ').next().unwrap().to_string())
}

async fn queued_notifications_survive_a_kill_and_go_out_once(backend: Backend) {
    if python_with("aiosmtpd").is_none() {
        return;
    }
    let db = TestDatabase::create(backend).await;
    let smtp_port = free_port();
    let mut setup = confide(&db, smtp_port)
        .args([
            "admin",
            "create-practice",
            "--slug",
            "oak",
            "--name",
            "Oak",
            "--admin-email",
            "avery@oak.example",
            "--admin-name",
            "Avery Admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    setup
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(setup.wait().unwrap().success());
    let mut add = confide(&db, smtp_port)
        .args([
            "admin",
            "create-user",
            "--practice",
            "oak",
            "--role",
            "front_office",
            "--email",
            "fran@oak.example",
            "--name",
            "Fran Front",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    // The mail server is down: sending fails and is retried.
    let (mut server, base) = serve(&db, smtp_port);
    let http = reqwest::Client::new();
    let signed_in: Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"practice": "oak", "email": "avery@oak.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["token"].as_str().unwrap();
    let people: Value = http
        .get(format!("{base}/api/v1/people?role=front_office"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fran = people["people"][0]["id"].as_str().unwrap();
    let sent = http
        .post(format!("{base}/api/v1/threads"))
        .bearer_auth(token)
        .json(&json!({"to": [format!("user:{fran}")], "subject": "Queued", "body": "Waiting for the mail server."}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let kill = Command::new("kill")
        .args(["-9", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let _ = server.wait();

    // The mail server comes back, and so does Confide.
    let sink = SmtpSink::start(smtp_port).unwrap();
    let (mut server, _) = serve(&db, smtp_port);
    let emails = sink.wait_for("fran@oak.example", 1, 45).await;
    assert_eq!(
        emails.len(),
        1,
        "the queued notification went out after the restart"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sink.wait_for("fran@oak.example", 1, 0).await.len(),
        1,
        "and only once"
    );
    let _ = server.kill();
    let _ = server.wait();
}
