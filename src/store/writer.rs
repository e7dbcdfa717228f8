//! Writing jobs: batched upserts keyed by `(source, project_id, job_id)`, in one
//! transaction with their history and the watermarks they justify. This is the
//! only write path for jobs: first sightings are recorded here, changes by the
//! `jobs_status_changed` trigger (see the migrations).
//!
//! The writer is the one place where a sync's speed is SQLite's speed, so it
//! talks to SQLite through rusqlite on its own blocking thread: statements are
//! prepared once and every value is bound straight from the row, where sqlx
//! would copy each one into two fresh allocations and hop to its worker thread
//! (a third of the writer's time in the benchmark). A second thread copies
//! committed WAL frames into the database, so the writer never stops for a
//! checkpoint. Both crates link the same bundled SQLite; everything else in the
//! store stays on sqlx.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};

use super::state::{StateUpdate, UPSERT_STATE_SQL};
use super::{BUSY_TIMEOUT, SqliteStore, StoreError};
use crate::model::JobRow;
use crate::normalize::format_utc;

/// Rows per multi-row INSERT statement: one statement per hundreds of rows
/// amortizes SQLite's per-statement work (and the statement journal of each
/// page it touches), and stays far under SQLite's 32,766 bound variables.
/// (callgrind, 40,000 jobs: 250 rows 1 % and 1,000 rows 0.5 % more instructions.)
const ROWS_PER_STATEMENT: usize = 500;

/// The statement sizes a batch is cut into: full statements, then the rest by
/// powers of two, so what is left after the full ones takes at most nine
/// statements. A row upserted alone costs about three times its share of a
/// full statement (mostly the statement journal of the pages it touches).
const STATEMENT_ROWS: [usize; 10] = [ROWS_PER_STATEMENT, 256, 128, 64, 32, 16, 8, 4, 2, 1];

/// The writer's page cache (KiB): big enough to hold the key indexes of a few
/// hundred thousand jobs, so a batch does not re-read what it just wrote.
/// SQLite allocates it only as pages are used.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Keeps SQLite's statement journal in memory. Every upsert statement has one
/// (it may fire a trigger), and on disk it was half of all bytes a sync wrote;
/// it holds the pages one statement touches, a few MiB at most.
const TEMP_STORE: &str = "MEMORY";

/// WAL frames (pages) after which the writer itself checkpoints with RESTART.
/// The checkpointer copies frames while the writer appends more, so the WAL
/// never drains by itself and would grow with the whole sync (2 GB for a
/// million jobs); this bounds it near 128 MiB plus one transaction.
const WAL_RESTART_FRAMES: i64 = 32_768;

const COLUMNS: &str = "INSERT INTO jobs (source, project_id, job_id, parent_job_id, job_type, \
     status, raw_status, progress, started_at, ended_at, duration_ms, resource_id, resource_name, \
     error_code, fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id) VALUES ";

/// Never INSERT OR REPLACE: that deletes the row and loses `first_seen_at`.
const ON_CONFLICT: &str = " ON CONFLICT (source, project_id, job_id) DO UPDATE SET \
     parent_job_id = excluded.parent_job_id, job_type = excluded.job_type, \
     status = excluded.status, raw_status = excluded.raw_status, progress = excluded.progress, \
     started_at = excluded.started_at, ended_at = excluded.ended_at, \
     duration_ms = excluded.duration_ms, resource_id = excluded.resource_id, \
     resource_name = excluded.resource_name, error_code = excluded.error_code, \
     fail_reason = excluded.fail_reason, raw_json = excluded.raw_json, \
     last_seen_at = excluded.last_seen_at, last_sync_id = excluded.last_sync_id";

const FIRST_SIGHTINGS_SQL: &str = "INSERT INTO job_status_changes \
     (source, project_id, job_id, old_status, new_status, raw_status, fail_reason, observed_at, sync_id) \
     SELECT source, project_id, job_id, NULL, status, raw_status, fail_reason, last_seen_at, last_sync_id \
     FROM jobs WHERE rowid > ?1 ORDER BY rowid";

