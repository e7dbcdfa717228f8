//! Writing jobs to PostgreSQL in bulk, per batch and all in the transaction
//! that commits it: a killed sync leaves no partial batch, and a watermark
//! never lands without the rows that justify it.
//!
//! Two ways in. A batch of jobs not stored yet (a backfill) goes straight
//! into `jobs` by binary COPY, their first sightings into
//! `job_status_changes` the same way: each job is written once, as a plain
//! COPY would. Any other batch goes by binary COPY into a temporary staging
//! table, then one `INSERT … SELECT … ON CONFLICT DO UPDATE` into `jobs`.
//! Which way a batch takes is a guess from the last one; a wrong guess costs
//! one COPY that meets a stored job, rolled back to a savepoint, and the
//! batch goes the general way.
//!
//! History is recorded exactly as on SQLite: a row for each job stored for
//! the first time, and, by the `jobs_status_changed` trigger, one for each
//! change of status, raw status or failure reason (see the migration). A job
//! seen twice in one batch (its status flipped between two answers) is
//! upserted in a later round than its first sighting, so its history keeps
//! both states in order and the stored row is the last one. The rows of one
//! job come in the same order as on SQLite; across jobs, within a round,
//! first sightings (in batch order) take their ids before changes (in the
//! order the upsert meets them), where SQLite interleaves them.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::copy::{CopyRows, JOB_COLUMNS, SIGHTING_COLUMNS, STAGED_COLUMNS, without_nul};
use super::state::upsert_state_rows;
use super::{PgStore, PgStoreError, connect, to_millis};
use crate::model::{JobRow, Source};
use crate::store::{JobBatch, StateUpdate};

/// Bytes per COPY message: large enough to amortize each round trip, small
/// enough that the server starts parsing early.
const COPY_CHUNK: usize = 1 << 20;

/// Local buffers for the staging table, per writer session (PostgreSQL's
/// default is 8 MB): a large batch stays in memory instead of going through
/// temporary files. Allocated only as it is used.
const TEMP_BUFFERS: &str = "64MB";

/// The staging table, one per writer session. Its rows vanish at every commit
/// and rollback; a second batch in one transaction truncates it first.
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS jobtrail_staging (
    ord integer NOT NULL, grp integer NOT NULL,
    source text NOT NULL, project_id text NOT NULL, job_id text NOT NULL,
    parent_job_id text, job_type text, status text NOT NULL, raw_status text,
    progress bigint, started_at timestamptz, ended_at timestamptz, duration_ms bigint,
    resource_id text, resource_name text, error_code text, fail_reason text,
    raw_json jsonb NOT NULL
) ON COMMIT DELETE ROWS";

/// First sightings of one staged round (`$3`): the staged jobs not stored
/// yet, in batch order, seen at `$1` by run `$2`. Run before the round's
/// upsert. A lateral subquery with a LIMIT, not `NOT EXISTS`: the planner
/// turns that into a hash anti-join that reads all of `jobs` for every
/// batch; this costs one primary-key lookup per staged job.
const FIRST_SIGHTINGS_SQL: &str = "INSERT INTO job_status_changes
    (source, project_id, job_id, old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
SELECT s.source, s.project_id, s.job_id, NULL, s.status, s.raw_status, s.fail_reason, $1, $2
FROM jobtrail_staging s
LEFT JOIN LATERAL (
    SELECT true AS stored FROM jobs j
    WHERE j.source = s.source AND j.project_id = s.project_id AND j.job_id = s.job_id
    LIMIT 1) j ON true
WHERE s.grp = $3 AND j.stored IS NULL
ORDER BY s.ord";

/// The upsert of one round (`$3`), seen at `$1` by run `$2`. Never a delete
/// and insert: a known job keeps its `first_seen_at`. Not sorted by `ord`: a
/// round names each job once, so the order only decides the ids of changes
/// to different jobs, and a sort of whole rows (raw_json and all) spills to
/// disk at the default `work_mem`.
const UPSERT_SQL: &str = "INSERT INTO jobs (source, project_id, job_id, parent_job_id, job_type,
    status, raw_status, progress, started_at, ended_at, duration_ms, resource_id, resource_name,
    error_code, fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id)
SELECT source, project_id, job_id, parent_job_id, job_type, status, raw_status, progress,
    started_at, ended_at, duration_ms, resource_id, resource_name, error_code, fail_reason,
    raw_json, $1, $1, $2
FROM jobtrail_staging WHERE grp = $3
ON CONFLICT (source, project_id, job_id) DO UPDATE SET
    parent_job_id = excluded.parent_job_id, job_type = excluded.job_type,
    status = excluded.status, raw_status = excluded.raw_status, progress = excluded.progress,
    started_at = excluded.started_at, ended_at = excluded.ended_at,
    duration_ms = excluded.duration_ms, resource_id = excluded.resource_id,
    resource_name = excluded.resource_name, error_code = excluded.error_code,
    fail_reason = excluded.fail_reason, raw_json = excluded.raw_json,
    last_seen_at = excluded.last_seen_at, last_sync_id = excluded.last_sync_id";

