//! Privacy: a client never learns who the other clients of a thread are, never sees an
//! email address, and no markup that could run survives in a message.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, Session, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    nul_characters_are_refused_at_the_edge,
    clients_never_learn_who_the_other_clients_are,
    external_agents_are_invisible_to_clients,
    hostile_markdown_renders_nothing_executable,
);

/// Everything a client can fetch, concatenated.
async fn everything_visible_to(app: &TestApp, who: &Session, thread: &str) -> String {
    let mut seen = Vec::new();
    for path in [
        "/api/v1/threads".to_string(),
        "/api/v1/threads?folder=sent".into(),
        format!("/api/v1/threads/{thread}"),
        "/api/v1/folders".into(),
        "/api/v1/people?limit=200".into(),
        "/api/v1/groups".into(),
        "/api/v1/me".into(),
        "/api/v1/drafts".into(),
    ] {
        let (status, body) = app.get(&path, who).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push(body.to_string());
    }
    // Error responses must not name anyone either.
    let (_, refused) = app
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            who,
            json!({"body": "Can we talk about this?"}),
        )
        .await;
    seen.push(refused.to_string());
    seen.join("\n")
}

async fn clients_never_learn_who_the_other_clients_are(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let second = app.person("oak", Role::Client, "Sam Second").await;
    let third = app.person("oak", Role::Client, "Tia Third").await;
    let clients = [&cast.client, &second, &third];
    let to: Vec<String> = clients.iter().map(|c| user(c)).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let id = app
        .send(&cast.provider, &to, "Group session on Friday")
        .await;
    let names = ["Casey Client", "Sam Second", "Tia Third"];
    for (i, me) in clients.iter().enumerate() {
        let seen = everything_visible_to(&app, me, &id).await;
        for (j, other) in clients.iter().enumerate() {
            if i == j {
                continue;
            }
            assert!(
                !seen.contains(&other.id),
                "{} sees {}'s id",
                names[i],
                names[j]
            );
            assert!(
                !seen.contains(names[j]),
                "{} sees {}'s name",
                names[i],
                names[j]
            );
            assert!(
                !seen.contains(&other.email),
                "{} sees {}'s email",
                names[i],
                names[j]
            );
        }
        let (_, thread) = app.get(&format!("/api/v1/threads/{id}"), me).await;
        assert_eq!(thread["other_recipients"], 2);
        let mut shown: Vec<&str> = thread["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        shown.sort_unstable();
        let mut expected = vec![names[i], "Pat Provider"];
        expected.sort_unstable();
        assert_eq!(shown, expected);
        // No email address at all, not even staff's.
        let emails: Vec<Value> = thread["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.get("email").cloned())
            .collect();
        assert!(emails.is_empty());
    }
    // Staff see everyone.
    let (_, thread) = app.thread(&cast.provider, &id).await;
    assert_eq!(thread["participants"].as_array().unwrap().len(), 4);
    assert_eq!(thread["other_recipients"], 0);
}

async fn external_agents_are_invisible_to_clients(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.agent)],
            "Referral",
        )
        .await;
    let (status, _) = app
        .reply(
            &cast.agent,
            &id,
            json!({"body": "Notes from the referral."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let seen = everything_visible_to(&app, &cast.client, &id).await;
    assert!(!seen.contains("Eve Agent"));
    assert!(!seen.contains(&cast.agent.id));
    assert!(!seen.contains("external_agent"), "not even the role shows");
    let (_, thread) = app.thread(&cast.client, &id).await;
    assert_eq!(
        thread["other_recipients"], 0,
        "agents are not counted either"
    );
    assert_eq!(
        thread["messages"][1]["sender"],
        json!({"id": "", "name": "Another recipient"})
    );
    // A thread addressed to the external agents group does not say so to the client.
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), "group:external_agents"],
            "Referral 2",
        )
        .await;
    let (_, thread) = app.thread(&cast.client, &id).await;
    assert_eq!(thread["groups"], json!([]));
    let (_, staff_view) = app.thread(&cast.provider, &id).await;
    assert_eq!(staff_view["groups"], json!(["group:external_agents"]));
}

const HOSTILE: &[&str] = &[
    "<script>alert(1)</script> hello there",
    "<img src=x onerror=alert(1)> hello there",
    "[click me](javascript:alert(1)) hello there",
    "[click me](JaVaScRiPt:alert(1)) hello there",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) hello",
    "![remote](https://tracker.example/pixel.png) hello there",
    "<svg onload=alert(1)><circle r=10 /></svg> hello there",
    "<math><mtext><script>alert(1)</script></mtext></math> hello",
    "<iframe src=\"https://evil.example\"></iframe> hello there",
    "<a href=\"https://ok.example\" onclick=\"alert(1)\">link</a> hello",
    "<div style=\"background:url(javascript:alert(1))\">styled</div> hello",
    "<form action=\"https://evil.example\"><input name=p></form> hello",
    "<object data=\"x.swf\"></object><embed src=\"x.swf\"> hello there",
    "<details open ontoggle=alert(1)>x</details> hello there",
    "<a href=\"&#106;avascript:alert(1)\">entity</a> hello there",
    "<base href=\"https://evil.example/\"> <meta http-equiv=refresh content=0> hi",
    "<style>body{display:none}</style> hello there",
    "<!-- <script>alert(1)</script> --> hello there",
    "[rel](/relative/path) and [proto](//evil.example/x) hello",
];

async fn hostile_markdown_renders_nothing_executable(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    for payload in HOSTILE {
        let (status, thread) = app
            .compose(&cast.provider, &[&user(&cast.client)], "Careful", payload)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{payload}: {thread}");
        let html = thread["messages"][0]["body_html"]
            .as_str()
            .unwrap()
            .to_lowercase();
        for bad in [
            "<script",
            "onerror",
            "onload",
            "onclick",
            "ontoggle",
            "javascript:",
            "data:",
            "<img",
            "<svg",
            "<math",
            "<iframe",
            "style=",
            "<style",
            "<form",
            "<input",
            "<object",
            "<embed",
            "<details",
            "<base",
            "<meta",
            "href=\"/",
            "href=\"//",
        ] {
            assert!(!html.contains(bad), "{payload:?} left {bad:?} in {html}");
        }
        // The Markdown itself is kept as written, for the sender to see.
        assert_eq!(thread["messages"][0]["body"], payload.trim());
    }
}

async fn nul_characters_are_refused_at_the_edge(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let result = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Hi",
            "A body with \u{0} inside it.",
        )
        .await;
    assert_eq!(result.0, StatusCode::BAD_REQUEST, "{}", result.1);
    assert_eq!(result.1["code"], "invalid_json");
    // A body of another JSON type than the object declared: refused, nothing written.
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Session")
        .await;
    let result = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/threads/{thread}/quick-note"),
            Some(&cast.provider.token),
            Some(serde_json::json!([null])),
        )
        .await;
    assert_eq!(result.0, StatusCode::BAD_REQUEST, "{}", result.1);
    assert_eq!(result.1["code"], "invalid_json");
    let (status, notes) = app
        .get(
            &format!("/api/v1/people/{}/chart-notes", cast.client.id),
            &cast.provider,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{notes}");
    assert_eq!(
        notes["chart_notes"],
        serde_json::json!([]),
        "no chart note: {notes}"
    );
    for path in [
        "/api/v1/threads/%00",
        "/api/v1/threads?folder=in%00box",
        "/api/v1/people/%00",
    ] {
        let (status, body) = app.get(path, &cast.client).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], "invalid_request");
    }
    let resp = app
        .sign_in("o\u{0}ak", "admin@oak.example", "whatever-password")
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
