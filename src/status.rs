//! What `jobtrail status` shows (the last sync runs, the scopes whose latest
//! run failed and since when, per-source watermarks, job counts by source and
//! status, jobs still running, where the database is and how big), assembled
//! from the store's rows and rendered as tables or JSON.
//! The SQL lives in `store::status`; printing is the command's.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Source, Status};
use crate::normalize::{format_utc, parse_api_time};
use crate::output::{Cell, Format, ResultSet, render_table};
use crate::store::{
    FailingScopeRow, JobCount, OldestUnfinished, RunRow, StateRow, Store, StoreError,
};
use crate::text::for_terminal;

/// How many sync runs the status shows.
pub const RECENT_RUNS: u32 = 5;

/// Everything `jobtrail status` shows; its JSON form is this struct.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// When the status was taken (UTC).
    pub generated_at: String,
    pub database: DatabaseInfo,
    /// All sync runs ever recorded.
    pub total_runs: i64,
    /// The last [`RECENT_RUNS`] runs, newest first.
    pub recent_runs: Vec<RunSummary>,
    /// Every (project, source) scope whose latest run did not succeed,
    /// longest failing first (empty when all is well).
    pub failing_scopes: Vec<FailingScope>,
    /// Every `sync_state` entry (watermarks and bookkeeping), by project, source, key.
    pub watermarks: Vec<Watermark>,
    /// Jobs per source and normalized status (all three sources, even when empty).
    pub jobs_by_source: Vec<SourceCounts>,
    pub total_jobs: i64,
    /// Jobs not final yet (running or unknown).
    pub still_running: StillRunning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseInfo {
    /// The SQLite file, or the PostgreSQL URL without its password.
    pub path: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Size of the database (file) in bytes.
    pub file_bytes: u64,
    /// Size of the write-ahead log beside a SQLite file (0 when there is none).
    pub wal_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `succeeded`, `partial` or `failed`.
    pub outcome: String,
    pub sources: String,
    pub requests: i64,
    pub jobs_seen: i64,
    pub jobs_new: i64,
    pub jobs_changed: i64,
    pub error: Option<String>,
}

