//! NoSQL: this sync's range split into windows fetched a few at a time, the
//! watermark moved over the windows stored whole, then the jobs stored
//! unfinished before the range re-checked as `recheck` plans.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::misses::{GONE_AFTER_MISSES, Misses};
use super::outcome::{Scope, SyncWarning, Unit, UnitResult};
use super::recheck::{Recheck, group_stale};
use super::sink::Sink;
use super::{IDS_IN_FLIGHT, SyncContext, SyncOptions};
use crate::config::ProjectSettings;
use crate::model::Source;
use crate::progress::Work;
use crate::sources::nosql;
use crate::sources::{FetchError, RowSink};
use crate::store::{StateUpdate, StoreError};

/// Incremental NoSQL syncs start this long before the watermark, so a job whose
/// start time the API reports a little late is still caught. The watermark is
/// this machine's clock, which the gateway accepts up to 15 minutes off; the
/// overlap covers that.
pub const WATERMARK_OVERLAP: chrono::Duration = chrono::Duration::minutes(20);

/// Default first-sync backfill when the config gives no `since`.
pub const DEFAULT_BACKFILL: chrono::Duration = chrono::Duration::days(30);

/// NoSQL windows fetched at once per project (each also pages concurrently).
/// A window's first page must answer before its others are asked for, so with
/// latency it takes this many windows to keep the client's 16 requests in
/// flight (50 ms latency benchmark: 12x -> 14x faster than one at a time).
const WINDOWS_IN_FLIGHT: usize = 8;

/// Syncs one project's NoSQL jobs: its windows, then its re-checks.
pub(super) async fn sync_nosql(
    ctx: &SyncContext<'_>,
    project: &ProjectSettings,
) -> Result<UnitResult, StoreError> {
    let unit = NosqlUnit {
        ctx,
        project_id: &project.id,
        target: nosql::Target {
            client: ctx.client,
            project_id: &project.id,
            base: &project.endpoints.nosql,
        },
        scope: Scope {
            source: Source::Nosql,
            project_id: project.id.clone(),
        },
    };
    let mut result = UnitResult::default();
    let watermark = ctx.store.watermark(&project.id, Source::Nosql).await?;
    let configured_since = project.nosql.as_ref().and_then(|n| n.since);
    let (since, until) = nosql_range(ctx.options, configured_since, watermark, ctx.now);
    unit.fetch_windows(since, until, watermark, &mut result)
        .await;
    unit.recheck(since, &mut result).await?;
    Ok(result)
}

/// The NoSQL time range of this sync: explicit flags, else the watermark minus
/// an overlap, else the configured backfill start (default 30 days).
fn nosql_range(
    options: &SyncOptions,
    configured_since: Option<DateTime<Utc>>,
    watermark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let first_start = configured_since.unwrap_or(now - DEFAULT_BACKFILL);
    let since = match (options.since, watermark, options.full) {
        (Some(since), _, _) => since,
        (None, Some(wm), false) => (wm - WATERMARK_OVERLAP).max(first_start.min(wm)),
        _ => first_start,
    };
    // Windows end no later than the sync's start, so jobs created while paging
    // cannot shift pages.
    let until = options.until.map_or(now, |u| u.min(now));
    (since, until)
}

/// Which windows are stored, oldest first: the watermark may pass every
/// window from the first up to the first one not stored yet.
struct DonePrefix {
    done: Vec<bool>,
    len: usize,
}

impl DonePrefix {
    fn new(windows: usize) -> DonePrefix {
        DonePrefix {
            done: vec![false; windows],
            len: 0,
        }
    }

    /// Marks window `index` stored; returns how many windows from the first are.
    fn mark(&mut self, index: usize) -> usize {
        self.done[index] = true;
        while self.len < self.done.len() && self.done[self.len] {
            self.len += 1;
        }
        self.len
    }
}

/// One project's NoSQL sync.
struct NosqlUnit<'a> {
    ctx: &'a SyncContext<'a>,
    project_id: &'a str,
    target: nosql::Target<'a>,
    scope: Scope,
}

