//! Practice settings, reply-only clients and voice notes.

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Session, TestApp};
use crate::{on_both_backends, user};

on_both_backends!(
    practice_settings_are_for_admins,
    clients_messages_are_held_to_the_practice_limit,
    clients_created_while_new_threads_are_off_may_only_reply,
    voice_notes_and_phone_photos_are_recognized_by_content,
);

async fn practice_settings_are_for_admins(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let (status, settings) = app.get("/api/v1/practice/settings", &cast.admin).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(
        settings,
        json!({"new_clients_can_start_threads": true, "conversation_max_participants": 25})
    );
    for who in [&cast.provider, &cast.front, &cast.client] {
        let refused = app.get("/api/v1/practice/settings", who).await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
        let refused = app
            .patch(
                "/api/v1/practice/settings",
                who,
                json!({"conversation_max_participants": 3}),
            )
            .await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    for (body, field) in [
        (
            json!({"client_message_max_chars": 5}),
            "client_message_max_chars",
        ),
        (
            json!({"client_message_max_chars": 100_001}),
            "client_message_max_chars",
        ),
        (
            json!({"conversation_max_participants": 1}),
            "conversation_max_participants",
        ),
    ] {
        let refused = app
            .patch("/api/v1/practice/settings", &cast.admin, body)
            .await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(refused.1["field"], field);
    }
    let unknown = app
        .patch("/api/v1/practice/settings", &cast.admin, json!({"max": 3}))
        .await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST);
    let (status, changed) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"client_message_max_chars": 500, "new_clients_can_start_threads": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["client_message_max_chars"], 500);
    assert_eq!(changed["conversation_max_participants"], 25);
    let (_, cleared) = app
        .patch(
            "/api/v1/practice/settings",
            &cast.admin,
            json!({"client_message_max_chars": null}),
        )
        .await;
    assert!(
        cleared.get("client_message_max_chars").is_none(),
        "{cleared}"
    );
    assert_eq!(cleared["new_clients_can_start_threads"], false);
    // Each practice has its own.
    let other = crate::Cast::in_practice(&app, "elm").await;
    let (_, theirs) = app.get("/api/v1/practice/settings", &other.admin).await;
    assert_eq!(theirs["new_clients_can_start_threads"], true);
    // The change is audited.
    let (_, audit) = app.get("/api/v1/audit?limit=500", &cast.admin).await;
    assert!(audit.to_string().contains("update_settings"), "{audit}");
}

