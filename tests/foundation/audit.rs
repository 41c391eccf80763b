//! The audit log: what is recorded, that it holds no secrets, that it is append-only and
//! hash-chained (issue 2 §8).

use confide::domain::Role;
use confide::store::audit::verify_chain;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Binary, Session, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    sign_ins_sign_outs_and_people_changes_are_audited_without_secrets,
    audit_log_is_append_only,
    audit_log_is_hash_chained,
    every_field_of_an_event_is_chained_the_same_way_on_either_backend,
    only_admins_read_the_audit_log,
    audit_verify_finds_an_edited_a_removed_and_a_truncated_event,
    an_anchor_proves_history_was_not_rewritten,
    the_audit_log_exports_as_jsonl_and_csv_for_admins_only,
    the_command_line_verifies_the_chain_and_prints_its_anchor,
    reads_of_health_information_are_audited,
);

fn actions(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn sign_ins_sign_outs_and_people_changes_are_audited_without_secrets(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let wrong = "wrong-password-for-audit";
    assert_eq!(
        app.sign_in(&practice, "admin@oak.example", wrong)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let admin = app.admin(&practice).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let (status, _) = app
        .update_person(&admin, &client.id, json!({"status": "inactive"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &admin,
            json!({"current_password": PASSWORD, "new_password": "saffron-glacier-lattice-41"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(
            Method::DELETE,
            "/api/v1/sessions/current",
            Some(&client.token),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    let (status, page) = app.get("/api/v1/audit", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let got = actions(&page);
    for expected in [
        ("sign_in", "failure"),
        ("sign_in", "success"),
        ("create_person", "success"),
        ("change_person_status", "success"),
        ("change_password", "success"),
        ("sign_out", "success"),
    ] {
        assert!(
            got.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {got:?}"
        );
    }
    let status_change = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "change_person_status")
        .unwrap();
    assert_eq!(status_change["actor_id"], admin.id.as_str());
    assert_eq!(status_change["object_id"], client.id.as_str());
    assert!(status_change["session_ref"].as_str().is_some());
    assert_eq!(status_change["ip"], "127.0.0.1");
    let text = page.to_string();
    for secret in [
        PASSWORD,
        wrong,
        "saffron-glacier-lattice-41",
        admin.token.as_str(),
        client.token.as_str(),
    ] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
}

async fn audit_log_is_append_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_practice("oak").await;
    let mut conn = app.state.store.write().await.unwrap();
    assert!(sqlx::query("UPDATE audit_events SET action = 'nothing'")
        .execute(&mut *conn)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit_events")
        .execute(&mut *conn)
        .await
        .is_err());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

async fn audit_log_is_hash_chained(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    // Concurrent appenders must not fork the chain.
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/sessions"));
        let body = json!({"practice": practice, "email": "admin@oak.example", "password": "wrong-password-123"});
        attempts.spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status())
        });
    }
    while let Some(result) = attempts.join_next().await {
        result.unwrap().unwrap();
    }
    let mut conn = app.state.store.read().await.unwrap();
    let verified = verify_chain(&mut conn, None).await.unwrap();
    assert_eq!((verified.events, verified.broken_at), (14, None));
}

/// PostgreSQL chains an event in the database (migration 0021) and SQLite in the
/// application; `verify_chain` recomputes every hash with the application's code, so any
/// difference (bytes against characters, an absent field, a number's text) breaks it.
async fn every_field_of_an_event_is_chained_the_same_way_on_either_backend(backend: Backend) {
    use confide::store::audit::{append, NewAuditEvent};
    let app = TestApp::spawn(backend).await;
    let events = [
        NewAuditEvent {
            at: -1,
            practice_id: Some("præctice-ü".into()),
            actor_id: None,
            action: "sign_in".into(),
            object_type: Some(String::new()),
            object_id: Some("Zoë's ✓ 𝄞".into()),
            outcome: "failure".into(),
            ip: Some("2001:db8::1".into()),
            session_ref: None,
        },
        NewAuditEvent {
            at: 1_796_294_565_550,
            action: "+-:".into(),
            outcome: "-".into(),
            session_ref: Some("+".into()),
            ..NewAuditEvent::default()
        },
    ];
    let mut tx = app.state.store.begin().await.unwrap();
    for event in &events {
        append(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut conn = app.state.store.read().await.unwrap();
    let verified = verify_chain(&mut conn, None).await.unwrap();
    assert_eq!((verified.events, verified.broken_at), (2, None));
    let stored: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, object_id FROM audit_events ORDER BY seq")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            ("sign_in".to_string(), Some("Zoë's ✓ 𝄞".to_string())),
            ("+-:".to_string(), None)
        ]
    );
}

async fn only_admins_read_the_audit_log(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let result = app.get("/api/v1/audit", &provider).await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
}

/// Lets the test change the audit log as someone with the database in hand could: the
/// triggers that keep it append-only are dropped first.
async fn tamper(app: &TestApp, backend: Backend, sql: &str) {
    let mut conn = app.state.store.write().await.unwrap();
    let unlock: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER IF EXISTS audit_events_no_update",
            "DROP TRIGGER IF EXISTS audit_events_no_delete",
        ],
        Backend::Postgres => &["ALTER TABLE audit_events DISABLE TRIGGER USER"],
    };
    for statement in unlock.iter().chain([&sql]) {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
}

async fn verification(app: &TestApp, admin: &Session, anchor: Option<&str>) -> Value {
    let path = match anchor {
        Some(a) => format!("/api/v1/audit/verify?anchor={a}"),
        None => "/api/v1/audit/verify".to_string(),
    };
    let (status, body) = app.get(&path, admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A practice with a few audited events: its admin, signed in.
async fn audited(backend: Backend) -> (TestApp, Session) {
    let (app, practice) = TestApp::with_practice(backend).await;
    for _ in 0..3 {
        app.sign_in(&practice, "admin@oak.example", "wrong-password-123")
            .await;
    }
    let admin = app.admin(&practice).await;
    (app, admin)
}

async fn audit_verify_finds_an_edited_a_removed_and_a_truncated_event(backend: Backend) {
    let (app, admin) = audited(backend).await;
    let intact = verification(&app, &admin, None).await;
    assert_eq!(intact["intact"], true, "{intact}");
    let events = intact["events"].as_i64().unwrap();
    assert!(events >= 6, "{intact}");
    assert_eq!(intact["head_seq"], events);
    assert!(intact.get("broken_at").is_none());
    let provider = app.person("oak", Role::Provider, "Pat Provider").await;
    let r = app.get("/api/v1/audit/verify", &provider).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .get("/api/v1/audit/verify?anchor=3:not-a-hash", &admin)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(r.1["field"], "anchor");

    // An edited event.
    tamper(
        &app,
        backend,
        "UPDATE audit_events SET outcome = 'success' WHERE seq = 3",
    )
    .await;
    let broken = verification(&app, &admin, None).await;
    assert_eq!(broken["intact"], false, "{broken}");
    assert_eq!(broken["broken_at"], 3, "{broken}");
    assert_eq!(broken["events"], 2);

    // A removed event.
    let (app, admin) = audited(backend).await;
    tamper(&app, backend, "DELETE FROM audit_events WHERE seq = 4").await;
    assert_eq!(verification(&app, &admin, None).await["broken_at"], 4);

    // The newest events removed: the chain holds, but not up to the head.
    let (app, admin) = audited(backend).await;
    let head = verification(&app, &admin, None).await["head_seq"]
        .as_i64()
        .unwrap();
    tamper(
        &app,
        backend,
        &format!("DELETE FROM audit_events WHERE seq >= {}", head - 1),
    )
    .await;
    let broken = verification(&app, &admin, None).await;
    assert_eq!(broken["broken_at"], head - 1, "{broken}");
}

async fn an_anchor_proves_history_was_not_rewritten(backend: Backend) {
    let (app, admin) = audited(backend).await;
    let before = verification(&app, &admin, None).await;
    let anchor = format!(
        "{}:{}",
        before["head_seq"],
        before["head_hash"].as_str().unwrap()
    );
    // A node started now writes that head to /metrics.
    let node = app.spawn_sibling(|_| {}).await;
    let line = format!(
        "confide_audit_anchor{{hash=\"{}\"}} {}",
        before["head_hash"].as_str().unwrap(),
        before["head_seq"]
    );
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = node.metrics().await;
        if metrics.contains(&line) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(&line), "{line} in {metrics}");

    app.sign_in("oak", "admin@oak.example", "wrong-password-123")
        .await;
    assert_eq!(
        verification(&app, &admin, Some(&anchor)).await["intact"],
        true
    );

    // History rewritten from seq 2 on, consistently: the chain alone looks intact, the
    // anchor does not.
    tamper(&app, backend, "DELETE FROM audit_events WHERE seq > 1").await;
    tamper(
        &app,
        backend,
        "UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_events WHERE seq = 1)",
    )
    .await;
    for _ in 0..8 {
        app.sign_in("oak", "admin@oak.example", "wrong-password-456")
            .await;
    }
    assert_eq!(verification(&app, &admin, None).await["intact"], true);
    let seq = before["head_seq"].as_i64().unwrap();
    let broken = verification(&app, &admin, Some(&anchor)).await;
    assert_eq!(broken["intact"], false, "{broken}");
    assert_eq!(broken["broken_at"], seq, "{broken}");
}

async fn export(app: &TestApp, who: &Session, query: &str) -> (StatusCode, String, String) {
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/audit/export{query}")))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

/// The seqs of `practice`'s audit events at or after `from` and before `to`
/// (milliseconds), as stored.
async fn stored_seqs(app: &TestApp, practice_slug: &str, (from, to): (i64, i64)) -> Vec<i64> {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar(
        "SELECT seq FROM audit_events WHERE at >= $2 AND at < $3 AND practice_id = \
         (SELECT id FROM practices WHERE slug = $1) ORDER BY seq",
    )
    .bind(practice_slug)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
}

async fn the_audit_log_exports_as_jsonl_and_csv_for_admins_only(backend: Backend) {
    let (app, admin) = audited(backend).await;
    // Another practice's events never show.
    let elm = app.create_practice("elm").await;
    app.sign_in(&elm, "admin@elm.example", "wrong-password-123")
        .await;

    let (status, kind, body) = export(&app, &admin, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(kind, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        stored_seqs(&app, "oak", (0, i64::MAX)).await,
        "oak's events, oldest first"
    );
    let last = lines.last().unwrap();
    assert_eq!(
        last["action"], "export_audit",
        "the export is audited: {last}"
    );
    assert_eq!(last["actor_id"], admin.id.as_str());
    assert_eq!(last["hash"].as_str().unwrap().len(), 64);
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));

    // CSV, and only what happened from a moment on.
    app.clock.advance_minutes(10);
    let from_ms = app.state.now();
    let from = chrono::DateTime::from_timestamp_millis(from_ms)
        .unwrap()
        .to_rfc3339();
    app.sign_in("oak", "admin@oak.example", "wrong-password-123")
        .await;
    let query = format!("?format=csv&from={}", from.replace('+', "%2B"));
    let (status, kind, body) = export(&app, &admin, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    let mut rows = body.lines();
    assert_eq!(
        rows.next(),
        Some("seq,at,actor_id,action,object_type,object_id,outcome,ip,session_ref,prev_hash,hash")
    );
    let seqs: Vec<i64> = rows
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, stored_seqs(&app, "oak", (from_ms, i64::MAX)).await);
    assert_eq!(seqs.len(), 2, "the failed sign-in and the export: {body}");
    let until = format!("?to={}", from.replace('+', "%2B"));
    let (_, _, body) = export(&app, &admin, &until).await;
    let seqs: Vec<i64> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, stored_seqs(&app, "oak", (0, from_ms)).await);

    // Bad filters name their field; only administrators export.
    for (query, field) in [
        ("?format=xml", "format"),
        ("?from=yesterday", "from"),
        ("?from=2026-12-01T10:00:00Z&to=2026-12-01T09:00:00Z", "to"),
    ] {
        let resp = app
            .client
            .get(app.url(&format!("/api/v1/audit/export{query}")))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_field", "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let provider = app.person("oak", Role::Provider, "Pat Provider").await;
    let (status, _, body) = export(&app, &provider, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

async fn the_command_line_verifies_the_chain_and_prints_its_anchor(backend: Backend) {
    let (app, admin) = audited(backend).await;
    let confide = |args: &[&str]| {
        let out = Binary::command(&app.db, &[("CONFIDE__LOG__LEVEL", "warn")])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let head = verification(&app, &admin, None).await;
    let anchor = format!(
        "{}:{}",
        head["head_seq"],
        head["head_hash"].as_str().unwrap()
    );
    let (code, out, err) = confide(&["audit", "anchor"]);
    assert_eq!((code, out.trim()), (0, anchor.as_str()), "{err}");
    let (code, out, err) = confide(&["audit", "verify", "--anchor", &anchor]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("audit chain intact"), "{out}");

    tamper(
        &app,
        backend,
        "UPDATE audit_events SET ip = '203.0.113.9' WHERE seq = 2",
    )
    .await;
    let (code, out, err) = confide(&["audit", "verify"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("broken at seq 2"), "{err}");
    let (code, _, err) = confide(&["audit", "verify", "--anchor", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("SEQ:HASH"), "{err}");
}

/// The audit rows of `actor` after `after` (a seq): (action, object type, object id).
async fn audited_since(app: &TestApp, actor: &str, after: i64) -> Vec<(String, String, String)> {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_as(
        "SELECT action, COALESCE(object_type, ''), COALESCE(object_id, '') FROM audit_events \
         WHERE actor_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(actor)
    .bind(after)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
}

async fn audit_head(app: &TestApp) -> i64 {
    let mut conn = app.state.store.read().await.unwrap();
    confide::store::audit::head(&mut conn).await.unwrap().0
}

/// Lists of threads (subjects, previews), drafts, scheduled sends, the directory, a
/// person and an attachment's details are reads of health information: each is audited
/// with what was shown, never its content.
async fn reads_of_health_information_are_audited(backend: Backend) {
    let (app, cast) = crate::helpers::TestApp::with_cast(backend).await;
    let provider = &cast.provider;
    let (status, draft) = app
        .post(
            "/api/v1/drafts",
            provider,
            json!({"subject": "Lab results", "body": "Your results are in."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let draft_id = draft["id"].as_str().unwrap().to_string();
    let attachment = app.upload_text(provider, "results.txt").await;

    let start = audit_head(&app).await;
    for path in [
        "/api/v1/threads?folder=inbox".to_string(),
        "/api/v1/drafts".into(),
        format!("/api/v1/drafts/{draft_id}"),
        "/api/v1/scheduled".into(),
        "/api/v1/people".into(),
        format!("/api/v1/people/{}", cast.client.id),
        format!("/api/v1/attachments/{attachment}/info"),
    ] {
        let (status, body) = app.get(&path, provider).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let practice_id: String = {
        let mut conn = app.state.store.read().await.unwrap();
        sqlx::query_scalar("SELECT practice_id FROM people WHERE id = $1")
            .bind(&provider.id)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    let row = |a: &str, t: &str, o: &str| (a.to_string(), t.to_string(), o.to_string());
    assert_eq!(
        audited_since(&app, &provider.id, start).await,
        vec![
            row("list_threads", "folder", "inbox"),
            row("list_drafts", "person", &provider.id),
            row("read_draft", "draft", &draft_id),
            row("list_scheduled", "person", &provider.id),
            row("list_people", "practice", &practice_id),
            row("read_person", "person", &cast.client.id),
            row("read_attachment_info", "attachment", &attachment),
        ]
    );

    // What nobody was shown is not: a draft of someone else's answers 404, unaudited.
    let start = audit_head(&app).await;
    let (status, _) = app
        .get(&format!("/api/v1/drafts/{draft_id}"), &cast.front)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(audited_since(&app, &cast.front.id, start).await.is_empty());
}
