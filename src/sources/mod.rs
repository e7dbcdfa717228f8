//! One module per cloud API: its wire DTOs (serde), how jobs are found (paging,
//! windows, IDs), and the mapping of each job to a [`JobRow`]. Sources fetch
//! and normalize; they hand rows to a [`RowSink`] or return them, and know
//! nothing of storage.

pub mod dbss;
pub mod image;
pub mod nosql;

use std::future::Future;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::limits::{RowCut, cap_row};
use crate::model::{JobRow, Source};

/// Where a fetcher hands the rows it has parsed, page by page. Sources know
/// nothing of what is behind it (the sync's writer, and the bookkeeping it
/// sends along the same way).
pub trait RowSink: Sync {
    /// Hands rows (and what was cut or refused to get them) on; waits while
    /// the receiver is behind (back-pressure keeps memory flat). Fails only if
    /// the receiver has stopped.
    fn rows(&self, parsed: Parsed) -> impl Future<Output = Result<(), WriterGone>> + Send;
}

/// The rows of one answer, each within what one job may store
/// ([`crate::limits`]), and what had to be cut or left out to get there.
/// Rows are capped as they are parsed, so an answer never stays in memory
/// at its hostile size.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub rows: Vec<JobRow>,
    pub notes: Vec<Note>,
}

/// Something changed or left out of an answer so the rest could be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A job stored with values cut to the caps.
    Cut(RowCut),
    /// A job left out of an otherwise good answer: a field it must have is
    /// missing or of the wrong type (`why` names it). The rest is stored.
    Refused {
        source: Source,
        project_id: String,
        why: String,
    },
}

impl Parsed {
    /// Adds a row, cut to the caps.
    pub fn push(&mut self, mut row: JobRow) {
        if let Some(cut) = cap_row(&mut row) {
            self.notes.push(Note::Cut(cut));
        }
        self.rows.push(row);
    }

    /// Notes a job of `project_id` left out, and why.
    pub fn refuse(&mut self, source: Source, project_id: &str, why: String) {
        self.notes.push(Note::Refused {
            source,
            project_id: project_id.to_owned(),
            why,
        });
    }

    pub fn extend(&mut self, other: Parsed) {
        self.rows.extend(other.rows);
        self.notes.extend(other.notes);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.notes.is_empty()
    }

    /// Jobs left out.
    pub fn refused(&self) -> usize {
        self.notes
            .iter()
            .filter(|n| matches!(n, Note::Refused { .. }))
            .count()
    }
}

/// What fetching one ID (a resource, a job) gave: the rows to store and, when
/// the API did not give everything it announced, why. The rows are stored
/// either way, and the shortfall is reported as that ID's failure.
#[derive(Debug)]
pub struct Fetched {
    pub parsed: Parsed,
    pub shortfall: Option<FetchError>,
}

impl Fetched {
    /// Everything there was.
    pub fn whole(parsed: Parsed) -> Fetched {
        Fetched {
            parsed,
            shortfall: None,
        }
    }
}

/// The writer task ended (a database error); fetching further is pointless.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the database writer stopped")]
pub struct WriterGone;

/// The freshest sighting of each job read so far in one unit (a NoSQL
/// window), so a job a list shows twice — it moved between pages while they
/// were read — ends in its newest state, and its history in that order,
/// whatever the timing: a sighting is kept unless an earlier one was newer by
/// the API's own word (an end time, later is newer; then a final status; then
/// progress); on a tie the later page wins. Jobs are keyed by a hash of their
/// ID and their freshness packed in one word: 16 bytes a job and the hash
/// table's spare room (eight windows are read at once).
#[derive(Debug, Default)]
pub(crate) struct Sightings(std::collections::HashMap<u64, Freshness>);

/// How far along one sighting of a job is, packed so that a larger number is
/// newer: the end time (none before any; milliseconds since 1970, clamped to
/// 48 bits, past the year 9999) above a final status above progress (none
/// before any; clamped to 0..=32766, far past 100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Freshness(u64);

impl Freshness {
    fn of(row: &JobRow) -> Freshness {
        let ended = row
            .ended_at
            .as_deref()
            .and_then(crate::normalize::parse_api_time)
            .map_or(0, |t| t.timestamp_millis().clamp(0, (1 << 48) - 2) + 1);
        let progress = row.progress.map_or(0, |p| p.clamp(0, 32_766) + 1);
        // Each part is non-negative and within its bits: the casts keep them whole.
        Freshness(
            (ended as u64) << 16 | u64::from(row.status.is_terminal()) << 15 | progress as u64,
        )
    }
}

