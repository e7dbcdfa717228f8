//! One request through the simulated gateway: read it, refuse a service its
//! project's region lacks, pick a fault, throttle, check credentials, route to the
//! service, record it, and answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use chrono::{Duration, Utc};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::json;

use super::faults::{self, Fault};
use super::sigv::{self, SigError};
use super::{
    DropConnection, MissingServiceCall, REQUEST_LOG_CAP, RequestRecord, Shared, SimAuth, State,
    account, dbss, image, nosql,
};

/// What the real services send as Content-Type.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";

/// Request bodies larger than this are refused (only the IAM call has a body).
const MAX_BODY: usize = 1 << 20;

/// A request as received: raw path and query for matching and signatures, decoded
/// query pairs for the handlers.
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) raw_query: Option<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) request_id: String,
}

impl Req {
    /// The first value of a query parameter, percent-decoded.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits and decodes a query string the way form decoding does: `%2B` is a plus, a
/// raw `+` is a space (so an unencoded `+0800` arrives as ` 0800`, as on the real API).
pub(crate) fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Which API a path names; ids are percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    IamTokens,
    /// `GET /v3/projects` (the SDKs' project-id lookup).
    IamProjects,
    /// `GET /v3/auth/projects`.
    IamAuthProjects,
    NosqlJobs {
        project: String,
    },
    DbssJobs {
        project: String,
        resource_id: String,
        legacy: bool,
    },
    AuditInstances {
        project: String,
    },
    ImageJobs {
        project: String,
    },
    ImageJob {
        project: String,
        job_id: String,
    },
    ImageSubJobs {
        project: String,
    },
    Unknown,
}

impl Route {
    /// Routes `method` + `path`. One trailing slash is ignored: the signer treats
    /// `/a` and `/a/` alike and we assume the gateway does too.
    pub(crate) fn classify(method: &str, path: &str) -> Route {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<String> = trimmed
            .split('/')
            .skip(1)
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let route = match s.as_slice() {
            ["v3", "auth", "tokens"] => {
                return if method == "POST" {
                    Route::IamTokens
                } else {
                    Route::Unknown
                };
            }
            ["v3", "projects"] => Route::IamProjects,
            ["v3", "auth", "projects"] => Route::IamAuthProjects,
            ["v3", p, "jobs"] => Route::NosqlJobs {
                project: (*p).to_owned(),
            },
            ["v1", p, "dbss", "audit", "jobs", r] => Route::DbssJobs {
                project: (*p).to_owned(),
                resource_id: (*r).to_owned(),
                legacy: true,
            },
            ["v1", p, "audit", r, "jobs"] => Route::DbssJobs {
                project: (*p).to_owned(),
                resource_id: (*r).to_owned(),
                legacy: false,
            },
            ["v2", p, "audit", "instances"] => Route::AuditInstances {
                project: (*p).to_owned(),
            },
            ["v1", p, "image-server-jobs"] => Route::ImageJobs {
                project: (*p).to_owned(),
            },
            ["v1", p, "image-server-jobs", j] => Route::ImageJob {
                project: (*p).to_owned(),
                job_id: (*j).to_owned(),
            },
            ["v1", p, "image-server-sub-jobs"] => Route::ImageSubJobs {
                project: (*p).to_owned(),
            },
            _ => Route::Unknown,
        };
        if method == "GET" {
            route
        } else {
            Route::Unknown
        }
    }
}

impl Route {
    /// The project and service (`nosql`, `dbss`, `image`) a job API route calls;
    /// `None` for IAM and unknown paths, which no region lacks.
    pub(crate) fn service(&self) -> Option<(&str, &'static str)> {
        match self {
            Route::NosqlJobs { project } => Some((project, "nosql")),
            Route::DbssJobs { project, .. } | Route::AuditInstances { project } => {
                Some((project, "dbss"))
            }
            Route::ImageJobs { project }
            | Route::ImageJob { project, .. }
            | Route::ImageSubJobs { project } => Some((project, "image")),
            Route::IamTokens | Route::IamProjects | Route::IamAuthProjects | Route::Unknown => None,
        }
    }
}

