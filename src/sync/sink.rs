//! The channel from the fetchers to the single writer: rows, and the
//! bookkeeping those rows justify, in the order they were sent (so a watermark
//! never lands before the rows it stands for). Rows wait in it up to a byte
//! budget, and what was cut or left out of them is tallied for the run's report.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::notes::NoteLog;
use crate::model::JobRow;
use crate::sources::{Parsed, RowSink, WriterGone};
use crate::store::StateUpdate;

/// Messages waiting for the writer before fetchers wait for it.
const CHANNEL_CAPACITY: usize = 128;

/// Bytes of rows waiting for the writer before fetchers wait for it: with
/// every job at its caps (`crate::limits`) the message count alone would let
/// hundreds of megabytes wait.
const QUEUED_ROW_BYTES: usize = 64 * 1024 * 1024;

/// What fetchers hand to the single writer, in order.
#[derive(Debug)]
pub(super) enum Found {
    /// Rows, and their share of the byte budget (released once written).
    Rows(Vec<JobRow>, OwnedSemaphorePermit),
    State(StateUpdate),
}

/// The fetchers' end of the writer's channel; the sync closes it by dropping
/// every clone.
#[derive(Debug, Clone)]
pub(super) struct Sink {
    tx: mpsc::Sender<Found>,
    budget: Arc<Semaphore>,
    notes: Arc<Mutex<NoteLog>>,
}

impl Sink {
    /// A sink and the writer's end of its channel.
    pub fn channel() -> (Sink, mpsc::Receiver<Found>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let sink = Sink {
            tx,
            budget: Arc::new(Semaphore::new(QUEUED_ROW_BYTES)),
            notes: Arc::default(),
        };
        (sink, rx)
    }

    /// Sends a state update after everything sent so far.
    pub async fn state(&self, update: StateUpdate) -> Result<(), WriterGone> {
        self.tx
            .send(Found::State(update))
            .await
            .map_err(|_| WriterGone)
    }

    /// The writer has stopped (a database error, lost locks): whatever is
    /// fetched now cannot be stored, so fetchers start nothing new.
    pub fn writer_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// What was cut or left out so far; shared, so it outlives the sink.
    pub fn notes(&self) -> Arc<Mutex<NoteLog>> {
        Arc::clone(&self.notes)
    }
}

/// Roughly what a row holds in memory.
fn row_bytes(row: &JobRow) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    std::mem::size_of::<JobRow>()
        + row.project_id.len()
        + row.job_id.len()
        + row.raw_json.len()
        + [
            &row.parent_job_id,
            &row.job_type,
            &row.raw_status,
            &row.started_at,
            &row.ended_at,
            &row.resource_id,
            &row.resource_name,
            &row.error_code,
            &row.fail_reason,
        ]
        .into_iter()
        .map(text)
        .sum::<usize>()
}

impl RowSink for Sink {
    async fn rows(&self, parsed: Parsed) -> Result<(), WriterGone> {
        if !parsed.notes.is_empty() {
            self.notes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(parsed.notes);
        }
        if parsed.rows.is_empty() {
            return Ok(());
        }
        let bytes = parsed.rows.iter().map(row_bytes).sum::<usize>();
        // A message larger than the whole budget waits for all of it.
        let permits = u32::try_from(bytes.min(QUEUED_ROW_BYTES)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| WriterGone)?;
        self.tx
            .send(Found::Rows(parsed.rows, permit))
            .await
            .map_err(|_| WriterGone)
    }
}
