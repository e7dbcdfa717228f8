//! `jobtrail check`: is this setup ready to sync? The configuration (every
//! problem at once, each with its line and key: `lint`), the credentials (kind
//! and origin, never a value), the projects (found through IAM as `sync` finds
//! them: a region's project, the whole account), and one cheap real request
//! per project and source its region offers (`probe`), each failure explained
//! with what to do about it (`advice`), printed as a checklist (`render`).
//! Nothing is stored: IAM is asked every time.

mod advice;
mod lint;
mod probe;
mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use advice::explain;
pub use lint::{ConfigReport, Problem, check_config, check_config_file, check_config_with, lint};
pub use probe::{Outcome, Probe, http_settings, probe, probe_call};
pub use render::render;

use crate::auth::{CredentialError, Credentials};
use crate::config::{ConfigError, DatabaseArg, Settings};
use crate::http::{ApiClient, ApiError};
use crate::iam::{AccountListing, Found, Iam, PlannedProject};
use crate::model::Source;
use crate::store::{DatabaseLocation, PgStoreError, Store, StoreError};

/// The database `sync` would use.
#[derive(Debug)]
pub enum DatabaseCheck {
    /// A SQLite file, and whether it exists yet.
    File { path: PathBuf, exists: bool },
    /// A PostgreSQL database (its URL without the password) and what
    /// connecting to it said: whether jobtrail's tables are there yet, or why
    /// it could not be reached.
    Postgres {
        url: String,
        reached: Result<bool, String>,
    },
    /// `--db` or the file's `database` cannot be read.
    Invalid(String),
}

impl DatabaseCheck {
    fn is_problem(&self) -> bool {
        matches!(
            self,
            DatabaseCheck::Invalid(_)
                | DatabaseCheck::Postgres {
                    reached: Err(_),
                    ..
                }
        )
    }
}

/// Everything `check` found.
#[derive(Debug)]
pub struct Report {
    pub config: ConfigReport,
    /// The database `sync` would use, as far as can be told without writing.
    pub database: Option<DatabaseCheck>,
    pub credentials: Result<Credentials, CredentialError>,
    /// How region-only projects and the account's were found.
    pub discovery: Discovery,
    /// Each project to sync and the probes of its sources.
    pub projects: Vec<ProjectReport>,
}

/// What IAM said about the projects (empty when every project has its ID).
#[derive(Debug, Default)]
pub struct Discovery {
    /// Whether anything had to be looked up.
    pub asked: bool,
    /// The account's list, when `[account]` asked for it.
    pub account: Option<AccountListing>,
    /// Lookups that failed, as `sync` would refuse them.
    pub problems: Vec<String>,
    /// Worth knowing, not failures (regions without a service).
    pub notes: Vec<String>,
}

/// One project to sync: how it was found and what its sources answered.
#[derive(Debug)]
pub struct ProjectReport {
    pub id: String,
    pub region: String,
    /// Its IAM name, when IAM named it.
    pub name: Option<String>,
    pub found: Found,
    pub probes: Vec<Probe>,
    /// Sources asked for that its region does not offer (not called).
    pub absent: Vec<Source>,
}

impl Report {
    /// Problems that stop a sync (warnings and skipped probes do not count).
    pub fn problem_count(&self) -> usize {
        let probes = self
            .projects
            .iter()
            .flat_map(|p| &p.probes)
            .filter(|p| matches!(p.outcome, Outcome::Fail { .. }))
            .count();
        let database = self
            .database
            .as_ref()
            .is_some_and(DatabaseCheck::is_problem);
        self.config.problems.len()
            + usize::from(self.credentials.is_err())
            + usize::from(database)
            + self.discovery.problems.len()
            + probes
    }

    /// Ready to sync: a valid configuration with a project, credentials, every
    /// project found, and every source answering.
    pub fn is_ready(&self) -> bool {
        self.problem_count() == 0
            && self.config.settings.is_some()
            && !self.projects.is_empty()
            && self
                .projects
                .iter()
                .flat_map(|p| &p.probes)
                .all(|p| p.outcome.is_usable())
    }
}

