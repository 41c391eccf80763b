//! Search (DESIGN.md §3): operators, access for every role and across practices, the
//! multi-client privacy case, deletion, malformed queries, audit, rebuilding the index
//! while serving, and catching up after `kill -9`. Every test runs on SQLite and, when
//! CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use confide::domain::Role;
use helpers::{assert_problem, user, Backend, Binary, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn search(app: &TestApp, who: &Session, q: &str) -> (StatusCode, Value) {
    app.post("/api/v1/search", who, json!({ "q": q })).await
}

/// The thread ids a query finds (first page).
async fn threads_found(app: &TestApp, who: &Session, q: &str) -> Vec<String> {
    let (status, page) = search(app, who, q).await;
    assert_eq!(status, StatusCode::OK, "{q}: {page}");
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["thread_id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (up to 10 s) until `q` finds `expected` hits for `who`.
async fn wait_for(app: &TestApp, who: &Session, q: &str, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Right after a start the index may still be being built (503).
        if search(app, who, q).await.0 == StatusCode::SERVICE_UNAVAILABLE {
            assert!(Instant::now() < deadline, "the index was never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let found = threads_found(app, who, q).await;
        if found.len() == expected || Instant::now() > deadline {
            assert_eq!(found.len(), expected, "{q}: {found:?}");
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn compose(
    app: &TestApp,
    who: &Session,
    to: &[String],
    subject: &str,
    body: &str,
    files: &[&str],
) -> String {
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            who,
            json!({"to": to, "subject": subject, "body": body, "attachment_ids": files}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    thread["id"].as_str().unwrap().to_string()
}

async fn upload_pdf(app: &TestApp, who: &Session, name: &str) -> String {
    let part = reqwest::multipart::Part::bytes(b"%PDF-1.4\n% test\n%%EOF\n".to_vec())
        .file_name(name.to_string());
    app.upload_part(who, part).await
}

on_both_backends!(
    each_operator_finds_what_it_names,
    the_cursor_pages_through_every_hit_once,
    search_only_reaches_the_searchers_own_threads,
    a_client_finds_nothing_by_another_clients_name,
    a_deleted_message_disappears_at_once,
    malformed_queries_are_refused_naming_the_problem,
    searches_are_audited_without_the_query,
    the_index_is_rebuilt_while_the_server_keeps_answering,
    a_deleted_index_is_rebuilt_at_start,
    the_indexer_catches_up_after_kill_9,
    a_thread_shared_with_staff_becomes_searchable_for_them,
    a_new_team_member_finds_the_teams_earlier_threads,
);

/// Team folders are shared inboxes (issue 15, rule 17): someone who joins the group finds
/// its earlier threads in search too; someone who leaves it no longer does.
async fn a_new_team_member_finds_the_teams_earlier_threads(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let id = compose(
        &app,
        &client,
        &["group:billers".to_string()],
        "Invoice",
        "About the **zeppelin** invoice.",
        &[],
    )
    .await;
    wait_for(&app, &biller, "zeppelin", 1).await;
    let newcomer = app.person(&practice, Role::Biller, "Bea Newcomer").await;
    assert_eq!(wait_for(&app, &newcomer, "zeppelin", 1).await, vec![id]);
    let admin = app.admin(&practice).await;
    let (status, _) = app
        .patch(
            &format!("/api/v1/people/{}", biller.id),
            &admin,
            json!({"role": "front_office"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&app, &biller, "zeppelin", 0).await;
}

async fn a_thread_shared_with_staff_becomes_searchable_for_them(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let id = compose(
        &app,
        &provider,
        &[user(&client)],
        "Invoice",
        "The copay for the **zeppelin** session.",
        &[],
    )
    .await;
    wait_for(&app, &provider, "zeppelin", 1).await;
    wait_for(&app, &biller, "zeppelin", 0).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/threads/{id}/participants"),
            &provider,
            json!({"people": [user(&biller)]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(wait_for(&app, &biller, "zeppelin", 1).await, vec![id]);
}

async fn each_operator_finds_what_it_names(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let client = app.person(&practice, Role::Client, "Casey Müller").await;

    let labs = upload_pdf(&app, &provider, "labwork.pdf").await;
    let a = compose(
        &app,
        &provider,
        &[user(&client)],
        "Blood test results",
        "Your **cholesterol** is fine.",
        &[&labs],
    )
    .await;
    app.clock.advance_minutes(3 * 24 * 60);
    // (Sessions end after 30 idle minutes.)
    let provider = app.login_as(&practice, &provider.email).await;
    let biller = app.login_as(&practice, &biller.email).await;
    let client = app.login_as(&practice, &client.email).await;
    let b = compose(
        &app,
        &biller,
        &[user(&client)],
        "Invoice March",
        "Payment is due at the end of the month.",
        &[],
    )
    .await;
    wait_for(&app, &client, "payment", 1).await;

    let day_of = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .date_naive()
    };
    let b_day = day_of(app.clock_now());

    for (q, expected) in [
        ("cholesterol", vec![&a]),
        ("CHOLESTEROL", vec![&a]),
        ("labwork", vec![&a]),
        ("Pat", vec![&a]),
        ("to:muller", vec![&a, &b]),
        ("from:Pat", vec![&a]),
        ("from:\"Bo Biller\"", vec![&b]),
        ("to:Casey", vec![&a, &b]),
        ("subject:invoice", vec![&b]),
        ("subject:cholesterol", vec![]),
        ("has:attachment", vec![&a]),
        ("\"cholesterol is fine\"", vec![&a]),
        ("\"fine is cholesterol\"", vec![]),
        ("payment -invoice", vec![]),
        ("payment -cholesterol", vec![&b]),
        ("to:me", vec![&a, &b]),
    ] {
        let mut found = threads_found(&app, &client, q).await;
        let mut expected: Vec<String> = expected.into_iter().cloned().collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected, "{q}");
    }
    // Dates: before: excludes its day, after: includes it.
    assert_eq!(
        threads_found(&app, &client, &format!("before:{b_day}")).await,
        vec![a.clone()]
    );
    assert_eq!(
        threads_found(&app, &client, &format!("after:{b_day}")).await,
        vec![b.clone()]
    );
    // Newest first when nothing ranks by text.
    assert_eq!(
        threads_found(&app, &client, "is:unread").await,
        vec![b.clone(), a.clone()]
    );
    // Oneself is a person, not text: newest first too.
    assert_eq!(
        threads_found(&app, &client, "to:me").await,
        vec![b.clone(), a.clone()]
    );

    // Folder and read state come from the database.
    assert_eq!(threads_found(&app, &client, "is:unread").await.len(), 2);
    let (status, _) = app.thread(&client, &a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        threads_found(&app, &client, "is:unread").await,
        vec![b.clone()]
    );
    assert_eq!(
        threads_found(&app, &client, "is:read").await,
        vec![a.clone()]
    );
    let (status, _) = app
        .file_thread(&client, &b, json!({"folder": "archive"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        threads_found(&app, &client, "in:archive").await,
        vec![b.clone()]
    );
    assert_eq!(
        threads_found(&app, &client, "in:inbox").await,
        vec![a.clone()]
    );
    assert_eq!(
        threads_found(&app, &provider, "in:sent").await,
        vec![a.clone()]
    );

    // Snippets highlight the words, escaped.
    let (_, page) = search(&app, &client, "cholesterol").await;
    let hit = &page["hits"][0];
    assert_eq!(hit["snippet"], "Your <b>cholesterol</b> is fine");
    assert_eq!(hit["subject"], "Blood test results");
    assert_eq!(hit["sender"]["name"], "Pat Provider");
    assert!(hit["message_id"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Follows `next_cursor` with pages of `limit`; returns the thread ids in order.
async fn all_pages(app: &TestApp, who: &Session, q: &str, limit: u32) -> Vec<String> {
    let (mut found, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..20 {
        let (status, page) = app
            .post(
                "/api/v1/search",
                who,
                json!({"q": q, "limit": limit, "cursor": cursor}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {page}");
        let hits = page["hits"].as_array().unwrap();
        assert!(hits.len() <= limit as usize);
        found.extend(
            hits.iter()
                .map(|h| h["thread_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return found,
        }
    }
    panic!("{q}: more than 20 pages");
}

async fn the_cursor_pages_through_every_hit_once(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let mut threads = Vec::new();
    for n in 0..7 {
        let body = format!("Rhubarb note number {n}.");
        threads.push(compose(&app, &provider, &[user(&client)], "Garden", &body, &[]).await);
        app.clock.advance_minutes(1);
    }
    wait_for(&app, &client, "rhubarb", 7).await;
    // Two of them leave the Inbox: the database filters them out between index pages.
    for t in [&threads[1], &threads[4]] {
        let (status, _) = app
            .file_thread(&client, t, json!({"folder": "archive"}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for limit in [1, 2, 3, 7, 50] {
        let found = all_pages(&app, &client, "rhubarb", limit).await;
        assert_eq!(sorted(found), sorted(threads.clone()), "limit {limit}");
        let inbox = all_pages(&app, &client, "rhubarb in:inbox", limit).await;
        let expected: Vec<String> = threads
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1 && *i != 4)
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(sorted(inbox), sorted(expected), "in:inbox, limit {limit}");
    }
    // Newest first without text, across pages too.
    let newest_first: Vec<String> = threads.iter().rev().cloned().collect();
    assert_eq!(all_pages(&app, &client, "from:pat", 3).await.len(), 7);
    assert_eq!(all_pages(&app, &client, "to:me", 2).await, newest_first);
}

async fn search_only_reaches_the_searchers_own_threads(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let agent = app
        .person(&practice, Role::ExternalAgent, "Eve Agent")
        .await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let other_client = app.person(&practice, Role::Client, "Dana Client").await;
    let elsewhere = app.create_practice("elm").await;
    let stranger = app.person(&elsewhere, Role::Provider, "Sam Stranger").await;
    let stranger_client = app.person(&elsewhere, Role::Client, "Tia Client").await;

    let t = compose(
        &app,
        &provider,
        &[user(&client)],
        "Zebrafish",
        "The zebrafish study results.",
        &[],
    )
    .await;
    compose(
        &app,
        &stranger,
        &[user(&stranger_client)],
        "Zebrafish",
        "Their own zebrafish note.",
        &[],
    )
    .await;
    wait_for(&app, &client, "zebrafish", 1).await;
    assert_eq!(
        threads_found(&app, &provider, "zebrafish").await,
        vec![t.clone()]
    );
    for who in [&admin, &front, &biller, &agent, &other_client] {
        assert!(threads_found(&app, who, "zebrafish").await.is_empty());
    }
    // The other practice finds only its own.
    let theirs = wait_for(&app, &stranger, "zebrafish", 1).await;
    assert_ne!(theirs, vec![t.clone()]);
    // Emptying the thread out of one's mailbox takes it out of one's results.
    app.file_thread(&client, &t, json!({"folder": "trash"}))
        .await;
    let (status, _) = app
        .post("/api/v1/folders/trash/empty", &client, json!({}))
        .await;
    assert!(status.is_success());
    assert!(threads_found(&app, &client, "zebrafish").await.is_empty());
}

async fn a_client_finds_nothing_by_another_clients_name(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let agent = app
        .person(&practice, Role::ExternalAgent, "Eve Agent")
        .await;
    let casey = app.person(&practice, Role::Client, "Casey Client").await;
    let _dana = app.person(&practice, Role::Client, "Dana Quixote").await;
    let dana = app.login_as(&practice, "dana.quixote@oak.example").await;

    let group = compose(
        &app,
        &provider,
        &[user(&casey), user(&dana)],
        "Group session",
        "The group session moves to Tuesday.",
        &[],
    )
    .await;
    wait_for(&app, &casey, "session", 1).await;
    for q in [
        "Quixote",
        "to:Quixote",
        "to:\"Dana Quixote\"",
        "from:Quixote",
        "session Quixote",
    ] {
        assert!(threads_found(&app, &casey, q).await.is_empty(), "{q}");
    }
    assert_eq!(
        threads_found(&app, &provider, "to:Quixote").await,
        vec![group.clone()]
    );
    assert_eq!(
        threads_found(&app, &dana, "to:Quixote").await,
        vec![group.clone()]
    );

    // An external agent's message shows as "Another recipient" and is not found by name.
    let t = compose(
        &app,
        &agent,
        &[user(&provider)],
        "Referral",
        "A referral letter.",
        &[],
    )
    .await;
    let _ = t;
    let mixed = compose(
        &app,
        &provider,
        &[user(&casey), user(&agent)],
        "Insurance",
        "About the insurance claim.",
        &[],
    )
    .await;
    let (status, _) = app
        .reply(
            &agent,
            &mixed,
            json!({"body": "Claim approved by the insurer."}),
        )
        .await;
    assert!(status.is_success());
    wait_for(&app, &casey, "insurer", 1).await;
    assert!(threads_found(&app, &casey, "from:Eve").await.is_empty());
    assert!(threads_found(&app, &casey, "to:Eve").await.is_empty());
    assert!(threads_found(&app, &casey, "Eve").await.is_empty());
    let (_, page) = search(&app, &casey, "insurer").await;
    assert_eq!(page["hits"][0]["sender"]["name"], "Another recipient");
    assert_eq!(page["hits"][0]["sender"]["id"], "");
    assert!(!page.to_string().contains("Eve"), "{page}");
}

async fn a_deleted_message_disappears_at_once(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let t = compose(
        &app,
        &provider,
        &[user(&client)],
        "Kumquat",
        "Kumquat allergy notes.",
        &[],
    )
    .await;
    let (_, view) = app.thread(&provider, &t).await;
    let (status, _) = app
        .reply(&provider, &t, json!({"body": "A second kumquat note."}))
        .await;
    assert!(status.is_success());
    wait_for(&app, &client, "kumquat", 2).await;
    let first = view["messages"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/api/v1/messages/{first}"), &provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // At once: the database re-check hides it before the index has caught up.
    assert_eq!(threads_found(&app, &client, "kumquat").await.len(), 1);
    assert!(threads_found(&app, &client, "allergy").await.is_empty());
    let (status, _) = app.delete(&format!("/api/v1/threads/{t}"), &provider).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(threads_found(&app, &client, "kumquat").await.is_empty());
    assert!(threads_found(&app, &provider, "kumquat").await.is_empty());
}

async fn malformed_queries_are_refused_naming_the_problem(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    for (q, code) in [
        ("", "invalid_query"),
        ("\"unclosed", "invalid_query"),
        ("from:", "invalid_query"),
        ("colour:red", "invalid_query"),
        ("has:pets", "invalid_query"),
        ("is:flagged", "invalid_query"),
        ("before:2026-02-30", "invalid_query"),
        ("after:tomorrow", "invalid_query"),
        ("in:nowhere x", "invalid_query"),
        ("in:drafts x", "invalid_query"),
        ("-alone", "invalid_query"),
    ] {
        let result = search(&app, &provider, q).await;
        assert_problem(&result, StatusCode::BAD_REQUEST, code);
        assert_eq!(result.1["field"], "q", "{q}");
    }
    let long = "a ".repeat(300);
    assert_problem(
        &search(&app, &provider, &long).await,
        StatusCode::BAD_REQUEST,
        "query_too_long",
    );
    let many = "w ".repeat(40);
    assert_problem(
        &search(&app, &provider, &many).await,
        StatusCode::BAD_REQUEST,
        "query_too_complex",
    );
    let bad_cursor = app
        .post(
            "/api/v1/search",
            &provider,
            json!({"q": "x", "cursor": "garbage!"}),
        )
        .await;
    assert_problem(&bad_cursor, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(bad_cursor.1["field"], "cursor");
    let missing = app
        .post("/api/v1/search", &provider, json!({"query": "x"}))
        .await;
    assert_problem(&missing, StatusCode::BAD_REQUEST, "invalid_field");
}

async fn searches_are_audited_without_the_query(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    assert_eq!(
        search(&app, &provider, "secretword").await.0,
        StatusCode::OK
    );
    let mut conn = app.state.store.read().await.unwrap();
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT action, actor_id, object_type, object_id FROM audit_events WHERE action = 'search'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_deref(), Some(provider.id.as_str()));
    let all: Vec<String> = sqlx::query_scalar(
        "SELECT action || COALESCE(object_type, '') || COALESCE(object_id, '') || outcome FROM audit_events",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(all.iter().all(|r| !r.contains("secretword")));
}

async fn the_index_is_rebuilt_while_the_server_keeps_answering(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    for i in 0..30 {
        compose(
            &app,
            &provider,
            &[user(&client)],
            &format!("Note {i}"),
            "A marmalade recipe.",
            &[],
        )
        .await;
    }
    wait_for(&app, &client, "marmalade", 20).await;
    let before = confide::search::read_current(app.state.search.root()).unwrap();

    let (store, keys, root) = (
        app.state.store.clone(),
        app.state.keys.clone(),
        app.state.search.root().to_path_buf(),
    );
    let pace = confide::search::indexer::Pace::from_config(&app.state.config.search);
    let handle = tokio::runtime::Handle::current();
    let rebuild = tokio::task::spawn_blocking(move || {
        confide::search::indexer::rebuild(&handle, &store, &keys, &root, pace)
    });
    // Searches go on answering throughout.
    while !rebuild.is_finished() {
        assert_eq!(threads_found(&app, &client, "marmalade").await.len(), 20);
    }
    let rebuilt = rebuild.await.unwrap().unwrap();
    assert_eq!(rebuilt.messages, 30);
    assert_ne!(rebuilt.name, before);
    // The server moves to the new index, and keeps it current.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.search.active().unwrap().name != rebuilt.name {
        assert!(Instant::now() < deadline, "the server did not switch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(threads_found(&app, &client, "marmalade").await.len(), 20);
    compose(
        &app,
        &provider,
        &[user(&client)],
        "After",
        "Quince jelly.",
        &[],
    )
    .await;
    wait_for(&app, &client, "quince", 1).await;
    assert!(
        !app.state.search.root().join(&before).exists(),
        "the old index is removed"
    );
}

async fn a_deleted_index_is_rebuilt_at_start(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    compose(
        &app,
        &provider,
        &[user(&client)],
        "Persimmon",
        "Persimmon season.",
        &[],
    )
    .await;
    wait_for(&app, &client, "persimmon", 1).await;
    let root = app.state.search.root().to_path_buf();
    let (db, clock) = (app.db.clone(), app.clock.clone());
    drop(app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_dir_all(&root).unwrap();
    let app = TestApp::spawn_on(db, clock, |_| {}).await;
    let client = app.login_as(&practice, &client.email).await;
    wait_for(&app, &client, "persimmon", 1).await;
}

/// The binary's settings: the widest window between a send and the index commit after it.
const SLOW_COMMITS: [(&str, &str); 3] = [
    ("CONFIDE__SEARCH__COMMIT_INTERVAL_MS", "1000"),
    ("CONFIDE__SEARCH__POLL_INTERVAL_MS", "1000"),
    ("CONFIDE__LOG__LEVEL", "warn"),
];

async fn the_indexer_catches_up_after_kill_9(backend: Backend) {
    let db = helpers::TestDatabase::create(backend).await;
    Binary::create_practice(&db, &SLOW_COMMITS);
    Binary::create_user(
        &db,
        &SLOW_COMMITS,
        "provider",
        "pat@oak.example",
        "Pat Provider",
    );
    Binary::create_user(
        &db,
        &SLOW_COMMITS,
        "client",
        "casey@oak.example",
        "Casey Client",
    );

    let http = reqwest::Client::new();
    let found = |base: String, token: String, q: &'static str| {
        let http = http.clone();
        async move {
            let resp = http
                .post(format!("{base}/api/v1/search"))
                .bearer_auth(token)
                .json(&json!({ "q": q }))
                .send()
                .await
                .unwrap();
            if resp.status() != StatusCode::OK {
                return None;
            }
            let page: Value = resp.json().await.unwrap();
            Some(page["hits"].as_array().unwrap().len())
        }
    };

    let server = Binary::serve(&db, &SLOW_COMMITS);
    let base = server.base.clone();
    let (pat, _) = server.sign_in("pat@oak.example").await;
    let (_, casey_id) = server.sign_in("casey@oak.example").await;
    let resp = http
        .post(format!("{base}/api/v1/threads"))
        .bearer_auth(&pat)
        .json(&json!({"to": [format!("user:{casey_id}")], "subject": "Rhubarb", "body": "Rhubarb crumble on Friday."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Killed right after the send, before the next index commit (at most a second later).
    server.kill_9();

    let server = Binary::serve(&db, &SLOW_COMMITS);
    let base = server.base.clone();
    let (casey, _) = server.sign_in("casey@oak.example").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if found(base.clone(), casey.clone(), "rhubarb").await == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message sent before the kill was not found"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill_9();
}
