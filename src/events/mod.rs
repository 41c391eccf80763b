//! Following the event log for live updates: a follower per node finds how far the log is
//! complete (its *stable* position, the state `/changes` and the streams hand out) and
//! tells the open streams of the people each new event concerns. The log is the truth; a
//! poke from this node's writers, PostgreSQL notifications from other nodes and a slow
//! poll only say when to look.

mod follower;
mod gaps;
mod hub;

use std::sync::Arc;

use tokio::sync::{watch, Notify};

pub use follower::run;
pub use gaps::{GapWait, Read, Verdict, GAP_WAIT};
pub use hub::{Kinds, Subscription};

/// Live updates of one node: the follower's stable position and the open streams.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    stable: watch::Sender<i64>,
    poke: Notify,
    hub: hub::Hub,
    closed: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Live {
        Live {
            inner: Arc::new(Inner {
                stable: watch::channel(0).0,
                poke: Notify::new(),
                hub: hub::Hub::default(),
                closed: watch::channel(false).0,
            }),
        }
    }

    /// The last position up to which this node has read the whole log: every change at or
    /// before it is visible, so a state handed out now misses nothing later.
    pub fn stable(&self) -> i64 {
        *self.inner.stable.borrow()
    }

    /// Waits until the stable position is at least `seq` (tests and benchmarks).
    pub async fn reached(&self, seq: i64) {
        let mut rx = self.inner.stable.subscribe();
        let _ = rx.wait_for(|s| *s >= seq).await;
    }

    /// Something is about to be appended to the log: look soon.
    pub fn poke(&self) {
        self.inner.poke.notify_one();
    }

    /// Opens a stream's subscription for `person_id` in `session_id`.
    pub fn subscribe(&self, person_id: &str, session_id: &str) -> Subscription {
        self.inner.hub.subscribe(person_id, session_id)
    }

    /// Ends this node's streams of a session that ended (sign-out).
    pub fn end_session(&self, session_id: &str) {
        self.inner.hub.end_session(session_id);
    }

    /// How many streams are open on this node.
    pub fn open_streams(&self) -> usize {
        self.inner.hub.len()
    }

    /// The server is stopping: every stream ends.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        self.inner.hub.end_all();
    }

    /// Whether [`Live::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }
}
