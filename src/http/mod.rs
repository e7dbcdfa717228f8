//! The HTTP layer every source shares: one reqwest client, credentials applied
//! to each attempt (a signature carries its time, so every retry is re-signed),
//! retries with exponential backoff and jitter honouring `Retry-After`, a bound
//! on requests in flight, a body size limit and a count of requests made, in
//! all and per (project, source).

// Errors carry the whole call site so every message names source, project and
// path; they are rare, so their size costs nothing that matters.
#![allow(clippy::result_large_err)]

mod error;
mod pacer;
pub mod path;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use error::TransportFailure;
pub use error::{Api, ApiError, CallSite, ErrorBody, TransportKind};
pub use path::{UnsafeSegment, api_path, segment_problem};

use crate::auth::{Credentials, OutgoingRequest, canonical_query_string};
use crate::model::Source;

/// Tunables of the HTTP layer; the defaults suit the real cloud, tests shorten them.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight at once, across every source and project.
    pub max_in_flight: usize,
    /// Attempts per call, the first included.
    pub max_attempts: usize,
    /// Total time one call may spend retrying before it gives up.
    pub retry_budget: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A response body larger than this is refused, so a hostile or broken
    /// endpoint cannot exhaust memory.
    pub max_body_bytes: usize,
    /// Retries of a 200 whose body does not parse (a truncated body can be a passing fault).
    pub malformed_retries: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 16,
            max_attempts: 6,
            retry_budget: Duration::from_secs(60),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_body_bytes: 32 * 1024 * 1024,
            malformed_retries: 2,
        }
    }
}

/// One GET to make: where it goes and what it is for (for error messages).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub source: Source,
    pub project_id: &'a str,
    pub base: &'a Url,
    pub path: String,
    pub query: Vec<(String, String)>,
}

/// The shared client. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    credentials: Option<Credentials>,
    limiter: Semaphore,
    requests: AtomicU64,
    /// Requests per project, one count per source (in [`Source::ALL`] order).
    /// A short lock per request, next to a network round trip.
    scope_requests: std::sync::Mutex<std::collections::HashMap<String, [u64; Source::ALL.len()]>>,
    /// Set by the first 401/403 (but a 403 APIGW.0302): every later call is
    /// refused without a request, since repeated bad signatures lock the key
    /// pair for five minutes.
    auth_refused: std::sync::atomic::AtomicBool,
    /// (project, source) pairs refused permission (403 APIGW.0302): their later
    /// calls are not sent; every other pair goes on.
    refused_scopes: std::sync::Mutex<std::collections::HashSet<(String, Source)>>,
    /// Set by the first 2xx: the credentials work.
    credentials_proven: std::sync::atomic::AtomicBool,
    /// Until the credentials are proven, one request at a time: bad credentials
    /// then cost exactly one refusal, not one per concurrent task (more than
    /// five refusals in a row lock the key pair).
    probe: tokio::sync::Mutex<()>,
    /// Slows every call down together when the cloud throttles.
    pacer: pacer::Pacer,
    /// Endpoints that never answered a whole call: origin → why.
    unreachable: std::sync::Mutex<std::collections::HashMap<String, TransportFailure>>,
    /// One body at a time may grow past [`LARGE_BODY_BYTES`]: with the
    /// in-flight bound, this bounds the bytes buffered however big the answers.
    large_bodies: Arc<Semaphore>,
    /// Answers read lossily because they were not valid UTF-8, per project and source.
    lossy: std::sync::Mutex<Vec<LossyAnswers>>,
    settings: HttpSettings,
}

/// A body may grow to this size before it needs the one large-body slot.
const LARGE_BODY_BYTES: usize = 1024 * 1024;

/// Answers of one project's source that were not valid UTF-8: each was read
/// with U+FFFD (the replacement character) in place of every invalid sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossyAnswers {
    pub source: Source,
    pub project_id: String,
    pub answers: u64,
    pub invalid_sequences: u64,
    /// The first such answer's path and query.
    pub first_path: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field(
                "credentials",
                &self.inner.credentials.as_ref().map(Credentials::describe),
            )
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// A response as far as the retry loop needs it.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// Valid UTF-8 for a 2xx (see `invalid_sequences`).
    body: Vec<u8>,
    /// Invalid UTF-8 sequences replaced by U+FFFD in a 2xx body.
    invalid_sequences: u64,
    /// Held while a large body is read and parsed.
    _large: Option<OwnedSemaphorePermit>,
}

