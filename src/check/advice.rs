//! What each failed probe means for someone setting jobtrail up, and what to
//! do about it: the error's own kind (refused credentials, an HTTP status, a
//! transport failure) decides, never its message text.

use std::fmt::Write as _;
use std::time::Duration;

use super::probe::Outcome;
use crate::auth::Credentials;
use crate::config::ProjectSettings;
use crate::http::{ApiError, TransportKind};
use crate::model::Source;
use crate::text::{for_terminal, redact_url};

/// What a failure means for someone setting jobtrail up, and what to do.
pub fn explain(
    e: &ApiError,
    project: &ProjectSettings,
    source: Source,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Outcome {
    let advice = Advice {
        project,
        source,
        endpoint_key: format!("[endpoints] {source}"),
    };
    let (what, fix) = match e {
        ApiError::Auth {
            status,
            code,
            message,
            ..
        } => {
            let answer = Answer::new(*status, code.0.as_deref(), message.0.as_deref());
            advice.refused(&answer, credentials)
        }
        ApiError::Status {
            status,
            code,
            message,
            ..
        } => {
            let answer = Answer::new(*status, code.0.as_deref(), message.0.as_deref());
            advice.status(&answer, e.is_api_not_found())
        }
        ApiError::Transport { detail, kind, .. } => advice.unreachable(detail, *kind, timeout),
        ApiError::Malformed { detail, .. } => (
            format!("the answer is not this API's JSON: {detail}"),
            format!(
                "is {} the {} endpoint of the region (and no proxy or login page in the way)?",
                advice.endpoint_key,
                service_name(source)
            ),
        ),
        ApiError::Skipped { .. } => {
            return Outcome::Skipped(
                "not requested: the credentials were refused above (repeated bad signatures lock the key for five minutes)".into(),
            );
        }
        ApiError::Setup(detail) => (
            format!("cannot set up the HTTP client: {detail}"),
            "report this as a bug".into(),
        ),
    };
    Outcome::Fail { what, fix }
}

/// An HTTP answer as the cloud gave it: status, error code, message.
struct Answer<'e> {
    status: u16,
    code: Option<&'e str>,
    message: Option<&'e str>,
}

impl<'e> Answer<'e> {
    fn new(status: u16, code: Option<&'e str>, message: Option<&'e str>) -> Answer<'e> {
        Answer {
            status,
            code,
            message,
        }
    }

    fn code_is(&self, expected: &str) -> bool {
        self.code.is_some_and(|c| c.eq_ignore_ascii_case(expected))
    }
}

/// `HTTP 404, error code APIGW.0311: message`, whole (not shortened), the
/// cloud's words with their control characters escaped.
impl std::fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = format!("HTTP {}", self.status);
        if let Some(code) = self.code {
            let _ = write!(text, ", error code {}", for_terminal(code));
        }
        if let Some(message) = self.message.filter(|m| !m.is_empty()) {
            let _ = write!(text, ": {}", for_terminal(message));
        }
        f.write_str(&text)
    }
}

/// The probe a failure came from: advice names its project, source and key.
struct Advice<'p> {
    project: &'p ProjectSettings,
    source: Source,
    /// `[endpoints] nosql`: the setting to look at.
    endpoint_key: String,
}

