//! The library's front door: what `main.rs`, the integration tests and the
//! benchmark call. The commands live in [`crate::commands`]; this module adds
//! the version string and the two pieces the tests share with the commands:
//! a sync of a database file under its lock, and a simulated project's settings.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

pub use crate::commands::{Exit, UsageError, describe_error, run};
use crate::config::{
    DbssSettings, Endpoints, ImageSettings, NosqlSettings, ProjectSettings, Settings,
};
use crate::http::ApiClient;
use crate::progress::Progress;
use crate::store::{Store, SyncLock};
use crate::sync::{SyncError, SyncOptions, SyncReport};

/// `--version`: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("JOBTRAIL_GIT_COMMIT"),
    ")"
);

/// How long a second sync waits for the first before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the database's sync lock, opens it and runs one sync.
pub async fn locked_sync(
    db: &Path,
    settings: &Settings,
    client: &ApiClient,
    options: &SyncOptions,
    progress: bool,
) -> Result<SyncReport> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    let _lock = SyncLock::acquire(db, LOCK_WAIT)?;
    let store = Store::open(db).await?;
    let progress = Progress::new(progress);
    let result = crate::sync::run(settings, &store, client, options, &progress).await;
    progress.finish();
    store.close().await;
    result.map_err(|e| match e {
        SyncError::Usage(text) => UsageError(text).into(),
        other => anyhow::Error::from(other),
    })
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
