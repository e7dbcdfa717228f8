//! Workspace App image-server jobs, by job ID, each with its sub-jobs:
//! `GET /v1/{project_id}/image-server-jobs/{job_id}`. When the job's
//! `sub_jobs_total` is larger than the sub-jobs it carries, the rest are paged
//! from `GET /v1/{project_id}/image-server-sub-jobs` (one job type at a time,
//! as that list requires). Job IDs come from config and from the job list
//! `GET /v1/{project_id}/image-server-jobs`.

use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{FetchError, Fetched, Parsed, parse_item, parse_json};
use crate::http::{ApiClient, Call, api_path};
use crate::model::{JobRow, Source};
use crate::normalize::{JobKind, duration_ms, format_utc, map_status, non_empty, parse_api_time};

/// Jobs (and sub-jobs) asked for per list page (the API allows up to 100).
const LIST_LIMIT: u64 = 100;

/// Every `ImageJobType` the SDK knows (API-FACTS a3). The sub-jobs list takes
/// exactly one of them, so sub-jobs are paged type by type.
const JOB_TYPES: [&str; 7] = [
    "CREATE_SERVER",
    "CREATE_SERVER_IMAGE",
    "DELETE_SERVER",
    "BUILD_IMAGE",
    "GENERATE_IMAGE",
    "DELETE_IMAGE_BUILD_SERVER",
    "DELETE_IMAGE",
];

#[derive(Deserialize)]
struct ImageJob<'a> {
    #[serde(deserialize_with = "super::lenient_string::option", default)]
    id: Option<String>,
    job_type: Option<String>,
    begin_time: Option<String>,
    end_time: Option<String>,
    status: Option<String>,
    /// How many sub-jobs the job has; `sub_jobs` may carry fewer.
    sub_jobs_total: Option<u64>,
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

/// One job as its detail gave it: its row and its sub-jobs' rows, and what
/// finding the sub-jobs it did not carry takes.
#[derive(Debug)]
pub struct JobDetail {
    /// The job's row, then one per sub-job carried (each cut to what one job
    /// may store; a sub-job that cannot be read is left out and noted).
    pub parsed: Parsed,
    /// The job's `sub_jobs_total`, when it gave one.
    pub sub_jobs_total: Option<u64>,
    /// The job's own type and its sub-jobs' types, first seen first: where the
    /// sub-jobs list is most likely to hold the rest.
    pub types: Vec<String>,
}

impl JobDetail {
    /// Sub-jobs the job says it has but did not carry.
    pub fn missing_sub_jobs(&self) -> u64 {
        let carried = self.parsed.rows.len().saturating_sub(1) as u64;
        self.sub_jobs_total.unwrap_or(0).saturating_sub(carried)
    }
}

/// Parses one job into its row followed by one row per sub-job it carries,
/// each cut to what one job may store. A sub-job that lacks its ID or status,
/// or has a field of the wrong type, is left out (noted, naming the field).
pub fn parse_job(body: &[u8], project_id: &str) -> Result<Parsed, String> {
    parse_detail(body, project_id).map(|detail| detail.parsed)
}

