//! Test fixtures shared by the tests of several modules: a temporary database
//! filled through the store, and a deterministic mix of jobs.

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{JobRow, Source, Status};
use crate::normalize::format_utc;
use crate::store::{JobBatch, RunEnd, RunOutcome, Store};

pub struct TestDb {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub store: Store,
}

/// When the n-th sync run (0-based) of a test database sees its jobs.
pub fn seen_at(n: usize) -> String {
    format!("2024-03-20T00:00:{:02}.000Z", n)
}

/// A database where each batch is stored by its own sync run.
pub async fn db_with(batches: &[Vec<JobRow>]) -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobtrail.db");
    let store = Store::open(&path).await.expect("open store");
    for (n, rows) in batches.iter().enumerate() {
        let at = crate::normalize::parse_api_time(&seen_at(n)).expect("a time");
        let run = store.begin_run(&Source::ALL, at).await.expect("begin run");
        let batch = JobBatch {
            rows: rows.clone(),
            state: Vec::new(),
        };
        store
            .write_batch(run.id, at, batch)
            .await
            .expect("write batch");
        store
            .finish_run(&run, RunEnd::bare(RunOutcome::Succeeded, 10 + n as u64, at))
            .await
            .expect("finish run");
    }
    TestDb {
        _dir: dir,
        path,
        store,
    }
}

pub fn job(
    source: Source,
    job_id: &str,
    job_type: Option<&str>,
    status: Status,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
) -> JobRow {
    JobRow {
        source,
        project_id: "p1".to_owned(),
        job_id: job_id.to_owned(),
        parent_job_id: None,
        job_type: job_type.map(str::to_owned),
        status,
        raw_status: Some(status.as_str().to_uppercase()),
        progress: None,
        started_at: started.map(format_utc),
        ended_at: ended.map(format_utc),
        duration_ms: match (started, ended) {
            (Some(s), Some(e)) => Some((e - s).num_milliseconds()),
            _ => None,
        },
        resource_id: Some(format!("res-{job_id}")),
        resource_name: Some(format!("instance {job_id}")),
        error_code: None,
        fail_reason: None,
        raw_json: format!("{{\"id\":\"{job_id}\"}}"),
    }
}

/// A small linear congruential generator: the same jobs every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// About 300 jobs over ten weeks from Monday 2024-01-01, every status,
/// reasons with and without error codes, missing types and start times.
pub fn sample_jobs() -> Vec<JobRow> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let types: [(Source, &[Option<&str>]); 3] = [
        (
            Source::Nosql,
            &[Some("CreateInstance"), Some("ResizeVolume"), Some("Backup")],
        ),
        (
            Source::Dbss,
            &[Some("START"), Some("STOP"), Some("ADD_RDS")],
        ),
        (Source::Image, &[Some("CREATE_IMAGE"), None]),
    ];
    let reasons: [(Option<&str>, Option<&str>); 5] = [
        (Some("disk full"), None),
        (Some("quota exceeded"), Some("DBS.280001")),
        (Some("timeout <waiting>"), None),
        (None, Some("WKS.0042")),
        (None, None),
    ];
    let mut rng = Lcg(42);
    let mut rows = Vec::new();
    for k in 0..300 {
        let (source, kinds) = types[k % 3];
        let job_type = kinds[rng.next(kinds.len() as u64) as usize];
        let roll = rng.next(100);
        let status = match roll {
            0..70 => Status::Succeeded,
            70..90 => Status::Failed,
            90..97 => Status::Running,
            _ => Status::Unknown,
        };
        let started =
            (k % 37 != 5).then(|| base + Duration::minutes(rng.next(70 * 24 * 60) as i64));
        let ended = match (status.is_terminal(), started) {
            (true, Some(s)) => Some(s + Duration::milliseconds(1_000 + rng.next(7_200_000) as i64)),
            (true, None) if k % 2 == 0 => Some(base + Duration::days(3)),
            _ => None,
        };
        let mut row = job(
            source,
            &format!("{}-{k:04}", source.as_str()),
            job_type,
            status,
            started,
            ended,
        );
        row.project_id = if k % 5 == 0 { "p2" } else { "p1" }.to_owned();
        if status == Status::Failed {
            let (reason, code) = reasons[rng.next(reasons.len() as u64) as usize];
            row.fail_reason = reason.map(str::to_owned);
            row.error_code = code.map(str::to_owned);
        }
        rows.push(row);
    }
    rows
}
