//! The one writer: follows the event log into the index, and rebuilds it from scratch.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::schema::Value;
use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio::runtime::Handle;

use super::{
    create_index, read_current, remove_stale, switch_current, Fields, Payload, SearchIndex,
    SCHEMA_VERSION,
};
use crate::domain::events::EventKind;
use crate::domain::mailbox::hidden_from;
use crate::domain::Role;
use crate::events::{GapWait, Read, Verdict, GAP_WAIT};
use crate::store::keys::{Keyring, PracticeKey};
use crate::store::search::{self as store, EventRow, MessageDoc};
use crate::store::{Conn, Store};

/// How the indexer paces itself (from `[search]`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub poll: Duration,
    pub commit: Duration,
    pub writer_bytes: usize,
}

impl Pace {
    pub fn from_config(c: &crate::config::SearchConfig) -> Pace {
        Pace {
            poll: Duration::from_millis(c.poll_interval_ms),
            commit: Duration::from_millis(c.commit_interval_ms),
            writer_bytes: c.writer_memory_mb * 1024 * 1024,
        }
    }
}

/// Events re-read after a rebuild, to cover transactions in flight while it scanned.
const REBUILD_OVERLAP: i64 = 1000;
const BATCH: i64 = 1000;

/// Whether clients must not find a message by this participant's name (the rule is
/// [`hidden_from`]). An unknown stored role hides: the index errs on the side of privacy
/// rather than stopping, and the thread's own view refuses the unknown value outright.
fn hidden_from_clients(role: &str) -> bool {
    role.parse::<Role>()
        .map_or(true, |role| hidden_from(Role::Client, role))
}

/// `(person id, name, role)` of each participant, by thread.
type ParticipantsByThread = HashMap<String, Vec<(String, String, String)>>;

/// Index documents for messages, with their threads' participants and attachment names.
async fn documents(
    store: &Store,
    keys: &Keyring,
    fields: &Fields,
    rows: &[MessageDoc],
) -> anyhow::Result<Vec<(String, TantivyDocument)>> {
    let mut thread_ids: Vec<String> = rows.iter().map(|r| r.thread_id.clone()).collect();
    thread_ids.sort();
    thread_ids.dedup();
    let message_ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut conn = store.read().await?;
    // Grouped by thread and by message: a rebuild batch spans thousands of threads.
    let participants = participants_by_thread(&mut conn, &thread_ids).await?;
    let files = attachment_names_by_message(&mut conn, keys, &message_ids).await?;
    let mut docs = Vec::with_capacity(rows.len());
    for r in rows {
        let key = keys.practice(&mut conn, &r.practice_id).await?;
        let participants = participants.get(&r.thread_id).map(Vec::as_slice);
        let names = files.get(&r.id).map(Vec::as_slice).unwrap_or_default();
        let doc = document(fields, &key, r, participants.unwrap_or_default(), names);
        docs.push((r.id.clone(), doc));
    }
    Ok(docs)
}

/// The participants of `thread_ids`, read 500 threads at a time.
async fn participants_by_thread(
    conn: &mut Conn,
    thread_ids: &[String],
) -> anyhow::Result<ParticipantsByThread> {
    let mut participants: ParticipantsByThread = HashMap::new();
    for chunk in thread_ids.chunks(500) {
        for (thread, person, name, role) in store::participants(conn, chunk).await? {
            participants
                .entry(thread)
                .or_default()
                .push((person, name, role));
        }
    }
    Ok(participants)
}

/// The attachments' file names of `message_ids`, by message, read 500 messages at a time.
async fn attachment_names_by_message(
    conn: &mut Conn,
    keys: &Keyring,
    message_ids: &[String],
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut files: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in message_ids.chunks(500) {
        for (message, name) in store::attachment_names(conn, keys, chunk).await? {
            files.entry(message).or_default().push(name);
        }
    }
    Ok(files)
}