/// An answer before it becomes an HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::raw(status, JSON, body),
            Err(err) => Reply::raw(
                500,
                JSON,
                json!({"error_code": "SIM.0001", "error_msg": format!("simulator could not render: {err}")})
                    .to_string()
                    .into_bytes(),
            ),
        }
    }

    pub(crate) fn json_value(status: u16, value: &serde_json::Value) -> Reply {
        Reply::raw(status, JSON, value.to_string().into_bytes())
    }

    fn into_response(self, request_id: &str) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        let extra = self.headers.iter().map(|(k, v)| (*k, v.as_str()));
        for (name, value) in [
            ("content-type", self.content_type),
            ("x-request-id", request_id),
        ]
        .into_iter()
        .chain(extra)
        {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// `{error_code, error_msg, request_id}` as the API gateway answers.
pub(crate) fn gateway_error(status: u16, code: &str, msg: &str, req: &Req) -> Reply {
    Reply::json_value(
        status,
        &json!({"error_code": code, "error_msg": msg, "request_id": req.request_id}),
    )
}

/// The gateway's answer for a path or method it has no API for.
pub(crate) fn api_not_found(req: &Req) -> Reply {
    gateway_error(
        404,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment",
        req,
    )
}

/// The gateway's answer for a project id it does not know (flat body).
pub(crate) fn unknown_project(req: &Req) -> Reply {
    gateway_error(404, "APIGW.0311", "The project id is invalid", req)
}

/// Serves one request (hyper's service function).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY)
        .await
        .map_err(|_| DropConnection)?;
    let raw_query = parts.uri.query().map(str::to_owned);
    let mut req = Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: raw_query.as_deref().map(decode_query).unwrap_or_default(),
        raw_query,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        request_id: String::new(),
    };
    let route = Route::classify(&req.method, &req.path);

    // Decide the fault under the lock; sleep outside it.
    let (missing, fault, latency, limit) = {
        let mut guard = shared.lock();
        let st = &mut *guard;
        req.request_id = format!("{:032x}", st.rng.random::<u128>());
        let missing = record_missing_service(st, &req, &route);
        // A host that does not exist has no faults and no rate limit.
        let fault = if missing { None } else { pick_fault(st, &req) };
        let limit = st.bucket.as_ref().map_or(20, |b| b.limit());
        (missing, fault, st.latency, limit)
    };
    if let Some(Fault::Hang(delay) | Fault::Latency(delay) | Fault::MovedJob { after: delay, .. }) =
        &fault
    {
        tokio::time::sleep(*delay).await;
    }
    if fault == Some(Fault::ConnectionReset) {
        record(&shared, &req, 0);
        return Err(DropConnection);
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let reply = {
        let mut guard = shared.lock();
        let st = &mut *guard;
        let reply = match fault
            .as_ref()
            .and_then(|f| faults::replacement(f, &req, &route, limit))
        {
            Some(reply) => reply,
            None if missing => api_not_found(&req),
            None => faults::after_answer(fault.as_ref(), answer(st, &req, &route), &route),
        };
        st.requests.push(record_of(&req, reply.status));
        reply
    };
    Ok(reply.into_response(&req.request_id))
}

/// The fault for this request: a matching rule, else a random one, else 429 when
/// over the rate limit.
fn pick_fault(st: &mut State, req: &Req) -> Option<Fault> {
    let raw_query = req.raw_query.as_deref().unwrap_or("");
    let mut fault = faults::take_matching(&mut st.faults, &req.path, raw_query);
    if fault.is_none() && st.fault_rate > 0.0 && st.rng.random_bool(st.fault_rate) {
        fault = Some(faults::random_fault(&mut st.rng));
    }
    if fault.is_none()
        && st
            .bucket
            .as_mut()
            .is_some_and(|b| !b.try_take(Instant::now()))
    {
        fault = Some(Fault::TooManyRequests {
            retry_after_secs: Some(1),
        });
    }
    fault
}

