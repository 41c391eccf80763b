//! The open streams of one node, by person: the follower hands each person's new changes
//! to their streams, which coalesce them until the stream writes its next event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Which parts of a mailbox changed: threads, folder counts, drafts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds {
    pub threads: bool,
    pub folders: bool,
    pub drafts: bool,
}

impl Kinds {
    pub const ALL: Kinds = Kinds {
        threads: true,
        folders: true,
        drafts: true,
    };

    pub fn merge(&mut self, other: Kinds) {
        self.threads |= other.threads;
        self.folders |= other.folders;
        self.drafts |= other.drafts;
    }

    /// What one stored change says changed.
    pub fn of(row: &crate::store::changes::ChangeRow) -> Kinds {
        Kinds {
            threads: row.thread_change.is_some(),
            folders: row.folders != 0,
            drafts: row.drafts != 0,
        }
    }

    pub fn is_empty(self) -> bool {
        self == Kinds::default()
    }

    /// The names, in a fixed order: `threads`, `folders`, `drafts`.
    pub fn names(self) -> Vec<String> {
        [
            (self.threads, "threads"),
            (self.folders, "folders"),
            (self.drafts, "drafts"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
    }
}

/// What a stream has yet to write: the newest state and what changed up to it.
#[derive(Debug, Default)]
struct Pending {
    state: i64,
    kinds: Kinds,
    due: bool,
}

/// One open stream.
pub struct Stream {
    session_id: String,
    pending: Mutex<Pending>,
    wake: Notify,
    ended: AtomicBool,
}

impl Stream {
    fn push(&self, state: i64, kinds: Kinds) {
        {
            let mut p = self.pending.lock().expect("not poisoned");
            p.state = p.state.max(state);
            p.kinds.merge(kinds);
            p.due = true;
        }
        self.wake.notify_one();
    }

    fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// A person's open stream with its id.
type Entry = (u64, Arc<Stream>);

#[derive(Default, Clone)]
pub(super) struct Hub {
    inner: Arc<Streams>,
}

#[derive(Default)]
pub(super) struct Streams {
    streams: Mutex<HashMap<String, Vec<Entry>>>,
    next_id: AtomicU64,
    open: AtomicU64,
}

impl std::ops::Deref for Hub {
    type Target = Streams;
    fn deref(&self) -> &Streams {
        &self.inner
    }
}

impl Hub {
    pub(super) fn subscribe(&self, person_id: &str, session_id: &str) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(Stream {
            session_id: session_id.to_string(),
            pending: Mutex::default(),
            wake: Notify::new(),
            ended: AtomicBool::new(false),
        });
        self.streams
            .lock()
            .expect("not poisoned")
            .entry(person_id.to_string())
            .or_default()
            .push((id, stream.clone()));
        self.open.fetch_add(1, Ordering::Relaxed);
        Subscription {
            hub: self.clone(),
            id,
            person_id: person_id.to_string(),
            stream,
        }
    }
}

impl Streams {
    fn unsubscribe(&self, person_id: &str, id: u64) {
        let mut streams = self.streams.lock().expect("not poisoned");
        if let Some(list) = streams.get_mut(person_id) {
            let before = list.len();
            list.retain(|(i, _)| *i != id);
            if list.len() < before {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
            if list.is_empty() {
                streams.remove(person_id);
            }
        }
    }

    /// Whether anyone has a stream open (the follower reads changes only then).
    pub(super) fn is_empty(&self) -> bool {
        self.open.load(Ordering::Relaxed) == 0
    }

    pub(super) fn len(&self) -> usize {
        self.open.load(Ordering::Relaxed) as usize
    }

    /// Hands `kinds` at `state` to `person_id`'s streams, if they have any.
    pub(super) fn deliver(&self, person_id: &str, state: i64, kinds: Kinds) {
        let streams = self.streams.lock().expect("not poisoned");
        for (_, s) in streams.get(person_id).into_iter().flatten() {
            s.push(state, kinds);
        }
    }

    pub(super) fn end_session(&self, session_id: &str) {
        let streams = self.streams.lock().expect("not poisoned");
        for (_, s) in streams.values().flatten() {
            if s.session_id == session_id {
                s.end();
            }
        }
    }

    pub(super) fn end_all(&self) {
        let streams = self.streams.lock().expect("not poisoned");
        for (_, s) in streams.values().flatten() {
            s.end();
        }
    }
}

/// A stream's place in the hub; leaving it (dropping) closes the place.
pub struct Subscription {
    hub: Hub,
    id: u64,
    person_id: String,
    stream: Arc<Stream>,
}

impl Subscription {
    /// Waits for the next thing to write: `Some((state, kinds))`, or `None` once the
    /// stream was ended (sign-out, shutdown).
    pub async fn next(&self) -> Option<(i64, Kinds)> {
        loop {
            if self.stream.ended.load(Ordering::SeqCst) {
                return None;
            }
            {
                let mut p = self.stream.pending.lock().expect("not poisoned");
                if p.due {
                    p.due = false;
                    return Some((p.state, std::mem::take(&mut p.kinds)));
                }
            }
            self.stream.wake.notified().await;
        }
    }

    /// Queues `kinds` at `state` for this stream alone (what it missed before it opened).
    pub fn push(&self, state: i64, kinds: Kinds) {
        self.stream.push(state, kinds);
    }

    pub fn person_id(&self) -> &str {
        &self.person_id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.person_id, self.id);
    }
}
