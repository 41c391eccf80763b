//! Folders, read state, bulk actions, lists, the event log and the audit of mailbox actions.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, folder_entry as folder, Backend, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    system_folders_with_unread_and_total_counts,
    custom_folders_are_created_renamed_and_deleted,
    a_thread_sits_in_exactly_one_folder,
    trash_and_empty_trash_touch_only_my_mailbox,
    bulk_actions_apply_to_all_or_none,
    team_folder_lists_threads_addressed_to_my_group,
    lists_page_stably_while_new_messages_arrive,
    threads_of_the_same_instant_page_without_loss,
    every_mailbox_change_writes_an_event,
    reading_sending_replying_moving_and_deleting_are_audited,
    bad_folder_input_names_the_field,
    kept_folder_counts_equal_a_fresh_count_after_every_kind_of_change,
    concurrent_sends_both_ways_keep_the_counts_and_never_deadlock,
);

async fn system_folders_with_unread_and_total_counts(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let first = app
        .send(&cast.provider, &[&user(&cast.client)], "One")
        .await;
    app.send(&cast.provider, &[&user(&cast.client)], "Two")
        .await;
    app.thread(&cast.client, &first).await;
    let (status, folders) = app.get("/api/v1/folders", &cast.client).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["inbox", "sent", "drafts", "scheduled", "archive", "trash"],
        "clients have no team folder"
    );
    assert_eq!(folder(&folders, "inbox")["total"], 2);
    assert_eq!(folder(&folders, "inbox")["unread"], 1);
    let (_, folders) = app.get("/api/v1/folders", &cast.provider).await;
    assert_eq!(folder(&folders, "sent")["total"], 2);
    assert_eq!(folder(&folders, "team:providers")["name"], "Providers");
    let (_, folders) = app.get("/api/v1/folders", &cast.biller).await;
    assert_eq!(folder(&folders, "team:billers")["name"], "Billing");
}

