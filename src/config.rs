//! Resolved settings: the `jobtrail.toml` file, environment and flags merged in
//! one place. Raw file shapes (`*File`) are private; the rest of the program
//! sees only [`Settings`].

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use toml::Spanned;

use crate::model::Source;

/// A problem with the configuration, naming the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database: Option<PathBuf>,
    queries_dir: Option<PathBuf>,
    /// Allow plain-http endpoints that are not loopback (signed requests would travel in clear).
    #[serde(default)]
    allow_insecure_endpoints: bool,
    #[serde(default, rename = "project")]
    projects: Vec<ProjectFile>,
    #[serde(default)]
    endpoints: EndpointsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    id: Spanned<String>,
    region: Spanned<String>,
    nosql: Option<NosqlFile>,
    dbss: Option<DbssFile>,
    image: Option<ImageFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NosqlFile {
    since: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbssFile {
    #[serde(default)]
    resource_ids: Vec<Spanned<String>>,
    #[serde(default)]
    discover: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    #[serde(default)]
    job_ids: Vec<Spanned<String>>,
    #[serde(default)]
    discover: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsFile {
    nosql: Option<Spanned<String>>,
    dbss: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    iam: Option<Spanned<String>>,
}

/// Everything a command needs to know, resolved.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// From the file's `database` key (relative to the file); `--db` wins over it.
    pub database: Option<PathBuf>,
    pub queries_dir: Option<PathBuf>,
    pub projects: Vec<ProjectSettings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSettings {
    pub id: String,
    pub region: String,
    pub nosql: Option<NosqlSettings>,
    pub dbss: Option<DbssSettings>,
    pub image: Option<ImageSettings>,
    pub endpoints: Endpoints,
}

impl ProjectSettings {
    /// Whether a source is switched on for this project (its table is present).
    pub fn has(&self, source: Source) -> bool {
        match source {
            Source::Nosql => self.nosql.is_some(),
            Source::Dbss => self.dbss.is_some(),
            Source::Image => self.image.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NosqlSettings {
    /// First-sync backfill start; `None` means 30 days before the sync.
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbssSettings {
    pub resource_ids: Vec<String>,
    pub discover: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageSettings {
    pub job_ids: Vec<String>,
    pub discover: bool,
}

/// The base URL of each API for one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    pub nosql: Url,
    pub dbss: Url,
    pub image: Url,
    pub iam: Url,
}

impl Endpoints {
    pub fn for_source(&self, source: Source) -> &Url {
        match source {
            Source::Nosql => &self.nosql,
            Source::Dbss => &self.dbss,
            Source::Image => &self.image,
        }
    }

    /// The public endpoints of a region, as the official SDK's region tables give them.
    pub fn public(region: &str) -> Result<Endpoints, String> {
        let domain = if region == "eu-west-101" {
            "myhuaweicloud.eu"
        } else {
            "myhuaweicloud.com"
        };
        // Workspace App is served under two host names depending on the region.
        const APPSTREAM_REGIONS: [&str; 5] = [
            "cn-north-9",
            "cn-southwest-2",
            "cn-north-4",
            "cn-east-3",
            "cn-south-1",
        ];
        let image_host = if APPSTREAM_REGIONS.contains(&region) {
            "appstream"
        } else {
            "workspace"
        };
        let url = |host: &str| {
            Url::parse(&format!("https://{host}.{region}.{domain}"))
                .map_err(|e| format!("region `{region}` does not make a valid host name: {e}"))
        };
        Ok(Endpoints {
            nosql: url("gaussdb-nosql")?,
            dbss: url("dbss")?,
            image: url(image_host)?,
            iam: url("iam")?,
        })
    }

    /// Every endpoint pointing at one base URL (the simulator).
    pub fn all(base: &Url) -> Endpoints {
        Endpoints {
            nosql: base.clone(),
            dbss: base.clone(),
            image: base.clone(),
            iam: base.clone(),
        }
    }
}

impl Settings {
    /// Loads a configuration file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is used in messages and to resolve
    /// relative paths in it.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // toml's own messages name the line, column and unknown key.
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        let lines = Lines::new(text);
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
        let overrides = endpoint_overrides(&file, &lines).map_err(invalid)?;
        let mut projects = Vec::with_capacity(file.projects.len());
        let mut seen_ids = ProjectIds::default();
        for (index, p) in file.projects.iter().enumerate() {
            let project = project_settings(p, index, &mut seen_ids, &overrides, &lines);
            projects.push(project.map_err(invalid)?);
        }
        Ok(Settings {
            database: file.database.map(relative),
            queries_dir: file.queries_dir.map(relative),
            projects,
        })
    }
}

/// The `[endpoints]` the file sets, parsed, with the key they replace.
fn endpoint_overrides(
    file: &ConfigFile,
    lines: &Lines,
) -> Result<Vec<(&'static str, Url)>, String> {
    let overrides = [
        ("nosql", &file.endpoints.nosql),
        ("dbss", &file.endpoints.dbss),
        ("image", &file.endpoints.image),
        ("iam", &file.endpoints.iam),
    ];
    let mut parsed = Vec::new();
    for (key, value) in overrides {
        if let Some(value) = value {
            let url =
                parse_endpoint(value.get_ref(), file.allow_insecure_endpoints).map_err(|why| {
                    format!(
                        "line {}: endpoints.{key} = {}: {why}",
                        lines.at(value.span()),
                        shown(value.get_ref())
                    )
                })?;
            parsed.push((key, url));
        }
    }
    Ok(parsed)
}

/// One `[[project]]` resolved, or why not (with its line).
fn project_settings(
    p: &ProjectFile,
    index: usize,
    seen_ids: &mut ProjectIds,
    overrides: &[(&str, Url)],
    lines: &Lines,
) -> Result<ProjectSettings, String> {
    let id = seen_ids
        .add(p.id.get_ref())
        .map_err(|why| format!("line {}: {why}", lines.at(p.id.span())))?;
    let (region, mut endpoints) = parse_region(p.region.get_ref())
        .map_err(|why| format!("line {}: {why}", lines.at(p.region.span())))?;
    for (key, url) in overrides {
        match *key {
            "nosql" => endpoints.nosql = url.clone(),
            "dbss" => endpoints.dbss = url.clone(),
            "image" => endpoints.image = url.clone(),
            _ => endpoints.iam = url.clone(),
        }
    }
    let since = |s: &Spanned<String>| {
        parse_nosql_date(s.get_ref()).map_err(|why| {
            format!(
                "line {}: project.nosql.since = {}: {why}",
                lines.at(s.span()),
                shown(s.get_ref())
            )
        })
    };
    let nosql = match &p.nosql {
        None => None,
        Some(n) => Some(NosqlSettings {
            since: n.since.as_ref().map(since).transpose()?,
        }),
    };
    let dbss = match &p.dbss {
        None => None,
        Some(d) => Some(DbssSettings {
            resource_ids: unique_ids("project.dbss.resource_ids", &d.resource_ids, lines)?,
            discover: d.discover,
        }),
    };
    let image = match &p.image {
        None => None,
        Some(i) => Some(ImageSettings {
            job_ids: unique_ids("project.image.job_ids", &i.job_ids, lines)?,
            discover: i.discover,
        }),
    };
    if nosql.is_none() && dbss.is_none() && image.is_none() {
        return Err(format!(
            "line {}: project {id} (#{}) has no source table: add [project.nosql], [project.dbss] or [project.image] under it",
            lines.at(p.id.span()),
            index + 1
        ));
    }
    Ok(ProjectSettings {
        id: id.to_owned(),
        region: region.to_owned(),
        nosql,
        dbss,
        image,
        endpoints,
    })
}

/// The IDs of a list, trimmed, without empty ones and repeats (the first of
/// each kept, in order), in linear time: a list of a million IDs is fine. An
/// ID longer than [`MAX_LISTED_ID`] is refused with its line.
fn unique_ids(key: &str, ids: &[Spanned<String>], lines: &Lines) -> Result<Vec<String>, String> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for item in ids {
        let id = item.get_ref().trim();
        check_listed_id(key, id).map_err(|why| format!("line {}: {why}", lines.at(item.span())))?;
        if !id.is_empty() && seen.insert(id) {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Length limits. A value from the file is refused, naming its key and line,
// when it is far longer than any real one: nothing downstream (URLs, headers,
// messages, the database) then has to cope with a megabyte-long ID.

/// The longest `project.id`: IAM project IDs are 32 hex characters.
pub const MAX_PROJECT_ID: usize = 64;
/// The longest `project.region`: it becomes one label of the endpoints' host
/// names, which DNS caps at 63 characters.
pub const MAX_REGION: usize = 63;
/// The longest ID in `resource_ids` or `job_ids`: real ones are UUIDs (36
/// characters) or 18-digit numbers.
pub const MAX_LISTED_ID: usize = 128;
/// The longest endpoint URL.
pub const MAX_ENDPOINT: usize = 2048;

/// Refuses a value of `key` longer than `max` characters, saying what a real
/// one looks like. The message gives the length, not the value (which may be
/// megabytes).
fn check_length(key: &str, value: &str, max: usize, real: &str) -> Result<(), String> {
    if value.chars().nth(max).is_none() {
        return Ok(());
    }
    Err(format!(
        "{key} is {} characters long, at most {max} are accepted ({real})",
        value.chars().count()
    ))
}

/// An ID of `resource_ids` or `job_ids` (`key`), trimmed: within [`MAX_LISTED_ID`].
pub fn check_listed_id(key: &str, id: &str) -> Result<(), String> {
    check_length(
        "an ID",
        id,
        MAX_LISTED_ID,
        "real ones are UUIDs or numbers of about 20 digits",
    )
    .map_err(|why| why.replacen("an ID", &format!("an ID in {key}"), 1))
}

/// A value from the file, quoted and cut for a message.
pub(crate) fn shown(value: &str) -> String {
    format!("{:?}", crate::text::truncate_chars(value, 100))
}

/// 1-based line numbers of byte offsets, from one pass over the text: a
/// file with a problem on each of 300k lines is still checked in linear time.
pub(crate) struct Lines {
    /// Offsets of every `\n`.
    newlines: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Lines {
        Lines {
            newlines: text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// The line of a byte offset.
    pub(crate) fn of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    /// The line where a span starts.
    pub(crate) fn at(&self, span: std::ops::Range<usize>) -> usize {
        self.of(span.start)
    }
}

/// The project IDs of one file so far: each must be a project ID, and none may
/// come twice. `sync` (through [`Settings::parse`]) and `check` both judge IDs here.
#[derive(Debug, Default)]
pub struct ProjectIds(std::collections::HashSet<String>);

impl ProjectIds {
    /// Takes the next `project.id` as written: the ID trimmed, or why it is refused.
    pub fn add<'v>(&mut self, value: &'v str) -> Result<&'v str, String> {
        let id = value.trim();
        check_length(
            "project.id",
            id,
            MAX_PROJECT_ID,
            "a project ID is 32 hex characters",
        )?;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "project.id {} is not a project ID (letters, digits, - and _; find it under My Credentials → Projects)",
                shown(value)
            ));
        }
        if !self.0.insert(id.to_owned()) {
            return Err(format!("project {id} is listed twice"));
        }
        Ok(id)
    }
}

/// A `project.region` as written: the region trimmed, with its public
/// endpoints, or why it is refused.
pub fn parse_region(value: &str) -> Result<(&str, Endpoints), String> {
    let region = value.trim();
    check_length(
        "project.region",
        region,
        MAX_REGION,
        "region names are like \"cn-north-4\"",
    )?;
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "project.region {} is not a region name such as \"cn-north-4\"",
            shown(value)
        ));
    }
    Ok((region, Endpoints::public(region)?))
}

/// An endpoint must be https, unless it is loopback (the simulator) or insecure
/// endpoints are explicitly allowed: a typo must not send signed requests in clear text.
pub fn parse_endpoint(value: &str, allow_insecure: bool) -> Result<Url, String> {
    check_length(
        "the URL",
        value.trim(),
        MAX_ENDPOINT,
        "an endpoint is a base URL",
    )?;
    let url = Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if url.host_str().is_none() {
        return Err("the URL has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an endpoint takes no query or fragment".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure || is_loopback(&url) => Ok(url),
        "http" => Err(
            "plain http to a non-loopback host would send signed requests in clear text; use https, or set allow_insecure_endpoints = true"
                .into(),
        ),
        other => Err(format!("unsupported scheme `{other}` (use https)")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Dates a user writes: `since`/`until` flags and the `since` key. Every one is
// parsed and range-checked here, so no date outside the range reaches a
// computation that would overflow or a stored text that would sort wrongly.

/// The earliest date accepted anywhere: the Unix epoch. No API reports a job
/// before it (DBSS counts milliseconds from it).
pub const EARLIEST_DATE: NaiveDate = ymd(1970, 1, 1);

/// The latest date accepted anywhere: stored times are fixed-width
/// `YYYY-MM-DDTHH:MM:SS.sssZ`, and a later year would need a fifth digit (and
/// then sort before every other time).
pub const LATEST_DATE: NaiveDate = ymd(9999, 12, 31);

/// The earliest date of a NoSQL range (`[project.nosql] since`, `sync --since`
/// and `--until`): the task list has no jobs that old (the service is far
/// younger), and each 30-day window before it would cost a request.
pub const EARLIEST_NOSQL_DATE: NaiveDate = ymd(2000, 1, 1);

const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a date"),
    }
}

/// Parses `YYYY-MM-DD` (midnight UTC) or a date-time (`YYYY-MM-DDTHH:MM[:SS]`, with
/// `Z` or an offset; none means UTC), from [`EARLIEST_DATE`] to the end of
/// [`LATEST_DATE`] (UTC); anything else is refused, saying the range.
pub fn parse_date_or_datetime(value: &str) -> Result<DateTime<Utc>, String> {
    parse_in_range(value, EARLIEST_DATE)
}

/// [`parse_date_or_datetime`] for a bound of the NoSQL task list's range: from
/// [`EARLIEST_NOSQL_DATE`] on.
pub fn parse_nosql_date(value: &str) -> Result<DateTime<Utc>, String> {
    parse_in_range(value, EARLIEST_NOSQL_DATE)
}

/// The end of an "until" bound that includes its day: a date means the next
/// midnight, a date-time itself. `None` past the end of [`LATEST_DATE`],
/// which no stored time reaches: the bound then leaves nothing out.
pub fn parse_end_of_day(value: &str) -> Result<Option<DateTime<Utc>>, String> {
    let t = parse_date_or_datetime(value)?;
    if NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").is_err() {
        return Ok(Some(t));
    }
    Ok(t.checked_add_days(chrono::Days::new(1))
        .filter(|end| end.date_naive() <= LATEST_DATE))
}

fn parse_in_range(value: &str, earliest: NaiveDate) -> Result<DateTime<Utc>, String> {
    let t = parse_any_date(value.trim())
        .map_err(|why| format!("{why}, from {earliest} to {LATEST_DATE}"))?;
    let day = t.date_naive();
    if day < earliest || day > LATEST_DATE {
        let why = if earliest == EARLIEST_NOSQL_DATE && day < earliest {
            " (the NoSQL task list has no jobs that old)"
        } else {
            ""
        };
        return Err(format!(
            "{} is outside the dates accepted here: {earliest} to {LATEST_DATE}{why}",
            value.trim()
        ));
    }
    Ok(t)
}

/// Any date or date-time form, without a range check. Times are in whole
/// milliseconds, as stored.
fn parse_any_date(v: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    // The API formats, within the years 0000-9999 (UTC).
    if let Some(t) = crate::normalize::parse_api_time(v) {
        return Ok(t);
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc());
        }
    }
    // A well-formed time just outside 0000-9999 once in UTC (9999-12-31T23:00-05:00).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(v, fmt) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    Err("expected a date like 2024-01-31 or a date-time like 2024-01-31T08:00:00Z".into())
}

