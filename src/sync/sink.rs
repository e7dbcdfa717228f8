//! The channel from the fetchers to the single writer: rows, and the
//! bookkeeping those rows justify, in the order they were sent (so a watermark
//! never lands before the rows it stands for).

use tokio::sync::mpsc;

use crate::model::JobRow;
use crate::sources::{RowSink, WriterGone};
use crate::store::StateUpdate;

/// Messages waiting for the writer before fetchers wait for it.
const CHANNEL_CAPACITY: usize = 128;

/// What fetchers hand to the single writer, in order.
#[derive(Debug)]
pub(super) enum Found {
    Rows(Vec<JobRow>),
    State(StateUpdate),
}

/// The fetchers' end of the writer's channel; the sync closes it by dropping
/// every clone.
#[derive(Debug, Clone)]
pub(super) struct Sink {
    tx: mpsc::Sender<Found>,
}

impl Sink {
    /// A sink and the writer's end of its channel.
    pub fn channel() -> (Sink, mpsc::Receiver<Found>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        (Sink { tx }, rx)
    }

    /// Sends a state update after everything sent so far.
    pub async fn state(&self, update: StateUpdate) -> Result<(), WriterGone> {
        self.tx
            .send(Found::State(update))
            .await
            .map_err(|_| WriterGone)
    }
}

impl RowSink for Sink {
    async fn rows(&self, rows: Vec<JobRow>) -> Result<(), WriterGone> {
        if rows.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Found::Rows(rows))
            .await
            .map_err(|_| WriterGone)
    }
}
