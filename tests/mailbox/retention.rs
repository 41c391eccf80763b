//! Retention (issue 17): a practice's threads past its `retention_years` are deleted for
//! good, with their files, unless a legal hold covers them; each deletion is audited
//! without content.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, Backend, Binary, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    retention_deletes_old_threads_with_their_files_but_not_held_ones,
    retention_years_is_checked_and_can_be_turned_off,
    purge_dry_run_lists_and_deletes_nothing,
);

const YEAR_MINUTES: i64 = 366 * 24 * 60;

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    let mut conn = app.state.store.read().await.unwrap();
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn retention_deletes_old_threads_with_their_files_but_not_held_ones(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, settings) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"retention_years": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["retention_years"], 1);

    let file = app.upload_text(&cast.provider, "lab.txt").await;
    let (status, old) = app
        .post(
            "/api/v1/threads",
            &cast.provider,
            json!({"to": [user(&cast.client)], "subject": "Old", "body": "From long ago.",
                   "attachment_ids": [file]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{old}");
    let old = old["id"].as_str().unwrap().to_string();
    let held = app
        .send(&cast.provider, &[&user(&cast.other_client)], "Held")
        .await;
    let noted = app
        .send(&cast.provider, &[&user(&cast.client)], "Noted later")
        .await;
    let (status, hold) = app
        .post(
            "/api/v1/legal-holds",
            &cast.admin,
            json!({"client_id": cast.other_client.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");

    // A year and a day later: a new thread, and the two old ones.
    app.clock.advance_minutes(YEAR_MINUTES);
    let provider = app.login_as(&cast.practice, &cast.provider.email).await;
    let client = app.login_as(&cast.practice, &cast.client.email).await;
    let admin = app.login_as(&cast.practice, &cast.admin.email).await;
    let new = app.send(&provider, &[&user(&cast.client)], "New").await;
    // An internal note is activity too, though it does not move the thread for clients.
    let (status, note) = app
        .post(
            &format!("/api/v1/threads/{noted}/notes"),
            &provider,
            json!({"body": "Follow up next year."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");

    let expired = confide::service::retention::expired(&app.state, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = expired.iter().map(|e| e.thread_id.as_str()).collect();
    assert_eq!(
        ids,
        [old.as_str()],
        "neither the held thread nor the one with a recent note is a candidate"
    );
    let purged = confide::service::retention::purge(&app.state)
        .await
        .unwrap();
    assert_eq!(purged, 1);

    for who in [&provider, &client] {
        let r = app.get(&format!("/api/v1/threads/{old}"), who).await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM messages WHERE thread_id = $1",
            &old
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM attachments WHERE id = $1",
            &file
        )
        .await,
        0,
        "its file went too"
    );
    for (id, who) in [(&held, &provider), (&new, &client), (&noted, &client)] {
        let (status, _) = app.get(&format!("/api/v1/threads/{id}"), who).await;
        assert_eq!(status, StatusCode::OK);
    }
    let purge_rows = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'purge_thread' AND object_id = $1 \
         AND actor_id IS NULL",
        &old,
    )
    .await;
    assert_eq!(purge_rows, 1, "one audit row, by the server itself");

    // Released, the held thread goes at the next purge.
    let hold_id = hold["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/api/v1/legal-holds/{hold_id}"), &admin)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        confide::service::retention::purge(&app.state)
            .await
            .unwrap(),
        1
    );
    let r = app.get(&format!("/api/v1/threads/{held}"), &provider).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}

async fn retention_years_is_checked_and_can_be_turned_off(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    for years in [0, 101] {
        let r = app
            .patch(
                "/api/v1/practice/settings",
                &cast.admin,
                json!({"retention_years": years}),
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(r.1["field"], "retention_years");
    }
    let r = app
        .patch(
            "/api/v1/practice/settings",
            &cast.provider,
            json!({"retention_years": 7}),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let (status, settings) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"retention_years": 7}),
        )
        .await;
    assert_eq!(
        (status, &settings["retention_years"]),
        (StatusCode::OK, &json!(7))
    );
    let (status, settings) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"retention_years": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(settings.get("retention_years").is_none(), "{settings}");
    // Off: nothing is ever a candidate, however old.
    app.send(&cast.provider, &[&user(&cast.client)], "Kept")
        .await;
    app.clock.advance_minutes(200 * YEAR_MINUTES);
    assert!(confide::service::retention::expired(&app.state, 100)
        .await
        .unwrap()
        .is_empty());
}

/// The command line runs on the system clock: the thread is made two years old in the
/// database.
async fn purge_dry_run_lists_and_deletes_nothing(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, _) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"retention_years": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let old = app
        .send(&cast.provider, &[&user(&cast.client)], "Old")
        .await;
    let two_years_ago = chrono::Utc::now().timestamp_millis() - 2 * 366 * 24 * 3_600_000;
    {
        let mut conn = app.state.store.write().await.unwrap();
        sqlx::query("UPDATE threads SET last_activity_at = $1 WHERE id = $2")
            .bind(two_years_ago)
            .bind(&old)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let confide = |args: &[&str]| {
        let out = Binary::command(&app.db, &[("CONFIDE__LOG__LEVEL", "warn")])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = confide(&["purge", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("oak {old} last active")), "{out}");
    assert!(out.contains("1 threads would be deleted"), "{out}");
    let (status, _) = app
        .get(&format!("/api/v1/threads/{old}"), &cast.client)
        .await;
    assert_eq!(status, StatusCode::OK, "a dry run deletes nothing");

    let (code, out) = confide(&["purge"]);
    assert_eq!((code, out.trim()), (0, "1 threads deleted"));
    let r = app
        .get(&format!("/api/v1/threads/{old}"), &cast.client)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}
