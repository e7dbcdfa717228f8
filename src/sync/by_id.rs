//! The by-ID sources (DBSS resources, image jobs): which IDs to ask for
//! (configured, discovered, and those with jobs stored unfinished, less those
//! settled or given up on), each one fetched and its rows handed on, and the
//! 404s of IDs known only from the store counted.

use std::collections::HashSet;
use std::future::Future;

use futures::StreamExt;

use super::misses::{GONE_AFTER_MISSES, Misses};
use super::outcome::{Scope, SyncWarning, Unit, UnitResult};
use super::{IDS_IN_FLIGHT, SyncContext};
use crate::config::ProjectSettings;
use crate::model::Source;
use crate::progress::Work;
use crate::sources::dbss::DbssApi;
use crate::sources::image::ImageApi;
use crate::sources::{FetchError, Fetched, RowSink};
use crate::store::{StateUpdate, Store, StoreError};

/// Syncs one project's DBSS audit instances.
pub(super) async fn sync_dbss(
    ctx: &SyncContext<'_>,
    project: &ProjectSettings,
) -> Result<UnitResult, StoreError> {
    let Some(config) = &project.dbss else {
        return Ok(UnitResult::default());
    };
    let known_path = ctx.store.dbss_jobs_path(&project.id).await?;
    let api = &DbssApi::new(ctx.client, &project.id, &project.endpoints.dbss, known_path);
    let discovered = if config.discover {
        Some(api.discover().await)
    } else {
        None
    };
    // Resources with jobs stored unfinished are re-read even when neither the
    // config nor discovery lists them any more.
    let from_store = ctx
        .store
        .unfinished_jobs(Source::Dbss, &project.id, None)
        .await?
        .into_iter()
        .filter_map(|j| j.resource_id)
        .collect();
    // Resources whose jobs are all final are read again on every sync unless
    // `[dbss] settled_recheck` lets them rest: a new job can come at any time.
    let skip = if ctx.options.full || ctx.settled_recheck <= chrono::Duration::zero() {
        HashSet::new()
    } else {
        ctx.store
            .settled_dbss_resources(&project.id, ctx.now - ctx.settled_recheck)
            .await?
    };
    let ids = IdList {
        configured: &config.resource_ids,
        discovered,
        from_store,
        skip,
    };
    let names = Names {
        list: "audit instance list",
        item: "resource",
    };
    let scope = Scope {
        source: Source::Dbss,
        project_id: project.id.clone(),
    };
    let result = sync_ids(ctx, scope, names, ids, |id| async move {
        api.jobs(&id).await.map(Fetched::whole)
    })
    .await?;
    // Remembered once the path has answered, so later runs ask it first.
    if let Some(path) = api.path_in_use().filter(|p| Some(*p) != known_path) {
        let update = StateUpdate::DbssJobsPath {
            project_id: project.id.clone(),
            path,
        };
        // Bookkeeping only; if the writer is gone the run fails anyway.
        let _ = ctx.sink.state(update).await;
    }
    Ok(result)
}

/// Syncs one project's image-server jobs.
pub(super) async fn sync_image(
    ctx: &SyncContext<'_>,
    project: &ProjectSettings,
) -> Result<UnitResult, StoreError> {
    let Some(config) = &project.image else {
        return Ok(UnitResult::default());
    };
    let api = &ImageApi {
        client: ctx.client,
        project_id: &project.id,
        base: &project.endpoints.image,
    };
    let discovered = if config.discover {
        Some(api.discover().await)
    } else {
        None
    };
    // Jobs stored unfinished are re-checked even when the list no longer shows them.
    let from_store = ctx
        .store
        .unfinished_jobs(Source::Image, &project.id, None)
        .await?
        .into_iter()
        .map(|j| j.parent_job_id.unwrap_or(j.job_id))
        .collect();
    let skip = if ctx.options.full {
        HashSet::new()
    } else {
        ctx.store.finished_image_jobs(&project.id).await?
    };
    let ids = IdList {
        configured: &config.job_ids,
        discovered,
        from_store,
        skip,
    };
    let names = Names {
        list: "job list",
        item: "job",
    };
    let scope = Scope {
        source: Source::Image,
        project_id: project.id.clone(),
    };
    sync_ids(
        ctx,
        scope,
        names,
        ids,
        |id| async move { api.job(&id).await },
    )
    .await
}

/// Where the IDs of a by-ID source come from, and which to leave out.
struct IdList<'a> {
    configured: &'a [String],
    /// The discovery list's answer, when discovery is on.
    discovered: Option<Result<Vec<String>, FetchError>>,
    /// IDs with jobs stored unfinished.
    from_store: Vec<String>,
    /// Final, not to be asked again (empty with `--full`).
    skip: HashSet<String>,
}

/// How a by-ID source names things in messages.
#[derive(Clone, Copy)]
struct Names {
    list: &'static str,
    item: &'static str,
}

/// The shared flow of the by-ID sources (DBSS resources, image jobs): configured
/// IDs, plus what discovery found, plus IDs with unfinished jobs in the store
/// (given up on after repeated 404s), minus those to skip; then each one fetched.
async fn sync_ids<F, Fut>(
    ctx: &SyncContext<'_>,
    scope: Scope,
    names: Names,
    list: IdList<'_>,
    fetch: F,
) -> Result<UnitResult, StoreError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Fetched, FetchError>>,
{
    let mut result = UnitResult::default();
    let mut ids: Vec<String> = list.configured.to_vec();
    if let Some(found) = list.discovered {
        result.discovered(&mut ids, found, &scope, names.list);
    }
    let store_only =
        StoreOnly::load(ctx.store, &scope, &ids, list.from_store, ctx.options.full).await?;
    store_only.extend_ids(&mut ids);
    unique_except(&mut ids, &list.skip);
    if let Some(warning) = drop_unsafe(&mut ids, &scope, names.item) {
        result.warnings.push(warning);
    }
    let planned = ids.len() as u64;
    ctx.progress.planned(&scope.project_id, Work::Ids, planned);
    let fetches = Fetches {
        ctx,
        scope,
        item: names.item,
        store_only,
    };
    fetches.fetch_each(ids, fetch, &mut result).await;
    Ok(result)
}

