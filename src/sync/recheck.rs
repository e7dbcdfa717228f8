//! The NoSQL re-check planner (pure, no I/O): which stale jobs (stored
//! unfinished, older than this sync's range) to look up by ID and which spans
//! of them to re-read with the API's `status` filter, for the fewest requests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::sources::nosql::{self, Window};
use crate::store::UnfinishedJob;

/// One step of a re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Recheck {
    /// Look one job up by ID (with a window around its start time).
    Id(String, DateTime<Utc>),
    /// List the span's jobs still in `status`; look up the `members` missing from it.
    Span {
        window: Window,
        status: String,
        members: Vec<(String, DateTime<Utc>)>,
    },
}

/// Stale jobs stored with one raw status (or none): a span of them can be
/// re-read with the API's `status` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StaleGroup {
    raw_status: Option<String>,
    /// Jobs with a known start time, oldest first.
    known: Vec<(String, DateTime<Utc>)>,
    /// Jobs stored without a start time: only a lookup by ID finds them.
    undated: Vec<String>,
}

/// Groups stale jobs by the raw status they were stored with (in that order,
/// no status first), leaving out those `gone` says were given up on.
pub(super) fn group_stale(
    jobs: Vec<UnfinishedJob>,
    gone: impl Fn(&str) -> bool,
) -> Vec<StaleGroup> {
    let mut groups: BTreeMap<Option<String>, StaleGroup> = BTreeMap::new();
    for job in jobs {
        if gone(&job.job_id) {
            continue;
        }
        let group = groups
            .entry(job.raw_status.clone())
            .or_insert_with(|| StaleGroup {
                raw_status: job.raw_status,
                known: Vec::new(),
                undated: Vec::new(),
            });
        match job.started_at {
            Some(at) => group.known.push((job.job_id, at)),
            None => group.undated.push(job.job_id),
        }
    }
    let mut groups: Vec<StaleGroup> = groups.into_values().collect();
    for group in &mut groups {
        group.known.sort_by_key(|(_, at)| *at);
    }
    groups
}

impl StaleGroup {
    /// The raw status and the span, one second wider each side, whose stored
    /// start times [`StaleGroup::plan`] needs to price re-reading it; `None`
    /// when every job is looked up by ID anyway.
    pub fn priced_span(&self) -> Option<(&str, DateTime<Utc>, DateTime<Utc>)> {
        let one_second = chrono::Duration::seconds(1);
        let status = self.raw_status.as_deref()?;
        let first = self.known.first()?.1;
        let last = self.known.last()?.1;
        Some((status, first - one_second, last + one_second))
    }

    /// The group's re-checks: undated jobs by ID (around `now`), then the
    /// cheapest plan for the rest given the `stored` start times of
    /// [`StaleGroup::priced_span`] (empty when it is `None`).
    pub fn plan(self, stored: &[DateTime<Utc>], now: DateTime<Utc>) -> Vec<Recheck> {
        let mut plans: Vec<Recheck> = self
            .undated
            .into_iter()
            .map(|id| Recheck::Id(id, now))
            .collect();
        let Some(status) = self.raw_status.filter(|_| !self.known.is_empty()) else {
            plans.extend(self.known.into_iter().map(|(id, at)| Recheck::Id(id, at)));
            return plans;
        };
        plans.extend(
            plan_rechecks(&self.known, stored, now)
                .into_iter()
                .map(|plan| match plan {
                    Recheck::Span {
                        window, members, ..
                    } => Recheck::Span {
                        window,
                        status: status.clone(),
                        members,
                    },
                    id => id,
                }),
        );
        plans
    }
}

/// Above this many stale jobs the planner's search (quadratic in the jobs
/// within one window) gives way to a greedy plan: spans as long as the API
/// allows, from the oldest job on.
const MAX_PLANNED_RECHECKS: usize = 3_000;

/// What re-reading spans costs, from the sorted start times of the stored jobs
/// around the stale ones.
struct Pricing<'a> {
    stored: &'a [DateTime<Utc>],
    now: DateTime<Utc>,
}