/// What one transaction writes: jobs plus the bookkeeping they make true.
#[derive(Debug, Default)]
pub struct JobBatch {
    pub rows: Vec<JobRow>,
    pub state: Vec<StateUpdate>,
}

/// The connection a sync writes jobs through. Blocking: run it on a thread of
/// its own (`tokio::task::spawn_blocking`), never on the async runtime.
pub struct BulkWriter {
    conn: Connection,
    /// Each of [`STATEMENT_ROWS`] with its upsert's SQL, built once.
    statements: Vec<(usize, String)>,
    /// Wakes the checkpointer after each commit; dropped to stop it.
    committed: Option<std::sync::mpsc::SyncSender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// Frames in the WAL at the checkpointer's last pass.
    wal_frames: Arc<AtomicI64>,
}

impl Drop for BulkWriter {
    fn drop(&mut self) {
        self.committed.take();
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for BulkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkWriter").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the bulk writer on this (already migrated) database.
    pub fn bulk_writer(&self) -> Result<BulkWriter, StoreError> {
        BulkWriter::open(self.path(), self.max_pages)
    }

    /// Stores one batch through a bulk writer on a blocking thread: for callers
    /// that write once (tests, the benchmark's bound). A sync keeps one writer.
    pub async fn write_batch(
        &self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: JobBatch,
    ) -> Result<(), StoreError> {
        let mut writer = self.bulk_writer()?;
        tokio::task::spawn_blocking(move || writer.write_batch(sync_id, seen_at, &batch))
            .await
            .expect("the database writer thread panicked")
    }
}

impl BulkWriter {
    fn open(path: &Path, max_pages: Option<i64>) -> Result<BulkWriter, StoreError> {
        let open_error = |source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        };
        // No CREATE: the store opened (and migrated) this file first. No
        // automatic checkpoints: the checkpointer thread and `commit` do them.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Every upsert size, the history and the state statements stay prepared.
        conn.set_prepared_statement_cache_capacity(STATEMENT_ROWS.len() + 4);
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA temp_store = {TEMP_STORE}; \
             PRAGMA wal_autocheckpoint = 0;"
        ))
        .map_err(open_error)?;
        if let Some(pages) = max_pages {
            conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
                .map_err(open_error)?;
        }
        let checkpoints = Connection::open_with_flags(path, flags).map_err(open_error)?;
        checkpoints.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        let wal_frames = Arc::new(AtomicI64::new(0));
        let frames = Arc::clone(&wal_frames);
        let checkpointer = std::thread::Builder::new()
            .name("jobtrail-checkpoint".into())
            .spawn(move || checkpoint_after_commits(&checkpoints, &commits, &frames))
            .map_err(StoreError::Thread)?;
        Ok(BulkWriter {
            conn,
            statements: STATEMENT_ROWS
                .iter()
                .map(|&rows| (rows, upsert_sql(rows)))
                .collect(),
            committed: Some(committed),
            checkpointer: Some(checkpointer),
            wal_frames,
        })
    }

    /// Stores a batch atomically: either every row, its history and every state
    /// update lands, or none. New and changed jobs are counted per run from that
    /// history ([`SqliteStore::run_totals`]), so nothing is counted here.
    pub fn write_batch(
        &mut self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), StoreError> {
        self.write(sync_id, seen_at, batch)?;
        self.commit()
    }

    /// Writes a batch into the open transaction (beginning one if none is
    /// open): nothing is durable, nor visible to other connections, until
    /// [`BulkWriter::commit`]. Several batches per transaction let a backfill
    /// write each hot index page once per commit instead of once per batch. On
    /// an error the whole open transaction is rolled back. The rows and
    /// state updates are marked as seen at `seen_at`.
    pub fn write(
        &mut self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), StoreError> {
        let seen_at = format_utc(seen_at);
        if self.conn.is_autocommit() {
            // IMMEDIATE takes the write lock now, under the busy timeout: a
            // transaction that read first could not wait for it later.
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        let written = self.write_in_transaction(sync_id, &seen_at, batch);
        if written.is_err() && !self.conn.is_autocommit() {
            // Already failing: a rollback error would only hide the first one.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        written
    }

    /// Commits what [`BulkWriter::write`] wrote, if anything.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
            if self.wal_frames.load(Ordering::Relaxed) >= WAL_RESTART_FRAMES {
                self.restart_wal();
            } else if let Some(committed) = &self.committed {
                // Full means a wake-up is already pending: nothing to add.
                let _ = committed.try_send(());
            }
        }
        Ok(())
    }

    /// The checkpointer has copied all but the latest commits: copy those too
    /// and start the WAL over from its first frame. Busy (a reader, or the
    /// checkpointer mid-pass) or failing, it is tried again after a later
    /// commit: the rows are committed either way.
    fn restart_wal(&mut self) {
        let outcome: rusqlite::Result<i64> =
            self.conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0));
        match outcome {
            Ok(0) => self.wal_frames.store(0, Ordering::Relaxed),
            Ok(_) => tracing::debug!("WAL restart busy; trying again after a later commit"),
            Err(e) => tracing::debug!("WAL restart failed (tried again after a later commit): {e}"),
        }
    }

    fn write_in_transaction(
        &mut self,
        sync_id: i64,
        seen_at: &str,
        batch: &JobBatch,
    ) -> Result<(), StoreError> {
        let conn = &self.conn;
        let mut rest = batch.rows.as_slice();
        while !rest.is_empty() {
            let (group, after) = rest.split_at(distinct_prefix_len(rest));
            let last_rowid_before: i64 =
                conn.query_row("SELECT COALESCE(MAX(rowid), 0) FROM jobs", [], |r| r.get(0))?;
            self.upsert_rows(sync_id, seen_at, group)?;
            conn.prepare_cached(FIRST_SIGHTINGS_SQL)?
                .execute([last_rowid_before])?;
            rest = after;
        }
        for update in &batch.state {
            let row = update.row();
            conn.prepare_cached(UPSERT_STATE_SQL)?.execute(params![
                row.project_id,
                row.source.as_str(),
                row.key.as_ref(),
                row.value,
                seen_at
            ])?;
        }
        Ok(())
    }

    /// Upserts rows of distinct jobs, in statements of [`STATEMENT_ROWS`]
    /// (each prepared once per connection).
    fn upsert_rows(&self, sync_id: i64, seen_at: &str, rows: &[JobRow]) -> rusqlite::Result<()> {
        let mut rest = rows;
        for (size, sql) in &self.statements {
            let size = *size;
            if rest.len() < size {
                continue;
            }
            let mut statement = self.conn.prepare_cached(sql)?;
            while rest.len() >= size {
                let (chunk, after) = rest.split_at(size);
                bind_shared(&mut statement, sync_id, seen_at)?;
                for (n, row) in chunk.iter().enumerate() {
                    bind_row(&mut statement, SHARED_VALUES + n * ROW_VALUES, row)?;
                }
                statement.raw_execute()?;
                rest = after;
            }
        }
        Ok(())
    }
}

