//! `jobtrail check`: is this setup ready to sync? The configuration (every
//! problem at once, each with its line and key: `lint`), the credentials (kind
//! and origin, never a value), and one cheap real request per project and
//! enabled source (`probe`), each failure explained with what to do about it
//! (`advice`), printed as a checklist (`render`). Nothing is stored.

mod advice;
mod lint;
mod probe;
mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use advice::explain;
pub use lint::{ConfigReport, Problem, check_config, check_config_file, lint};
pub use probe::{Outcome, Probe, http_settings, probe, probe_call};
pub use render::render;

use crate::auth::{CredentialError, Credentials};
use crate::config::{ConfigError, DatabaseArg};
use crate::http::{ApiClient, ApiError};
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
    /// Per project: its id, region and the probes of its enabled sources.
    pub projects: Vec<(String, String, Vec<Probe>)>,
}

impl Report {
    /// Problems that stop a sync (warnings and skipped probes do not count).
    pub fn problem_count(&self) -> usize {
        let probes = self
            .projects
            .iter()
            .flat_map(|(_, _, probes)| probes)
            .filter(|p| matches!(p.outcome, Outcome::Fail { .. }))
            .count();
        let database = self
            .database
            .as_ref()
            .is_some_and(DatabaseCheck::is_problem);
        self.config.problems.len()
            + usize::from(self.credentials.is_err())
            + usize::from(database)
            + probes
    }

    /// Ready to sync: a valid configuration with a project, credentials, and
    /// every enabled source answering.
    pub fn is_ready(&self) -> bool {
        self.problem_count() == 0
            && self.config.settings.is_some()
            && !self.projects.is_empty()
            && self
                .projects
                .iter()
                .flat_map(|(_, _, probes)| probes)
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
    let mut projects = Vec::new();
    if let Some(settings) = &config.settings {
        let http = http_settings(timeout);
        // One client for the whole check: after one refused signature the
        // others are not sent (five in a row lock the key pair).
        let shared = ApiClient::new(credentials.as_ref().ok().cloned(), http.clone());
        for project in &settings.projects {
            let mut probes = Vec::new();
            for source in Source::ALL.into_iter().filter(|&s| project.has(s)) {
                // Without credentials each request stands alone, to test the network.
                let client = match (&credentials, &shared) {
                    (Ok(_), Ok(client)) => Ok(client.clone()),
                    (Err(_), _) => ApiClient::new(None, http.clone()),
                    (_, Err(e)) => Err(ApiError::Setup(e.to_string())),
                };
                let probe = match client {
                    Ok(client) => {
                        probe(&client, project, source, credentials.as_ref().ok(), timeout).await
                    }
                    Err(e) => Probe {
                        source,
                        url: String::new(),
                        outcome: explain(&e, project, source, None, timeout),
                    },
                };
                probes.push(probe);
            }
            projects.push((project.id.clone(), project.region.clone(), probes));
        }
    }
    Report {
        config,
        database,
        credentials,
        projects,
    }
}