/// The index document of one message, given its thread's participants and its
/// attachments' file names, every word hashed with the practice's index key. Names a
/// client must not find it by go only in the non-public fields.
fn document(
    fields: &Fields,
    key: &PracticeKey,
    r: &MessageDoc,
    participants: &[(String, String, String)],
    names: &[String],
) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.message_id, &r.id);
    doc.add_text(fields.thread_id, &r.thread_id);
    doc.add_text(fields.practice_id, &r.practice_id);
    doc.add_text(fields.from_id, &r.sender_id);
    let blind = |text: &str| super::blind_text(key, text);
    doc.add_text(fields.subject, blind(&r.subject));
    doc.add_text(
        fields.body,
        blind(&crate::domain::markdown::plain_text(&r.body)),
    );
    let sender = blind(&r.sender_name);
    if !hidden_from_clients(&r.sender_role) {
        doc.add_text(fields.from_name_public, &sender);
    }
    doc.add_text(fields.from_name, sender);
    for (person_id, name, role) in participants {
        doc.add_text(fields.reader, person_id);
        if person_id != &r.sender_id {
            doc.add_text(fields.to_id, person_id);
            let name = blind(name);
            if !hidden_from_clients(role) {
                doc.add_text(fields.to_name_public, &name);
            }
            doc.add_text(fields.to_name, name);
        }
    }
    for name in names {
        doc.add_text(fields.attachment_name, blind(name));
    }
    if !names.is_empty() {
        doc.add_text(fields.has_attachment, "yes");
    }
    doc.add_i64(fields.created_at, r.created_at);
    doc
}

fn commit(writer: &mut IndexWriter, seq: i64) -> anyhow::Result<()> {
    let payload = serde_json::to_string(&Payload {
        schema: SCHEMA_VERSION,
        seq,
    })?;
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub messages: usize,
    pub elapsed: Duration,
    pub name: String,
}

/// Builds a whole new index from the messages in the database, then makes it current.
/// Searches keep using the old one until the server sees the switch.
pub fn rebuild(
    handle: &Handle,
    store: &Store,
    keys: &Keyring,
    root: &Path,
    pace: Pace,
) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let (name, index) = create_index(root)?;
    let (_, fields) = super::schema();
    let mut writer: IndexWriter = index.writer(pace.writer_bytes)?;
    let resume = handle.block_on(async {
        let mut conn = store.read().await?;
        anyhow::Ok((crate::store::events::max_seq(&mut conn).await? - REBUILD_OVERLAP).max(0))
    })?;
    let mut after = (String::new(), -1);
    let mut messages = 0;
    loop {
        let rows = handle.block_on(async {
            let mut conn = store.read().await?;
            anyhow::Ok(store::message_docs_after(&mut conn, keys, &after.0, after.1, 2000).await?)
        })?;
        let Some(last) = rows.last() else { break };
        after = (last.thread_id.clone(), last.seq);
        for (_, doc) in handle.block_on(documents(store, keys, &fields, &rows))? {
            writer.add_document(doc)?;
        }
        messages += rows.len();
    }
    commit(&mut writer, resume)?;
    writer.wait_merging_threads()?;
    switch_current(root, &name)?;
    Ok(Rebuilt {
        messages,
        elapsed: started.elapsed(),
        name,
    })
}

enum Op {
    Add(String),
    DeleteMessage(String),
    DeleteThread(String),
    /// Every message of a thread again: its readers changed (sharing).
    ReindexThread(String),
}

struct Follower {
    active: Arc<super::Active>,
    writer: IndexWriter,
    /// The last event applied.
    cursor: i64,
    /// The last sequence committed.
    committed: i64,
    last_commit: Instant,
    /// Holes in the sequence (a PostgreSQL transaction that took a number but has not
    /// committed) are waited for until they can no longer fill.
    gaps: GapWait,
}

