//! Workspace App image-server jobs: one job with its sub-jobs (possibly cut short),
//! the job list used for discovery, and the sub-jobs list. Times are ISO-8601 UTC
//! with as many fraction digits as needed.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;

use super::State;
use super::routes::{Reply, Req, parse_digits, unknown_project};
use super::world::{ImageJob, ImageSubJob};

const MAX_LIMIT: u64 = 100;
const DEFAULT_LIMIT: u64 = 10;

/// Every `ImageJobType` value (the sub-jobs list's `job_type` must be one of them).
const JOB_TYPES: [&str; 7] = [
    "CREATE_SERVER",
    "CREATE_SERVER_IMAGE",
    "DELETE_SERVER",
    "BUILD_IMAGE",
    "GENERATE_IMAGE",
    "DELETE_IMAGE_BUILD_SERVER",
    "DELETE_IMAGE",
];

#[derive(Serialize)]
struct WireJob<'a> {
    id: &'a str,
    job_type: &'a str,
    begin_time: String,
    end_time: Option<String>,
    status: &'a str,
    sub_jobs_total: usize,
    sub_jobs: Vec<WireSubJob<'a>>,
}

#[derive(Serialize)]
struct WireSubJob<'a> {
    id: &'a str,
    job_type: &'a str,
    job_resource_info: WireResource<'a>,
    begin_time: String,
    end_time: Option<String>,
    status: &'a str,
    job_execute_info: WireExecute<'a>,
    project_id: &'a str,
    job_id: &'a str,
}

#[derive(Serialize)]
struct WireResource<'a> {
    resource_id: Option<&'a str>,
    resource_name: Option<&'a str>,
}

#[derive(Serialize)]
struct WireExecute<'a> {
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

#[derive(Serialize)]
struct WireList<T> {
    count: usize,
    items: Vec<T>,
}

/// A list item: the job without its sub-jobs.
#[derive(Serialize)]
struct WireItem<'a> {
    id: &'a str,
    job_type: &'a str,
    begin_time: String,
    end_time: Option<String>,
    status: &'a str,
    sub_jobs_total: usize,
}

impl<'a> WireSubJob<'a> {
    fn of(sub: &'a ImageSubJob) -> Self {
        WireSubJob {
            id: &sub.id,
            job_type: &sub.job_type,
            job_resource_info: WireResource {
                resource_id: sub.resource_id.as_deref(),
                resource_name: sub.resource_name.as_deref(),
            },
            begin_time: render_time(sub.begin_time),
            end_time: sub.end_time.map(render_time),
            status: &sub.status,
            job_execute_info: WireExecute {
                error_code: sub.error_code.as_deref(),
                error_message: sub.error_message.as_deref(),
            },
            project_id: &sub.project_id,
            job_id: &sub.job_id,
        }
    }
}

/// `2022-03-07T10:40:43.858Z`, `…49.61Z` or `…49Z`: trailing zeros of the fraction
/// are dropped, as the real API's serializer does.
pub(crate) fn render_time(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    let millis = t.timestamp_subsec_millis();
    if millis == 0 {
        format!("{base}Z")
    } else {
        let fraction = format!("{millis:03}");
        format!("{base}.{}Z", fraction.trim_end_matches('0'))
    }
}

fn not_found(job_id: &str) -> Reply {
    Reply::json_value(
        404,
        &json!({
            "error_code": "WKS.00129901",
            "error_msg": format!("The image server job does not exist: {job_id}"),
        }),
    )
}

fn flip(job: &mut ImageJob, rng: &mut rand::rngs::StdRng, rate: f64) {
    if rate > 0.0 && job.is_running() && rng.random_bool(rate) {
        job.finish(rng, Utc::now());
    }
}

/// `GET /v1/{project}/image-server-jobs/{job_id}` (listed or not).
pub(crate) fn show_job(st: &mut State, project: &str, job_id: &str, req: &Req) -> Reply {
    let State {
        world,
        rng,
        running_flip_rate,
        image_sub_jobs_cut,
        ..
    } = st;
    let Some(data) = world.projects.get_mut(project) else {
        return unknown_project(req);
    };
    let Some(job) = data.image_jobs.iter_mut().find(|j| j.id == job_id) else {
        return not_found(job_id);
    };
    let shown = image_sub_jobs_cut.unwrap_or(usize::MAX);
    let reply = Reply::json(
        200,
        &WireJob {
            id: &job.id,
            job_type: &job.job_type,
            begin_time: render_time(job.begin_time),
            end_time: job.end_time.map(render_time),
            status: &job.status,
            sub_jobs_total: job.sub_jobs.len(),
            sub_jobs: job
                .sub_jobs
                .iter()
                .take(shown)
                .map(WireSubJob::of)
                .collect(),
        },
    );
    flip(job, rng, *running_flip_rate);
    reply
}