impl Sightings {
    /// Makes room for the `jobs` a list says it holds, so a large window's
    /// map is not grown (and briefly held twice) page after page. The count
    /// is the cloud's word: past [`Sightings::PRESIZE_MAX`] the map grows as
    /// jobs really arrive.
    pub(crate) fn expect(&mut self, jobs: u64) {
        let jobs = usize::try_from(jobs.min(Self::PRESIZE_MAX)).unwrap_or(0);
        self.0.reserve(jobs.saturating_sub(self.0.len()));
    }

    /// The most sightings [`Sightings::expect`] makes room for ahead (2 MB).
    const PRESIZE_MAX: u64 = 100_000;

    /// Drops from `rows` (in page order) each sighting older than one already
    /// kept for the same job; returns how many were dropped.
    pub(crate) fn keep_newest(&mut self, rows: &mut Vec<JobRow>) -> usize {
        use std::collections::hash_map::Entry;
        use std::hash::{Hash, Hasher};
        let before = rows.len();
        rows.retain(|row| {
            let mut hasher = std::hash::DefaultHasher::new();
            row.job_id.hash(&mut hasher);
            let fresh = Freshness::of(row);
            match self.0.entry(hasher.finish()) {
                Entry::Vacant(e) => {
                    e.insert(fresh);
                    true
                }
                Entry::Occupied(mut e) if fresh >= *e.get() => {
                    e.insert(fresh);
                    true
                }
                Entry::Occupied(_) => {
                    tracing::info!(
                        job = %row.job_id.escape_debug(),
                        "the list showed this job twice; the older sighting is not stored"
                    );
                    false
                }
            }
        });
        before - rows.len()
    }
}

/// A discovery page's IDs and the list's total, or what was wrong with it.
pub(crate) type ListPage = Result<(Vec<String>, u64), String>;

/// Pages a discovery list (`offset`/`limit`) until `offset >= total`, or an
/// empty page (so a total that lies cannot make it loop forever). `parse` gives
/// a page's IDs and the list's total. Returns the IDs sorted, without repeats.
pub(crate) async fn list_ids(
    client: &crate::http::ApiClient,
    call: crate::http::Call<'_>,
    limit: u64,
    parse: fn(&[u8]) -> ListPage,
) -> Result<Vec<String>, FetchError> {
    let mut ids = Vec::new();
    let mut offset = 0u64;
    loop {
        let mut page_call = call.clone();
        page_call.query = vec![
            ("offset".into(), offset.to_string()),
            ("limit".into(), limit.to_string()),
        ];
        let (page, total) = client.get(&page_call, parse).await?;
        let got = page.len();
        ids.extend(page);
        offset += limit;
        if offset >= total || got == 0 {
            break;
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Parses a JSON document, naming the field path of the first problem
/// (`jobs[3].start_time: invalid type…`).
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| describe_json_error(&e.path().to_string(), e.inner()))
}

/// Parses one element of a list kept as raw JSON, naming `list[index].field`.
pub(crate) fn parse_item<T: DeserializeOwned>(
    raw: &RawValue,
    list: &str,
    index: usize,
) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            format!("{list}[{index}]")
        } else {
            format!("{list}[{index}].{inner}")
        };
        match e.inner().classify() {
            serde_json::error::Category::Data => describe_json_error(&path, e.inner()),
            // The item is valid JSON (it was read as one): nested too deeply.
            _ => format!("field `{path}`: {}", e.inner()),
        }
    })
}

fn describe_json_error(path: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!(
            "the body ends early (truncated JSON at line {}, column {})",
            e.line(),
            e.column()
        ),
        Category::Syntax => format!("the body is not valid JSON ({e})"),
        Category::Data if path == "." || path.is_empty() => format!("unexpected JSON shape: {e}"),
        Category::Data => format!("field `{path}`: {e}"),
        Category::Io => format!("cannot read the body: {e}"),
    }
}

