//! API errors, classified once: each names the source, project and request path,
//! and carries the cloud's error code when it sent one. Never a credential.

use std::fmt;

use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};

use crate::model::Source;
use crate::text::{for_terminal, truncate_chars};

/// What a call was for: a source of one project, or IAM (the account's, no
/// project's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    Source { source: Source, project_id: String },
    Iam,
}

/// Where a call went: shown in every error about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    pub api: Api,
    /// Path and query as sent (no secrets travel in URLs).
    pub path: String,
    /// Scheme, host and port, to say which endpoint did not answer.
    pub endpoint: String,
}

impl CallSite {
    /// The project and source of a call to a job API (`None` for IAM).
    pub fn scope(&self) -> Option<(&str, Source)> {
        match &self.api {
            Api::Source { source, project_id } => Some((project_id.as_str(), *source)),
            Api::Iam => None,
        }
    }

    pub fn new(source: Source, project_id: &str, url: &Url) -> CallSite {
        let api = Api::Source {
            source,
            project_id: project_id.to_owned(),
        };
        CallSite::at(api, url)
    }

    /// A call to IAM.
    pub fn iam(url: &Url) -> CallSite {
        CallSite::at(Api::Iam, url)
    }

    fn at(api: Api, url: &Url) -> CallSite {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        CallSite {
            api,
            path,
            endpoint: url.origin().ascii_serialization(),
        }
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.api {
            Api::Source { source, project_id } => write!(
                f,
                "{source} (project {project_id}): GET {}{}",
                self.endpoint, self.path
            ),
            Api::Iam => write!(f, "IAM: GET {}{}", self.endpoint, self.path),
        }
    }
}

/// The cloud's error code and message, parsed the way the SDK does: top-level
/// `error_code`/`error_msg`, then `errorCode`/`errorMsg`, then `code`/`message`,
/// then the same inside nested objects (DBSS's legacy `{"error":{…}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| find_error(&v, 0))
            .unwrap_or_default()
    }
}

fn find_error(value: &serde_json::Value, depth: usize) -> Option<ErrorBody> {
    let object = value.as_object()?;
    let text = |key: &str| {
        object.get(key).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    for (code_key, msg_key) in [
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ] {
        if let (Some(code), message) = (text(code_key), text(msg_key)) {
            return Some(ErrorBody {
                code: Some(code),
                message,
            });
        }
    }
    if depth < 3 {
        for nested in object.values() {
            if let Some(found) = find_error(nested, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

/// Why a call failed, after whatever retries were allowed. What the far end
/// said (its error code and message, a transport error's text) is shown with
/// control characters escaped (`text::for_terminal`): it reaches terminals and
/// logs, one line each.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401/403: never retried (more than five bad signatures in a row lock the key pair).
    #[error(
        "{site}: authentication refused (HTTP {status}{code}) using {credential}{message}; check the credentials and their permissions ({})",
        refusal_tail(.status, .code)
    )]
    Auth {
        site: CallSite,
        status: u16,
        code: CodeText,
        message: MessageText,
        credential: String,
    },
    /// Any other non-success answer, after retries where they apply.
    #[error("{site}: HTTP {status}{code}{message}{attempts}")]
    Status {
        site: CallSite,
        status: u16,
        code: CodeText,
        message: MessageText,
        attempts: AttemptsText,
    },
    /// No usable answer at all (refused, reset, timed out, DNS).
    #[error(
        "{site}: {} (gave up after {attempts} attempt(s)); is the endpoint right and reachable?",
        for_terminal(detail)
    )]
    Transport {
        site: CallSite,
        detail: String,
        /// What kind of failure `detail` describes, for callers that explain it.
        kind: TransportKind,
        attempts: usize,
    },
    /// A 2xx whose body is not what the API documents, after retries.
    #[error("{site}: malformed response: {}", for_terminal(detail))]
    Malformed { site: CallSite, detail: String },
    /// Not sent: an earlier request of this run was refused authentication,
    /// or (`only_this_scope`) an earlier request of this project to this API
    /// was refused permission.
    #[error("{site}: not requested, because {}", skip_reason(.only_this_scope))]
    Skipped {
        site: CallSite,
        only_this_scope: bool,
    },
    #[error("cannot set up the HTTP client: {}", for_terminal(.0))]
    Setup(String),
}

