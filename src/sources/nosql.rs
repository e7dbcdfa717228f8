//! GaussDB(for NoSQL) task list, `GET /v3/{project_id}/jobs`: paged with
//! `offset`/`limit` inside windows a minute shorter than 30 days.

use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::{StreamExt, TryStreamExt};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{FetchError, Parsed, RowSink, Sightings, parse_item, parse_json};
use crate::http::{ApiClient, Call};
use crate::model::{JobRow, Source};
use crate::normalize::{
    JobKind, duration_ms, format_utc, map_status, non_empty, parse_api_time, parse_progress,
};

/// The longest `start_time`–`end_time` span asked for. The API says the span
/// "cannot exceed" 30 days; whether exactly 30 days passes is not documented,
/// so every window stays a minute short of it.
pub const MAX_WINDOW: Duration = Duration::minutes(30 * 24 * 60 - 1);

/// Page size: the largest the API allows (10, 20 or 50).
pub const PAGE_LIMIT: u64 = 50;

/// Pages of one window requested at once, after the first page told the total.
const PAGES_IN_FLIGHT: usize = 4;

/// A closed time range `[start, end]`, whole seconds, at most [`MAX_WINDOW`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Splits `[since, until]` into consecutive windows of at most [`MAX_WINDOW`],
/// oldest first. Both ends are truncated to whole seconds (the API's resolution), so
/// the last window never ends after `until`. Empty when `since >= until`.
pub fn plan_windows(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Window> {
    let second = Duration::seconds(1);
    let (Ok(start), Ok(end)) = (since.duration_trunc(second), until.duration_trunc(second)) else {
        return Vec::new();
    };
    let mut windows = Vec::new();
    let mut cursor = start;
    while cursor < end {
        let window_end = (cursor + MAX_WINDOW).min(end);
        windows.push(Window {
            start: cursor,
            end: window_end,
        });
        cursor = window_end;
    }
    windows
}

/// The query-string form of a time: `2024-05-20T10:39:49+0000`, the documented
/// `yyyy-mm-ddThh:mm:ssZ` with `Z` as a numeric offset. Its `:` and `+` are
/// percent-encoded on the wire.
pub fn time_param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// The task list's path for a project (project IDs are letters, digits, `-`
/// and `_`, checked by the configuration, so always one safe path segment).
pub fn jobs_path(project_id: &str) -> String {
    format!("/v3/{}/jobs", crate::auth::signer::encode(project_id))
}

#[derive(Deserialize)]
struct ListJobsPage<'a> {
    #[serde(borrow)]
    jobs: Vec<&'a RawValue>,
    total_count: u64,
}

/// `JobDetail`. Only `id` and `status` are required: the SDK marks nothing
/// required, and a job without them cannot be stored or judged.
#[derive(Deserialize)]
struct JobDetail {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    id: Option<String>,
    name: Option<String>,
    status: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    progress: Option<String>,
    instance: Option<JobInstance>,
    fail_reason: Option<String>,
}

#[derive(Deserialize)]
struct JobInstance {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    id: Option<String>,
    name: Option<String>,
}

/// One parsed page.
#[derive(Debug)]
pub struct Page {
    /// Rows cut to the caps, and the jobs cut or left out.
    pub parsed: Parsed,
    /// Jobs the page listed, those left out included.
    pub listed: usize,
    pub total_count: u64,
}

/// Parses a list page into rows, each cut to what one job may store. A page
/// that is not the list fails, naming the field at fault; a job in it that
/// lacks its ID or status, or has a field of the wrong type, is left out
/// (noted, naming the field) and the rest of the page is kept.
pub fn parse_page(body: &[u8], project_id: &str) -> Result<Page, String> {
    let page: ListJobsPage = parse_json(body)?;
    let mut parsed = Parsed::default();
    for (index, raw) in page.jobs.iter().enumerate() {
        let row = parse_item::<JobDetail>(raw, "jobs", index).and_then(|job| {
            to_row(job, raw, project_id)
                .map_err(|field| format!("field `jobs[{index}].{field}` is missing or null"))
        });
        match row {
            Ok(row) => parsed.push(row),
            Err(why) => parsed.refuse(Source::Nosql, project_id, why),
        }
    }
    Ok(Page {
        parsed,
        listed: page.jobs.len(),
        total_count: page.total_count,
    })
}

