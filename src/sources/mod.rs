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

use crate::model::JobRow;

/// Where a fetcher hands the rows it has parsed, page by page. Sources know
/// nothing of what is behind it (the sync's writer, and the bookkeeping it
/// sends along the same way).
pub trait RowSink: Sync {
    /// Hands rows on; waits while the receiver is behind (back-pressure keeps
    /// memory flat). Fails only if the receiver has stopped.
    fn rows(&self, rows: Vec<JobRow>) -> impl Future<Output = Result<(), WriterGone>> + Send;
}

/// What fetching one ID (a resource, a job) gave: the rows to store and, when
/// the API did not give everything it announced, why. The rows are stored
/// either way, and the shortfall is reported as that ID's failure.
#[derive(Debug)]
pub struct Fetched {
    pub rows: Vec<JobRow>,
    pub shortfall: Option<FetchError>,
}

impl Fetched {
    /// Everything there was.
    pub fn whole(rows: Vec<JobRow>) -> Fetched {
        Fetched {
            rows,
            shortfall: None,
        }
    }
}

/// The writer task ended (a database error); fetching further is pointless.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the database writer stopped")]
pub struct WriterGone;

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
        describe_json_error(&path, e.inner())
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
}
