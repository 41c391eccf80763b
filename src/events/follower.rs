//! The follower of one node: reads the log's sequence numbers to find its stable position
//! and hands each advance's changes to the open streams.

use std::collections::HashMap;
use std::time::Duration;

use super::gaps::{GapWait, GAP_WAIT};
use super::hub::Kinds;
use super::Live;
use crate::domain::events::ThreadChange;
use crate::store::{changes, events, Backend, Store};

const BATCH: i64 = 1000;
/// After a poke, how often and how long the follower looks for the commit that follows.
const POKED_RETRY: Duration = Duration::from_millis(3);
const POKED_RETRIES: u32 = 300;
/// Rows of changes read at once when handing an advance to the streams.
const DELIVER_BATCH: i64 = 5000;

struct Follower {
    store: Store,
    live: Live,
    last: i64,
    gaps: GapWait,
}

impl Follower {
    /// Reads what follows `last` and moves as far as the log is complete. Returns whether
    /// it moved, and whether a whole batch was read (more may wait).
    async fn step(&mut self) -> anyhow::Result<(bool, bool)> {
        let seqs = {
            let mut conn = self.store.read().await?;
            events::seqs_after(&mut conn, self.last, BATCH).await?
        };
        let from = self.last;
        for seq in &seqs {
            if !self.gaps.admits(self.last, *seq) {
                break;
            }
            self.last = *seq;
        }
        if self.last > from {
            self.deliver(from, self.last).await?;
            self.live.inner.stable.send_replace(self.last);
        }
        Ok((self.last > from, seqs.len() as i64 == BATCH))
    }

    /// Hands the changes with `from < seq <= to` to the streams of the people they concern,
    /// each with the state `to`: everything of theirs up to it is in the log by now.
    async fn deliver(&self, from: i64, to: i64) -> anyhow::Result<()> {
        let hub = &self.live.inner.hub;
        let mut after = (from, String::new());
        while !hub.is_empty() {
            let rows = {
                let mut conn = self.store.read().await?;
                changes::between(&mut conn, (after.0, &after.1), to, DELIVER_BATCH).await?
            };
            let mut by_person: HashMap<&str, Kinds> = HashMap::new();
            for row in &rows {
                by_person.entry(&row.person_id).or_default().merge(Kinds {
                    threads: row
                        .thread_change
                        .as_deref()
                        .and_then(ThreadChange::parse)
                        .is_some(),
                    folders: row.folders != 0,
                    drafts: row.drafts != 0,
                });
            }
            for (person, kinds) in by_person {
                hub.deliver(person, to, kinds);
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == DELIVER_BATCH => {
                    after = (last.seq, last.person_id.clone());
                }
                _ => break,
            }
        }
        Ok(())
    }
}

/// Follows the log until the server stops: from just below its end at start, waking on a
/// poke, a PostgreSQL notification or the poll.
pub async fn run(store: Store, live: Live, database_url: String, poll: Duration) {
    let mut follower = loop {
        match start(&store, &live).await {
            Ok(f) => break f,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "live updates cannot read the event log; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut listener = Listener::new(store.backend(), database_url);
    let mut last_error: Option<std::time::Instant> = None;
    loop {
        let poked = tokio::select! {
            _ = live.inner.poke.notified() => true,
            _ = listener.recv() => true,
            _ = tokio::time::sleep(poll) => false,
            _ = wait_closed(&live) => return,
        };
        let mut retries = if poked { POKED_RETRIES } else { 0 };
        loop {
            match follower.step().await {
                Ok((_, true)) => continue,
                Ok((true, false)) => break,
                Ok((false, false)) if retries > 0 => {
                    retries -= 1;
                    tokio::time::sleep(POKED_RETRY).await;
                }
                Ok((false, false)) => break,
                Err(e) => {
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %format!("{e:#}"), "live updates failed to read the event log; retrying");
                        last_error = Some(std::time::Instant::now());
                    }
                    break;
                }
            }
        }
    }
}

async fn wait_closed(live: &Live) {
    let mut rx = live.inner.closed.subscribe();
    let _ = rx.wait_for(|c| *c).await;
}

/// Starts a little below the log's end: a transaction that took a number before the end
/// but has not committed yet is still waited for (all such holes together, for
/// [`GAP_WAIT`]); on SQLite, where numbers are taken in commit order, there are none.
async fn start(store: &Store, live: &Live) -> anyhow::Result<Follower> {
    let end = {
        let mut conn = store.read().await?;
        events::max_seq(&mut conn).await?
    };
    let (last, gaps) = match store.backend() {
        Backend::Sqlite => (end, GapWait::new(GAP_WAIT)),
        Backend::Postgres => ((end - BATCH).max(0), GapWait::starting_below(GAP_WAIT, end)),
    };
    let mut follower = Follower {
        store: store.clone(),
        live: live.clone(),
        last,
        gaps,
    };
    live.inner.stable.send_replace(last);
    follower.step().await?;
    Ok(follower)
}

/// The PostgreSQL notifications of other nodes' events; nothing on SQLite. A lost
/// connection is opened again on the next wait; meanwhile the poll covers.
struct Listener {
    url: Option<String>,
    listener: Option<sqlx::postgres::PgListener>,
    retry_at: Option<tokio::time::Instant>,
}

impl Listener {
    fn new(backend: Backend, url: String) -> Listener {
        Listener {
            url: (backend == Backend::Postgres).then_some(url),
            listener: None,
            retry_at: None,
        }
    }

    /// Resolves when a notification arrives; never, without PostgreSQL.
    async fn recv(&mut self) {
        let Some(url) = self.url.clone() else {
            return std::future::pending().await;
        };
        if self.listener.is_none() {
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
            }
            match connect(&url).await {
                Ok(l) => self.listener = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "live updates cannot listen for other nodes' events; polling");
                    self.retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                    return std::future::pending().await;
                }
            }
        }
        let listener = self.listener.as_mut().expect("set above");
        if listener.recv().await.is_err() {
            self.listener = None;
            self.retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    }
}

async fn connect(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(events::CHANNEL).await?;
    Ok(listener)
}
