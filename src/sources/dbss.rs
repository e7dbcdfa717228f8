//! DBSS audit-instance jobs, by resource ID. The current jobs API is
//! `GET /v1/{project_id}/audit/{resource_id}/jobs`; its predecessor
//! `GET /v1/{project_id}/dbss/audit/jobs/{resource_id}` is marked "to be taken
//! offline" and is asked only when the gateway says the current one does not
//! exist (404 APIGW.0101). The path that answered is reported back, so the
//! caller can remember it per project. Resource IDs come from config and from
//! the audit instance list `GET /v2/{project_id}/audit/instances`.

use std::sync::atomic::{AtomicU8, Ordering};

use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{FetchError, Parsed, parse_item, parse_json};
use crate::http::{ApiClient, Call, UnsafeSegment, api_path};
use crate::model::{DbssJobsPath, JobRow, Source};
use crate::normalize::{JobKind, duration_ms, format_utc, from_epoch_ms, map_status, non_empty};

/// Audit instances asked for per discovery page (the API allows up to 1000).
const DISCOVERY_LIMIT: u64 = 100;

#[derive(Deserialize)]
struct JobsResponse<'a> {
    #[serde(borrow)]
    jobs: Vec<&'a RawValue>,
}

/// `JobBean`: `begin_time`/`end_time` are epoch milliseconds; `error_code` and
/// `fail_reason` are null on success; `ha_*` are discarded fields kept only in raw_json.
#[derive(Deserialize)]
struct JobBean {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    job_id: Option<String>,
    status: Option<String>,
    job_type: Option<String>,
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    resource_id: Option<String>,
    server_name: Option<String>,
    #[serde(deserialize_with = "epoch_ms", default)]
    begin_time: Option<i64>,
    #[serde(deserialize_with = "epoch_ms", default)]
    end_time: Option<i64>,
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    error_code: Option<String>,
    fail_reason: Option<String>,
}

/// Epoch milliseconds as a number, or as a string of digits (documented `Long`).
fn epoch_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ms {
        N(i64),
        F(f64),
        S(String),
    }
    match Option::<Ms>::deserialize(d)? {
        None => Ok(None),
        Some(Ms::N(n)) => Ok(Some(n)),
        Some(Ms::F(f)) if f.is_finite() => Ok(Some(f as i64)),
        Some(Ms::S(s)) if s.trim().is_empty() => Ok(None),
        Some(Ms::S(s)) => s.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected epoch milliseconds, got {s:?}"))
        }),
        Some(Ms::F(_)) => Err(serde::de::Error::custom("expected epoch milliseconds")),
    }
}

/// Parses a jobs response for `resource_id` into rows, each cut to what one
/// job may store. A job that lacks its ID or status, or has a field of the
/// wrong type, is left out (noted, naming the field); the rest are kept.
pub fn parse_jobs(body: &[u8], project_id: &str, resource_id: &str) -> Result<Parsed, String> {
    let response: JobsResponse = parse_json(body)?;
    let mut parsed = Parsed::default();
    for (index, raw) in response.jobs.iter().enumerate() {
        let row = parse_item::<JobBean>(raw, "jobs", index).and_then(|bean| {
            to_row(bean, raw, project_id, resource_id)
                .map_err(|field| format!("field `jobs[{index}].{field}` is missing or null"))
        });
        match row {
            Ok(row) => parsed.push(row),
            Err(why) => parsed.refuse(Source::Dbss, project_id, why),
        }
    }
    Ok(parsed)
}