// ---------------------------------------------------------------------------
// Precedence: which file, which database, which query folder. Flags and the
// environment (clap has already let `--db` win over `JOBTRAIL_DB` and
// `--config` over `JOBTRAIL_CONFIG`) win over the file, the file over the
// defaults. Every command resolves its paths here and nowhere else.

/// The configuration file read when `--config` is not given (when it exists).
pub const DEFAULT_CONFIG_FILE: &str = "jobtrail.toml";

/// The database used when neither `--db` nor the file's `database` names one.
pub const DEFAULT_DATABASE: &str = "jobtrail.db";

/// The database `jobtrail demo` fills unless `--db` names one. Never the
/// file's `database`: simulated jobs must not land in the real history.
pub const DEMO_DATABASE: &str = "jobtrail-demo.db";

/// What the command line and the environment say about where things are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// `--db` or `JOBTRAIL_DB`.
    pub db: Option<PathBuf>,
    /// `--config` or `JOBTRAIL_CONFIG`.
    pub config: Option<PathBuf>,
}

/// The settings and the database they lead to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: Settings,
    pub database: PathBuf,
}

/// A command that needs a project ran without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no project is configured: write a jobtrail.toml with a [[project]] (see the README), or pass --config PATH"
)]
pub struct NoProject;

impl Locations {
    /// The file `init` writes and `check` reads: `--config`, else `./jobtrail.toml`
    /// (whether or not it exists yet).
    pub fn config_file(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE))
    }

    /// Loads `--config` (which must exist), else `./jobtrail.toml` when present,
    /// else empty settings.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        match &self.config {
            Some(path) => Settings::load(path),
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.exists() {
                    Settings::load(default)
                } else {
                    Ok(Settings::default())
                }
            }
        }
    }

    /// Loads the settings and picks the database: `--db`, then the file's
    /// `database`, then `./jobtrail.db`.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let settings = self.settings()?;
        let database = self.database_for(&settings);
        Ok(Resolved { settings, database })
    }

    /// The database these settings lead to: `--db`, then the file's
    /// `database`, then `./jobtrail.db`.
    pub fn database_for(&self, settings: &Settings) -> PathBuf {
        self.db
            .clone()
            .or_else(|| settings.database.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE))
    }

    /// The demo's database: `--db`, else `./jobtrail-demo.db`.
    pub fn demo_database(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEMO_DATABASE))
    }

    /// The saved-query folder: `--queries-dir`, else the file's `queries_dir`
    /// (the file is read only then), else none (the built-in queries alone).
    pub fn queries_dir(&self, flag: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
        match flag {
            Some(dir) => Ok(Some(dir.to_path_buf())),
            None => Ok(self.settings()?.queries_dir),
        }
    }
}

