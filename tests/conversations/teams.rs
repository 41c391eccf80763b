//! Team folders are shared inboxes (rule 17): a message thread addressed to a group
//! belongs to the group; every current member sees it, a new member too with its history;
//! members assign it and mark it done for the whole team; a new message brings it back.

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::sync::Arc;

use confide::clock::ManualClock;
use confide::service::{invitations, Person};
use confide::store::people::find_any_practice;
use sqlx::migrate::Migrator;
use sqlx::Connection;

use crate::helpers::{
    assert_problem, folder_entry as count, Backend, Session, TestApp, TestDatabase, PASSWORD,
};
use crate::{on_both_backends, open_conversation, reply_ok, user};
use confide::domain::Role;

on_both_backends!(
    team_threads_are_shared_and_a_new_member_sees_them_with_their_history,
    a_member_assigns_a_team_thread_and_the_team_sees_to_whom,
    team_folders_filter_by_mine_and_unassigned,
    done_archives_a_team_thread_for_the_whole_team_until_a_new_message,
    only_team_members_change_a_team_state,
    a_member_who_leaves_the_team_no_longer_sees_its_threads,
    the_migration_brings_team_folders_in_line_with_todays_members,
    an_invited_biller_finds_the_teams_threads_on_accepting,
);

/// Someone invited as a biller joins the team when they accept: the team's earlier
/// threads are theirs, with their history (and none before that).
async fn an_invited_biller_finds_the_teams_threads_on_accepting(backend: Backend) {
    // The sender would send the invitation meanwhile, with a new link replacing the one
    // this test issues: it waits a minute here.
    let app = TestApp::spawn_with(backend, |c| c.notifications.poll_interval_ms = 60_000).await;
    let cast = crate::Cast::new(&app).await;
    let id = app
        .send(&cast.client, &["group:billers"], "Before they came")
        .await;
    let email = "ines.invited@oak.example";
    let (status, created) = app
        .post(
            "/api/v1/people",
            &cast.admin,
            json!({"role": "biller", "name": "Ines Invited", "email": email}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mut conn = app.state.store.read().await.unwrap();
    let row = find_any_practice(&mut conn, created["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let person = Person::try_from(row).unwrap();
    let rows: i64 = {
        let mut conn = app.db.connect().await;
        sqlx::query_scalar("SELECT COUNT(*) FROM thread_participants WHERE person_id = $1")
            .bind(person.id.as_str())
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(rows, 0, "not a member while only invited");
    let mut tx = app.state.store.begin().await.unwrap();
    let token = invitations::issue(&mut tx, &app.state, &person)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            None,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ines = app.login_as(&cast.practice, email).await;
    assert_eq!(billing(&app, &ines, "").await, vec![id.clone()]);
    let (status, seen) = app.thread(&ines, &id).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["messages"].as_array().unwrap().len(), 1);
}

/// `PATCH /api/v1/threads/{id}` with a team change.
async fn team(app: &TestApp, who: &Session, id: &str, body: Value) -> (StatusCode, Value) {
    app.patch(&format!("/api/v1/threads/{id}"), who, body).await
}

async fn team_ok(app: &TestApp, who: &Session, id: &str, body: Value) -> Value {
    let (status, out) = team(app, who, id, body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    out
}

/// The team folder of billers as `who` sees it, narrowed by `query`.
async fn billing(app: &TestApp, who: &Session, query: &str) -> Vec<String> {
    app.folder(who, &format!("team:billers{query}")).await
}

async fn team_threads_are_shared_and_a_new_member_sees_them_with_their_history(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let question = app
        .send(&cast.client, &["group:billers"], "Invoice question")
        .await;
    reply_ok(&app, &cast.biller, &question, "We are looking into it.").await;
    // A conversation's people are fixed when it starts: a later member does not join it.
    let group = open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), "group:billers"],
        "Payment plan group",
    )
    .await;
    let group_id = group["id"].as_str().unwrap().to_string();

    let newcomer = app
        .person(&cast.practice, Role::Biller, "Bea Newcomer")
        .await;
    assert_eq!(
        billing(&app, &newcomer, "").await,
        vec![question.clone()],
        "a new member sees the team's threads"
    );
    assert_eq!(app.folder(&newcomer, "inbox").await, vec![question.clone()]);
    let (_, folders) = app.get("/api/v1/folders", &newcomer).await;
    assert_eq!(count(&folders, "team:billers")["total"], 1);
    assert_eq!(count(&folders, "team:billers")["unread"], 1);
    let (status, seen) = app.thread(&newcomer, &question).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let bodies: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![
            "A message body that is long enough.",
            "We are looking into it."
        ],
        "with its whole history"
    );
    let (status, _) = app.thread(&newcomer, &group_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not the conversation");

    // Someone moved into the group by an admin joins it too.
    let (status, moved) = app
        .update_person(&cast.admin, &cast.front.id, json!({"role": "biller"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(billing(&app, &cast.front, "").await, vec![question.clone()]);
    // And the newcomer answers like anyone of the team.
    reply_ok(&app, &newcomer, &question, "Bea here: it is settled.").await;
    let (_, seen) = app.thread(&cast.client, &question).await;
    assert_eq!(seen["messages"].as_array().unwrap().len(), 3);
}

async fn a_member_assigns_a_team_thread_and_the_team_sees_to_whom(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let colleague = app
        .person(&cast.practice, Role::Biller, "Cy Colleague")
        .await;
    let id = app
        .send(&cast.client, &["group:billers"], "Insurance claim")
        .await;
    let out = team_ok(
        &app,
        &cast.biller,
        &id,
        json!({"assignee": user(&colleague)}),
    )
    .await;
    assert_eq!(out["teams"][0]["group"], "group:billers");
    assert_eq!(out["teams"][0]["assignee"]["id"], colleague.id.as_str());
    assert_eq!(out["teams"][0]["done"], false);
    for who in [&cast.biller, &colleague] {
        let (_, seen) = app.thread(who, &id).await;
        assert_eq!(
            seen["teams"][0]["assignee"]["name"], "Cy Colleague",
            "{seen}"
        );
    }
    let (_, page) = app
        .get("/api/v1/threads?folder=team:billers", &cast.biller)
        .await;
    assert_eq!(
        page["threads"][0]["teams"][0]["assignee"]["id"],
        colleague.id.as_str()
    );
    // Who handles a message is the practice's business, not the client's.
    let (_, seen) = app.thread(&cast.client, &id).await;
    assert_eq!(seen["teams"], json!([]), "{seen}");

    // Only an active member of the team is assigned.
    let refused = team(
        &app,
        &cast.biller,
        &id,
        json!({"assignee": user(&cast.front)}),
    )
    .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "assignee");
    let refused = team(
        &app,
        &cast.biller,
        &id,
        json!({"assignee": "group:billers"}),
    )
    .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "assignee");
    let (_, seen) = app.thread(&cast.biller, &id).await;
    assert_eq!(
        seen["teams"][0]["assignee"]["id"],
        colleague.id.as_str(),
        "unchanged"
    );

    let out = team_ok(&app, &colleague, &id, json!({"assignee": null})).await;
    assert!(out["teams"][0].get("assignee").is_none(), "{out}");
}

async fn team_folders_filter_by_mine_and_unassigned(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let colleague = app
        .person(&cast.practice, Role::Biller, "Cy Colleague")
        .await;
    let mine = app.send(&cast.client, &["group:billers"], "Mine").await;
    let theirs = app.send(&cast.client, &["group:billers"], "Theirs").await;
    let nobodys = app.send(&cast.client, &["group:billers"], "Nobody's").await;
    team_ok(
        &app,
        &cast.biller,
        &mine,
        json!({"assignee": user(&cast.biller)}),
    )
    .await;
    team_ok(
        &app,
        &cast.biller,
        &theirs,
        json!({"assignee": user(&colleague)}),
    )
    .await;
    assert_eq!(
        billing(&app, &cast.biller, "&assignee=mine").await,
        vec![mine.clone()]
    );
    assert_eq!(
        billing(&app, &colleague, "&assignee=mine").await,
        vec![theirs.clone()]
    );
    assert_eq!(
        billing(&app, &colleague, "&assignee=unassigned").await,
        vec![nobodys.clone()]
    );
    assert_eq!(billing(&app, &colleague, "").await.len(), 3);

    let refused = app
        .get(
            "/api/v1/threads?folder=team:billers&assignee=me",
            &cast.biller,
        )
        .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "assignee");
    let refused = app
        .get("/api/v1/threads?folder=inbox&assignee=mine", &cast.biller)
        .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "assignee");
    let refused = app
        .get("/api/v1/threads?folder=archive&done=true", &cast.biller)
        .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "done");
}