fn to_row(job: JobDetail, raw: &RawValue, project_id: &str) -> Result<JobRow, &'static str> {
    let id = job.id.filter(|s| !s.is_empty()).ok_or("id")?;
    let raw_status = job.status.ok_or("status")?;
    let started = job.start_time.as_deref().and_then(parse_api_time);
    let ended = job.end_time.as_deref().and_then(parse_api_time);
    let (resource_id, resource_name) = job
        .instance
        .map(|i| (non_empty(i.id), non_empty(i.name)))
        .unwrap_or_default();
    Ok(JobRow {
        source: Source::Nosql,
        project_id: project_id.to_owned(),
        job_id: id,
        parent_job_id: None,
        job_type: non_empty(job.name),
        status: map_status(JobKind::Nosql, Some(&raw_status)),
        raw_status: Some(raw_status),
        progress: job.progress.as_deref().and_then(parse_progress),
        started_at: started.map(format_utc),
        ended_at: ended.map(format_utc),
        duration_ms: duration_ms(started, ended),
        resource_id,
        resource_name,
        error_code: None,
        fail_reason: non_empty(job.fail_reason),
        raw_json: raw.get().to_owned(),
    })
}

/// What fetching a window did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WindowStats {
    pub pages: u64,
    pub jobs: u64,
    /// IDs of the jobs received, kept only for status-filtered reads (re-checks).
    pub seen: Vec<String>,
    /// Sightings not stored because an earlier page showed the job newer.
    pub stale: u64,
}

/// Where to ask: the project and its NoSQL endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub client: &'a ApiClient,
    pub project_id: &'a str,
    pub base: &'a Url,
}

impl Target<'_> {
    async fn page(&self, query: Vec<(String, String)>) -> Result<Page, FetchError> {
        let call = Call {
            source: Source::Nosql,
            project_id: self.project_id,
            base: self.base,
            path: jobs_path(self.project_id),
            query,
        };
        let project_id = self.project_id;
        Ok(self
            .client
            .get(&call, |body| parse_page(body, project_id))
            .await?)
    }
}

fn window_query(window: Window, status: Option<&str>, offset: u64) -> Vec<(String, String)> {
    let mut query = vec![
        ("start_time".into(), time_param(window.start)),
        ("end_time".into(), time_param(window.end)),
        ("offset".into(), offset.to_string()),
        ("limit".into(), PAGE_LIMIT.to_string()),
    ];
    if let Some(status) = status {
        query.push(("status".into(), status.to_owned()));
    }
    query
}

/// A larger `total_count` for one window is not believed: paging it
/// would take tens of thousands of requests.
pub const MAX_WINDOW_TOTAL: u64 = 1_000_000;

/// Pages one window until `offset >= total_count`, handing each page's rows to
/// `sink` as it arrives. After the first page, the rest are fetched a few at
/// a time. A list that changes while it is paged (a job deleted, totals that
/// disagree between pages, an empty page before the end) can shift a job past a
/// page boundary unseen: such a window is read once more, and if it is still
/// inconsistent it fails, so the watermark stays before it.
///
/// With `status`, only jobs in that raw status are listed (the API's `status`
/// filter), and their IDs are returned in [`WindowStats::seen`].
pub async fn fetch_window(
    target: Target<'_>,
    window: Window,
    status: Option<&str>,
    sink: &impl RowSink,
) -> Result<WindowStats, FetchError> {
    let mut sightings = Sightings::default();
    let first = read_window(target, window, status, sink, &mut sightings).await?;
    if first.is_whole() {
        return Ok(first.stats);
    }
    tracing::info!(project = target.project_id, problem = %first.describe(), "window changed while paging; reading it again");
    let second = read_window(target, window, status, sink, &mut sightings).await?;
    if second.is_whole() {
        Ok(WindowStats {
            pages: first.stats.pages + second.stats.pages,
            stale: first.stats.stale + second.stats.stale,
            ..second.stats
        })
    } else {
        Err(FetchError::Inconsistent(format!(
            "the list changed while it was paged, twice ({}); the next sync reads this window again",
            second.describe()
        )))
    }
}

