//! Quick notes into a client's chart, chart notes, FHIR output and thread exports
//! (DESIGN.md §2 Quick note). Every test runs on SQLite and, when
//! CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;

use std::io::Write;
use std::process::{Command, Stdio};

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use helpers::{assert_problem, user, Backend, Cast, TestApp};

on_both_backends!(
    quick_note_saves_the_transcript_to_the_clients_chart,
    quick_note_takes_given_content,
    quick_note_requires_a_single_client,
    quick_note_is_for_staff_participants_only,
    quick_note_is_made_by_a_provider_or_admin_taking_part,
    chart_notes_are_amended_never_deleted,
    clients_cannot_read_chart_notes,
    chart_notes_are_clinical_records_for_providers_and_admins,
    chart_note_as_fhir_document_reference,
    thread_export_is_csv_with_one_row_per_message,
    thread_export_keeps_other_clients_private,
    chart_work_is_audited,
);

async fn conversation(app: &TestApp, cast: &Cast) -> String {
    let (_, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.biller)],
            "Sleep check-in",
            "How did you sleep this week?",
        )
        .await;
    let id = thread["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .reply(
            &cast.client,
            &id,
            json!({"body": "Better, about seven hours a night."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    id
}

async fn quick_note_saves_the_transcript_to_the_clients_chart(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (status, note) = app.quick_note(&cast.provider, &thread, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["client_id"], cast.client.id.as_str());
    assert_eq!(note["source_thread_id"], thread.as_str());
    let content = note["content"].as_str().unwrap();
    assert!(content.starts_with("# Sleep check-in\n"), "{content}");
    for expected in [
        "**Pat Provider** (provider)",
        "How did you sleep this week?",
        "**Casey Client** (client)",
        "Better, about seven hours a night.",
    ] {
        assert!(
            content.contains(expected),
            "{expected:?} missing from {content}"
        );
    }
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(
        content.contains(&format!(" — {year}-")),
        "times are in the transcript: {content}"
    );
    let (status, list) = app
        .get(
            &format!("/api/v1/people/{}/chart-notes", cast.client.id),
            &cast.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["chart_notes"].as_array().unwrap().len(), 1);
}

async fn quick_note_takes_given_content(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (status, note) = app
        .quick_note(
            &cast.provider,
            &thread,
            json!({"content": "Client reports improved sleep."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(note["content"], "Client reports improved sleep.");
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/v1/chart-notes/{}",
            note["id"].as_str().unwrap()
        )))
        .bearer_auth(&cast.provider.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(resp.text().await.unwrap(), "Client reports improved sleep.");
    let result = app
        .quick_note(&cast.provider, &thread, json!({"content": "   "}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "content");
}

async fn quick_note_requires_a_single_client(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app.person("oak", Role::Client, "Sam Second").await;
    let two = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&second)],
            "Group",
        )
        .await;
    let none = app
        .send(&cast.provider, &[&user(&cast.biller)], "Staff only")
        .await;
    for (thread, who) in [(&two, &cast.provider), (&none, &cast.provider)] {
        let result = app
            .post(
                &format!("/api/v1/threads/{thread}/quick-note"),
                who,
                json!({}),
            )
            .await;
        assert_problem(
            &result,
            StatusCode::CONFLICT,
            "quick_note_requires_single_client",
        );
    }
    // A provider who takes part in a single-client thread may take one, more than once.
    let one = app
        .send(
            &cast.biller,
            &[&user(&cast.client), &user(&cast.provider)],
            "Invoice",
        )
        .await;
    for who in [&cast.provider, &cast.provider] {
        assert_eq!(
            app.post(&format!("/api/v1/threads/{one}/quick-note"), who, json!({}))
                .await
                .0,
            StatusCode::CREATED
        );
    }
}

async fn quick_note_is_for_staff_participants_only(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let result = app.quick_note(&cast.client, &thread, json!({})).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    // Not a participant, even an administrator: the thread is not found.
    let result = app.quick_note(&cast.admin, &thread, json!({})).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn chart_notes_are_amended_never_deleted(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (_, note) = app
        .quick_note(
            &cast.provider,
            &thread,
            json!({"content": "First version."}),
        )
        .await;
    let id = note["id"].as_str().unwrap();
    let (status, amended) = app
        .put(
            &format!("/api/v1/chart-notes/{id}"),
            &cast.admin,
            json!({"content": "Second version."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{amended}");
    assert_eq!(amended["version"], 2);
    assert_eq!(amended["content"], "Second version.");
    let versions: Vec<&str> = amended["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["First version.", "Second version."]);
    assert_eq!(amended["versions"][1]["author_name"], "Avery Admin");
    // No route deletes a note, and the database refuses it too.
    let (status, _) = app
        .delete(&format!("/api/v1/chart-notes/{id}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let mut conn = app.state.store.write().await.unwrap();
    assert!(sqlx::query("DELETE FROM chart_notes")
        .execute(&mut *conn)
        .await
        .is_err());
    assert!(sqlx::query("UPDATE chart_note_versions SET content = 'x'")
        .execute(&mut *conn)
        .await
        .is_err());
    drop(conn);
    // Deleting the source thread leaves the chart as it was.
    app.delete(&format!("/api/v1/threads/{thread}"), &cast.provider)
        .await;
    let (status, kept) = app
        .get(
            &format!("/api/v1/chart-notes/{id}?format=json"),
            &cast.provider,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["versions"].as_array().unwrap().len(), 2);
}

async fn clients_cannot_read_chart_notes(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (_, note) = app.quick_note(&cast.provider, &thread, json!({})).await;
    let id = note["id"].as_str().unwrap();
    for result in [
        app.get(&format!("/api/v1/chart-notes/{id}"), &cast.client)
            .await,
        app.get(
            &format!("/api/v1/people/{}/chart-notes", cast.client.id),
            &cast.client,
        )
        .await,
        app.put(
            &format!("/api/v1/chart-notes/{id}"),
            &cast.client,
            json!({"content": "Mine now"}),
        )
        .await,
    ] {
        assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    }
    // Another practice's staff find nothing.
    let elm = app.create_practice("elm").await;
    let stranger = app.admin(&elm).await;
    let result = app
        .get(&format!("/api/v1/chart-notes/{id}"), &stranger)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .get(
            &format!("/api/v1/people/{}/chart-notes", cast.client.id),
            &stranger,
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

/// A biller who takes part in the thread (and so reads it) still makes no quick note; the
/// provider who takes part does.
async fn quick_note_is_made_by_a_provider_or_admin_taking_part(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (status, _) = app.thread(&cast.biller, &thread).await;
    assert_eq!(status, StatusCode::OK, "the biller takes part");
    let result = app.quick_note(&cast.biller, &thread, json!({})).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app.quick_note(&cast.provider, &thread, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// The review's finding: a quick note copies the transcript, so staff who may not read the
/// thread read it through the chart. Front office, billers and external agents get 404 on
/// every chart-note route (read, list, FHIR, amend); providers and admins get the note, and
/// each read is audited.
async fn chart_notes_are_clinical_records_for_providers_and_admins(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (front, agent) = (&cast.front, &cast.agent);
    let thread = conversation(&app, &cast).await;
    let (_, note) = app.quick_note(&cast.provider, &thread, json!({})).await;
    let id = note["id"].as_str().unwrap();
    for who in [&cast.biller, front, agent] {
        for result in [
            app.get(&format!("/api/v1/chart-notes/{id}"), who).await,
            app.get(&format!("/api/v1/chart-notes/{id}?format=fhir"), who)
                .await,
            app.get(
                &format!("/api/v1/people/{}/chart-notes", cast.client.id),
                who,
            )
            .await,
            app.put(
                &format!("/api/v1/chart-notes/{id}"),
                who,
                json!({"content": "Amended by someone who may not."}),
            )
            .await,
        ] {
            assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
            assert!(!result.1.to_string().contains("seven hours"));
        }
    }
    let reads_before = audited_reads(&app).await;
    for who in [&cast.provider, &cast.admin] {
        let (status, read) = app
            .get(&format!("/api/v1/chart-notes/{id}?format=json"), who)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            read["content"].as_str().unwrap().contains("seven hours"),
            "{read}"
        );
        let (status, list) = app
            .get(
                &format!("/api/v1/people/{}/chart-notes", cast.client.id),
                who,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["chart_notes"].as_array().unwrap().len(), 1, "{list}");
    }
    assert_eq!(audited_reads(&app).await, reads_before + 4);
    let (_, unchanged) = app
        .get(
            &format!("/api/v1/chart-notes/{id}?format=json"),
            &cast.provider,
        )
        .await;
    assert_eq!(unchanged["version"], 1);
}

/// How many chart-note reads (one note, or a client's list) the audit log holds.
async fn audited_reads(app: &TestApp) -> i64 {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events \
         WHERE action IN ('read_chart_note', 'list_chart_notes') AND outcome = 'success'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// The Python interpreter with fhir.resources, if there is one.
fn fhir_python() -> Option<String> {
    let python = std::env::var("CONFIDE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import fhir.resources"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    helpers::report_skip("the Python module fhir.resources (CONFIDE_TEST_PYTHON)");
    None
}

async fn chart_note_as_fhir_document_reference(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (_, note) = app.quick_note(&cast.provider, &thread, json!({})).await;
    let id = note["id"].as_str().unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/chart-notes/{id}?format=fhir")))
        .bearer_auth(&cast.provider.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/fhir+json");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["resourceType"], "DocumentReference");
    assert_eq!(doc["status"], "current");
    assert_eq!(doc["docStatus"], "final");
    assert_eq!(
        doc["subject"]["reference"],
        format!("Patient/{}", cast.client.id)
    );
    let data = doc["content"][0]["attachment"]["data"].as_str().unwrap();
    let decoded =
        String::from_utf8(data_encoding::BASE64.decode(data.as_bytes()).unwrap()).unwrap();
    assert_eq!(decoded, note["content"].as_str().unwrap());
    if let Some(python) = fhir_python() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/validate_fhir.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // And a broken one is caught: the validator can fail.
        let mut broken = doc.clone();
        broken.as_object_mut().unwrap().remove("content");
        let mut child =
            Command::new(std::env::var("CONFIDE_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(broken.to_string().as_bytes())
            .unwrap();
        assert!(!child.wait_with_output().unwrap().status.success());
    }
    let result = app
        .get(
            &format!("/api/v1/chart-notes/{id}?format=pdf"),
            &cast.provider,
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "format");
}

async fn thread_export_is_csv_with_one_row_per_message(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Export",
            "First line, with a comma\nand a \"quoted\" word.",
        )
        .await;
    let id = thread["id"].as_str().unwrap();
    app.reply(
        &cast.client,
        id,
        json!({"body": "=HYPERLINK(\"http://evil\")"}),
    )
    .await;
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/threads/{id}/export?format=csv")))
        .bearer_auth(&cast.client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"thread-"));
    let body = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["time", "sender", "role", "text", "attachments"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "Pat Provider");
    assert_eq!(&rows[0][2], "provider");
    assert_eq!(
        &rows[0][3],
        "First line, with a comma\nand a \"quoted\" word."
    );
    assert_eq!(
        &rows[1][3], "'=HYPERLINK(\"http://evil\")",
        "formulas are defused"
    );
    let result = app
        .get(
            &format!("/api/v1/threads/{id}/export?format=xlsx"),
            &cast.client,
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    let result = app
        .get(&format!("/api/v1/threads/{id}/export"), &cast.biller)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn thread_export_keeps_other_clients_private(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app.person("oak", Role::Client, "Sam Second").await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&second)],
            "Group session",
        )
        .await;
    for (me, other) in [(&cast.client, "Sam Second"), (&second, "Casey Client")] {
        let resp = app
            .client
            .get(app.url(&format!("/api/v1/threads/{id}/export")))
            .bearer_auth(&me.token)
            .send()
            .await
            .unwrap();
        let body = resp.text().await.unwrap();
        assert!(!body.contains(other), "{body}");
        assert!(body.contains("Pat Provider"));
    }
}

async fn chart_work_is_audited(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = conversation(&app, &cast).await;
    let (_, note) = app.quick_note(&cast.provider, &thread, json!({})).await;
    let id = note["id"].as_str().unwrap();
    app.get(&format!("/api/v1/chart-notes/{id}"), &cast.provider)
        .await;
    app.put(
        &format!("/api/v1/chart-notes/{id}"),
        &cast.provider,
        json!({"content": "Amended."}),
    )
    .await;
    app.get(
        &format!("/api/v1/people/{}/chart-notes", cast.client.id),
        &cast.provider,
    )
    .await;
    app.get(&format!("/api/v1/threads/{thread}/export"), &cast.client)
        .await;
    let (_, audit) = app.get("/api/v1/audit?limit=500", &cast.admin).await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "quick_note",
        "read_chart_note",
        "amend_chart_note",
        "list_chart_notes",
        "export_thread",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    assert!(
        !audit.to_string().contains("seven hours"),
        "no content in the audit log"
    );
}
