//! What a sync reports: its failures and warnings as typed values (printed,
//! and stored in `sync_runs.error` and `sync_scopes.error`, as text), and what
//! each (project, source) pair did.

use std::fmt;

use crate::http::ApiError;
use crate::model::Source;
use crate::normalize::format_utc;
use crate::sources::FetchError;
use crate::sources::nosql::Window;
use crate::store::RunOutcome;
use crate::store::{PgLockError, StoreError};
use crate::text::for_terminal;

use super::misses::GONE_AFTER_MISSES;

/// The (project, source) pair a message is about: `nosql (project p1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub source: Source,
    pub project_id: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (project {})", self.source, self.project_id)
    }
}

/// The part of a (project, source) pair that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// A NoSQL window of this sync's range.
    Window(Window),
    /// A NoSQL span re-read for the stale jobs in it.
    Recheck(Window),
    /// A discovery list, by name ("audit instance list").
    List(&'static str),
    /// One resource or job, by kind ("resource", "job") and ID.
    Item { kind: &'static str, id: String },
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Window(w) => write!(f, "window {} … {}", format_utc(w.start), format_utc(w.end)),
            Unit::Recheck(w) => write!(
                f,
                "re-check of {} … {}",
                format_utc(w.start),
                format_utc(w.end)
            ),
            Unit::List(name) => f.write_str(name),
            // IDs can come from the cloud (discovery): shown on one line, escaped.
            Unit::Item { kind, id } => write!(f, "{kind} {}", for_terminal(id)),
        }
    }
}

/// Why a pair's calls were not all sent.
const NOT_SENT: &str =
    "not synced (or only in part), because a request was refused authentication or permission";

/// One thing a sync could not do. Each names source, project and what failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The writer stopped on a database error: nothing after it was stored.
    #[error("database: {0}")]
    Writer(StoreError),
    /// The writer task panicked.
    #[error("database writer crashed: {0}")]
    WriterCrashed(tokio::task::JoinError),
    /// The project locks were lost (their PostgreSQL session ended), so the
    /// writer stopped before its next commit: another sync of the projects
    /// may be running.
    #[error(
        "{0}; this sync stopped writing: what it stored before is kept, and the next sync fetches the rest"
    )]
    LockLost(PgLockError),
    /// One unit could not be fetched (or handed to the writer); the rest went on.
    #[error("{scope} {unit}: {error}")]
    Fetch {
        scope: Scope,
        unit: Unit,
        error: FetchError,
    },
    /// Reading what to fetch from the database failed, so the pair stopped.
    #[error("{scope}: database: {error}")]
    Store { scope: Scope, error: StoreError },
    /// Calls were not sent after the credentials, or this pair's permission,
    /// were refused (once per pair).
    #[error("{scope}: {NOT_SENT}")]
    AuthRefused { scope: Scope },
    /// Jobs left out of answers whose other jobs were stored: each lacked its
    /// ID or status, or had a field of the wrong type. Their windows and
    /// resources count as read, so one bad job cannot block them forever.
    #[error(
        "{scope}: {jobs} job(s) could not be read and were left out; the rest of their answers was stored ({why})"
    )]
    JobsLeftOut {
        scope: Scope,
        jobs: u64,
        why: String,
    },
}

impl SyncFailure {
    /// The failure without the scope it is about, for that scope's own record
    /// (`sync_scopes.error`, whose row already names project and source).
    pub fn within_scope(&self) -> String {
        match self {
            SyncFailure::Fetch { unit, error, .. } => format!("{unit}: {error}"),
            SyncFailure::Store { error, .. } => format!("database: {error}"),
            SyncFailure::AuthRefused { .. } => NOT_SENT.into(),
            other => other.to_string(),
        }
    }
}

/// Something worth knowing that did not fail the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncWarning {
    /// A NoSQL job no re-check has found `GONE_AFTER_MISSES` syncs in a row.
    JobGone { scope: Scope, id: String },
    /// A resource or job known only from the store that answered 404
    /// `GONE_AFTER_MISSES` syncs in a row.
    ItemGone {
        scope: Scope,
        kind: &'static str,
        id: String,
    },
    /// Jobs stored with values cut to the storage caps (`crate::limits`).
    ValuesCut {
        scope: Scope,
        jobs: u64,
        /// Each column cut, in how many jobs, and the largest size seen.
        fields: String,
        /// A few of the jobs' IDs, quoted.
        examples: String,
    },
    /// Answers that were not valid UTF-8, stored with U+FFFD in place of each
    /// invalid sequence.
    NotUtf8 {
        scope: Scope,
        answers: u64,
        sequences: u64,
        first_path: String,
    },
    /// IDs from a discovery list or the database that cannot be a URL path
    /// segment (`.`, `..`, with `/`): not requested.
    UnsafeIds {
        scope: Scope,
        kind: &'static str,
        count: usize,
        /// A few of them, quoted, and why.
        examples: String,
    },
}

