//! The single writer: the one task that owns the database while a sync runs,
//! and the policy that decides when its transaction is committed, the same
//! for both backends' writers. It commits only while the sync's project
//! locks are held (`locks`), and stops at the first commit they are not.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::locks::{CHECK_EVERY, HeldLocks};
use super::sink::Found;
use crate::progress::Progress;
use crate::store::{BulkWriter, JobBatch, PgLockError, PgWriter, Store, StoreError, StoreWriter};

/// Rows the writer takes from the channel at a time.
const ROWS_PER_BATCH: usize = 5_000;

/// When the writer commits the transaction it is filling.
#[derive(Debug, Clone, Copy)]
pub(super) struct CommitPolicy {
    /// Rows per transaction while jobs keep arriving. Each commit rewrites
    /// every index page it touched (job IDs are random, so that is most of the
    /// primary key), so bigger transactions cost fewer bytes per job; a killed
    /// sync loses at most one transaction, which the next sync fetches again.
    max_rows: usize,
    /// The longest a transaction stays open: rows that arrive slowly (a slow
    /// or throttled API) are durable within this, yet still share a commit.
    max_open: Duration,
    /// Committed when no rows have arrived for this long, so a transaction
    /// never stays open while fetching stalls (retries, a long listing).
    when_idle: Duration,
    /// How often the locks are checked between commits ([`CHECK_EVERY`]).
    check_locks_every: Duration,
}

pub(super) const COMMIT_POLICY: CommitPolicy = CommitPolicy {
    max_rows: 20_000,
    max_open: Duration::from_secs(1),
    when_idle: Duration::from_millis(100),
    check_locks_every: CHECK_EVERY,
};

/// Why the writer stopped before the fetchers were done: nothing after it
/// was committed.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sync's project locks are gone: another sync may hold them now.
    #[error(transparent)]
    LockLost(PgLockError),
}

/// What the writer must still hold to commit: the sync's project locks
/// ([`HeldLocks`]; a stand-in in tests).
pub(super) trait Held: Send + Sync + 'static {
    fn check(&self) -> impl Future<Output = Result<(), PgLockError>> + Send;
}

impl Held for HeldLocks {
    async fn check(&self) -> Result<(), PgLockError> {
        HeldLocks::check(self).await
    }
}

/// The locks as the writer checks them: before every commit, and every
/// `every` while it commits nothing.
struct LockChecks<'a, H> {
    held: &'a H,
    every: Duration,
    last: Instant,
}

impl<H: Held> LockChecks<'_, H> {
    fn new(held: &H, policy: CommitPolicy) -> LockChecks<'_, H> {
        LockChecks {
            held,
            every: policy.check_locks_every,
            last: Instant::now(),
        }
    }

    async fn now(&mut self) -> Result<(), WriteError> {
        self.held.check().await.map_err(WriteError::LockLost)?;
        self.last = Instant::now();
        Ok(())
    }

    async fn if_due(&mut self) -> Result<(), WriteError> {
        if self.last.elapsed() >= self.every {
            self.now().await?;
        }
        Ok(())
    }
}

/// What the commit policy drives: a writer that adds batches to an open
/// transaction and commits it. SQLite's (`BulkWriter`) blocks, so its loop
/// runs on a thread of its own; PostgreSQL's (`PgWriter`) is async.
trait BatchWriter {
    /// How long a batch may wait for more rows before it is written, when
    /// the channel is momentarily empty. Each PostgreSQL batch costs several
    /// round trips and statement plans, so fewer, larger batches; SQLite's
    /// in-process writer gains nothing from waiting.
    const GATHER: Duration = Duration::ZERO;

    async fn write(&mut self, sync_id: i64, batch: &JobBatch) -> Result<(), StoreError>;
    async fn commit(&mut self) -> Result<(), StoreError>;
}

impl BatchWriter for BulkWriter {
    async fn write(&mut self, sync_id: i64, batch: &JobBatch) -> Result<(), StoreError> {
        BulkWriter::write(self, sync_id, Utc::now(), batch)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        BulkWriter::commit(self)
    }
}