/// The connection a sync writes jobs through, with its own session (so its
/// staging table and open transaction are nobody else's). Dropping it closes
/// the connection, and the server rolls back whatever was not committed.
pub struct PgWriter {
    conn: PgConnection,
    /// Batches written in the open transaction (none: no transaction open).
    batches_open: usize,
    /// Whether the staging table holds rows of the open transaction.
    staged_open: bool,
    /// Set while a write is under way: still set at the next call, the last
    /// one was abandoned half-way and the session's state is unknown.
    busy: bool,
    /// Whether the next batch is likely all jobs not stored yet (a
    /// backfill): then its rows go straight into `jobs`, and a job stored
    /// already fails that COPY and sends the batch the general way. Set by
    /// what the last batch found, so an incremental sync pays for one
    /// failed COPY and a backfill never probes.
    expect_new: bool,
}

impl std::fmt::Debug for PgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWriter")
            .field("batches_open", &self.batches_open)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Opens a writer on a connection of its own.
    pub async fn bulk_writer(&self) -> Result<PgWriter, PgStoreError> {
        let mut conn = connect(&self.url, self.url.options().clone()).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET temp_buffers = '{TEMP_BUFFERS}'; {CREATE_STAGING}"
        )))
        .execute(&mut conn)
        .await?;
        Ok(PgWriter {
            conn,
            batches_open: 0,
            staged_open: false,
            busy: false,
            expect_new: true,
        })
    }

    /// Stores one batch through a writer of its own: for callers that write
    /// once (tests, the benchmark's bound). A sync keeps one writer.
    pub async fn write_batch(
        &self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), PgStoreError> {
        let mut writer = self.bulk_writer().await?;
        writer.write_batch(sync_id, seen_at, batch).await?;
        writer.close().await;
        Ok(())
    }
}

impl PgWriter {
    /// Stores a batch atomically: every row, its history and every state
    /// update, or none of them.
    pub async fn write_batch(
        &mut self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), PgStoreError> {
        self.write(sync_id, seen_at, batch).await?;
        self.commit().await
    }

    /// Writes a batch into the open transaction (beginning one if none is
    /// open): nothing is durable, nor visible to other sessions, until
    /// [`PgWriter::commit`]. On an error the whole open transaction is rolled
    /// back.
    pub async fn write(
        &mut self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), PgStoreError> {
        if self.busy {
            return Err(PgStoreError::WriterInterrupted);
        }
        let seen_at = to_millis(seen_at);
        self.busy = true;
        let written = self.write_rows(sync_id, seen_at, batch).await;
        let sent = !matches!(written, Err(PgStoreError::BadValue { .. }));
        if written.is_err() && sent && self.batches_open > 0 {
            // Already failing: a rollback error would only hide the first one.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            self.batches_open = 0;
        }
        self.busy = false;
        written
    }

    /// Commits what [`PgWriter::write`] wrote, if anything.
    pub async fn commit(&mut self) -> Result<(), PgStoreError> {
        if self.busy {
            return Err(PgStoreError::WriterInterrupted);
        }
        if self.batches_open > 0 {
            self.busy = true;
            let committed = sqlx::raw_sql("COMMIT").execute(&mut self.conn).await;
            // Committed or not, the transaction is over (a failed COMMIT rolls back).
            self.batches_open = 0;
            self.busy = false;
            committed?;
        }
        Ok(())
    }

