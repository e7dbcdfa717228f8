//! Injected trouble: fault rules chosen per request, random transient faults, the
//! rate limiter, and the broken replies each fault produces.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::json;

use super::routes::{JSON, Reply, Req, Route, gateway_error};

/// A fault to inject into matching requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Substring of the request path (e.g. `"/jobs"` or a resource id).
    pub path_contains: String,
    /// Substring of the raw (still percent-encoded) query string, e.g. `"offset=50"`.
    pub query_contains: Option<String>,
    pub fault: Fault,
    /// `None`: every matching request; `Some(n)`: the next `n` matching requests.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule for every request whose path contains `path_contains`.
    pub fn new(path_contains: impl Into<String>, fault: Fault) -> Self {
        FaultRule {
            path_contains: path_contains.into(),
            query_contains: None,
            fault,
            times: None,
        }
    }

    /// Only requests whose raw query contains `query_contains`.
    pub fn with_query(mut self, query_contains: impl Into<String>) -> Self {
        self.query_contains = Some(query_contains.into());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, path: &str, raw_query: &str) -> bool {
        self.times != Some(0)
            && path.contains(&self.path_contains)
            && self
                .query_contains
                .as_ref()
                .is_none_or(|q| raw_query.contains(q.as_str()))
    }
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// That status with the API's own error body (gateway-style for 502/504).
    Status(u16),
    /// 429 with the gateway's APIGW.0308 throttling body.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// The connection is closed without any response.
    ConnectionReset,
    /// Waits this long, then answers normally (for client timeouts).
    Hang(Duration),
    /// 200 with the real JSON cut in half (Content-Length of the cut body).
    Truncated,
    /// 200 with body `{not json`.
    InvalidJson,
    /// 200 with valid JSON of the wrong shape (wrong types in the expected fields).
    WrongShape,
    /// 502 with an HTML page from a proxy, Content-Type text/html.
    HtmlPage,
    /// 200 with the right body but Content-Type text/plain.
    WrongContentType,
    /// 200 with the real JSON padded (a `_padding` field) to this many bytes.
    Oversized(usize),
    /// Waits this long, then answers normally.
    Latency(Duration),
    /// NoSQL list: `total_count` 7 higher than the truth on this page.
    ChangingTotal,
    /// NoSQL list: `total_count` replaced by this value (e.g. an absurd one).
    TotalCount(u64),
    /// 200 with these bytes — one JSON member, `"key":value`, possibly hostile:
    /// huge, deeply nested, not UTF-8 — added as the first member of the first
    /// job of the answer (NoSQL and DBSS job lists, an image job).
    JobMember(Vec<u8>),
    /// NoSQL list: the first job of the page replaced by `job` (JSON text), as
    /// when a job moved onto this page while the list was paged; answered
    /// `after` this long (to choose which page arrives first).
    MovedJob { job: String, after: Duration },
    /// Discovery lists (audit instances, image jobs): these IDs listed too.
    ExtraIds(Vec<String>),
    /// That status with exactly this body, as JSON (a hostile `error_msg`).
    Body(u16, String),
}

/// Takes the first rule that matches (rules are checked in the order added) and
/// counts it down; a rule whose count reaches zero is removed.
pub(crate) fn take_matching(
    rules: &mut Vec<FaultRule>,
    path: &str,
    raw_query: &str,
) -> Option<Fault> {
    let index = rules.iter().position(|r| r.matches(path, raw_query))?;
    let fault = rules[index].fault.clone();
    if let Some(n) = rules[index].times.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            rules.remove(index);
        }
    }
    Some(fault)
}

/// A transient fault of the kinds real gateways produce under load.
pub(crate) fn random_fault(rng: &mut StdRng) -> Fault {
    match rng.random_range(0..5) {
        0 => Fault::Status(500),
        1 => Fault::Status(502),
        2 => Fault::Status(503),
        3 => Fault::Status(504),
        _ => Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
    }
}

/// A one-second token bucket shared by all endpoints.
pub(crate) struct TokenBucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        TokenBucket {
            per_second,
            tokens: per_second,
            last: Instant::now(),
        }
    }

    pub(crate) fn limit(&self) -> u32 {
        // Built from a u32, so the cast is exact.
        self.per_second as u32
    }

    /// Takes a token if one is left; refills continuously at the limit per second.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The answer to a fault that replaces the real answer, or `None` when the real answer
/// is needed first (see [`after_answer`]).
pub(crate) fn replacement(fault: &Fault, req: &Req, route: &Route, limit: u32) -> Option<Reply> {
    Some(match fault {
        Fault::Status(code) => status_reply(*code, req, route),
        Fault::TooManyRequests { retry_after_secs } => {
            too_many_requests(*retry_after_secs, limit, req)
        }
        Fault::InvalidJson => Reply::raw(200, JSON, b"{not json".to_vec()),
        Fault::Body(status, body) => Reply::raw(*status, JSON, body.clone().into_bytes()),
        Fault::WrongShape => Reply::raw(200, JSON, wrong_shape(route).to_string().into_bytes()),
        Fault::HtmlPage => Reply::raw(
            502,
            "text/html",
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
              <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
              </body>\r\n</html>\r\n"
                .to_vec(),
        ),
        Fault::ConnectionReset
        | Fault::Hang(_)
        | Fault::Latency(_)
        | Fault::Truncated
        | Fault::WrongContentType
        | Fault::Oversized(_)
        | Fault::ChangingTotal
        | Fault::TotalCount(_)
        | Fault::JobMember(_)
        | Fault::MovedJob { .. }
        | Fault::ExtraIds(_) => return None,
    })
}