impl Pricing<'_> {
    /// The window of a span from one job's start to another's.
    fn span_of(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        let one_second = chrono::Duration::seconds(1);
        Window {
            start: from - one_second,
            end: (to + one_second).min(self.now),
        }
    }

    /// Pages (requests) re-reading `w` costs: one per 50 stored jobs in it.
    fn pages(&self, w: Window) -> usize {
        let lo = self.stored.partition_point(|t| *t < w.start);
        let hi = self.stored.partition_point(|t| *t <= w.end);
        ((hi - lo).max(1) as u64).div_ceil(nosql::PAGE_LIMIT) as usize
    }
}

/// The longest span between two jobs' start times that fits one API window
/// with a second of margin each side.
fn longest_span() -> chrono::Duration {
    nosql::MAX_WINDOW - chrono::Duration::seconds(2)
}

fn by_id(range: &[(String, DateTime<Utc>)]) -> impl Iterator<Item = Recheck> + '_ {
    range.iter().map(|(id, at)| Recheck::Id(id.clone(), *at))
}

/// Chooses, for stale unfinished jobs sorted by start time, the cheapest mix of
/// ID lookups (one request each) and re-reads of a span of consecutive jobs
/// (at most one API window, costing one request per 50 stored jobs in it).
/// `stored` holds the sorted start times of the stored jobs around them.
/// Dynamic programming over prefixes: `best[i]` is the fewest requests that
/// cover the first `i` jobs. Past [`MAX_PLANNED_RECHECKS`] jobs, each longest
/// span is re-read where that is cheaper than looking its jobs up one by one
/// (within a few requests of the best in a busy history, and linear).
/// Spans come with an empty `status`, for the caller to fill in.
pub(super) fn plan_rechecks(
    jobs: &[(String, DateTime<Utc>)],
    stored: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<Recheck> {
    let pricing = Pricing { stored, now };
    if jobs.len() > MAX_PLANNED_RECHECKS {
        greedy_plan(jobs, &pricing)
    } else {
        best_plan(jobs, &pricing)
    }
}

/// Each longest span from the oldest job on, re-read where that is cheaper
/// than its lookups.
fn greedy_plan(jobs: &[(String, DateTime<Utc>)], pricing: &Pricing<'_>) -> Vec<Recheck> {
    let longest = longest_span();
    let mut plans = Vec::new();
    let mut first = 0;
    while first < jobs.len() {
        let start = jobs[first].1;
        let end = first + jobs[first..].partition_point(|(_, at)| *at - start <= longest);
        let members = &jobs[first..end];
        let window = pricing.span_of(start, members[members.len() - 1].1);
        if members.len() > 1 && pricing.pages(window) < members.len() {
            plans.push(Recheck::Span {
                window,
                status: String::new(),
                members: members.to_vec(),
            });
        } else {
            plans.extend(by_id(members));
        }
        first = end;
    }
    plans
}

/// The cheapest plan, by dynamic programming over prefixes.
fn best_plan(jobs: &[(String, DateTime<Utc>)], pricing: &Pricing<'_>) -> Vec<Recheck> {
    let longest = longest_span();
    let n = jobs.len();
    // best[i]: (cost, start index of the last step, whether that step is a span)
    let mut best: Vec<(usize, usize, bool)> = vec![(0, 0, false); n + 1];
    for i in 1..=n {
        best[i] = (best[i - 1].0 + 1, i - 1, false);
        for j in (0..i - 1).rev() {
            if jobs[i - 1].1 - jobs[j].1 > longest {
                break;
            }
            let cost = best[j].0 + pricing.pages(pricing.span_of(jobs[j].1, jobs[i - 1].1));
            if cost < best[i].0 {
                best[i] = (cost, j, true);
            }
        }
    }
    let mut plans = Vec::new();
    let mut i = n;
    while i > 0 {
        let (_, j, span) = best[i];
        if span {
            plans.push(Recheck::Span {
                window: pricing.span_of(jobs[j].1, jobs[i - 1].1),
                status: String::new(),
                members: jobs[j..i].to_vec(),
            });
        } else {
            plans.extend(by_id(&jobs[j..i]));
        }
        i = j;
    }
    plans.reverse();
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::parse_api_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    fn stale(id: &str, raw_status: Option<&str>, started: Option<&str>) -> UnfinishedJob {
        UnfinishedJob {
            job_id: id.into(),
            parent_job_id: None,
            started_at: started.map(t),
            resource_id: None,
            raw_status: raw_status.map(str::to_owned),
        }
    }

    #[test]
    fn stale_jobs_are_grouped_by_raw_status_and_those_without_a_status_or_time_looked_up() {
        let now = t("2024-06-01T00:00:00Z");
        let jobs = vec![
            stale("late", Some("Running"), Some("2024-01-02T00:00:00Z")),
            stale("no-status", None, Some("2024-01-01T00:00:00Z")),
            stale("undated", Some("Running"), None),
            stale("gone", Some("Running"), Some("2024-01-01T00:00:00Z")),
            stale("early", Some("Running"), Some("2024-01-01T00:00:00Z")),
        ];
        let groups = group_stale(jobs, |id| id == "gone");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].priced_span(), None, "no status to filter by");
        assert_eq!(
            groups[1].priced_span(),
            Some((
                "Running",
                t("2023-12-31T23:59:59Z"),
                t("2024-01-02T00:00:01Z")
            ))
        );
        let mut plans = Vec::new();
        for group in groups {
            plans.extend(group.plan(&[], now));
        }
        assert_eq!(
            plans[0],
            Recheck::Id("no-status".into(), t("2024-01-01T00:00:00Z"))
        );
        assert_eq!(plans[1], Recheck::Id("undated".into(), now));
        assert!(
            matches!(&plans[2], Recheck::Span { status, members, .. }
                if status == "Running" && members.iter().map(|(id, _)| id.as_str()).eq(["early", "late"])),
            "{plans:?}"
        );
        assert_eq!(plans.len(), 3);
    }

    fn plan(
        jobs: &[(&str, &str)],
        stored_every_minutes: i64,
        from: &str,
        to: &str,
    ) -> Vec<Recheck> {
        let jobs: Vec<(String, DateTime<Utc>)> = jobs
            .iter()
            .map(|(id, at)| ((*id).to_owned(), t(at)))
            .collect();
        let mut stored = Vec::new();
        let mut cursor = t(from);
        while cursor <= t(to) {
            stored.push(cursor);
            cursor += chrono::Duration::minutes(stored_every_minutes);
        }
        plan_rechecks(&jobs, &stored, t("2024-06-01T00:00:00Z"))
    }

    #[test]
    fn close_jobs_in_a_sparse_span_are_read_in_one_request() {
        // 3 jobs within a day, 24 stored jobs in that span: one page beats three lookups.
        let p = plan(
            &[
                ("a", "2024-01-01T01:00:00Z"),
                ("b", "2024-01-01T05:00:00Z"),
                ("c", "2024-01-01T20:00:00Z"),
            ],
            60,
            "2023-12-31T00:00:00Z",
            "2024-01-03T00:00:00Z",
        );
        assert_eq!(p.len(), 1);
        assert!(matches!(&p[0], Recheck::Span { window, members, .. }
                if window.start == t("2024-01-01T00:59:59Z") && window.end == t("2024-01-01T20:00:01Z") && members.len() == 3));
    }

    #[test]
    fn jobs_far_apart_in_a_busy_history_are_looked_up_by_id() {
        // A job every minute: re-reading 10 days would cost ~290 pages.
        let p = plan(
            &[("a", "2024-01-01T00:00:00Z"), ("b", "2024-01-11T00:00:00Z")],
            1,
            "2023-12-31T00:00:00Z",
            "2024-01-12T00:00:00Z",
        );
        assert_eq!(
            p,
            vec![
                Recheck::Id("a".into(), t("2024-01-01T00:00:00Z")),
                Recheck::Id("b".into(), t("2024-01-11T00:00:00Z"))
            ]
        );
    }

    #[test]
    fn spans_never_exceed_one_api_window() {
        let p = plan(
            &[
                ("a", "2024-01-01T00:00:00Z"),
                ("b", "2024-01-20T00:00:00Z"),
                ("c", "2024-02-25T00:00:00Z"),
                ("d", "2024-02-26T00:00:00Z"),
            ],
            24 * 60,
            "2023-12-01T00:00:00Z",
            "2024-03-01T00:00:00Z",
        );
        for plan in &p {
            if let Recheck::Span { window, .. } = plan {
                assert!(window.end - window.start <= nosql::MAX_WINDOW);
            }
        }
        let covered = |id: &str, at: &str| {
            p.iter().any(|plan| match plan {
                Recheck::Id(i, _) => i == id,
                Recheck::Span {
                    window, members, ..
                } => {
                    window.start <= t(at)
                        && t(at) <= window.end
                        && members.iter().any(|(m, _)| m == id)
                }
            })
        };
        assert!(covered("a", "2024-01-01T00:00:00Z") && covered("b", "2024-01-20T00:00:00Z"));
        assert!(covered("c", "2024-02-25T00:00:00Z") && covered("d", "2024-02-26T00:00:00Z"));
        assert_eq!(p.len(), 2, "two sparse spans: {p:?}");
    }

    /// `n` stale jobs, one every `every`, from 2020-06-01 on.
    fn stale_jobs(n: usize, every: chrono::Duration) -> Vec<(String, DateTime<Utc>)> {
        let first = t("2020-06-01T00:00:00Z");
        (0..n)
            .map(|i| (format!("job-{i}"), first + every * i as i32))
            .collect()
    }

    /// What a plan costs in requests: a page per 50 stored jobs in each
    /// span, one request per ID.
    fn cost(plans: &[Recheck], stored: &[DateTime<Utc>]) -> usize {
        plans
            .iter()
            .map(|plan| match plan {
                Recheck::Id(..) => 1,
                Recheck::Span { window, .. } => {
                    let n = stored
                        .iter()
                        .filter(|t| window.start <= **t && **t <= window.end)
                        .count();
                    n.max(1).div_ceil(50)
                }
            })
            .sum()
    }

    /// Every job is in exactly one plan, inside its span's window, and no
    /// span is longer than the API allows.
    fn assert_covers_each_once(plans: &[Recheck], jobs: &[(String, DateTime<Utc>)]) {
        let mut seen = std::collections::HashMap::new();
        for plan in plans {
            match plan {
                Recheck::Id(id, _) => *seen.entry(id.clone()).or_insert(0) += 1,
                Recheck::Span {
                    window, members, ..
                } => {
                    assert!(window.end - window.start <= nosql::MAX_WINDOW, "{window:?}");
                    for (id, at) in members {
                        assert!(window.start <= *at && *at <= window.end, "{id} outside");
                        *seen.entry(id.clone()).or_insert(0) += 1;
                    }
                }
            }
        }
        assert_eq!(seen.len(), jobs.len());
        assert!(seen.values().all(|n| *n == 1), "a job planned twice");
    }

    #[test]
    fn thousands_of_stale_jobs_are_re_read_by_span_not_one_by_one() {
        // Four years of jobs every 3.5 hours, all still "running" when stored.
        let jobs = stale_jobs(10_000, chrono::Duration::minutes(210));
        assert!(jobs.len() > MAX_PLANNED_RECHECKS);
        let stored: Vec<DateTime<Utc>> = jobs.iter().map(|(_, at)| *at).collect();
        let plans = plan_rechecks(&jobs, &stored, t("2025-01-01T00:00:00Z"));
        assert_covers_each_once(&plans, &jobs);
        let requests = cost(&plans, &stored);
        // 50 spans of ~205 jobs, 5 pages each: about 250 requests, not 10,000.
        assert!(requests <= 300, "{requests} requests");
    }

    #[test]
    fn thousands_of_stale_jobs_far_apart_in_a_busy_history_are_looked_up_by_id() {
        // A stale job every 12 hours among stored jobs every minute: a span
        // re-read would list ~860 pages to find 60 jobs.
        let jobs = stale_jobs(3_500, chrono::Duration::hours(12));
        let first = jobs[0].1;
        let stored: Vec<DateTime<Utc>> = (0..(3_500 * 12 * 60))
            .map(|m| first + chrono::Duration::minutes(m))
            .collect();
        let plans = plan_rechecks(&jobs, &stored, t("2026-01-01T00:00:00Z"));
        assert_covers_each_once(&plans, &jobs);
        assert!(plans.iter().all(|p| matches!(p, Recheck::Id(..))));
    }
}
