//! One sync per project at a time, across every host writing one database
//! (SPEC §8): a session advisory lock per project, held on a connection of its
//! own for the life of the guard. The server releases it when that session
//! ends, however it ends: a sync killed with SIGKILL never blocks the next.
//!
//! The locking session names its host and process in `application_name`, so a
//! sync that finds a project taken can say who holds it. (Session locks need a
//! real session: through a pooler such as PgBouncer, use session pooling.)

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;

use super::runs::RUN_LOCK_SPACE;
use super::{PgStore, PgStoreError, connect};

/// How often a waiting sync tries again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// What prefixes the locking session's `application_name`.
const APPLICATION: &str = "jobtrail sync";

/// The sync locks of some projects, held until dropped (or
/// [`PgProjectLock::release`]d).
pub struct PgProjectLock {
    conn: PgConnection,
    projects: Vec<String>,
    backend_pid: i32,
    /// Why the session ended, once a check has found it gone: the locks
    /// never come back, so later checks say so without a round trip.
    lost: Option<String>,
}

impl std::fmt::Debug for PgProjectLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgProjectLock")
            .field("projects", &self.projects)
            .field("backend_pid", &self.backend_pid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgLockError {
    #[error(
        "another sync of project {project_id} is running on this database ({holder}); try again when it has finished"
    )]
    Busy { project_id: String, holder: String },
    #[error(
        "lost the sync lock of project(s) {}: the database session holding it ended ({cause}), so another sync of them may be running now",
        projects.join(", ")
    )]
    Lost {
        projects: Vec<String>,
        cause: String,
    },
    #[error(transparent)]
    Store(#[from] PgStoreError),
}

impl From<sqlx::Error> for PgLockError {
    fn from(e: sqlx::Error) -> PgLockError {
        PgLockError::Store(PgStoreError::Sql(e))
    }
}

impl PgStore {
    /// Takes the sync locks of `project_ids`, waiting up to `wait` for syncs
    /// of the same projects (on any host) to finish; syncs of other projects
    /// are not waited for. Locks are taken in one global order, so two hosts
    /// locking overlapping sets never wait on each other in a circle.
    pub async fn lock_projects<S: AsRef<str>>(
        &self,
        project_ids: &[S],
        wait: Duration,
    ) -> Result<PgProjectLock, PgLockError> {
        let mut keys: Vec<(i64, &str)> = project_ids
            .iter()
            .map(|p| (project_lock_key(p.as_ref()), p.as_ref()))
            .collect();
        keys.sort_unstable();
        keys.dedup_by_key(|(key, _)| *key);
        let options = self.url.options().clone().application_name(&holder_name());
        let mut conn = connect(&self.url, options).await?;
        let deadline = Instant::now() + wait;
        let mut held = 0;
        while held < keys.len() {
            let (key, project_id) = keys[held];
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if taken {
                held += 1;
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                let holder = describe_holder(&mut conn, key).await?;
                return Err(PgLockError::Busy {
                    project_id: project_id.to_owned(),
                    holder: holder.unwrap_or_else(|| "holder unknown".to_owned()),
                });
            }
            tokio::time::sleep(RETRY_EVERY.min(deadline - now)).await;
        }
        let backend_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        Ok(PgProjectLock {
            conn,
            projects: keys.iter().map(|(_, p)| (*p).to_owned()).collect(),
            backend_pid,
            lost: None,
        })
    }
}

impl PgProjectLock {
    /// The projects locked, in locking order.
    pub fn projects(&self) -> &[String] {
        &self.projects
    }

    /// The server process of the locking session (`pg_stat_activity.pid`).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// Fails if the locking session has ended (the server restarted, a
    /// firewall dropped an idle connection, an admin's `pg_terminate_backend`):
    /// the locks went with it. A live session still holds them, since nothing
    /// else in it unlocks. A sync calls it before each commit and now and
    /// then, which also keeps the session from idling out.
    pub async fn check(&mut self) -> Result<(), PgLockError> {
        if self.lost.is_none()
            && let Err(e) = sqlx::query("SELECT 1").execute(&mut self.conn).await
        {
            // The server's own words when it ended the session ("terminating
            // connection due to administrator command"), else what the
            // connection saw (reset, closed).
            self.lost = Some(match e {
                sqlx::Error::Database(db) => db.message().to_owned(),
                other => other.to_string(),
            });
        }
        match &self.lost {
            None => Ok(()),
            Some(cause) => Err(PgLockError::Lost {
                projects: self.projects.clone(),
                cause: cause.clone(),
            }),
        }
    }

    /// Releases the locks now, ending the session.
    pub async fn release(self) {
        let _ = sqlx::Connection::close(self.conn).await;
    }
}

/// The advisory lock key of a project's syncs: stable across hosts, builds
/// and platforms (the first 8 bytes of a SHA-256), and never in the key space
/// of run locks (`runs`).
pub(super) fn project_lock_key(project_id: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"jobtrail sync lock\0")
        .chain_update(project_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let key = i64::from_be_bytes(first);
    if (key >> 32) as u32 == RUN_LOCK_SPACE {
        key ^ (1 << 32)
    } else {
        key
    }
}

/// The locking session's `application_name`: the pid first, since PostgreSQL
/// cuts names at 63 bytes and a long host name should lose its end, not the pid.
fn holder_name() -> String {
    format!(
        "{APPLICATION} pid={} host={}",
        std::process::id(),
        host_name()
    )
}

/// This machine's name, for messages that say where a sync runs.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Who holds the advisory lock `key` in this database: "host H, pid P" for a
/// jobtrail sync, else the session's server pid, application and client.
async fn describe_holder(conn: &mut PgConnection, key: i64) -> Result<Option<String>, PgLockError> {
    let holder: Option<(i32, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT l.pid, a.application_name, host(a.client_addr)
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = (($1 >> 32) & 4294967295)::oid AND l.objid = ($1 & 4294967295)::oid
         LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(holder.map(|(backend, application, client)| {
        application
            .as_deref()
            .and_then(jobtrail_holder)
            .unwrap_or_else(|| {
                format!(
                    "held by PostgreSQL session {backend}, application {:?}, client {}",
                    application.unwrap_or_default(),
                    client.unwrap_or_else(|| "local".to_owned())
                )
            })
    }))
}

/// "host H, pid P" from a jobtrail sync's `application_name`.
fn jobtrail_holder(application: &str) -> Option<String> {
    let rest = application.strip_prefix(APPLICATION)?.trim_start();
    let rest = rest.strip_prefix("pid=")?;
    let (pid, host) = rest.split_once(" host=")?;
    Some(format!("host {host}, pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_lock_keys_are_stable_and_apart_from_run_locks() {
        assert_eq!(project_lock_key("p1"), project_lock_key("p1"));
        assert_ne!(project_lock_key("p1"), project_lock_key("p2"));
        for n in 0..10_000 {
            let key = project_lock_key(&format!("project-{n}"));
            assert_ne!((key >> 32) as u32, RUN_LOCK_SPACE);
        }
    }

    #[test]
    fn postgres_lock_holder_reads_back_from_the_application_name() {
        assert_eq!(
            jobtrail_holder("jobtrail sync pid=42 host=cron-3.example"),
            Some("host cron-3.example, pid 42".to_owned())
        );
        assert_eq!(jobtrail_holder("psql"), None);
        assert!(
            holder_name().starts_with(&format!("jobtrail sync pid={} host=", std::process::id()))
        );
    }
}
