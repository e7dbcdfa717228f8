//! DBSS: audit-instance jobs on the legacy path (nested error body) and its successor
//! (flat error body), and the audit instance list used for discovery.

use chrono::{SecondsFormat, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;

use super::State;
use super::routes::{Reply, Req, parse_digits, unknown_project};
use super::world::{AuditInstance, DbssJob};

/// The instance list's largest page and its default.
const MAX_LIMIT: u64 = 1000;
const DEFAULT_LIMIT: u64 = 100;

#[derive(Serialize)]
struct WireJobs<'a> {
    jobs: Vec<WireJob<'a>>,
}

/// A JobBean: every field present, absent values as null.
#[derive(Serialize)]
struct WireJob<'a> {
    job_id: &'a str,
    status: &'a str,
    job_type: Option<&'a str>,
    server_id: Option<&'a str>,
    server_name: Option<&'a str>,
    resource_id: Option<&'a str>,
    begin_time: Option<i64>,
    end_time: Option<i64>,
    charge_mode: &'a str,
    error_code: Option<&'a str>,
    fail_reason: Option<&'a str>,
    ha_id: Option<&'a str>,
    ha_name: Option<&'a str>,
}

impl<'a> WireJob<'a> {
    fn of(job: &'a DbssJob) -> Self {
        WireJob {
            job_id: &job.job_id,
            status: &job.status,
            job_type: job.job_type.as_deref(),
            server_id: job.server_id.as_deref(),
            server_name: job.server_name.as_deref(),
            resource_id: job.resource_id.as_deref(),
            begin_time: job.begin_time,
            end_time: job.end_time,
            charge_mode: &job.charge_mode,
            error_code: job.error_code.as_deref(),
            fail_reason: job.fail_reason.as_deref(),
            ha_id: job.ha_id.as_deref(),
            ha_name: job.ha_name.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct WireInstances<'a> {
    instances: Vec<WireInstance<'a>>,
    total: usize,
}

/// An AuditInstanceBean, with the fields discovery needs and a few others.
#[derive(Serialize)]
struct WireInstance<'a> {
    id: &'a str,
    name: &'a str,
    resource_id: &'a str,
    status: &'a str,
    task: &'a str,
    created: String,
    charge_model: &'a str,
    version: &'a str,
}

impl<'a> WireInstance<'a> {
    fn of(instance: &'a AuditInstance) -> Self {
        let oldest = instance.jobs.last();
        let created = oldest
            .and_then(|j| j.begin_time)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        WireInstance {
            id: &instance.id,
            name: &instance.name,
            resource_id: &instance.resource_id,
            status: &instance.status,
            task: if instance.status == "BUILD" {
                "CREATING"
            } else {
                "NO_TASK"
            },
            created,
            charge_model: oldest.map_or("Period", |j| j.charge_mode.as_str()),
            version: "25.1.0.3",
        }
    }
}

/// Flat error body of the current DBSS APIs.
fn flat_error(status: u16, code: &str, msg: &str) -> Reply {
    Reply::json_value(
        status,
        &json!({
            "error_code": code,
            "error_msg": msg,
            "encoded_authorization_message": null,
            "details": [],
        }),
    )
}

/// `GET /v1/{project}/dbss/audit/jobs/{resource_id}` (legacy) or
/// `GET /v1/{project}/audit/{resource_id}/jobs`: all jobs, newest first, no paging.
pub(crate) fn jobs(
    st: &mut State,
    project: &str,
    resource_id: &str,
    legacy: bool,
    req: &Req,
) -> Reply {
    let State {
        world,
        rng,
        running_flip_rate,
        ..
    } = st;
    let Some(data) = world.projects.get_mut(project) else {
        return unknown_project(req);
    };
    // Unlisted instances are reachable here too: the list is only for discovery.
    let Some(instance) = data
        .audit_instances
        .iter_mut()
        .find(|i| i.resource_id == resource_id)
    else {
        let msg = format!("The audit instance does not exist: {resource_id}");
        return if legacy {
            Reply::json_value(
                404,
                &json!({"error": {"error_code": "DBSS.10010004", "error_msg": msg}}),
            )
        } else {
            flat_error(404, "DBSS.10010004", &msg)
        };
    };
    let reply = Reply::json(
        200,
        &WireJobs {
            jobs: instance.jobs.iter().map(WireJob::of).collect(),
        },
    );
    if *running_flip_rate > 0.0 {
        let now = Utc::now();
        for job in &mut instance.jobs {
            if job.is_running() && rng.random_bool(*running_flip_rate) {
                job.finish(rng, now);
            }
        }
        settle_instance_status(instance);
    }
    reply
}

/// An instance whose newest job has settled is no longer building.
fn settle_instance_status(instance: &mut AuditInstance) {
    if instance.status == "BUILD" {
        match instance.jobs.first().map(|j| j.status.as_str()) {
            Some("SUCCESS") => instance.status = "ACTIVE".to_owned(),
            Some("FAIL") => instance.status = "ERROR".to_owned(),
            _ => {}
        }
    }
}

/// `GET /v2/{project}/audit/instances?offset=&limit=`: listed instances in a stable order.
pub(crate) fn instances(st: &mut State, project: &str, req: &Req) -> Reply {
    let Some(data) = st.world.projects.get(project) else {
        return unknown_project(req);
    };
    let bad = |name: &str, v: &str, rule: &str| {
        flat_error(
            400,
            "DBSS.10010001",
            &format!("Invalid parameter {name}: {v:?}. {rule}"),
        )
    };
    let offset = match req.param("offset") {
        None => 0,
        Some(v) => match parse_digits(v) {
            Some(n) => n,
            None => return bad("offset", v, "The value must be a non-negative integer."),
        },
    };
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match parse_digits(v) {
            Some(n @ 1..=MAX_LIMIT) => n,
            _ => return bad("limit", v, "The value must be between 1 and 1000."),
        },
    };
    let listed: Vec<&AuditInstance> = data.audit_instances.iter().filter(|i| i.listed).collect();
    let page = listed
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|i| WireInstance::of(i))
        .collect();
    Reply::json(
        200,
        &WireInstances {
            instances: page,
            total: listed.len(),
        },
    )
}
