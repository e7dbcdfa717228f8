//! Counting 404s: a job or resource known only from the database that no sync
//! finds, several syncs in a row, was deleted in the cloud and is given up on.

use std::collections::HashMap;

use crate::model::Source;
use crate::store::{MissUpdate, StateUpdate, Store, StoreError};

/// A job or resource known only from the database (no longer configured or
/// listed) that answers 404 this many syncs in a row was deleted in the cloud:
/// it is no longer asked for, and keeps its last stored state.
pub const GONE_AFTER_MISSES: u32 = 3;

/// How many syncs in a row each ID known only from the store was not found,
/// as the store keeps it (see [`GONE_AFTER_MISSES`]).
#[derive(Debug)]
pub(super) struct Misses {
    project_id: String,
    source: Source,
    counts: HashMap<String, u32>,
}

impl Misses {
    pub async fn load(
        store: &Store,
        project_id: &str,
        source: Source,
    ) -> Result<Misses, StoreError> {
        Ok(Misses {
            project_id: project_id.to_owned(),
            source,
            counts: store.miss_counts(project_id, source).await?,
        })
    }

    /// Missed often enough to be taken for deleted in the cloud.
    pub fn given_up(&self, id: &str) -> bool {
        self.counts.get(id).is_some_and(|n| *n >= GONE_AFTER_MISSES)
    }

    /// This sync's outcome for `id`: its new count, and the state update that
    /// stores it when it changed (a miss adds one, a find resets to zero).
    pub fn record(&self, id: &str, missing: bool) -> (Option<StateUpdate>, u32) {
        let previous = self.counts.get(id).copied().unwrap_or(0);
        let count = if missing { previous + 1 } else { 0 };
        let update = (count != previous).then(|| StateUpdate::Misses {
            project_id: self.project_id.clone(),
            source: self.source,
            miss: MissUpdate {
                id: id.to_owned(),
                count,
            },
        });
        (update, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn misses(counts: &[(&str, u32)]) -> Misses {
        Misses {
            project_id: "p1".into(),
            source: Source::Dbss,
            counts: counts
                .iter()
                .map(|(id, n)| ((*id).to_owned(), *n))
                .collect(),
        }
    }

    #[test]
    fn a_miss_counts_up_a_find_resets_and_nothing_new_writes_nothing() {
        let m = misses(&[("a", 1), ("gone", GONE_AFTER_MISSES)]);
        let (update, count) = m.record("a", true);
        assert_eq!(count, 2);
        assert!(
            matches!(update, Some(StateUpdate::Misses { miss, .. }) if miss == MissUpdate { id: "a".into(), count: 2 })
        );
        assert_eq!(m.record("a", false).1, 0);
        assert_eq!(m.record("new", false), (None, 0), "no count to reset");
        assert!(m.given_up("gone") && !m.given_up("a") && !m.given_up("new"));
    }
}