/// What one pass over a window saw.
struct WindowRead {
    stats: WindowStats,
    first_total: u64,
    /// Another page reported a different total.
    other_total: Option<u64>,
    /// A page came back empty before `offset >= total_count`.
    ended_early: bool,
}

impl WindowRead {
    fn is_whole(&self) -> bool {
        self.other_total.is_none() && !self.ended_early && self.stats.jobs == self.first_total
    }

    fn describe(&self) -> String {
        match self.other_total {
            Some(other) => format!(
                "total_count {} on the first page, {other} on a later one; {} jobs received",
                self.first_total, self.stats.jobs
            ),
            None => format!(
                "total_count {}, {} jobs received",
                self.first_total, self.stats.jobs
            ),
        }
    }
}

async fn read_window(
    target: Target<'_>,
    window: Window,
    status: Option<&str>,
    sink: &impl RowSink,
    sightings: &mut Sightings,
) -> Result<WindowRead, FetchError> {
    let first = target.page(window_query(window, status, 0)).await?;
    let total = first.total_count;
    if total > MAX_WINDOW_TOTAL {
        return Err(FetchError::Inconsistent(format!(
            "total_count {total} is not plausible for one window of under 30 days (more than {MAX_WINDOW_TOTAL})"
        )));
    }
    let mut read = WindowRead {
        stats: WindowStats::default(),
        first_total: total,
        other_total: None,
        ended_early: first.listed == 0 && total > 0,
    };
    sightings.expect(total);
    read.take(first, status.is_some(), sink, sightings).await?;
    if read.ended_early {
        return Ok(read);
    }
    // Offsets are produced lazily, never collected: the total bounds them.
    // Pages are handed on in page order (fetched a few at a time), so a job the
    // list shows on two pages is judged the same way whichever answers first.
    let mut pages = futures::stream::iter((PAGE_LIMIT..total).step_by(PAGE_LIMIT as usize))
        .map(|offset| target.page(window_query(window, status, offset)))
        .buffered(PAGES_IN_FLIGHT);
    while let Some(page) = pages.try_next().await? {
        if page.total_count != total {
            read.other_total = Some(page.total_count);
        }
        if page.listed == 0 {
            read.stats.pages += 1;
            read.ended_early = true;
            break;
        }
        read.take(page, status.is_some(), sink, sightings).await?;
    }
    Ok(read)
}

impl WindowRead {
    /// Counts a page and hands its rows on, less the sightings older than one
    /// an earlier page gave (see [`Sightings`]).
    async fn take(
        &mut self,
        page: Page,
        keep_ids: bool,
        sink: &impl RowSink,
        sightings: &mut Sightings,
    ) -> Result<(), FetchError> {
        self.stats.pages += 1;
        self.stats.jobs += page.listed as u64;
        let mut parsed = page.parsed;
        self.stats.stale += sightings.keep_newest(&mut parsed.rows) as u64;
        if keep_ids {
            self.stats
                .seen
                .extend(parsed.rows.iter().map(|r| r.job_id.clone()));
        }
        sink.rows(parsed).await?;
        Ok(())
    }
}

