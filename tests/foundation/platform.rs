//! The HTTP contract: problem+json everywhere, security headers, OpenAPI and docs, health,
//! metrics, body limits, and concurrent writers (issue 2 §3, §7).

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    every_response_carries_the_security_headers,
    openapi_document_and_interactive_docs_are_served,
    health_readiness_and_metrics,
    unknown_routes_and_methods_are_problems,
    oversized_bodies_are_refused,
    concurrent_writers_never_see_database_locked,
);

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, api) in [
        ("/healthz", false),
        ("/api/v1/me", true),
        ("/api/openapi.json", false),
        ("/nowhere", false),
        ("/setup/bogus", false),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if api {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
}

async fn openapi_document_and_interactive_docs_are_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["servers"][0]["url"], "/api/v1");
    for path in [
        "/sessions",
        "/sessions/current",
        "/me",
        "/me/password",
        "/people",
        "/people/{id}",
        "/groups",
        "/audit",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} is not documented"
        );
    }
    assert!(spec["paths"]["/people"]["post"]["responses"]
        .get("409")
        .is_some());
    let docs = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(docs.text().await.unwrap().contains("swagger"));
}

async fn health_readiness_and_metrics(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.sign_in(&practice, "admin@oak.example", "wrong-password-123")
        .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("confide_sign_in_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"confide_http_requests_total{method="POST",route="sign_in",status="401"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("confide_http_request_duration_seconds_bucket"));
    // The database going away shows in readiness, not in liveness.
    app.state.store.close().await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "database_unreachable"
    );
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let result = app.get("/api/v1/nothing-here", &admin).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .call(
            Method::PUT,
            "/api/v1/me",
            Some(&admin.token),
            Some(json!({})),
        )
        .await;
    assert_problem(
        &result,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.json_body_max_bytes = 1024).await;
    let body = json!({"practice": "oak", "email": "a@b.org", "password": "x".repeat(2000)});
    let result = app
        .call(Method::POST, "/api/v1/sessions", None, Some(body))
        .await;
    assert_problem(&result, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

async fn concurrent_writers_never_see_database_locked(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_sibling(|_| {}).await;
    let practice = first.create_practice("oak").await;
    let admin = first.admin(&practice).await;
    let front = first
        .person(&practice, Role::FrontOffice, "Fran Front")
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (base, token) = if i % 2 == 0 {
            (first.base.clone(), admin.token.clone())
        } else {
            (second.base.clone(), front.token.clone())
        };
        let client = first.client.clone();
        tasks.spawn(async move {
            client
                .post(format!("{base}/api/v1/people"))
                .bearer_auth(token)
                .json(&json!({"role": "client", "name": format!("Client {i}"), "email": format!("c{i}@oak.example")}))
                .send()
                .await
                .map(|r| r.status())
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), StatusCode::CREATED);
    }
    let (_, page) = first.get("/api/v1/people?limit=200", &admin).await;
    assert_eq!(page["people"].as_array().unwrap().len(), 42);
}

/// An undeclared method answers 405 with `Allow` naming the methods the path takes
/// (RFC 9110), for a literal path and for one with an id.
#[tokio::test]
async fn an_undeclared_method_answers_405_with_allow() {
    let (app, practice) = TestApp::with_practice(Backend::Sqlite).await;
    let admin = app.admin(&practice).await;
    for (method, path, allow) in [
        (Method::PUT, "/api/v1/threads", "GET, HEAD, POST"),
        (
            Method::TRACE,
            "/api/v1/threads/no-such-thread",
            "DELETE, GET, HEAD, PATCH",
        ),
        (Method::DELETE, "/api/v1/search", "POST"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            resp.headers()["allow"].to_str().unwrap(),
            allow,
            "{method} {path}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed");
    }
}

/// The document says what the server enforces, in shapes code generators take: no
/// `allOf` wrapped around a reference, request objects closed to unknown fields (which the
/// server refuses), 415 declared wherever a body is taken, and the event stream described
/// event by event.
#[tokio::test]
async fn the_document_declares_what_the_server_enforces() {
    let (app, practice) = TestApp::with_practice(Backend::Sqlite).await;
    let text = served_document(&app).await;
    assert!(!text.contains("allOf"), "a reference wrapped in allOf");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op.pointer("/requestBody/content") else {
                continue;
            };
            bodies += 1;
            assert!(
                op["responses"]["415"].is_object(),
                "{method} {path} takes a body but does not declare 415"
            );
            if let Some(reference) = content
                .pointer("/application~1json; charset=utf-8/schema/$ref")
                .and_then(Value::as_str)
            {
                let name = reference.trim_start_matches("#/components/schemas/");
                assert_eq!(
                    schemas[name]["additionalProperties"],
                    json!(false),
                    "{method} {path}: {name} is not closed"
                );
            }
        }
    }
    assert!(bodies > 20, "only {bodies} operations take a body");
    // And the server refuses what the document closes, naming the field.
    let admin = app.admin(&practice).await;
    let result = app
        .call(
            Method::POST,
            "/api/v1/folders",
            Some(&admin.token),
            Some(json!({"name": "Billing", "colour": "red"})),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "colour", "{}", result.1);
    let events = &doc["paths"]["/events"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"]["schema"];
    assert_eq!(events["properties"]["event"]["enum"], json!(["state"]));
    assert_eq!(
        events["properties"]["data"]["contentSchema"]["$ref"],
        "#/components/schemas/StateEventOut"
    );
    let emoji = doc["paths"]["/messages/{id}/reactions/{emoji}"]["put"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "emoji")
        .unwrap();
    assert_eq!(
        emoji["schema"]["enum"].as_array().unwrap().len(),
        confide::domain::conversations::REACTIONS.len()
    );
    // A new thread links to every operation on it; an upload, to its download.
    let links = &doc["paths"]["/threads"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        links["get_thread"],
        json!({"operationId": "get_thread", "parameters": {"path.id": "$response.body#/id"}})
    );
    assert!(links["reply"].is_object() && links["delete_thread"].is_object());
    assert!(links.get("list_threads").is_none(), "{links}");
    assert_eq!(
        doc["paths"]["/attachments"]["post"]["responses"]["201"]["links"]["download_attachment"]
            ["parameters"]["path.id"],
        "$response.body#/attachments/0/id"
    );
}

/// The OpenAPI document as the server serves it.
async fn served_document(app: &TestApp) -> String {
    app.client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Every API change shows up in review as a change to tests/snapshots/openapi.json.
/// Run with UPDATE_SNAPSHOTS=1 to accept a change.
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = served_document(&app).await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &spec).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).expect("snapshot exists; run with UPDATE_SNAPSHOTS=1");
    assert!(
        spec == expected,
        "the OpenAPI document changed; review it and run with UPDATE_SNAPSHOTS=1"
    );
}