/// Parses one job's detail: its rows, `sub_jobs_total` and the job types seen.
pub fn parse_detail(body: &[u8], project_id: &str) -> Result<JobDetail, String> {
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
    let job_type = non_empty(job.job_type);
    let mut types: Vec<String> = job_type.iter().cloned().collect();
    let mut parsed = Parsed::default();
    parsed.push(JobRow {
        source: Source::Image,
        project_id: project_id.to_owned(),
        job_id: job_id.clone(),
        parent_job_id: None,
        job_type,
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
        match sub_job_row(raw_sub, "sub_jobs", index, project_id, &job_id) {
            Ok(row) => {
                if let Some(t) = row.job_type.as_ref().filter(|t| !types.contains(t)) {
                    types.push(t.clone());
                }
                parsed.push(row);
            }
            Err(why) => parsed.refuse(Source::Image, project_id, format!("job {job_id}: {why}")),
        }
    }
    Ok(JobDetail {
        parsed,
        sub_jobs_total: job.sub_jobs_total,
        types,
    })
}

/// One sub-job (`list[index]` in messages) as the row of a sub-job of `parent`.
fn sub_job_row(
    raw_sub: &RawValue,
    list: &str,
    index: usize,
    project_id: &str,
    parent: &str,
) -> Result<JobRow, String> {
    let missing = |field: &str| format!("field `{list}[{index}].{field}` is missing or null");
    let sub: SubJob = parse_item(raw_sub, list, index)?;
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
        parent_job_id: Some(parent.to_owned()),
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

/// One page of the sub-jobs list of `parent`: its rows, and the list's `count`.
pub fn parse_sub_jobs_page(
    body: &[u8],
    project_id: &str,
    parent: &str,
) -> Result<(Parsed, u64), String> {
    #[derive(Deserialize)]
    struct Page<'a> {
        count: u64,
        #[serde(borrow)]
        items: Vec<&'a RawValue>,
    }
    let page: Page = parse_json(body)?;
    let mut parsed = Parsed::default();
    for (index, raw) in page.items.iter().enumerate() {
        match sub_job_row(raw, "items", index, project_id, parent) {
            Ok(row) => parsed.push(row),
            Err(why) => parsed.refuse(Source::Image, project_id, format!("job {parent}: {why}")),
        }
    }
    Ok((parsed, page.count))
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

    /// One job and every one of its sub-jobs. When the detail carries fewer
    /// than its `sub_jobs_total`, the rest are paged from the sub-jobs list;
    /// if they still fall short, the rows found are returned with the
    /// shortfall, so nothing is stored as if it were the whole job.
    pub async fn job(&self, job_id: &str) -> Result<Fetched, FetchError> {
        let path = api_path(&["v1", self.project_id, "image-server-jobs", job_id])?;
        let call = self.call(path, Vec::new());
        let detail = self
            .client
            .get(&call, |body| parse_detail(body, self.project_id))
            .await?;
        if detail.missing_sub_jobs() == 0 {
            return Ok(Fetched::whole(detail.parsed));
        }
        Ok(self.complete_sub_jobs(job_id, detail).await)
    }

    /// Pages the sub-jobs list for the sub-jobs `detail` did not carry: first
    /// for the job's own type and the types its sub-jobs showed, then, only if
    /// the total is still not reached, for every other type.
    async fn complete_sub_jobs(&self, job_id: &str, detail: JobDetail) -> Fetched {
        let total = detail.sub_jobs_total.unwrap_or(0);
        let mut parsed = detail.parsed;
        let mut known: std::collections::HashSet<String> = parsed
            .rows
            .iter()
            .skip(1)
            .map(|r| r.job_id.clone())
            .collect();
        let mut types = detail.types;
        let others: Vec<String> = JOB_TYPES
            .iter()
            .filter(|t| !types.iter().any(|seen| seen == *t))
            .map(|t| (*t).to_owned())
            .collect();
        types.extend(others);
        for job_type in &types {
            if known.len() as u64 >= total {
                break;
            }
            match self.sub_jobs_of_type(job_id, job_type, total).await {
                Ok(mut found) => {
                    found.rows.retain(|r| known.insert(r.job_id.clone()));
                    parsed.extend(found);
                }
                Err(e) => {
                    return Fetched {
                        parsed,
                        shortfall: Some(e),
                    };
                }
            }
        }
        let found = known.len() as u64;
        let shortfall = (found < total).then(|| {
            FetchError::Inconsistent(format!(
                "job {job_id}: sub_jobs_total is {total} but only {found} sub-jobs were found (in the job and the sub-jobs list of every job type); those found are stored"
            ))
        });
        Fetched { parsed, shortfall }
    }

    /// Every sub-job of one type of a job, paged to the list's `count` (and
    /// never past the job's `total`, nor past an empty page).
    async fn sub_jobs_of_type(
        &self,
        job_id: &str,
        job_type: &str,
        total: u64,
    ) -> Result<Parsed, FetchError> {
        let mut parsed = Parsed::default();
        let mut offset = 0u64;
        loop {
            let call = self.call(
                sub_jobs_path(self.project_id),
                vec![
                    ("job_id".into(), job_id.to_owned()),
                    ("job_type".into(), job_type.to_owned()),
                    ("offset".into(), offset.to_string()),
                    ("limit".into(), LIST_LIMIT.to_string()),
                ],
            );
            let (page, count) = self
                .client
                .get(&call, |body| {
                    parse_sub_jobs_page(body, self.project_id, job_id)
                })
                .await?;
            let got = page.rows.len() + page.notes.len();
            parsed.extend(page);
            offset += LIST_LIMIT;
            if got == 0 || offset >= count.min(total) {
                return Ok(parsed);
            }
        }
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

/// The image-server sub-jobs list's path for a project.
pub fn sub_jobs_path(project_id: &str) -> String {
    format!(
        "/v1/{}/image-server-sub-jobs",
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
    fn a_detail_short_of_its_total_says_how_many_are_missing_and_where_to_look() {
        let body = br#"{"id":"j1","job_type":"BUILD_IMAGE","status":"RUNNING","sub_jobs_total":5,"sub_jobs":[
            {"id":"s1","job_type":"BUILD_IMAGE","status":"SUCCESS"},
            {"id":"s2","job_type":"DELETE_SERVER","status":"RUNNING"}]}"#;
        let detail = parse_detail(body, "p").expect("parses");
        assert_eq!(detail.parsed.rows.len(), 3);
        assert_eq!(detail.missing_sub_jobs(), 3);
        assert_eq!(detail.types, ["BUILD_IMAGE", "DELETE_SERVER"]);
        let whole =
            parse_detail(br#"{"id":"j2","status":"SUCCESS","sub_jobs":[]}"#, "p").expect("parses");
        assert_eq!(whole.missing_sub_jobs(), 0, "no total, nothing to page");
    }

    #[test]
    fn sub_jobs_list_pages_become_rows_of_their_parent() {
        let (rows, count) = parse_sub_jobs_page(
            br#"{"count":120,"items":[{"id":"s3","job_type":"BUILD_IMAGE","status":"ABNORMAL",
              "job_execute_info":{"error_code":"WKS.1","error_message":"disk full"},"job_id":"j1"}]}"#,
            "p",
            "j1",
        )
        .expect("parses");
        let rows = rows.rows;
        assert_eq!(count, 120);
        assert_eq!(rows[0].parent_job_id.as_deref(), Some("j1"));
        assert_eq!(rows[0].status, Status::Failed);
        assert_eq!(rows[0].fail_reason.as_deref(), Some("disk full"));
        // A sub-job without its ID is left out, named, and the page still counts.
        let (page, count) =
            parse_sub_jobs_page(br#"{"count":1,"items":[{"status":"SUCCESS"}]}"#, "p", "j1")
                .expect("parses");
        assert_eq!((page.rows.len(), count), (0, 1));
        assert!(
            matches!(&page.notes[..], [crate::sources::Note::Refused { why, .. }] if why.contains("items[0].id")),
            "{:?}",
            page.notes
        );
    }

    #[test]
    fn list_pages_give_ids_and_count() {
        let (ids, count) =
            parse_list(br#"{"count":250,"items":[{"id":"a"},{"id":"b"}]}"#).expect("parses");
        assert_eq!((ids, count), (vec!["a".to_owned(), "b".to_owned()], 250));
    }
}
