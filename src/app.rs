//! The library's front door: what `main.rs`, the integration tests and the
//! benchmark call. The commands live in [`crate::commands`]; this module adds
//! the version string and the two pieces the tests share with the commands:
//! a sync of a database under its lock, and a simulated project's settings.

use std::time::Duration;

use anyhow::{Context, Result};

pub use crate::commands::{Exit, UsageError, describe_error, run};
use crate::config::{
    DbssSettings, Endpoints, ImageSettings, NosqlSettings, ProjectSettings, Settings,
};
use crate::http::ApiClient;
use crate::progress::Progress;
use crate::store::{DatabaseLocation, PgStore, Store, SyncLock};
use crate::sync::{HeldLocks, SyncError, SyncOptions, SyncReport};

/// `--version`: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("JOBTRAIL_GIT_COMMIT"),
    ")"
);

/// How long a second sync waits for the first before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the sync lock, opens the database and runs one sync. On SQLite the
/// lock is the file's (one sync at a time); on PostgreSQL it is per project
/// (syncs of other projects, from any host, run at the same time).
pub async fn locked_sync(
    db: impl Into<DatabaseLocation>,
    settings: &Settings,
    client: &ApiClient,
    options: &SyncOptions,
    progress: bool,
) -> Result<SyncReport> {
    let progress = Progress::new(progress);
    let result = match db.into() {
        DatabaseLocation::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create the folder {}", parent.display()))?;
            }
            let _lock = SyncLock::acquire(&path, LOCK_WAIT)?;
            let store = Store::open(path).await?;
            let result = crate::sync::run(settings, &store, client, options, &progress).await;
            store.close().await;
            result
        }
        DatabaseLocation::Postgres(url) => {
            let pg = PgStore::open_url(url).await?;
            let store = Store::Postgres(pg.clone());
            // Taken before the locks (they need the IDs): a failed IAM lookup
            // is recorded as a failed run without them, as it writes no jobs.
            let projects =
                crate::sync::select_projects_or_record(settings, &store, client, options)
                    .await
                    .map_err(usage)?;
            let ids: Vec<&str> = projects.iter().map(|p| p.id.as_str()).collect();
            let locks = HeldLocks::postgres(pg.lock_projects(&ids, LOCK_WAIT).await?);
            let result = crate::sync::run_selected(
                settings, &store, client, options, &progress, &projects, &locks,
            )
            .await;
            locks.release().await;
            store.close().await;
            result
        }
    };
    progress.finish();
    result.map_err(usage)
}

/// A sync's usage mistakes exit 2, its other failures 1.
fn usage(e: SyncError) -> anyhow::Error {
    match e {
        SyncError::Usage(text) => UsageError(text).into(),
        other => anyhow::Error::from(other),
    }
}

/// Project settings that point every source of a simulated project at `base`.
pub fn simulated_project(id: &str, base: &reqwest::Url, history_days: u32) -> ProjectSettings {
    ProjectSettings {
        id: id.to_owned(),
        region: "cn-north-4".to_owned(),
        nosql: Some(NosqlSettings {
            since: Some(chrono::Utc::now() - chrono::Duration::days(i64::from(history_days) + 1)),
        }),
        dbss: Some(DbssSettings {
            resource_ids: Vec::new(),
            discover: true,
        }),
        image: Some(ImageSettings {
            job_ids: Vec::new(),
            discover: true,
        }),
        endpoints: Endpoints::all(base),
        absent: Vec::new(),
    }
}
