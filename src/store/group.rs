//! Group commit: writes that arrive together commit together, in one transaction and one
//! sync of the log, instead of one each.
//!
//! A write hands its work to [`Store::grouped`]. One task takes the works that are waiting,
//! begins one transaction, runs each inside a savepoint of its own — every rule it checks
//! is checked on the state it commits on, as it would be alone — and commits them all at
//! once. A work that fails is rolled back to its savepoint and answered with its error at
//! once; its neighbours go on. A work that succeeds is answered only after the commit, so
//! nothing is acknowledged that is not on disk. The audit events the works append are
//! appended together just before the commit (one update of the chain's head for the whole
//! group: see [`super::audit`]). While one group commits, the next gathers: there is no
//! timer, so a lone write waits for nothing.
//!
//! On SQLite, which admits one writer, this is where the time goes: the works ran one after
//! the other anyway, each paying a sync. PostgreSQL commits concurrent transactions in
//! parallel, so there each write keeps its own and only their audit events are chained
//! together (see [`super::chain`]).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::audit::{self, NewAuditEvent};
use super::{Store, Tx};

/// The most works one transaction takes.
const MAX_GROUP: usize = 64;
/// Works waiting for their turn before a writer waits to hand in its own.
const QUEUE: usize = 1024;

/// How a work's outcome is given back once its group is settled: `None` when it is
/// committed, otherwise why it is not.
type Ack = Box<dyn FnOnce(Option<&str>) + Send>;

/// One write waiting to be run in a group.
trait Work: Send {
    /// Whoever asked is gone (the request was dropped): nothing to do.
    fn abandoned(&self) -> bool;
    /// Runs the work in `tx`; `None` when it failed (and was answered already).
    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> BoxFuture<'t, Option<Ack>>;
}

struct Typed<T, E, F> {
    work: F,
    done: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Work for Typed<T, E, F>
where
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.done.is_closed()
    }

    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> BoxFuture<'t, Option<Ack>> {
        let Typed { work, done } = *self;
        Box::pin(async move {
            match work(tx).await {
                Ok(value) => Some(Box::new(move |failure: Option<&str>| {
                    let outcome = match failure {
                        None => Ok(value),
                        Some(why) => Err(E::from(sqlx::Error::Protocol(format!(
                            "the group this write was part of did not commit: {why}"
                        )))),
                    };
                    let _ = done.send(outcome);
                }) as Ack),
                Err(e) => {
                    let _ = done.send(Err(e));
                    None
                }
            }
        })
    }
}

/// The handle writers hand their work to.
#[derive(Clone)]
pub(super) struct GroupCommit {
    works: mpsc::Sender<Box<dyn Work>>,
}

impl GroupCommit {
    /// Starts the task that runs the groups; it ends when every handle is dropped.
    pub(super) fn start(store: Store) -> Self {
        let (works, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, queue));
        GroupCommit { works }
    }
}

impl Store {
    /// Runs `work` in a write transaction, committed with whatever other grouped writes
    /// are waiting (see the module's documentation); its result once committed, or its
    /// own error (nothing of it written). Without group commit, in a transaction of its
    /// own. `work` must use only the transaction it is given: asking the store for another
    /// write connection would wait on itself.
    pub async fn grouped<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
    {
        let Some(group) = &self.group else {
            if let Some(chainer) = &self.chainer {
                return chainer.run(self, work).await;
            }
            let mut tx = self.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            return Ok(value);
        };
        let (done, outcome) = oneshot::channel();
        if group
            .works
            .send(Box::new(Typed { work, done }))
            .await
            .is_err()
        {
            return Err(E::from(sqlx::Error::PoolClosed));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(E::from(sqlx::Error::Protocol(
                "a write in this write's group failed unexpectedly; nothing of it was kept".into(),
            )))
        })
    }
}

impl Store {
    /// Whether [`Store::grouped`] writes commit in groups (or each alone).
    pub fn commits_in_groups(&self) -> bool {
        self.group.is_some()
    }

    /// How many grouped writes wait for a group to take them (0 without group commit).
    pub fn grouped_waiting(&self) -> usize {
        self.group
            .as_ref()
            .map_or(0, |g| g.works.max_capacity() - g.works.capacity())
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<Box<dyn Work>>) {
    while let Some(first) = queue.recv().await {
        let mut works = vec![first];
        while works.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(work) => works.push(work),
                Err(_) => break,
            }
        }
        works.retain(|w| !w.abandoned());
        if !works.is_empty() {
            commit_group(&store, works).await;
        }
    }
}

/// Runs one group and settles every work in it.
async fn commit_group(store: &Store, works: Vec<Box<dyn Work>>) {
    let mut tx = match store.begin().await {
        Ok(tx) => tx,
        // Dropping the works answers each of them with an error.
        Err(e) => {
            tracing::warn!(error = %e, "a group of writes could not begin");
            return;
        }
    };
    // Alone, a work needs no savepoint: its failure rolls back the transaction.
    let alone = works.len() == 1;
    let mut acks: Vec<Ack> = Vec::with_capacity(works.len());
    let mut events: Vec<NewAuditEvent> = Vec::new();
    for work in works {
        match run_one(&mut tx, work, alone).await {
            Ok(Some((ack, mut appended))) => {
                acks.push(ack);
                events.append(&mut appended);
            }
            Ok(None) => {}
            Err(why) => {
                tracing::error!(error = %why, "a group of writes was abandoned");
                settle(acks, Some(&why));
                return;
            }
        }
    }
    if acks.is_empty() {
        return;
    }
    let committed = match audit::append_all(&mut tx, &events).await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    match committed {
        Ok(()) => settle(acks, None),
        Err(e) => {
            tracing::error!(error = %e, "a group of writes did not commit");
            settle(acks, Some(&e.to_string()));
        }
    }
}

/// Runs one work in its savepoint: its answer-to-be and the audit events it appended when
/// it succeeded, `None` when it failed (rolled back and answered). `Err` when the
/// transaction can no longer be trusted and the whole group must be given up.
async fn run_one(
    tx: &mut Tx,
    work: Box<dyn Work>,
    alone: bool,
) -> Result<Option<(Ack, Vec<NewAuditEvent>)>, String> {
    if !alone {
        savepoint(tx, "SAVEPOINT confide_group").await?;
    }
    let appended = Arc::new(Mutex::new(Vec::new()));
    let ran = audit::deferring(
        appended.clone(),
        AssertUnwindSafe(work.run(tx)).catch_unwind(),
    )
    .await
    .map_err(|_| "a write panicked".to_string())?;
    let appended = std::mem::take(&mut *appended.lock().unwrap_or_else(|p| p.into_inner()));
    match ran {
        Some(ack) => {
            if !alone {
                savepoint(tx, "RELEASE SAVEPOINT confide_group").await?;
            }
            Ok(Some((ack, appended)))
        }
        // Alone, the transaction is dropped (rolled back) with nothing to commit.
        None if alone => Ok(None),
        None => {
            savepoint(tx, "ROLLBACK TO SAVEPOINT confide_group").await?;
            savepoint(tx, "RELEASE SAVEPOINT confide_group").await?;
            Ok(None)
        }
    }
}

async fn savepoint(tx: &mut Tx, statement: &str) -> Result<(), String> {
    sqlx::query(statement)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

fn settle(acks: Vec<Ack>, failure: Option<&str>) {
    for ack in acks {
        ack(failure);
    }
}
