//! Progress on a terminal (indicatif, on stderr); nothing at all under cron.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A cheap-to-clone handle; a no-op when hidden.
#[derive(Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    jobs: AtomicU64,
    windows: AtomicU64,
    ids: AtomicU64,
}

impl Progress {
    /// Shown only when stderr is a terminal and the user did not ask for logs.
    pub fn new(visible: bool) -> Progress {
        let bar = visible.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            counts: Arc::default(),
        }
    }

    pub fn hidden() -> Progress {
        Progress::default()
    }

    pub fn jobs_stored(&self, n: u64) {
        self.counts.jobs.fetch_add(n, Ordering::Relaxed);
        self.refresh();
    }

    pub fn windows_done(&self, n: u64) {
        self.counts.windows.fetch_add(n, Ordering::Relaxed);
        self.refresh();
    }

    pub fn ids_done(&self, n: u64) {
        self.counts.ids.fetch_add(n, Ordering::Relaxed);
        self.refresh();
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} jobs stored · {} NoSQL windows · {} resources/jobs by ID",
                self.counts.jobs.load(Ordering::Relaxed),
                self.counts.windows.load(Ordering::Relaxed),
                self.counts.ids.load(Ordering::Relaxed)
            ));
        }
    }

    /// Removes the bar before the summary line is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A bar over a known number of rows (`jobtrail copy`); a no-op when hidden.
pub struct RowBar {
    bar: Option<ProgressBar>,
}

impl RowBar {
    /// Shown only when `visible` (a terminal, no logs asked for).
    pub fn new(visible: bool, total: u64) -> RowBar {
        let bar = visible.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed} [{wide_bar}] {pos}/{len} rows ({per_sec}, {eta} left) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        RowBar { bar }
    }

    /// Says which table is being copied.
    pub fn stage(&self, what: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what);
        }
    }

    pub fn advance(&self, rows: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(rows as u64);
        }
    }

    /// Removes the bar before the summary line is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