/// Drops the IDs that cannot be sent in a URL path (`.`, `..`, with a `/`):
/// discovery lists and old rows may hold them (configured ones are refused
/// when the configuration is read). Says which, if any.
fn drop_unsafe(ids: &mut Vec<String>, scope: &Scope, kind: &'static str) -> Option<SyncWarning> {
    let mut dropped = Vec::new();
    ids.retain(|id| match crate::http::segment_problem(id) {
        None => true,
        Some(why) => {
            dropped.push(format!("{:?} ({why})", crate::text::truncate_chars(id, 80)));
            false
        }
    });
    (!dropped.is_empty()).then(|| SyncWarning::UnsafeIds {
        scope: scope.clone(),
        kind,
        count: dropped.len(),
        examples: dropped.into_iter().take(5).collect::<Vec<_>>().join(", "),
    })
}

/// Drops repeated IDs (keeping the first) and those in `skip`.
fn unique_except(ids: &mut Vec<String>, skip: &HashSet<String>) {
    let mut seen = HashSet::new();
    ids.retain(|id| !skip.contains(id) && seen.insert(id.clone()));
}

/// IDs known only from the database (unfinished there, but no longer
/// configured or listed), with how many syncs in a row answered 404 for each.
#[derive(Debug)]
struct StoreOnly {
    ids: HashSet<String>,
    misses: Misses,
}

impl StoreOnly {
    /// Sorts `from_store` into those also `listed` (asked as usual) and those
    /// known only from the store; the latter are dropped once they have
    /// answered 404 [`GONE_AFTER_MISSES`] syncs in a row (unless `full`).
    async fn load(
        store: &Store,
        scope: &Scope,
        listed: &[String],
        from_store: Vec<String>,
        full: bool,
    ) -> Result<StoreOnly, StoreError> {
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let misses = Misses::load(store, &scope.project_id, scope.source).await?;
        let ids = from_store
            .into_iter()
            .filter(|id| !listed.contains(id.as_str()))
            .filter(|id| full || !misses.given_up(id))
            .collect();
        Ok(StoreOnly { ids, misses })
    }

    fn extend_ids(&self, ids: &mut Vec<String>) {
        ids.extend(self.ids.iter().cloned());
    }

    /// The bookkeeping for one fetched ID: a 404 of a store-only ID counts a miss
    /// (and after enough of them is only a warning); an answer resets the count.
    fn after_fetch(
        &self,
        id: &str,
        outcome: &Result<(), FetchError>,
    ) -> (Option<StateUpdate>, Option<u32>) {
        if !self.ids.contains(id) {
            return (None, None);
        }
        let not_found = matches!(outcome, Err(FetchError::Api(e)) if e.http_status() == Some(404));
        let (update, count) = self.misses.record(id, not_found);
        (update, not_found.then_some(count))
    }
}

/// Fetching the IDs of one (project, source) pair.
struct Fetches<'a> {
    ctx: &'a SyncContext<'a>,
    scope: Scope,
    /// What an ID names, in messages ("resource", "job").
    item: &'static str,
    store_only: StoreOnly,
}

impl Fetches<'_> {
    /// Fetches every ID (a few at a time under the client's in-flight bound) and
    /// hands each one's rows to the writer; a failed ID is recorded by name and
    /// the rest go on, until the writer is gone.
    async fn fetch_each<F, Fut>(&self, ids: Vec<String>, fetch: F, result: &mut UnitResult)
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Fetched, FetchError>>,
    {
        let (fetch, sink) = (&fetch, &self.ctx.sink);
        let mut fetches = futures::stream::iter(ids)
            .take_while(|_| std::future::ready(!sink.writer_gone()))
            .map(|id| async move {
                // Rows are stored even when the API fell short of its own
                // totals; the shortfall is then this ID's failure.
                let outcome = match fetch(id.clone()).await {
                    Ok(Fetched { parsed, shortfall }) => match sink.rows(parsed).await {
                        Ok(()) => shortfall.map_or(Ok(()), Err),
                        Err(gone) => Err(FetchError::from(gone)),
                    },
                    Err(e) => Err(e),
                };
                (id, outcome)
            })
            .buffer_unordered(IDS_IN_FLIGHT);
        while let Some((id, outcome)) = fetches.next().await {
            let project = &self.scope.project_id;
            self.ctx.progress.done(project, Work::Ids, 1);
            let (update, misses) = self.store_only.after_fetch(&id, &outcome);
            if let Some(update) = update {
                // Bookkeeping only; if the writer is gone the run fails anyway.
                let _ = sink.state(update).await;
            }
            match outcome {
                Ok(()) => result.succeeded += 1,
                Err(_) if misses.is_some_and(|n| n >= GONE_AFTER_MISSES) => {
                    result.warnings.push(SyncWarning::ItemGone {
                        scope: self.scope.clone(),
                        kind: self.item,
                        id,
                    })
                }
                Err(e) => {
                    let unit = Unit::Item {
                        kind: self.item,
                        id,
                    };
                    result.fail(&self.scope, unit, e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_asked_once_and_skipped_ones_not_at_all() {
        let mut ids: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        let skip = HashSet::from(["c".to_owned()]);
        unique_except(&mut ids, &skip);
        assert_eq!(ids, ["b", "a"]);
    }
}
