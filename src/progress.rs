//! Progress on a terminal (indicatif, on stderr): how many NoSQL windows and
//! resources/jobs by ID are done of those known so far, per project when a
//! sync covers several, with an estimate of the time left. Nothing is drawn
//! without a terminal, so cron mail stays quiet.
//!
//! The sync counts once per window, ID or commit (never per row) into
//! atomics; a visible line redraws from them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A kind of work a sync counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// NoSQL time windows listed.
    Windows,
    /// DBSS resources and image jobs fetched by ID.
    Ids,
    /// Jobs stored unfinished before the range, re-checked (by span or by ID).
    Rechecks,
}

impl Work {
    const ALL: [Work; 3] = [Work::Windows, Work::Ids, Work::Rechecks];

    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Work::Windows => "NoSQL windows",
            Work::Ids => "resources/jobs by ID",
            Work::Rechecks => "NoSQL re-checks",
        }
    }
}

/// How much of one kind of work is done, of how much is known so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub done: u64,
    pub total: u64,
}

/// The counts of one line: one project, or the whole sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub windows: Count,
    pub ids: Count,
    pub rechecks: Count,
}

impl Counts {
    fn of(&self, work: Work) -> Count {
        match work {
            Work::Windows => self.windows,
            Work::Ids => self.ids,
            Work::Rechecks => self.rechecks,
        }
    }

    /// `3/8 NoSQL windows · 9/32 resources/jobs by ID`: each kind of work of
    /// which any is known.
    pub fn describe(&self) -> String {
        Work::ALL
            .iter()
            .map(|&work| (work, self.of(work)))
            .filter(|(_, c)| c.total > 0)
            .map(|(work, c)| format!("{}/{} {}", c.done, c.total, work.label()))
            .collect::<Vec<_>>()
            .join(" · ")
    }

    fn done(&self) -> u64 {
        Work::ALL.iter().map(|&w| self.of(w).done).sum()
    }

    fn total(&self) -> u64 {
        Work::ALL.iter().map(|&w| self.of(w).total).sum()
    }
}

/// One line: its counts, and its bar when drawn.
#[derive(Default)]
struct Line {
    done: [AtomicU64; 3],
    total: [AtomicU64; 3],
    bar: Option<ProgressBar>,
    /// Switched to the style with a bar and the time left (once work is done).
    timed: AtomicBool,
}

impl Line {
    fn drawn(bar: ProgressBar) -> Line {
        Line {
            bar: Some(bar),
            ..Line::default()
        }
    }

    fn counts(&self) -> Counts {
        let count = |work: Work| Count {
            done: self.done[work.index()].load(Ordering::Relaxed),
            total: self.total[work.index()].load(Ordering::Relaxed),
        };
        Counts {
            windows: count(Work::Windows),
            ids: count(Work::Ids),
            rechecks: count(Work::Rechecks),
        }
    }

    /// Redraws the bar, if any, with `lead` before the counts.
    fn refresh(&self, lead: Option<String>, timed_style: fn() -> ProgressStyle) {
        let Some(bar) = &self.bar else {
            return;
        };
        let counts = self.counts();
        bar.set_length(counts.total());
        bar.set_position(counts.done());
        if counts.done() > 0 && !self.timed.swap(true, Ordering::Relaxed) {
            bar.set_style(timed_style());
        }
        let text = counts.describe();
        bar.set_message(match lead {
            Some(lead) if text.is_empty() => lead,
            Some(lead) => format!("{lead} · {text}"),
            None => text,
        });
    }
}

/// A template, or indicatif's default if it does not parse (it always does).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

// The time left comes before the counts, which are cut to the terminal's width.

fn total_timed() -> ProgressStyle {
    style("{spinner} {elapsed} [{bar:16}] {eta} left · {wide_msg}")
}

fn project_timed() -> ProgressStyle {
    style("  {prefix} [{bar:16}] {eta} left · {wide_msg}")
}

#[derive(Default)]
struct Board {
    /// `None` when hidden.
    multi: Option<MultiProgress>,
    jobs: AtomicU64,
    /// The whole sync: jobs stored, and the sums of the projects' counts.
    all: Line,
    /// One per project, set when the sync starts; drawn when there are several.
    projects: OnceLock<Vec<(String, Line)>>,
}