/// Spoils a real answer according to the fault.
pub(crate) fn after_answer(fault: Option<&Fault>, mut reply: Reply, route: &Route) -> Reply {
    match fault {
        Some(Fault::Truncated) => {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        Some(Fault::WrongContentType) => reply.content_type = "text/plain",
        Some(Fault::Oversized(size)) => reply.body = pad(&reply.body, *size),
        Some(Fault::TotalCount(n)) if matches!(route, Route::NosqlJobs { .. }) => {
            if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&reply.body) {
                value["total_count"] = json!(n);
                reply.body = value.to_string().into_bytes();
            }
        }
        Some(Fault::JobMember(member)) => reply.body = with_member(&reply.body, member, route),
        Some(Fault::MovedJob { job, .. }) if matches!(route, Route::NosqlJobs { .. }) => {
            if let (Ok(mut value), Ok(job)) = (
                serde_json::from_slice::<serde_json::Value>(&reply.body),
                serde_json::from_str::<serde_json::Value>(job),
            ) && let Some(first) = value["jobs"].get_mut(0)
            {
                *first = job;
                reply.body = value.to_string().into_bytes();
            }
        }
        Some(Fault::ExtraIds(ids)) => {
            if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&reply.body) {
                let (list, item): (&str, fn(&str) -> serde_json::Value) = match route {
                    Route::AuditInstances { .. } => (
                        "instances",
                        |id| json!({"id": format!("inst-{id}"), "resource_id": id, "name": "planted", "status": "ACTIVE"}),
                    ),
                    _ => (
                        "items",
                        |id| json!({"id": id, "job_type": "CREATE_SERVER", "status": "SUCCESS"}),
                    ),
                };
                if let Some(items) = value[list].as_array_mut() {
                    items.extend(ids.iter().map(|id| item(id)));
                    reply.body = value.to_string().into_bytes();
                }
            }
        }
        Some(Fault::ChangingTotal) if matches!(route, Route::NosqlJobs { .. }) => {
            if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&reply.body)
                && let Some(total) = value.get("total_count").and_then(|t| t.as_u64())
            {
                value["total_count"] = json!(total + 7);
                reply.body = value.to_string().into_bytes();
            }
        }
        _ => {}
    }
    reply
}

/// 429 as the API gateway sends it.
pub(crate) fn too_many_requests(retry_after: Option<u64>, limit: u32, req: &Req) -> Reply {
    let msg = format!(
        "The throttling threshold has been reached: policy user over ratelimit,limit:{limit},time:1 second"
    );
    let mut reply = gateway_error(429, "APIGW.0308", &msg, req);
    if let Some(secs) = retry_after {
        reply.headers.push(("retry-after", secs.to_string()));
    }
    reply
}

/// A server error with the body the service (500/503) or the gateway (502/504) sends.
fn status_reply(code: u16, req: &Req, route: &Route) -> Reply {
    let msg = match code {
        500 => "Internal server error.",
        502 => "Bad gateway: the backend service is unavailable.",
        503 => "The service is temporarily unavailable. Please try again later.",
        504 => "Gateway timeout: the backend service did not answer in time.",
        400 => "Invalid request parameter.",
        401 => "Incorrect IAM authentication information.",
        403 => "The request is forbidden.",
        404 => "The resource does not exist.",
        _ => "Simulated error.",
    };
    if matches!(code, 502 | 504) || matches!(route, Route::Unknown | Route::IamTokens) {
        return gateway_error(code, "APIGW.0201", msg, req);
    }
    let value = match route {
        Route::NosqlJobs { .. } => json!({"error_code": "DBS.200001", "error_msg": msg}),
        Route::DbssJobs { legacy: true, .. } => {
            json!({"error": {"error_code": "DBSS.00000001", "error_msg": msg}})
        }
        Route::DbssJobs { .. } | Route::AuditInstances { .. } => json!({
            "error_code": "DBSS.00000001",
            "error_msg": msg,
            "encoded_authorization_message": null,
            "details": [],
        }),
        Route::IamProjects | Route::IamAuthProjects => {
            json!({"error": {"code": code, "message": msg, "title": "Error"}})
        }
        Route::ImageJobs { .. }
        | Route::ImageJob { .. }
        | Route::ImageSubJobs { .. }
        | Route::Unknown
        | Route::IamTokens => json!({"error_code": "WKS.00000001", "error_msg": msg}),
    };
    Reply::json_value(code, &value)
}

