//! A simulated Huawei Cloud on loopback: the three job APIs, the discovery lists,
//! IAM (token, project lookup, the account's projects) and regions that lack some
//! services, seeded and deterministic, with the real APIs' rules and injectable
//! faults. Used by the tests, `jobtrail demo`, `jobtrail simulate` and the
//! benchmarks.
//!
//! It serves wire JSON of its own, written from the API facts; it never imports
//! jobtrail's DTOs, model or normalization, which are the code under test.

mod account;
mod dbss;
mod faults;
mod image;
mod nosql;
mod routes;
pub mod sigv;
mod world;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use account::{DEFAULT_REGION, DOMAIN_ID, MOS, SimProject, region_offers};
pub use faults::{Fault, FaultRule};
pub use world::{
    AuditInstance, DEFAULT_PROJECT, DbssJob, ImageJob, ImageSubJob, NosqlJob, ProjectData, World,
};

/// How long `shutdown` lets requests in flight finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What to simulate: the data (from a seed) and how the cloud behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Project ids served with jobs when `account` is empty; any other project id
    /// answers 404.
    pub projects: Vec<String>,
    /// The account as IAM lists it. Empty: derived from `projects` (the first is
    /// `cn-north-4`'s default project, the others its sub-projects). Otherwise its
    /// enabled projects other than `MOS` are the ones served with jobs, each with
    /// only the services its region offers, and `projects` is not read.
    pub account: Vec<SimProject>,
    /// NoSQL jobs per project, start times spread over the last `history_days`
    /// (ending a few minutes before now).
    pub nosql_jobs: usize,
    pub history_days: u32,
    /// DBSS audit instances per project. Every fourth one from the third on is not in
    /// the instance list (reachable only by its resource id).
    pub dbss_resources: usize,
    /// Jobs per audit instance: each has between 1 and 2n−1 (deterministic).
    pub dbss_jobs_per_resource: usize,
    /// Image-server jobs per project, each with 1..=`image_sub_jobs_max` sub-jobs.
    /// Every seventh is not in the job list (reachable only by id).
    pub image_jobs: usize,
    /// The most sub-jobs an image job has (5 by default).
    pub image_sub_jobs_max: usize,
    /// `Some(n)`: an image job's detail returns only its first `n` sub-jobs (with
    /// the full `sub_jobs_total`); the rest are behind the sub-jobs list.
    pub image_sub_jobs_cut: Option<usize>,
    /// Added to every response.
    pub latency: Duration,
    /// Requests per second across all endpoints; above it → 429 + Retry-After.
    pub rate_limit: Option<u32>,
    /// Probability (0..1) that a request gets a random transient fault (5xx or 429).
    pub fault_rate: f64,
    pub auth: SimAuth,
    /// Which DBSS jobs paths exist; a missing one answers as the gateway does for
    /// a removed API.
    pub dbss_paths: DbssPaths,
    /// Probability that a running job becomes final after it is served.
    pub running_flip_rate: f64,
    /// User name and password the IAM token endpoint accepts (any domain);
    /// `None` refuses every password login.
    pub iam_user: Option<(String, String)>,
}

impl SimConfig {
    /// Small, fault-free defaults for tests.
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            projects: vec![DEFAULT_PROJECT.to_owned()],
            account: Vec::new(),
            nosql_jobs: 300,
            history_days: 95,
            dbss_resources: 3,
            dbss_jobs_per_resource: 3,
            image_jobs: 10,
            image_sub_jobs_max: 5,
            image_sub_jobs_cut: None,
            latency: Duration::ZERO,
            rate_limit: None,
            fault_rate: 0.0,
            auth: SimAuth::Any,
            dbss_paths: DbssPaths::Both,
            running_flip_rate: 0.0,
            iam_user: Some(("demo".to_owned(), "demo".to_owned())),
        }
    }

    /// A livelier world for `jobtrail demo`.
    pub fn demo() -> Self {
        SimConfig {
            projects: vec![
                DEFAULT_PROJECT.to_owned(),
                "7d2f6a1e9b0c4f3a8e5d1c2b3a4f5e6d".to_owned(),
            ],
            nosql_jobs: 2000,
            history_days: 120,
            dbss_resources: 6,
            image_jobs: 25,
            ..SimConfig::new(20240520)
        }
    }

    /// A whole account with the test defaults: projects in cn-north-4 (a default
    /// project and a sub-project), ap-southeast-1, eu-west-101 (NoSQL only),
    /// cn-east-2 (no Workspace App) and af-north-1 (no NoSQL), plus OBS's `MOS`
    /// project and a disabled sub-project, neither with jobs. `projects` lists the
    /// ids served with jobs.
    pub fn account(seed: u64) -> Self {
        let account = account::sample_account();
        SimConfig {
            projects: account
                .iter()
                .filter(|p| p.has_jobs())
                .map(|p| p.id.clone())
                .collect(),
            account,
            ..SimConfig::new(seed)
        }
    }

    /// The account as IAM lists it: `account`, or the one derived from `projects`.
    pub fn iam_projects(&self) -> Vec<SimProject> {
        if self.account.is_empty() {
            account::derived_account(&self.projects)
        } else {
            self.account.clone()
        }
    }
}