impl NosqlUnit<'_> {
    /// Fetches the windows of `[since, until]`, moving the watermark after
    /// the rows of every window up to it.
    async fn fetch_windows(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        watermark: Option<DateTime<Utc>>,
        result: &mut UnitResult,
    ) {
        let windows = nosql::plan_windows(since, until);
        let progress = self.ctx.progress;
        progress.planned(self.project_id, Work::Windows, windows.len() as u64);
        // The watermark only moves forward, and only over a range that joins it.
        let may_advance = watermark.is_none_or(|wm| since <= wm);
        let mut done = DonePrefix::new(windows.len());
        let (target, sink) = (self.target, &self.ctx.sink);
        let mut fetches = futures::stream::iter(windows.iter().copied().enumerate())
            .take_while(|_| std::future::ready(!sink.writer_gone()))
            .map(|(index, window)| async move {
                (
                    index,
                    window,
                    nosql::fetch_window(target, window, None, sink).await,
                )
            })
            .buffer_unordered(WINDOWS_IN_FLIGHT);
        while let Some((index, window, outcome)) = fetches.next().await {
            progress.done(self.project_id, Work::Windows, 1);
            let stats = match outcome {
                Ok(stats) => stats,
                Err(e) => {
                    result.fail(&self.scope, Unit::Window(window), e);
                    continue;
                }
            };
            result.succeeded += 1;
            tracing::debug!(project = %self.project_id, pages = stats.pages, jobs = stats.jobs, "window stored");
            let prefix = done.mark(index);
            let reached = windows[prefix.saturating_sub(1)].end;
            if prefix > 0 && may_advance && watermark.is_none_or(|wm| reached > wm) {
                // Sent after the window's rows on the same channel: it can never land before them.
                let update = StateUpdate::Watermark {
                    project_id: self.project_id.to_owned(),
                    source: Source::Nosql,
                    at: reached,
                };
                if sink.state(update).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Brings NoSQL jobs last stored unfinished, and older than this sync's
    /// range (from `since`), to their current status with few requests. Jobs
    /// are grouped by the raw status they were stored with; a span of them is
    /// re-read with the API's `status` filter, which lists only the jobs still
    /// in that status (usually one page), and any job of the span missing from
    /// that answer has changed and is looked up by ID. Where that would cost
    /// more, each job is looked up by ID. A job no lookup has found
    /// [`GONE_AFTER_MISSES`] syncs in a row was deleted in the cloud: it is no
    /// longer re-checked (unless `--full`).
    async fn recheck(
        &self,
        since: DateTime<Utc>,
        result: &mut UnitResult,
    ) -> Result<(), StoreError> {
        if result.auth_refused {
            return Ok(());
        }
        let (store, now, full) = (self.ctx.store, self.ctx.now, self.ctx.options.full);
        let misses = Misses::load(store, self.project_id, Source::Nosql).await?;
        // Jobs that started within this sync's range were listed again just now.
        let stale = store
            .unfinished_jobs(Source::Nosql, self.project_id, Some(since))
            .await?;
        let mut plans = Vec::new();
        for group in group_stale(stale, |id| !full && misses.given_up(id)) {
            let stored = match group.priced_span() {
                Some((status, from, to)) => {
                    store
                        .start_times_between(Source::Nosql, self.project_id, status, from, to)
                        .await?
                }
                None => Vec::new(),
            };
            plans.extend(group.plan(&stored, now));
        }
        let planned = plans.len() as u64;
        self.ctx
            .progress
            .planned(self.project_id, Work::Rechecks, planned);
        self.run_rechecks(plans, &misses, result).await;
        Ok(())
    }

    /// Carries out the re-check plans a few at a time, counting the misses of
    /// the jobs looked up by ID.
    async fn run_rechecks(&self, plans: Vec<Recheck>, misses: &Misses, result: &mut UnitResult) {
        let (target, now, sink) = (self.target, self.ctx.now, &self.ctx.sink);
        let mut checks = futures::stream::iter(plans)
            .take_while(|_| std::future::ready(!sink.writer_gone()))
            .map(|plan| async move {
                run_recheck(target, &plan, now, sink)
                    .await
                    .map_err(|e| (plan, e))
            })
            .buffer_unordered(IDS_IN_FLIGHT);
        while let Some(outcome) = checks.next().await {
            self.ctx.progress.done(self.project_id, Work::Rechecks, 1);
            match outcome {
                Ok(lookups) => {
                    result.succeeded += 1;
                    for (id, found) in lookups {
                        let (update, count) = misses.record(&id, !found);
                        if let Some(update) = update {
                            // Bookkeeping only; if the writer is gone the run fails anyway.
                            let _ = sink.state(update).await;
                        }
                        if count >= GONE_AFTER_MISSES {
                            result.warnings.push(SyncWarning::JobGone {
                                scope: self.scope.clone(),
                                id,
                            });
                        }
                    }
                }
                Err((Recheck::Id(id, _), e)) => {
                    result.fail(&self.scope, Unit::Item { kind: "job", id }, e)
                }
                Err((Recheck::Span { window, .. }, e)) => {
                    result.fail(&self.scope, Unit::Recheck(window), e)
                }
            }
        }
    }
}

/// Carries out one re-check plan, handing what it finds to the writer, and
/// tells for each job looked up by ID whether the lookup found it.
async fn run_recheck(
    target: nosql::Target<'_>,
    plan: &Recheck,
    now: DateTime<Utc>,
    sink: &Sink,
) -> Result<Vec<(String, bool)>, FetchError> {
    match plan {
        Recheck::Id(id, at) => Ok(vec![look_up(target, id, *at, now, sink).await?]),
        Recheck::Span {
            window,
            status,
            members,
        } => {
            let still = nosql::fetch_window(target, *window, Some(status), sink)
                .await?
                .seen;
            let still: HashSet<&str> = still.iter().map(String::as_str).collect();
            let mut lookups = Vec::new();
            for (id, at) in members {
                if still.contains(id.as_str()) {
                    lookups.push((id.clone(), true));
                } else {
                    lookups.push(look_up(target, id, *at, now, sink).await?);
                }
            }
            Ok(lookups)
        }
    }
}

/// Looks one job up by ID, handing its rows on; tells whether it was found.
async fn look_up(
    target: nosql::Target<'_>,
    id: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    sink: &Sink,
) -> Result<(String, bool), FetchError> {
    let parsed = nosql::fetch_by_id(target, id, at, now).await?;
    let found = parsed.rows.iter().any(|row| row.job_id == id);
    sink.rows(parsed).await?;
    Ok((id.to_owned(), found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::parse_api_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    #[test]
    fn the_watermark_passes_only_windows_stored_from_the_first_on() {
        let mut done = DonePrefix::new(4);
        assert_eq!(done.mark(1), 0, "the first is not stored yet");
        assert_eq!(done.mark(0), 2);
        assert_eq!(done.mark(3), 2);
        assert_eq!(done.mark(2), 4);
    }

    #[test]
    fn first_sync_uses_configured_since_or_thirty_days() {
        let now = t("2024-06-01T00:00:00Z");
        let opts = SyncOptions::default();
        assert_eq!(
            nosql_range(&opts, None, None, now),
            (now - DEFAULT_BACKFILL, now)
        );
        let since = t("2024-01-01T00:00:00Z");
        assert_eq!(nosql_range(&opts, Some(since), None, now).0, since);
    }

    #[test]
    fn incremental_sync_starts_at_watermark_minus_overlap() {
        let now = t("2024-06-01T00:00:00Z");
        let wm = t("2024-05-31T23:45:00Z");
        let (since, until) = nosql_range(&SyncOptions::default(), None, Some(wm), now);
        assert_eq!(since, wm - WATERMARK_OVERLAP);
        assert_eq!(until, now);
    }

    #[test]
    fn full_and_explicit_ranges_override_the_watermark() {
        let now = t("2024-06-01T00:00:00Z");
        let wm = t("2024-05-31T23:45:00Z");
        let cfg = t("2024-01-01T00:00:00Z");
        let full = SyncOptions {
            full: true,
            ..SyncOptions::default()
        };
        assert_eq!(nosql_range(&full, Some(cfg), Some(wm), now).0, cfg);
        let explicit = SyncOptions {
            since: Some(t("2023-01-01T00:00:00Z")),
            until: Some(t("2030-01-01T00:00:00Z")),
            ..SyncOptions::default()
        };
        assert_eq!(
            nosql_range(&explicit, Some(cfg), Some(wm), now),
            (t("2023-01-01T00:00:00Z"), now),
            "until is clamped to now"
        );
    }
}