impl ApiClient {
    /// Builds the client. `credentials` is `None` only against the simulator in
    /// its open mode.
    pub fn new(
        credentials: Option<Credentials>,
        settings: HttpSettings,
    ) -> Result<ApiClient, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("jobtrail/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Setup(e.to_string()))?;
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                limiter: Semaphore::new(settings.max_in_flight.max(1)),
                requests: AtomicU64::new(0),
                scope_requests: std::sync::Mutex::default(),
                auth_refused: std::sync::atomic::AtomicBool::new(false),
                refused_scopes: std::sync::Mutex::default(),
                credentials_proven: std::sync::atomic::AtomicBool::new(false),
                probe: tokio::sync::Mutex::new(()),
                pacer: pacer::Pacer::new(),
                unreachable: std::sync::Mutex::default(),
                large_bodies: Arc::new(Semaphore::new(1)),
                lossy: std::sync::Mutex::default(),
                settings,
            }),
        })
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests_made(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// HTTP requests sent so far for one project and source, retries included.
    pub fn requests_for(&self, project_id: &str, source: Source) -> u64 {
        let Ok(map) = self.inner.scope_requests.lock() else {
            return 0;
        };
        map.get(project_id)
            .map_or(0, |counts| counts[source_slot(source)])
    }

    /// Counts one request of `project_id` and `source`.
    fn count_request(&self, project_id: &str, source: Source) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.inner.scope_requests.lock() {
            let slot = source_slot(source);
            match map.get_mut(project_id) {
                Some(counts) => counts[slot] += 1,
                None => {
                    let mut counts = [0; Source::ALL.len()];
                    counts[slot] = 1;
                    map.insert(project_id.to_owned(), counts);
                }
            }
        }
    }

    /// The answers of this client's calls that were read lossily (not valid UTF-8).
    pub fn lossy_answers(&self) -> Vec<LossyAnswers> {
        self.inner
            .lossy
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Counts an answer read lossily, by project and source.
    fn note_lossy(&self, site: &CallSite, invalid_sequences: u64) {
        tracing::warn!(%site, invalid_sequences, "the answer is not valid UTF-8; read with U+FFFD in place of each invalid sequence");
        let (Some((project_id, source)), Ok(mut lossy)) = (site.scope(), self.inner.lossy.lock())
        else {
            return;
        };
        match lossy
            .iter_mut()
            .find(|l| l.source == source && l.project_id == project_id)
        {
            Some(l) => {
                l.answers += 1;
                l.invalid_sequences += invalid_sequences;
            }
            None => lossy.push(LossyAnswers {
                source,
                project_id: project_id.to_owned(),
                answers: 1,
                invalid_sequences,
                first_path: site.path.clone(),
            }),
        }
    }

    /// The credentials' fingerprint (a hash, never a key), to keep answers
    /// that depend on the account apart; `none` without credentials.
    pub fn credential_fingerprint(&self) -> String {
        self.inner
            .credentials
            .as_ref()
            .map_or_else(|| "none".to_owned(), Credentials::fingerprint)
    }

    /// What kind of credential is in use, for messages (never its value).
    pub fn credential_description(&self) -> String {
        self.inner
            .credentials
            .as_ref()
            .map_or_else(|| "no credentials".to_owned(), Credentials::describe)
    }

    /// GETs `call` and parses a 2xx body with `parse`, retrying what may pass
    /// (429, 5xx, connection errors, timeouts, a body that does not parse) and
    /// failing fast on what will not (401/403, 404 and other client errors).
    #[tracing::instrument(skip_all, fields(source = %call.source, project = call.project_id, path = %call.path))]
    pub async fn get<T>(
        &self,
        call: &Call<'_>,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let url = build_url(call.base, &call.path, &call.query);
        let site = CallSite::new(call.source, call.project_id, &url);
        self.fetch(&url, site, Some((call.project_id, call.source)), parse)
            .await
    }

    /// GETs an IAM path (`/v3/projects`, `/v3/auth/projects`) like any call:
    /// signed, retried, bounded, but without `X-Project-Id`, since IAM's
    /// answers are the account's, not one project's (as the SDKs ask).
    #[tracing::instrument(skip_all, fields(api = "iam", path = path))]
    pub async fn get_iam<T>(
        &self,
        base: &Url,
        path: &str,
        query: &[(String, String)],
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let url = build_url(base, path, query);
        let site = CallSite::iam(&url);
        self.fetch(&url, site, None, parse).await
    }

    /// The retry loop of one call to `url`.
    async fn fetch<T>(
        &self,
        url: &Url,
        site: CallSite,
        scope: Option<(&str, Source)>,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let inner = &self.inner;
        let settings = &inner.settings;
        // Until some answer shows the credentials are not refused, one call at a
        // time holds the probe, through its retries: bad credentials then cost one
        // refusal, and a dead endpoint one retry budget, not one per queued call.
        let mut probe = if inner.credentials_proven.load(Ordering::Acquire) {
            None
        } else {
            let guard = inner.probe.lock().await;
            (!inner.credentials_proven.load(Ordering::Acquire)).then_some(guard)
        };
        let started = Instant::now();
        let mut delays = ExponentialBuilder::new()
            .with_min_delay(settings.min_backoff)
            .with_max_delay(settings.max_backoff)
            .with_jitter()
            .with_max_times(settings.max_attempts.saturating_sub(1))
            .build();
        let mut attempts = 0usize;
        let mut malformed = 0usize;
        loop {
            if inner.auth_refused.load(Ordering::Acquire) {
                return Err(ApiError::Skipped {
                    site,
                    only_this_scope: false,
                });
            }
            if scope.is_some_and(|(project_id, source)| self.scope_refused(project_id, source)) {
                return Err(ApiError::Skipped {
                    site,
                    only_this_scope: true,
                });
            }
            if let Some(earlier) = self.unreachable(&site.endpoint) {
                return Err(ApiError::Transport {
                    site,
                    detail: format!(
                        "not requested: the endpoint did not answer earlier in this run ({})",
                        earlier.detail
                    ),
                    kind: earlier.kind,
                    attempts: 0,
                });
            }
            attempts += 1;
            let answer = self.attempt(url, scope).await;
            let (failure, retry_after) = match answer {
                Ok(answer) => match self.judge(&answer, &site, &mut probe, &parse) {
                    Ok(value) => return Ok(value),
                    Err(Judged::Final(failure)) => return Err(failure),
                    Err(Judged::Retry(failure, after)) => (failure, after),
                    Err(Judged::Malformed(failure)) => {
                        malformed += 1;
                        if malformed > settings.malformed_retries {
                            return Err(failure);
                        }
                        (failure, None)
                    }
                },
                Err(AttemptError::TooLarge(limit)) => {
                    return Err(ApiError::Malformed {
                        site: site.clone(),
                        detail: format!("response body larger than the {limit}-byte limit"),
                    });
                }
                Err(AttemptError::Transport(e)) => (
                    ApiError::Transport {
                        site: site.clone(),
                        detail: e.detail,
                        kind: e.kind,
                        attempts,
                    },
                    None,
                ),
            };
            let give_up = match delays.next() {
                None => None,
                Some(backoff) => {
                    let delay = retry_after.map_or(backoff, |ra| ra.max(backoff));
                    (started.elapsed() + delay <= settings.retry_budget).then_some(delay)
                }
            };
            let Some(delay) = give_up else {
                if let ApiError::Transport { detail, kind, .. } = &failure {
                    self.mark_unreachable(&site.endpoint, detail, *kind);
                }
                return Err(failure.with_attempts(attempts));
            };
            tracing::debug!(attempt = attempts, delay_ms = delay.as_millis() as u64, error = %failure, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// What one HTTP answer means for the call: its parsed value, or a failure
    /// and whether another attempt may pass. Feeds the pacer and the
    /// credentials' state on the way.
    fn judge<T>(
        &self,
        answer: &Answer,
        site: &CallSite,
        probe: &mut Option<tokio::sync::MutexGuard<'_, ()>>,
        parse: &impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, Judged> {
        let inner = &self.inner;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            inner.pacer.throttled(retry_after(&answer.headers));
        } else {
            inner.pacer.succeeded();
        }
        if answer.status.is_success() {
            self.credentials_work(probe);
            let value = parse(&answer.body).map_err(|detail| {
                Judged::Malformed(ApiError::Malformed {
                    site: site.clone(),
                    detail,
                })
            })?;
            if answer.invalid_sequences > 0 {
                self.note_lossy(site, answer.invalid_sequences);
            }
            return Ok(value);
        }
        let failure = ApiError::from_status(
            site,
            answer.status,
            &answer.body,
            &answer.headers,
            &self.credential_description(),
        );
        if failure.is_permission_refusal() {
            // The signature passed: the credentials work, this scope may not.
            self.credentials_work(probe);
            if let (Some((project_id, source)), Ok(mut refused)) =
                (site.scope(), inner.refused_scopes.lock())
            {
                refused.insert((project_id.to_owned(), source));
            }
            return Err(Judged::Final(failure));
        }
        if failure.is_auth() {
            inner.auth_refused.store(true, Ordering::Release);
            return Err(Judged::Final(failure));
        }
        self.credentials_work(probe);
        if !is_retryable_status(answer.status) {
            return Err(Judged::Final(failure));
        }
        Err(Judged::Retry(failure, retry_after(&answer.headers)))
    }

    /// An answer other than a refusal: the credentials are not the problem, so
    /// calls may go out in parallel from now on.
    fn credentials_work(&self, probe: &mut Option<tokio::sync::MutexGuard<'_, ()>>) {
        self.inner.credentials_proven.store(true, Ordering::Release);
        *probe = None;
    }

    /// Whether this project's calls to this API were refused permission earlier in this run.
    fn scope_refused(&self, project_id: &str, source: Source) -> bool {
        self.inner.refused_scopes.lock().is_ok_and(|refused| {
            !refused.is_empty() && refused.contains(&(project_id.to_owned(), source))
        })
    }

    /// Why an endpoint was given up on earlier in this run, if it was.
    fn unreachable(&self, endpoint: &str) -> Option<TransportFailure> {
        let map = self.inner.unreachable.lock().ok()?;
        map.get(endpoint).cloned()
    }

    /// A call spent its whole retry budget without any answer: later calls to the
    /// same endpoint fail at once instead of each waiting out the same budget.
    fn mark_unreachable(&self, endpoint: &str, detail: &str, kind: TransportKind) {
        if let Ok(mut map) = self.inner.unreachable.lock() {
            map.entry(endpoint.to_owned())
                .or_insert_with(|| TransportFailure {
                    detail: detail.to_owned(),
                    kind,
                });
        }
    }

    /// One signed request, holding an in-flight permit until the body is read.
    async fn attempt(
        &self,
        url: &Url,
        scope: Option<(&str, Source)>,
    ) -> Result<Answer, AttemptError> {
        let project_id = scope.map(|(project_id, _)| project_id);
        let inner = &self.inner;
        let _permit = inner.limiter.acquire().await.map_err(|_| {
            AttemptError::Transport(TransportFailure::other(
                "the request limiter was closed".into(),
            ))
        })?;
        // Paced only once it may go out: a slot taken while queued for a permit
        // would be sent after a 429 that came in meanwhile, into the same burst.
        // For the same reason a request that slept until its slot while a 429
        // came in queues again behind that 429's pause.
        loop {
            let wait = inner.pacer.wait_for_slot();
            if wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait).await;
            if !inner.pacer.paused() {
                break;
            }
        }
        let mut headers: Vec<(String, String)> =
            vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(credentials) = &inner.credentials {
            let added = credentials.authorize(&OutgoingRequest {
                method: "GET",
                url,
                headers: &headers,
                body: b"",
                project_id,
                now: Utc::now(),
            });
            headers.extend(added);
        }
        let mut header_map = HeaderMap::new();
        for (name, value) in &headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(AttemptError::Transport(TransportFailure::other(format!(
                    "header {name} cannot be sent (invalid characters)"
                ))));
            };
            header_map.insert(name, value);
        }
        match scope {
            Some((project_id, source)) => self.count_request(project_id, source),
            None => {
                self.inner.requests.fetch_add(1, Ordering::Relaxed);
            }
        }
        let response = inner
            .http
            .get(url.clone())
            .headers(header_map)
            .send()
            .await
            .map_err(|e| AttemptError::Transport(TransportFailure::from_reqwest(&e)))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let (body, large) =
            read_limited(response, inner.settings.max_body_bytes, &inner.large_bodies).await?;
        tracing::trace!(status = status.as_u16(), bytes = body.len(), "response");
        let (body, invalid_sequences) = if status.is_success() {
            valid_utf8(body)
        } else {
            (body, 0)
        };
        Ok(Answer {
            status,
            headers: response_headers,
            body,
            invalid_sequences,
            _large: large,
        })
    }
}