/// Which of the two DBSS jobs paths the simulated cloud has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DbssPaths {
    /// The legacy `/v1/{p}/dbss/audit/jobs/{r}` and the current `/v1/{p}/audit/{r}/jobs`.
    #[default]
    Both,
    /// Only the current path: the legacy one is retired.
    CurrentOnly,
    /// Only the legacy path: the current one is not deployed here.
    LegacyOnly,
}

impl DbssPaths {
    /// Whether the path (legacy or current) exists.
    pub fn serves(self, legacy: bool) -> bool {
        match self {
            DbssPaths::Both => true,
            DbssPaths::CurrentOnly => !legacy,
            DbssPaths::LegacyOnly => legacy,
        }
    }
}

impl FromStr for DbssPaths {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "both" => Ok(DbssPaths::Both),
            "current-only" => Ok(DbssPaths::CurrentOnly),
            "legacy-only" => Ok(DbssPaths::LegacyOnly),
            other => Err(format!(
                "unknown DBSS paths `{other}` (expected both, current-only or legacy-only)"
            )),
        }
    }
}

/// Which credentials the simulated gateway demands.
#[derive(Clone, PartialEq, Eq)]
pub enum SimAuth {
    /// Accept requests with or without credentials.
    Any,
    /// `X-Auth-Token` must equal this.
    Token(String),
    /// Requests must be signed with this key pair (and carry this security token).
    AkSk {
        ak: String,
        sk: String,
        security_token: Option<String>,
    },
}

/// Secrets stay out of logs and panic messages.
impl fmt::Debug for SimAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimAuth::Any => f.write_str("Any"),
            SimAuth::Token(_) => f.write_str("Token(***)"),
            SimAuth::AkSk {
                ak, security_token, ..
            } => f
                .debug_struct("AkSk")
                .field("ak", ak)
                .field("sk", &"***")
                .field("security_token", &security_token.as_ref().map(|_| "***"))
                .finish(),
        }
    }
}

/// One request as served, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// The path as on the request line.
    pub path: String,
    /// Query pairs, percent-decoded (a raw `+` decodes to a space).
    pub query: Vec<(String, String)>,
    /// The status sent; 0 when the connection was dropped without an answer.
    pub status: u16,
}

/// A call to a service in a region that lacks it. The real cloud has no such host
/// (a DNS error); the simulator answers 404 APIGW.0101 and records the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingServiceCall {
    pub project_id: String,
    pub region: String,
    /// `nosql`, `dbss` or `image`.
    pub service: &'static str,
    /// The path as on the request line.
    pub path: String,
}

/// Requests the log keeps: far more than any test or benchmark makes between
/// two clears, yet a `jobtrail simulate` left running for days stays bounded.
pub const REQUEST_LOG_CAP: usize = 200_000;

/// The requests served, oldest dropped first past [`REQUEST_LOG_CAP`].
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    records: std::collections::VecDeque<RequestRecord>,
    served: usize,
}

impl RequestLog {
    pub(crate) fn push(&mut self, record: RequestRecord) {
        if self.records.len() == REQUEST_LOG_CAP {
            self.records.pop_front();
        }
        self.records.push_back(record);
        self.served += 1;
    }
}