impl BatchWriter for PgWriter {
    const GATHER: Duration = Duration::from_millis(20);

    async fn write(&mut self, sync_id: i64, batch: &JobBatch) -> Result<(), StoreError> {
        Ok(PgWriter::write(self, sync_id, Utc::now(), batch).await?)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        Ok(PgWriter::commit(self).await?)
    }
}

/// The single writer: drains the channel, gathering whatever is waiting into
/// batches of up to [`ROWS_PER_BATCH`] rows. Fetchers run ahead of it until
/// the bounded channel is full (back-pressure keeps memory flat), and it
/// never waits on the network. Batches share a transaction as `policy` says:
/// a fast backfill commits a few large transactions, a slow one is durable
/// within a second, and no transaction stays open while fetching stalls. Rows
/// and the state updates sent after them (watermarks) land in the same commit
/// or the rows in an earlier one. On SQLite the loop runs on a thread of its
/// own (rusqlite blocks); on PostgreSQL it is a task like any other.
pub(super) async fn write_all<H: Held>(
    store: Store,
    sync_id: i64,
    rx: mpsc::Receiver<Found>,
    progress: Progress,
    policy: CommitPolicy,
    locks: H,
) -> Result<(), WriteError> {
    match store.writer().await? {
        StoreWriter::Sqlite(mut writer) => {
            // The timeouts need the runtime's timer: callers run a multi-thread runtime.
            let runtime = tokio::runtime::Handle::current();
            let thread = tokio::task::spawn_blocking(move || {
                let mut checks = LockChecks::new(&locks, policy);
                runtime.block_on(drain(
                    &mut *writer,
                    &mut checks,
                    sync_id,
                    rx,
                    &progress,
                    policy,
                ))
            });
            thread.await.expect("the database writer thread panicked")
        }
        StoreWriter::Postgres(mut writer) => {
            let mut checks = LockChecks::new(&locks, policy);
            let written = drain(&mut writer, &mut checks, sync_id, rx, &progress, policy).await;
            // An uncommitted transaction is rolled back here.
            writer.close().await;
            written
        }
    }
}

/// The commit policy's loop: batches from the channel into `writer` until
/// the fetchers are done, committed as `policy` says while the locks hold.
/// A lost lock stops it with the open transaction uncommitted (the caller
/// closes the writer, which rolls it back).
async fn drain<W: BatchWriter, H: Held>(
    writer: &mut W,
    locks: &mut LockChecks<'_, H>,
    sync_id: i64,
    mut rx: mpsc::Receiver<Found>,
    progress: &Progress,
    policy: CommitPolicy,
) -> Result<(), WriteError> {
    // The open transaction: when its first batch was written, and its rows.
    let mut open: Option<(Instant, usize)> = None;
    loop {
        // `None`: time to commit (or, with nothing open, to check the
        // locks); `Some(None)`: the fetchers are done.
        let next = match open {
            None => tokio::time::timeout(policy.check_locks_every, rx.recv())
                .await
                .ok(),
            Some((opened, _)) => {
                let left = policy.max_open.saturating_sub(opened.elapsed());
                tokio::time::timeout(policy.when_idle.min(left), rx.recv())
                    .await
                    .ok()
            }
        };
        locks.if_due().await?;
        let first = match next {
            None => {
                commit(writer, locks, &mut open, progress).await?;
                continue;
            }
            Some(None) => break,
            Some(Some(found)) => found,
        };
        let mut batch = JobBatch::default();
        // The rows' share of the queue's byte budget, released once written.
        let mut permits = Vec::new();
        add(&mut batch, &mut permits, first);
        let gather_until = Instant::now() + W::GATHER;
        while batch.rows.len() < ROWS_PER_BATCH {
            match rx.try_recv() {
                Ok(found) => add(&mut batch, &mut permits, found),
                Err(mpsc::error::TryRecvError::Empty) if !W::GATHER.is_zero() => {
                    let left = gather_until.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, rx.recv()).await {
                        Ok(Some(found)) => add(&mut batch, &mut permits, found),
                        // Time is up, or the fetchers are done (the loop sees it next).
                        _ => break,
                    }
                }
                Err(_) => break,
            }
        }
        let (opened, rows) = open.get_or_insert_with(|| (Instant::now(), 0));
        writer.write(sync_id, &batch).await?;
        drop(permits);
        *rows += batch.rows.len();
        if *rows >= policy.max_rows || opened.elapsed() >= policy.max_open {
            commit(writer, locks, &mut open, progress).await?;
        }
    }
    commit(writer, locks, &mut open, progress).await
}