impl Follower {
    /// Reads the next events (stopping at a fresh hole in the sequence) and applies them.
    /// Returns how many were read.
    fn step(&mut self, handle: &Handle, store: &Store, keys: &Keyring) -> anyhow::Result<usize> {
        let (events, in_flight): (Vec<EventRow>, _) = handle.block_on(async {
            let mut conn = store.read().await?;
            anyhow::Ok(store::events_after(&mut conn, self.cursor, BATCH).await?)
        })?;
        let read = Read {
            end: events.last().map_or(self.cursor, |e| e.seq),
            in_flight,
        };
        let (ops, last, fresh) = self.ops_until_gap(&events, read);
        if fresh {
            let bound = match in_flight {
                Some(_) => Some(handle.block_on(async {
                    let mut conn = store.read().await?;
                    anyhow::Ok(crate::store::events::xact_id_bound(&mut conn).await?)
                })?),
                None => None,
            };
            self.gaps.seen(read, bound);
        }
        let docs = self.added_documents(handle, store, keys, &ops)?;
        self.apply(ops, &docs)?;
        self.cursor = last;
        Ok(events.len())
    }

    /// What `events` ask of the index, up to a hole in the sequence that may still fill
    /// (see `events::gaps`); a hole that can no longer fill is passed over. Also returns
    /// the last event taken, and whether it stopped at a hole not seen before.
    fn ops_until_gap(&mut self, events: &[EventRow], read: Read) -> (Vec<Op>, i64, bool) {
        let mut ops = Vec::new();
        let mut last = self.cursor;
        for e in events {
            match self.gaps.admits(last, e.seq, read) {
                Verdict::Take => {}
                Verdict::Wait => break,
                Verdict::Fresh => return (ops, last, true),
            }
            match (EventKind::parse(&e.kind), &e.message_id, &e.thread_id) {
                (Some(EventKind::MessageSent), Some(m), _) => ops.push(Op::Add(m.clone())),
                (Some(EventKind::MessageDeleted), Some(m), _) => {
                    ops.push(Op::DeleteMessage(m.clone()))
                }
                (Some(EventKind::ThreadDeleted), _, Some(t)) => {
                    ops.push(Op::DeleteThread(t.clone()))
                }
                (Some(EventKind::ThreadShared), _, Some(t)) => {
                    ops.push(Op::ReindexThread(t.clone()))
                }
                (None, _, _) => tracing::warn!(seq = e.seq, "an event of unknown kind: skipped"),
                _ => {}
            }
            last = e.seq;
        }
        (ops, last, false)
    }