/// A scope whose latest run did not succeed, and since when it has not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingScope {
    pub project_id: String,
    pub region: String,
    pub source: String,
    /// `partial` (some of it failed) or `failed`.
    pub status: String,
    /// Start of the first run of its current failing streak (UTC).
    pub failing_since: String,
    /// Runs in that streak, the latest included.
    pub failed_runs: i64,
    /// Its latest run.
    pub last_run_id: i64,
    pub last_run_at: String,
    /// What failed in the latest run.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watermark {
    pub project_id: String,
    pub source: String,
    pub key: String,
    pub value: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceCounts {
    pub source: String,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub unknown: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StillRunning {
    /// Jobs running or in an unknown state.
    pub count: i64,
    /// The one that started longest ago (by start time, else first seen).
    pub oldest: Option<OldestJob>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OldestJob {
    pub source: String,
    pub project_id: String,
    pub job_id: String,
    pub job_type: Option<String>,
    pub status: String,
    /// Start time, else when jobtrail first saw it (UTC).
    pub since: String,
    /// Seconds from `since` to `generated_at`.
    pub age_seconds: i64,
}

/// Gathers the status now.
pub async fn gather(store: &Store) -> Result<StatusReport, StoreError> {
    gather_at(store, Utc::now()).await
}

/// Gathers the status as of `now` (ages are measured to it).
pub async fn gather_at(store: &Store, now: DateTime<Utc>) -> Result<StatusReport, StoreError> {
    let total_runs = store.count_runs().await?;
    let recent_runs = store
        .recent_runs(RECENT_RUNS)
        .await?
        .into_iter()
        .map(RunSummary::from)
        .collect();
    let failing_scopes = store
        .failing_scopes()
        .await?
        .into_iter()
        .map(FailingScope::from)
        .collect();
    let watermarks = store
        .sync_state_entries()
        .await?
        .into_iter()
        .map(Watermark::from)
        .collect();
    let jobs_by_source = count_by_source(store.job_counts().await?);
    let total_jobs = jobs_by_source.iter().map(|c| c.total).sum();
    let count = store.count_unfinished().await?;
    let oldest = store
        .oldest_unfinished()
        .await?
        .map(|row| OldestJob::aged(row, now));
    Ok(StatusReport {
        generated_at: format_utc(now),
        database: database_info(store).await?,
        total_runs,
        recent_runs,
        failing_scopes,
        watermarks,
        jobs_by_source,
        total_jobs,
        still_running: StillRunning { count, oldest },
    })
}

/// One line per source, every known source listed even when empty; a source
/// or status this build does not know still counts (the status as unknown).
fn count_by_source(counts: Vec<JobCount>) -> Vec<SourceCounts> {
    let mut by_source: Vec<SourceCounts> = Source::ALL
        .iter()
        .map(|s| SourceCounts {
            source: s.as_str().to_owned(),
            ..SourceCounts::default()
        })
        .collect();
    for JobCount {
        source,
        status,
        jobs,
    } in counts
    {
        let entry = match by_source.iter().position(|c| c.source == source) {
            Some(index) => &mut by_source[index],
            None => {
                by_source.push(SourceCounts {
                    source,
                    ..SourceCounts::default()
                });
                let last = by_source.len() - 1;
                &mut by_source[last]
            }
        };
        match status.parse::<Status>() {
            Ok(Status::Running) => entry.running += jobs,
            Ok(Status::Succeeded) => entry.succeeded += jobs,
            Ok(Status::Failed) => entry.failed += jobs,
            Ok(Status::Unknown) | Err(_) => entry.unknown += jobs,
        }
        entry.total += jobs;
    }
    by_source
}

impl From<RunRow> for RunSummary {
    fn from(row: RunRow) -> RunSummary {
        RunSummary {
            id: row.id,
            started_at: row.started_at,
            finished_at: row.finished_at,
            outcome: row.outcome,
            sources: row.sources,
            requests: row.requests,
            jobs_seen: row.jobs_seen,
            jobs_new: row.jobs_new,
            jobs_changed: row.jobs_changed,
            error: row.error,
        }
    }
}

impl From<FailingScopeRow> for FailingScope {
    fn from(row: FailingScopeRow) -> FailingScope {
        FailingScope {
            project_id: row.project_id,
            region: row.region,
            source: row.source,
            status: row.status,
            failing_since: row.failing_since,
            failed_runs: row.failed_runs,
            last_run_id: row.last_sync_id,
            last_run_at: row.last_run_at,
            error: row.error,
        }
    }
}

impl From<StateRow> for Watermark {
    fn from(row: StateRow) -> Watermark {
        Watermark {
            project_id: row.project_id,
            source: row.source,
            key: row.key,
            value: row.value,
            updated_at: row.updated_at,
        }
    }
}

impl OldestJob {
    /// The stored row, with its age measured to `now` (0 when its time does not parse).
    fn aged(row: OldestUnfinished, now: DateTime<Utc>) -> OldestJob {
        OldestJob {
            age_seconds: parse_api_time(&row.since)
                .map(|t| (now - t).num_seconds())
                .unwrap_or(0),
            source: row.source,
            project_id: row.project_id,
            job_id: row.job_id,
            job_type: row.job_type,
            status: row.status,
            since: row.since,
        }
    }
}

async fn database_info(store: &Store) -> Result<DatabaseInfo, StoreError> {
    let (file_bytes, wal_bytes) = store.size_in_bytes().await?;
    let location = store.location();
    Ok(DatabaseInfo {
        path: location.to_string(),
        backend: location.backend().as_str(),
        file_bytes,
        wal_bytes,
    })
}

/// Prints the status as titled tables (`Table`) or one JSON object (any other format).
pub fn write_status(out: &mut dyn Write, report: &StatusReport, format: Format) -> io::Result<()> {
    match format {
        Format::Table => write_status_tables(out, report),
        Format::Json | Format::Ndjson | Format::Csv => {
            crate::output::write_json_value(out, report, true)?;
            writeln!(out)
        }
    }
}

fn write_status_tables(out: &mut dyn Write, r: &StatusReport) -> io::Result<()> {
    if r.database.backend == "sqlite" {
        writeln!(
            out,
            "Database: {} ({}, write-ahead log {})",
            for_terminal(&r.database.path),
            human_bytes(r.database.file_bytes),
            human_bytes(r.database.wal_bytes)
        )?;
    } else {
        writeln!(
            out,
            "Database: {} (PostgreSQL, {})",
            for_terminal(&r.database.path),
            human_bytes(r.database.file_bytes)
        )?;
    }
    writeln!(out, "Status taken at {} (UTC)", r.generated_at)?;
    writeln!(out)?;
    write_runs(out, r)?;
    writeln!(out)?;
    write_failing_scopes(out, &r.failing_scopes, r.recent_runs.first())?;
    writeln!(out)?;
    write_job_counts(out, r)?;
    writeln!(out)?;
    write_still_running(out, &r.still_running)?;
    writeln!(out)?;
    write_watermarks(out, &r.watermarks)
}

fn columns<const N: usize>(names: [&str; N]) -> Vec<String> {
    names.map(String::from).to_vec()
}

fn write_runs(out: &mut dyn Write, r: &StatusReport) -> io::Result<()> {
    if r.recent_runs.is_empty() {
        return writeln!(out, "Sync runs: none yet (run `jobtrail sync`)");
    }
    writeln!(
        out,
        "Sync runs: last {} of {}, newest first (times UTC)",
        r.recent_runs.len(),
        r.total_runs
    )?;
    let rs = ResultSet {
        columns: columns([
            "id", "started", "finished", "outcome", "sources", "requests", "seen", "new",
            "changed", "error",
        ]),
        rows: r
            .recent_runs
            .iter()
            .map(|run| {
                vec![
                    Cell::Integer(run.id),
                    Cell::Text(run.started_at.clone()),
                    Cell::from(run.finished_at.clone()),
                    Cell::Text(run.outcome.clone()),
                    Cell::Text(run.sources.clone()),
                    Cell::Integer(run.requests),
                    Cell::Integer(run.jobs_seen),
                    Cell::Integer(run.jobs_new),
                    Cell::Integer(run.jobs_changed),
                    Cell::from(run.error.clone()),
                ]
            })
            .collect(),
    };
    writeln!(out, "{}", render_table(&rs, None))
}

/// The scopes whose latest run failed. None failing is not all well when
/// the newest run failed anyway (before it reached any project, say IAM
/// refused): that is said, not hidden behind "none".
fn write_failing_scopes(
    out: &mut dyn Write,
    scopes: &[FailingScope],
    newest_run: Option<&RunSummary>,
) -> io::Result<()> {
    if scopes.is_empty() {
        return match newest_run {
            Some(run) if run.outcome == "failed" || run.outcome == "partial" => writeln!(
                out,
                "Failing scopes: none, but the newest run (#{}) {}: its error is above",
                run.id, run.outcome
            ),
            _ => writeln!(
                out,
                "Failing scopes: none (every project and source succeeded in its latest run)"
            ),
        };
    }
    writeln!(
        out,
        "Failing scopes: {} (project and source whose latest run failed; times UTC)",
        scopes.len()
    )?;
    let rs = ResultSet {
        columns: columns([
            "project",
            "region",
            "source",
            "status",
            "failing since",
            "runs",
            "last run",
            "error",
        ]),
        rows: scopes
            .iter()
            .map(|f| {
                vec![
                    Cell::Text(f.project_id.clone()),
                    Cell::Text(f.region.clone()),
                    Cell::Text(f.source.clone()),
                    Cell::Text(f.status.clone()),
                    Cell::Text(f.failing_since.clone()),
                    Cell::Integer(f.failed_runs),
                    Cell::Text(format!("#{} {}", f.last_run_id, f.last_run_at)),
                    Cell::from(f.error.as_deref().map(first_line)),
                ]
            })
            .collect(),
    };
    writeln!(out, "{}", render_table(&rs, None))
}

/// The first line of a text, with how many more there are: a scope's first
/// failure, so the table keeps one line per scope (JSON and
/// `sync_scopes.error` hold them all).
fn first_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    match lines.count() {
        0 => first.to_owned(),
        more => format!("{first} (+{more} more)"),
    }
}

fn write_job_counts(out: &mut dyn Write, r: &StatusReport) -> io::Result<()> {
    writeln!(out, "Jobs by source and status ({} in all)", r.total_jobs)?;
    let rs = ResultSet {
        columns: columns([
            "source",
            "running",
            "succeeded",
            "failed",
            "unknown",
            "total",
        ]),
        rows: r
            .jobs_by_source
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.source.clone()),
                    Cell::Integer(c.running),
                    Cell::Integer(c.succeeded),
                    Cell::Integer(c.failed),
                    Cell::Integer(c.unknown),
                    Cell::Integer(c.total),
                ]
            })
            .collect(),
    };
    writeln!(out, "{}", render_table(&rs, None))
}