async fn done_archives_a_team_thread_for_the_whole_team_until_a_new_message(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let colleague = app
        .person(&cast.practice, Role::Biller, "Cy Colleague")
        .await;
    let id = app
        .send(&cast.client, &["group:billers"], "Refund please")
        .await;
    let out = team_ok(&app, &colleague, &id, json!({"done": true})).await;
    assert_eq!(out["teams"][0]["done"], true);
    assert_eq!(out["folder"], "archive");
    for who in [&cast.biller, &colleague] {
        assert!(
            app.folder(who, "inbox").await.is_empty(),
            "done for the team"
        );
        assert_eq!(app.folder(who, "archive").await, vec![id.clone()]);
        assert_eq!(billing(&app, who, "&done=true").await, vec![id.clone()]);
        assert!(billing(&app, who, "&done=false").await.is_empty());
    }
    assert_eq!(
        app.folder(&cast.client, "inbox").await,
        vec![id.clone()],
        "the client's own mailbox is theirs"
    );

    // A new message from the client brings it back for the whole team.
    reply_ok(&app, &cast.client, &id, "Any news on the refund?").await;
    for who in [&cast.biller, &colleague] {
        assert_eq!(app.folder(who, "inbox").await, vec![id.clone()]);
        assert_eq!(billing(&app, who, "&done=false").await, vec![id.clone()]);
    }
    let (_, seen) = app.thread(&cast.biller, &id).await;
    assert_eq!(seen["teams"][0]["done"], false);

    // Reopened by a member: back in every member's Inbox.
    team_ok(&app, &cast.biller, &id, json!({"done": true})).await;
    assert!(app.folder(&colleague, "inbox").await.is_empty());
    let out = team_ok(&app, &cast.biller, &id, json!({"done": false})).await;
    assert_eq!(out["teams"][0]["done"], false);
    assert_eq!(app.folder(&colleague, "inbox").await, vec![id.clone()]);
    assert_eq!(app.folder(&cast.biller, "inbox").await, vec![id]);
    let (kept, fresh) = app.kept_and_fresh_counts().await;
    assert_eq!(kept, fresh, "the folder counts after done and reopened");
}

