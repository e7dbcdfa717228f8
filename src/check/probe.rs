//! The requests half of `check`: one small real request per project and
//! enabled source (the cheapest call of each API, through the same client,
//! paths and parsers `sync` uses), and what came of it.

use std::time::Duration;

use chrono::Utc;

use super::advice::explain;
use crate::auth::Credentials;
use crate::config::ProjectSettings;
use crate::http::{ApiClient, Call, HttpSettings};
use crate::model::Source;
use crate::sources::{dbss, image, nosql};

/// What one test request found.
#[derive(Debug)]
pub enum Outcome {
    /// The API answered as documented; the text says what it saw.
    Ok(String),
    /// Usable, with a note worth reading.
    Warn(String),
    /// Not usable: what happened, and what to do.
    Fail { what: String, fix: String },
    /// Not requested (an earlier answer already refused the credentials).
    Skipped(String),
}

impl Outcome {
    pub(super) fn is_usable(&self) -> bool {
        matches!(self, Outcome::Ok(_) | Outcome::Warn(_))
    }
}

/// One source of one project, and its outcome.
#[derive(Debug)]
pub struct Probe {
    pub source: Source,
    /// `GET` URL as sent, a user name and password in it shown as `***`.
    pub url: String,
    pub outcome: Outcome,
}

/// HTTP settings for answering fast: one retry for what may pass (a refused or
/// reset connection, 429, 5xx), none after a timeout.
pub fn http_settings(timeout: Duration) -> HttpSettings {
    HttpSettings {
        timeout,
        connect_timeout: timeout.min(Duration::from_secs(5)),
        max_in_flight: 4,
        max_attempts: 2,
        // A timed-out attempt already used the budget: no second wait.
        retry_budget: timeout,
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        max_body_bytes: 4 * 1024 * 1024,
        malformed_retries: 0,
    }
}

/// The request `check` makes for `source`: the cheapest real call of that API.
pub fn probe_call(project: &ProjectSettings, source: Source) -> Call<'_> {
    let id = &project.id;
    let first_page = |limit: &str| vec![("offset", "0".to_owned()), ("limit", limit.to_owned())];
    let (path, query): (String, Vec<(&str, String)>) = match source {
        Source::Nosql => {
            let end = Utc::now();
            let start = end - chrono::Duration::days(1);
            let mut query = vec![
                ("start_time", nosql::time_param(start)),
                ("end_time", nosql::time_param(end)),
            ];
            // 10 is the smallest page the task list accepts.
            query.extend(first_page("10"));
            (nosql::jobs_path(id), query)
        }
        Source::Dbss => (dbss::instances_path(id), first_page("1")),
        Source::Image => (image::jobs_path(id), first_page("1")),
    };
    Call {
        source,
        project_id: id,
        base: project.endpoints.for_source(source),
        path,
        query: query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// Checks that a 2xx body is the API's answer, with the parser `sync` uses,
/// and says what it held.
fn read_answer(source: Source, body: &[u8], project_id: &str) -> Result<String, String> {
    let plural = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    Ok(match source {
        Source::Nosql => {
            let page = nosql::parse_page(body, project_id)?;
            format!("{} in the last day", plural(page.total_count, "job"))
        }
        Source::Dbss => {
            let (_, total) = dbss::parse_instances(body)?;
            plural(total, "audit instance")
        }
        Source::Image => {
            let (_, count) = image::parse_list(body)?;
            plural(count, "image-server job")
        }
    })
}

/// Makes the test request for `source` of `project` and explains the answer.
pub async fn probe(
    client: &ApiClient,
    project: &ProjectSettings,
    source: Source,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Probe {
    let call = probe_call(project, source);
    let url = crate::text::redact_url(&crate::http::build_url(call.base, &call.path, &call.query));
    let result = client
        .get(&call, |body| read_answer(source, body, &project.id))
        .await;
    let outcome = match result {
        Ok(seen) => match nothing_to_sync(project, source) {
            Some(note) => Outcome::Warn(format!("{seen}; {note}")),
            None => Outcome::Ok(seen),
        },
        Err(e) => explain(&e, project, source, credentials, timeout),
    };
    Probe {
        source,
        url,
        outcome,
    }
}

/// A source that is on but would sync nothing.
fn nothing_to_sync(project: &ProjectSettings, source: Source) -> Option<String> {
    let (empty, ids) = match source {
        Source::Nosql => return None,
        Source::Dbss => (
            project
                .dbss
                .as_ref()
                .is_some_and(|d| !d.discover && d.resource_ids.is_empty()),
            "resource_ids",
        ),
        Source::Image => (
            project
                .image
                .as_ref()
                .is_some_and(|i| !i.discover && i.job_ids.is_empty()),
            "job_ids",
        ),
    };
    empty.then(|| {
        format!("but [project.{source}] has no {ids} and discover = false, so sync will read nothing from it")
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Settings;

    #[test]
    fn the_probes_are_the_cheapest_calls() {
        let settings = Settings::parse(
            "[[project]]\nid = \"p\"\nregion = \"cn-north-4\"\n[project.nosql]\n[project.dbss]\n[project.image]\n",
            Path::new("x.toml"),
        )
        .expect("valid");
        let p = &settings.projects[0];
        let url = |s| {
            let c = probe_call(p, s);
            crate::http::build_url(c.base, &c.path, &c.query).to_string()
        };
        assert_eq!(
            url(Source::Dbss),
            "https://dbss.cn-north-4.myhuaweicloud.com/v2/p/audit/instances?limit=1&offset=0"
        );
        assert_eq!(
            url(Source::Image),
            "https://appstream.cn-north-4.myhuaweicloud.com/v1/p/image-server-jobs?limit=1&offset=0"
        );
        let nosql = url(Source::Nosql);
        assert!(
            nosql.starts_with(
                "https://gaussdb-nosql.cn-north-4.myhuaweicloud.com/v3/p/jobs?end_time="
            ) && nosql.contains("&limit=10&offset=0&start_time="),
            "{nosql}"
        );
    }
}