impl Settings {
    /// The configured projects, or [`NoProject`] when there are none.
    pub fn require_projects(&self) -> Result<&[ProjectSettings], NoProject> {
        if self.projects.is_empty() {
            Err(NoProject)
        } else {
            Ok(&self.projects)
        }
    }
}

#[cfg(test)]
mod precedence_tests {
    use super::*;

    const ONE_PROJECT: &str = "database = \"from-file.db\"\nqueries_dir = \"q\"\n\
        [[project]]\nid = \"p1\"\nregion = \"cn-north-4\"\n[project.nosql]\n";

    #[test]
    fn the_flag_wins_over_the_file_and_the_file_over_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("jobtrail.toml");
        std::fs::write(&config, ONE_PROJECT).expect("write");
        let from_file = Locations {
            db: None,
            config: Some(config.clone()),
        };
        let resolved = from_file.resolve().expect("resolve");
        assert_eq!(resolved.database, dir.path().join("from-file.db"));
        assert_eq!(resolved.settings.projects.len(), 1);
        assert_eq!(
            from_file.queries_dir(None).expect("dir"),
            Some(dir.path().join("q"))
        );
        assert_eq!(
            from_file.queries_dir(Some(Path::new("mine"))).expect("dir"),
            Some(PathBuf::from("mine"))
        );