fn to_row(
    bean: JobBean,
    raw: &RawValue,
    project_id: &str,
    asked_for: &str,
) -> Result<JobRow, &'static str> {
    let job_id = bean.job_id.filter(|s| !s.is_empty()).ok_or("job_id")?;
    let raw_status = bean.status.ok_or("status")?;
    let started = bean.begin_time.and_then(from_epoch_ms);
    let ended = bean.end_time.and_then(from_epoch_ms);
    Ok(JobRow {
        source: Source::Dbss,
        project_id: project_id.to_owned(),
        job_id,
        parent_job_id: None,
        job_type: non_empty(bean.job_type),
        status: map_status(JobKind::Dbss, Some(&raw_status)),
        raw_status: Some(raw_status),
        progress: None,
        started_at: started.map(format_utc),
        ended_at: ended.map(format_utc),
        duration_ms: duration_ms(started, ended),
        // The bean's own resource_id can be null: it is the one we asked for.
        resource_id: non_empty(bean.resource_id).or_else(|| Some(asked_for.to_owned())),
        resource_name: non_empty(bean.server_name),
        error_code: non_empty(bean.error_code),
        fail_reason: non_empty(bean.fail_reason),
        raw_json: raw.get().to_owned(),
    })
}

/// The DBSS API of one project, remembering for the rest of the run which jobs
/// path answers.
#[derive(Debug)]
pub struct DbssApi<'a> {
    pub client: &'a ApiClient,
    pub project_id: &'a str,
    pub base: &'a Url,
    /// The path to ask first ([`PathMemory`] encoding); set by the first answer.
    path: AtomicU8,
}

/// How [`DbssApi`] keeps its path in an atomic: not known yet, or one of the two.
struct PathMemory;

impl PathMemory {
    const UNKNOWN: u8 = 0;
    const CURRENT: u8 = 1;
    const LEGACY: u8 = 2;

    fn encode(path: Option<DbssJobsPath>) -> u8 {
        match path {
            None => Self::UNKNOWN,
            Some(DbssJobsPath::Current) => Self::CURRENT,
            Some(DbssJobsPath::Legacy) => Self::LEGACY,
        }
    }

    fn decode(value: u8) -> Option<DbssJobsPath> {
        match value {
            Self::CURRENT => Some(DbssJobsPath::Current),
            Self::LEGACY => Some(DbssJobsPath::Legacy),
            _ => None,
        }
    }
}

impl<'a> DbssApi<'a> {
    /// `known`: the path that answered in an earlier run, asked first; `None`
    /// asks the current one first.
    pub fn new(
        client: &'a ApiClient,
        project_id: &'a str,
        base: &'a Url,
        known: Option<DbssJobsPath>,
    ) -> DbssApi<'a> {
        DbssApi {
            client,
            project_id,
            base,
            path: AtomicU8::new(PathMemory::encode(known)),
        }
    }

    fn call(&self, path: String, query: Vec<(String, String)>) -> Call<'_> {
        Call {
            source: Source::Dbss,
            project_id: self.project_id,
            base: self.base,
            path,
            query,
        }
    }

    /// The jobs path that answered in this run (or was known before it).
    pub fn path_in_use(&self) -> Option<DbssJobsPath> {
        PathMemory::decode(self.path.load(Ordering::Relaxed))
    }

    /// The request path of one resource's jobs on `path`.
    fn jobs_path(&self, path: DbssJobsPath, resource_id: &str) -> Result<String, UnsafeSegment> {
        let project = self.project_id;
        Ok(match path {
            DbssJobsPath::Current => api_path(&["v1", project, "audit", resource_id, "jobs"])?,
            DbssJobsPath::Legacy => {
                api_path(&["v1", project, "dbss", "audit", "jobs", resource_id])?
            }
        })
    }

    /// Every job of one audit instance: on the path that answered before (the
    /// current one when none has), else on the other when the gateway says the
    /// first does not exist.
    pub async fn jobs(&self, resource_id: &str) -> Result<Parsed, FetchError> {
        let parse = |body: &[u8]| parse_jobs(body, self.project_id, resource_id);
        let first = self.path_in_use().unwrap_or(DbssJobsPath::Current);
        let call = self.call(self.jobs_path(first, resource_id)?, Vec::new());
        match self.client.get(&call, parse).await {
            Err(e) if e.is_api_not_found() => {}
            other => {
                let rows = other?;
                self.remember(first);
                return Ok(rows);
            }
        }
        let second = first.other();
        let call = self.call(self.jobs_path(second, resource_id)?, Vec::new());
        let rows = self.client.get(&call, parse).await?;
        if self.remember(second) {
            tracing::info!(
                project = self.project_id,
                "the {} DBSS jobs path does not exist here; using the {} one",
                first.as_str(),
                second.as_str()
            );
        }
        Ok(rows)
    }

    /// Notes that `path` answered; true when that changed what is asked first.
    fn remember(&self, path: DbssJobsPath) -> bool {
        let value = PathMemory::encode(Some(path));
        self.path.swap(value, Ordering::Relaxed) != value
    }

    /// Resource IDs of every audit instance in the project, paged to `total`.
    pub async fn discover(&self) -> Result<Vec<String>, FetchError> {
        let call = self.call(instances_path(self.project_id), Vec::new());
        super::list_ids(self.client, call, DISCOVERY_LIMIT, parse_instances).await
    }
}

