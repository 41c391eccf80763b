//! The follower of one node: reads the log's sequence numbers to find its stable position
//! and hands each advance's changes to the open streams.

use std::collections::HashMap;
use std::time::Duration;

use super::gaps::{GapWait, Read, Verdict, GAP_WAIT};
use super::hub::Kinds;
use super::Live;
use crate::store::{changes, events, Backend, Store};

const BATCH: i64 = 1000;
/// After a poke, how often and how long the follower looks for the commit that follows.
const POKED_RETRY: Duration = Duration::from_millis(3);
const POKED_RETRIES: u32 = 300;
/// After a notification, how long the follower waits for others before it reads.
const GATHER: Duration = Duration::from_millis(20);
/// Rows of changes read at once when handing an advance to the streams.
const DELIVER_BATCH: i64 = 5000;

/// Where the follower reads: on PostgreSQL a connection of its own, so that a pool busy
/// with writers never delays the streams; on SQLite the readers' pool (writers have theirs).
enum Source {
    Pool(Store),
    Own {
        url: String,
        conn: Option<sqlx::AnyConnection>,
    },
}

impl Source {
    fn new(store: &Store, url: String) -> Source {
        match store.backend() {
            Backend::Sqlite => Source::Pool(store.clone()),
            Backend::Postgres => Source::Own { url, conn: None },
        }
    }
}

/// Runs `$body` with `$conn` bound to a connection of `$source` (a dropped own connection
/// is opened again; one that failed is dropped).
macro_rules! with_conn {
    ($source:expr, |$conn:ident| $body:expr) => {{
        match $source {
            Source::Pool(store) => {
                let mut pooled = store.read().await?;
                let $conn: &mut crate::store::Conn = &mut pooled;
                $body
            }
            Source::Own { url, conn } => {
                if conn.is_none() {
                    use sqlx::ConnectOptions;
                    use std::str::FromStr;
                    let options =
                        sqlx::any::AnyConnectOptions::from_str(url)?.disable_statement_logging();
                    *conn = Some(options.connect().await?);
                }
                let $conn: &mut crate::store::Conn = conn.as_mut().expect("set above");
                let result = $body;
                if result.is_err() {
                    *conn = None;
                }
                result
            }
        }
    }};
}

struct Follower {
    source: Source,
    live: Live,
    last: i64,
    gaps: GapWait,
}

impl Follower {
    /// Reads what follows `last` and moves as far as the log is complete. Returns whether
    /// it moved, and whether a whole batch was read (more may wait).
    async fn step(&mut self) -> anyhow::Result<(bool, bool)> {
        let last = self.last;
        let (seqs, in_flight) = with_conn!(&mut self.source, |conn| events::seqs_after(
            conn, last, BATCH
        )
        .await)?;
        let from = self.last;
        let read = Read {
            end: seqs.last().copied().unwrap_or(last),
            in_flight,
        };
        for seq in &seqs {
            match self.gaps.admits(self.last, *seq, read) {
                Verdict::Take => self.last = *seq,
                Verdict::Wait => break,
                Verdict::Fresh => {
                    let bound = match in_flight {
                        Some(_) => Some(with_conn!(&mut self.source, |conn| {
                            events::xact_id_bound(conn).await
                        })?),
                        None => None,
                    };
                    self.gaps.seen(read, bound);
                    break;
                }
            }
        }
        if self.last > from {
            // Published first: a stream opening now reads what it missed up to here, and
            // the delivery below reaches it too (twice is harmless, never is not).
            self.live.inner.stable.send_replace(self.last);
            self.deliver(from, self.last).await?;
        }
        Ok((self.last > from, seqs.len() as i64 == BATCH))
    }

    /// Hands the changes with `from < seq <= to` to the streams of the people they concern,
    /// each with the state `to`: everything of theirs up to it is in the log by now.
    async fn deliver(&mut self, from: i64, to: i64) -> anyhow::Result<()> {
        let hub = self.live.inner.hub.clone();
        let mut after = (from, String::new());
        while !hub.is_empty() {
            let rows = with_conn!(&mut self.source, |conn| changes::between(
                conn,
                (after.0, &after.1),
                to,
                DELIVER_BATCH
            )
            .await)?;
            let mut by_person: HashMap<&str, Kinds> = HashMap::new();
            for row in &rows {
                by_person
                    .entry(&row.person_id)
                    .or_default()
                    .merge(Kinds::of(row));
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
        match start(&store, &live, &database_url).await {
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
        // A poke comes before its commit, so it is followed by looking again every few ms;
        // a notification comes with the commit. On PostgreSQL, with the listener up,
        // notifications (this node's too) are enough.
        let spin_on_poke = !listener.is_listening();
        let poked = tokio::select! {
            _ = live.inner.poke.notified() => spin_on_poke,
            _ = listener.recv() => {
                // Commits close together are read in one go.
                tokio::time::sleep(GATHER).await;
                listener.drain();
                false
            }
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

/// Starts a little below the log's end, so that a transaction that took a number before
/// the end but has not committed yet is still waited for (see `gaps`); on SQLite, where
/// numbers are taken in commit order, there are no such holes.
async fn start(store: &Store, live: &Live, url: &str) -> anyhow::Result<Follower> {
    let end = {
        let mut conn = store.read().await?;
        events::max_seq(&mut conn).await?
    };
    let last = match store.backend() {
        Backend::Sqlite => end,
        Backend::Postgres => (end - BATCH).max(0),
    };
    let gaps = GapWait::new(GAP_WAIT);
    let mut follower = Follower {
        source: Source::new(store, url.to_string()),
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

    /// Whether notifications are being received now.
    fn is_listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Forgets the notifications already received (one read covers them all).
    fn drain(&mut self) {
        if let Some(listener) = self.listener.as_mut() {
            while listener.next_buffered().is_some() {}
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