/// Why a request got no answer at all. Classified once, where the transport
/// error is seen, so callers that explain failures (`check`) branch on a kind
/// instead of re-reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol, a proxy re-signing).
    Tls,
    /// Nothing listens on that port.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// Anything else (a reset, a broken body, a request that could not be built).
    Other,
}

impl TransportKind {
    /// The kind of a reqwest error whose chain reads `detail`. The chain's text
    /// is what tells DNS and TLS failures apart (hyper and rustls expose no kind
    /// for them through reqwest); refusals and timeouts are also recognised by
    /// their `io::ErrorKind`, should the operating system word them otherwise.
    fn of(e: &reqwest::Error, detail: &str) -> TransportKind {
        match TransportKind::from_chain_text(detail) {
            TransportKind::Other => {}
            known => return known,
        }
        let io_kinds = std::iter::successors(std::error::Error::source(e), |s| s.source())
            .filter_map(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        let mut timed_out = e.is_timeout();
        for kind in io_kinds {
            match kind {
                std::io::ErrorKind::ConnectionRefused => return TransportKind::Refused,
                std::io::ErrorKind::TimedOut => timed_out = true,
                _ => {}
            }
        }
        if timed_out {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        }
    }

    /// The kind named in an error chain's text (reqwest, hyper, rustls and the
    /// operating system's own wording).
    fn from_chain_text(detail: &str) -> TransportKind {
        let d = detail.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| d.contains(n));
        if any(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
            "nodename nor servname",
            "no such host",
            "temporary failure in name resolution",
        ]) {
            TransportKind::Dns
        } else if any(&[
            "connection refused",
            "os error 111",
            "os error 61)",
            "os error 10061",
        ]) {
            TransportKind::Refused
        } else if any(&[
            "certificate",
            "tls",
            "handshake",
            "invalidcontenttype",
            "corrupt message",
            "received fatal alert",
            "peer is incompatible",
        ]) {
            TransportKind::Tls
        } else if any(&["timed out", "deadline has elapsed"]) {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        }
    }
}

/// A transport failure of one attempt: its description and its kind.
#[derive(Debug, Clone)]
pub(super) struct TransportFailure {
    pub detail: String,
    pub kind: TransportKind,
}

impl TransportFailure {
    /// From reqwest's error: what went wrong in words, then its whole source
    /// chain (refused, reset, DNS…), which is the part a person can act on.
    pub(super) fn from_reqwest(e: &reqwest::Error) -> TransportFailure {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "the connection broke while reading the response"
        } else {
            "request failed"
        };
        // URLs in the chain carry no secrets.
        let mut detail = what.to_owned();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        let kind = TransportKind::of(e, &detail);
        TransportFailure { detail, kind }
    }

    /// A request that could not be sent for a reason of our own.
    pub(super) fn other(detail: String) -> TransportFailure {
        TransportFailure {
            detail,
            kind: TransportKind::Other,
        }
    }
}

/// `, code APIGW.0301` or nothing.
#[derive(Debug, Clone, Default)]
pub struct CodeText(pub Option<String>);
impl fmt::Display for CodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(code) => write!(f, ", error code {}", for_terminal(code)),
            None => Ok(()),
        }
    }
}

/// `: message` or nothing.
#[derive(Debug, Clone, Default)]
pub struct MessageText(pub Option<String>);
impl fmt::Display for MessageText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(m) if !m.is_empty() => write!(f, ": {}", for_terminal(&truncate_chars(m, 300))),
            _ => Ok(()),
        }
    }
}

