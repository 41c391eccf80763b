//! Holes in the event log. On PostgreSQL a transaction takes its sequence number when it
//! appends, not when it commits, so a reader may see 7 before 6 is visible. A reader stops
//! at a hole and passes it only once the hole cannot fill any more: on PostgreSQL, when
//! every transaction that was running as the hole was first seen has ended (the log read
//! says which, see [`InFlight`]), however long that takes; elsewhere after [`GAP_WAIT`].
//!
//! A hole below the highest number a read returns was taken before that number, so the
//! transaction holding it was running at that read (an append takes its transaction id
//! before its number, see `store::events::append`) or has rolled back. All the holes one
//! read shows are therefore waited for together.

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

/// When holes were first seen.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// At this moment (no transaction ids).
    At(Instant),
    /// While the transactions with ids below this one could still be running.
    Running(i64),
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

    /// Whether `seq`, the next event of `read` after `last` (the last one taken), may be
    /// taken now: it follows `last`, or the hole before it can no longer fill.
    pub fn admits(&mut self, last: i64, seq: i64, read: Read) -> bool {
        let expected = last + 1;
        if seq == expected {
            return true;
        }
        if let Some((below, seen)) = self.holes {
            if expected <= below {
                return match (seen, read.in_flight) {
                    (Seen::Running(xmax), Some(now)) => now.xmin >= xmax,
                    (Seen::Running(_), None) => false,
                    (Seen::At(at), _) => at.elapsed() >= self.wait,
                };
            }
        }
        let seen = match read.in_flight {
            Some(now) => Seen::Running(now.xmax),
            None => Seen::At(Instant::now()),
        };
        self.holes = Some((read.end, seen));
        false
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

    fn running(end: i64, xmin: i64, xmax: i64) -> Read {
        Read {
            end,
            in_flight: Some(InFlight { xmin, xmax }),
        }
    }

    #[test]
    fn without_transaction_ids_a_hole_is_passed_after_the_wait() {
        let mut gaps = GapWait::new(Duration::from_millis(30));
        assert!(gaps.admits(4, 5, timed(7)));
        assert!(!gaps.admits(5, 7, timed(7)));
        assert!(!gaps.admits(5, 7, timed(7)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(gaps.admits(5, 7, timed(7)));
        // The next hole is waited for afresh.
        assert!(!gaps.admits(7, 9, timed(9)));
    }

    #[test]
    fn the_holes_of_one_read_are_waited_for_together() {
        let mut gaps = GapWait::new(Duration::from_millis(30));
        assert!(!gaps.admits(10, 12, timed(50)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(gaps.admits(10, 12, timed(50)));
        assert!(gaps.admits(12, 50, timed(50)));
        // Past that read's end, holes are fresh again.
        assert!(!gaps.admits(50, 52, timed(52)));
    }

    #[test]
    fn a_hole_waits_for_every_transaction_running_when_it_was_seen_however_long() {
        let mut gaps = GapWait::new(Duration::ZERO);
        // Transactions 90..100 may be running; the hole at 6 waits for all of them.
        assert!(!gaps.admits(5, 7, running(8, 90, 100)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!gaps.admits(5, 7, running(8, 99, 120)));
        assert!(gaps.admits(5, 7, running(9, 100, 130)));
        assert!(gaps.admits(7, 8, running(9, 100, 130)));
        // A later hole is dated by the read that shows it.
        assert!(!gaps.admits(9, 11, running(11, 100, 130)));
        assert!(!gaps.admits(9, 11, running(11, 129, 140)));
        assert!(gaps.admits(9, 11, running(11, 130, 140)));
    }
}