    /// The index documents of the messages `ops` add, as they are in the database now.
    fn added_documents(
        &self,
        handle: &Handle,
        store: &Store,
        keys: &Keyring,
        ops: &[Op],
    ) -> anyhow::Result<Vec<(String, TantivyDocument)>> {
        let adds: Vec<String> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Add(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let threads: Vec<&str> = ops
            .iter()
            .filter_map(|o| match o {
                Op::ReindexThread(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let fields = self.active.fields;
        handle.block_on(async {
            let mut conn = store.read().await?;
            let mut adds = adds;
            for thread in threads {
                adds.extend(store::message_ids_of_thread(&mut conn, thread).await?);
            }
            let mut rows = Vec::new();
            for chunk in adds.chunks(500) {
                rows.extend(store::message_docs(&mut conn, keys, chunk).await?);
            }
            drop(conn);
            documents(store, keys, &fields, &rows).await
        })
    }

    /// Applies `ops` to the writer, in order; an added message replaces its earlier
    /// document, if any.
    fn apply(&mut self, ops: Vec<Op>, docs: &[(String, TantivyDocument)]) -> anyhow::Result<()> {
        let fields = self.active.fields;
        for op in ops {
            match op {
                Op::Add(id) => {
                    self.writer
                        .delete_term(Term::from_field_text(fields.message_id, &id));
                    // A message deleted meanwhile is simply not there any more.
                    if let Some((_, doc)) = docs.iter().find(|(m, _)| *m == id) {
                        self.writer.add_document(doc.clone())?;
                    }
                }
                Op::DeleteMessage(id) => {
                    self.writer
                        .delete_term(Term::from_field_text(fields.message_id, &id));
                }
                Op::DeleteThread(id) => {
                    self.writer
                        .delete_term(Term::from_field_text(fields.thread_id, &id));
                }
                Op::ReindexThread(id) => {
                    self.writer
                        .delete_term(Term::from_field_text(fields.thread_id, &id));
                    for (_, doc) in docs {
                        let of_thread = doc
                            .get_first(fields.thread_id)
                            .and_then(|v| v.as_str())
                            .is_some_and(|t| t == id);
                        if of_thread {
                            self.writer.add_document(doc.clone())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn commit_if_due(&mut self, interval: Duration, force: bool) -> anyhow::Result<()> {
        if self.cursor != self.committed && (force || self.last_commit.elapsed() >= interval) {
            commit(&mut self.writer, self.cursor)?;
            self.active.reader.reload()?;
            self.committed = self.cursor;
            self.last_commit = Instant::now();
        }
        Ok(())
    }
}

/// Runs the indexer until `stop` is set: opens (or rebuilds) the current index, follows
/// the event log, and moves to a new directory when a rebuild switches `CURRENT`.
pub fn run(
    handle: Handle,
    store: Store,
    keys: Arc<Keyring>,
    search: SearchIndex,
    pace: Pace,
    stop: Arc<AtomicBool>,
) {
    let root = search.root().to_path_buf();
    let mut follower: Option<Follower> = None;
    let mut last_error: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match follow_once(&mut follower, &handle, &store, &keys, &search, &root, pace) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                // Once a minute at most, so that a dead database does not flood the log.
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %format!("{e:#}"), "search indexer failed; retrying");
                    last_error = Some(Instant::now());
                }
                follower = None;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        std::thread::sleep(pace.poll);
    }
    if let Some(mut f) = follower {
        let _ = f.commit_if_due(Duration::ZERO, true);
    }
}

/// One round of following: moves to the current index if `CURRENT` names another (or
/// none is open yet), applies the next batch of events and commits if it is time.
/// Returns whether a whole batch was read, so that more may be waiting.
fn follow_once(
    follower: &mut Option<Follower>,
    handle: &Handle,
    store: &Store,
    keys: &Keyring,
    search: &SearchIndex,
    root: &Path,
    pace: Pace,
) -> anyhow::Result<bool> {
    let on_disk = read_current(root);
    let stale = match &*follower {
        Some(f) => on_disk.as_deref() != Some(f.active.name.as_str()),
        None => true,
    };
    if stale {
        if let Some(mut f) = follower.take() {
            let _ = f.commit_if_due(Duration::ZERO, true);
        }
        *follower = Some(open_follower(handle, store, keys, search, root, pace)?);
    }
    let f = follower.as_mut().expect("set above");
    let read = f.step(handle, store, keys)?;
    // Catching up after a start: commit as soon as the backlog is read.
    let caught_up = read < BATCH as usize;
    f.commit_if_due(pace.commit, stale && caught_up)?;
    Ok(read as i64 == BATCH)
}

/// Opens the current index, rebuilding one first if there is none, makes it the one
/// searches use, removes older ones, and starts following where its last commit ended.
fn open_follower(
    handle: &Handle,
    store: &Store,
    keys: &Keyring,
    search: &SearchIndex,
    root: &Path,
    pace: Pace,
) -> anyhow::Result<Follower> {
    let active = match search.open_current() {
        Some(a) => a,
        None => {
            let rebuilt = rebuild(handle, store, keys, root, pace)?;
            tracing::info!(
                messages = rebuilt.messages,
                elapsed_ms = rebuilt.elapsed.as_millis() as u64,
                "search index rebuilt"
            );
            search
                .open_current()
                .ok_or_else(|| anyhow::anyhow!("the rebuilt search index cannot be opened"))?
        }
    };
    let seq = active.payload().map(|p| p.seq).unwrap_or(0);
    let writer = active.index.writer(pace.writer_bytes)?;
    remove_stale(root, &active.name);
    search.set_active(active.clone());
    Ok(Follower {
        active,
        writer,
        cursor: seq,
        committed: seq,
        last_commit: Instant::now(),
        gaps: GapWait::new(GAP_WAIT),
    })
}
