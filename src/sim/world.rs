//! Ground truth of the simulated cloud: its own job types, their seeded generation,
//! and the mutations that move jobs along (status flips, test-driven changes).
//!
//! Everything here is the simulator's own: it never borrows jobtrail's DTOs or model,
//! so a mistake there cannot be mirrored here and hidden.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::SimConfig;
use super::account::{SimProject, region_offers};

/// The project every default configuration serves.
pub const DEFAULT_PROJECT: &str = "0549b4a43100d4f32f51c01c2fe4acdb";

/// Everything the simulated cloud knows: jobs by project id, and the account.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    /// The projects served with jobs (the account's enabled ones, `MOS` aside).
    pub projects: BTreeMap<String, ProjectData>,
    /// Every project as IAM lists it, in listing order.
    pub account: Vec<SimProject>,
}

/// One project's jobs in the three services (none in a service its region lacks).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ProjectData {
    /// Newest start first, as the list API orders them.
    pub nosql: Vec<NosqlJob>,
    pub audit_instances: Vec<AuditInstance>,
    /// Newest begin first.
    pub image_jobs: Vec<ImageJob>,
}

/// A GaussDB(for NoSQL) task.
#[derive(Clone, Debug, PartialEq)]
pub struct NosqlJob {
    pub id: String,
    pub name: String,
    /// `Running`, `Completed`, `Failed`, or rarely something undocumented.
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// How its times are rendered on the wire: 480 → `+0800`.
    pub utc_offset_minutes: i32,
    /// `"60%"` while running, else `""`.
    pub progress: String,
    pub instance_id: String,
    pub instance_name: String,
    /// `""` unless failed.
    pub fail_reason: String,
}

/// A DBSS audit instance and its jobs.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditInstance {
    pub id: String,
    /// The id the jobs API takes.
    pub resource_id: String,
    pub name: String,
    /// `ACTIVE`, `BUILD`, `ERROR`.
    pub status: String,
    /// Newest begin first, as served.
    pub jobs: Vec<DbssJob>,
    /// Whether it appears in the audit instance list (else only reachable by id).
    pub listed: bool,
}

/// A DBSS JobBean.
#[derive(Clone, Debug, PartialEq)]
pub struct DbssJob {
    pub job_id: String,
    /// `SUCCESS`, `RUNNING`, `FAIL`, `INIT`, `READY`.
    pub status: String,
    pub job_type: Option<String>,
    pub server_id: Option<String>,
    pub server_name: Option<String>,
    /// Sometimes null on the wire.
    pub resource_id: Option<String>,
    /// Epoch milliseconds.
    pub begin_time: Option<i64>,
    pub end_time: Option<i64>,
    /// `Period` or `Demand`.
    pub charge_mode: String,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
    pub ha_id: Option<String>,
    pub ha_name: Option<String>,
}

/// A Workspace App image-server job.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageJob {
    pub id: String,
    pub job_type: String,
    pub begin_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// `WAITING`, `RUNNING`, `SUCCESS`, `FAILED`.
    pub status: String,
    pub sub_jobs: Vec<ImageSubJob>,
    /// Whether it appears in the job list (else only reachable by id).
    pub listed: bool,
}

/// One sub-job of an image-server job.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSubJob {
    pub id: String,
    pub job_type: String,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub begin_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// The job statuses plus `ABNORMAL`, `ROLLBACK`, `ABORTING`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub project_id: String,
    pub job_id: String,
}

impl World {
    /// Builds the world for `config`, with times relative to `now`: the same seed and
    /// `now` always give the same world.
    pub fn generate(config: &SimConfig, now: DateTime<Utc>) -> World {
        let mut g = Gen {
            rng: StdRng::seed_from_u64(config.seed),
            ids: HashSet::new(),
            now,
            history: Duration::days(i64::from(config.history_days.max(1))),
            image_sub_jobs_max: i32::try_from(config.image_sub_jobs_max)
                .unwrap_or(i32::MAX)
                .max(1),
        };
        let account = config.iam_projects();
        let mut projects = BTreeMap::new();
        for project in account.iter().filter(|p| p.has_jobs()) {
            let offers = |service| region_offers(project.region(), service);
            let mut data = ProjectData::default();
            if offers("nosql") {
                let instances = g.nosql_instances();
                data.nosql = g.nosql_jobs(config.nosql_jobs, &instances);
            }
            if offers("dbss") {
                data.audit_instances =
                    g.audit_instances(config.dbss_resources, config.dbss_jobs_per_resource);
            }
            if offers("image") {
                data.image_jobs = g.image_jobs(&project.id, config.image_jobs);
            }
            projects.insert(project.id.clone(), data);
        }
        World { projects, account }
    }