        let flagged = Locations {
            db: Some(PathBuf::from("flag.db")),
            config: Some(config),
        };
        assert_eq!(
            flagged.resolve().expect("resolve").database,
            PathBuf::from("flag.db")
        );
        assert_eq!(flagged.demo_database(), PathBuf::from("flag.db"));
    }

    #[test]
    fn without_flags_the_defaults_apply() {
        let none = Locations::default();
        assert_eq!(none.config_file(), PathBuf::from("jobtrail.toml"));
        assert_eq!(none.demo_database(), PathBuf::from("jobtrail-demo.db"));
        let empty = Resolved {
            settings: Settings::default(),
            database: PathBuf::from(DEFAULT_DATABASE),
        };
        assert_eq!(empty.settings.require_projects(), Err(NoProject));
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let missing = Locations {
            db: None,
            config: Some(PathBuf::from("/nonexistent/jobtrail.toml")),
        };
        let err = missing.resolve().expect_err("missing file");
        assert!(err.to_string().contains("cannot read"), "{err}");
        // The query folder from a flag needs no file at all.
        assert_eq!(
            missing.queries_dir(Some(Path::new("q"))).expect("flag"),
            Some(PathBuf::from("q"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(text, Path::new("/etc/jobtrail/jobtrail.toml")).map_err(|e| e.to_string())
    }

    const FULL: &str = r#"
database = "data/jobtrail.db"

[[project]]
id = "0549b4a43100d4f32f51c01c2fe4acdb"
region = "cn-north-4"

[project.nosql]
since = "2024-01-01"

[project.dbss]
resource_ids = ["2c154fdd-0d43-47b7-9cf1-5236bf6a2ca7"]
discover = true

[project.image]
job_ids = ["702364883651395584"]
"#;

    #[test]
    fn full_example_resolves_with_public_endpoints() {
        let s = parse(FULL).expect("valid");
        assert_eq!(
            s.database,
            Some(PathBuf::from("/etc/jobtrail/data/jobtrail.db"))
        );
        let p = &s.projects[0];
        assert_eq!(
            p.endpoints.nosql.as_str(),
            "https://gaussdb-nosql.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            p.endpoints.image.as_str(),
            "https://appstream.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            p.endpoints.dbss.as_str(),
            "https://dbss.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            p.nosql
                .as_ref()
                .and_then(|n| n.since)
                .map(crate::normalize::format_utc)
                .as_deref(),
            Some("2024-01-01T00:00:00.000Z")
        );
        assert!(
            p.dbss
                .as_ref()
                .is_some_and(|d| d.discover && d.resource_ids.len() == 1)
        );
        assert!(p.has(Source::Image));
    }

    #[test]
    fn regions_with_other_host_names() {
        let eu = Endpoints::public("eu-west-101").expect("eu");
        assert_eq!(
            eu.nosql.as_str(),
            "https://gaussdb-nosql.eu-west-101.myhuaweicloud.eu/"
        );
        let ap = Endpoints::public("ap-southeast-1").expect("ap");
        assert_eq!(
            ap.image.as_str(),
            "https://workspace.ap-southeast-1.myhuaweicloud.com/"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let text = FULL.replace("discover = true", "discover = true\nresource_idz = []");
        let err = parse(&text).expect_err("unknown key");
        assert!(err.contains("resource_idz"), "{err}");
        assert!(err.contains("line 14"), "{err}");
        assert!(err.contains("/etc/jobtrail/jobtrail.toml"), "{err}");
    }

    #[test]
    fn missing_required_values_are_named() {
        let err = parse("[[project]]\nid = \"abc\"\n[project.nosql]\n").expect_err("no region");
        assert!(err.contains("region"), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let err = parse(&FULL.replace("2024-01-01", "last tuesday")).expect_err("bad date");
        assert!(
            err.contains("line 9") && err.contains("project.nosql.since"),
            "{err}"
        );
        let err = parse(&format!(
            "{FULL}\n[endpoints]\nnosql = \"http://example.com\"\n"
        ))
        .expect_err("insecure");
        assert!(
            err.contains("endpoints.nosql") && err.contains("https"),
            "{err}"
        );
        let err = parse("[[project]]\nid = \"a b\"\nregion = \"cn-north-4\"\n[project.nosql]\n")
            .expect_err("id");
        assert!(
            err.contains("line 2") && err.contains("project.id"),
            "{err}"
        );
    }

    #[test]
    fn loopback_http_is_allowed_and_insecure_needs_opt_in() {
        let text = format!("{FULL}\n[endpoints]\nnosql = \"http://127.0.0.1:8080\"\n");
        let s = parse(&text).expect("loopback ok");
        assert_eq!(
            s.projects[0].endpoints.nosql.as_str(),
            "http://127.0.0.1:8080/"
        );
        let text = format!(
            "allow_insecure_endpoints = true\n{FULL}\n[endpoints]\ndbss = \"http://10.0.0.5\"\n"
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn a_project_needs_a_source() {
        let err =
            parse("[[project]]\nid = \"abc\"\nregion = \"cn-north-4\"\n").expect_err("no source");
        assert!(err.contains("no source table"), "{err}");
    }

    #[test]
    fn dates_and_datetimes() {
        let t = |s| parse_date_or_datetime(s).map(crate::normalize::format_utc);
        assert_eq!(t("2024-02-29").as_deref(), Ok("2024-02-29T00:00:00.000Z"));
        assert_eq!(
            t("2024-02-29T08:30").as_deref(),
            Ok("2024-02-29T08:30:00.000Z")
        );
        assert_eq!(
            t("2024-02-29T08:30:00+0800").as_deref(),
            Ok("2024-02-29T00:30:00.000Z")
        );
        assert!(t("2024-02-30").is_err());
    }

    /// Issue 18 item 11: a `since` before about 1677 made a sync "succeed"
    /// without a request, and 9999-12-31 as an end bound became year 10000.
    #[test]
    fn dates_outside_the_accepted_range_are_refused_with_the_range() {
        let t = |s| parse_date_or_datetime(s).map(crate::normalize::format_utc);
        assert_eq!(t("1970-01-01").as_deref(), Ok("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            t("9999-12-31T23:59:59.999Z").as_deref(),
            Ok("9999-12-31T23:59:59.999Z")
        );
        for bad in [
            "1969-12-31",
            "0001-01-01",
            "1677-09-21T00:12:43Z",
            "9999-12-31T23:00:00-05:00",
            "10000-01-01",
        ] {
            let why = t(bad).expect_err(bad);
            assert!(why.contains("1970-01-01 to 9999-12-31"), "{bad}: {why}");
        }
        let nosql = |s| parse_nosql_date(s).map(crate::normalize::format_utc);
        assert_eq!(
            nosql("2000-01-01").as_deref(),
            Ok("2000-01-01T00:00:00.000Z")
        );
        let why = nosql("1999-12-31").expect_err("too old");
        assert!(
            why.contains("2000-01-01 to 9999-12-31") && why.contains("NoSQL"),
            "{why}"
        );
        let end = |s| parse_end_of_day(s).map(|t| t.map(crate::normalize::format_utc));
        assert_eq!(end("9999-12-31"), Ok(None), "no bound after the last day");
        assert_eq!(
            end("2024-01-31"),
            Ok(Some("2024-02-01T00:00:00.000Z".to_owned()))
        );
        assert_eq!(
            end("9999-12-31T12:00:00Z"),
            Ok(Some("9999-12-31T12:00:00.000Z".to_owned()))
        );
        assert!(end("0001-01-01").is_err());
    }

    #[test]
    fn a_nosql_since_before_the_service_is_refused_with_key_and_line() {
        let err = parse(&FULL.replace("2024-01-01", "0001-01-01")).expect_err("too old");
        assert!(
            err.contains("line 9")
                && err.contains("project.nosql.since")
                && err.contains("2000-01-01 to 9999-12-31"),
            "{err}"
        );
    }
}
