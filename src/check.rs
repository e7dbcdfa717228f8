//! `jobtrail check`: is this setup ready to sync? The configuration (every
//! problem at once, each with its line and key), the credentials (kind and
//! origin, never a value), and one cheap real request per project and enabled
//! source, each failure explained with what to do about it. Nothing is stored.

// `ApiError` is large (it carries the call site); it only travels on failure.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::auth::{CredentialError, Credentials};
use crate::config::{Endpoints, ProjectSettings, Settings, parse_date_or_datetime, parse_endpoint};
use crate::http::{ApiClient, ApiError, Call, HttpSettings};
use crate::init::{PROJECT_PLACEHOLDER, REGION_PLACEHOLDER};
use crate::model::Source;
use crate::sources::nosql;

// ---------------------------------------------------------------------------
// Configuration

/// A configuration problem: where (1-based line, if known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The configuration as `check` sees it.
#[derive(Debug)]
pub struct ConfigReport {
    pub path: PathBuf,
    /// Every problem found; empty when the file is usable.
    pub problems: Vec<Problem>,
    /// The resolved settings, when [`Settings::parse`] accepts the file.
    pub settings: Option<Settings>,
}

/// Reads and checks the configuration file at `path`.
pub fn check_config_file(path: &Path) -> ConfigReport {
    match std::fs::read_to_string(path) {
        Ok(text) => check_config(&text, path),
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no configuration file at {}: write one with `jobtrail init --project ID --region REGION`, or name yours with --config PATH",
                    path.display()
                )
            } else {
                format!("cannot read {}: {e}", path.display())
            };
            ConfigReport {
                path: path.to_path_buf(),
                problems: vec![Problem {
                    line: None,
                    message,
                }],
                settings: None,
            }
        }
    }
}