    /// The region of a project the account lists.
    pub fn region_of(&self, project: &str) -> Option<&str> {
        self.account
            .iter()
            .find(|p| p.id == project)
            .map(SimProject::region)
    }

    pub fn project(&self, project: &str) -> Option<&ProjectData> {
        self.projects.get(project)
    }

    pub fn nosql_job(&self, project: &str, id: &str) -> Option<&NosqlJob> {
        self.project(project)?.nosql.iter().find(|j| j.id == id)
    }

    pub fn audit_instance(&self, project: &str, resource_id: &str) -> Option<&AuditInstance> {
        self.project(project)?
            .audit_instances
            .iter()
            .find(|i| i.resource_id == resource_id)
    }

    pub fn image_job(&self, project: &str, job_id: &str) -> Option<&ImageJob> {
        self.project(project)?
            .image_jobs
            .iter()
            .find(|j| j.id == job_id)
    }

    /// Sets one NoSQL job's status, reason and end; false when there is no such job.
    pub(crate) fn set_nosql_job(
        &mut self,
        project: &str,
        id: &str,
        status: &str,
        fail_reason: &str,
        end: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(job) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.nosql.iter_mut().find(|j| j.id == id))
        else {
            return false;
        };
        job.status = status.to_owned();
        job.fail_reason = fail_reason.to_owned();
        job.end = end;
        if status == "Running" {
            if job.progress.is_empty() {
                job.progress = "50%".to_owned();
            }
        } else {
            job.progress.clear();
        }
        true
    }

    /// Adds `n` jobs that started in the last few minutes; returns their ids.
    pub(crate) fn add_nosql_jobs(
        &mut self,
        project: &str,
        n: usize,
        rng: &mut StdRng,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let Some(data) = self.projects.get_mut(project) else {
            return Vec::new();
        };
        let mut ids: HashSet<String> = data.nosql.iter().map(|j| j.id.clone()).collect();
        let instances: Vec<(String, String)> = {
            let mut seen = BTreeMap::new();
            for j in &data.nosql {
                seen.entry(j.instance_id.clone())
                    .or_insert_with(|| j.instance_name.clone());
            }
            seen.into_iter().collect()
        };
        let now_s = truncate_secs(now);
        let mut added = Vec::with_capacity(n);
        for _ in 0..n {
            let id = loop {
                let candidate = uuid(rng);
                if ids.insert(candidate.clone()) {
                    break candidate;
                }
            };
            let start = now_s - Duration::seconds(rng.random_range(30..=240));
            let (instance_id, instance_name) = if instances.is_empty() {
                (nosql_instance_id(rng), "nosql-new-01".to_owned())
            } else {
                instances[rng.random_range(0..instances.len())].clone()
            };
            let mut job = NosqlJob {
                id: id.clone(),
                name: weighted(rng, NOSQL_JOB_NAMES).to_owned(),
                status: "Completed".to_owned(),
                start,
                end: None,
                utc_offset_minutes: weighted_i32(rng, UTC_OFFSETS),
                progress: String::new(),
                instance_id,
                instance_name,
                fail_reason: String::new(),
            };
            match rng.random_range(0..10) {
                0..=2 => {
                    job.status = "Running".to_owned();
                    job.progress = format!("{}%", rng.random_range(5..=95));
                }
                3 => {
                    job.status = "Failed".to_owned();
                    job.fail_reason = String::from(*pick(rng, NOSQL_FAIL_REASONS));
                    job.end = Some(start + Duration::seconds(rng.random_range(5..=25)));
                }
                _ => job.end = Some(start + Duration::seconds(rng.random_range(5..=25))),
            }
            added.push(id);
            data.nosql.push(job);
        }
        sort_nosql(&mut data.nosql);
        added
    }

    /// Adds a job, newest, to an audit instance (`FAIL` gets an error, a final
    /// status an end); returns its id, `None` when there is no such instance.
    pub(crate) fn add_dbss_job(
        &mut self,
        project: &str,
        resource_id: &str,
        status: &str,
        rng: &mut StdRng,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let instance = self
            .projects
            .get_mut(project)?
            .audit_instances
            .iter_mut()
            .find(|i| i.resource_id == resource_id)?;
        let job_id = loop {
            let candidate = format!("ff808081{}", hex(rng, 24));
            if instance.jobs.iter().all(|j| j.job_id != candidate) {
                break candidate;
            }
        };
        let now_ms = now.timestamp_millis();
        let running = matches!(status, "RUNNING" | "INIT" | "READY");
        let (error_code, fail_reason) = if status == "FAIL" {
            let (code, reason) = *pick(rng, DBSS_FAILURES);
            (Some(code.to_owned()), Some(reason.to_owned()))
        } else {
            (None, None)
        };
        let charge_mode = instance
            .jobs
            .first()
            .map_or_else(|| "Period".to_owned(), |j| j.charge_mode.clone());
        instance.jobs.insert(
            0,
            DbssJob {
                job_id: job_id.clone(),
                status: status.to_owned(),
                job_type: None,
                server_id: None,
                server_name: Some(instance.name.clone()),
                resource_id: Some(resource_id.to_owned()),
                begin_time: Some(now_ms - rng.random_range(5_000..=60_000)),
                end_time: (!running).then_some(now_ms),
                charge_mode,
                error_code,
                fail_reason,
                ha_id: None,
                ha_name: None,
            },
        );
        Some(job_id)
    }

    /// Sets an image job's status; a final status also settles every sub-job to match.
    pub(crate) fn set_image_job_status(
        &mut self,
        project: &str,
        job_id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(job) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.image_jobs.iter_mut().find(|j| j.id == job_id))
        else {
            return false;
        };
        let now = truncate_millis(now);
        job.status = status.to_owned();
        let final_status = matches!(status, "SUCCESS" | "FAILED");
        job.end_time = final_status.then_some(now);
        for sub in &mut job.sub_jobs {
            sub.status = status.to_owned();
            sub.end_time = final_status.then_some(now.max(sub.begin_time));
            if status == "FAILED" {
                sub.error_code = Some("WKS.00130017".to_owned());
                sub.error_message = Some("The image server job was set to failed.".to_owned());
            } else {
                sub.error_code = None;
                sub.error_message = None;
            }
        }
        true
    }
}