fn write_still_running(out: &mut dyn Write, still: &StillRunning) -> io::Result<()> {
    let Some(o) = &still.oldest else {
        return writeln!(out, "Still running: none");
    };
    // Every part but the count comes from the cloud: one line, controls escaped.
    let line = format!(
        "Still running: {} (oldest: {} job {} {}{}, {} since {} UTC, {})",
        still.count,
        o.source,
        o.job_id,
        o.job_type.as_deref().unwrap_or("(no type)"),
        if o.project_id.is_empty() {
            String::new()
        } else {
            format!(" in project {}", o.project_id)
        },
        o.status,
        o.since,
        human_age(o.age_seconds)
    );
    writeln!(out, "{}", for_terminal(&line))
}

fn write_watermarks(out: &mut dyn Write, watermarks: &[Watermark]) -> io::Result<()> {
    if watermarks.is_empty() {
        return writeln!(out, "Watermarks: none yet");
    }
    writeln!(out, "Watermarks and sync state (times UTC)")?;
    let rs = ResultSet {
        columns: columns(["project", "source", "key", "value", "updated"]),
        rows: watermarks
            .iter()
            .map(|w| {
                vec![
                    Cell::Text(w.project_id.clone()),
                    Cell::Text(w.source.clone()),
                    Cell::Text(w.key.clone()),
                    Cell::Text(w.value.clone()),
                    Cell::Text(w.updated_at.clone()),
                ]
            })
            .collect(),
    };
    // Bookkeeping values can be long lists: keep the table readable.
    writeln!(out, "{}", render_table(&rs, Some(160)))
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3d 4h`, `2h 5m`, `40s`-style ages.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::model::JobRow;
    use crate::store::StateUpdate;
    use crate::test_support::{db_with, job, sample_jobs, seen_at};

    #[tokio::test]
    async fn status_counts_a_known_database() {
        let rows = sample_jobs();
        let now = parse_api_time("2024-04-01T00:00:00Z").expect("time");
        let t = parse_api_time("2023-12-25T06:00:00Z").expect("time");
        let mut extra = job(
            Source::Nosql,
            "oldest",
            Some("Backup"),
            Status::Running,
            Some(t),
            None,
        );
        extra.project_id = "p9".into();
        let db = db_with(&[rows.clone(), vec![extra.clone()], vec![]]).await;
        db.store
            .set_state(
                &StateUpdate::Watermark {
                    project_id: "p1".into(),
                    source: Source::Nosql,
                    at: parse_api_time("2024-03-01T00:00:00.000Z").expect("time"),
                },
                parse_api_time(&seen_at(5)).expect("time"),
            )
            .await
            .expect("state");
        let store = Store::open_read_only(&db.path).await.expect("read-only");
        let report = gather_at(&store, now).await.expect("gather");

        let all: Vec<&JobRow> = rows.iter().chain(std::iter::once(&extra)).collect();
        for source in Source::ALL {
            let of = |st: Status| {
                all.iter()
                    .filter(|r| r.source == source && r.status == st)
                    .count() as i64
            };
            let c = report
                .jobs_by_source
                .iter()
                .find(|c| c.source == source.as_str())
                .expect("every source listed");
            assert_eq!(
                (c.running, c.succeeded, c.failed, c.unknown),
                (
                    of(Status::Running),
                    of(Status::Succeeded),
                    of(Status::Failed),
                    of(Status::Unknown)
                ),
                "{source}"
            );
            assert_eq!(
                c.total,
                all.iter().filter(|r| r.source == source).count() as i64
            );
        }
        assert_eq!(report.total_jobs, all.len() as i64);

        let unfinished = all.iter().filter(|r| !r.status.is_terminal()).count() as i64;
        assert_eq!(report.still_running.count, unfinished);
        let oldest = report.still_running.oldest.as_ref().expect("oldest");
        assert_eq!(oldest.job_id, "oldest");
        assert_eq!(oldest.since, "2023-12-25T06:00:00.000Z");
        assert_eq!(oldest.age_seconds, (now - t).num_seconds());

        assert_eq!(report.total_runs, 3);
        let ids: Vec<i64> = report.recent_runs.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
        let first = report.recent_runs.last().expect("first run");
        assert_eq!(first.outcome, "succeeded");
        assert_eq!(first.requests, 10);
        assert_eq!(first.jobs_seen, rows.len() as i64);
        assert_eq!(first.jobs_new, rows.len() as i64);
        assert_eq!(report.recent_runs[1].jobs_new, 1);

        assert_eq!(report.watermarks.len(), 1);
        assert_eq!(report.watermarks[0].value, "2024-03-01T00:00:00.000Z");
        assert!(report.database.file_bytes > 0);
        assert!(report.database.path.ends_with("jobtrail.db"));

        // The JSON form parses and carries the same numbers.
        let mut buf = Vec::new();
        write_status(&mut buf, &report, Format::Json).expect("json");
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(v["total_jobs"], serde_json::json!(all.len()));
        assert_eq!(v["still_running"]["count"], serde_json::json!(unfinished));
        assert_eq!(v["recent_runs"][0]["error"], serde_json::Value::Null);
        assert_eq!(v["jobs_by_source"].as_array().map(Vec::len), Some(3));

        // The table form names every section.
        let mut buf = Vec::new();
        write_status(&mut buf, &report, Format::Table).expect("table");
        let text = String::from_utf8(buf).expect("utf-8");
        for needle in [
            "Sync runs: last 3 of 3",
            "Jobs by source and status",
            "Still running:",
            "oldest",
            "Watermarks",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        assert!(text.contains(&format!("{} in all", all.len())), "{text}");
    }

    #[tokio::test]
    async fn status_of_an_empty_database_is_friendly() {
        let db = db_with(&[]).await;
        let report = gather_at(&db.store, Utc::now()).await.expect("gather");
        assert_eq!(report.total_jobs, 0);
        assert!(report.recent_runs.is_empty());
        assert!(report.still_running.oldest.is_none());
        let mut buf = Vec::new();
        write_status(&mut buf, &report, Format::Table).expect("table");
        let text = String::from_utf8(buf).expect("utf-8");
        assert!(text.contains("none yet"), "{text}");
    }

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_age(40), "40s");
        assert_eq!(human_age(125), "2m 5s");
        assert_eq!(human_age(Duration::hours(27).num_seconds()), "1d 3h");
    }
}
