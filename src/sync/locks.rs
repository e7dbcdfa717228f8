//! The project locks a PostgreSQL sync holds while it writes (SPEC §8), as
//! the writer sees them. The locks live as long as the session that took
//! them; if it ends mid-sync (a server restart, a firewall dropping an idle
//! connection, `pg_terminate_backend`), another host may take them and sync
//! the same projects. So the writer checks the session before each commit and
//! now and then meanwhile, and on a lost lock stops as it does on a database
//! error: nothing more is committed, the run ends failed, and what it
//! committed before stays.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::store::{PgLockError, PgProjectLock};

/// How often a sync checks its locking session while it commits nothing
/// (every commit checks first anyway): a lost lock is noticed within this
/// even while fetching stalls, and the round trip keeps the otherwise silent
/// session from being dropped as idle by a firewall, NAT or
/// `idle_session_timeout` (they commonly allow a minute or more).
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(20);

/// The locks one sync holds, shared by whoever took them (and releases them
/// after the run) and the writer (which checks them). None on SQLite: the
/// file lock belongs to this process and cannot be lost while it runs.
#[derive(Debug, Clone, Default)]
pub struct HeldLocks {
    lock: Option<Arc<Mutex<PgProjectLock>>>,
}

impl HeldLocks {
    /// No locks to check (SQLite).
    pub fn none() -> HeldLocks {
        HeldLocks::default()
    }

    /// PostgreSQL's project locks, taken before the run.
    pub fn postgres(lock: PgProjectLock) -> HeldLocks {
        HeldLocks {
            lock: Some(Arc::new(Mutex::new(lock))),
        }
    }

    /// Fails once the locking session has ended: the locks went with it.
    pub async fn check(&self) -> Result<(), PgLockError> {
        match &self.lock {
            Some(lock) => lock.lock().await.check().await,
            None => Ok(()),
        }
    }

    /// Releases the locks now (ending their session); a clone still held
    /// elsewhere releases them when it is dropped.
    pub async fn release(self) {
        if let Some(lock) = self.lock
            && let Ok(lock) = Arc::try_unwrap(lock)
        {
            lock.into_inner().release().await;
        }
    }
}
