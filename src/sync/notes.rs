//! What had to be changed in the cloud's answers to store them during one
//! sync — values cut to the storage caps, jobs left out of otherwise good
//! answers, answers that were not valid UTF-8 — tallied per (project, source)
//! into the run's warnings and failures, so the user is told of each.

use std::collections::BTreeMap;

use super::outcome::{Scope, SyncFailure, SyncWarning};
use crate::http::LossyAnswers;
use crate::limits::Cut;
use crate::model::Source;
use crate::sources::Note;

/// Job IDs (or reasons) quoted per message; the rest are counted.
const EXAMPLES: usize = 3;

/// The notes of one sync so far.
#[derive(Debug, Default)]
pub(crate) struct NoteLog {
    by_scope: BTreeMap<(Source, String), Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    cut_jobs: u64,
    /// Per column: jobs cut there, the largest size and the deepest nesting seen.
    fields: BTreeMap<&'static str, (u64, usize, usize)>,
    cut_examples: Vec<String>,
    refused: u64,
    refused_examples: Vec<String>,
}

/// A value from the cloud, quoted so no control character reaches a terminal.
fn quoted(s: &str) -> String {
    format!(
        "\"{}\"",
        crate::text::truncate_chars(&s.escape_debug().to_string(), 80)
    )
}

impl NoteLog {
    pub(crate) fn add(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::Cut(cut) => {
                    let tally = self
                        .by_scope
                        .entry((cut.source, cut.project_id))
                        .or_default();
                    tally.cut_jobs += 1;
                    for Cut {
                        field,
                        bytes,
                        depth,
                    } in cut.cuts
                    {
                        let entry = tally.fields.entry(field).or_default();
                        *entry = (entry.0 + 1, entry.1.max(bytes), entry.2.max(depth));
                    }
                    if tally.cut_examples.len() < EXAMPLES {
                        tally.cut_examples.push(quoted(&cut.job_id));
                    }
                }
                Note::Refused {
                    source,
                    project_id,
                    why,
                } => {
                    let tally = self.by_scope.entry((source, project_id)).or_default();
                    tally.refused += 1;
                    if tally.refused_examples.len() < EXAMPLES {
                        tally
                            .refused_examples
                            .push(crate::text::truncate_chars(&why, 300));
                    }
                }
            }
        }
    }

    /// The warnings (cuts, lossy answers) and failures (jobs left out) to report.
    pub(crate) fn outcome(&self, lossy: Vec<LossyAnswers>) -> (Vec<SyncWarning>, Vec<SyncFailure>) {
        let mut warnings = Vec::new();
        let mut failures = Vec::new();
        for ((source, project_id), tally) in &self.by_scope {
            let scope = Scope {
                source: *source,
                project_id: project_id.clone(),
            };
            if tally.cut_jobs > 0 {
                let fields = tally
                    .fields
                    .iter()
                    .map(|(field, &(jobs, bytes, depth))| {
                        let mut text = format!("{field} in {jobs} (up to {bytes} bytes");
                        if depth > crate::limits::MAX_JSON_DEPTH {
                            text.push_str(&format!(", nested up to {depth} levels deep"));
                        }
                        text.push(')');
                        text
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                warnings.push(SyncWarning::ValuesCut {
                    scope: scope.clone(),
                    jobs: tally.cut_jobs,
                    fields,
                    examples: tally.cut_examples.join(", "),
                });
            }
            if tally.refused > 0 {
                failures.push(SyncFailure::JobsLeftOut {
                    scope,
                    jobs: tally.refused,
                    why: tally.refused_examples.join("; "),
                });
            }
        }
        for l in lossy {
            warnings.push(SyncWarning::NotUtf8 {
                scope: Scope {
                    source: l.source,
                    project_id: l.project_id,
                },
                answers: l.answers,
                sequences: l.invalid_sequences,
                first_path: crate::text::truncate_chars(
                    &l.first_path.escape_debug().to_string(),
                    200,
                ),
            });
        }
        (warnings, failures)
    }
}