/// What was done about a refusal: a permission refusal (403 APIGW.0302)
/// stops only that project's calls to that API; any other stops the run.
fn refusal_tail(status: &u16, code: &CodeText) -> &'static str {
    if is_permission_code(*status, code) {
        "nothing more was sent to this API for this project; the rest goes on"
    } else {
        "nothing more was sent: repeated refusals lock an access key pair for five minutes"
    }
}

/// 403 APIGW.0302 (or APIG.0302): the IAM user may not use this API here.
fn is_permission_code(status: u16, code: &CodeText) -> bool {
    status == 403
        && code.0.as_deref().is_some_and(|c| {
            c.eq_ignore_ascii_case("APIGW.0302") || c.eq_ignore_ascii_case("APIG.0302")
        })
}

/// Why a call was not sent.
fn skip_reason(only_this_scope: &bool) -> &'static str {
    if *only_this_scope {
        "an earlier request of this project to this API was refused permission"
    } else {
        "an earlier request was refused authentication"
    }
}

/// ` (after N attempts)` when retries happened.
#[derive(Debug, Clone, Default)]
pub struct AttemptsText(pub usize);
impl fmt::Display for AttemptsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 1 {
            write!(f, " (after {} attempts)", self.0)
        } else {
            Ok(())
        }
    }
}