/// Looks at the database without changing it: whether a file exists, or
/// whether a PostgreSQL server answers (within the store's connect timeout).
async fn check_database(location: Result<DatabaseLocation, ConfigError>) -> DatabaseCheck {
    match location {
        Err(e) => DatabaseCheck::Invalid(e.to_string()),
        Ok(DatabaseLocation::Sqlite(path)) => {
            let exists = path.exists();
            DatabaseCheck::File { path, exists }
        }
        Ok(location) => {
            let url = location.to_string();
            let reached = match Store::open_read_only(location).await {
                Ok(store) => {
                    store.close().await;
                    Ok(true)
                }
                Err(StoreError::Postgres(PgStoreError::NotMigrated { .. })) => Ok(false),
                Err(e) => Err(e.to_string()),
            };
            DatabaseCheck::Postgres { url, reached }
        }
    }
}

/// Runs the whole check. `db_flag` is `--db`, which wins over the file's `database`.
pub async fn run(config_path: &Path, db_flag: Option<&DatabaseArg>, timeout: Duration) -> Report {
    let config = check_config_file(config_path);
    let credentials = Credentials::from_environment();
    let locations = crate::config::Locations {
        db: db_flag.cloned(),
        config: Some(config_path.to_path_buf()),
    };
    let database = match &config.settings {
        Some(settings) => Some(check_database(locations.database_for(settings)).await),
        None => None,
    };
    let mut discovery = Discovery::default();
    let mut projects = Vec::new();
    if let Some(settings) = &config.settings {
        let settings = match &credentials {
            Ok(c) => crate::iam::with_credentials(settings.clone(), c).unwrap_or_else(|e| {
                discovery.problems.push(e.to_string());
                settings.clone()
            }),
            Err(_) => settings.clone(),
        };
        let http = http_settings(timeout);
        // One client for the whole check: after one refused signature the
        // others are not sent (five in a row lock the key pair).
        let shared = ApiClient::new(credentials.as_ref().ok().cloned(), http.clone());
        let planned = match &shared {
            Ok(client) => find_projects(&settings, client, &mut discovery).await,
            Err(e) => {
                discovery.problems.push(e.to_string());
                Vec::new()
            }
        };
        for planned in planned {
            let probes = probe_project(&planned, &credentials, &shared, timeout).await;
            let p = planned.project;
            projects.push(ProjectReport {
                absent: Source::ALL
                    .into_iter()
                    .filter(|s| p.configured(*s) && !p.has(*s))
                    .collect(),
                id: p.id,
                region: p.region,
                name: planned.name,
                found: planned.found,
                probes,
            });
        }
    }
    Report {
        config,
        database,
        credentials,
        discovery,
        projects,
    }
}

/// The projects `sync` would sync, asking IAM afresh (nothing is cached).
async fn find_projects(
    settings: &Settings,
    client: &ApiClient,
    discovery: &mut Discovery,
) -> Vec<PlannedProject> {
    discovery.asked = !settings.regional.is_empty() || settings.account.is_some();
    let iam = Iam::new(client, None, true, chrono::Utc::now());
    let plan = crate::iam::plan(settings, &iam).await;
    discovery.account = plan.account;
    discovery
        .problems
        .extend(plan.problems.iter().map(ToString::to_string));
    discovery.notes = plan.notes;
    plan.projects
}

/// One request per source the project syncs.
async fn probe_project(
    planned: &PlannedProject,
    credentials: &Result<Credentials, CredentialError>,
    shared: &Result<ApiClient, ApiError>,
    timeout: Duration,
) -> Vec<Probe> {
    let project = &planned.project;
    let http = http_settings(timeout);
    let mut probes = Vec::new();
    for source in Source::ALL.into_iter().filter(|&s| project.has(s)) {
        // Without credentials each request stands alone, to test the network.
        let client = match (credentials, shared) {
            (Ok(_), Ok(client)) => Ok(client.clone()),
            (Err(_), _) => ApiClient::new(None, http.clone()),
            (_, Err(e)) => Err(ApiError::Setup(e.to_string())),
        };
        let probe = match client {
            Ok(client) => probe(&client, project, source, credentials.as_ref().ok(), timeout).await,
            Err(e) => Probe {
                source,
                url: String::new(),
                outcome: explain(&e, project, source, None, timeout),
            },
        };
        probes.push(probe);
    }
    probes
}