/// The audit instance list's path for a project (project IDs are checked by
/// the configuration, so always one safe path segment).
pub fn instances_path(project_id: &str) -> String {
    format!(
        "/v2/{}/audit/instances",
        crate::auth::signer::encode(project_id)
    )
}

/// One page of the audit instance list: resource IDs, and the list's `total`.
pub(crate) fn parse_instances(body: &[u8]) -> super::ListPage {
    #[derive(Deserialize)]
    struct Page {
        instances: Vec<Instance>,
        total: u64,
    }
    #[derive(Deserialize)]
    struct Instance {
        // The jobs API wants `resource_id`, not the instance `id`.
        #[serde(deserialize_with = "super::lenient_string::option", default)]
        resource_id: Option<String>,
    }
    let page: Page = parse_json(body)?;
    let ids = page
        .instances
        .into_iter()
        .filter_map(|i| non_empty(i.resource_id))
        .collect();
    Ok((ids, page.total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn beans_become_rows_with_utc_times_and_nulls() {
        let body = br#"{"jobs":[
          {"job_id":"j1","status":"SUCCESS","job_type":null,"server_id":"vm1","server_name":"audit-1",
           "resource_id":null,"begin_time":1694501041123,"end_time":1694501101123,"charge_mode":"Period",
           "error_code":null,"fail_reason":null,"ha_id":"r1","ha_name":null},
          {"job_id":"j2","status":"FAIL","job_type":"create","server_name":"audit-1","resource_id":"r1",
           "begin_time":1694501041123,"end_time":null,"error_code":"DBSS.0001","fail_reason":"quota"}]}"#;
        let rows = parse_jobs(body, "p", "r1").expect("parses").rows;
        assert_eq!(rows[0].status, Status::Succeeded);
        assert_eq!(
            rows[0].started_at.as_deref(),
            Some("2023-09-12T06:44:01.123Z")
        );
        assert_eq!(rows[0].duration_ms, Some(60_000));
        assert_eq!(
            rows[0].resource_id.as_deref(),
            Some("r1"),
            "falls back to the ID asked for"
        );
        assert_eq!(
            (
                rows[0].error_code.as_deref(),
                rows[0].fail_reason.as_deref()
            ),
            (None, None)
        );
        assert!(rows[0].raw_json.contains("\"charge_mode\":\"Period\""));
        assert_eq!(rows[1].status, Status::Failed);
        assert_eq!(rows[1].ended_at, None);
        assert_eq!(rows[1].error_code.as_deref(), Some("DBSS.0001"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let parsed = parse_jobs(
            br#"{"jobs":[{"job_id":"j","status":"SUCCESS","begin_time":"soon"},{"status":"SUCCESS"},{"job_id":"k","status":"SUCCESS"}]}"#,
            "p",
            "r",
        )
        .expect("the answer is kept");
        assert_eq!(parsed.rows.len(), 1);
        let why = format!("{:?}", parsed.notes);
        assert!(why.contains("jobs[0].begin_time"), "{why}");
        assert!(why.contains("jobs[1].job_id"), "{why}");
    }

    #[test]
    fn discovery_uses_resource_id_not_id() {
        let page = parse_instances(
            br#"{"instances":[{"id":"inst-1","resource_id":"res-1"},{"id":"inst-2"}],"total":2}"#,
        )
        .expect("parses");
        assert_eq!(page, (vec!["res-1".to_owned()], 2));
    }
}
