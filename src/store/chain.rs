//! The audit chainer (PostgreSQL): chains the events of concurrent writes together.
//!
//! On PostgreSQL every write runs in a transaction of its own, in parallel with the others,
//! and the log's sync is shared by the commits that arrive together. The audit chain's head
//! is the exception: a write that chains its own event holds the head from that statement
//! to the end of its commit, so writers pass it one sync at a time. With the chainer, a
//! [`Store::grouped`] write that starts while another is running puts its events in
//! `audit_pending` within its own transaction, commits, and then waits for the chainer: one
//! task that moves every pending event into the chain (one head update, one commit) and
//! answers every write that was waiting when it began. So a write is still answered only
//! once its events are chained and durable, and a write alone chains its own events as
//! before (no second commit to wait for).
//!
//! An event is durable in `audit_pending` from its write's commit. One left there by a
//! crash is chained when a server next starts (or by any later round).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::audit;
use super::{Store, Tx};

/// The most events one transaction of the chainer chains.
const BATCH: usize = 2000;
/// Writes waiting for a round before a writer waits to hand in its own.
const QUEUE: usize = 1024;

/// The handle grouped writes use.
#[derive(Clone)]
pub(super) struct Chainer {
    waiting: mpsc::Sender<oneshot::Sender<()>>,
    /// Grouped writes running now on this node.
    running: Arc<AtomicUsize>,
}

impl Chainer {
    /// Starts the chainer's task (which first chains whatever a crash left pending); it
    /// ends when every handle is dropped.
    pub(super) fn start(store: Store) -> Self {
        let (waiting, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, queue));
        Chainer {
            waiting,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `work` in a transaction of its own; its audit events are chained by the
    /// chainer when another grouped write is running, in the transaction itself otherwise.
    pub(super) async fn run<T, E, F>(&self, store: &Store, work: F) -> Result<T, E>
    where
        E: From<sqlx::Error>,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>>,
    {
        let _running = Running::new(&self.running);
        let mut tx = store.begin().await?;
        if self.running.load(Ordering::SeqCst) == 1 {
            let value = work(&mut tx).await?;
            tx.commit().await?;
            return Ok(value);
        }
        let appended = Arc::new(std::sync::Mutex::new(Vec::new()));
        let value = audit::deferring(appended.clone(), work(&mut tx)).await?;
        let events = std::mem::take(&mut *appended.lock().unwrap_or_else(|p| p.into_inner()));
        audit::queue(&mut tx, &events).await?;
        tx.commit().await?;
        if !events.is_empty() {
            let (done, chained) = oneshot::channel();
            if self.waiting.send(done).await.is_ok() {
                // Dropped unanswered only when the server stops; the events stay pending.
                let _ = chained.await;
            }
        }
        Ok(value)
    }
}

/// Counts a grouped write as running until dropped (also when its future is).
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn new(running: &'a AtomicUsize) -> Self {
        running.fetch_add(1, Ordering::SeqCst);
        Running(running)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<oneshot::Sender<()>>) {
    if let Err(e) = round(&store).await {
        tracing::warn!(error = %e, "audit events left pending could not be chained");
    }
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while let Ok(next) = queue.try_recv() {
            waiting.push(next);
        }
        // Every write answered here committed before this round's first statement began,
        // so the round chains its events (or waits for whoever on another node is).
        if let Err(e) = round(&store).await {
            // The events are durable where they wait; the next round chains them.
            tracing::error!(error = %e, "a round of the audit chainer failed");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Moves every pending event into the chain, in the order they were queued, a batch per
/// transaction.
async fn round(store: &Store) -> Result<(), sqlx::Error> {
    loop {
        let mut tx = store.begin().await?;
        let events = audit::take_pending(&mut tx, BATCH).await?;
        if events.is_empty() {
            return Ok(());
        }
        audit::append_all(&mut tx, &events).await?;
        tx.commit().await?;
        if events.len() < BATCH {
            return Ok(());
        }
    }
}
