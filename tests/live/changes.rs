//! `/changes`: what changed for the caller since a state, every kind of change, paging,
//! forgotten states, and the privacy rules (a client hears only of what they may see).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, tampered, Backend, TestApp};
use crate::{changes, ids, on_both_backends, state_of, user};

on_both_backends!(
    changes_report_every_kind_of_change_for_the_caller,
    changes_page_with_has_more_and_lose_nothing,
    a_forgotten_or_unknown_state_answers_410,
    lists_hand_out_the_state_changes_start_from,
    two_clients_of_one_broadcast_never_see_each_others_changes,
    clients_hear_nothing_of_internal_notes_or_of_staff_reading,
    a_member_who_leaves_a_team_has_its_threads_destroyed,
    clients_hear_nothing_of_team_state_or_of_an_agent_added,
    a_thread_emptied_from_the_trash_comes_back_as_created,
    events_written_together_are_numbered_in_the_order_given,
);

/// A message, a read, a move, a reaction, a draft, emptying the Trash and a deletion: each
/// is reported to the caller as the right kind of change.
async fn changes_report_every_kind_of_change_for_the_caller(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let s0 = state_of(&app, &cast.client).await;
    let a = app
        .send(&cast.provider, &[&user(&cast.client)], "First")
        .await;
    let c = changes(&app, &cast.client, &s0).await;
    assert_eq!(ids(&c, "created"), [a.as_str()]);
    assert!(ids(&c, "updated").is_empty() && ids(&c, "destroyed").is_empty());
    assert_eq!(c["folders_changed"], true, "the Inbox's unread count moved");
    assert_eq!(c["has_more"], false);

    // Reading, filing and a reply: updated.
    let s1 = c["state"].as_str().unwrap().to_string();
    assert_eq!(changes(&app, &cast.client, &s1).await["updated"], json!([]));
    let (status, view) = app.thread(&cast.client, &a).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let c = changes(&app, &cast.client, &s1).await;
    assert_eq!(ids(&c, "updated"), [a.as_str()]);
    assert!(ids(&c, "created").is_empty());
    let s2 = c["state"].as_str().unwrap().to_string();
    app.file_thread(&cast.client, &a, json!({"folder": "archive"}))
        .await;
    let c = changes(&app, &cast.client, &s2).await;
    assert_eq!(ids(&c, "updated"), [a.as_str()]);
    assert_eq!(c["folders_changed"], true);

    // A reaction from the provider on the client's thread: updated for both.
    let s3 = c["state"].as_str().unwrap().to_string();
    let p3 = state_of(&app, &cast.provider).await;
    let message = view["messages"][0]["id"].as_str().unwrap();
    let (status, body) = app
        .put(
            &format!("/api/v1/messages/{message}/reactions/%F0%9F%91%8D"),
            &cast.provider,
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        ids(&changes(&app, &cast.client, &s3).await, "updated"),
        [a.as_str()]
    );
    assert_eq!(
        ids(&changes(&app, &cast.provider, &p3).await, "updated"),
        [a.as_str()]
    );

    // A draft: drafts changed, no thread.
    let p4 = state_of(&app, &cast.provider).await;
    let (status, body) = app
        .post(
            "/api/v1/drafts",
            &cast.provider,
            json!({"subject": "Later"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let c = changes(&app, &cast.provider, &p4).await;
    assert_eq!(c["drafts_changed"], true);
    assert!(ids(&c, "created").is_empty() && ids(&c, "updated").is_empty());

    // The client empties it from their Trash: destroyed for them, the provider unmoved.
    let s5 = state_of(&app, &cast.client).await;
    let p5 = state_of(&app, &cast.provider).await;
    app.file_thread(&cast.client, &a, json!({"folder": "trash"}))
        .await;
    let (status, body) = app
        .post("/api/v1/folders/trash/empty", &cast.client, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = changes(&app, &cast.client, &s5).await;
    assert_eq!(ids(&c, "destroyed"), [a.as_str()]);
    assert!(ids(&c, "updated").is_empty(), "gone wins over moved: {c}");
    assert_eq!(
        changes(&app, &cast.provider, &p5).await["updated"],
        json!([])
    );

    // The provider deletes a thread for everyone: destroyed for both.
    let b = app
        .send(&cast.provider, &[&user(&cast.client)], "Second")
        .await;
    let s6 = state_of(&app, &cast.client).await;
    let p6 = state_of(&app, &cast.provider).await;
    let (status, body) = app
        .delete(&format!("/api/v1/threads/{b}"), &cast.provider)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        ids(&changes(&app, &cast.client, &s6).await, "destroyed"),
        [b.as_str()]
    );
    assert_eq!(
        ids(&changes(&app, &cast.provider, &p6).await, "destroyed"),
        [b]
    );

    // Made and gone between two states: never heard of.
    let s7 = state_of(&app, &cast.client).await;
    let d = app
        .send(&cast.provider, &[&user(&cast.client)], "Brief")
        .await;
    app.delete(&format!("/api/v1/threads/{d}"), &cast.provider)
        .await;
    let c = changes(&app, &cast.client, &s7).await;
    for list in ["created", "updated", "destroyed"] {
        assert!(ids(&c, list).is_empty(), "{list}: {c}");
    }
}

/// With `limit`, changes come in pages (`has_more`), each starting where the last ended,
/// and together they hold every change once.
async fn changes_page_with_has_more_and_lose_nothing(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let start = state_of(&app, &cast.client).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(
            app.send(&cast.provider, &[&user(&cast.client)], &format!("N{i}"))
                .await,
        );
    }
    sent.sort();
    crate::settle(&app).await;
    let mut since = start;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/changes?since={since}&limit=2"),
                &cast.client,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let n = ids(&page, "created").len() + ids(&page, "updated").len();
        assert!(n <= 2, "at most limit changes: {page}");
        seen.extend(ids(&page, "created"));
        since = page["state"].as_str().unwrap().to_string();
        pages += 1;
        if page["has_more"] == false {
            break;
        }
        assert!(pages < 20, "paging ends");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, sent);
    assert!(pages >= 3, "five threads, two at a time: {pages} pages");
    // Out of range: 400 naming the field.
    for bad in ["0", "1001", "-1"] {
        let r = app
            .get(
                &format!("/api/v1/changes?since={since}&limit={bad}"),
                &cast.client,
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(r.1["field"], "limit");
    }
}

/// A state from before the retention horizon, a changed one, and another person's all
/// answer 410 `cannot_calculate_changes`: the client lists again.
async fn a_forgotten_or_unknown_state_answers_410(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let old = state_of(&app, &cast.client).await;
    app.send(&cast.provider, &[&user(&cast.client)], "Old news")
        .await;
    crate::settle(&app).await;
    for state in [tampered(&old), "not-a-state".into()] {
        let r = app
            .get(&format!("/api/v1/changes?since={state}"), &cast.client)
            .await;
        assert_problem(&r, StatusCode::GONE, "cannot_calculate_changes");
        assert_eq!(r.1["field"], "since");
    }
    let r = app
        .get(&format!("/api/v1/changes?since={old}"), &cast.other_client)
        .await;
    assert_problem(&r, StatusCode::GONE, "cannot_calculate_changes");
    // Past the retention: the change is forgotten and the old state with it.
    app.clock.advance_minutes(31 * 24 * 60);
    let gone = confide::service::changes::forget_old(&app.state)
        .await
        .unwrap();
    assert!(gone >= 1, "the month-old change is forgotten");
    // (The month also ended the session: a new one, the same person.)
    let client = app.login_as(&cast.practice, &cast.client.email).await;
    let r = app
        .get(&format!("/api/v1/changes?since={old}"), &client)
        .await;
    assert_problem(&r, StatusCode::GONE, "cannot_calculate_changes");
}

/// `GET /threads` and `GET /folders` hand out the state; from it, nothing is missed.
async fn lists_hand_out_the_state_changes_start_from(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    crate::settle(&app).await;
    let (status, folders) = app.get("/api/v1/folders", &cast.client).await;
    assert_eq!(status, StatusCode::OK, "{folders}");
    let from_folders = folders["state"].as_str().unwrap().to_string();
    let from_threads = state_of(&app, &cast.client).await;
    let a = app
        .send(&cast.provider, &[&user(&cast.client)], "Hello")
        .await;
    for state in [from_folders, from_threads] {
        assert_eq!(
            ids(&changes(&app, &cast.client, &state).await, "created"),
            [a.as_str()]
        );
    }
}

/// In a message to two clients, what one client does (reading, filing, emptying) never
/// reaches the other's changes; the staff sender hears of the reads (read receipts).
async fn two_clients_of_one_broadcast_never_see_each_others_changes(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.provider,
            &[&user(&cast.client), &user(&cast.other_client)],
            "To you both",
        )
        .await;
    let other = state_of(&app, &cast.other_client).await;
    let staff = state_of(&app, &cast.provider).await;
    app.thread(&cast.client, &id).await;
    app.file_thread(&cast.client, &id, json!({"folder": "trash"}))
        .await;
    app.post("/api/v1/folders/trash/empty", &cast.client, json!({}))
        .await;
    let c = changes(&app, &cast.other_client, &other).await;
    assert!(empty(&c), "the other client hears nothing: {c}");
    assert_eq!(c["folders_changed"], false);
    let c = changes(&app, &cast.provider, &staff).await;
    assert_eq!(ids(&c, "updated"), [id], "the read, for read receipts");
}

fn empty(c: &Value) -> bool {
    ["created", "updated", "destroyed"]
        .iter()
        .all(|l| c[*l].as_array().is_some_and(|a| a.is_empty()))
}

/// A note added and a staff member reading: staff hear of them, the client of neither.
async fn clients_hear_nothing_of_internal_notes_or_of_staff_reading(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.client,
            &[&user(&cast.provider), &user(&cast.front)],
            "Question",
        )
        .await;
    let client = state_of(&app, &cast.client).await;
    let front = state_of(&app, &cast.front).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/threads/{id}/notes"),
            &cast.provider,
            json!({"body": "Check the insurance first."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.thread(&cast.provider, &id).await;
    let c = changes(&app, &cast.client, &client).await;
    assert!(empty(&c), "{c}");
    assert_eq!(c["folders_changed"], false);
    assert_eq!(
        ids(&changes(&app, &cast.front, &front).await, "updated"),
        [id]
    );
}

/// A biller moved out of the billers loses the team's threads they were reached through
/// only: destroyed in their changes.
async fn a_member_who_leaves_a_team_has_its_threads_destroyed(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.client, &["group:billers"], "An invoice question")
        .await;
    let before = state_of(&app, &cast.biller).await;
    let (status, body) = app
        .update_person(
            &cast.admin,
            &cast.biller.id,
            json!({"role": "front_office"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = changes(&app, &cast.biller, &before).await;
    assert_eq!(ids(&c, "destroyed"), [id]);
}

/// A biller assigning the client's message to themselves and marking it done, and staff
/// adding an external agent (invisible to clients): the client's changes stay empty;
/// staff hear of both.
async fn clients_hear_nothing_of_team_state_or_of_an_agent_added(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(
            &cast.client,
            &["group:billers", &user(&cast.provider)],
            "A bill",
        )
        .await;
    let client = state_of(&app, &cast.client).await;
    let provider = state_of(&app, &cast.provider).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/threads/{id}"),
            &cast.biller,
            json!({"assignee": user(&cast.biller), "done": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/threads/{id}/participants"),
            &cast.provider,
            json!({"people": [user(&cast.agent)]}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let c = changes(&app, &cast.client, &client).await;
    assert!(empty(&c), "{c}");
    assert_eq!(c["folders_changed"], false);
    assert_eq!(
        ids(&changes(&app, &cast.provider, &provider).await, "updated"),
        [id]
    );
}

/// A client who emptied a thread from their Trash gets it back with the next message:
/// reported as created, so that a client that forgot it fetches it again.
async fn a_thread_emptied_from_the_trash_comes_back_as_created(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let id = app
        .send(&cast.provider, &[&user(&cast.client)], "Follow-up")
        .await;
    app.file_thread(&cast.client, &id, json!({"folder": "trash"}))
        .await;
    app.post("/api/v1/folders/trash/empty", &cast.client, json!({}))
        .await;
    let emptied = state_of(&app, &cast.client).await;
    let (status, body) = app
        .reply(
            &cast.provider,
            &id,
            json!({"body": "Checking in again after a week."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let c = changes(&app, &cast.client, &emptied).await;
    assert_eq!(ids(&c, "created"), [id.as_str()]);
    assert!(ids(&c, "updated").is_empty(), "{c}");
}

/// On PostgreSQL a transaction takes its number in the log before it commits. One that
/// commits after a later one, and later than any fixed wait, is not passed over: the state
/// handed out meanwhile stays below it, so its change is reported once it commits. The
/// later one here began first (an older transaction id), so the open one's id is above
/// every id that had ended when its hole was first seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_transaction_is_waited_for_however_long_it_takes() {
    if crate::helpers::postgres_url().is_none() {
        crate::helpers::report_skip("CONFIDE_TEST_POSTGRES_URL (PostgreSQL)");
        return;
    }
    let (app, cast) = TestApp::with_cast(Backend::Postgres).await;
    let a = app
        .send(&cast.provider, &[&user(&cast.client)], "First")
        .await;
    let b = app
        .send(&cast.provider, &[&user(&cast.client)], "Second")
        .await;
    let s0 = state_of(&app, &cast.client).await;

    // `later` takes its transaction id first; `slow` then records a change to `a` and
    // stays open; `later` records a change to `b` (a higher number) and commits.
    let mut later = app.state.store.begin().await.unwrap();
    sqlx::query("SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)")
        .fetch_one(&mut *later)
        .await
        .unwrap();
    let mut slow = app.state.store.begin().await.unwrap();
    record_change(&mut slow, &a, &cast.client.id).await;
    record_change(&mut later, &b, &cast.client.id).await;
    later.commit().await.unwrap();

    tokio::time::sleep(confide::events::GAP_WAIT + std::time::Duration::from_secs(1)).await;
    let (status, page) = app.get("/api/v1/threads?limit=1", &cast.client).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let during = page["state"].as_str().unwrap().to_string();
    let (status, c) = app
        .get(&format!("/api/v1/changes?since={s0}"), &cast.client)
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert!(
        ids(&c, "updated").is_empty(),
        "the state stops below the open transaction: {c}"
    );

    slow.commit().await.unwrap();
    let c = changes(&app, &cast.client, &during).await;
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(ids(&c, "updated"), both, "the slow change is reported");
}

/// Records, in `tx`, that thread `thread` changed for `person` (as the app would).
async fn record_change(tx: &mut confide::store::Tx, thread: &str, person: &str) {
    use confide::domain::events::{EventKind, PersonChange, ThreadChange};
    use confide::store::events::{append_all, NewEvent};
    let practice: String = sqlx::query_scalar("SELECT practice_id FROM threads WHERE id = $1")
        .bind(thread)
        .fetch_one(&mut **tx)
        .await
        .unwrap();
    let event = NewEvent {
        practice_id: &practice,
        kind: EventKind::ThreadStateChanged,
        thread_id: Some(thread),
        message_id: None,
        actor_id: Some(person),
        at: 0,
    };
    let seq = append_all(tx, &[event]).await.unwrap()[0];
    let change = PersonChange {
        person_id: person.to_string(),
        thread: Some(ThreadChange::Updated),
        folders: true,
        drafts: false,
    };
    let row = confide::store::changes::NewChange {
        seq,
        at: 0,
        thread_id: Some(thread),
        change,
    };
    confide::store::changes::insert_all(tx, &[row])
        .await
        .unwrap();
}

/// A write's events go in as one statement; each gets the next number in the order given,
/// and the numbers handed back are theirs.
async fn events_written_together_are_numbered_in_the_order_given(backend: Backend) {
    use confide::domain::events::EventKind;
    use confide::store::events::{append_all, NewEvent};
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Numbered")
        .await;
    let practice: String = {
        let mut conn = app.state.store.read().await.unwrap();
        sqlx::query_scalar("SELECT practice_id FROM threads WHERE id = $1")
            .bind(&thread)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    let kinds = [
        EventKind::ThreadStateChanged,
        EventKind::MessageSent,
        EventKind::ThreadCreated,
    ];
    let events: Vec<NewEvent<'_>> = kinds
        .iter()
        .map(|kind| NewEvent {
            practice_id: &practice,
            kind: *kind,
            thread_id: Some(&thread),
            message_id: None,
            actor_id: Some(&cast.provider.id),
            at: 0,
        })
        .collect();
    let mut tx = app.state.store.begin().await.unwrap();
    let seqs = append_all(&mut tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let mut conn = app.state.store.read().await.unwrap();
    for (seq, kind) in seqs.iter().zip(kinds) {
        let stored: String = sqlx::query_scalar("SELECT kind FROM events WHERE seq = $1")
            .bind(seq)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(stored, kind.as_str());
    }
    assert!(append_all(&mut conn, &[]).await.unwrap().is_empty());
}