/// A failed answer, by what the retry loop does next.
enum Judged {
    /// Not retried (refused credentials, a client error).
    Final(ApiError),
    /// May pass on another attempt, after at least the delay given, if any.
    Retry(ApiError, Option<Duration>),
    /// A 2xx whose body did not parse: retried only as settings allow.
    Malformed(ApiError),
}

enum AttemptError {
    Transport(TransportFailure),
    TooLarge(usize),
}

/// Reads the body chunk by chunk, refusing more than `limit` bytes. A body
/// that grows past [`LARGE_BODY_BYTES`] first takes the one large-body slot
/// (returned, to hold until the body is parsed), so however large and many
/// the answers, at most one of them is buffered beyond that size.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    large_bodies: &Arc<Semaphore>,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), AttemptError> {
    let announced = response.content_length().unwrap_or(0);
    if announced > limit as u64 {
        return Err(AttemptError::TooLarge(limit));
    }
    let take_slot = || async {
        Arc::clone(large_bodies).acquire_owned().await.map_err(|_| {
            AttemptError::Transport(TransportFailure::other(
                "the large-body limiter was closed".into(),
            ))
        })
    };
    let mut large = None;
    if announced > LARGE_BODY_BYTES as u64 {
        large = Some(take_slot().await?);
    }
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AttemptError::Transport(TransportFailure::from_reqwest(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(AttemptError::TooLarge(limit));
        }
        if large.is_none() && body.len() + chunk.len() > LARGE_BODY_BYTES {
            large = Some(take_slot().await?);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, large))
}