/// Whether the route calls a service its project's region lacks; if so, records
/// the call. The real cloud has no such host; tests assert none is ever made.
fn record_missing_service(st: &mut State, req: &Req, route: &Route) -> bool {
    let Some((project, service)) = route.service() else {
        return false;
    };
    let Some(region) = st.world.region_of(project) else {
        return false;
    };
    if account::region_offers(region, service) {
        return false;
    }
    if st.missing_calls.len() < REQUEST_LOG_CAP {
        st.missing_calls.push(MissingServiceCall {
            project_id: project.to_owned(),
            region: region.to_owned(),
            service,
            path: req.path.clone(),
        });
    }
    true
}

fn record(shared: &Shared, req: &Req, status: u16) {
    shared.lock().requests.push(record_of(req, status));
}

fn record_of(req: &Req, status: u16) -> RequestRecord {
    RequestRecord {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        status,
    }
}

/// The real answer: the gateway's checks (API exists, credentials), then the service.
fn answer(st: &mut State, req: &Req, route: &Route) -> Reply {
    match route {
        Route::Unknown => return api_not_found(req),
        Route::IamTokens => return iam_tokens(st, req),
        // A retired (or not yet deployed) API is gone at the gateway, before any
        // credential check.
        Route::DbssJobs { legacy, .. } if !st.dbss_paths.serves(*legacy) => {
            return api_not_found(req);
        }
        _ => {}
    }
    if let Err(reply) = check_auth(&st.auth, req) {
        return reply;
    }
    match route {
        Route::NosqlJobs { project } => nosql::list_jobs(st, project, req),
        Route::DbssJobs {
            project,
            resource_id,
            legacy,
        } => dbss::jobs(st, project, resource_id, *legacy, req),
        Route::AuditInstances { project } => dbss::instances(st, project, req),
        Route::ImageJobs { project } => image::list_jobs(st, project, req),
        Route::ImageJob { project, job_id } => image::show_job(st, project, job_id, req),
        Route::ImageSubJobs { project } => image::list_sub_jobs(st, project, req),
        Route::IamProjects => account::list_projects(st, req),
        Route::IamAuthProjects => account::list_auth_projects(st),
        Route::Unknown | Route::IamTokens => api_not_found(req),
    }
}

/// The gateway's credential check.
fn check_auth(auth: &SimAuth, req: &Req) -> Result<(), Reply> {
    let refuse = |code: &str, why: &str| {
        gateway_error(
            401,
            code,
            &format!("Incorrect IAM authentication information: {why}"),
            req,
        )
    };
    match auth {
        SimAuth::Any => Ok(()),
        SimAuth::Token(expected) => match req.header("x-auth-token") {
            None => Err(refuse("APIGW.0301", "x-auth-token not found")),
            Some(token) if token == expected => Ok(()),
            Some(_) => Err(refuse("APIGW.0301", "decrypt token fail")),
        },
        SimAuth::AkSk {
            ak,
            sk,
            security_token,
        } => {
            let incoming = sigv::IncomingRequest {
                method: &req.method,
                path: &req.path,
                raw_query: req.raw_query.as_deref(),
                headers: &req.headers,
                body: &req.body,
            };
            match sigv::verify(&incoming, ak, sk, Utc::now()) {
                Ok(()) => {}
                Err(SigError::ClockSkew) => {
                    return Err(gateway_error(
                        401,
                        "APIGW.0303",
                        "Incorrect app authentication information: the request time differs \
                         from the server time by more than 15 minutes",
                        req,
                    ));
                }
                Err(_) => return Err(refuse("APIGW.0301", "verify aksk signature fail")),
            }
            match (security_token, req.header("x-security-token")) {
                (None, _) => Ok(()),
                (Some(expected), Some(got)) if got == expected => Ok(()),
                (Some(_), _) => Err(refuse("APIGW.0301", "verify security token fail")),
            }
        }
    }
}