/// Commits the open transaction, if any, and counts its rows as stored.
///
/// The locks are checked right before each commit, not only every
/// [`CHECK_EVERY`]: a commit made after the session ended could interleave
/// with another host's sync of the same projects, and the periodic check
/// alone would leave up to that long for it. The check is one round trip on
/// the locking session per commit, and commits are few (`CommitPolicy`: at
/// most a few per second, each of up to 20,000 rows). What is left is a
/// session that ends between the check and the COMMIT, one round trip later.
async fn commit<W: BatchWriter, H: Held>(
    writer: &mut W,
    locks: &mut LockChecks<'_, H>,
    open: &mut Option<(Instant, usize)>,
    progress: &Progress,
) -> Result<(), WriteError> {
    let Some((_, rows)) = open.take() else {
        return Ok(());
    };
    locks.now().await?;
    writer.commit().await?;
    progress.jobs_stored(rows as u64);
    Ok(())
}

fn add(batch: &mut JobBatch, permits: &mut Vec<tokio::sync::OwnedSemaphorePermit>, found: Found) {
    match found {
        Found::Rows(rows, permit) => {
            batch.rows.extend(rows);
            permits.push(permit);
        }
        Found::State(update) => batch.state.push(update),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;
    use crate::test_support::{TestDb, db_with, job};

    /// Jobs stored in the database, as another connection sees them.
    async fn stored(store: &Store) -> i64 {
        store.job_count().await.expect("count")
    }

    /// Polls until `want` jobs are visible, for at most ten seconds.
    async fn until_stored(store: &Store, want: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = stored(store).await;
            if n >= want || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A stand-in for a sync's project locks, lost when the test says so.
    #[derive(Debug, Clone, Default)]
    struct TestLocks(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl TestLocks {
        fn lose(&self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Held for TestLocks {
        async fn check(&self) -> Result<(), PgLockError> {
            if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(PgLockError::Lost {
                    projects: vec!["p1".into()],
                    cause: "terminating connection due to administrator command".into(),
                });
            }
            Ok(())
        }
    }

    type Writer = tokio::task::JoinHandle<Result<(), WriteError>>;

    /// A writer on a fresh database with `policy`, fed through the returned channel.
    async fn writer_on_empty_db(policy: CommitPolicy) -> (TestDb, mpsc::Sender<Found>, Writer) {
        writer_holding(policy, HeldLocks::none()).await
    }

    /// [`writer_on_empty_db`], committing only while `locks` hold.
    async fn writer_holding<H: Held>(
        policy: CommitPolicy,
        locks: H,
    ) -> (TestDb, mpsc::Sender<Found>, Writer) {
        let db = db_with(&[]).await;
        let run = db
            .store
            .begin_run(&[Source::Nosql], Utc::now())
            .await
            .expect("run");
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_all(
            db.store.clone(),
            run.id,
            rx,
            Progress::new(false),
            policy,
            locks,
        ));
        (db, tx, writer)
    }

    fn running_jobs(ids: &[&str]) -> Found {
        let permit = std::sync::Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .expect("permit");
        Found::Rows(
            ids.iter()
                .map(|id| {
                    job(
                        Source::Nosql,
                        id,
                        None,
                        crate::model::Status::Running,
                        None,
                        None,
                    )
                })
                .collect(),
            permit,
        )
    }

    /// Longer than any test runs: a commit rule that never fires.
    const NEVER: Duration = Duration::from_secs(3600);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_are_committed_when_fetching_pauses_not_only_when_it_ends() {
        let policy = CommitPolicy {
            max_rows: 1_000,
            max_open: NEVER,
            when_idle: Duration::from_millis(50),
            check_locks_every: NEVER,
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        tx.send(running_jobs(&["a", "b"])).await.expect("send");
        assert_eq!(
            until_stored(&db.store, 2).await,
            2,
            "committed during the pause, the channel still open"
        );
        tx.send(running_jobs(&["c"])).await.expect("send");
        assert_eq!(until_stored(&db.store, 3).await, 3);
        drop(tx);
        writer.await.expect("writer task").expect("writer");
        assert_eq!(stored(&db.store).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_that_keep_arriving_are_committed_once_the_transaction_is_old_enough() {
        let policy = CommitPolicy {
            max_rows: 100_000,
            max_open: Duration::from_millis(200),
            when_idle: NEVER,
            check_locks_every: NEVER,
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        let feeder = {
            let tx = tx.clone();
            tokio::spawn(async move {
                for n in 0..2_000 {
                    if tx.send(running_jobs(&[&format!("j{n}")])).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let seen = until_stored(&db.store, 1).await;
        assert!(seen >= 1, "rows committed while the trickle went on");
        assert!(!feeder.is_finished(), "the trickle was still going");
        feeder.abort();
        let _ = feeder.await;
        drop(tx);
        writer.await.expect("writer task").expect("writer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reaches_its_size_is_committed_at_once() {
        let policy = CommitPolicy {
            max_rows: 3,
            max_open: NEVER,
            when_idle: NEVER,
            check_locks_every: NEVER,
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        tx.send(running_jobs(&["a", "b"])).await.expect("send");
        tx.send(running_jobs(&["c"])).await.expect("send");
        assert_eq!(until_stored(&db.store, 3).await, 3, "channel still open");
        drop(tx);
        writer.await.expect("writer task").expect("writer");
    }

    /// The writer's end, which must come within ten seconds.
    async fn ended(writer: Writer) -> Result<(), WriteError> {
        tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("the writer stopped")
            .expect("writer task")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_committed_once_the_locks_are_lost_and_what_was_stays() {
        let policy = CommitPolicy {
            max_rows: 1_000,
            max_open: NEVER,
            when_idle: Duration::from_millis(50),
            check_locks_every: NEVER,
        };
        let locks = TestLocks::default();
        let (db, tx, writer) = writer_holding(policy, locks.clone()).await;
        tx.send(running_jobs(&["a", "b"])).await.expect("send");
        assert_eq!(until_stored(&db.store, 2).await, 2, "committed while held");

        locks.lose();
        tx.send(running_jobs(&["c"])).await.expect("send");
        let lost = ended(writer).await.expect_err("the writer stops");
        assert!(matches!(lost, WriteError::LockLost(_)), "{lost}");
        assert!(
            lost.to_string()
                .contains("lost the sync lock of project(s) p1"),
            "{lost}"
        );
        assert_eq!(stored(&db.store).await, 2, "c was never committed");
        assert!(
            tx.send(running_jobs(&["d"])).await.is_err(),
            "the fetchers find the writer gone"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_with_nothing_to_commit_still_notices_lost_locks() {
        let policy = CommitPolicy {
            max_rows: 1_000,
            max_open: NEVER,
            when_idle: NEVER,
            check_locks_every: Duration::from_millis(50),
        };
        let locks = TestLocks::default();
        let (_db, tx, writer) = writer_holding(policy, locks.clone()).await;
        locks.lose();
        // No rows, and the channel stays open: only the periodic check can tell.
        let lost = ended(writer).await.expect_err("the writer stops");
        assert!(matches!(lost, WriteError::LockLost(_)), "{lost}");
        drop(tx);
    }
}