/// Checks configuration text. [`Settings::parse`] decides what is valid (it is
/// what `sync` runs); a walk of the document before it lists every problem at
/// once instead of the first one only. Should the two ever disagree, the
/// parser's message is shown too, so a file `sync` refuses never passes.
pub fn check_config(text: &str, path: &Path) -> ConfigReport {
    let mut problems = lint(text);
    let settings = match Settings::parse(text, path) {
        Ok(settings) => Some(settings),
        Err(e) => {
            let message = match e {
                crate::config::ConfigError::Invalid { message, .. } => message,
                other => other.to_string(),
            };
            let line = first_line_number(&message);
            let covered = line.is_some() && problems.iter().any(|p| p.line == line);
            if !covered {
                problems.push(Problem {
                    line: None,
                    message: message.trim_end().to_owned(),
                });
            }
            None
        }
    };
    if let Some(s) = &settings
        && s.projects.is_empty()
        && problems.is_empty()
    {
        problems.push(Problem {
            line: None,
            message: "no [[project]] is configured: add one (`jobtrail init` shows how)".into(),
        });
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    ConfigReport {
        path: path.to_path_buf(),
        problems,
        settings,
    }
}

/// The first `line N` in a message (the parser's and toml's both say it so).
fn first_line_number(message: &str) -> Option<usize> {
    let at = message.find("line ")?;
    let digits: String = message[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Linter<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

impl Linter<'_> {
    fn at(&mut self, span: std::ops::Range<usize>, message: String) {
        let line = line_at(self.text, span.start);
        self.problems.push(Problem {
            line: Some(line),
            message,
        });
    }

    fn unknown(&mut self, (key, _): Entry<'_, '_>, table: &str, expected: &[&str]) {
        let name = if table.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{table}.{}", key.get_ref())
        };
        self.at(
            key.span(),
            format!(
                "unknown key `{name}` (expected {})",
                expected
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    fn wrong_type(&mut self, name: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
        let hint = if expected == "a string" && value.get_ref().is_datetime() {
            " (write dates in quotes: \"2024-01-01\")"
        } else {
            ""
        };
        self.at(
            value.span(),
            format!(
                "{name} must be {expected}, not {}{hint}",
                article(value.get_ref().type_str())
            ),
        );
    }

    fn string<'v>(&mut self, name: &str, value: &'v Spanned<DeValue<'_>>) -> Option<&'v str> {
        let s = value.get_ref().as_str();
        if s.is_none() {
            self.wrong_type(name, value, "a string");
        }
        s
    }

    fn boolean(&mut self, name: &str, value: &Spanned<DeValue<'_>>) -> Option<bool> {
        let b = value.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(name, value, "true or false");
        }
        b
    }

    fn string_list(&mut self, name: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref().as_array() {
            None => self.wrong_type(name, value, "a list of strings, e.g. [\"id-1\", \"id-2\"]"),
            Some(items) => {
                for item in items.iter() {
                    if !item.get_ref().is_str() {
                        self.wrong_type(&format!("every item of {name}"), item, "a string");
                    }
                }
            }
        }
    }

    fn table<'v, 'i>(
        &mut self,
        name: &str,
        value: &'v Spanned<DeValue<'i>>,
    ) -> Option<&'v DeTable<'i>> {
        let t = value.get_ref().as_table();
        if t.is_none() {
            self.wrong_type(name, value, "a table");
        }
        t
    }

    fn document(&mut self, doc: &DeTable<'_>) {
        const TOP: [&str; 5] = [
            "database",
            "queries_dir",
            "allow_insecure_endpoints",
            "project",
            "endpoints",
        ];
        let allow_insecure = doc
            .get("allow_insecure_endpoints")
            .and_then(|v| v.get_ref().as_bool())
            .unwrap_or(false);
        for entry in doc.iter() {
            let (key, value) = entry;
            match key.get_ref().as_ref() {
                "database" | "queries_dir" => {
                    self.string(key.get_ref(), value);
                }
                "allow_insecure_endpoints" => {
                    self.boolean("allow_insecure_endpoints", value);
                }
                "project" => self.projects(value),
                "endpoints" => {
                    if let Some(table) = self.table("[endpoints]", value) {
                        self.endpoints(table, allow_insecure);
                    }
                }
                _ => self.unknown(entry, "", &TOP),
            }
        }
    }

    fn endpoints(&mut self, table: &DeTable<'_>, allow_insecure: bool) {
        const KEYS: [&str; 4] = ["nosql", "dbss", "image", "iam"];
        for entry in table.iter() {
            let (key, value) = entry;
            if !KEYS.contains(&key.get_ref().as_ref()) {
                self.unknown(entry, "endpoints", &KEYS);
                continue;
            }
            let name = format!("endpoints.{}", key.get_ref());
            if let Some(url) = self.string(&name, value)
                && let Err(why) = parse_endpoint(url, allow_insecure)
            {
                self.at(value.span(), format!("{name} = {url:?}: {why}"));
            }
        }
    }

    fn projects(&mut self, value: &Spanned<DeValue<'_>>) {
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(
                "project",
                value,
                "a list of [[project]] tables (write [[project]], with two brackets)",
            );
            return;
        };
        let mut seen: Vec<String> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(table) = self.table("[[project]]", item) {
                self.project(index, item.span(), table, &mut seen);
            }
        }
    }

    fn project(
        &mut self,
        index: usize,
        span: std::ops::Range<usize>,
        table: &DeTable<'_>,
        seen: &mut Vec<String>,
    ) {
        const KEYS: [&str; 5] = ["id", "region", "nosql", "dbss", "image"];
        let number = index + 1;
        let mut has_source = false;
        for entry in table.iter() {
            let (key, value) = entry;
            match key.get_ref().as_ref() {
                "id" => {
                    if let Some(id) = self.string("project.id", value) {
                        self.project_id(id, value.span(), seen);
                    }
                }
                "region" => {
                    if let Some(region) = self.string("project.region", value) {
                        self.region(region, value.span());
                    }
                }
                "nosql" => {
                    has_source = true;
                    if let Some(t) = self.table("[project.nosql]", value) {
                        self.nosql(t);
                    }
                }
                "dbss" => {
                    has_source = true;
                    if let Some(t) = self.table("[project.dbss]", value) {
                        self.id_source(t, "dbss", "resource_ids");
                    }
                }
                "image" => {
                    has_source = true;
                    if let Some(t) = self.table("[project.image]", value) {
                        self.id_source(t, "image", "job_ids");
                    }
                }
                _ => self.unknown(entry, "project", &KEYS),
            }
        }
        for required in ["id", "region"] {
            if table.get(required).is_none() {
                self.at(
                    span.clone(),
                    format!("project #{number} has no `{required}`: add `{required} = \"…\"` under [[project]]"),
                );
            }
        }
        if !has_source {
            self.at(
                span,
                format!("project #{number} has no source table: add [project.nosql], [project.dbss] or [project.image] under it"),
            );
        }
    }

    fn project_id(&mut self, id: &str, span: std::ops::Range<usize>, seen: &mut Vec<String>) {
        let id = id.trim();
        if id == PROJECT_PLACEHOLDER {
            self.at(
                span,
                "project.id is still the placeholder from `jobtrail init`: put your project ID there (console → My Credentials → API Credentials → Projects)".into(),
            );
        } else if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.at(
                span,
                format!("project.id {id:?} is not a project ID (letters, digits, - and _; find it under My Credentials → Projects)"),
            );
        } else if seen.iter().any(|s| s == id) {
            self.at(span, format!("project {id} is listed twice"));
        } else {
            seen.push(id.to_owned());
        }
    }

    fn region(&mut self, region: &str, span: std::ops::Range<usize>) {
        let region = region.trim();
        if region == REGION_PLACEHOLDER {
            self.at(
                span,
                "project.region is still the placeholder from `jobtrail init`: put the project's region there, e.g. \"cn-north-4\"".into(),
            );
        } else if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            self.at(
                span,
                format!("project.region {region:?} is not a region name such as \"cn-north-4\""),
            );
        } else if let Err(why) = Endpoints::public(region) {
            self.at(span, why);
        }
    }

    fn nosql(&mut self, table: &DeTable<'_>) {
        for entry in table.iter() {
            let (key, value) = entry;
            if key.get_ref() == "since" {
                if let Some(since) = self.string("project.nosql.since", value)
                    && let Err(why) = parse_date_or_datetime(since)
                {
                    self.at(
                        value.span(),
                        format!("project.nosql.since = {since:?}: {why}"),
                    );
                }
            } else {
                self.unknown(entry, "project.nosql", &["since"]);
            }
        }
    }

    fn id_source(&mut self, table: &DeTable<'_>, source: &str, ids_key: &str) {
        for entry in table.iter() {
            let (key, value) = entry;
            let name = format!("project.{source}.{}", key.get_ref());
            if key.get_ref() == ids_key {
                self.string_list(&name, value);
            } else if key.get_ref() == "discover" {
                self.boolean(&name, value);
            } else {
                self.unknown(entry, &format!("project.{source}"), &[ids_key, "discover"]);
            }
        }
    }
}

