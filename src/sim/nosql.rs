//! GaussDB(for NoSQL) `GET /v3/{project_id}/jobs`: the query rules (window, limit,
//! offset, time formats) and the JobDetail wire shape.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;

use super::State;
use super::routes::{Reply, Req, parse_digits, unknown_project};
use super::world::NosqlJob;

/// The longest window the API accepts, and its default length.
const MAX_SPAN_DAYS: i64 = 30;

#[derive(Serialize)]
struct WireList<'a> {
    jobs: Vec<WireJob<'a>>,
    total_count: usize,
}

#[derive(Serialize)]
struct WireJob<'a> {
    id: &'a str,
    name: &'a str,
    status: &'a str,
    start_time: String,
    end_time: String,
    progress: &'a str,
    instance: WireInstance<'a>,
    fail_reason: &'a str,
}

#[derive(Serialize)]
struct WireInstance<'a> {
    id: &'a str,
    name: &'a str,
}

impl<'a> WireJob<'a> {
    fn of(job: &'a NosqlJob) -> Self {
        WireJob {
            id: &job.id,
            name: &job.name,
            status: &job.status,
            start_time: render_time(job.start, job.utc_offset_minutes),
            // The API sends "" rather than null while a job runs.
            end_time: job
                .end
                .map(|t| render_time(t, job.utc_offset_minutes))
                .unwrap_or_default(),
            progress: &job.progress,
            instance: WireInstance {
                id: &job.instance_id,
                name: &job.instance_name,
            },
            fail_reason: &job.fail_reason,
        }
    }
}

/// `2023-09-12T06:44:01+0800`: the job's own offset, no colon, no fraction.
pub(crate) fn render_time(t: DateTime<Utc>, offset_minutes: i32) -> String {
    let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap_or_else(|| Utc.fix());
    t.with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// Parses a query time: `yyyy-mm-ddThh:mm:ss` then `Z`, `±hhmm` or `±hh:mm`.
/// Anything else (fractions, a space where `+` was) is a bad format.
pub(crate) fn parse_query_time(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.get(..19)?, "%Y-%m-%dT%H:%M:%S").ok()?;
    let zone = s.get(19..)?;
    let seconds = if zone == "Z" {
        0
    } else {
        let sign = match zone.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits: String = match zone.get(1..)? {
            d if d.len() == 4 => d.to_owned(),
            d if d.len() == 5 && d.as_bytes()[2] == b':' => d.replacen(':', "", 1),
            _ => return None,
        };
        let hours = parse_digits(digits.get(..2)?)?;
        let minutes = parse_digits(digits.get(2..)?)?;
        if hours > 14 || minutes > 59 {
            return None;
        }
        // At most 14 h 59 min, so the cast is exact.
        sign * (hours * 3600 + minutes * 60) as i32
    };
    let offset = FixedOffset::east_opt(seconds)?;
    naive
        .and_local_timezone(offset)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// The validated query.
struct Query<'r> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    id: Option<&'r str>,
    status: Option<&'r str>,
    name: Option<&'r str>,
    offset: usize,
    limit: usize,
}

impl<'r> Query<'r> {
    fn parse(req: &'r Req, now: DateTime<Utc>) -> Result<Self, String> {
        let limit = match req.param("limit") {
            None => 50,
            Some(v) => match parse_digits(v) {
                Some(n @ (10 | 20 | 50)) => n as usize,
                _ => {
                    return Err(format!(
                        "Invalid parameter limit: {v:?}. The value must be 10, 20 or 50."
                    ));
                }
            },
        };
        let offset = match req.param("offset") {
            None => 0,
            Some(v) => parse_digits(v)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "Invalid parameter offset: {v:?}. The value must be a non-negative integer."
                    )
                })?,
        };
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
            req.param(name)
                .map(|v| {
                    parse_query_time(v).ok_or_else(|| {
                        format!(
                            "Invalid parameter {name}: {v:?}. The format must be yyyy-mm-ddThh:mm:ssZ, \
                             where Z is the time zone offset, for example 2023-09-12T06:44:01+0800."
                        )
                    })
                })
                .transpose()
        };
        // Defaults as documented: start = now − 30 days, end = now, each on its own
        // (so an old end_time alone is before the default start and is refused).
        let start = time("start_time")?.unwrap_or(now - Duration::days(MAX_SPAN_DAYS));
        let end = time("end_time")?.unwrap_or(now);
        if end <= start {
            return Err("Invalid parameter end_time: it must be later than start_time.".to_owned());
        }
        if end - start > Duration::days(MAX_SPAN_DAYS) {
            return Err(format!(
                "Invalid parameters start_time and end_time: the time range cannot exceed {MAX_SPAN_DAYS} days."
            ));
        }
        // An empty filter value filters nothing (assumed; the docs are silent).
        let filter = |name: &str| req.param(name).filter(|v| !v.is_empty());
        Ok(Query {
            start,
            end,
            id: filter("id"),
            status: filter("status"),
            name: filter("name"),
            offset,
            limit,
        })
    }

    fn matches(&self, job: &NosqlJob) -> bool {
        job.start >= self.start
            && job.start <= self.end
            && self.id.is_none_or(|id| job.id == id)
            && self.status.is_none_or(|s| job.status == s)
            && self.name.is_none_or(|n| job.name == n)
    }
}