/// Everything that changes while the server runs, behind one lock (held briefly and
/// never across an await).
pub(crate) struct State {
    pub(crate) world: World,
    /// Drives flips, random faults and request ids; seeded so runs repeat.
    pub(crate) rng: StdRng,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) requests: RequestLog,
    pub(crate) auth: SimAuth,
    pub(crate) dbss_paths: DbssPaths,
    pub(crate) image_sub_jobs_cut: Option<usize>,
    /// Calls to services a project's region lacks, since the last clear.
    pub(crate) missing_calls: Vec<MissingServiceCall>,
    pub(crate) bucket: Option<faults::TokenBucket>,
    pub(crate) fault_rate: f64,
    pub(crate) running_flip_rate: f64,
    pub(crate) latency: Duration,
    pub(crate) iam_user: Option<(String, String)>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// A panic in one handler must not wedge the simulator for the rest of a test.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulated cloud. Dropping it stops the server task.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds 127.0.0.1 on an ephemeral port and serves; returns once listening.
    pub async fn start(config: SimConfig) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::start_on(config, listener).await
    }

    /// Serves on a listener the caller bound (`jobtrail simulate --listen`).
    pub async fn start_on(config: SimConfig, listener: TcpListener) -> std::io::Result<SimServer> {
        let addr = listener.local_addr()?;
        let world = World::generate(&config, Utc::now());
        let state = State {
            world,
            rng: StdRng::seed_from_u64(config.seed.wrapping_add(0x5eed)),
            faults: Vec::new(),
            requests: RequestLog::default(),
            auth: config.auth,
            dbss_paths: config.dbss_paths,
            image_sub_jobs_cut: config.image_sub_jobs_cut,
            missing_calls: Vec::new(),
            bucket: config.rate_limit.map(faults::TokenBucket::new),
            fault_rate: config.fault_rate.clamp(0.0, 1.0),
            running_flip_rate: config.running_flip_rate.clamp(0.0, 1.0),
            latency: config.latency,
            iam_user: config.iam_user,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        Ok(SimServer {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the ground truth.
    pub fn world(&self) -> World {
        self.shared.lock().world.clone()
    }

    /// The requests served since the last clear, in order (the latest
    /// [`REQUEST_LOG_CAP`] of them).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .lock()
            .requests
            .records
            .iter()
            .cloned()
            .collect()
    }

    /// How many requests were served since the last clear.
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.served
    }

    /// Clears the request log and the missing-service calls.
    pub fn clear_requests(&self) {
        let mut state = self.shared.lock();
        state.requests = RequestLog::default();
        state.missing_calls.clear();
    }

    /// Calls to a service in a region that lacks it, since the last clear (the
    /// first [`REQUEST_LOG_CAP`] of them).
    pub fn missing_service_calls(&self) -> Vec<MissingServiceCall> {
        self.shared.lock().missing_calls.clone()
    }

    /// Adds a rule; rules are checked in the order added, the first match applies.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.lock().faults.push(rule);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// `true`: only the current DBSS path exists; `false`: both do.
    pub fn set_legacy_dbss_retired(&self, retired: bool) {
        self.set_dbss_paths(if retired {
            DbssPaths::CurrentOnly
        } else {
            DbssPaths::Both
        });
    }

    pub fn set_dbss_paths(&self, paths: DbssPaths) {
        self.shared.lock().dbss_paths = paths;
    }

    /// See [`SimConfig::image_sub_jobs_cut`].
    pub fn set_image_sub_jobs_cut(&self, cut: Option<usize>) {
        self.shared.lock().image_sub_jobs_cut = cut;
    }

    pub fn set_auth(&self, auth: SimAuth) {
        self.shared.lock().auth = auth;
    }

    pub fn set_fault_rate(&self, rate: f64) {
        self.shared.lock().fault_rate = rate.clamp(0.0, 1.0);
    }

    pub fn set_running_flip_rate(&self, rate: f64) {
        self.shared.lock().running_flip_rate = rate.clamp(0.0, 1.0);
    }

    /// Sets one NoSQL job's status, fail reason and end; false if there is no such job.
    pub fn set_nosql_job(
        &self,
        project: &str,
        id: &str,
        status: &str,
        fail_reason: &str,
        end: Option<DateTime<Utc>>,
    ) -> bool {
        self.shared
            .lock()
            .world
            .set_nosql_job(project, id, status, fail_reason, end)
    }

    /// Changes the simulated world in place (a job's name, an ID), for a test
    /// that needs data the generator does not make.
    pub fn edit_world(&self, edit: impl FnOnce(&mut World)) {
        edit(&mut self.shared.lock().world);
    }

    /// Adds `n` NoSQL jobs started in the last few minutes (before now); returns their
    /// ids (empty for an unknown project).
    pub fn add_nosql_jobs(&self, project: &str, n: usize) -> Vec<String> {
        let mut state = self.shared.lock();
        let State { world, rng, .. } = &mut *state;
        world.add_nosql_jobs(project, n, rng, Utc::now())
    }

    /// Adds a job, newest, to an audit instance: `RUNNING`, `SUCCESS`, `FAIL` (with
    /// an error) and so on. Returns its id; `None` for an unknown project or instance.
    pub fn add_dbss_job(&self, project: &str, resource_id: &str, status: &str) -> Option<String> {
        let mut state = self.shared.lock();
        let State { world, rng, .. } = &mut *state;
        world.add_dbss_job(project, resource_id, status, rng, Utc::now())
    }

    /// Sets an image job's status; a final status (`SUCCESS`/`FAILED`) also sets every
    /// sub-job to it. False if there is no such job.
    pub fn set_image_job_status(&self, project: &str, job_id: &str, status: &str) -> bool {
        self.shared
            .lock()
            .world
            .set_image_job_status(project, job_id, status, Utc::now())
    }

    /// Stops accepting, lets requests in flight finish (briefly), then stops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until told to stop; each connection is served on its own
/// task, all owned here so stopping this task stops them too.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared), stop.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let service = service_fn(move |request| routes::handle(Arc::clone(&shared), request));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        // A dropped connection (ConnectionReset fault) ends here with an error: fine.
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The error a handler returns to make hyper drop the connection without answering.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated connection reset")
    }
}

impl std::error::Error for DropConnection {}