/// Valid JSON whose expected fields carry the wrong types.
fn wrong_shape(route: &Route) -> serde_json::Value {
    match route {
        Route::NosqlJobs { .. } => json!({"jobs": "oops", "total_count": "x"}),
        Route::DbssJobs { .. } => json!({"jobs": {"job_id": 17, "status": ["SUCCESS"]}}),
        Route::AuditInstances { .. } => json!({"instances": "oops", "total": "x"}),
        Route::ImageJobs { .. } | Route::ImageSubJobs { .. } => {
            json!({"count": "x", "items": {"id": 1}})
        }
        Route::IamProjects | Route::IamAuthProjects => json!({"projects": {"id": 1}, "links": 3}),
        Route::ImageJob { .. } => {
            json!({"id": 702364883651395584_u64, "status": 3, "sub_jobs": "oops", "begin_time": false})
        }
        Route::IamTokens | Route::Unknown => json!({"token": 42}),
    }
}

/// The body with `member` spliced in as the first member of its first job:
/// after `"jobs":[{` in a job list, after the opening brace of an image job.
/// Spliced as bytes, so the member may be anything (not UTF-8, nested past
/// any parser's limit).
fn with_member(body: &[u8], member: &[u8], route: &Route) -> Vec<u8> {
    const LIST: &[u8] = b"\"jobs\":[{";
    let at = match route {
        Route::ImageJob { .. } => body.iter().position(|&b| b == b'{').map(|i| i + 1),
        _ => body
            .windows(LIST.len())
            .position(|w| w == LIST)
            .map(|i| i + LIST.len()),
    };
    let Some(at) = at else {
        return body.to_vec();
    };
    let mut out = Vec::with_capacity(body.len() + member.len() + 1);
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(member);
    out.push(b',');
    out.extend_from_slice(&body[at..]);
    out
}

/// Pads a JSON object with a string field until the body is `size` bytes.
fn pad(body: &[u8], size: usize) -> Vec<u8> {
    const PREFIX: &[u8] = b"{\"_padding\":\"";
    let closing = if body.starts_with(b"{}") || !body.starts_with(b"{") {
        // Not an object with members: pad a fresh object instead.
        return pad(b"{\"ok\":true}", size);
    } else {
        b"\","
    };
    let fixed = PREFIX.len() + closing.len() + body.len() - 1;
    let filler = size.saturating_sub(fixed);
    let mut out = Vec::with_capacity(fixed + filler);
    out.extend_from_slice(PREFIX);
    out.resize(PREFIX.len() + filler, b'x');
    out.extend_from_slice(closing);
    out.extend_from_slice(&body[1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_json_valid_and_reaches_the_size() {
        let body = br#"{"jobs":[],"total_count":0}"#;
        let padded = pad(body, 10_000);
        assert_eq!(padded.len(), 10_000);
        let value: serde_json::Value = serde_json::from_slice(&padded).expect("valid json");
        assert_eq!(value["total_count"], 0);
        let small = pad(br#"{}"#, 50);
        assert!(serde_json::from_slice::<serde_json::Value>(&small).is_ok());
    }

    #[test]
    fn a_member_is_spliced_into_the_first_job() {
        let route = Route::NosqlJobs {
            project: "p".into(),
        };
        let body = br#"{"jobs":[{"id":"a"},{"id":"b"}],"total_count":2}"#;
        let out = with_member(body, b"\"x\":\"\xff\"", &route);
        assert_eq!(
            out,
            b"{\"jobs\":[{\"x\":\"\xff\",\"id\":\"a\"},{\"id\":\"b\"}],\"total_count\":2}".to_vec()
        );
        let image = Route::ImageJob {
            project: "p".into(),
            job_id: "j".into(),
        };
        assert_eq!(
            with_member(b"{\"id\":1}", b"\"y\":2", &image),
            b"{\"y\":2,\"id\":1}".to_vec()
        );
    }

    #[test]
    fn rules_count_down_and_vanish() {
        let mut rules = vec![
            FaultRule::new("/jobs", Fault::InvalidJson)
                .with_query("offset=50")
                .times(2),
            FaultRule::new("/jobs", Fault::Truncated),
        ];
        assert_eq!(
            take_matching(&mut rules, "/v3/p/jobs", "offset=50"),
            Some(Fault::InvalidJson)
        );
        assert_eq!(
            take_matching(&mut rules, "/v3/p/jobs", "offset=0"),
            Some(Fault::Truncated)
        );
        assert_eq!(
            take_matching(&mut rules, "/v3/p/jobs", "offset=50"),
            Some(Fault::InvalidJson)
        );
        assert_eq!(
            take_matching(&mut rules, "/v3/p/jobs", "offset=50"),
            Some(Fault::Truncated)
        );
        assert_eq!(rules.len(), 1);
        assert_eq!(take_matching(&mut rules, "/v2/p/audit/instances", ""), None);
    }

    #[test]
    fn bucket_refills_over_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(600)));
    }
}