impl ApiError {
    pub(super) fn from_status(
        site: &CallSite,
        status: StatusCode,
        body: &[u8],
        _headers: &HeaderMap,
        credential: &str,
    ) -> ApiError {
        let parsed = ErrorBody::parse(body);
        let message = parsed.message.or_else(|| {
            // A proxy's HTML page or plain text: show a little of it, not the whole page.
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty() && !text.starts_with('{')).then(|| {
                if text.starts_with('<') {
                    "the answer was an HTML page, not the API's JSON (a proxy or gateway in the way?)".to_owned()
                } else {
                    truncate_chars(text, 200)
                }
            })
        });
        // 401 is always the credentials. A 403 is the gateway refusing them only
        // with an APIGW/APIG code; other 403s are the API's own answer about one
        // resource (DBSS documents 403) and fail just that call.
        let gateway_code = parsed.code.as_deref().is_some_and(|c| {
            let c = c.to_ascii_uppercase();
            c.starts_with("APIGW.") || c.starts_with("APIG.")
        });
        if status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && gateway_code) {
            return ApiError::Auth {
                site: site.clone(),
                status: status.as_u16(),
                code: CodeText(parsed.code),
                message: MessageText(message),
                credential: credential.to_owned(),
            };
        }
        ApiError::Status {
            site: site.clone(),
            status: status.as_u16(),
            code: CodeText(parsed.code),
            message: MessageText(message),
            attempts: AttemptsText(1),
        }
    }

    pub(super) fn with_attempts(self, n: usize) -> ApiError {
        match self {
            ApiError::Status {
                site,
                status,
                code,
                message,
                ..
            } => ApiError::Status {
                site,
                status,
                code,
                message,
                attempts: AttemptsText(n),
            },
            ApiError::Transport {
                site, detail, kind, ..
            } => ApiError::Transport {
                site,
                detail,
                kind,
                attempts: n,
            },
            other => other,
        }
    }

    /// 401/403 from the gateway: the credentials, or what they may do, were refused.
    pub fn is_auth(&self) -> bool {
        matches!(self, ApiError::Auth { .. })
    }

    /// A 403 APIGW.0302: the signature was accepted, but the IAM user may not
    /// use this API in this project. Other projects and APIs may still be
    /// allowed, and it is no bad signature (those lock the key pair), so only
    /// this project's calls to this API stop.
    pub fn is_permission_refusal(&self) -> bool {
        match self {
            ApiError::Auth { status, code, .. } => is_permission_code(*status, code),
            _ => false,
        }
    }

    /// The whole run stops: the credentials themselves were refused (every
    /// other call would fail the same way), or a call was not sent for that.
    pub fn stops_run(&self) -> bool {
        match self {
            ApiError::Auth { .. } => !self.is_permission_refusal(),
            ApiError::Skipped {
                only_this_scope, ..
            } => !only_this_scope,
            _ => false,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            ApiError::Auth { status, .. } | ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn error_code(&self) -> Option<&str> {
        match self {
            ApiError::Auth { code, .. } | ApiError::Status { code, .. } => code.0.as_deref(),
            _ => None,
        }
    }

    /// The gateway's "this API does not exist" (APIGW.0101 / APIG.0101): the
    /// signal that a deprecated path has been taken offline.
    pub fn is_api_not_found(&self) -> bool {
        self.http_status() == Some(404)
            && self.error_code().is_some_and(|c| {
                c.eq_ignore_ascii_case("APIGW.0101") || c.eq_ignore_ascii_case("APIG.0101")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_in_every_documented_shape() {
        let flat =
            ErrorBody::parse(br#"{"error_code":"WKS.00129901","error_msg":"job not found"}"#);
        assert_eq!(flat.code.as_deref(), Some("WKS.00129901"));
        assert_eq!(flat.message.as_deref(), Some("job not found"));
        let nested = ErrorBody::parse(
            br#"{"error":{"error_code":"DBSS.10001","error_msg":"no such resource"}}"#,
        );
        assert_eq!(nested.code.as_deref(), Some("DBSS.10001"));
        let camel = ErrorBody::parse(br#"{"errorCode":"X.1","errorMsg":"m"}"#);
        assert_eq!(camel.code.as_deref(), Some("X.1"));
        let iam = ErrorBody::parse(
            br#"{"error":{"code":401,"message":"bad password","title":"Unauthorized"}}"#,
        );
        assert_eq!(iam.code.as_deref(), Some("401"));
        assert_eq!(
            ErrorBody::parse(b"<html>bad gateway</html>"),
            ErrorBody::default()
        );
    }

    #[test]
    fn retired_api_is_recognised() {
        let site = CallSite::new(
            Source::Dbss,
            "p",
            &Url::parse("http://127.0.0.1:1/v1/p/dbss/audit/jobs/r").expect("url"),
        );
        let e = ApiError::from_status(
            &site,
            StatusCode::NOT_FOUND,
            br#"{"error_code":"APIGW.0101","error_msg":"The API does not exist or has not been published in the environment"}"#,
            &HeaderMap::new(),
            "x",
        );
        assert!(e.is_api_not_found());
        let e = ApiError::from_status(
            &site,
            StatusCode::NOT_FOUND,
            br#"{"error":{"error_code":"DBSS.10001","error_msg":"resource not found"}}"#,
            &HeaderMap::new(),
            "x",
        );
        assert!(!e.is_api_not_found());
        let text = e.to_string();
        assert!(
            text.contains("dbss (project p): GET http://127.0.0.1:1/v1/p/dbss/audit/jobs/r"),
            "{text}"
        );
        assert!(
            text.contains("HTTP 404, error code DBSS.10001: resource not found"),
            "{text}"
        );
    }

    #[test]
    fn transport_failures_are_told_apart() {
        let cases = [
            (
                "could not connect: error sending request for url (https://nosuch.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
                TransportKind::Dns,
            ),
            (
                "could not connect: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
                TransportKind::Refused,
            ),
            (
                "could not connect: error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
                TransportKind::Tls,
            ),
            (
                "timed out: error sending request: operation timed out",
                TransportKind::Timeout,
            ),
            (
                "the connection broke while reading the response: reset",
                TransportKind::Other,
            ),
        ];
        for (detail, kind) in cases {
            assert_eq!(TransportKind::from_chain_text(detail), kind, "{detail}");
        }
    }
}