impl Advice<'_> {
    /// 401/403 from the gateway: the credentials, or their absence.
    fn refused(&self, answer: &Answer<'_>, credentials: Option<&Credentials>) -> (String, String) {
        let what = match (credentials, answer.status) {
            (None, _) => format!(
                "the endpoint answers, but refuses a request without credentials ({answer})"
            ),
            (Some(_), 403) => format!("access denied ({answer})"),
            (Some(_), _) => format!("authentication refused ({answer})"),
        };
        let fix = match credentials {
            None => "set credentials (see Credentials above), then run check again".to_owned(),
            Some(_) if answer.status == 403 => self.no_permission_fix(),
            Some(_) if answer.code_is("APIGW.0303") => {
                "this machine's clock differs from the cloud's by more than 15 minutes: set it right (NTP), since signatures carry the time".to_owned()
            }
            Some(Credentials::Token { origin, .. }) => format!(
                "the IAM token in {origin} was refused: tokens expire after 24 hours and are scoped to one project; get a new one for project {}, or use an AK/SK",
                self.project.id
            ),
            Some(Credentials::AkSk {
                origin,
                security_token,
                ..
            }) => {
                let temporary = if security_token.is_some() {
                    " Temporary credentials expire: get a fresh AK/SK and security token."
                } else {
                    ""
                };
                format!(
                    "the signature did not verify: check that {origin} hold an access key and its own secret key (no stray spaces or quotes) and that the key is still enabled.{temporary}"
                )
            }
        };
        (what, fix)
    }

    /// Any other HTTP failure. `api_not_found` is the gateway's "no such API".
    fn status(&self, answer: &Answer<'_>, api_not_found: bool) -> (String, String) {
        let project = self.project;
        let endpoint_key = &self.endpoint_key;
        match answer.status {
            404 if api_not_found => (
                format!("API retired or wrong endpoint ({answer})"),
                format!(
                    "the gateway at {} has no such API: check {endpoint_key} (a stray path prefix?) and the region {:?}; if the cloud has retired this API, update jobtrail",
                    redact_url(project.endpoints.for_source(self.source)),
                    project.region
                ),
            ),
            404 if answer.code_is("APIGW.0311") => (
                format!("unknown project ({answer})"),
                format!(
                    "project {} is not a project of region {:?} in this account: copy the ID of the project named {:?} from My Credentials → API Credentials → Projects",
                    project.id, project.region, project.region
                ),
            ),
            // A 403 from the service itself (not the gateway): the credentials
            // work, but may not read this API here.
            403 => (
                format!("access denied ({answer})"),
                self.no_permission_fix(),
            ),
            429 => (
                format!("throttled ({answer})"),
                "the API is rate-limiting this account right now: wait a minute and run check again".into(),
            ),
            500.. => (
                format!("the service failed ({answer})"),
                format!(
                    "usually passing: run check again in a few minutes; if it persists, check {endpoint_key} and the cloud's service status"
                ),
            ),
            _ => (
                answer.to_string(),
                format!(
                    "unexpected for this request: check the project ID, the region and {endpoint_key}"
                ),
            ),
        }
    }

    /// No answer at all, by the kind the HTTP layer classified.
    fn unreachable(
        &self,
        detail: &str,
        kind: TransportKind,
        timeout: Duration,
    ) -> (String, String) {
        let project = self.project;
        let endpoint_key = &self.endpoint_key;
        let url = project.endpoints.for_source(self.source);
        let host = url.host_str().unwrap_or_default();
        let cause = root_cause(detail);
        match kind {
            TransportKind::Dns => (
                format!("DNS lookup of {host} failed ({cause})"),
                format!(
                    "check the region {:?} and {endpoint_key}; without direct internet access set HTTPS_PROXY, or use a VPC endpoint",
                    project.region
                ),
            ),
            TransportKind::Tls => (
                format!("TLS handshake with {host} failed ({cause})"),
                format!(
                    "is {endpoint_key} an https URL on an https port? jobtrail trusts the public (Mozilla) root certificates only, so a proxy that re-signs TLS is refused"
                ),
            ),
            TransportKind::Refused => (
                format!("connection refused by {}", host_port(url)),
                format!(
                    "nothing listens there: check the port in {endpoint_key} (is `jobtrail simulate` running?) and any firewall"
                ),
            ),
            TransportKind::Timeout => (
                format!("no answer within {}s", timeout.as_secs()),
                format!(
                    "a firewall may be dropping the traffic, or a proxy is needed (HTTPS_PROXY); on a slow link try `jobtrail check --timeout 30`; check {endpoint_key}"
                ),
            ),
            TransportKind::Other => (
                format!("cannot reach {host}: {detail}"),
                format!("check {endpoint_key} and the network"),
            ),
        }
    }

    /// What to do about a 403, whether the gateway or the service itself said it.
    fn no_permission_fix(&self) -> String {
        format!(
            "the credentials are valid but may not read this API in project {}: give the IAM user read permission for {} there, and check the project belongs to this account",
            self.project.id,
            service_name(self.source)
        )
    }
}

/// The innermost cause of a transport error chain ("a: b: Connection refused
/// (os error 111)" → the last part), which is the part a person can act on.
fn root_cause(detail: &str) -> &str {
    detail.rsplit(": ").next().unwrap_or(detail).trim()
}

fn service_name(source: Source) -> &'static str {
    match source {
        Source::Nosql => "GaussDB(for NoSQL)",
        Source::Dbss => "DBSS",
        Source::Image => "Workspace",
    }
}

/// `host:port` of an endpoint, the port filled in from the scheme when implied.
fn host_port(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => redact_url(url),
    }
}