fn article(type_name: &str) -> String {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {type_name}")
    } else {
        format!("a {type_name}")
    }
}

/// Every problem in the document, in file order. Syntax errors first stop the
/// walk (what follows a syntax error is a guess).
pub fn lint(text: &str) -> Vec<Problem> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut linter = Linter {
        text,
        problems: Vec::new(),
    };
    if !errors.is_empty() {
        for e in errors {
            let line = e.span().map(|s| line_at(text, s.start));
            linter.problems.push(Problem {
                line,
                message: format!("not valid TOML: {}", e.message().trim_end()),
            });
        }
        return linter.problems;
    }
    linter.document(doc.get_ref());
    linter.problems
}

// ---------------------------------------------------------------------------
// Requests

/// What one test request found.
#[derive(Debug)]
pub enum Outcome {
    /// The API answered as documented; the text says what it saw.
    Ok(String),
    /// Usable, with a note worth reading.
    Warn(String),
    /// Not usable: what happened, and what to do.
    Fail { what: String, fix: String },
    /// Not requested (an earlier answer already refused the credentials).
    Skipped(String),
}

impl Outcome {
    fn is_usable(&self) -> bool {
        matches!(self, Outcome::Ok(_) | Outcome::Warn(_))
    }
}

/// One source of one project, and its outcome.
#[derive(Debug)]
pub struct Probe {
    pub source: Source,
    /// `GET` URL as sent (no secrets travel in URLs).
    pub url: String,
    pub outcome: Outcome,
}