/// `GET /v1/{project}/image-server-jobs?offset=&limit=&status=&job_type=`: listed
/// jobs, newest first (the API documents no order; this one is stable).
pub(crate) fn list_jobs(st: &mut State, project: &str, req: &Req) -> Reply {
    let State {
        world,
        rng,
        running_flip_rate,
        ..
    } = st;
    let Some(data) = world.projects.get_mut(project) else {
        return unknown_project(req);
    };
    let (offset, limit) = match paging(req, "WKS.00120001") {
        Ok(paging) => paging,
        Err(reply) => return reply,
    };
    let status = req.param("status");
    let job_type = req.param("job_type");
    let matching: Vec<usize> = data
        .image_jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| {
            j.listed
                && status.is_none_or(|s| j.status == s)
                && job_type.is_none_or(|t| j.job_type == t)
        })
        .map(|(i, _)| i)
        .collect();
    let page: Vec<usize> = matching.iter().copied().skip(offset).take(limit).collect();
    let items = page
        .iter()
        .map(|&i| {
            let job = &data.image_jobs[i];
            WireItem {
                id: &job.id,
                job_type: &job.job_type,
                begin_time: render_time(job.begin_time),
                end_time: job.end_time.map(render_time),
                status: &job.status,
                sub_jobs_total: job.sub_jobs.len(),
            }
        })
        .collect();
    let reply = Reply::json(
        200,
        &WireList {
            count: matching.len(),
            items,
        },
    );
    for &i in &page {
        flip(&mut data.image_jobs[i], rng, *running_flip_rate);
    }
    reply
}

fn bad_parameter(code: &str, name: &str, v: &str, rule: &str) -> Reply {
    Reply::json_value(
        400,
        &json!({
            "error_code": code,
            "error_msg": format!("Invalid parameter {name}: {v:?}. {rule}"),
        }),
    )
}

/// `offset` (default 0) and `limit` (1..=100, default 10), or the 400 answer with
/// this API's error code.
fn paging(req: &Req, code: &str) -> Result<(usize, usize), Reply> {
    let offset = match req.param("offset") {
        None => 0,
        Some(v) => match parse_digits(v) {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => {
                return Err(bad_parameter(
                    code,
                    "offset",
                    v,
                    "The value must be a non-negative integer.",
                ));
            }
        },
    };
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match parse_digits(v) {
            Some(n @ 1..=MAX_LIMIT) => n,
            _ => {
                return Err(bad_parameter(
                    code,
                    "limit",
                    v,
                    "The value must be between 1 and 100.",
                ));
            }
        },
    };
    Ok((offset, usize::try_from(limit).unwrap_or(usize::MAX)))
}

/// `GET /v1/{project}/image-server-sub-jobs?job_type=&job_id=&status=&offset=&limit=`:
/// sub-jobs of one type (required, one value), in job order (newest job first)
/// then each job's own order. Without `job_id`, only listed jobs' sub-jobs.
pub(crate) fn list_sub_jobs(st: &mut State, project: &str, req: &Req) -> Reply {
    const CODE: &str = "WKS.00211102";
    let Some(data) = st.world.projects.get(project) else {
        return unknown_project(req);
    };
    let job_type = match req.param("job_type") {
        Some(t) if JOB_TYPES.contains(&t) => t,
        Some(t) => {
            return bad_parameter(CODE, "job_type", t, "The value must be one image job type.");
        }
        None => {
            return bad_parameter(CODE, "job_type", "", "The parameter is required.");
        }
    };
    let (offset, limit) = match paging(req, CODE) {
        Ok(paging) => paging,
        Err(reply) => return reply,
    };
    let job_id = req.param("job_id");
    let status = req.param("status");
    let matching: Vec<&ImageSubJob> = data
        .image_jobs
        .iter()
        .filter(|j| job_id.map_or(j.listed, |id| j.id == id))
        .flat_map(|j| &j.sub_jobs)
        .filter(|s| s.job_type == job_type && status.is_none_or(|st| s.status == st))
        .collect();
    let items = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| WireSubJob::of(s))
        .collect();
    Reply::json(
        200,
        &WireList::<WireSubJob> {
            count: matching.len(),
            items,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_digits_vary_with_the_value() {
        let at = |ms: i64| {
            render_time(DateTime::from_timestamp_millis(1_646_649_643_000 + ms).expect("valid"))
        };
        assert_eq!(at(858), "2022-03-07T10:40:43.858Z");
        assert_eq!(at(610), "2022-03-07T10:40:43.61Z");
        assert_eq!(at(0), "2022-03-07T10:40:43Z");
    }
}