/// Copies committed WAL frames into the database on a thread of its own, so
/// the writer never stops for a checkpoint's reads, writes and fsyncs. PASSIVE:
/// it never blocks the writer, it copies what it can; whatever it leaves, the
/// last connection to close checkpoints.
fn checkpoint_after_commits(
    conn: &Connection,
    commits: &std::sync::mpsc::Receiver<()>,
    wal_frames: &AtomicI64,
) {
    while commits.recv().is_ok() {
        let pending: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match pending {
            Ok((_, frames, copied)) => {
                tracing::trace!(frames, copied, "checkpoint");
                wal_frames.store(frames, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!("checkpoint failed (the next one retries): {e}"),
        }
    }
}

/// How many leading rows name distinct jobs. A job seen twice in one batch (a
/// status that flipped between two answers) is written in a later group, after
/// its first sighting is recorded, so its history keeps both states in order.
fn distinct_prefix_len(rows: &[JobRow]) -> usize {
    let mut keys = HashSet::with_capacity(rows.len());
    rows.iter()
        .position(|row| !keys.insert((row.source, row.project_id.as_str(), row.job_id.as_str())))
        .unwrap_or(rows.len())
}

/// The upsert of `rows` rows. Parameters are numbered: `?1` (the time seen)
/// and `?2` (the run) are bound once per statement and shared by every row,
/// whose own values follow from `?3` on, [`ROW_VALUES`] each.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::from(COLUMNS);
    for row in 0..rows {
        let first = SHARED_VALUES + 1 + row * ROW_VALUES;
        let own: Vec<String> = (first..first + ROW_VALUES)
            .map(|n| format!("?{n}"))
            .collect();
        if row > 0 {
            sql.push(',');
        }
        // first_seen_at (kept by the upsert for a known job), last_seen_at, last_sync_id.
        sql.push_str(&format!("({},?1,?1,?2)", own.join(",")));
    }
    sql.push_str(ON_CONFLICT);
    sql
}

/// Values every row of a statement shares: `?1` seen at, `?2` the run.
const SHARED_VALUES: usize = 2;

/// Values of one row's own, in the order of [`COLUMNS`].
const ROW_VALUES: usize = 16;

fn bind_shared(
    statement: &mut rusqlite::CachedStatement<'_>,
    sync_id: i64,
    seen_at: &str,
) -> rusqlite::Result<()> {
    statement.raw_bind_parameter(1, seen_at)?;
    statement.raw_bind_parameter(2, sync_id)
}

/// Binds one row's own values after the first `offset` parameters, borrowing
/// every string (SQLite copies it into the statement).
fn bind_row(
    statement: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    row: &JobRow,
) -> rusqlite::Result<()> {
    let values: [&dyn rusqlite::ToSql; ROW_VALUES] = [
        &row.source.as_str(),
        &row.project_id,
        &row.job_id,
        &row.parent_job_id,
        &row.job_type,
        &row.status.as_str(),
        &row.raw_status,
        &row.progress,
        &row.started_at,
        &row.ended_at,
        &row.duration_ms,
        &row.resource_id,
        &row.resource_name,
        &row.error_code,
        &row.fail_reason,
        &row.raw_json,
    ];
    for (i, value) in values.into_iter().enumerate() {
        // Parameters are numbered from 1.
        statement.raw_bind_parameter(offset + i + 1, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, Status};
    use crate::store::{RunOutcome, Store};
    use crate::test_support::{db_with, job};

    /// (job_id, old_status, new_status, sync_id) of every history row, in order.
    async fn history(store: &Store) -> Vec<(String, Option<String>, String, i64)> {
        sqlx::query_as(
            "SELECT job_id, old_status, new_status, sync_id FROM job_status_changes ORDER BY id",
        )
        .fetch_all(store.sqlite_pool())
        .await
        .expect("history")
    }

    fn at(text: &str) -> DateTime<Utc> {
        crate::normalize::parse_api_time(text).expect(text)
    }

    fn nosql(id: &str, status: Status) -> JobRow {
        job(Source::Nosql, id, Some("Backup"), status, None, None)
    }

    #[tokio::test]
    async fn history_records_first_sightings_and_changes_but_not_repeats() {
        let db = db_with(&[
            vec![nosql("a", Status::Running), nosql("b", Status::Running)],
            vec![
                nosql("a", Status::Running),
                nosql("b", Status::Failed),
                nosql("c", Status::Succeeded),
            ],
        ])
        .await;
        let h = |id: &str, old: Option<&str>, new: &str, sync| {
            (id.to_owned(), old.map(str::to_owned), new.to_owned(), sync)
        };
        assert_eq!(
            history(&db.store).await,
            vec![
                h("a", None, "running", 1),
                h("b", None, "running", 1),
                h("b", Some("running"), "failed", 2),
                h("c", None, "succeeded", 2),
            ]
        );
    }

    #[tokio::test]
    async fn a_job_seen_twice_in_one_batch_keeps_both_states_in_order() {
        let rows: Vec<JobRow> = (0..1_203)
            .map(|n| nosql(&format!("job-{n:04}"), Status::Running))
            .chain([nosql("job-0007", Status::Failed)])
            .chain((1_203..1_210).map(|n| nosql(&format!("job-{n:04}"), Status::Running)))
            .collect();
        let db = db_with(&[rows]).await;
        let all = history(&db.store).await;
        assert_eq!(all.len(), 1_211, "1,210 first sightings and one change");
        let of_7: Vec<_> = all.iter().filter(|r| r.0 == "job-0007").collect();
        assert_eq!(of_7.len(), 2);
        assert_eq!(
            (of_7[0].1.as_deref(), of_7[0].2.as_str()),
            (None, "running")
        );
        assert_eq!(
            (of_7[1].1.as_deref(), of_7[1].2.as_str()),
            (Some("running"), "failed")
        );
        let stored: (i64, String) =
            sqlx::query_as("SELECT COUNT(*), MAX(status) FROM jobs WHERE job_id = 'job-0007'")
                .fetch_one(db.store.sqlite_pool())
                .await
                .expect("job");
        assert_eq!(stored, (1, "failed".to_owned()));
        let totals: (i64, i64, i64) =
            sqlx::query_as("SELECT jobs_seen, jobs_new, jobs_changed FROM sync_runs")
                .fetch_one(db.store.sqlite_pool())
                .await
                .expect("run");
        assert_eq!(totals, (1_210, 1_210, 1));
    }

    #[tokio::test]
    async fn a_batch_of_any_size_stores_every_row_once_with_its_values() {
        let sizes = [1, 2, 3, 255, 256, 257, 499, 500, 501, 777, 1_000, 1_023];
        let batches: Vec<Vec<JobRow>> = sizes
            .iter()
            .enumerate()
            .map(|(b, &n)| {
                (0..n)
                    .map(|i| {
                        let mut row = nosql(&format!("b{b}-j{i}"), Status::Failed);
                        row.fail_reason = Some(format!("reason {b}/{i}"));
                        row
                    })
                    .collect()
            })
            .collect();
        let db = db_with(&batches).await;
        let total: usize = sizes.iter().sum();
        let (rows, distinct, reasons_right): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(DISTINCT job_id),
                    SUM(fail_reason = 'reason ' || substr(job_id, 2, instr(job_id, '-') - 2)
                                      || '/' || substr(job_id, instr(job_id, '-j') + 2))
             FROM jobs",
        )
        .fetch_one(db.store.sqlite_pool())
        .await
        .expect("count");
        assert_eq!(
            (rows, distinct, reasons_right),
            (total as i64, total as i64, total as i64)
        );
        assert_eq!(
            history(&db.store).await.len(),
            total,
            "one first sighting each"
        );
    }

    #[tokio::test]
    async fn a_run_counts_only_its_own_history() {
        let db = db_with(&[
            vec![nosql("a", Status::Running)],
            vec![nosql("a", Status::Succeeded), nosql("b", Status::Running)],
        ])
        .await;
        let runs: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT jobs_seen, jobs_new, jobs_changed FROM sync_runs ORDER BY id")
                .fetch_all(db.store.sqlite_pool())
                .await
                .expect("runs");
        assert_eq!(runs, vec![(1, 1, 0), (2, 1, 1)]);
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_no_rows_and_no_history() {
        let db = db_with(&[vec![nosql("a", Status::Running)]]).await;
        let run = db
            .store
            .begin_run(&[Source::Nosql], at("2024-03-21T00:00:00Z"))
            .await
            .expect("run");
        // The second row is refused (as a full disk would), after the first was written.
        let batch = JobBatch {
            rows: vec![nosql("b", Status::Running), nosql("c", Status::Running)],
            state: vec![],
        };
        let mut writer = db.store.sqlite().bulk_writer().expect("writer");
        writer
            .conn
            .execute_batch("CREATE TEMP TRIGGER refuse_c BEFORE INSERT ON jobs WHEN NEW.job_id = 'c' BEGIN SELECT RAISE(ABORT, 'refused'); END;")
            .expect("trigger");
        let err = writer
            .write_batch(run.id, at("2024-03-21T00:00:00Z"), &batch)
            .expect_err("refused");
        assert!(err.to_string().contains("refused"), "{err}");
        db.store
            .finish_run(
                &run,
                crate::store::RunEnd {
                    error: Some("x"),
                    ..crate::store::RunEnd::bare(RunOutcome::Failed, 0, at("2024-03-21T00:00:01Z"))
                },
            )
            .await
            .expect("finish");
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(db.store.sqlite_pool())
            .await
            .expect("count");
        assert_eq!(jobs, 1);
        assert_eq!(history(&db.store).await.len(), 1);
    }

    #[tokio::test]
    async fn a_database_of_the_first_schema_upgrades_with_nothing_lost() {
        let dir = tempfile::tempdir().expect("dir");
        let first_only = dir.path().join("migrations");
        std::fs::create_dir(&first_only).expect("mkdir");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/0001_create_jobs.sql"
            ),
            first_only.join("0001_create_jobs.sql"),
        )
        .expect("copy");
        let path = dir.path().join("old.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
            sqlx::migrate::Migrator::new(first_only.as_path())
                .await
                .expect("migrator")
                .run(&pool)
                .await
                .expect("schema v1");
            sqlx::raw_sql(
                "INSERT INTO sync_runs (id, started_at, status, sources) VALUES (1, 'x', 'succeeded', 'nosql');
                 INSERT INTO jobs (source, project_id, job_id, status, raw_status, raw_json, first_seen_at, last_seen_at, last_sync_id)
                 VALUES ('nosql', 'p1', 'old', 'running', 'RUNNING', '{}', 't1', 't1', 1);
                 UPDATE jobs SET status = 'failed', raw_status = 'FAILED', last_seen_at = 't2' WHERE job_id = 'old';",
            )
            .execute(&pool)
            .await
            .expect("v1 rows");
            pool.close().await;
        }
        let store = Store::open(&path).await.expect("upgrade");
        let old_history = history(&store).await;
        assert_eq!(
            old_history,
            vec![
                ("old".into(), None, "running".into(), 1),
                ("old".into(), Some("running".into()), "failed".into(), 1),
            ]
        );
        let t3 = at("2024-03-21T00:00:03Z");
        let run = store.begin_run(&[Source::Nosql], t3).await.expect("run");
        let batch = JobBatch {
            rows: vec![nosql("old", Status::Failed), nosql("new", Status::Running)],
            state: vec![],
        };
        store.write_batch(run.id, t3, batch).await.expect("write");
        let mut expected = old_history;
        expected.push(("new".into(), None, "running".into(), run.id));
        assert_eq!(
            history(&store).await,
            expected,
            "one first sighting, no trigger left"
        );
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name",
        )
        .fetch_all(store.sqlite_pool())
        .await
        .expect("indexes");
        assert_eq!(
            indexes,
            [
                "jobs_by_job_type",
                "jobs_by_last_sync",
                "jobs_by_parent",
                "jobs_by_resource",
                "jobs_by_status_started",
                "sqlite_autoindex_jobs_1"
            ]
        );
    }

    #[tokio::test]
    async fn batches_of_one_transaction_land_together_at_commit_and_not_before() {
        let db = db_with(&[]).await;
        let t1 = at("2024-03-21T00:00:01Z");
        let run = db.store.begin_run(&[Source::Nosql], t1).await.expect("run");
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs")
                .fetch_one(db.store.sqlite_pool())
                .await
                .expect("count")
        };
        let batch = |ids: &[&str]| JobBatch {
            rows: ids.iter().map(|id| nosql(id, Status::Running)).collect(),
            state: vec![],
        };
        let mut writer = db.store.sqlite().bulk_writer().expect("writer");
        writer
            .write(run.id, t1, &batch(&["a", "b"]))
            .expect("write");
        writer.write(run.id, t1, &batch(&["c"])).expect("write");
        assert_eq!(count().await, 0, "nothing visible before the commit");
        writer.commit().expect("commit");
        assert_eq!(count().await, 3);

        writer.write(run.id, t1, &batch(&["d"])).expect("write");
        drop(writer);
        assert_eq!(
            count().await,
            3,
            "an uncommitted transaction is rolled back"
        );
        assert_eq!(history(&db.store).await.len(), 3);
    }
}