/// HTTP settings for answering fast: one retry for what may pass (a refused or
/// reset connection, 429, 5xx), none after a timeout.
pub fn http_settings(timeout: Duration) -> HttpSettings {
    HttpSettings {
        timeout,
        connect_timeout: timeout.min(Duration::from_secs(5)),
        max_in_flight: 4,
        max_attempts: 2,
        // A timed-out attempt already used the budget: no second wait.
        retry_budget: timeout,
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        max_body_bytes: 4 * 1024 * 1024,
        malformed_retries: 0,
    }
}

/// The request `check` makes for `source`: the cheapest real call of that API.
pub fn probe_call(project: &ProjectSettings, source: Source) -> Call<'_> {
    let id = &project.id;
    let (path, query): (String, Vec<(&str, String)>) = match source {
        Source::Nosql => {
            let end = Utc::now();
            let start = end - chrono::Duration::days(1);
            (
                format!("/v3/{id}/jobs"),
                vec![
                    ("start_time", nosql::time_param(start)),
                    ("end_time", nosql::time_param(end)),
                    ("offset", "0".into()),
                    ("limit", "10".into()),
                ],
            )
        }
        Source::Dbss => (
            format!("/v2/{id}/audit/instances"),
            vec![("offset", "0".into()), ("limit", "1".into())],
        ),
        Source::Image => (
            format!("/v1/{id}/image-server-jobs"),
            vec![("offset", "0".into()), ("limit", "1".into())],
        ),
    };
    Call {
        source,
        project_id: id,
        base: project.endpoints.for_source(source),
        path,
        query: query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// Checks that a 2xx body is the API's answer, and says what it held.
fn read_answer(source: Source, body: &[u8], project_id: &str) -> Result<String, String> {
    let plural = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    match source {
        Source::Nosql => {
            let page = nosql::parse_page(body, project_id)?;
            Ok(format!(
                "{} in the last day",
                plural(page.total_count, "job")
            ))
        }
        Source::Dbss => {
            #[derive(Deserialize)]
            struct Page {
                #[allow(dead_code)]
                instances: Vec<serde_json::Value>,
                total: u64,
            }
            let page: Page = crate::sources::parse_json(body)?;
            Ok(plural(page.total, "audit instance"))
        }
        Source::Image => {
            #[derive(Deserialize)]
            struct Page {
                count: u64,
                #[allow(dead_code)]
                items: Vec<serde_json::Value>,
            }
            let page: Page = crate::sources::parse_json(body)?;
            Ok(plural(page.count, "image-server job"))
        }
    }
}

/// Makes the test request for `source` of `project` and explains the answer.
pub async fn probe(
    client: &ApiClient,
    project: &ProjectSettings,
    source: Source,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Probe {
    let call = probe_call(project, source);
    let url = crate::http::build_url(call.base, &call.path, &call.query).to_string();
    let result = client
        .get(&call, |body| read_answer(source, body, &project.id))
        .await;
    let outcome = match result {
        Ok(seen) => match nothing_to_sync(project, source) {
            Some(note) => Outcome::Warn(format!("{seen}; {note}")),
            None => Outcome::Ok(seen),
        },
        Err(e) => explain(&e, project, source, credentials, timeout),
    };
    Probe {
        source,
        url,
        outcome,
    }
}

/// A source that is on but would sync nothing.
fn nothing_to_sync(project: &ProjectSettings, source: Source) -> Option<String> {
    let (empty, ids) = match source {
        Source::Nosql => return None,
        Source::Dbss => (
            project
                .dbss
                .as_ref()
                .is_some_and(|d| !d.discover && d.resource_ids.is_empty()),
            "resource_ids",
        ),
        Source::Image => (
            project
                .image
                .as_ref()
                .is_some_and(|i| !i.discover && i.job_ids.is_empty()),
            "job_ids",
        ),
    };
    empty.then(|| {
        format!("but [project.{source}] has no {ids} and discover = false, so sync will read nothing from it")
    })
}

/// What a failure means for someone setting jobtrail up, and what to do.
pub fn explain(
    e: &ApiError,
    project: &ProjectSettings,
    source: Source,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Outcome {
    let endpoint_key = format!("[endpoints] {source}");
    let fail = |what: String, fix: String| Outcome::Fail { what, fix };
    let (code, message) = match e {
        ApiError::Auth { code, message, .. } | ApiError::Status { code, message, .. } => {
            (code.0.clone(), message.0.clone())
        }
        _ => (None, None),
    };
    let answer = |status: u16| {
        let mut text = format!("HTTP {status}");
        if let Some(code) = &code {
            let _ = write!(text, ", error code {code}");
        }
        if let Some(message) = message.as_deref().filter(|m| !m.is_empty()) {
            let _ = write!(text, ": {message}");
        }
        text
    };
    match e {
        ApiError::Auth { status, .. } => {
            let what = match (credentials, *status) {
                (None, _) => format!(
                    "the endpoint answers, but refuses a request without credentials ({})",
                    answer(*status)
                ),
                (Some(_), 403) => format!("access denied ({})", answer(403)),
                (Some(_), status) => format!("authentication refused ({})", answer(status)),
            };
            let code = code.as_deref().unwrap_or_default();
            let fix = match credentials {
                None => "set credentials (see Credentials above), then run check again".to_owned(),
                Some(_) if *status == 403 => no_permission_fix(project, source),
                Some(_) if code.eq_ignore_ascii_case("APIGW.0303") => {
                    "this machine's clock differs from the cloud's by more than 15 minutes: set it right (NTP), since signatures carry the time".to_owned()
                }
                Some(Credentials::Token { origin, .. }) => format!(
                    "the IAM token in {origin} was refused: tokens expire after 24 hours and are scoped to one project; get a new one for project {}, or use an AK/SK",
                    project.id
                ),
                Some(Credentials::AkSk { origin, security_token, .. }) => {
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
            fail(what, fix)
        }
        ApiError::Status { status: 404, .. } if e.is_api_not_found() => fail(
            format!("API retired or wrong endpoint ({})", answer(404)),
            format!(
                "the gateway at {} has no such API: check {endpoint_key} (a stray path prefix?) and the region {:?}; if the cloud has retired this API, update jobtrail",
                project.endpoints.for_source(source),
                project.region
            ),
        ),
        ApiError::Status { status: 404, .. }
            if code
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("APIGW.0311")) =>
        {
            fail(
                format!("unknown project ({})", answer(404)),
                format!(
                    "project {} is not a project of region {:?} in this account: copy the ID of the project named {:?} from My Credentials → API Credentials → Projects",
                    project.id, project.region, project.region
                ),
            )
        }
        // A 403 from the service itself (not the gateway): the credentials work,
        // but may not read this API here.
        ApiError::Status { status: 403, .. } => fail(
            format!("access denied ({})", answer(403)),
            no_permission_fix(project, source),
        ),
        ApiError::Status { status: 429, .. } => fail(
            format!("throttled ({})", answer(429)),
            "the API is rate-limiting this account right now: wait a minute and run check again".into(),
        ),
        ApiError::Status { status, .. } if *status >= 500 => fail(
            format!("the service failed ({})", answer(*status)),
            format!(
                "usually passing: run check again in a few minutes; if it persists, check {endpoint_key} and the cloud's service status"
            ),
        ),
        ApiError::Status { status, .. } => fail(
            answer(*status),
            format!(
                "unexpected for this request: check the project ID, the region and {endpoint_key}"
            ),
        ),
        ApiError::Transport { detail, .. } => {
            let host = project
                .endpoints
                .for_source(source)
                .host_str()
                .unwrap_or_default()
                .to_owned();
            let cause = root_cause(detail);
            let (what, fix) = match transport_kind(detail) {
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
                    format!("connection refused by {}", host_port(project, source)),
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
            };
            fail(what, fix)
        }
        ApiError::Malformed { detail, .. } => fail(
            format!("the answer is not this API's JSON: {detail}"),
            format!(
                "is {endpoint_key} the {} endpoint of the region (and no proxy or login page in the way)?",
                service_name(source)
            ),
        ),
        ApiError::Skipped { .. } => Outcome::Skipped(
            "not requested: the credentials were refused above (repeated bad signatures lock the key for five minutes)".into(),
        ),
        ApiError::Setup(detail) => fail(
            format!("cannot set up the HTTP client: {detail}"),
            "report this as a bug".into(),
        ),
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

fn host_port(project: &ProjectSettings, source: Source) -> String {
    let url = project.endpoints.for_source(source);
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => url.to_string(),
    }
}

/// Why a connection failed, from the error chain's text (reqwest/hyper/rustls
/// do not expose kinds for all of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Dns,
    Tls,
    Refused,
    Timeout,
    Other,
}

pub fn transport_kind(detail: &str) -> TransportKind {
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
    } else if d.starts_with("timed out") || any(&["timed out", "deadline has elapsed"]) {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    }
}

// ---------------------------------------------------------------------------
// The whole check

/// Everything `check` found.
#[derive(Debug)]
pub struct Report {
    pub config: ConfigReport,
    /// The database file `sync` would use, and whether it exists.
    pub database: Option<(PathBuf, bool)>,
    pub credentials: Result<Credentials, CredentialError>,
    /// Per project: its id, region and the probes of its enabled sources.
    pub projects: Vec<(String, String, Vec<Probe>)>,
}

impl Report {
    /// Problems that stop a sync (warnings and skipped probes do not count).
    pub fn problem_count(&self) -> usize {
        let probes = self
            .projects
            .iter()
            .flat_map(|(_, _, probes)| probes)
            .filter(|p| matches!(p.outcome, Outcome::Fail { .. }))
            .count();
        self.config.problems.len() + usize::from(self.credentials.is_err()) + probes
    }

    /// Ready to sync: a valid configuration with a project, credentials, and
    /// every enabled source answering.
    pub fn is_ready(&self) -> bool {
        self.problem_count() == 0
            && self.config.settings.is_some()
            && !self.projects.is_empty()
            && self
                .projects
                .iter()
                .flat_map(|(_, _, probes)| probes)
                .all(|p| p.outcome.is_usable())
    }
}

/// Runs the whole check. `db_flag` is `--db`, which wins over the file's `database`.
pub async fn run(config_path: &Path, db_flag: Option<&Path>, timeout: Duration) -> Report {
    let config = check_config_file(config_path);
    let credentials = Credentials::from_environment();
    let database = config.settings.as_ref().map(|s| {
        let path = db_flag
            .map(Path::to_path_buf)
            .or_else(|| s.database.clone())
            .unwrap_or_else(|| PathBuf::from("jobtrail.db"));
        let exists = path.exists();
        (path, exists)
    });
    let mut projects = Vec::new();
    if let Some(settings) = &config.settings {
        let http = http_settings(timeout);
        // One client for the whole check: after one refused signature the
        // others are not sent (five in a row lock the key pair).
        let shared = ApiClient::new(credentials.as_ref().ok().cloned(), http.clone());
        for project in &settings.projects {
            let mut probes = Vec::new();
            for source in Source::ALL.into_iter().filter(|&s| project.has(s)) {
                // Without credentials each request stands alone, to test the network.
                let client = match (&credentials, &shared) {
                    (Ok(_), Ok(client)) => Ok(client.clone()),
                    (Err(_), _) => ApiClient::new(None, http.clone()),
                    (_, Err(e)) => Err(ApiError::Setup(e.to_string())),
                };
                let probe = match client {
                    Ok(client) => {
                        probe(&client, project, source, credentials.as_ref().ok(), timeout).await
                    }
                    Err(e) => Probe {
                        source,
                        url: String::new(),
                        outcome: explain(&e, project, source, None, timeout),
                    },
                };
                probes.push(probe);
            }
            projects.push((project.id.clone(), project.region.clone(), probes));
        }
    }
    Report {
        config,
        database,
        credentials,
        projects,
    }
}

/// The checklist, for stdout.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    const OK: &str = "[ok]  ";
    const WARN: &str = "[warn]";
    const FAIL: &str = "[FAIL]";
    const SKIP: &str = "[skip]";
    const INDENT: &str = "         ";

    line(format!("Configuration: {}", report.config.path.display()));
    if report.config.problems.is_empty() {
        let n = report
            .config
            .settings
            .as_ref()
            .map_or(0, |s| s.projects.len());
        line(format!(
            "  {OK} valid, {n} project{}",
            if n == 1 { "" } else { "s" }
        ));
    } else {
        for problem in &report.config.problems {
            let mut lines = problem.to_string();
            lines = lines.replace('\n', &format!("\n{INDENT}"));
            line(format!("  {FAIL} {lines}"));
        }
    }
    if let Some((path, exists)) = &report.database {
        line(format!("Database: {}", path.display()));
        line(format!(
            "  {OK} {}",
            if *exists {
                "exists"
            } else {
                "will be created by the first sync"
            }
        ));
    }
    line("Credentials:".into());
    match &report.credentials {
        Ok(c) => line(format!("  {OK} {}", c.describe())),
        Err(e) => line(format!("  {FAIL} {e}")),
    }
    if report.config.settings.is_none() {
        line("Requests:".into());
        line(format!("  {SKIP} none made: fix the configuration first"));
    }
    for (id, region, probes) in &report.projects {
        line(format!("Project {id} ({region}):"));
        for p in probes {
            let name = format!("{:<5}", p.source.as_str());
            match &p.outcome {
                Outcome::Ok(seen) => line(format!("  {OK} {name}  {}: {seen}", origin(&p.url))),
                Outcome::Warn(note) => line(format!("  {WARN} {name}  {}: {note}", origin(&p.url))),
                Outcome::Fail { what, fix } => {
                    line(format!("  {FAIL} {name}  GET {}", p.url));
                    line(format!("{INDENT}{what}"));
                    line(format!("{INDENT}fix: {fix}"));
                }
                Outcome::Skipped(why) => line(format!("  {SKIP} {name}  {why}")),
            }
        }
    }
    line(String::new());
    if report.is_ready() {
        line("Ready: `jobtrail sync` will work with this setup.".into());
    } else {
        let n = report.problem_count().max(1);
        line(format!(
            "Not ready: {n} problem{} (the FAIL lines above). Fix, then run `jobtrail check` again.",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}

/// `scheme://host:port` of a URL, for the short ok lines.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.origin().ascii_serialization())
}

/// What to do about a 403, whether the gateway or the service itself said it.
fn no_permission_fix(project: &ProjectSettings, source: Source) -> String {
    format!(
        "the credentials are valid but may not read this API in project {}: give the IAM user read permission for {} there, and check the project belongs to this account",
        project.id,
        service_name(source)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{InitOptions, render as init_render};

    fn check(text: &str) -> ConfigReport {
        check_config(text, Path::new("/tmp/jobtrail.toml"))
    }

    fn messages(report: &ConfigReport) -> Vec<String> {
        report.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn what_init_writes_is_clean() {
        let text = init_render(&InitOptions {
            project: Some("abc123".into()),
            region: Some("cn-north-4".into()),
            ..InitOptions::default()
        })
        .expect("renders");
        let report = check(&text);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.settings.is_some());
    }

    #[test]
    fn placeholders_are_both_named_with_their_lines() {
        let text = init_render(&InitOptions::default()).expect("renders");
        let report = check(&text);
        let m = messages(&report);
        assert_eq!(m.len(), 2, "{m:?}");
        let line_of = |needle: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .map(|i| i + 1)
                .expect("present")
        };
        assert_eq!(report.problems[0].line, Some(line_of(PROJECT_PLACEHOLDER)));
        assert!(
            m[0].contains("project.id is still the placeholder"),
            "{m:?}"
        );
        assert_eq!(report.problems[1].line, Some(line_of(REGION_PLACEHOLDER)));
        assert!(report.settings.is_none());
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"databse = "x.db"
allow_insecure_endpoints = "yes"

[[project]]
id = "p1"
region = "cn north"

[project.nosql]
since = 2024-01-01

[project.dbss]
resource_ids = "r1"
discover = true

[[project]]
id = "p1"
region = "cn-north-4"
[project.image]
job_idz = []

[[project]]
region = "cn-north-4"

[endpoints]
nosql = "http://example.com"
"#;
        let report = check(text);
        let m = messages(&report);
        let expect = [
            ("line 1:", "unknown key `databse`"),
            ("line 2:", "allow_insecure_endpoints must be true or false"),
            ("line 6:", "project.region \"cn north\""),
            ("line 9:", "write dates in quotes"),
            (
                "line 12:",
                "project.dbss.resource_ids must be a list of strings",
            ),
            ("line 16:", "project p1 is listed twice"),
            ("line 19:", "unknown key `project.image.job_idz`"),
            ("no `id`", "project #3"),
            ("project #3 has no source table", ""),
            ("line 25:", "endpoints.nosql"),
        ];
        for (a, b) in expect {
            assert!(
                m.iter().any(|x| x.contains(a) && x.contains(b)),
                "{a} {b} not in {m:#?}"
            );
        }
        assert!(report.settings.is_none());
    }

    #[test]
    fn syntax_errors_are_reported_with_their_line() {
        let report = check("[[project]]\nid = \"p\nregion = \"cn-north-4\"\n");
        assert!(!report.problems.is_empty());
        assert_eq!(report.problems[0].line, Some(2), "{:?}", report.problems);
        assert!(report.problems[0].message.contains("not valid TOML"));
    }

    #[test]
    fn a_file_without_projects_is_not_ready() {
        let report = check("database = \"x.db\"\n");
        assert!(messages(&report)[0].contains("no [[project]]"));
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
            assert_eq!(transport_kind(detail), kind, "{detail}");
        }
    }

    #[test]
    fn the_probes_are_the_cheapest_calls() {
        let settings = Settings::parse(
            "[[project]]\nid = \"p\"\nregion = \"cn-north-4\"\n[project.nosql]\n[project.dbss]\n[project.image]\n",
            Path::new("x.toml"),
        )
        .expect("valid");
        let p = &settings.projects[0];
        let url = |s| {
            let c = probe_call(p, s);
            crate::http::build_url(c.base, &c.path, &c.query).to_string()
        };
        assert_eq!(
            url(Source::Dbss),
            "https://dbss.cn-north-4.myhuaweicloud.com/v2/p/audit/instances?limit=1&offset=0"
        );
        assert_eq!(
            url(Source::Image),
            "https://appstream.cn-north-4.myhuaweicloud.com/v1/p/image-server-jobs?limit=1&offset=0"
        );
        let nosql = url(Source::Nosql);
        assert!(
            nosql.starts_with(
                "https://gaussdb-nosql.cn-north-4.myhuaweicloud.com/v3/p/jobs?end_time="
            ) && nosql.contains("&limit=10&offset=0&start_time="),
            "{nosql}"
        );
    }
}
