//! The Prometheus text file `sync --metrics-file` writes for node_exporter's
//! textfile collector: how the last run went, and what the history holds
//! (last complete sync per project and source, jobs by status, new failures,
//! the oldest unfinished job). Gathered from the store, rendered by a pure
//! function, and written atomically so the collector never reads half a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Source, Status};
use crate::store::{JobCount, LastSuccess, Store, StoreError, SyncRun};

/// How the run that writes the file went.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The process's exit status (0 ok, 1 error, 2 usage, 3 partial).
    pub exit_code: u8,
    pub duration: Duration,
    /// HTTP requests made (0 when the run stopped before any).
    pub requests: u64,
}

/// What the database holds, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub last_successes: Vec<LastSuccess>,
    pub jobs: Vec<JobCount>,
    /// Jobs that became failed in the last run, per source (missing: none).
    pub new_failures: Vec<(Source, i64)>,
    /// Per source, when its oldest unfinished job started (missing: none).
    pub oldest_unfinished: Vec<(Source, DateTime<Utc>)>,
}

impl History {
    /// Reads the history's metrics; `run` is the run just made, if it got
    /// as far as opening one (its new failures are counted).
    pub async fn gather(store: &Store, run: Option<&SyncRun>) -> Result<History, StoreError> {
        Ok(History {
            last_successes: store.last_successes().await?,
            jobs: store.job_counts().await?,
            new_failures: match run {
                Some(run) => store.new_failure_counts(run).await?,
                None => Vec::new(),
            },
            oldest_unfinished: store.oldest_unfinished_by_source().await?,
        })
    }
}

/// The file's text. `history` is `None` when the database could not be read:
/// the run's own metrics are written all the same.
pub fn render(run: &LastRun, history: Option<&History>) -> String {
    let mut out = String::new();
    if let Some(history) = history {
        render_last_successes(&mut out, &history.last_successes);
    }
    family(
        &mut out,
        "jobtrail_last_run_timestamp_seconds",
        "When the last jobtrail sync ended (Unix time), whatever its outcome.",
    );
    sample(
        &mut out,
        "jobtrail_last_run_timestamp_seconds",
        &[],
        &seconds(run.finished_at),
    );
    family(
        &mut out,
        "jobtrail_last_run_exit_code",
        "Exit status of the last sync: 0 ok, 1 error, 2 usage error, 3 partial.",
    );
    sample(
        &mut out,
        "jobtrail_last_run_exit_code",
        &[],
        &run.exit_code.to_string(),
    );
    family(
        &mut out,
        "jobtrail_last_run_duration_seconds",
        "How long the last sync took.",
    );
    sample(
        &mut out,
        "jobtrail_last_run_duration_seconds",
        &[],
        &format!("{:.3}", run.duration.as_secs_f64()),
    );
    family(
        &mut out,
        "jobtrail_last_run_requests",
        "HTTP requests the last sync made, retries included.",
    );
    sample(
        &mut out,
        "jobtrail_last_run_requests",
        &[],
        &run.requests.to_string(),
    );
    if let Some(history) = history {
        render_jobs(&mut out, &history.jobs);
        render_new_failures(&mut out, &history.new_failures);
        render_oldest(&mut out, &history.oldest_unfinished, run.finished_at);
    }
    out
}

fn render_last_successes(out: &mut String, successes: &[LastSuccess]) {
    let name = "jobtrail_last_success_timestamp_seconds";
    family(
        out,
        name,
        "When each project and source last synced completely (Unix time); kept across failed runs.",
    );
    for s in successes {
        let labels = [
            ("project", s.project_id.as_str()),
            ("source", s.source.as_str()),
        ];
        sample(out, name, &labels, &seconds(s.at));
    }
}

fn render_jobs(out: &mut String, jobs: &[JobCount]) {
    let name = "jobtrail_jobs";
    family(
        out,
        name,
        "Jobs in the database by source and normalized status.",
    );
    // Every known pair, zero when empty, so the series never vanish.
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for source in Source::ALL {
        for status in [
            Status::Running,
            Status::Succeeded,
            Status::Failed,
            Status::Unknown,
        ] {
            counts.insert((source.as_str().into(), status.as_str().into()), 0);
        }
    }
    for j in jobs {
        *counts
            .entry((j.source.clone(), j.status.clone()))
            .or_default() += j.jobs;
    }
    for ((source, status), n) in &counts {
        sample(
            out,
            name,
            &[("source", source), ("status", status)],
            &n.to_string(),
        );
    }
}