/// The body as valid UTF-8: unchanged when it is, else with U+FFFD in place
/// of each invalid sequence, and how many there were. One stray byte from the
/// cloud then costs that byte, not the whole answer (and, answer after answer,
/// a window that could never be stored).
fn valid_utf8(body: Vec<u8>) -> (Vec<u8>, u64) {
    if std::str::from_utf8(&body).is_ok() {
        return (body, 0);
    }
    let mut fixed = String::with_capacity(body.len() + 16);
    let mut invalid = 0u64;
    for chunk in body.utf8_chunks() {
        fixed.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            fixed.push(char::REPLACEMENT_CHARACTER);
            invalid += 1;
        }
    }
    (fixed.into_bytes(), invalid)
}

/// The URL exactly as the SDK sends it: base, path, and the canonical (sorted,
/// percent-encoded) query string, so what is sent is what is signed. A raw `+`
/// in a `+0800` offset therefore travels as `%2B`.
pub fn build_url(base: &Url, path: &str, query: &[(String, String)]) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    let q = canonical_query_string(query);
    url.set_query((!q.is_empty()).then_some(q.as_str()));
    url
}

/// Where a source's count sits in a project's counts.
fn source_slot(source: Source) -> usize {
    Source::ALL
        .iter()
        .position(|s| *s == source)
        .unwrap_or_default()
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` as seconds or an HTTP date; capped so a hostile value cannot stall a sync.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    const CAP: Duration = Duration::from_secs(30);
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_the_canonical_query_and_keeps_base_prefix() {
        let base = Url::parse("http://127.0.0.1:8080/prefix/").expect("url");
        let url = build_url(
            &base,
            "/v3/p/jobs",
            &[
                ("start_time".into(), "2024-01-01T00:00:00+0800".into()),
                ("limit".into(), "50".into()),
            ],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/prefix/v3/p/jobs?limit=50&start_time=2024-01-01T00%3A00%3A00%2B0800"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        let (body, n) = valid_utf8(b"{\"a\":\"caf\xe9 \xff\xfe ok\"}".to_vec());
        assert_eq!(n, 3);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            "{\"a\":\"caf\u{fffd} \u{fffd}\u{fffd} ok\"}"
        );
        assert_eq!(valid_utf8(b"plain".to_vec()), (b"plain".to_vec(), 0));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("99999"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_throttling_and_server_errors_are_retried() {
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable_status(StatusCode::BAD_GATEWAY));
        assert!(!is_retryable_status(StatusCode::UNAUTHORIZED));
        assert!(!is_retryable_status(StatusCode::FORBIDDEN));
        assert!(!is_retryable_status(StatusCode::NOT_FOUND));
        assert!(!is_retryable_status(StatusCode::BAD_REQUEST));
    }

    /// A loopback server that refuses permission (403 APIGW.0302) to every
    /// path containing `/denied/` and answers `{}` to the rest.
    async fn gateway_denying_one_project() -> Url {
        let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
            if uri.path().contains("/denied/") {
                (
                    axum::http::StatusCode::FORBIDDEN,
                    r#"{"error_code":"APIGW.0302","error_msg":"The IAM user is forbidden in the currently selected region.","request_id":"r1"}"#,
                )
            } else {
                (axum::http::StatusCode::OK, "{}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://{addr}")).expect("url")
    }

    #[tokio::test]
    async fn a_permission_refusal_stops_only_that_project_and_api() {
        let base = gateway_denying_one_project().await;
        let client = ApiClient::new(None, HttpSettings::default()).expect("client");
        let call = |project: &'static str, source: Source| Call {
            source,
            project_id: project,
            base: &base,
            path: format!("/v1/{project}/jobs"),
            query: Vec::new(),
        };
        let parse = |_: &[u8]| Ok(());
        let refused = client
            .get(&call("denied", Source::Dbss), parse)
            .await
            .expect_err("403");
        assert!(
            refused.is_permission_refusal() && !refused.stops_run(),
            "{refused:?}"
        );
        let again = client
            .get(&call("denied", Source::Dbss), parse)
            .await
            .expect_err("not sent");
        assert!(
            matches!(
                again,
                ApiError::Skipped {
                    only_this_scope: true,
                    ..
                }
            ),
            "{again:?}"
        );
        assert!(!again.stops_run());
        assert_eq!(client.requests_for("denied", Source::Dbss), 1);
        // The same project's other API, and other projects, still go out.
        client
            .get(&call("denied", Source::Nosql), parse)
            .await
            .expect_err("403 too");
        assert_eq!(client.requests_for("denied", Source::Nosql), 1);
        client
            .get(&call("allowed", Source::Dbss), parse)
            .await
            .expect("allowed");
        assert_eq!(client.requests_for("allowed", Source::Dbss), 1);
        assert_eq!(client.requests_made(), 3);
    }

    #[tokio::test]
    async fn a_refused_connection_is_classified_where_it_happens() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let settings = HttpSettings {
            max_attempts: 1,
            ..HttpSettings::default()
        };
        let client = ApiClient::new(None, settings).expect("client");
        let call = Call {
            source: Source::Nosql,
            project_id: "p",
            base: &base,
            path: "/v3/p/jobs".into(),
            query: Vec::new(),
        };
        let parse = |_: &[u8]| Ok(());
        let first = client.get(&call, parse).await.expect_err("refused");
        assert!(
            matches!(
                first,
                ApiError::Transport {
                    kind: TransportKind::Refused,
                    ..
                }
            ),
            "{first:?}"
        );
        // Later calls to the given-up endpoint keep the kind.
        let later = client.get(&call, parse).await.expect_err("not requested");
        assert!(
            matches!(
                later,
                ApiError::Transport {
                    kind: TransportKind::Refused,
                    attempts: 0,
                    ..
                }
            ),
            "{later:?}"
        );
    }
}
