//! Holes in the event log. On PostgreSQL a transaction takes its sequence number when it
//! appends, not when it commits, so a reader may see 7 before 6 is visible. A reader stops
//! at a fresh hole and passes it only once it is older than [`GAP_WAIT`] (a rollback).

use std::time::{Duration, Instant};

/// How long a hole is waited for before it is taken to be a rollback.
pub const GAP_WAIT: Duration = Duration::from_secs(5);

/// One reader's holes: the one it waits at, and (after a start) how far back holes are
/// already as old as the start.
#[derive(Debug)]
pub struct GapWait {
    wait: Duration,
    gap: Option<(i64, Instant)>,
    /// Holes at or below this seq were already there when the reader started.
    started: Option<(i64, Instant)>,
}

impl GapWait {
    pub fn new(wait: Duration) -> GapWait {
        GapWait {
            wait,
            gap: None,
            started: None,
        }
    }

    /// A reader that starts below the log's end `end`: holes at or below it are dated from
    /// now, all together, instead of one after the other.
    pub fn starting_below(wait: Duration, end: i64) -> GapWait {
        GapWait {
            started: Some((end, Instant::now())),
            ..GapWait::new(wait)
        }
    }

    /// Whether `seq`, the next event read after `last` (the last one taken), may be taken
    /// now: it follows `last`, or the hole before it is old enough to be a rollback.
    pub fn admits(&mut self, last: i64, seq: i64) -> bool {
        let expected = last + 1;
        if seq == expected {
            return true;
        }
        if let Some((end, since)) = self.started {
            if expected <= end {
                return since.elapsed() >= self.wait;
            }
            self.started = None;
        }
        match self.gap {
            Some((at, since)) if at == expected && since.elapsed() >= self.wait => {
                self.gap = None;
                true
            }
            Some((at, _)) if at == expected => false,
            _ => {
                self.gap = Some((expected, Instant::now()));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_hole_stops_the_reader_and_an_old_one_is_passed() {
        let mut gaps = GapWait::new(Duration::from_millis(30));
        assert!(gaps.admits(4, 5));
        assert!(!gaps.admits(5, 7));
        assert!(!gaps.admits(5, 7));
        std::thread::sleep(Duration::from_millis(40));
        assert!(gaps.admits(5, 7));
        // The next hole is waited for afresh.
        assert!(!gaps.admits(7, 9));
    }

    #[test]
    fn holes_older_than_the_start_are_waited_for_together() {
        let mut gaps = GapWait::starting_below(Duration::from_millis(30), 100);
        assert!(!gaps.admits(10, 12));
        std::thread::sleep(Duration::from_millis(40));
        assert!(gaps.admits(10, 12));
        assert!(gaps.admits(12, 50));
        // Past the start's end, holes are fresh again.
        assert!(!gaps.admits(100, 102));
    }
}
