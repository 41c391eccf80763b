//! `confide admin seed-demo`: a demo practice a newcomer can sign in to at once.

use confide::service::seed::seed_demo;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(seed_demo_makes_a_practice_to_explore);

async fn seed_demo_makes_a_practice_to_explore(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let demo = seed_demo(&app.state, "demo", 36, 7).await.unwrap();
    assert_eq!(demo.threads, 36);
    assert_eq!(demo.people.len(), 29);
    for (_, _, email) in &demo.people {
        let resp = app.sign_in("demo", email, &demo.password).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{email}");
    }
    let client = demo
        .people
        .iter()
        .find(|(role, _, _)| role.as_str() == "client")
        .unwrap();
    let resp = app.sign_in("demo", &client.2, &demo.password).await;
    let token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, folders) = app
        .call(reqwest::Method::GET, "/api/v1/folders", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let total: i64 = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["total"].as_i64().unwrap())
        .sum();
    assert!(total > 0, "{folders}");
    // A second demo under the same name is refused, not doubled.
    assert_eq!(
        seed_demo(&app.state, "demo", 1, 7)
            .await
            .err()
            .map(|e| e.code.as_str()),
        Some("slug_taken")
    );
}