/// A string field that may also arrive as a number (IDs do, in some APIs).
pub(crate) mod lenient_string {
    use serde::{Deserialize, Deserializer};

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            S(String),
            N(serde_json::Number),
        }
        Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
            Text::S(s) => s,
            Text::N(n) => n.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        jobs: Vec<&'a RawValue>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Job {
        id: String,
    }

    #[test]
    fn errors_name_the_field_path() {
        let body = br#"{"jobs":[{"id":"a"},{"id":5}]}"#;
        let page: Page = parse_json(body).expect("page parses");
        let err = parse_item::<Job>(page.jobs[1], "jobs", 1).expect_err("number id");
        assert!(err.contains("field `jobs[1].id`"), "{err}");
        let err = parse_json::<Page>(br#"{"jobs":"oops"}"#).expect_err("wrong shape");
        assert!(err.contains("jobs"), "{err}");
        let err = parse_json::<Page>(br#"{"jobs":[{"id":"#).expect_err("truncated");
        assert!(err.contains("truncated"), "{err}");
        let err = parse_json::<Page>(b"<html>").expect_err("html");
        assert!(err.contains("not valid JSON"), "{err}");
    }
}

/// Why fetching one unit (a window, a resource, a job) stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Api(#[from] crate::http::ApiError),
    #[error(transparent)]
    Writer(#[from] WriterGone),
    /// The answers were each well-formed but do not add up (a paged list that
    /// changed under us, an implausible total).
    #[error("{0}")]
    Inconsistent(String),
    /// The ID cannot be part of a request path; nothing was sent.
    #[error("not requested: {0}")]
    Path(#[from] crate::http::UnsafeSegment),
}

#[cfg(test)]
mod sighting_tests {
    use super::*;
    use crate::model::Status;

    fn seen(id: &str, status: Status, ended: Option<&str>) -> JobRow {
        JobRow {
            source: Source::Nosql,
            project_id: "p".into(),
            job_id: id.into(),
            parent_job_id: None,
            job_type: None,
            status,
            raw_status: None,
            progress: None,
            started_at: None,
            ended_at: ended.map(str::to_owned),
            duration_ms: None,
            resource_id: None,
            resource_name: None,
            error_code: None,
            fail_reason: None,
            raw_json: "{}".into(),
        }
    }

    #[test]
    fn an_older_sighting_after_a_newer_one_is_dropped() {
        let done = || seen("a", Status::Succeeded, Some("2024-01-01T00:00:00.000Z"));
        let running = || seen("a", Status::Running, None);
        let mut s = Sightings::default();
        let mut rows = vec![running(), seen("b", Status::Running, None)];
        assert_eq!(s.keep_newest(&mut rows), 0);
        let mut rows = vec![done(), running()];
        assert_eq!(s.keep_newest(&mut rows), 1);
        assert_eq!(rows, vec![done()]);
        let mut later = vec![seen("a", Status::Failed, Some("2024-01-02T00:00:00.000Z"))];
        assert_eq!(s.keep_newest(&mut later), 0, "a later end time is newer");
    }

    #[test]
    fn freshness_packed_in_one_word_orders_as_its_parts() {
        let at = |status, ended: Option<&str>, progress: Option<i64>| {
            let mut row = seen("a", status, ended);
            row.progress = progress;
            Freshness::of(&row)
        };
        // From stalest to newest: no end, then progress, then a final
        // status; then an end time, later ones newer, each above all before.
        let ordered = [
            at(Status::Running, None, None),
            at(Status::Running, None, Some(-5)),
            at(Status::Running, None, Some(40)),
            at(Status::Running, None, Some(1_000_000)),
            at(Status::Succeeded, None, None),
            at(Status::Succeeded, None, Some(100)),
            at(Status::Running, Some("1960-01-01T00:00:00.000Z"), None),
            at(Status::Running, Some("2024-01-01T00:00:00.000Z"), Some(99)),
            at(Status::Failed, Some("2024-01-01T00:00:00.000Z"), None),
            at(Status::Failed, Some("2024-01-01T00:00:00.001Z"), None),
            at(Status::Failed, Some("9999-12-31T23:59:59.999Z"), Some(100)),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{:?} < {:?}", pair[0], pair[1]);
        }
        assert_eq!(
            at(Status::Running, None, Some(-5)),
            at(Status::Running, None, Some(0)),
            "progress below 0 counts as 0"
        );
    }
}