fn render_new_failures(out: &mut String, new_failures: &[(Source, i64)]) {
    let name = "jobtrail_new_failures";
    family(
        out,
        name,
        "Jobs that became failed in the last sync (first seen failed, or failed since the sync before).",
    );
    for source in Source::ALL {
        let n = new_failures
            .iter()
            .filter(|(s, _)| *s == source)
            .map(|(_, n)| n)
            .sum::<i64>();
        sample(out, name, &[("source", source.as_str())], &n.to_string());
    }
}

fn render_oldest(out: &mut String, oldest: &[(Source, DateTime<Utc>)], now: DateTime<Utc>) {
    let name = "jobtrail_oldest_running_job_age_seconds";
    family(
        out,
        name,
        "Age of the oldest job still running (or in an unknown state) per source, from its start; 0 when none.",
    );
    for source in Source::ALL {
        let age = oldest
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(0, |(_, since)| (now - *since).num_seconds().max(0));
        sample(out, name, &[("source", source.as_str())], &age.to_string());
    }
}

/// The HELP and TYPE lines of a gauge.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(text));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Unix time with milliseconds.
fn seconds(t: DateTime<Utc>) -> String {
    format!("{}.{:03}", t.timestamp(), t.timestamp_subsec_millis())
}

/// A label value as the exposition format wants it: backslash, double quote
/// and line feed escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Writes `text` to `path` atomically ([`crate::files`]: a new file beside
/// it, created exclusively, flushed, renamed over `path`), mode 0644 whatever
/// the umask, since node_exporter runs as another user. A reader sees the old
/// file or the new one, never a part; the temporary file's name ends in `.tmp`,
/// which the collector (it reads `*.prom`) skips.
pub fn write_file(path: &Path, text: &str) -> Result<(), crate::files::FileError> {
    crate::files::write_atomically_readable_by_all(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::parse_api_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    fn run() -> LastRun {
        LastRun {
            finished_at: t("2024-03-01T00:00:10.250Z"),
            exit_code: 3,
            duration: Duration::from_millis(1500),
            requests: 42,
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_values_are_as_given() {
        let history = History {
            last_successes: vec![LastSuccess {
                project_id: "p1".into(),
                source: Source::Dbss,
                at: t("2024-03-01T00:00:00Z"),
            }],
            jobs: vec![JobCount {
                source: "nosql".into(),
                status: "failed".into(),
                jobs: 7,
            }],
            new_failures: vec![(Source::Image, 2)],
            oldest_unfinished: vec![(Source::Nosql, t("2024-02-29T00:00:10.250Z"))],
        };
        let text = render(&run(), Some(&history));
        for line in [
            "jobtrail_last_success_timestamp_seconds{project=\"p1\",source=\"dbss\"} 1709251200.000",
            "jobtrail_last_run_timestamp_seconds 1709251210.250",
            "jobtrail_last_run_exit_code 3",
            "jobtrail_last_run_duration_seconds 1.500",
            "jobtrail_last_run_requests 42",
            "jobtrail_jobs{source=\"nosql\",status=\"failed\"} 7",
            "jobtrail_jobs{source=\"image\",status=\"unknown\"} 0",
            "jobtrail_new_failures{source=\"image\"} 2",
            "jobtrail_new_failures{source=\"nosql\"} 0",
            "jobtrail_oldest_running_job_age_seconds{source=\"nosql\"} 86400",
            "jobtrail_oldest_running_job_age_seconds{source=\"dbss\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(names.len(), 8, "{text}");
        for name in names {
            let name = name.trim_end_matches(" gauge");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn without_the_database_only_the_run_is_described() {
        let text = render(&run(), None);
        assert!(text.contains("jobtrail_last_run_exit_code 3"));
        assert!(!text.contains("jobtrail_jobs"));
        assert!(!text.contains("jobtrail_last_success"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let mut out = String::new();
        sample(&mut out, "m", &[("project", "x\"}\ny")], "1");
        assert_eq!(out, "m{project=\"x\\\"}\\ny\"} 1\n");
    }

    #[test]
    fn the_file_is_replaced_whole_and_readable_by_others() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("jobtrail.prom");
        write_file(&path, "a 1\n").expect("first");
        write_file(&path, "a 2\n").expect("second");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["jobtrail.prom"], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
