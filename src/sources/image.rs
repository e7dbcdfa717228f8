//! Workspace App image-server jobs, by job ID, each with its sub-jobs:
//! `GET /v1/{project_id}/image-server-jobs/{job_id}`. Job IDs come from config
//! and from the job list `GET /v1/{project_id}/image-server-jobs`.

use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{FetchError, Parsed, parse_item, parse_json};
use crate::http::{ApiClient, Call, api_path};
use crate::model::{JobRow, Source};
use crate::normalize::{JobKind, duration_ms, format_utc, map_status, non_empty, parse_api_time};

/// Jobs asked for per list page (the API allows up to 100).
const LIST_LIMIT: u64 = 100;

#[derive(Deserialize)]
struct ImageJob<'a> {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    id: Option<String>,
    job_type: Option<String>,
    begin_time: Option<String>,
    end_time: Option<String>,
    status: Option<String>,
    #[serde(borrow, default)]
    sub_jobs: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct SubJob {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    id: Option<String>,
    job_type: Option<String>,
    job_resource_info: Option<ResourceInfo>,
    begin_time: Option<String>,
    end_time: Option<String>,
    status: Option<String>,
    job_execute_info: Option<ExecuteInfo>,
}

#[derive(Deserialize)]
struct ResourceInfo {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    resource_id: Option<String>,
    resource_name: Option<String>,
}

#[derive(Deserialize)]
struct ExecuteInfo {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    error_code: Option<String>,
    error_message: Option<String>,
}

/// Parses one job into its row followed by one row per sub-job, each cut to
/// what one job may store. A sub-job that lacks its ID or status, or has a
/// field of the wrong type, is left out (noted, naming the field).
pub fn parse_job(body: &[u8], project_id: &str) -> Result<Parsed, String> {
    let job: ImageJob = parse_json(body)?;
    let raw: &RawValue = parse_json(body)?;
    let missing = |field: &str| format!("field `{field}` is missing or null");
    let job_id = job
        .id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("id"))?;
    let raw_status = job.status.ok_or_else(|| missing("status"))?;
    let started = job.begin_time.as_deref().and_then(parse_api_time);
    let ended = job.end_time.as_deref().and_then(parse_api_time);
    let sub_jobs = job.sub_jobs.unwrap_or_default();
    let mut parsed = Parsed::default();
    parsed.push(JobRow {
        source: Source::Image,
        project_id: project_id.to_owned(),
        job_id: job_id.clone(),
        parent_job_id: None,
        job_type: non_empty(job.job_type),
        status: map_status(JobKind::ImageJob, Some(&raw_status)),
        raw_status: Some(raw_status),
        progress: None,
        started_at: started.map(format_utc),
        ended_at: ended.map(format_utc),
        duration_ms: duration_ms(started, ended),
        resource_id: None,
        resource_name: None,
        error_code: None,
        fail_reason: None,
        raw_json: raw.get().to_owned(),
    });
    for (index, raw_sub) in sub_jobs.iter().enumerate() {
        match sub_job_row(raw_sub, index, project_id, &job_id) {
            Ok(row) => parsed.push(row),
            Err(why) => parsed.refuse(Source::Image, project_id, format!("job {job_id}: {why}")),
        }
    }
    Ok(parsed)
}

/// The row of sub-job `index`, or why it cannot be stored.
fn sub_job_row(
    raw_sub: &RawValue,
    index: usize,
    project_id: &str,
    job_id: &str,
) -> Result<JobRow, String> {
    let missing = |field: &str| format!("field `sub_jobs[{index}].{field}` is missing or null");
    let sub: SubJob = parse_item(raw_sub, "sub_jobs", index)?;
    let id = sub
        .id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("id"))?;
    let raw_status = sub.status.ok_or_else(|| missing("status"))?;
    let started = sub.begin_time.as_deref().and_then(parse_api_time);
    let ended = sub.end_time.as_deref().and_then(parse_api_time);
    let (resource_id, resource_name) = sub
        .job_resource_info
        .map(|r| (non_empty(r.resource_id), non_empty(r.resource_name)))
        .unwrap_or_default();
    let (error_code, fail_reason) = sub
        .job_execute_info
        .map(|e| (non_empty(e.error_code), non_empty(e.error_message)))
        .unwrap_or_default();
    Ok(JobRow {
        source: Source::Image,
        project_id: project_id.to_owned(),
        job_id: id,
        parent_job_id: Some(job_id.to_owned()),
        job_type: non_empty(sub.job_type),
        status: map_status(JobKind::ImageSubJob, Some(&raw_status)),
        raw_status: Some(raw_status),
        progress: None,
        started_at: started.map(format_utc),
        ended_at: ended.map(format_utc),
        duration_ms: duration_ms(started, ended),
        resource_id,
        resource_name,
        error_code,
        fail_reason,
        raw_json: raw_sub.get().to_owned(),
    })
}

