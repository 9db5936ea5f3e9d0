//! When a schedule may run. Two clocks, each where it fits:
//! - the period by the wall clock: `next_run_at` is stored, so it survives a restart of the
//!   worker and shows in the view. A `next_run_at` further ahead than one gap means the clock
//!   was set back, and the schedule runs rather than wait for the time it went back by;
//! - the quiet of local changes by the worker's monotonic clock: change records carry no time,
//!   so the worker watches what is pending at each poll and times how long it stays the same,
//!   which no clock change can shorten or stretch.

use std::time::{Duration, Instant};

use super::pending::Pending;

/// The least time between two runs of a schedule (or a run and a skip), whatever its period:
/// a schedule that is refused or skipped at every poll writes its row at most this often.
const MIN_GAP: Duration = Duration::from_secs(1);

/// The time from a run (or a skip) of a schedule with period `every_s` to its next run.
pub fn gap(every_s: Option<i64>) -> Duration {
    let period = Duration::from_secs(every_s.map_or(0, |s| s.max(0) as u64));
    period.max(MIN_GAP)
}

/// Whether a schedule whose next run is at `next_run_at` may run `now`; `latest` is `now`
/// plus one gap. All three are ISO-8601 UTC timestamps, which compare as text.
pub fn period_elapsed(next_run_at: &str, now: &str, latest: &str) -> bool {
    next_run_at <= now || next_run_at > latest
}

/// What a worker has seen of an on_change schedule's pending changes.
#[derive(Debug, Default)]
pub struct Observation {
    /// The pending changes last seen, and when the worker first saw them so.
    seen: Option<(Pending, Instant)>,
    /// When the worker first saw changes pending since the last run.
    pending_since: Option<Instant>,
}

impl Observation {
    /// Records `pending` as seen `at`, and says whether an on_change run may start: changes
    /// are pending and none came for `debounce`, or (with a `period`) they have been pending
    /// for a whole period, so that tables that never go quiet are still exported once a
    /// period.
    pub fn ready(
        &mut self,
        pending: Pending,
        at: Instant,
        debounce: Duration,
        period: Option<Duration>,
    ) -> bool {
        if pending.records() == 0 {
            *self = Observation::default();
            return false;
        }
        let pending_since = *self.pending_since.get_or_insert(at);
        let quiet_since = match &self.seen {
            Some((seen, since)) if *seen == pending => *since,
            _ => {
                self.seen = Some((pending, at));
                at
            }
        };
        at.duration_since(quiet_since) >= debounce
            || period.is_some_and(|p| at.duration_since(pending_since) >= p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::pending::TablePending;
    use super::*;

    fn pending(after: i64, records: u64) -> Pending {
        Pending(vec![TablePending {
            tracking_id: 1,
            after,
            records,
        }])
    }

    #[test]
    fn the_gap_is_the_period_and_at_least_a_second() {
        assert_eq!(gap(None), Duration::from_secs(1));
        assert_eq!(gap(Some(1)), Duration::from_secs(1));
        assert_eq!(gap(Some(90)), Duration::from_secs(90));
    }

    #[test]
    fn the_period_elapses_and_a_clock_set_back_does_not_hold_it_up() {
        let now = "2026-12-02T10:00:00.000Z";
        let latest = "2026-12-02T10:01:00.000Z";
        assert!(period_elapsed("2026-12-02T09:59:59.999Z", now, latest));
        assert!(period_elapsed(now, now, latest));
        assert!(!period_elapsed("2026-12-02T10:00:30.000Z", now, latest));
        assert!(!period_elapsed(latest, now, latest));
        // Further ahead than one gap: the clock went back.
        assert!(period_elapsed("2026-12-02T11:00:00.000Z", now, latest));
    }

    #[test]
    fn a_run_waits_until_the_changes_are_quiet() {
        let debounce = Duration::from_millis(500);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut seen = Observation::default();
        assert!(
            !seen.ready(pending(5, 0), at(0), debounce, None),
            "nothing pending"
        );
        assert!(!seen.ready(pending(5, 1), at(100), debounce, None));
        assert!(
            !seen.ready(pending(5, 2), at(400), debounce, None),
            "a new change"
        );
        assert!(!seen.ready(pending(5, 2), at(800), debounce, None));
        assert!(
            seen.ready(pending(5, 2), at(900), debounce, None),
            "quiet 500 ms"
        );
        // A watermark that moved is a change too, even with as many records after it.
        assert!(!seen.ready(pending(9, 2), at(1000), debounce, None));
        // Nothing pending any more: the watching starts over.
        assert!(!seen.ready(pending(9, 0), at(1100), debounce, None));
        assert!(
            seen.ready(pending(9, 1), at(1200), Duration::ZERO, None),
            "no debounce: at once"
        );
    }

    #[test]
    fn changes_that_never_go_quiet_still_run_once_a_period() {
        let debounce = Duration::from_millis(500);
        let period = Some(Duration::from_secs(2));
        let t0 = Instant::now();
        let mut seen = Observation::default();
        for (i, ms) in (0..2000).step_by(200).enumerate() {
            let ready = seen.ready(
                pending(0, i as u64 + 1),
                t0 + Duration::from_millis(ms),
                debounce,
                period,
            );
            assert!(!ready, "at {ms} ms");
        }
        assert!(seen.ready(
            pending(0, 11),
            t0 + Duration::from_secs(2),
            debounce,
            period
        ));
    }
}
