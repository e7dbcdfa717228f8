//! Adapts the request rate to throttling. Nothing is paced until the cloud
//! answers 429; then every request waits for `Retry-After`, and the rate is set
//! below what the cloud was answering (multiplicative decrease from its own
//! measured limit, not from what we tried to send). While no 429 comes back the
//! rate is raised step by step (probing upward), and pacing switches off again
//! once it is well above what is being used.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fraction of the answered rate kept after a 429 (0.85 and 0.9 both kept 429s
/// under 3 % of requests in the rate-limit benchmark; 0.9 loses less time).
const DECREASE: f64 = 0.9;
/// Growth per quiet interval while probing upward.
const INCREASE: f64 = 1.05;
/// How long without a 429 before the rate may grow.
const QUIET: Duration = Duration::from_secs(1);
/// 429s within this long of the last cut belong to the same burst: cut once.
const SAME_BURST: Duration = Duration::from_millis(750);
/// Lowest rate ever set (requests per second).
const MIN_RATE: f64 = 0.5;
/// The span over which sent and answered requests are counted.
const WINDOW: Duration = Duration::from_secs(1);

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
    sent: RateCounter,
    /// Requests the cloud answered without throttling: at a 429 they tell the
    /// rate it lets through, the best estimate of its limit.
    answered: RateCounter,
}

/// Events per second over the last [`WINDOW`], as a sliding-window counter:
/// the current bucket plus the part of the previous one still inside the window.
#[derive(Debug)]
struct RateCounter {
    bucket_start: Instant,
    current: u32,
    previous: u32,
}

impl RateCounter {
    fn new(now: Instant) -> RateCounter {
        RateCounter {
            bucket_start: now,
            current: 0,
            previous: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.bucket_start);
        if elapsed >= 2 * WINDOW {
            // A quiet spell: nothing counted is left in the window.
            self.previous = 0;
            self.bucket_start = now;
        } else if elapsed >= WINDOW {
            self.previous = self.current;
            self.bucket_start += WINDOW;
        } else {
            return;
        }
        self.current = 0;
    }

    fn add(&mut self, now: Instant) {
        self.roll(now);
        self.current += 1;
    }

    fn per_second(&mut self, now: Instant) -> f64 {
        self.roll(now);
        let into = now.duration_since(self.bucket_start).as_secs_f64() / WINDOW.as_secs_f64();
        f64::from(self.current) + f64::from(self.previous) * (1.0 - into.min(1.0))
    }
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
                sent: RateCounter::new(now),
                answered: RateCounter::new(now),
            }),
        }
    }

    /// Reserves a send slot and says how long to wait for it.
    pub(super) fn wait_for_slot(&self) -> Duration {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        s.sent.add(now);
        let mut at = now.max(s.pause_until);
        if let Some(rate) = s.rate {
            at = at.max(s.next_slot);
            s.next_slot = at + Duration::from_secs_f64(1.0 / rate);
        }
        at.duration_since(now)
    }

    /// Whether a `Retry-After` pause is still on: a request that slept until its
    /// slot while a 429 came in queues again behind that pause.
    pub(super) fn paused(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| Instant::now() < s.pause_until)
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
        // What the cloud let through; if it let nothing through yet, all we
        // know is that what was sent is too much.
        let answered = s.answered.per_second(now);
        let limit = if answered >= 1.0 {
            answered
        } else {
            s.sent.per_second(now) * DECREASE
        };
        // A window that was partly idle (a pause just ended) undercounts: one
        // 429 never cuts below DECREASE of the current rate before the cut.
        let base = s.rate.map_or(limit, |r| r.min(limit.max(r * DECREASE)));
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
        s.answered.add(now);
        let Some(rate) = s.rate else {
            return;
        };
        let quiet = s.last_cut.is_none_or(|t| now.duration_since(t) >= QUIET);
        if quiet && now.duration_since(s.last_raise) >= QUIET {
            let used = s.sent.per_second(now);
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

    fn rate(p: &Pacer) -> Option<f64> {
        p.state.lock().map(|s| s.rate).ok().flatten()
    }

    /// Asserts the pacer paces at `want` requests per second.
    fn assert_rate(p: &Pacer, want: f64) {
        let got = rate(p);
        assert!(
            got.is_some_and(|r| (r - want).abs() < 1e-9),
            "{got:?}, not {want}"
        );
    }

    /// A pacer already pacing at `rate`, with `answered` answers in this second.
    fn pacing_at(rate: f64, answered: usize) -> Pacer {
        let p = Pacer::new();
        for _ in 0..answered {
            p.wait_for_slot();
            p.succeeded();
        }
        if let Ok(mut s) = p.state.lock() {
            s.rate = Some(rate);
        }
        p
    }

    #[test]
    fn unthrottled_requests_never_wait() {
        let p = Pacer::new();
        for _ in 0..1000 {
            assert_eq!(p.wait_for_slot(), Duration::ZERO);
        }
    }

    #[test]
    fn a_429_pauses_and_then_paces_below_the_answered_rate() {
        let p = Pacer::new();
        for n in 0..100 {
            p.wait_for_slot();
            if n < 80 {
                p.succeeded();
            }
        }
        p.throttled(Some(Duration::from_millis(300)));
        let first = p.wait_for_slot();
        assert!(
            first > Duration::ZERO && first <= Duration::from_millis(300),
            "{first:?}"
        );
        // 80 answered in this second → paced at 80 × DECREASE per second.
        let second = p.wait_for_slot();
        let gap = (second - first).as_secs_f64();
        let expected = 1.0 / (80.0 * DECREASE);
        assert!((gap - expected).abs() < 0.0005, "{gap} s, not {expected} s");
    }

    #[test]
    fn a_burst_of_429s_cuts_the_rate_once() {
        let p = Pacer::new();
        for _ in 0..100 {
            p.wait_for_slot();
            p.succeeded();
        }
        for _ in 0..10 {
            p.throttled(None);
        }
        assert_rate(&p, 100.0 * DECREASE);
    }

    #[test]
    fn a_429_before_any_answer_paces_below_what_was_sent() {
        let p = Pacer::new();
        for _ in 0..20 {
            p.wait_for_slot();
        }
        p.throttled(None);
        assert_rate(&p, 20.0 * DECREASE * DECREASE);
    }

    #[test]
    fn a_429_never_raises_the_rate_it_paces_at() {
        let p = pacing_at(40.0, 100);
        p.throttled(None);
        assert_rate(&p, 40.0 * DECREASE);
    }

    #[test]
    fn a_429_after_an_idle_second_cuts_no_deeper_than_one_step() {
        // Only 2 answers in the last second (it was mostly a pause).
        let p = pacing_at(40.0, 2);
        p.throttled(None);
        assert_rate(&p, 40.0 * DECREASE * DECREASE);
    }

    #[test]
    fn a_pause_is_on_until_retry_after_has_passed() {
        let p = Pacer::new();
        assert!(!p.paused());
        p.throttled(Some(Duration::from_secs(60)));
        assert!(p.paused());
    }

    #[test]
    fn the_counter_slides_over_the_last_second() {
        let t0 = Instant::now();
        let mut c = RateCounter::new(t0);
        for _ in 0..50 {
            c.add(t0);
        }
        assert!((c.per_second(t0) - 50.0).abs() < 1e-9);
        // Half a second into the next bucket: half of the previous one counts.
        let half = c.per_second(t0 + Duration::from_millis(1500));
        assert!((half - 25.0).abs() < 1e-6, "{half}");
        // Two windows later nothing is left.
        assert_eq!(c.per_second(t0 + Duration::from_secs(4)), 0.0);
    }
}