async fn custom_folders_are_created_renamed_and_deleted(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Insurance")
        .await;
    let (status, created) = app
        .post(
            "/api/v1/folders",
            &cast.client,
            json!({"name": "Insurance"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let folder_id = created["id"].as_str().unwrap().to_string();
    let result = app
        .post(
            "/api/v1/folders",
            &cast.client,
            json!({"name": "insurance"}),
        )
        .await;
    assert_problem(&result, StatusCode::CONFLICT, "folder_name_taken");
    let result = app
        .post("/api/v1/folders", &cast.client, json!({"name": "Trash"}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    let (status, state) = app
        .file_thread(&cast.client, &id, json!({"folder": folder_id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["folder"], folder_id.as_str());
    assert_eq!(app.folder(&cast.client, &folder_id).await, vec![id.clone()]);
    let (status, renamed) = app
        .patch(
            &format!("/api/v1/folders/{folder_id}"),
            &cast.client,
            json!({"name": "Claims"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "Claims");
    assert_eq!(renamed["total"], 1);
    // Someone else's folder does not exist for me.
    let result = app
        .patch(
            &format!("/api/v1/folders/{folder_id}"),
            &cast.provider,
            json!({"name": "Mine"}),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .file_thread(&cast.provider, &id, json!({"folder": folder_id}))
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.delete(&format!("/api/v1/folders/{folder_id}"), &cast.client)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.folder(&cast.client, "inbox").await,
        vec![id],
        "its threads went back to the Inbox"
    );
}

async fn a_thread_sits_in_exactly_one_folder(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Where am I")
        .await;
    for target in ["archive", "trash", "inbox"] {
        app.file_thread(&cast.client, &id, json!({"folder": target}))
            .await;
        for name in ["inbox", "archive", "trash"] {
            assert_eq!(
                app.folder(&cast.client, name).await.contains(&id),
                name == target,
                "{target}/{name}"
            );
        }
    }
    let result = app
        .file_thread(&cast.client, &id, json!({"folder": "sent"}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    let (status, state) = app
        .file_thread(&cast.client, &id, json!({"read": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["unread"], true);
}

async fn trash_and_empty_trash_touch_only_my_mailbox(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Old news")
        .await;
    app.file_thread(&cast.client, &id, json!({"folder": "trash"}))
        .await;
    let (status, emptied) = app
        .post("/api/v1/folders/trash/empty", &cast.client, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emptied["removed"], 1);
    for name in ["inbox", "archive", "trash", "sent"] {
        assert!(app.folder(&cast.client, name).await.is_empty(), "{name}");
    }
    let result = app.thread(&cast.client, &id).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    // The provider still has it.
    assert_eq!(app.thread(&cast.provider, &id).await.0, StatusCode::OK);
    // A new message brings it back.
    app.reply(
        &cast.provider,
        &id,
        json!({"body": "One more thing to add."}),
    )
    .await;
    assert_eq!(app.folder(&cast.client, "inbox").await, vec![id]);
}

async fn bulk_actions_apply_to_all_or_none(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            app.send(&cast.provider, &[&user(&cast.client)], &format!("Bulk {i}"))
                .await,
        );
    }
    let (status, done) = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": ids, "action": "mark_read"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["updated"], 4);
    let (_, folders) = app.get("/api/v1/folders", &cast.client).await;
    assert_eq!(folder(&folders, "inbox")["unread"], 0);
    app.post(
        "/api/v1/threads/bulk",
        &cast.client,
        json!({"thread_ids": ids[..2], "action": "archive"}),
    )
    .await;
    assert_eq!(app.folder(&cast.client, "archive").await.len(), 2);
    app.post(
        "/api/v1/threads/bulk",
        &cast.client,
        json!({"thread_ids": ids, "action": "trash"}),
    )
    .await;
    assert_eq!(app.folder(&cast.client, "trash").await.len(), 4);
    app.post(
        "/api/v1/threads/bulk",
        &cast.client,
        json!({"thread_ids": ids, "action": "restore"}),
    )
    .await;
    assert_eq!(app.folder(&cast.client, "inbox").await.len(), 4);
    let (_, created) = app
        .post("/api/v1/folders", &cast.client, json!({"name": "Kept"}))
        .await;
    let (status, _) = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": ids, "action": "move", "folder": created["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.folder(&cast.client, created["id"].as_str().unwrap())
            .await
            .len(),
        4
    );
    // One id that is not mine: nothing changes.
    let other = app
        .send(&cast.provider, &[&user(&cast.biller)], "Not the client's")
        .await;
    let mut mixed = ids.clone();
    mixed.push(other);
    let result = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": mixed, "action": "trash"}),
        )
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(result.1["field"], "thread_ids");
    assert!(app.folder(&cast.client, "trash").await.is_empty());
    let result = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": vec!["x"; 501], "action": "trash"}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    let result = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": ids, "action": "move"}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "folder");
    let result = app
        .post(
            "/api/v1/threads/bulk",
            &cast.client,
            json!({"thread_ids": ids, "action": "shred"}),
        )
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "action");
}

async fn team_folder_lists_threads_addressed_to_my_group(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let to_group = app
        .send(&cast.client, &["group:billers"], "Billing question")
        .await;
    let direct = app
        .send(&cast.client, &[&user(&cast.biller)], "Direct question")
        .await;
    assert_eq!(
        app.folder(&cast.biller, "team:billers").await,
        vec![to_group.clone()]
    );
    let inbox: HashSet<String> = app
        .folder(&cast.biller, "inbox")
        .await
        .into_iter()
        .collect();
    assert_eq!(inbox, HashSet::from([to_group, direct]));
    let result = app
        .get("/api/v1/threads?folder=team:providers", &cast.biller)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .get("/api/v1/threads?folder=team:billers", &cast.client)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn lists_page_stably_while_new_messages_arrive(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let mut sent = Vec::new();
    for i in 0..7 {
        sent.push(
            app.send(
                &cast.provider,
                &[&user(&cast.client)],
                &format!("Thread {i}"),
            )
            .await,
        );
        app.clock.advance_minutes(1);
    }
    let (_, first) = app.get("/api/v1/threads?limit=3", &cast.client).await;
    let mut seen: Vec<String> = first["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        seen,
        sent[4..].iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    // New activity arrives between pages.
    app.send(&cast.provider, &[&user(&cast.client)], "Newcomer")
        .await;
    app.post(
        &format!("/api/v1/threads/{}/messages", sent[0]),
        &cast.provider,
        json!({"body": "Bumping the oldest thread."}),
    )
    .await;
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (status, page) = app
            .get(&format!("/api/v1/threads?limit=3&cursor={c}"), &cast.client)
            .await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no thread twice"
    );
    for id in &sent[1..] {
        assert!(seen.contains(id), "{id} was skipped");
    }
    let result = app
        .get("/api/v1/threads?cursor=not-a-cursor", &cast.client)
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "cursor");
}

async fn every_mailbox_change_writes_an_event(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (_, thread) = app
        .compose(
            &cast.provider,
            &[&user(&cast.client)],
            "Events",
            "Checking the event log.",
        )
        .await;
    let id = thread["id"].as_str().unwrap().to_string();
    app.thread(&cast.client, &id).await;
    let (_, reply) = app
        .reply(&cast.client, &id, json!({"body": "Reply for the log."}))
        .await;
    app.file_thread(&cast.provider, &id, json!({"folder": "archive"}))
        .await;
    app.delete(
        &format!(
            "/api/v1/messages/{}",
            thread["messages"][0]["id"].as_str().unwrap()
        ),
        &cast.provider,
    )
    .await;
    let mut conn = app.state.store.read().await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, message_id FROM events WHERE thread_id = $1 ORDER BY seq")
            .bind(&id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message_sent",
            "thread_created",
            "thread_read",
            "message_sent",
            "thread_state_changed",
            "message_deleted"
        ]
    );
    assert_eq!(rows[3].1.as_deref(), reply["id"].as_str());
}

async fn reading_sending_replying_moving_and_deleting_are_audited(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client)],
            "Audited subject line",
        )
        .await;
    app.thread(&cast.client, &id).await;
    app.reply(&cast.client, &id, json!({"body": "An audited reply body."}))
        .await;
    app.file_thread(&cast.client, &id, json!({"folder": "archive"}))
        .await;
    app.delete(&format!("/api/v1/threads/{id}"), &cast.provider)
        .await;
    let (_, audit) = app.get("/api/v1/audit?limit=500", &cast.admin).await;
    let actions: Vec<(&str, &str)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("send_message", cast.provider.id.as_str()),
        ("read_thread", cast.client.id.as_str()),
        ("reply", cast.client.id.as_str()),
        ("move_thread", cast.client.id.as_str()),
        ("delete_thread", cast.provider.id.as_str()),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} not in {actions:?}"
        );
    }
    let text = audit.to_string();
    assert!(!text.contains("Audited subject line") && !text.contains("An audited reply body"));
}