/// Keeps the NoSQL list in the order the API serves it: newest start first, then id.
pub(crate) fn sort_nosql(jobs: &mut [NosqlJob]) {
    jobs.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.id.cmp(&b.id)));
}

impl NosqlJob {
    pub fn is_running(&self) -> bool {
        self.status == "Running"
    }

    /// Moves a running job to a final status, as the cloud would between two calls.
    pub(crate) fn finish(&mut self, rng: &mut StdRng, now: DateTime<Utc>) {
        if rng.random_bool(0.85) {
            self.status = "Completed".to_owned();
            self.fail_reason.clear();
        } else {
            self.status = "Failed".to_owned();
            self.fail_reason = String::from(*pick(rng, NOSQL_FAIL_REASONS));
        }
        self.progress.clear();
        self.end = Some(truncate_secs(now).max(self.start));
    }
}

impl DbssJob {
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "RUNNING" | "INIT" | "READY")
    }

    pub(crate) fn finish(&mut self, rng: &mut StdRng, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        if rng.random_bool(0.85) {
            self.status = "SUCCESS".to_owned();
            self.error_code = None;
            self.fail_reason = None;
        } else {
            let (code, reason) = *pick(rng, DBSS_FAILURES);
            self.status = "FAIL".to_owned();
            self.error_code = Some(code.to_owned());
            self.fail_reason = Some(reason.to_owned());
        }
        let begin = *self.begin_time.get_or_insert(now_ms);
        self.end_time = Some(now_ms.max(begin));
    }
}

impl ImageJob {
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "WAITING" | "RUNNING")
    }

    /// Settles the job and all its unsettled sub-jobs; a failed job keeps at least one
    /// failed sub-job with an error.
    pub(crate) fn finish(&mut self, rng: &mut StdRng, now: DateTime<Utc>) {
        let now = truncate_millis(now);
        let failed = !rng.random_bool(0.85);
        self.status = if failed { "FAILED" } else { "SUCCESS" }.to_owned();
        self.end_time = Some(now.max(self.begin_time));
        let mut has_failure = self
            .sub_jobs
            .iter()
            .any(|s| matches!(s.status.as_str(), "FAILED" | "ABNORMAL"));
        for sub in &mut self.sub_jobs {
            if is_final_sub_status(&sub.status) {
                continue;
            }
            sub.end_time = Some(now.max(sub.begin_time));
            if failed && !has_failure {
                set_sub_failure(sub, rng, "FAILED");
                has_failure = true;
            } else {
                sub.status = "SUCCESS".to_owned();
            }
        }
        if failed
            && !has_failure
            && let Some(sub) = self.sub_jobs.last_mut()
        {
            set_sub_failure(sub, rng, "FAILED");
            sub.end_time = Some(now.max(sub.begin_time));
        }
    }
}

