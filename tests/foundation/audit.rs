//! The audit log: what is recorded, that it holds no secrets, that it is append-only and
//! hash-chained (issue 2 §8).

use confide::domain::Role;
use confide::store::audit::verify_chain;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    sign_ins_sign_outs_and_people_changes_are_audited_without_secrets,
    audit_log_is_append_only,
    audit_log_is_hash_chained,
    only_admins_read_the_audit_log,
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
    let verified = verify_chain(&mut conn).await.unwrap();
    assert_eq!(verified, Ok(14));
}

async fn only_admins_read_the_audit_log(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let result = app.get("/api/v1/audit", &provider).await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
}
