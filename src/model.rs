//! The normalized types every layer shares: which source a job came from, its
//! normalized status, and the one row shape all three APIs are turned into.

use std::fmt;
use std::str::FromStr;

/// One of the three cloud APIs jobtrail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// GaussDB(for NoSQL) task list.
    Nosql,
    /// DBSS audit-instance jobs.
    Dbss,
    /// Workspace App image-server jobs (with sub-jobs).
    Image,
}

impl Source {
    /// Every source, in the order a sync runs them.
    pub const ALL: [Source; 3] = [Source::Nosql, Source::Dbss, Source::Image];

    /// The name stored in the `source` column and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Nosql => "nosql",
            Source::Dbss => "dbss",
            Source::Image => "image",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "nosql" => Ok(Source::Nosql),
            "dbss" => Ok(Source::Dbss),
            "image" => Ok(Source::Image),
            other => Err(format!(
                "unknown source `{other}` (expected nosql, dbss or image)"
            )),
        }
    }
}

/// Which of DBSS's two jobs paths a project's cloud answers on: the current
/// `/v1/{project_id}/audit/{resource_id}/jobs`, or the legacy
/// `/v1/{project_id}/dbss/audit/jobs/{resource_id}` (marked "to be taken
/// offline", yet the only one some regions may still have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbssJobsPath {
    Current,
    Legacy,
}

impl DbssJobsPath {
    /// The name it is remembered by (`sync_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            DbssJobsPath::Current => "current",
            DbssJobsPath::Legacy => "legacy",
        }
    }

    /// The other path: the one to try when this one does not exist.
    pub fn other(self) -> DbssJobsPath {
        match self {
            DbssJobsPath::Current => DbssJobsPath::Legacy,
            DbssJobsPath::Legacy => DbssJobsPath::Current,
        }
    }
}

impl FromStr for DbssJobsPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "current" => Ok(DbssJobsPath::Current),
            "legacy" => Ok(DbssJobsPath::Legacy),
            other => Err(format!("unknown DBSS jobs path `{other}`")),
        }
    }
}

/// A job's status, normalized across the three APIs (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not final yet: re-checked by every sync.
    Running,
    Succeeded,
    Failed,
    /// A raw status we do not know: stored as is and re-checked like a running job.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }

    /// Final statuses never change again; everything else is re-checked.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(Status::Running),
            "succeeded" => Ok(Status::Succeeded),
            "failed" => Ok(Status::Failed),
            "unknown" => Ok(Status::Unknown),
            other => Err(format!("unknown normalized status `{other}`")),
        }
    }
}

/// One normalized job, ready for the `jobs` table. Times are already in the
/// fixed-width UTC text form (see [`crate::normalize::format_utc`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub source: Source,
    pub project_id: String,
    pub job_id: String,
    pub parent_job_id: Option<String>,
    pub job_type: Option<String>,
    pub status: Status,
    pub raw_status: Option<String>,
    pub progress: Option<i64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
    /// The job object exactly as the API sent it.
    pub raw_json: String,
}

/// A project as IAM lists it (`GET /v3/projects`, `GET /v3/auth/projects`):
/// what jobtrail needs to find a project's ID and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamProject {
    pub id: String,
    /// `cn-north-4` (a region's default project), `cn-north-4_dev` (a
    /// sub-project) or `MOS` (OBS's own, no region).
    pub name: String,
    pub enabled: bool,
}

impl IamProject {
    /// The region: the name up to the first `_` (`MOS` for OBS's project).
    pub fn region(&self) -> &str {
        crate::regions::project_region(&self.name)
    }
}
