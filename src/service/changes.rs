//! Live updates' two ends in the services: every event is recorded with whom it concerns
//! ([`record`]), and `/changes` answers what changed for the caller since a state
//! ([`since`]). A state is a position in the event log, signed for the person it was
//! handed to.

use std::collections::HashMap;

use std::time::Duration;

use futures_util::Stream;

use crate::domain::events::{audience, PersonChange, Reader, ThreadChange};
use crate::domain::mailbox::hidden_from;
use crate::domain::{Code, Role};
use crate::error::{AppError, AppResult};
use crate::events::{Kinds, Subscription};
use crate::store::events::{self, NewEvent};
use crate::store::{changes, Backend, Conn};

use super::cursor::List;
use super::{AppState, Caller};

/// Appends `e` to the log with its audience (`newcomers`: those it gave the thread to),
/// tells the other nodes on commit and this node's follower now. Returns its seq.
pub async fn record(
    conn: &mut Conn,
    state: &AppState,
    e: &NewEvent<'_>,
    newcomers: &[&str],
) -> AppResult<i64> {
    let seqs = record_all(conn, state, &[(NewEvent { ..*e }, newcomers)]).await?;
    Ok(seqs[0])
}

/// Appends events in order, as [`record`] does each: the readers of each thread are read
/// once, the changes of all written together, and the other nodes told once. Returns
/// their seqs.
pub async fn record_all(
    conn: &mut Conn,
    state: &AppState,
    events: &[(NewEvent<'_>, &[&str])],
) -> AppResult<Vec<i64>> {
    let new: Vec<NewEvent<'_>> = events.iter().map(|(e, _)| e.clone()).collect();
    let seqs = events::append_all(conn, &new).await?;
    let mut readers_of: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for (e, _) in events {
        if let Some(thread_id) = e.thread_id {
            if !readers_of.contains_key(thread_id) {
                let readers = changes::readers(conn, thread_id).await?;
                readers_of.insert(thread_id, readers);
            }
        }
    }
    let mut rows: Vec<changes::NewChange> = Vec::new();
    for ((e, newcomers), seq) in events.iter().zip(&seqs) {
        let stored = e.thread_id.and_then(|t| readers_of.get(t));
        let readers: Vec<Reader> = stored
            .into_iter()
            .flatten()
            .map(|(person_id, role)| {
                // An unknown stored role is treated as a client's: told less, never more.
                let role = role.parse::<Role>().unwrap_or(Role::Client);
                Reader {
                    person_id,
                    is_client: role == Role::Client,
                    hidden_from_clients: hidden_from(Role::Client, role),
                }
            })
            .collect();
        let people: Vec<PersonChange> = audience(e.kind, e.actor_id, &readers, newcomers);
        rows.extend(people.into_iter().map(|change| changes::NewChange {
            seq: *seq,
            at: e.at,
            thread_id: e.thread_id,
            change,
        }));
    }
    // Other nodes are told at commit (PostgreSQL), in the same statement as the changes.
    let channel = (state.store.backend() == Backend::Postgres).then_some(events::CHANNEL);
    changes::insert_all_notifying(conn, &rows, channel).await?;
    state.live.poke();
    Ok(seqs)
}

/// The caller's state now, to hand out with a list.
pub fn current_state(state: &AppState, caller: &Caller) -> String {
    encode(state, caller, state.live.stable())
}

fn encode(state: &AppState, caller: &Caller, seq: i64) -> String {
    state
        .cursors
        .encode(List::Changes, caller.person.id.as_str(), &seq)
}

/// The position a state of the caller's holds; anything else is 410: list again.
pub fn decode(state: &AppState, caller: &Caller, token: &str) -> AppResult<i64> {
    state
        .cursors
        .decode(List::Changes, caller.person.id.as_str(), token)
        .map_err(|_| gone())
}

fn gone() -> AppError {
    AppError::new(
        Code::CannotCalculateChanges,
        "since is too old or not a state this server handed out; list your threads and folders again.",
    )
    .with_field("since")
}

/// What changed for someone between two states.
#[derive(Debug, Default)]
pub struct Changes {
    pub state: String,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub destroyed: Vec<String>,
    pub folders_changed: bool,
    pub drafts_changed: bool,
    pub has_more: bool,
}

/// The most changes one answer holds.
pub const MAX_LIMIT: i64 = 1000;

/// What changed for the caller since `since`: at most `limit` changes, oldest first, and
/// the state to ask from next.
pub async fn since(
    state: &AppState,
    caller: &Caller,
    since: &str,
    limit: i64,
) -> AppResult<Changes> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}."),
        ));
    }
    let from = decode(state, caller, since)?;
    let upto = state.live.stable();
    let mut conn = state.store.read().await?;
    if from < changes::horizon(&mut conn).await? {
        return Err(gone());
    }
    if from >= upto {
        return Ok(Changes {
            state: encode(state, caller, from),
            ..Changes::default()
        });
    }
    let mut rows =
        changes::of_person(&mut conn, caller.person.id.as_str(), from, upto, limit + 1).await?;
    drop(conn);
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let reached = match rows.last() {
        Some(last) if has_more => last.seq,
        _ => upto,
    };
    let mut out = Changes {
        state: encode(state, caller, reached),
        has_more,
        ..Changes::default()
    };
    // Per thread, in the order they first changed: whether the range began with it new to
    // the caller (its first creation or removal in the range is a creation; a message
    // recorded just before its thread's creation changes nothing to that), and its last
    // creation or removal (an update after a removal does not bring it back).
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashMap<String, (Option<bool>, Option<ThreadChange>)> = HashMap::new();
    for row in rows {
        out.folders_changed |= row.folders != 0;
        out.drafts_changed |= row.drafts != 0;
        let (Some(thread), Some(change)) = (
            row.thread_id,
            row.thread_change.as_deref().and_then(ThreadChange::parse),
        ) else {
            continue;
        };
        let entry = seen.entry(thread.clone()).or_insert_with(|| {
            order.push(thread);
            (None, None)
        });
        if change != ThreadChange::Updated {
            entry.0.get_or_insert(change == ThreadChange::Created);
            entry.1 = Some(change);
        }
    }
    for thread in order {
        let (new_in_range, last) = seen[&thread];
        match (new_in_range == Some(true), last) {
            // Made and gone again in between: the caller never knew it.
            (true, Some(ThreadChange::Destroyed)) => {}
            (false, Some(ThreadChange::Destroyed)) => out.destroyed.push(thread),
            (true, _) => out.created.push(thread),
            (false, _) => out.updated.push(thread),
        }
    }
    // Forgotten meanwhile (the janitor moved the horizon while this was read): list again.
    let mut conn = state.store.read().await?;
    if from < changes::horizon(&mut conn).await? {
        return Err(gone());
    }
    Ok(out)
}