fn is_final_sub_status(status: &str) -> bool {
    matches!(status, "SUCCESS" | "FAILED" | "ABNORMAL")
}

fn set_sub_failure(sub: &mut ImageSubJob, rng: &mut StdRng, status: &str) {
    let (code, message) = *pick(rng, IMAGE_FAILURES);
    sub.status = status.to_owned();
    sub.error_code = Some(code.to_owned());
    sub.error_message = Some(message.to_owned());
}

/// How far back the generator leaves recent NoSQL jobs running (see `nosql_jobs`).
const RECENT_RUNNING_DAYS: i64 = 10;

/// Documented NoSQL task names, weighted by how often such tasks plausibly run.
const NOSQL_JOB_NAMES: &[(&str, u32)] = &[
    ("CreateInstance", 12),
    ("BackupInstance", 20),
    ("RestartInstance", 8),
    ("RestartNode", 5),
    ("ResizeInstance", 7),
    ("EnlargeInstance", 6),
    ("ReduceInstance", 3),
    ("EnlargeInstanceVolume", 7),
    ("ReduceInstanceVolume", 1),
    ("RestoreNewInstance", 4),
    ("UpgradeDbVersion", 3),
    ("BindPublicIP", 3),
    ("UnbindPublicIP", 2),
    ("DeleteInstance", 4),
    ("EnlargeInstanceColdVolume", 1),
    ("AddInstanceColdVolume", 1),
    ("ModifySecurityGroup", 3),
    ("ModifyPort", 2),
    ("ConstructDisasterRecovery", 1),
    ("DeConstructDisasterRecovery", 1),
    ("SwitchOverDisasterRecovery", 1),
    ("BuildBiActiveInstance", 1),
    ("ReleaseBiActiveInstance", 1),
];

const NOSQL_FAIL_REASONS: &[&str] = &[
    "Insufficient resources in the AZ",
    "Quota exceeded: instances",
    "The instance status is abnormal",
    "Disk full",
    "Backup failed: the OBS bucket is not reachable",
    "Node restart timed out after 600 seconds",
    "Failed to attach the volume: volume is in use",
    "The security group does not exist",
    "可用区资源不足，请更换可用区后重试",
    "实例状态异常，请联系技术支持",
    "配额不足：磁盘容量",
];

/// Wire offsets: mostly UTC and Beijing time, a few others.
const UTC_OFFSETS: &[(i32, u32)] = &[(0, 45), (480, 45), (330, 3), (-300, 3), (60, 2), (540, 2)];

const NOSQL_ENGINES: &[&str] = &["cassandra", "mongodb", "redis", "influx", "hbase"];
const NOSQL_ENVS: &[&str] = &["prod", "staging", "dev", "analytics", "cache"];
const NOSQL_ID_SUFFIXES: &[&str] = &["in06", "in12", "in13", "in14"];

const DBSS_FAILURES: &[(&str, &str)] = &[
    ("DBSS.10010012", "Insufficient resources in the AZ"),
    ("DBSS.10010027", "Quota exceeded: ECS instances"),
    (
        "DBSS.10010031",
        "Failed to create the audit VM: the subnet has no free IP address",
    ),
    (
        "DBSS.10010044",
        "The order was not paid within the time limit",
    ),
    ("DBSS.10010050", "创建审计实例失败，请稍后重试"),
];

const DBSS_JOB_TYPES: &[&str] = &["CREATE_INSTANCE", "UPGRADE_INSTANCE", "RESIZE_FLAVOR"];

const IMAGE_JOB_TYPES: &[(&str, u32)] = &[
    ("CREATE_SERVER", 30),
    ("CREATE_SERVER_IMAGE", 20),
    ("DELETE_SERVER", 15),
    ("BUILD_IMAGE", 10),
    ("GENERATE_IMAGE", 10),
    ("DELETE_IMAGE_BUILD_SERVER", 8),
    ("DELETE_IMAGE", 7),
];