impl fmt::Display for SyncWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncWarning::JobGone { scope, id } => write!(
                f,
                "{scope} job {}: not found by {GONE_AFTER_MISSES} syncs in a row, so it was probably deleted in the cloud; it is no longer re-checked and keeps its last stored state (`sync --full` lists its days again)",
                for_terminal(id)
            ),
            SyncWarning::ItemGone { scope, kind, id } => write!(
                f,
                "{scope} {kind} {}: answered 404 {GONE_AFTER_MISSES} syncs in a row, so it was probably deleted in the cloud; it is no longer re-checked and keeps its last stored state (`sync --full` asks again)",
                for_terminal(id)
            ),
            SyncWarning::ValuesCut {
                scope,
                jobs,
                fields,
                examples,
            } => write!(
                f,
                "{scope}: {jobs} job(s) stored with values cut to the storage limits: {fields}; each cut ends with `…[cut: N bytes]`, and a cut raw_json says why in its `_jobtrail` member (e.g. job {examples})"
            ),
            SyncWarning::NotUtf8 {
                scope,
                answers,
                sequences,
                first_path,
            } => write!(
                f,
                "{scope}: {answers} answer(s) were not valid UTF-8 ({sequences} invalid byte sequence(s), first in GET {first_path}); stored with the replacement character U+FFFD in their place"
            ),
            SyncWarning::UnsafeIds {
                scope,
                kind,
                count,
                examples,
            } => write!(
                f,
                "{scope}: {count} {kind} ID(s) not requested, because they cannot be sent in a URL path: {examples}"
            ),
        }
    }
}

/// The stored error text: every failure, capped so one bad run cannot bloat the table.
pub(super) fn summarize_errors<E: fmt::Display>(errors: &[E]) -> String {
    const SHOWN: usize = 50;
    let mut text = errors
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if errors.len() > SHOWN {
        text.push_str(&format!("\n… and {} more", errors.len() - SHOWN));
    }
    text
}

/// What `sync_runs.error` keeps of a run: its failures, then its warnings
/// (each line starting `warning: `), capped; `None` for a run with neither.
pub(super) fn run_record(errors: &[SyncFailure], warnings: &[SyncWarning]) -> Option<String> {
    let lines: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .chain(warnings.iter().map(|w| format!("warning: {w}")))
        .collect();
    (!lines.is_empty()).then(|| summarize_errors(&lines))
}

/// What one (project, source) pair did.
#[derive(Debug, Default)]
pub(super) struct UnitResult {
    /// Windows, resources or jobs fetched and handed to the writer.
    pub succeeded: usize,
    pub errors: Vec<SyncFailure>,
    pub warnings: Vec<SyncWarning>,
    /// A call of this pair was refused authentication or permission.
    pub auth_refused: bool,
    /// The credentials themselves were refused: the whole run fails.
    pub run_refused: bool,
    /// Some calls were not sent because the credentials were refused.
    pub skipped: bool,
}

impl UnitResult {
    /// Adds what a discovery list found, or records why it could not be read
    /// (the configured IDs are still fetched).
    pub fn discovered(
        &mut self,
        ids: &mut Vec<String>,
        found: Result<Vec<String>, FetchError>,
        scope: &Scope,
        list: &'static str,
    ) {
        match found {
            Ok(found) => {
                self.succeeded += 1;
                ids.extend(found);
            }
            Err(e) => self.fail(scope, Unit::List(list), e),
        }
    }

    /// Records a failed unit. Calls skipped after an auth refusal are summed up
    /// once per pair (see [`UnitResult::finish`]), not one by one.
    pub fn fail(&mut self, scope: &Scope, unit: Unit, error: FetchError) {
        if let FetchError::Api(e) = &error {
            let skipped = matches!(e, ApiError::Skipped { .. });
            self.auth_refused |= e.is_auth() || skipped;
            self.run_refused |= e.stops_run();
            if skipped {
                self.skipped = true;
                return;
            }
        }
        self.errors.push(SyncFailure::Fetch {
            scope: scope.clone(),
            unit,
            error,
        });
    }

    /// How the pair ended: succeeded without a failure; failed when nothing
    /// of it succeeded or the credentials were refused; partial otherwise.
    pub fn outcome(&self) -> RunOutcome {
        if self.errors.is_empty() {
            RunOutcome::Succeeded
        } else if self.succeeded == 0 || self.auth_refused {
            RunOutcome::Failed
        } else {
            RunOutcome::Partial
        }
    }

    /// The pair's result once it ended, or why reading the database stopped it.
    pub fn finish(result: Result<UnitResult, StoreError>, scope: Scope) -> UnitResult {
        let mut result = result.unwrap_or_else(|error| UnitResult {
            errors: vec![SyncFailure::Store {
                scope: scope.clone(),
                error,
            }],
            ..UnitResult::default()
        });
        if result.skipped {
            result.errors.push(SyncFailure::AuthRefused { scope });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_capped() {
        let errors: Vec<String> = (0..60).map(|i| format!("e{i}")).collect();
        let text = summarize_errors(&errors);
        assert!(text.contains("e49") && !text.contains("e50\n") && text.ends_with("and 10 more"));
    }
}