impl Board {
    fn project(&self, id: &str) -> Option<&Line> {
        self.projects
            .get()?
            .iter()
            .find_map(|(p, line)| (p == id).then_some(line))
    }
}

/// Shortest project ID prefix shown (a project ID has 32 characters).
const SHORT_ID: usize = 8;

/// The project IDs cut to the shortest length, at least [`SHORT_ID`], that
/// still tells them apart ("…" marks a cut), padded to one width.
fn short_ids(ids: &[&str]) -> Vec<String> {
    let longest = ids.iter().map(|id| id.chars().count()).max().unwrap_or(0);
    let cut = |id: &str, n: usize| -> String { id.chars().take(n).collect() };
    let keep = (SHORT_ID..longest)
        .find(|&n| {
            let distinct: HashSet<String> = ids.iter().map(|id| cut(id, n)).collect();
            distinct.len() == ids.len()
        })
        .unwrap_or(longest);
    let shown: Vec<String> = ids
        .iter()
        .map(|id| {
            let short = cut(id, keep);
            if short.len() < id.len() {
                format!("{short}…")
            } else {
                short
            }
        })
        .collect();
    let width = shown.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    shown.into_iter().map(|s| format!("{s:<width$}")).collect()
}

/// A cheap-to-clone handle; counts without drawing when hidden.
#[derive(Clone, Default)]
pub struct Progress {
    board: Arc<Board>,
}

impl Progress {
    /// Drawn only when stderr is a terminal and the user did not ask for logs
    /// (the caller decides).
    pub fn new(visible: bool) -> Progress {
        if visible {
            Progress::drawn_on(MultiProgress::new())
        } else {
            Progress::hidden()
        }
    }

    pub fn hidden() -> Progress {
        Progress::default()
    }