/// Forgets changes older than `[live] changes_retention_days`; states from before answer
/// 410 from then on.
pub async fn forget_old(state: &AppState) -> AppResult<u64> {
    let days = state.config.live.changes_retention_days as i64;
    let before = state.now() - days * 24 * 60 * 60 * 1000;
    let mut conn = state.store.write().await?;
    Ok(changes::forget_before(&mut conn, before).await?)
}

/// One event of a live stream: the caller's new state and what changed up to it.
#[derive(Debug, Clone)]
pub struct StateEvent {
    pub state: String,
    pub kinds: Vec<String>,
}

/// What a live stream writes next.
#[derive(Debug, Clone)]
pub enum Beat {
    State(StateEvent),
    /// Nothing changed for a while and the session still holds: a keep-alive comment.
    KeepAlive,
}

/// What the caller missed since the state `last` (a stream's `Last-Event-ID`) up to
/// `upto`: everything, for a state too old or not theirs.
async fn missed(state: &AppState, caller: &Caller, last: &str, upto: i64) -> AppResult<Kinds> {
    let Ok(from) = decode(state, caller, last) else {
        return Ok(Kinds::ALL);
    };
    let mut conn = state.store.read().await?;
    if from < changes::horizon(&mut conn).await? {
        return Ok(Kinds::ALL);
    }
    let rows =
        changes::of_person(&mut conn, caller.person.id.as_str(), from, upto, MAX_LIMIT).await?;
    let mut kinds = Kinds::default();
    for row in rows {
        kinds.merge(Kinds::of(&row));
    }
    Ok(kinds)
}

/// The caller's live stream: first their state now (with what they missed since
/// `last_event_id`), then a new state each time something changes for them, and every
/// `[live] keep_alive_secs` a keep-alive once their session is found to hold still. It
/// ends when their session does (looked at with each keep-alive, at once for a sign-out
/// on this node) and when the server stops. It never keeps the session alive.
pub async fn stream(
    state: AppState,
    caller: Caller,
    last_event_id: Option<String>,
) -> AppResult<impl Stream<Item = Beat> + Send + 'static> {
    let subscription = state
        .live
        .subscribe(caller.person.id.as_str(), caller.session_id.as_str());
    let now = state.live.stable();
    let kinds = match last_event_id.as_deref() {
        Some(last) => missed(&state, &caller, last, now).await?,
        None => Kinds::default(),
    };
    subscription.push(now, kinds);
    // What the stream keeps while open: only what it uses, not the whole state.
    let open = Open {
        live: state.live.clone(),
        cursors: state.cursors.clone(),
        store: state.store.clone(),
        clock: state.clock.clone(),
        idle_limit_ms: state.config.auth.session_idle_minutes * 60_000,
        recheck: Duration::from_secs(state.config.live.keep_alive_secs),
        next_check: tokio::time::Instant::now()
            + Duration::from_secs(state.config.live.keep_alive_secs),
        person_id: caller.person.id.as_str().to_string(),
        session_id: caller.session_id.as_str().to_string(),
        subscription,
    };
    Ok(futures_util::stream::unfold(open, |mut open| async move {
        let event = open.next().await?;
        Some((event, open))
    }))
}

struct Open {
    live: crate::events::Live,
    cursors: super::cursor::Cursors,
    store: crate::store::Store,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    idle_limit_ms: i64,
    recheck: Duration,
    /// When the session is looked at next: events do not put it off.
    next_check: tokio::time::Instant,
    person_id: String,
    session_id: String,
    subscription: Subscription,
}

impl Open {
    async fn next(&mut self) -> Option<Beat> {
        if self.live.is_closed() {
            return None;
        }
        tokio::select! {
            next = self.subscription.next() => {
                let (seq, kinds) = next?;
                Some(Beat::State(StateEvent {
                    state: self.cursors.encode(List::Changes, &self.person_id, &seq),
                    kinds: kinds.names(),
                }))
            }
            _ = tokio::time::sleep_until(self.next_check) => {
                self.next_check = tokio::time::Instant::now() + self.recheck;
                let now = self.clock.now_ms();
                // Boxed: a stream holds room for this query only while it runs.
                let ended = Box::pin(super::sessions::ends_at(
                    &self.store,
                    now,
                    self.idle_limit_ms,
                    &self.session_id,
                ))
                .await;
                // A database hiccup keeps the stream; the next look decides.
                match ended {
                    Ok(None) => None,
                    _ => Some(Beat::KeepAlive),
                }
            }
        }
    }
}