const IMAGE_FAILURES: &[(&str, &str)] = &[
    ("WKS.00130001", "Insufficient resources in the AZ"),
    ("WKS.00130005", "Quota exceeded: instances"),
    ("WKS.00130012", "The image server status is abnormal"),
    ("WKS.00130020", "Failed to create the image: disk full"),
    ("WKS.00130033", "镜像打包超时，请稍后重试"),
];

/// The generator: one seeded stream, plus the ids handed out so far (ids are unique
/// across the whole world).
struct Gen {
    rng: StdRng,
    ids: HashSet<String>,
    now: DateTime<Utc>,
    history: Duration,
    /// Sub-jobs per image job are drawn from 1 to this (an `i32`, the type the
    /// draw always had, so the default keeps every seed's world).
    image_sub_jobs_max: i32,
}

impl Gen {
    fn unique(&mut self, make: fn(&mut StdRng) -> String) -> String {
        loop {
            let candidate = make(&mut self.rng);
            if self.ids.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// A start time between `history` ago and a few minutes before now.
    fn past_instant(&mut self) -> DateTime<Utc> {
        let latest = truncate_secs(self.now) - Duration::minutes(3);
        let span = (self.history - Duration::minutes(3)).num_seconds().max(1);
        latest - Duration::seconds(self.rng.random_range(0..=span))
    }

    fn nosql_instances(&mut self) -> Vec<(String, String)> {
        (1..=6)
            .map(|i| {
                let id = self.unique(nosql_instance_id);
                let name = format!(
                    "{}-{}-{i:02}",
                    pick(&mut self.rng, NOSQL_ENVS),
                    pick(&mut self.rng, NOSQL_ENGINES)
                );
                (id, name)
            })
            .collect()
    }

    fn nosql_jobs(&mut self, n: usize, instances: &[(String, String)]) -> Vec<NosqlJob> {
        let mut starts: Vec<DateTime<Utc>> = (0..n).map(|_| self.past_instant()).collect();
        starts.sort_by(|a, b| b.cmp(a));
        // The newest ~6% are mostly still running, but only those started in the
        // last week (so a long history does not hold months of running jobs); a few
        // older ones are stuck.
        let recent = (n * 6).div_ceil(100);
        let recent_since = self.now - Duration::days(RECENT_RUNNING_DAYS);
        let last_end = truncate_secs(self.now) - Duration::seconds(1);
        let mut jobs: Vec<NosqlJob> = starts
            .into_iter()
            .enumerate()
            .map(|(i, start)| {
                let rng = &mut self.rng;
                let roll = rng.random_range(0..1000);
                let (instance_id, instance_name) =
                    instances[rng.random_range(0..instances.len())].clone();
                let duration = Duration::seconds(rng.random_range(15..=5400));
                let end = Some((start + duration).min(last_end));
                let mut job = NosqlJob {
                    id: String::new(),
                    name: weighted(rng, NOSQL_JOB_NAMES).to_owned(),
                    status: "Completed".to_owned(),
                    start,
                    end,
                    utc_offset_minutes: weighted_i32(rng, UTC_OFFSETS),
                    progress: String::new(),
                    instance_id,
                    instance_name,
                    fail_reason: String::new(),
                };
                if (i < recent && start >= recent_since && roll < 900) || roll < 20 {
                    job.status = "Running".to_owned();
                    job.end = None;
                    job.progress = format!("{}%", rng.random_range(1..=99));
                } else if roll < 145 {
                    job.status = "Failed".to_owned();
                    job.fail_reason = String::from(*pick(rng, NOSQL_FAIL_REASONS));
                } else if roll < 150 {
                    // Undocumented statuses do show up; they must not break anything.
                    job.status = pick(rng, &["Pending", "Canceled"]).to_string();
                    job.end = None;
                }
                job
            })
            .collect();
        for job in &mut jobs {
            job.id = self.unique(uuid);
        }
        sort_nosql(&mut jobs);
        jobs
    }

    fn audit_instances(&mut self, n: usize, jobs_each: usize) -> Vec<AuditInstance> {
        let now_ms = self.now.timestamp_millis();
        (0..n)
            .map(|i| {
                let resource_id = self.unique(uuid);
                let id = self.unique(|r| hex(r, 32));
                let server_id = self.unique(uuid);
                let rng = &mut self.rng;
                let name = format!("DBSS-{}", hex(rng, 4));
                let status = weighted(rng, &[("ACTIVE", 75), ("BUILD", 15), ("ERROR", 10)]);
                let charge_mode = if rng.random_bool(0.6) {
                    "Period"
                } else {
                    "Demand"
                };
                let count = if jobs_each == 0 {
                    0
                } else {
                    rng.random_range(1..=2 * jobs_each - 1)
                };
                // Created at least an hour ago, so every job fits before now.
                let hour_ms = 3_600_000;
                let created_ms = now_ms
                    - rng.random_range(hour_ms..=self.history.num_milliseconds().max(hour_ms));
                let mut begin = created_ms;
                let gap = ((now_ms - created_ms) / (count as i64 + 1)).max(1000);
                let mut jobs = Vec::with_capacity(count);
                for j in 0..count {
                    let newest = j + 1 == count;
                    let status = if newest {
                        match status {
                            "BUILD" => weighted(rng, &[("RUNNING", 3), ("INIT", 1), ("READY", 1)]),
                            "ERROR" => "FAIL",
                            _ => "SUCCESS",
                        }
                    } else {
                        weighted(rng, &[("SUCCESS", 85), ("FAIL", 12), ("RUNNING", 3)])
                    };
                    let running = matches!(status, "RUNNING" | "INIT" | "READY");
                    let end = begin + rng.random_range(20_000..=900_000);
                    let (error_code, fail_reason) = if status == "FAIL" {
                        let (c, r) = *pick(rng, DBSS_FAILURES);
                        (Some(c.to_owned()), Some(r.to_owned()))
                    } else {
                        (None, None)
                    };
                    jobs.push(DbssJob {
                        job_id: String::new(),
                        status: status.to_owned(),
                        job_type: rng
                            .random_bool(0.3)
                            .then(|| pick(rng, DBSS_JOB_TYPES).to_string()),
                        server_id: rng.random_bool(0.9).then(|| server_id.clone()),
                        server_name: rng.random_bool(0.9).then(|| name.clone()),
                        // The oldest job of the first instance always shows a null
                        // resource_id, so every world has one.
                        resource_id: (!(i == 0 && j == 0) && rng.random_bool(0.8))
                            .then(|| resource_id.clone()),
                        begin_time: (status != "INIT").then_some(begin),
                        end_time: (!running).then_some(end.min(now_ms - 1000)),
                        charge_mode: charge_mode.to_owned(),
                        error_code,
                        fail_reason,
                        ha_id: rng.random_bool(0.3).then(|| resource_id.clone()),
                        ha_name: None,
                    });
                    begin += rng.random_range(gap / 2..=gap).max(1);
                    begin = begin.min(now_ms - 60_000);
                }
                for job in &mut jobs {
                    job.job_id = self.unique(|r| format!("ff808081{}", hex(r, 24)));
                }
                jobs.reverse();
                AuditInstance {
                    id,
                    resource_id,
                    name,
                    status: status.to_owned(),
                    jobs,
                    // Every fourth instance, from the third, is not in the list (another
                    // enterprise project, say): reachable only when configured by id.
                    listed: i % 4 != 2,
                }
            })
            .collect()
    }

    fn image_jobs(&mut self, project: &str, n: usize) -> Vec<ImageJob> {
        let mut begins: Vec<DateTime<Utc>> = (0..n)
            .map(|_| {
                let t = self.past_instant();
                styled_millis(&mut self.rng, t)
            })
            .collect();
        begins.sort_by(|a, b| b.cmp(a));
        let now = truncate_millis(self.now);
        let mut jobs = Vec::with_capacity(n);
        for (i, begin) in begins.into_iter().enumerate() {
            let id = self.unique(numeric_id);
            let sub_ids: Vec<String> = (0..self.rng.random_range(1..=self.image_sub_jobs_max))
                .map(|_| self.unique(numeric_id))
                .collect();
            let rng = &mut self.rng;
            let status = if i == 0 {
                weighted(rng, &[("RUNNING", 6), ("WAITING", 2), ("SUCCESS", 2)])
            } else {
                weighted(
                    rng,
                    &[
                        ("SUCCESS", 80),
                        ("FAILED", 12),
                        ("RUNNING", 5),
                        ("WAITING", 3),
                    ],
                )
            };
            let job_type = weighted(rng, IMAGE_JOB_TYPES);
            let running = matches!(status, "RUNNING" | "WAITING");
            let end = (!running).then(|| {
                let d = Duration::milliseconds(rng.random_range(60_000..=3_600_000));
                styled_millis(rng, (begin + d).min(now))
            });
            let count = sub_ids.len();
            let failing = rng.random_range(0..count);
            let sub_jobs = sub_ids
                .into_iter()
                .enumerate()
                .map(|(k, sub_id)| {
                    // At least a second later, so restyling the fraction keeps it after
                    // the job's own begin.
                    let delay = Duration::milliseconds(rng.random_range(1_000..=5_000));
                    let sub_begin = styled_millis(rng, begin + delay);
                    let sub_status = match status {
                        "SUCCESS" => "SUCCESS",
                        "WAITING" => "WAITING",
                        "FAILED" if k == failing => {
                            weighted(rng, &[("FAILED", 3), ("ABNORMAL", 1)])
                        }
                        "FAILED" => {
                            weighted(rng, &[("SUCCESS", 2), ("FAILED", 1), ("ABNORMAL", 1)])
                        }
                        _ => weighted(
                            rng,
                            &[
                                ("RUNNING", 5),
                                ("SUCCESS", 3),
                                ("WAITING", 2),
                                ("ROLLBACK", 1),
                                ("ABORTING", 1),
                            ],
                        ),
                    };
                    let mut sub = ImageSubJob {
                        id: sub_id,
                        job_type: if rng.random_bool(0.8) {
                            job_type.to_owned()
                        } else {
                            weighted(rng, IMAGE_JOB_TYPES).to_owned()
                        },
                        resource_id: (sub_status != "WAITING").then(|| uuid(rng)),
                        resource_name: None,
                        begin_time: sub_begin,
                        end_time: None,
                        status: sub_status.to_owned(),
                        error_code: None,
                        error_message: None,
                        project_id: project.to_owned(),
                        job_id: id.clone(),
                    };
                    if sub.resource_id.is_some() {
                        sub.resource_name = Some(format!("img-server-{}", hex(rng, 6)));
                    }
                    if is_final_sub_status(sub_status) {
                        let limit = end.unwrap_or(now).max(sub_begin);
                        let d = Duration::milliseconds(rng.random_range(1_000..=600_000));
                        let sub_end = styled_millis(rng, sub_begin + d).min(limit);
                        sub.end_time = Some(sub_end.max(sub_begin));
                    }
                    if matches!(sub_status, "FAILED" | "ABNORMAL") {
                        set_sub_failure(&mut sub, rng, sub_status);
                    }
                    sub
                })
                .collect();
            jobs.push(ImageJob {
                id,
                job_type: job_type.to_owned(),
                begin_time: begin,
                end_time: end,
                status: status.to_owned(),
                sub_jobs,
                // Every seventh job is not in the list: reachable only by id.
                listed: i % 7 != 6,
            });
        }
        jobs
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted<'a>(rng: &mut StdRng, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if roll < *w {
            return item;
        }
        roll -= w;
    }
    items.last().map_or("", |(item, _)| item)
}

fn weighted_i32(rng: &mut StdRng, items: &[(i32, u32)]) -> i32 {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if roll < *w {
            return *item;
        }
        roll -= w;
    }
    0
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(DIGITS[rng.random_range(0..16)]))
        .collect()
}