/// Looks up jobs by ID. The list's default window (the last 30 days) applies
/// even with `id`, so each lookup sends a small window around the job's known
/// start time (clamped to `now`).
pub async fn fetch_by_id(
    target: Target<'_>,
    job_id: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Parsed, FetchError> {
    let margin = Duration::hours(1);
    let window = Window {
        start: started_at - margin,
        end: (started_at + margin).min(now),
    };
    let mut query = window_query(window, None, 0);
    query.push(("id".into(), job_id.to_owned()));
    Ok(target.page(query).await?.parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::sources::Note;

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    #[test]
    fn a_window_is_a_minute_shorter_than_thirty_days() {
        assert_eq!(MAX_WINDOW, Duration::days(30) - Duration::minutes(1));
        let w = plan_windows(t("2024-01-01T00:00:00Z"), t("2024-01-30T23:59:00Z"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].end - w[0].start, MAX_WINDOW);
    }

    #[test]
    fn exactly_thirty_days_makes_a_second_window_of_a_minute() {
        let w = plan_windows(t("2024-01-01T00:00:00Z"), t("2024-01-31T00:00:00Z"));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].end, t("2024-01-30T23:59:00Z"));
        assert_eq!(
            w[1],
            Window {
                start: t("2024-01-30T23:59:00Z"),
                end: t("2024-01-31T00:00:00Z")
            }
        );
    }

    #[test]
    fn windows_cover_the_range_contiguously_and_never_pass_until() {
        let since = t("2023-01-01T10:00:00.700Z");
        let until = t("2024-02-15T08:30:59.999Z");
        let w = plan_windows(since, until);
        assert_eq!(w.first().map(|w| w.start), Some(t("2023-01-01T10:00:00Z")));
        assert_eq!(w.last().map(|w| w.end), Some(t("2024-02-15T08:30:59Z")));
        for pair in w.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!(
            w.iter()
                .all(|w| w.end - w.start <= MAX_WINDOW && w.start < w.end)
        );
    }

    #[test]
    fn since_after_or_at_until_plans_nothing() {
        assert!(plan_windows(t("2024-02-01T00:00:00Z"), t("2024-01-01T00:00:00Z")).is_empty());
        assert!(plan_windows(t("2024-02-01T00:00:00Z"), t("2024-02-01T00:00:00.5Z")).is_empty());
    }

    #[test]
    fn time_params_use_a_numeric_offset() {
        assert_eq!(
            time_param(t("2024-05-20T10:39:49.9Z")),
            "2024-05-20T10:39:49+0000"
        );
    }

    #[test]
    fn parses_a_real_shaped_page() {
        let body = br#"{"jobs":[
            {"id":"a1","name":"CreateInstance","status":"Running","start_time":"2023-09-12T06:44:01+0800",
             "end_time":"","progress":"60%","instance":{"id":"i1","name":"db-1"},"fail_reason":""},
            {"id":"a2","name":"RestartInstance","status":"Failed","start_time":"2023-09-12T06:44:01+0000",
             "end_time":"2023-09-12T06:45:31+0000","progress":"","instance":{"id":"i2","name":"db-2"},
             "fail_reason":"Insufficient resources"}],"total_count":2}"#;
        let page = parse_page(body, "p").expect("parses");
        assert_eq!(page.total_count, 2);
        let a = &page.parsed.rows[0];
        assert_eq!(
            (a.status, a.progress, a.fail_reason.as_deref()),
            (Status::Running, Some(60), None)
        );
        assert_eq!(a.started_at.as_deref(), Some("2023-09-11T22:44:01.000Z"));
        assert_eq!((a.ended_at.as_deref(), a.duration_ms), (None, None));
        assert_eq!(a.resource_name.as_deref(), Some("db-1"));
        assert!(a.raw_json.starts_with("{\"id\":\"a1\""));
        let b = &page.parsed.rows[1];
        assert_eq!((b.status, b.duration_ms), (Status::Failed, Some(90_000)));
        assert_eq!(b.fail_reason.as_deref(), Some("Insufficient resources"));
        assert_eq!(b.job_type.as_deref(), Some("RestartInstance"));
    }

    #[test]
    fn a_job_that_cannot_be_read_is_left_out_by_name_and_the_page_kept() {
        let page = parse_page(
            br#"{"jobs":[{"id":"a","status":"Running"},{"status":"Running"},{"id":"c","status":7}],"total_count":3}"#,
            "p",
        )
        .expect("the page is kept");
        assert_eq!((page.listed, page.parsed.rows.len()), (3, 1));
        let why: Vec<String> = page
            .parsed
            .notes
            .iter()
            .map(|n| match n {
                Note::Refused { why, .. } => why.clone(),
                Note::Cut(c) => format!("{c:?}"),
            })
            .collect();
        assert!(why[0].contains("jobs[1].id"), "{why:?}");
        assert!(why[1].contains("jobs[2].status"), "{why:?}");
        let err = parse_page(br#"{"jobs":[]}"#, "p").expect_err("no total");
        assert!(err.contains("total_count"), "{err}");
        let err = parse_page(br#"{"jobs":"oops","total_count":1}"#, "p").expect_err("shape");
        assert!(err.contains("jobs"), "{err}");
    }
}