/// Indexes of the jobs (kept newest start first) whose start lies in `[start, end]`.
fn window_range(
    jobs: &[NosqlJob],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> std::ops::Range<usize> {
    let first = jobs.partition_point(|j| j.start > end);
    let last = jobs.partition_point(|j| j.start >= start);
    first..last.max(first)
}

/// Lists jobs whose start lies in the window, newest first, one page; running jobs
/// on the page may then finish (seen as finished by the next call).
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
    let now = Utc::now();
    let query = match Query::parse(req, now) {
        Ok(q) => q,
        Err(msg) => {
            return Reply::json_value(400, &json!({"error_code": "DBS.200022", "error_msg": msg}));
        }
    };
    // `data.nosql` is kept newest-first (ties by id), the order the API serves, so
    // the window is one contiguous run found by binary search.
    let in_window = window_range(&data.nosql, query.start, query.end);
    let filtered = query.id.is_some() || query.status.is_some() || query.name.is_some();
    let (page, total_count): (Vec<usize>, usize) = if filtered {
        let matching: Vec<usize> = in_window
            .filter(|&i| query.matches(&data.nosql[i]))
            .collect();
        let total = matching.len();
        (
            matching
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .collect(),
            total,
        )
    } else {
        let total = in_window.len();
        (
            in_window.skip(query.offset).take(query.limit).collect(),
            total,
        )
    };
    let reply = Reply::json(
        200,
        &WireList {
            jobs: page.iter().map(|&i| WireJob::of(&data.nosql[i])).collect(),
            total_count,
        },
    );
    if *running_flip_rate > 0.0 {
        for &i in &page {
            let job = &mut data.nosql[i];
            if job.is_running() && rng.random_bool(*running_flip_rate) {
                job.finish(rng, now);
            }
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn query_times_accept_z_and_numeric_offsets() {
        let t = Utc.with_ymd_and_hms(2023, 9, 11, 22, 44, 1).single();
        assert_eq!(parse_query_time("2023-09-12T06:44:01+0800"), t);
        assert_eq!(parse_query_time("2023-09-12T06:44:01+08:00"), t);
        assert_eq!(parse_query_time("2023-09-11T22:44:01Z"), t);
        assert_eq!(parse_query_time("2023-09-11T17:44:01-0500"), t);
        for bad in [
            "2023-09-12T06:44:01 0800",
            "2023-09-12T06:44:01",
            "2023-09-12T06:44:01.000Z",
            "2023-09-12 06:44:01Z",
            "2023-09-12T06:44:01+8",
            "1694500000",
            "",
        ] {
            assert_eq!(parse_query_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn window_range_finds_exactly_the_jobs_a_scan_finds() {
        use crate::sim::{SimConfig, World};
        let mut config = SimConfig::new(9);
        config.nosql_jobs = 500;
        config.history_days = 40;
        let now = Utc::now();
        let world = World::generate(&config, now);
        let jobs = &world.projects[crate::sim::DEFAULT_PROJECT].nosql;
        let mut bounds: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.start).step_by(37).collect();
        bounds.extend([now - Duration::days(50), now, now - Duration::days(3)]);
        for &start in &bounds {
            for &end in &bounds {
                let scan: Vec<usize> = (0..jobs.len())
                    .filter(|&i| jobs[i].start >= start && jobs[i].start <= end)
                    .collect();
                let found: Vec<usize> = window_range(jobs, start, end).collect();
                assert_eq!(found, scan, "{start} … {end}");
            }
        }
    }

    #[test]
    fn wire_times_use_the_jobs_offset_without_colon() {
        let t = Utc
            .with_ymd_and_hms(2023, 9, 11, 22, 44, 1)
            .single()
            .expect("valid");
        assert_eq!(render_time(t, 480), "2023-09-12T06:44:01+0800");
        assert_eq!(render_time(t, 0), "2023-09-11T22:44:01+0000");
        assert_eq!(render_time(t, -300), "2023-09-11T17:44:01-0500");
    }
}
