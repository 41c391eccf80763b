//! Holes in the event log. On PostgreSQL a transaction takes its sequence number when it
//! appends, not when it commits, so a reader may see 7 before 6 is visible. A reader stops
//! at a hole and passes it only once the hole cannot fill any more: on PostgreSQL, when
//! every transaction that had begun writing as the hole was first seen has ended, however
//! long that takes; elsewhere after [`GAP_WAIT`].
//!
//! A hole below the highest number a read returns was taken before that number, so the
//! transaction holding it had its id before the read (an append takes its transaction id
//! before its number, see `store::events::append`), or it has rolled back. All the holes
//! one read shows are therefore waited for together: the reader takes a transaction id of
//! its own after the read (`store::events::xact_id_bound`), and the holes pass once the
//! oldest transaction still running is younger than that.

use std::time::{Duration, Instant};

use crate::store::events::InFlight;

/// How long a hole is waited for where the log cannot say which transactions are running.
pub const GAP_WAIT: Duration = Duration::from_secs(5);

/// One read of the log, as a reader of it sees it.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// The highest sequence number the read returned.
    pub end: i64,
    /// The transactions running at the read; `None` where the database does not say.
    pub in_flight: Option<InFlight>,
}

/// What a reader does with the next event of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Take it: it follows the last one, or the hole before it can no longer fill.
    Take,
    /// Stop before it: the hole before it may still fill.
    Wait,
    /// Stop before it: a hole not seen before. Call [`GapWait::seen`], then wait.
    Fresh,
}

/// When holes were first seen.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// At this moment (no transaction ids).
    At(Instant),
    /// When every transaction running had an id below this one.
    Below(i64),
}

/// One reader's holes: those first seen together, up to the read's end.
#[derive(Debug)]
pub struct GapWait {
    wait: Duration,
    /// The holes at or below `.0` were first seen together.
    holes: Option<(i64, Seen)>,
}

impl GapWait {
    pub fn new(wait: Duration) -> GapWait {
        GapWait { wait, holes: None }
    }

    /// What to do with `seq`, the next event of `read` after `last` (the last one taken).
    pub fn admits(&self, last: i64, seq: i64, read: Read) -> Verdict {
        let expected = last + 1;
        if seq == expected {
            return Verdict::Take;
        }
        match self.holes {
            Some((below, seen)) if expected <= below => {
                let passed = match (seen, read.in_flight) {
                    (Seen::Below(bound), Some(now)) => now.oldest > bound,
                    (Seen::Below(_), None) => false,
                    (Seen::At(at), _) => at.elapsed() >= self.wait,
                };
                if passed {
                    Verdict::Take
                } else {
                    Verdict::Wait
                }
            }
            _ => Verdict::Fresh,
        }
    }

    /// Records the holes of `read` (up to its end) as seen: `bound`, where the database
    /// gives one, is above the id of every transaction that had begun by the read.
    pub fn seen(&mut self, read: Read, bound: Option<i64>) {
        let seen = match bound {
            Some(bound) => Seen::Below(bound),
            None => Seen::At(Instant::now()),
        };
        self.holes = Some((read.end, seen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(end: i64) -> Read {
        Read {
            end,
            in_flight: None,
        }
    }

    fn running(end: i64, oldest: i64) -> Read {
        Read {
            end,
            in_flight: Some(InFlight { oldest }),
        }
    }

    #[test]
    fn without_transaction_ids_a_hole_is_passed_after_the_wait() {
        let mut gaps = GapWait::new(Duration::from_millis(30));
        assert_eq!(gaps.admits(4, 5, timed(7)), Verdict::Take);
        assert_eq!(gaps.admits(5, 7, timed(7)), Verdict::Fresh);
        gaps.seen(timed(7), None);
        assert_eq!(gaps.admits(5, 7, timed(7)), Verdict::Wait);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(gaps.admits(5, 7, timed(7)), Verdict::Take);
        // The next hole is waited for afresh.
        assert_eq!(gaps.admits(7, 9, timed(9)), Verdict::Fresh);
    }

    #[test]
    fn the_holes_of_one_read_are_waited_for_together() {
        let mut gaps = GapWait::new(Duration::from_millis(30));
        assert_eq!(gaps.admits(10, 12, timed(50)), Verdict::Fresh);
        gaps.seen(timed(50), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(gaps.admits(10, 12, timed(50)), Verdict::Take);
        assert_eq!(gaps.admits(12, 50, timed(50)), Verdict::Take);
        // Past that read's end, holes are fresh again.
        assert_eq!(gaps.admits(50, 52, timed(52)), Verdict::Fresh);
    }

    #[test]
    fn a_hole_waits_for_every_transaction_begun_when_it_was_seen_however_long() {
        let mut gaps = GapWait::new(Duration::ZERO);
        // Seen when the next transaction id was 100: every one below it must end first.
        assert_eq!(gaps.admits(5, 7, running(8, 90)), Verdict::Fresh);
        gaps.seen(running(8, 90), Some(100));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(gaps.admits(5, 7, running(8, 99)), Verdict::Wait);
        assert_eq!(gaps.admits(5, 7, running(8, 100)), Verdict::Wait);
        assert_eq!(gaps.admits(5, 7, running(9, 101)), Verdict::Take);
        assert_eq!(gaps.admits(7, 8, running(9, 101)), Verdict::Take);
        // A later hole is dated by the read that shows it.
        assert_eq!(gaps.admits(9, 11, running(11, 101)), Verdict::Fresh);
        gaps.seen(running(11, 101), Some(130));
        assert_eq!(gaps.admits(9, 11, running(11, 120)), Verdict::Wait);
        assert_eq!(gaps.admits(9, 11, running(11, 131)), Verdict::Take);
    }
}
