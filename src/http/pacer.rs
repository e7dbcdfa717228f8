//! Adapts the request rate to throttling. Nothing is paced until the cloud
//! answers 429; then every request waits for `Retry-After`, and the rate is cut
//! below what was being sent (multiplicative decrease). While no 429 comes back
//! the rate is raised step by step (probing upward), and pacing switches off
//! again once it is well above what is being used.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fraction of the observed rate kept after a 429.
const DECREASE: f64 = 0.6;
/// Growth per quiet interval while probing upward.
const INCREASE: f64 = 1.05;
/// How long without a 429 before the rate may grow.
const QUIET: Duration = Duration::from_secs(1);
/// 429s within this long of the last cut belong to the same burst: cut once.
const SAME_BURST: Duration = Duration::from_millis(750);
/// Lowest rate ever set (requests per second).
const MIN_RATE: f64 = 0.5;

#[derive(Debug)]
pub(super) struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests per second; `None` while unthrottled.
    rate: Option<f64>,
    /// When the next paced request may go.
    next_slot: Instant,
    /// No request before this (from `Retry-After`).
    pause_until: Instant,
    last_cut: Option<Instant>,
    last_raise: Instant,
    /// Requests sent in the current and previous one-second buckets, to know
    /// the rate that was being sent when the first 429 came.
    bucket_start: Instant,
    bucket: u32,
    previous_bucket: u32,
}

impl Pacer {
    pub(super) fn new() -> Pacer {
        let now = Instant::now();
        Pacer {
            state: Mutex::new(State {
                rate: None,
                next_slot: now,
                pause_until: now,
                last_cut: None,
                last_raise: now,
                bucket_start: now,
                bucket: 0,
                previous_bucket: 0,
            }),
        }
    }

    /// Reserves a send slot and says how long to wait for it.
    pub(super) fn wait_for_slot(&self) -> Duration {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        let elapsed = now.duration_since(s.bucket_start);
        if elapsed >= Duration::from_secs(1) {
            s.previous_bucket = if elapsed >= Duration::from_secs(2) {
                0
            } else {
                s.bucket
            };
            s.bucket = 0;
            s.bucket_start = now;
        }
        s.bucket += 1;
        let mut at = now.max(s.pause_until);
        if let Some(rate) = s.rate {
            at = at.max(s.next_slot);
            s.next_slot = at + Duration::from_secs_f64(1.0 / rate);
        }
        at.duration_since(now)
    }

    /// A 429: pause for `retry_after`, and cut the rate once per burst.
    pub(super) fn throttled(&self, retry_after: Option<Duration>) {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if let Some(wait) = retry_after {
            s.pause_until = s.pause_until.max(now + wait);
        }
        if s.last_cut
            .is_some_and(|t| now.duration_since(t) < SAME_BURST)
        {
            return;
        }
        let observed = f64::from(s.bucket.max(s.previous_bucket)).max(1.0);
        let base = s
            .rate
            .map_or(observed, |r| r.min(observed.max(r * DECREASE)));
        s.rate = Some((base * DECREASE).max(MIN_RATE));
        s.last_cut = Some(now);
        s.last_raise = now;
        tracing::debug!(rate = s.rate, "throttled: pacing requests");
    }

    /// A request that was not throttled: after a quiet interval, probe upward.
    pub(super) fn succeeded(&self) {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        let Some(rate) = s.rate else {
            return;
        };
        let quiet = s.last_cut.is_none_or(|t| now.duration_since(t) >= QUIET);
        if quiet && now.duration_since(s.last_raise) >= QUIET {
            let used = f64::from(s.bucket.max(s.previous_bucket));
            let raised = rate * INCREASE;
            // Far above what is used: the throttling is over.
            s.rate = if raised > 4.0 * used.max(1.0) && raised > 100.0 {
                None
            } else {
                Some(raised)
            };
            s.last_raise = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unthrottled_requests_never_wait() {
        let p = Pacer::new();
        for _ in 0..1000 {
            assert_eq!(p.wait_for_slot(), Duration::ZERO);
        }
    }

    #[test]
    fn a_429_pauses_and_then_paces_below_the_observed_rate() {
        let p = Pacer::new();
        for _ in 0..100 {
            p.wait_for_slot();
        }
        p.throttled(Some(Duration::from_millis(300)));
        let first = p.wait_for_slot();
        assert!(
            first > Duration::ZERO && first <= Duration::from_millis(300),
            "{first:?}"
        );
        // 100 sent in this second → 60/s → slots about 17 ms apart.
        let second = p.wait_for_slot();
        let gap = second - first;
        assert!(
            gap > Duration::from_millis(15) && gap < Duration::from_millis(18),
            "{gap:?}"
        );
    }

    #[test]
    fn a_burst_of_429s_cuts_the_rate_once() {
        let p = Pacer::new();
        for _ in 0..100 {
            p.wait_for_slot();
        }
        for _ in 0..10 {
            p.throttled(None);
        }
        let rate = p.state.lock().map(|s| s.rate).ok().flatten();
        assert_eq!(rate, Some(60.0));
    }
}