    fn drawn_on(multi: MultiProgress) -> Progress {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(style("{spinner} {elapsed} {wide_msg}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        let board = Board {
            all: Line::drawn(bar),
            multi: Some(multi),
            ..Board::default()
        };
        Progress {
            board: Arc::new(board),
        }
    }

    /// The projects this sync covers, once, before any count; a line each
    /// when there are several.
    pub fn begin(&self, projects: &[&str]) {
        let lines = projects
            .iter()
            .zip(short_ids(projects))
            .map(|(&id, short)| {
                let bar = self.board.multi.as_ref().filter(|_| projects.len() > 1);
                let line = match bar {
                    Some(multi) => {
                        let bar = multi.add(ProgressBar::new(0));
                        bar.set_style(style("  {prefix} {wide_msg}"));
                        bar.set_prefix(short);
                        Line::drawn(bar)
                    }
                    None => Line::default(),
                };
                (id.to_owned(), line)
            })
            .collect();
        // Only the first call counts: a sync begins once.
        let _ = self.board.projects.set(lines);
    }

    /// `n` more of `work` of `project` are known (planned or discovered).
    pub fn planned(&self, project: &str, work: Work, n: u64) {
        self.add(project, work, n, |line| &line.total);
    }

    /// `n` of `work` of `project` are finished, whether they succeeded or not.
    pub fn done(&self, project: &str, work: Work, n: u64) {
        self.add(project, work, n, |line| &line.done);
    }

    fn add(&self, project: &str, work: Work, n: u64, field: fn(&Line) -> &[AtomicU64; 3]) {
        if n == 0 {
            return;
        }
        let board = &self.board;
        field(&board.all)[work.index()].fetch_add(n, Ordering::Relaxed);
        if let Some(line) = board.project(project) {
            field(line)[work.index()].fetch_add(n, Ordering::Relaxed);
            line.refresh(None, project_timed);
        }
        self.refresh_all();
    }

    /// The writer committed `n` more jobs.
    pub fn jobs_stored(&self, n: u64) {
        self.board.jobs.fetch_add(n, Ordering::Relaxed);
        self.refresh_all();
    }

    fn refresh_all(&self) {
        let jobs = self.board.jobs.load(Ordering::Relaxed);
        self.board
            .all
            .refresh(Some(format!("{jobs} jobs stored")), total_timed);
    }

    /// The counts of `project`, or of the whole sync (`None`).
    pub fn counts(&self, project: Option<&str>) -> Counts {
        match project {
            None => self.board.all.counts(),
            Some(id) => self.board.project(id).map(Line::counts).unwrap_or_default(),
        }
    }

    /// Removes the lines before the summary line is printed.
    pub fn finish(&self) {
        let lines = self.board.projects.get().into_iter().flatten();
        for bar in lines.filter_map(|(_, line)| line.bar.as_ref()) {
            bar.finish_and_clear();
        }
        if let Some(bar) = &self.board.all.bar {
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

#[cfg(test)]
mod tests {
    use indicatif::ProgressDrawTarget;

    use super::*;

    fn count(done: u64, total: u64) -> Count {
        Count { done, total }
    }

    #[test]
    fn counts_and_known_totals_per_project_as_events_arrive() {
        let p = Progress::hidden();
        p.begin(&["p1", "p2"]);
        p.planned("p1", Work::Windows, 4);
        p.done("p1", Work::Windows, 1);
        // Discovery: the known total grows as lists arrive.
        p.planned("p2", Work::Ids, 3);
        p.planned("p2", Work::Ids, 2);
        p.done("p2", Work::Ids, 2);
        p.planned("p1", Work::Rechecks, 1);
        p.jobs_stored(120);
        let p1 = Counts {
            windows: count(1, 4),
            rechecks: count(0, 1),
            ..Counts::default()
        };
        assert_eq!(p.counts(Some("p1")), p1);
        assert_eq!(
            p.counts(Some("p2")),
            Counts {
                ids: count(2, 5),
                ..Counts::default()
            }
        );
        let all = Counts {
            windows: count(1, 4),
            ids: count(2, 5),
            rechecks: count(0, 1),
        };
        assert_eq!(p.counts(None), all);
        assert_eq!(
            all.describe(),
            "1/4 NoSQL windows · 2/5 resources/jobs by ID · 0/1 NoSQL re-checks"
        );
        assert_eq!(p1.describe(), "1/4 NoSQL windows · 0/1 NoSQL re-checks");
        assert_eq!(Counts::default().describe(), "");
        // A project the sync did not begin with counts in the whole only.
        p.done("p3", Work::Ids, 1);
        assert_eq!(p.counts(None).ids, count(3, 5));
        assert_eq!(p.counts(Some("p3")), Counts::default());
    }

    #[test]
    fn lines_show_done_of_total_and_one_per_project_only_when_several() {
        let drawn =
            || Progress::drawn_on(MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));
        let one = drawn();
        one.begin(&["p1"]);
        one.planned("p1", Work::Windows, 8);
        one.done("p1", Work::Windows, 3);
        one.jobs_stored(40);
        let all = one.board.all.bar.as_ref().expect("the total line");
        assert_eq!((all.position(), all.length()), (3, Some(8)));
        assert_eq!(all.message(), "40 jobs stored · 3/8 NoSQL windows");
        assert!(one.board.project("p1").expect("p1").bar.is_none());

        let two = drawn();
        two.begin(&["p1", "project-2"]);
        two.planned("p1", Work::Windows, 2);
        two.planned("project-2", Work::Ids, 5);
        two.done("project-2", Work::Ids, 5);
        let line = |id| {
            two.board
                .project(id)
                .and_then(|l| l.bar.clone())
                .expect("a line")
        };
        assert_eq!(line("p1").message(), "0/2 NoSQL windows");
        assert_eq!(line("p1").prefix(), "p1       ");
        assert_eq!(
            short_ids(&["0549b4a43100d4f3", "7d2f6a1e9b0c4f3a", "0549b4a4"]),
            ["0549b4a43…", "7d2f6a1e9…", "0549b4a4  "]
        );
        assert_eq!(line("project-2").message(), "5/5 resources/jobs by ID");
        assert_eq!(line("project-2").position(), 5);
        let all = two.board.all.bar.as_ref().expect("the total line");
        assert_eq!((all.position(), all.length()), (5, Some(7)));
        two.finish();
        assert!(all.is_finished() && line("p1").is_finished());
        // Hidden: counted, nothing to draw.
        assert!(Progress::new(false).board.multi.is_none());
    }
}