async fn only_team_members_change_a_team_state(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), "group:billers"],
            "Copay",
        )
        .await;
    let refused = team(
        &app,
        &cast.provider,
        &id,
        json!({"assignee": user(&cast.biller)}),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(refused.1["field"], "assignee");
    let refused = team(&app, &cast.client, &id, json!({"done": true})).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(refused.1["field"], "done");
    let refused = team(&app, &cast.front, &id, json!({"done": true})).await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    let (_, seen) = app.thread(&cast.provider, &id).await;
    assert_eq!(seen["teams"][0]["done"], false, "nothing changed: {seen}");
    assert!(seen["teams"][0].get("assignee").is_none());

    let direct = app
        .send(&cast.client, &[&user(&cast.biller)], "Direct")
        .await;
    let refused = team(&app, &cast.biller, &direct, json!({"done": true})).await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "done");
    let refused = team(
        &app,
        &cast.biller,
        &id,
        json!({"done": true, "folder": "archive"}),
    )
    .await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(refused.1["field"], "folder");
    assert_eq!(
        app.folder(&cast.biller, "archive").await,
        Vec::<String>::new()
    );
}

async fn a_member_who_leaves_the_team_no_longer_sees_its_threads(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let answered = app.send(&cast.client, &["group:billers"], "Answered").await;
    let assigned = app.send(&cast.client, &["group:billers"], "Assigned").await;
    let named = app
        .send(
            &cast.client,
            &[&user(&cast.biller), "group:billers"],
            "Named and the team",
        )
        .await;
    let group = open_conversation(
        &app,
        &cast.provider,
        &[&user(&cast.client), "group:billers"],
        "Billing group",
    )
    .await;
    let group = group["id"].as_str().unwrap().to_string();
    reply_ok(&app, &cast.biller, &answered, "I answered this one.").await;
    let mine = json!({"assignee": user(&cast.biller)});
    team_ok(&app, &cast.biller, &assigned, mine).await;

    let to_front = json!({"role": "front_office"});
    let (status, moved) = app
        .update_person(&cast.admin, &cast.biller.id, to_front)
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let (status, _) = app.thread(&cast.biller, &assigned).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the team's thread left with the team"
    );
    let (status, _) = app.thread(&cast.biller, &answered).await;
    assert_eq!(status, StatusCode::OK, "a thread one wrote in stays");
    let (status, _) = app.thread(&cast.biller, &named).await;
    assert_eq!(status, StatusCode::OK, "a thread one was named in stays");
    let (status, _) = app.thread(&cast.biller, &group).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a conversation's people stay as it started"
    );
    let refused = app
        .get("/api/v1/threads?folder=team:billers", &cast.biller)
        .await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    let (_, folders) = app.get("/api/v1/folders", &cast.biller).await;
    let lists: Vec<&str> = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(!lists.contains(&"team:billers"), "{folders}");

    // The thread is nobody's now; a remaining member sees that.
    let stays = app.person(&cast.practice, Role::Biller, "Sol Stays").await;
    let unassigned = billing(&app, &stays, "&assignee=unassigned").await;
    assert_eq!(
        unassigned.len(),
        3,
        "the team's three threads, not the conversation"
    );
    let (_, seen) = app.thread(&stays, &assigned).await;
    assert!(seen["teams"][0].get("assignee").is_none(), "{seen}");

    // A disabled member keeps nothing assigned.
    team_ok(&app, &stays, &assigned, json!({"assignee": user(&stays)})).await;
    let (status, _) = app
        .update_person(&cast.admin, &stays.id, json!({"status": "disabled"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let newcomer = app.person(&cast.practice, Role::Biller, "Nia New").await;
    assert_eq!(
        billing(&app, &newcomer, "&assignee=unassigned").await.len(),
        3
    );
    let (_, folders) = app.get("/api/v1/folders", &newcomer).await;
    assert_eq!(count(&folders, "team:billers")["total"], 3);
    let (kept, fresh) = app.kept_and_fresh_counts().await;
    assert_eq!(kept, fresh, "the folder counts after joining and leaving");
}

/// Runs `sql` on a connection of the test's own.
async fn exec(conn: &mut sqlx::AnyConnection, sql: &str) {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Migration 0016 on a database written before it: a former biller loses the team's
/// threads they were only reached through (not a conversation, not one they wrote in); an
/// active biller who came later gets them, read, in the Archive; the counts stay true.
async fn the_migration_brings_team_folders_in_line_with_todays_members(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let all = Migrator::new(std::path::Path::new(dir)).await.unwrap();
    let mut before = Migrator::new(std::path::Path::new(dir)).await.unwrap();
    before.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version < 16)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    std::fs::create_dir_all(db.data_dir()).unwrap();
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    before.run(&mut conn).await.unwrap();
    exec(
        &mut conn,
        "INSERT INTO practices (id, slug, name, created_at) VALUES ('p1', 'mig', 'Mig', 0)",
    )
    .await;
    for (id, role) in [
        ("client1", "client"),
        ("former1", "front_office"),
        ("wrote1", "front_office"),
        ("member1", "biller"),
        ("late1", "biller"),
    ] {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO people (id, practice_id, role, status, name, email, email_norm, \
                 created_at, updated_at) VALUES ('{id}', 'p1', '{role}', 'active', '{id}', \
                 '{id}@mig.example', '{id}@mig.example', 0, 0)"
            ),
        )
        .await;
    }
    for (id, kind) in [("team1", "message"), ("group1", "conversation")] {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO threads (id, practice_id, subject, started_by, client_count, groups, \
                 created_at, last_activity_at, kind) \
                 VALUES ('{id}', 'p1', 'Subject', 'client1', 1, 'billers', 1, 1, '{kind}')"
            ),
        )
        .await;
    }
    for (thread, person, via, has_sent) in [
        ("team1", "client1", "NULL", 1),
        ("team1", "former1", "'billers'", 0),
        ("team1", "wrote1", "'billers'", 1),
        ("team1", "member1", "'billers'", 0),
        ("group1", "client1", "NULL", 1),
        ("group1", "former1", "'billers'", 0),
    ] {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO thread_participants (thread_id, person_id, practice_id, via_group, \
                 folder, unread, has_sent, last_activity_at) \
                 VALUES ('{thread}', '{person}', 'p1', {via}, 'inbox', 1, {has_sent}, 1)"
            ),
        )
        .await;
    }
    all.run(&mut conn).await.unwrap();

    let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT thread_id, person_id, via_group, folder, unread FROM thread_participants \
         ORDER BY thread_id, person_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let row = |t: &str, p: &str, via: Option<&str>, folder: &str, unread: i64| {
        (
            t.into(),
            p.into(),
            via.map(Into::into),
            folder.into(),
            unread,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("group1", "client1", None, "inbox", 1),
            row("group1", "former1", Some("billers"), "inbox", 1),
            row("team1", "client1", None, "inbox", 1),
            row("team1", "late1", Some("billers"), "archive", 0),
            row("team1", "member1", Some("billers"), "inbox", 1),
            row("team1", "wrote1", None, "inbox", 1),
        ]
    );
    let teams: Vec<(String, String)> =
        sqlx::query_as("SELECT thread_id, group_name FROM team_threads")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(teams, vec![("team1".to_string(), "billers".to_string())]);
    let shared: Vec<String> =
        sqlx::query_scalar("SELECT thread_id FROM events WHERE kind = 'thread_shared'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        shared,
        vec!["team1".to_string()],
        "the index learns the new reader"
    );
    drop(conn);
    let app = TestApp::spawn_on(db, Arc::new(ManualClock::default()), |_| {}).await;
    let (kept, fresh) = app.kept_and_fresh_counts().await;
    assert_eq!(kept, fresh);
}