async fn bad_folder_input_names_the_field(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let result = app
        .get("/api/v1/threads?folder=nowhere", &cast.client)
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(result.1["field"], "folder");
    let result = app.get("/api/v1/threads?folder=drafts", &cast.client).await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    for name in [json!(""), json!("x".repeat(101)), json!(7)] {
        let result = app
            .post("/api/v1/folders", &cast.client, json!({"name": name}))
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(result.1["field"], "name");
    }
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "State")
        .await;
    let result = app.file_thread(&cast.client, &id, json!({})).await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
}

async fn threads_of_the_same_instant_page_without_loss(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    // The test clock stands still: all these threads share one timestamp, so the pages
    // are told apart by the thread id alone.
    let mut sent = HashSet::new();
    for i in 0..9 {
        sent.insert(
            app.send(
                &cast.provider,
                &[&user(&cast.client)],
                &format!("Same instant {i}"),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/threads?limit=2".to_string();
    loop {
        let (_, page) = app.get(&path, &cast.client).await;
        seen.extend(
            page["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/threads?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), sent);
}

async fn kept_folder_counts_equal_a_fresh_count_after_every_kind_of_change(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let one = app
        .send(
            &cast.provider,
            &[&user(&cast.client), "group:billers"],
            "One",
        )
        .await;
    let two = app
        .send(&cast.client, &[&user(&cast.provider)], "Two")
        .await;
    let three = app
        .send(&cast.provider, &[&user(&cast.client)], "Three")
        .await;
    let (status, _) = app
        .reply(&cast.client, &one, json!({"body": "A reply to one."}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.thread(&cast.biller, &one).await;
    app.file_thread(&cast.client, &two, json!({"folder": "archive"}))
        .await;
    app.file_thread(&cast.provider, &three, json!({"unread": true}))
        .await;
    let (_, folder) = app
        .post("/api/v1/folders", &cast.client, json!({"name": "Keep"}))
        .await;
    let keep = folder["id"].as_str().unwrap().to_string();
    app.file_thread(&cast.client, &three, json!({"folder": keep}))
        .await;
    app.file_thread(&cast.client, &one, json!({"folder": "trash"}))
        .await;
    let (status, _) = app
        .post("/api/v1/folders/trash/empty", &cast.client, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .delete(&format!("/api/v1/folders/{keep}"), &cast.client)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .delete(&format!("/api/v1/threads/{three}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (kept, fresh) = app.kept_and_fresh_counts().await;
    assert!(!fresh.is_empty());
    assert_eq!(kept, fresh);
}

async fn concurrent_sends_both_ways_keep_the_counts_and_never_deadlock(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (to_provider, to_client) = (user(&cast.provider), user(&cast.client));
    let sends = (0..24).map(|i| {
        let (from, to) = if i % 2 == 0 {
            (&cast.client, vec![to_provider.as_str(), "group:billers"])
        } else {
            (&cast.provider, vec![to_client.as_str()])
        };
        let app = &app;
        async move {
            app.compose(
                from,
                &to,
                &format!("Both ways {i}"),
                "Crossing in the post.",
            )
            .await
        }
    });
    for (status, body) in futures_util::future::join_all(sends).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (kept, fresh) = app.kept_and_fresh_counts().await;
    assert_eq!(kept, fresh);
    let (_, folders) = app.get("/api/v1/folders", &cast.client).await;
    assert_eq!(folder(&folders, "inbox")["total"], 24);
    assert_eq!(folder(&folders, "inbox")["unread"], 12);
}
