//! Group commit (issue 18): writes that arrive together commit together, each checked
//! alone; one that fails is rolled back alone and its neighbours are kept; each is
//! answered only once it is committed; the group's audit events chain as one. On
//! PostgreSQL, where each write keeps its own transaction, the same outcomes hold.

use std::time::Duration;

use confide::domain::Role;
use confide::store::audit::{append, verify_chain, NewAuditEvent};
use confide::store::Store;
use tokio::sync::oneshot;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_failing_write_in_a_group_is_rolled_back_alone_and_its_neighbours_commit,
    concurrent_writes_are_answered_with_their_events_chained_and_none_is_left_pending,
);

fn event(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: 1,
        action: action.into(),
        outcome: "success".into(),
        ..Default::default()
    }
}

/// A grouped write that renames a person and appends an audit event; `fail` makes it
/// fail after both, with a statement the database refuses.
async fn rename(
    store: &Store,
    person: &str,
    name: &'static str,
    fail: bool,
) -> Result<(), sqlx::Error> {
    let person = person.to_string();
    store
        .grouped(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE people SET name = $1 WHERE id = $2")
                    .bind(name)
                    .bind(&person)
                    .execute(&mut **tx)
                    .await?;
                append(tx, &event(name)).await?;
                if fail {
                    sqlx::query("SELECT * FROM no_such_table")
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            })
        })
        .await
}

async fn name_of(store: &Store, person: &str) -> String {
    let mut conn = store.read().await.unwrap();
    sqlx::query_scalar("SELECT name FROM people WHERE id = $1")
        .bind(person)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn a_failing_write_in_a_group_is_rolled_back_alone_and_its_neighbours_commit(
    backend: Backend,
) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let store = app.state.store.clone();
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for name in ["Ada Ahead", "Ben Broken", "Cy Closing"] {
            ids.push(app.person(&practice, Role::Provider, name).await.id);
        }
        ids
    };
    let audited_before = {
        let mut conn = store.read().await.unwrap();
        verify_chain(&mut conn, None).await.unwrap().events
    };

    // A first write holds its group open until three others wait: those form the next.
    let (entered, is_entered) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let first = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .grouped(move |tx| {
                    Box::pin(async move {
                        let _ = entered.send(());
                        let _ = released.await;
                        append(tx, &event("first")).await
                    })
                })
                .await
        }
    });
    is_entered.await.unwrap();
    let mut writes = Vec::new();
    for (i, (name, fail)) in [("A", false), ("B", true), ("C", false)]
        .into_iter()
        .enumerate()
    {
        let (queued, id) = (store.clone(), ids[i].clone());
        writes.push(tokio::spawn(async move {
            rename(&queued, &id, name, fail).await
        }));
        // In this order: each joins the queue before the next (with group commit: SQLite).
        while store.commits_in_groups() && store.grouped_waiting() < i + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    let mut outcomes = Vec::new();
    for (i, write) in writes.into_iter().enumerate() {
        let outcome = write.await.unwrap();
        // Answered only once committed: another connection sees it at once.
        if outcome.is_ok() {
            assert_eq!(name_of(&store, &ids[i]).await, ["A", "B", "C"][i]);
        }
        outcomes.push(outcome.is_ok());
    }
    assert_eq!(
        outcomes,
        [true, false, true],
        "only the failing write fails"
    );
    assert_eq!(
        name_of(&store, &ids[1]).await,
        "Ben Broken",
        "the failed write left nothing"
    );

    let mut conn = store.read().await.unwrap();
    let chain = verify_chain(&mut conn, None).await.unwrap();
    assert_eq!((chain.events, chain.broken_at), (audited_before + 3, None));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE seq > $1 ORDER BY seq")
            .bind(audited_before)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let actions = match backend {
        // One group after the first: in the order they were handed in.
        Backend::Sqlite => actions,
        // Each alone (no group commit on PostgreSQL), in whatever order they committed.
        Backend::Postgres => {
            let mut sorted = actions;
            sorted.sort_by_key(|a| ["first", "A", "C"].iter().position(|x| x == a));
            sorted
        }
    };
    assert_eq!(
        actions,
        ["first", "A", "C"],
        "the failed write's event is not chained"
    );
    assert_eq!(store.commits_in_groups(), backend == Backend::Sqlite);
}

/// Writes that run together: on SQLite they commit in groups; on PostgreSQL each commits
/// alone and the audit chainer chains their events together (`store::chain`). Either way
/// every write is answered only once its event is in the chain, and an event a crash
/// left pending is chained when a server next starts.
async fn concurrent_writes_are_answered_with_their_events_chained_and_none_is_left_pending(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let store = app.state.store.clone();
    let before = {
        let mut conn = store.read().await.unwrap();
        verify_chain(&mut conn, None).await.unwrap().events
    };
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = store.clone();
        writes.spawn(async move {
            store
                .grouped(move |tx| {
                    Box::pin(async move {
                        // Long enough for the others to start meanwhile.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        append(tx, &event(&format!("write-{i:02}"))).await
                    })
                })
                .await
        });
    }
    while let Some(written) = writes.join_next().await {
        written.unwrap().unwrap();
    }
    let mut conn = store.read().await.unwrap();
    let chain = verify_chain(&mut conn, None).await.unwrap();
    assert_eq!((chain.events, chain.broken_at), (before + 24, None));
    let mut actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE seq > $1")
            .bind(before)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    actions.sort();
    let expected: Vec<String> = (0..24).map(|i| format!("write-{i:02}")).collect();
    assert_eq!(actions, expected, "each write's event, once");
    if backend == Backend::Sqlite {
        return;
    }
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(pending, 0, "every answered write's event is chained");
    let queued: bool = sqlx::query_scalar("SELECT is_called FROM audit_pending_id_seq")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(queued, "writes that ran together went through the chainer");
    // What a crash between a write's commit and the chainer's round leaves behind.
    sqlx::query(
        "INSERT INTO audit_pending (at, action, outcome) \
         VALUES (1, 'left-1', 'success'), (2, 'left-2', 'success')",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let _restarted = app.spawn_sibling(|_| {}).await;
    let mut waited = 0;
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(waited < 200, "the pending events were not chained at start");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let chain = verify_chain(&mut conn, None).await.unwrap();
    assert_eq!((chain.events, chain.broken_at), (before + 26, None));
    let last: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE seq > $1 ORDER BY seq")
            .bind(before + 24)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        last,
        ["left-1", "left-2"],
        "chained in the order they were queued"
    );
}