    /// Closes the session; an uncommitted transaction is rolled back.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// This writer's server process, as `pg_stat_activity.pid` shows it.
    #[cfg(test)]
    pub(super) async fn backend_pid(&mut self) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut self.conn)
            .await
            .expect("backend pid")
    }

    /// [`PgWriter::write`]'s work. The batch is encoded before anything is
    /// written: a value that cannot be stored fails it with nothing to undo.
    async fn write_rows(
        &mut self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: &JobBatch,
    ) -> Result<(), PgStoreError> {
        let encoded = encode(batch, self.expect_new, seen_at, sync_id)?;
        let conn = &mut self.conn;
        if self.batches_open == 0 {
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        } else if self.staged_open {
            sqlx::raw_sql("TRUNCATE jobtrail_staging")
                .execute(&mut *conn)
                .await?;
        }
        self.batches_open += 1;
        self.staged_open = false;
        let mut staged = encoded.staged;
        if let Some(fresh) = encoded.fresh {
            sqlx::raw_sql("SAVEPOINT fresh_jobs")
                .execute(&mut *conn)
                .await?;
            match copy_fresh(conn, &fresh).await {
                Ok(()) => {
                    sqlx::raw_sql("RELEASE SAVEPOINT fresh_jobs")
                        .execute(&mut *conn)
                        .await?;
                }
                Err(e) if is_unique_violation(&e) => {
                    sqlx::raw_sql("ROLLBACK TO SAVEPOINT fresh_jobs")
                        .execute(&mut *conn)
                        .await?;
                    self.expect_new = false;
                    staged = encode(batch, false, seen_at, sync_id)?.staged;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if staged.rounds > 0 {
            self.staged_open = true;
            copy_binary(&mut *conn, "jobtrail_staging", STAGED_COLUMNS, &staged.copy).await?;
            for round in 0..staged.rounds {
                let firsts = run_round(conn, FIRST_SIGHTINGS_SQL, seen_at, sync_id, round).await?;
                if round == 0 {
                    self.expect_new = firsts == staged.first_round;
                }
                run_round(conn, UPSERT_SQL, seen_at, sync_id, round).await?;
            }
        }
        let state: Vec<_> = batch.state.iter().map(StateUpdate::row).collect();
        upsert_state_rows(&mut *conn, &state, seen_at).await
    }
}

/// One round's statement over the staging table (seen at `$1` by run `$2`,
/// round `$3`); the rows it wrote.
async fn run_round(
    conn: &mut PgConnection,
    sql: &'static str,
    seen_at: DateTime<Utc>,
    sync_id: i64,
    round: i32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(seen_at)
        .bind(sync_id)
        .bind(round)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Writes jobs new to `jobs` and their first sightings.
async fn copy_fresh(conn: &mut PgConnection, fresh: &FreshRows) -> Result<(), sqlx::Error> {
    copy_binary(&mut *conn, "jobs", JOB_COLUMNS, &fresh.jobs).await?;
    copy_binary(
        conn,
        "job_status_changes",
        SIGHTING_COLUMNS,
        &fresh.sightings,
    )
    .await
}

/// One binary COPY of `data` (from [`CopyRows`]) into `columns` of `table`.
async fn copy_binary(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    let mut copy_in = conn
        .copy_in_raw(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    for chunk in data.chunks(COPY_CHUNK) {
        copy_in.send(chunk).await?;
    }
    copy_in.finish().await?;
    Ok(())
}

/// A duplicate key: a row the COPY took for new is stored already.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A row's place in its batch, as the staging table's `ord`.
fn ord_of(ord: usize, row: &JobRow) -> Result<i32, PgStoreError> {
    i32::try_from(ord).map_err(|_| PgStoreError::BadValue {
        job: row.job_id.clone(),
        column: "batch",
        problem: "is beyond 2^31 rows".to_owned(),
    })
}

/// A job's key as PostgreSQL stores it (see [`without_nul`]).
type Key<'a> = (Source, Cow<'a, str>, Cow<'a, str>);

fn key(row: &JobRow) -> Key<'_> {
    (
        row.source,
        without_nul(&row.project_id),
        without_nul(&row.job_id),
    )
}

/// A batch ready to send: the jobs taken for new (written straight into
/// `jobs`, with their first sightings) and the others (staged and upserted).
struct Encoded {
    fresh: Option<FreshRows>,
    staged: StagedRows,
}

/// Jobs taken for new, each once, as COPY data for `jobs` and for their
/// history rows.
struct FreshRows {
    jobs: Vec<u8>,
    sightings: Vec<u8>,
}

/// Rows for the staging table, how many upsert rounds they need, and how
/// many of them are in the first.
struct StagedRows {
    copy: Vec<u8>,
    rounds: i32,
    first_round: u64,
}

/// Splits and encodes `batch`. With `direct`, a job's first row goes
/// straight into `jobs` (without, it is staged: the way that handles any
/// row); every other row is staged, its round
/// being how many times its job appeared earlier in the batch, so each round
/// names every job at most once (PostgreSQL refuses to upsert one row twice
/// in a statement) and a job's later sightings follow its earlier ones.
fn encode(
    batch: &JobBatch,
    direct: bool,
    seen_at: DateTime<Utc>,
    sync_id: i64,
) -> Result<Encoded, PgStoreError> {
    let bytes: usize = batch.rows.iter().map(|r| r.raw_json.len() + 256).sum();
    let mut jobs = CopyRows::with_capacity(bytes);
    let mut sightings = CopyRows::with_capacity(batch.rows.len() * 128);
    let mut staged = CopyRows::with_capacity(0);
    let mut earlier: HashMap<Key<'_>, i32> = HashMap::with_capacity(batch.rows.len());
    let (mut fresh, mut rounds, mut first_round) = (0, 0, 0);
    for (ord, row) in batch.rows.iter().enumerate() {
        let key = key(row);
        let seen = earlier.entry(key).or_insert(0);
        let round = *seen;
        *seen += 1;
        if round == 0 && direct {
            jobs.push_job(row, seen_at, sync_id)?;
            sightings.push_first_sighting(row, seen_at, sync_id)?;
            fresh += 1;
        } else {
            staged.push_staged(ord_of(ord, row)?, round, row)?;
            rounds = rounds.max(round + 1);
            first_round += u64::from(round == 0);
        }
    }
    Ok(Encoded {
        fresh: (fresh > 0).then(|| FreshRows {
            jobs: jobs.finish(),
            sightings: sightings.finish(),
        }),
        staged: StagedRows {
            copy: staged.finish(),
            rounds,
            first_round,
        },
    })
}