/// `POST /v3/auth/tokens` with a password identity: 201 and `X-Subject-Token`.
fn iam_tokens(st: &mut State, req: &Req) -> Reply {
    let iam_error = |code: u16, title: &str, message: &str| {
        Reply::json_value(
            code,
            &json!({"error": {"code": code, "message": message, "title": title}}),
        )
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return iam_error(400, "Bad Request", "The request body is not valid JSON.");
    };
    let identity = &body["auth"]["identity"];
    let user = &identity["password"]["user"];
    let uses_password = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|v| v == "password"));
    let (Some(name), Some(password), Some(domain)) = (
        user["name"].as_str(),
        user["password"].as_str(),
        user["domain"]["name"].as_str(),
    ) else {
        return iam_error(
            400,
            "Bad Request",
            "Invalid input for field 'identity': the password identity needs user name, password and domain name.",
        );
    };
    if !uses_password {
        return iam_error(400, "Bad Request", "Invalid input for field 'methods'.");
    }
    let accepted = st
        .iam_user
        .as_ref()
        .is_some_and(|(u, p)| u == name && p == password);
    if !accepted {
        return iam_error(401, "Unauthorized", "The username or password is wrong.");
    }
    let token = match &st.auth {
        SimAuth::Token(t) => t.clone(),
        _ => format!("MIIsim{}", hex_token(&mut st.rng)),
    };
    let scope = body["auth"]["scope"]["project"]["name"]
        .as_str()
        .unwrap_or("cn-north-4");
    // The project named in the scope, else the first one served.
    let project_id = st
        .world
        .account
        .iter()
        .find(|p| p.name == scope)
        .map(|p| p.id.clone())
        .or_else(|| st.world.projects.keys().next().cloned())
        .unwrap_or_default();
    let now = Utc::now();
    let stamp = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let mut reply = Reply::json_value(
        201,
        &json!({"token": {
            "methods": ["password"],
            "issued_at": stamp(now),
            "expires_at": stamp(now + Duration::hours(24)),
            "user": {"name": name, "id": "0a5b6c7d8e9f00112233445566778899", "domain": {"name": domain, "id": "d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f"}},
            "project": {"name": scope, "id": project_id},
        }}),
    );
    reply.headers.push(("x-subject-token", token));
    reply
}

fn hex_token(rng: &mut StdRng) -> String {
    (0..4)
        .map(|_| format!("{:032x}", rng.random::<u128>()))
        .collect()
}

/// Parses a non-negative integer written only with ASCII digits.
pub(crate) fn parse_digits(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_keeps_encoded_plus_and_turns_raw_plus_into_space() {
        let q = decode_query(
            "start_time=2024-01-01T00%3A00%3A00%2B0800&end_time=2024-01-02T00:00:00+0800&x",
        );
        assert_eq!(q[0].1, "2024-01-01T00:00:00+0800");
        assert_eq!(q[1].1, "2024-01-02T00:00:00 0800");
        assert_eq!(q[2], ("x".to_owned(), String::new()));
    }

    #[test]
    fn routes_are_classified() {
        let p = "0549b4a43100d4f32f51c01c2fe4acdb";
        assert_eq!(
            Route::classify("GET", &format!("/v3/{p}/jobs/")),
            Route::NosqlJobs { project: p.into() }
        );
        assert_eq!(
            Route::classify("GET", &format!("/v1/{p}/audit/r%2D1/jobs")),
            Route::DbssJobs {
                project: p.into(),
                resource_id: "r-1".into(),
                legacy: false
            }
        );
        assert_eq!(
            Route::classify("POST", &format!("/v3/{p}/jobs")),
            Route::Unknown
        );
        assert_eq!(Route::classify("POST", "/v3/auth/tokens"), Route::IamTokens);
        assert_eq!(Route::classify("GET", "/v3/projects"), Route::IamProjects);
        assert_eq!(
            Route::classify("GET", "/v3/auth/projects/"),
            Route::IamAuthProjects
        );
        assert_eq!(Route::classify("POST", "/v3/projects"), Route::Unknown);
        assert_eq!(
            Route::classify("GET", &format!("/v1/{p}/image-server-sub-jobs")),
            Route::ImageSubJobs { project: p.into() }
        );
        assert_eq!(
            Route::classify("GET", &format!("/v1/{p}/image-server-sub-jobs")).service(),
            Some((p, "image"))
        );
        assert_eq!(Route::IamProjects.service(), None);
        assert_eq!(Route::classify("GET", "/v3/auth/tokens"), Route::Unknown);
    }
}