/// The image-server job API of one project.
#[derive(Debug, Clone, Copy)]
pub struct ImageApi<'a> {
    pub client: &'a ApiClient,
    pub project_id: &'a str,
    pub base: &'a Url,
}

impl ImageApi<'_> {
    fn call(&self, path: String, query: Vec<(String, String)>) -> Call<'_> {
        Call {
            source: Source::Image,
            project_id: self.project_id,
            base: self.base,
            path,
            query,
        }
    }

    /// One job and its sub-jobs.
    pub async fn job(&self, job_id: &str) -> Result<Parsed, FetchError> {
        let path = api_path(&["v1", self.project_id, "image-server-jobs", job_id])?;
        let call = self.call(path, Vec::new());
        Ok(self
            .client
            .get(&call, |body| parse_job(body, self.project_id))
            .await?)
    }

    /// Every job ID in the list, paged to `count`. The list has no time filter.
    pub async fn discover(&self) -> Result<Vec<String>, FetchError> {
        let call = self.call(jobs_path(self.project_id), Vec::new());
        super::list_ids(self.client, call, LIST_LIMIT, parse_list).await
    }
}

/// The image-server job list's path for a project (project IDs are checked by
/// the configuration, so always one safe path segment).
pub fn jobs_path(project_id: &str) -> String {
    format!(
        "/v1/{}/image-server-jobs",
        crate::auth::signer::encode(project_id)
    )
}

/// One page of the job list: job IDs, and the list's `count`.
pub(crate) fn parse_list(body: &[u8]) -> super::ListPage {
    #[derive(Deserialize)]
    struct Page {
        count: u64,
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(deserialize_with = "super::lenient_string::option", default)]
        id: Option<String>,
    }
    let page: Page = parse_json(body)?;
    Ok((
        page.items
            .into_iter()
            .filter_map(|i| non_empty(i.id))
            .collect(),
        page.count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn job_and_sub_jobs_become_rows() {
        let body = br#"{"id":"702364883651395584","job_type":"CREATE_SERVER","begin_time":"2022-03-07T10:40:43.858Z",
          "end_time":"2022-03-07T10:50:49.61Z","status":"FAILED","sub_jobs_total":2,"sub_jobs":[
            {"id":"s1","job_type":"CREATE_SERVER","job_resource_info":{"resource_id":"srv-1","resource_name":"img-srv"},
             "begin_time":"2022-03-07T10:40:44Z","end_time":"2022-03-07T10:45:44Z","status":"ABNORMAL",
             "job_execute_info":{"error_code":"WKS.0001","error_message":"flavor sold out"},"project_id":"p","job_id":"702364883651395584"},
            {"id":"s2","job_type":"CREATE_SERVER","job_resource_info":null,"begin_time":"2022-03-07T10:40:44Z",
             "end_time":null,"status":"ROLLBACK","job_execute_info":{"error_code":"","error_message":""}}]}"#;
        let rows = parse_job(body, "p").expect("parses").rows;
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].status, rows[0].duration_ms),
            (Status::Failed, Some(605_752))
        );
        assert_eq!(
            rows[0].ended_at.as_deref(),
            Some("2022-03-07T10:50:49.610Z")
        );
        assert_eq!(rows[1].parent_job_id.as_deref(), Some("702364883651395584"));
        assert_eq!(
            rows[1].status,
            Status::Failed,
            "ABNORMAL sub-job is a failure"
        );
        assert_eq!(rows[1].resource_name.as_deref(), Some("img-srv"));
        assert_eq!(rows[1].fail_reason.as_deref(), Some("flavor sold out"));
        assert_eq!(rows[2].status, Status::Running, "ROLLBACK is not final");
        assert_eq!(
            (
                rows[2].error_code.as_deref(),
                rows[2].fail_reason.as_deref()
            ),
            (None, None)
        );
        assert!(rows[0].raw_json.contains("sub_jobs"));
    }

    #[test]
    fn list_pages_give_ids_and_count() {
        let (ids, count) =
            parse_list(br#"{"count":250,"items":[{"id":"a"},{"id":"b"}]}"#).expect("parses");
        assert_eq!((ids, count), (vec!["a".to_owned(), "b".to_owned()], 250));
    }
}