async fn clients_messages_are_held_to_the_practice_limit(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    app.patch(
        "/api/v1/practice/settings",
        &cast.admin,
        json!({"client_message_max_chars": 40}),
    )
    .await;
    let long = "x".repeat(41);
    let refused = app
        .compose(&cast.client, &[&user(&cast.provider)], "Long", &long)
        .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "body_too_long");
    assert_eq!(refused.1["field"], "body");
    assert!(refused.1["detail"].as_str().unwrap().contains("40"));
    let (status, _) = app
        .compose(
            &cast.client,
            &[&user(&cast.provider)],
            "Short",
            &"x".repeat(40),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Staff are held only to the server's limit.
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Staff")
        .await;
    let (status, _) = app
        .reply(&cast.provider, &id, json!({"body": "y".repeat(400)}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let refused = app.reply(&cast.client, &id, json!({"body": long})).await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "body_too_long");
}

async fn compose_as(app: &TestApp, who: &Session, to: &Session) -> (StatusCode, Value) {
    app.compose(who, &[&user(to)], "Hello", "I would like to ask something.")
        .await
}

async fn clients_created_while_new_threads_are_off_may_only_reply(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    app.patch(
        "/api/v1/practice/settings",
        &cast.admin,
        json!({"new_clients_can_start_threads": false}),
    )
    .await;
    let newcomer = app.person(&cast.practice, Role::Client, "Nell New").await;
    let refused = compose_as(&app, &newcomer, &cast.provider).await;
    assert_problem(
        &refused,
        StatusCode::FORBIDDEN,
        "starting_threads_not_allowed",
    );
    // Clients from before the change, and staff, are unaffected.
    assert_eq!(
        compose_as(&app, &cast.client, &cast.provider).await.0,
        StatusCode::CREATED
    );
    let newcomer_staff = app.person(&cast.practice, Role::Biller, "Bea New").await;
    assert_eq!(
        compose_as(&app, &newcomer_staff, &cast.client).await.0,
        StatusCode::CREATED
    );
    // The newcomer replies to staff.
    let id = app
        .send(&cast.provider, &[&user(&newcomer)], "Welcome")
        .await;
    let (status, _) = app
        .reply(
            &newcomer,
            &id,
            json!({"body": "Thank you for the welcome."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Staff see it and allow them; a client cannot allow themself.
    let (_, shown) = app.person_of(&cast.front, &newcomer.id).await;
    assert_eq!(shown["may_start_threads"], false);
    let (_, to_client) = app.person_of(&newcomer, &cast.provider.id).await;
    assert!(to_client.get("may_start_threads").is_none());
    let self_allow = app
        .update_person(&newcomer, &newcomer.id, json!({"may_start_threads": true}))
        .await;
    assert!(self_allow.0.is_client_error(), "{self_allow:?}");
    let staff_flag = app
        .update_person(
            &cast.admin,
            &cast.biller.id,
            json!({"may_start_threads": true}),
        )
        .await;
    assert_eq!(staff_flag.0, StatusCode::BAD_REQUEST, "{staff_flag:?}");
    let (status, allowed) = app
        .update_person(
            &cast.front,
            &newcomer.id,
            json!({"may_start_threads": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{allowed}");
    assert_eq!(allowed["may_start_threads"], true);
    assert_eq!(
        compose_as(&app, &newcomer, &cast.provider).await.0,
        StatusCode::CREATED
    );
}

/// Uploads one file; returns (status, body).
async fn upload(app: &TestApp, who: &Session, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str("application/octet-stream")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = app
        .client
        .post(app.url("/api/v1/attachments"))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn padded(head: &[u8]) -> Vec<u8> {
    let mut bytes = head.to_vec();
    bytes.resize(2048, 0x55);
    bytes
}

async fn voice_notes_and_phone_photos_are_recognized_by_content(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let files: [(&str, &[u8], &str); 7] = [
        (
            "memo.m4a",
            b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom",
            "audio/mp4",
        ),
        ("note.opus", b"OggS\x00\x02\x00\x00\x00\x00", "audio/ogg"),
        ("song.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        ("raw.aac", b"\xff\xf1\x50\x80\x02\x1f", "audio/aac"),
        (
            "voice.wav",
            b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00",
            "audio/wav",
        ),
        (
            "rec.webm",
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87",
            "audio/webm",
        ),
        (
            "photo.heic",
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
            "image/heic",
        ),
    ];
    let mut ids = Vec::new();
    for (name, head, content_type) in files {
        let (status, body) = upload(&app, &cast.client, name, padded(head)).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        assert_eq!(
            body["attachments"][0]["content_type"], content_type,
            "{name}"
        );
        ids.push(body["attachments"][0]["id"].as_str().unwrap().to_string());
    }
    let (status, thread) = app
        .post(
            "/api/v1/threads",
            &cast.client,
            json!({"to": [user(&cast.provider)], "subject": "Voice notes", "body": "Recorded these for you.", "attachment_ids": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    assert_eq!(thread["attachment_count"], 7);
    // Video in an MP4 box, or a program named like audio, is refused.
    for (name, head) in [
        (
            "clip.m4a",
            &b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"[..],
        ),
        ("setup.mp3", &b"MZ\x90\x00\x03\x00\x00\x00"[..]),
    ] {
        let refused = upload(&app, &cast.client, name, padded(head)).await;
        assert_problem(
            &refused,
            StatusCode::BAD_REQUEST,
            "attachment_type_not_allowed",
        );
    }
}