fn uuid(rng: &mut StdRng) -> String {
    format!(
        "{}-{}-4{}-{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 3),
        hex(rng, 4),
        hex(rng, 12)
    )
}

fn nosql_instance_id(rng: &mut StdRng) -> String {
    format!("{}{}", hex(rng, 32), pick(rng, NOSQL_ID_SUFFIXES))
}

/// An 18-digit id like the Workspace API's (`702364883651395584`).
fn numeric_id(rng: &mut StdRng) -> String {
    rng.random_range(100_000_000_000_000_000_u64..999_999_999_999_999_999)
        .to_string()
}

pub(crate) fn truncate_secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

pub(crate) fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Gives a time millisecond precision of one of three shapes, so the wire shows
/// `.858Z`, `.61Z` and `Z` alike, as the Workspace API does.
fn styled_millis(rng: &mut StdRng, t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    let millis = match rng.random_range(0..3) {
        0 => rng.random_range(0..1000),
        1 => rng.random_range(0..100) * 10,
        _ => 0,
    };
    DateTime::from_timestamp(secs, millis * 1_000_000).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> SimConfig {
        let mut c = SimConfig::new(seed);
        c.projects
            .push("1111aaaa2222bbbb3333cccc4444dddd".to_owned());
        c.dbss_resources = 6;
        c.image_jobs = 30;
        c
    }

    #[test]
    fn same_seed_same_world_and_other_seed_differs() {
        let now = Utc::now();
        let a = World::generate(&config(7), now);
        assert_eq!(a, World::generate(&config(7), now));
        assert_ne!(a, World::generate(&config(8), now));
    }

    #[test]
    fn ids_are_unique_and_counts_follow_config() {
        let now = Utc::now();
        let c = config(3);
        let w = World::generate(&c, now);
        let mut ids = HashSet::new();
        for p in w.projects.values() {
            assert_eq!(p.nosql.len(), c.nosql_jobs);
            assert_eq!(p.audit_instances.len(), c.dbss_resources);
            assert_eq!(p.image_jobs.len(), c.image_jobs);
            for j in &p.nosql {
                assert!(ids.insert(j.id.clone()));
            }
            for i in &p.audit_instances {
                assert!(ids.insert(i.resource_id.clone()));
                assert!((1..=5).contains(&i.jobs.len()));
                for j in &i.jobs {
                    assert!(ids.insert(j.job_id.clone()));
                }
            }
            for j in &p.image_jobs {
                assert!(ids.insert(j.id.clone()));
                assert!((1..=5).contains(&j.sub_jobs.len()));
                for s in &j.sub_jobs {
                    assert!(ids.insert(s.id.clone()));
                }
            }
        }
    }

    #[test]
    fn generated_data_is_plausible() {
        let now = Utc::now();
        let mut c = config(11);
        c.nosql_jobs = 2000;
        let w = World::generate(&c, now);
        let p = &w.projects[DEFAULT_PROJECT];
        let count = |s: &str| p.nosql.iter().filter(|j| j.status == s).count();
        let (done, failed, running) = (count("Completed"), count("Failed"), count("Running"));
        assert!((1400..1800).contains(&done), "completed {done}");
        assert!((150..350).contains(&failed), "failed {failed}");
        assert!((80..250).contains(&running), "running {running}");
        for j in &p.nosql {
            assert!(j.start < now - Duration::minutes(2));
            assert!(j.start > now - Duration::days(96));
            if let Some(end) = j.end {
                assert!(end >= j.start && end <= now);
            }
            assert_eq!(j.is_running(), !j.progress.is_empty());
            assert_eq!(j.status == "Failed", !j.fail_reason.is_empty());
        }
        // Running jobs are mostly recent, but not only.
        assert!(p.nosql[..10].iter().filter(|j| j.is_running()).count() >= 5);
        assert!(p.nosql[200..].iter().any(|j| j.is_running()));
        for j in &p.image_jobs {
            if j.status == "FAILED" {
                assert!(j.sub_jobs.iter().any(|s| {
                    matches!(s.status.as_str(), "FAILED" | "ABNORMAL") && s.error_code.is_some()
                }));
            }
            assert_eq!(j.is_running(), j.end_time.is_none());
            assert!(j.end_time.is_none_or(|e| e > j.begin_time && e <= now));
            for s in &j.sub_jobs {
                assert!(s.begin_time > j.begin_time);
                assert!(s.end_time.is_none_or(|e| e >= s.begin_time));
            }
        }
        let dbss: Vec<&DbssJob> = p.audit_instances.iter().flat_map(|i| &i.jobs).collect();
        assert!(dbss.iter().any(|j| j.resource_id.is_none()));
        for j in &dbss {
            if let (Some(b), Some(e)) = (j.begin_time, j.end_time) {
                assert!(b <= e && e <= now.timestamp_millis(), "{j:?}");
            }
        }
        assert!(
            dbss.iter()
                .all(|j| (j.status == "SUCCESS") == j.error_code.is_none() || j.is_running())
        );
    }

    #[test]
    fn finishing_a_running_image_job_settles_its_sub_jobs() {
        let mut rng = StdRng::seed_from_u64(1);
        let w = World::generate(&config(5), Utc::now());
        let mut jobs: Vec<ImageJob> = w
            .projects
            .values()
            .flat_map(|p| p.image_jobs.iter().filter(|j| j.is_running()).cloned())
            .collect();
        assert!(!jobs.is_empty());
        for job in &mut jobs {
            job.finish(&mut rng, Utc::now());
            assert!(!job.is_running());
            assert!(job.sub_jobs.iter().all(|s| is_final_sub_status(&s.status)));
        }
    }
}
