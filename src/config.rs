//! Resolved settings: the `jobtrail.toml` file, environment and flags merged in
//! one place. Raw file shapes (`*File`) are private; the rest of the program
//! sees only [`Settings`]. Where each API is reached is `endpoints`' business.

mod endpoints;

use crate::ping::PingUrl;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use toml::Spanned;

pub use endpoints::{Availability, EndpointOverrides, EndpointSettings, Endpoints, service_names};

use crate::model::Source;
use crate::store::{DatabaseLocation, PgStoreError};

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
    /// `--db` or `JOBTRAIL_DB` is a PostgreSQL URL that does not parse (the
    /// message never quotes it).
    #[error("--db (or JOBTRAIL_DB): {0}")]
    Database(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database: Option<Spanned<PathBuf>>,
    queries_dir: Option<PathBuf>,
    /// Prometheus text file written after every sync (`sync --metrics-file`).
    metrics_file: Option<PathBuf>,
    /// Healthchecks-style ping URL (`sync --ping-url`).
    ping_url: Option<Spanned<String>>,
    /// Settings of the DBSS source for every project.
    #[serde(default)]
    dbss: DbssGlobalFile,
    /// Allow plain-http endpoints that are not loopback (signed requests would travel in clear).
    #[serde(default)]
    allow_insecure_endpoints: bool,
    #[serde(default, rename = "project")]
    projects: Vec<ProjectFile>,
    account: Option<AccountFile>,
    /// Service keys (`nosql = "…"`) and region tables (`[endpoints."cn-north-4"]`).
    #[serde(default)]
    endpoints: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    /// Absent: found through IAM from the region, as the SDKs do.
    id: Option<Spanned<String>>,
    region: Spanned<String>,
    nosql: Option<NosqlFile>,
    dbss: Option<DbssFile>,
    image: Option<ImageFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    projects: Spanned<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    sources: Option<Vec<Spanned<String>>>,
    since: Option<Spanned<String>>,
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
struct DbssGlobalFile {
    settled_recheck: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEndpointsFile {
    nosql: Option<String>,
    dbss: Option<String>,
    image: Option<String>,
    iam: Option<String>,
}

/// The longest `[dbss] settled_recheck` accepted: a longer pause would hide an
/// audit instance's new jobs for good.
pub const MAX_SETTLED_RECHECK: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// Everything a command needs to know, resolved.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// From the file's `database` key (a file relative to the config file, or
    /// a PostgreSQL URL); `--db` wins over it.
    pub database: Option<DatabaseLocation>,
    pub queries_dir: Option<PathBuf>,
    /// From the file's `metrics_file` key (relative to the file); `--metrics-file` wins.
    pub metrics_file: Option<PathBuf>,
    /// From the file's `ping_url` key; `--ping-url` wins. Shown redacted.
    pub ping_url: Option<PingUrl>,
    /// `[dbss] settled_recheck`: how long a DBSS audit instance whose jobs are
    /// all final goes without being read again. Zero (the default): every sync
    /// reads it, so a new failure shows in the next run.
    pub dbss_settled_recheck: std::time::Duration,
    /// `[[project]]` blocks with an `id`.
    pub projects: Vec<ProjectSettings>,
    /// `[[project]]` blocks with only a `region`: their IDs are found through
    /// IAM when a command runs (`crate::iam`).
    pub regional: Vec<RegionalProject>,
    /// `[account]`: every enabled project of the account.
    pub account: Option<AccountSettings>,
    /// What places a project found at run time.
    pub endpoints: EndpointSettings,
    /// Sources the file turns on in regions without them (never called), and
    /// regions the table does not know: each command says them once.
    pub notes: Vec<String>,
    /// A project ID from the SDKs' settings (`HUAWEICLOUD_SDK_PROJECT_ID` or the
    /// credentials file's `project_id`) and where it came from: the ID of a
    /// single region-only project, as the SDKs use it.
    pub sdk_project_id: Option<(String, String)>,
    /// `allow_insecure_endpoints`: also judges endpoints given outside the file.
    pub allow_insecure_endpoints: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSettings {
    pub id: String,
    pub region: String,
    pub nosql: Option<NosqlSettings>,
    pub dbss: Option<DbssSettings>,
    pub image: Option<ImageSettings>,
    pub endpoints: Endpoints,
    /// Sources whose table is present but which the region does not offer:
    /// never called (`Settings::notes` says so).
    pub absent: Vec<Source>,
}

impl ProjectSettings {
    /// Whether a source is synced for this project: its table is present and
    /// the region offers it.
    pub fn has(&self, source: Source) -> bool {
        self.configured(source) && !self.absent.contains(&source)
    }

    /// Whether a source's table is present, whether or not the region offers it.
    pub fn configured(&self, source: Source) -> bool {
        match source {
            Source::Nosql => self.nosql.is_some(),
            Source::Dbss => self.dbss.is_some(),
            Source::Image => self.image.is_some(),
        }
    }
}

/// A `[[project]]` with only a region: the region's default project, whose ID
/// IAM gives (`GET /v3/projects?name={region}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionalProject {
    /// The line of its `region`, for messages.
    pub line: usize,
    pub region: String,
    pub nosql: Option<NosqlSettings>,
    pub dbss: Option<DbssSettings>,
    pub image: Option<ImageSettings>,
    pub endpoints: Endpoints,
    pub absent: Vec<Source>,
}

impl RegionalProject {
    /// The project, once its ID is known.
    pub fn with_id(&self, id: &str) -> ProjectSettings {
        ProjectSettings {
            id: id.to_owned(),
            region: self.region.clone(),
            nosql: self.nosql.clone(),
            dbss: self.dbss.clone(),
            image: self.image.clone(),
            endpoints: self.endpoints.clone(),
            absent: self.absent.clone(),
        }
    }
}

/// `[account]`: sync every enabled project of the account (`MOS` and
/// disabled projects aside), each with the sources its region offers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountSettings {
    /// Only projects in these regions; empty: every region.
    pub regions: Vec<String>,
    /// The sources to sync where the region offers them (default: all three).
    pub sources: Vec<Source>,
    /// Where each project's first NoSQL sync starts; `None`: 30 days before it.
    pub since: Option<DateTime<Utc>>,
}

impl AccountSettings {
    /// Whether a project in `region` is wanted.
    pub fn wants_region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
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

/// The SDKs' environment variables that configuration reads (the endpoint
/// overrides), captured once so parsing stays a function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct SdkEnv {
    vars: Vec<(String, String)>,
}

impl SdkEnv {
    /// The process environment's endpoint variables (never its keys: only
    /// `HUAWEICLOUD_SDK_REGION_*` and `HUAWEICLOUD_SDK_IAM_ENDPOINT` are kept).
    pub fn from_process() -> SdkEnv {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| {
                k.starts_with("HUAWEICLOUD_SDK_REGION_") || k == crate::regions::IAM_ENDPOINT_VAR
            })
            .collect();
        SdkEnv { vars }
    }

    /// Given variables (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> SdkEnv {
        SdkEnv {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A variable's first listed endpoint (the SDKs take a comma-separated
    /// list for failover); unset, empty or blank is none.
    fn first_endpoint(value: &str) -> Option<&str> {
        value
            .split(',')
            .map(str::trim)
            .find(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/'))
    }
}

impl Settings {
    /// Loads a configuration file, with the SDKs' endpoint variables of this process.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_with(&text, path, &SdkEnv::from_process())
    }

    /// Parses configuration text without any environment; `path` is used in
    /// messages and to resolve relative paths in it.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        Self::parse_with(text, path, &SdkEnv::default())
    }

    /// Parses configuration text with the SDKs' endpoint variables in `env`.
    pub fn parse_with(text: &str, path: &Path, env: &SdkEnv) -> Result<Settings, ConfigError> {
        // toml's own messages name the line, column and unknown key.
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let reader = FileReader {
            lines: Lines::new(text),
            path,
            allow_insecure: file.allow_insecure_endpoints,
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
        let mut settings = Settings {
            database: reader.database(file.database.as_ref(), base_dir)?,
            queries_dir: file.queries_dir.map(relative),
            metrics_file: file.metrics_file.map(relative),
            ping_url: reader.ping_url(file.ping_url.as_ref())?,
            dbss_settled_recheck: reader.settled_recheck(file.dbss.settled_recheck.as_ref())?,
            endpoints: reader.endpoints(&file.endpoints, env)?,
            allow_insecure_endpoints: file.allow_insecure_endpoints,
            ..Settings::default()
        };
        reader.projects(&file.projects, &mut settings)?;
        settings.account = file
            .account
            .as_ref()
            .map(|a| reader.account(a))
            .transpose()?;
        Ok(settings)
    }

    /// Adds what the SDKs read beside the keys: a project ID (for a single
    /// region-only project) and the credentials file's IAM endpoint. Each
    /// comes with where it was found, for messages.
    pub fn with_sdk_defaults(
        mut self,
        project_id: Option<(String, String)>,
        iam_endpoint: Option<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        if let Some((id, origin)) = &project_id {
            ProjectIds::default()
                .add(id)
                .map_err(|why| ConfigError::Invalid {
                    path: PathBuf::from(origin),
                    message: why,
                })?;
        }
        self.sdk_project_id = project_id.map(|(id, origin)| (id.trim().to_owned(), origin));
        if let Some((url, origin)) = iam_endpoint {
            let parsed = parse_endpoint(&url, self.allow_insecure_endpoints).map_err(|why| {
                ConfigError::Invalid {
                    path: PathBuf::from(&origin),
                    message: format!("iam_endpoint = {url:?}: {why}"),
                }
            })?;
            self.endpoints.credentials_iam = Some(parsed);
        }
        Ok(self)
    }
}

/// A project's `[project.nosql]`, `[project.dbss]` and `[project.image]`.
type SourceTables = (
    Option<NosqlSettings>,
    Option<DbssSettings>,
    Option<ImageSettings>,
);

/// A problem and where in the file it is.
type AtSpan = (std::ops::Range<usize>, String);

/// A project's `[project.dbss]` and `[project.image]`, their IDs checked
/// ([`path_ids`]) and without repeats; an error carries the span at fault.
fn by_id_sources(p: &ProjectFile) -> Result<(Option<DbssSettings>, Option<ImageSettings>), AtSpan> {
    let dbss = match &p.dbss {
        None => None,
        Some(d) => Some(DbssSettings {
            resource_ids: dedup(&path_ids("project.dbss.resource_ids", &d.resource_ids)?),
            discover: d.discover,
        }),
    };
    let image = match &p.image {
        None => None,
        Some(i) => Some(ImageSettings {
            job_ids: dedup(&path_ids("project.image.job_ids", &i.job_ids)?),
            discover: i.discover,
        }),
    };
    Ok((dbss, image))
}

/// The IDs of a `job_ids`/`resource_ids` list, each of which is sent as one
/// URL path segment: `.` and `..` (which would send the request to another
/// path) or one with a `/` are refused, naming the key; blanks are left for
/// [`dedup`] to drop.
fn path_ids(key: &str, ids: &[Spanned<String>]) -> Result<Vec<String>, AtSpan> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let trimmed = id.get_ref().trim();
        check_listed_id(key, trimmed).map_err(|why| (id.span(), why))?;
        if !trimmed.is_empty()
            && let Some(why) = crate::http::segment_problem(trimmed)
        {
            return Err((
                id.span(),
                format!(
                    "{key}: {:?} is not an ID: {why}",
                    crate::text::truncate_chars(id.get_ref(), 80)
                ),
            ));
        }
        out.push(id.get_ref().clone());
    }
    Ok(out)
}

/// A `[dbss] settled_recheck` value: a duration such as `"6h"`, `"30m"` or
/// `"1day"`; `"0"` reads settled audit instances on every sync.
pub fn parse_settled_recheck(value: &str) -> Result<std::time::Duration, String> {
    let every = humantime::parse_duration(value.trim()).map_err(|e| {
        format!(
            "not a duration ({e}); write it like \"6h\", \"30m\" or \"1day\", or \"0\" to read them on every sync"
        )
    })?;
    if every > MAX_SETTLED_RECHECK {
        return Err(
            "at most 366 days, or new jobs of a settled audit instance would hardly ever be seen"
                .into(),
        );
    }
    Ok(every)
}

/// Reads the raw file into settings, naming the file and line in every error.
struct FileReader<'t> {
    /// Line numbers of the file, from one pass over its text.
    lines: Lines,
    path: &'t Path,
    allow_insecure: bool,
}

impl FileReader<'_> {
    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn line(&self, span: std::ops::Range<usize>) -> usize {
        self.lines.at(span)
    }

    /// `database`: a file relative to the config file, or a PostgreSQL URL.
    fn database(
        &self,
        value: Option<&Spanned<PathBuf>>,
        base_dir: &Path,
    ) -> Result<Option<DatabaseLocation>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let location = DatabaseLocation::parse(value.get_ref()).map_err(|why| {
            self.invalid(format!("line {}: database: {why}", self.line(value.span())))
        })?;
        Ok(Some(location.relative_to(base_dir)))
    }

    /// `ping_url`: never repeated in a message, since it holds the check's secret.
    fn ping_url(&self, value: Option<&Spanned<String>>) -> Result<Option<PingUrl>, ConfigError> {
        value
            .map(|v| {
                PingUrl::parse(v.get_ref()).map_err(|why| {
                    self.invalid(format!("line {}: ping_url: {why}", self.line(v.span())))
                })
            })
            .transpose()
    }

    /// `[dbss] settled_recheck`; zero (every sync) when absent.
    fn settled_recheck(
        &self,
        value: Option<&Spanned<String>>,
    ) -> Result<std::time::Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(std::time::Duration::ZERO);
        };
        parse_settled_recheck(value.get_ref()).map_err(|why| {
            self.invalid(format!(
                "line {}: dbss.settled_recheck = {:?}: {why}",
                self.line(value.span()),
                value.get_ref()
            ))
        })
    }

    /// `[endpoints]`: service keys and region tables, then the SDKs' variables.
    fn endpoints(
        &self,
        table: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
        env: &SdkEnv,
    ) -> Result<EndpointSettings, ConfigError> {
        let mut settings = EndpointSettings::default();
        for (key, value) in table {
            let name = key.get_ref().as_str();
            let line = self.line(value.span());
            if EndpointOverrides::KEYS.contains(&name) {
                let Some(text) = value.get_ref().as_str() else {
                    return Err(self.invalid(format!(
                        "line {line}: endpoints.{name} must be a URL in quotes"
                    )));
                };
                let url = parse_endpoint(text, self.allow_insecure).map_err(|why| {
                    self.invalid(format!(
                        "line {line}: endpoints.{name} = {:?}: {why}",
                        crate::text::redact_url_text(text)
                    ))
                })?;
                settings.global.set(name, url);
            } else {
                let overrides = self.region_endpoints(name, value)?;
                settings.regions.insert(name.to_owned(), overrides);
            }
        }
        self.env_endpoints(env, &mut settings)?;
        Ok(settings)
    }

    /// `[endpoints."REGION"]`: the endpoints of one region.
    fn region_endpoints(
        &self,
        region: &str,
        value: &Spanned<toml::Value>,
    ) -> Result<EndpointOverrides, ConfigError> {
        let line = self.line(value.span());
        if !value.get_ref().is_table() || parse_region(region).map(|(r, _)| r) != Ok(region) {
            return Err(self.invalid(format!(
                "line {line}: unknown key `endpoints.{region}` (expected `nosql`, `dbss`, `image`, `iam`, or a region's table such as [endpoints.\"cn-north-4\"])"
            )));
        }
        let file: RegionEndpointsFile = value
            .get_ref()
            .clone()
            .try_into()
            .map_err(|e| self.invalid(format!("line {line}: [endpoints.\"{region}\"]: {e}")))?;
        let mut overrides = EndpointOverrides::default();
        let keys = [
            ("nosql", &file.nosql),
            ("dbss", &file.dbss),
            ("image", &file.image),
            ("iam", &file.iam),
        ];
        for (key, text) in keys {
            if let Some(text) = text {
                let url = parse_endpoint(text, self.allow_insecure).map_err(|why| {
                    self.invalid(format!(
                        "line {line}: endpoints.\"{region}\".{key} = {:?}: {why}",
                        crate::text::redact_url_text(text)
                    ))
                })?;
                overrides.set(key, url);
            }
        }
        Ok(overrides)
    }

    /// `HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}` and `HUAWEICLOUD_SDK_IAM_ENDPOINT`.
    fn env_endpoints(
        &self,
        env: &SdkEnv,
        settings: &mut EndpointSettings,
    ) -> Result<(), ConfigError> {
        for (name, value) in &env.vars {
            let target = if name == crate::regions::IAM_ENDPOINT_VAR {
                None
            } else if let Some(found) = crate::regions::parse_override_var(name) {
                Some(found)
            } else {
                continue;
            };
            let Some(text) = SdkEnv::first_endpoint(value) else {
                continue;
            };
            let url = parse_endpoint(text, self.allow_insecure).map_err(|why| {
                self.invalid(format!("environment variable {name} = {text:?}: {why}"))
            })?;
            match target {
                None => settings.env_iam = Some(url),
                Some(key) => {
                    settings.env.insert((key.1, key.0), url);
                }
            }
        }
        Ok(())
    }

    /// Every `[[project]]`: those with an `id`, and those with only a region.
    fn projects(&self, files: &[ProjectFile], settings: &mut Settings) -> Result<(), ConfigError> {
        let mut seen_ids = ProjectIds::default();
        let mut regional: Vec<(String, usize)> = Vec::new();
        for (index, p) in files.iter().enumerate() {
            let line = self.line(p.region.span());
            let (region, _) = parse_region(p.region.get_ref())
                .map_err(|why| self.invalid(format!("line {line}: {why}")))?;
            let endpoints = settings
                .endpoints
                .for_region(region)
                .map_err(|why| self.invalid(format!("line {line}: {why}")))?;
            let id = match &p.id {
                Some(id) => Some(seen_ids.add(id.get_ref()).map_err(|why| {
                    self.invalid(format!("line {}: {why}", self.line(id.span())))
                })?),
                None => None,
            };
            let label = id.map_or_else(|| format!("in {region}"), str::to_owned);
            let (nosql, dbss, image) = self.sources(p)?;
            if nosql.is_none() && dbss.is_none() && image.is_none() {
                let at = p.id.as_ref().map_or(line, |id| self.line(id.span()));
                return Err(self.invalid(format!(
                    "line {at}: project {label} (#{}) has no source table: add [project.nosql], [project.dbss] or [project.image] under it",
                    index + 1
                )));
            }
            let configured: Vec<Source> = [
                (Source::Nosql, nosql.is_some()),
                (Source::Dbss, dbss.is_some()),
                (Source::Image, image.is_some()),
            ]
            .into_iter()
            .filter_map(|(s, on)| on.then_some(s))
            .collect();
            let absent = self.note_gaps(settings, line, &label, region, &configured);
            match id {
                Some(id) => settings.projects.push(ProjectSettings {
                    id: id.to_owned(),
                    region: region.to_owned(),
                    nosql,
                    dbss,
                    image,
                    endpoints,
                    absent,
                }),
                None => {
                    if let Some((_, first)) = regional.iter().find(|(r, _)| r == region) {
                        return Err(self.invalid(format!(
                            "line {line}: region {region} has a [[project]] without an id already (line {first}): both would be the region's default project; give one an `id`"
                        )));
                    }
                    regional.push((region.to_owned(), line));
                    settings.regional.push(RegionalProject {
                        line,
                        region: region.to_owned(),
                        nosql,
                        dbss,
                        image,
                        endpoints,
                        absent,
                    });
                }
            }
        }
        Ok(())
    }

    /// The configured sources `region` lacks (returned, and said in a note),
    /// and a note when the table does not know the region.
    fn note_gaps(
        &self,
        settings: &mut Settings,
        line: usize,
        label: &str,
        region: &str,
        configured: &[Source],
    ) -> Vec<Source> {
        let availability = |s: Source| settings.endpoints.availability(region, s);
        let absent: Vec<Source> = configured
            .iter()
            .copied()
            .filter(|s| availability(*s) == Availability::Absent)
            .collect();
        if !absent.is_empty() {
            let tables: Vec<String> = absent.iter().map(|s| format!("[project.{s}]")).collect();
            let (tables, verb) = match tables.as_slice() {
                [one] => (one.clone(), "is"),
                _ => (tables.join(" and "), "are"),
            };
            settings.notes.push(format!(
                "line {line}: project {label}: {tables} {verb} not synced: {region} has no {} (the SDKs know no endpoint there; set [endpoints.\"{region}\"] to reach one anyway)",
                service_names(&absent)
            ));
        }
        if configured
            .iter()
            .any(|s| availability(*s) == Availability::UnknownRegion)
        {
            settings.notes.push(format!(
                "line {line}: region {region} is not in jobtrail's region table: its APIs are assumed at the SDKs' usual host names (such as https://dbss.{region}.myhuaweicloud.com); set [endpoints.\"{region}\"] if they differ"
            ));
        }
        absent
    }

    /// A project's source tables, resolved.
    fn sources(&self, p: &ProjectFile) -> Result<SourceTables, ConfigError> {
        let nosql = match &p.nosql {
            None => None,
            Some(n) => Some(NosqlSettings {
                since: self.since(n.since.as_ref(), "project.nosql.since")?,
            }),
        };
        let (dbss, image) = by_id_sources(p)
            .map_err(|(span, why)| self.invalid(format!("line {}: {why}", self.line(span))))?;
        Ok((nosql, dbss, image))
    }

    fn since(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
    ) -> Result<Option<DateTime<Utc>>, ConfigError> {
        let Some(s) = value else { return Ok(None) };
        parse_nosql_date(s.get_ref()).map(Some).map_err(|why| {
            self.invalid(format!(
                "line {}: {key} = {:?}: {why}",
                self.line(s.span()),
                s.get_ref()
            ))
        })
    }

    /// `[account]`.
    fn account(&self, a: &AccountFile) -> Result<AccountSettings, ConfigError> {
        let line = self.line(a.projects.span());
        if a.projects.get_ref().trim() != "all" {
            return Err(self.invalid(format!(
                "line {line}: account.projects = {:?}: the only value is \"all\" (every enabled project of the account); name single projects with [[project]] instead",
                a.projects.get_ref()
            )));
        }
        let mut regions: Vec<String> = Vec::new();
        for r in &a.regions {
            let (region, _) = parse_region(r.get_ref()).map_err(|_| {
                self.invalid(format!(
                    "line {}: account.regions: {:?} is not a region name such as \"cn-north-4\"",
                    self.line(r.span()),
                    r.get_ref()
                ))
            })?;
            if !regions.iter().any(|known| known == region) {
                regions.push(region.to_owned());
            }
        }
        let sources = match &a.sources {
            None => Source::ALL.to_vec(),
            Some(list) => {
                let mut sources = Vec::new();
                for s in list {
                    let source: Source = s.get_ref().parse().map_err(|why| {
                        self.invalid(format!(
                            "line {}: account.sources: {why}",
                            self.line(s.span())
                        ))
                    })?;
                    if !sources.contains(&source) {
                        sources.push(source);
                    }
                }
                if sources.is_empty() {
                    return Err(self.invalid(format!(
                        "line {line}: account.sources is empty: name at least one of nosql, dbss and image, or leave the key out for all three"
                    )));
                }
                sources.sort();
                sources
            }
        };
        Ok(AccountSettings {
            regions,
            sources,
            since: self.since(a.since.as_ref(), "account.since")?,
        })
    }
}

fn dedup(ids: &[String]) -> Vec<String> {
    // A HashSet: 300k job_ids took over a minute with a scan per ID.
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if seen.insert(id) {
            out.push(id.to_owned());
        }
    }
    out
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

/// `sync --shard I/N`: the I-th (from 1) of N shares of the configured
/// projects. A project's share follows from its ID alone (a SHA-256 of it),
/// so every host that runs with the same N agrees on who syncs what, whatever
/// order the projects are listed in, and adding a project moves no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    index: u32,
    count: u32,
}

impl Shard {
    /// Whether `project_id` falls in this share.
    pub fn includes(&self, project_id: &str) -> bool {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"jobtrail shard\0")
            .chain_update(project_id.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let usage =
            || format!("`{text}` is not a share: write I/N, the I-th of N (1 ≤ I ≤ N), e.g. 2/3");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if index == 0 || count == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
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

/// A database as the command line or the environment gives it (`--db`,
/// `JOBTRAIL_DB`, `copy --from/--to`): kept as typed until read with
/// [`DatabaseArg::location`], and shown (`Debug`) without any password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseArg(PathBuf);

impl DatabaseArg {
    /// A SQLite file or a PostgreSQL URL (see [`DatabaseLocation::parse`]).
    pub fn location(&self) -> Result<DatabaseLocation, PgStoreError> {
        DatabaseLocation::parse(&self.0)
    }
}

impl From<std::ffi::OsString> for DatabaseArg {
    fn from(text: std::ffi::OsString) -> DatabaseArg {
        DatabaseArg(PathBuf::from(text))
    }
}

impl From<&str> for DatabaseArg {
    fn from(text: &str) -> DatabaseArg {
        DatabaseArg(PathBuf::from(text))
    }
}

impl std::fmt::Debug for DatabaseArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match DatabaseLocation::parse(&self.0) {
            Ok(location) => write!(f, "DatabaseArg({location:?})"),
            Err(_) => f.write_str("DatabaseArg(not a valid PostgreSQL URL)"),
        }
    }
}

/// What the command line and the environment say about where things are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// `--db` or `JOBTRAIL_DB`.
    pub db: Option<DatabaseArg>,
    /// `--config` or `JOBTRAIL_CONFIG`.
    pub config: Option<PathBuf>,
}

/// The settings and the database they lead to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: Settings,
    pub database: DatabaseLocation,
}

/// A command that needs a project ran without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no project is configured: write a jobtrail.toml with a [[project]] or an [account] (see the README, or `jobtrail init`), or pass --config PATH"
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
        let database = self.database_for(&settings)?;
        Ok(Resolved { settings, database })
    }

    /// The database these settings lead to: `--db`, then the file's
    /// `database`, then `./jobtrail.db`. A URL is PostgreSQL, anything else a
    /// SQLite file ([`DatabaseLocation::parse`]).
    pub fn database_for(&self, settings: &Settings) -> Result<DatabaseLocation, ConfigError> {
        match (self.flag_database()?, &settings.database) {
            (Some(flag), _) => Ok(flag),
            (None, Some(file)) => Ok(file.clone()),
            (None, None) => Ok(DatabaseLocation::Sqlite(PathBuf::from(DEFAULT_DATABASE))),
        }
    }

    /// The demo's database: `--db`, else `./jobtrail-demo.db`.
    pub fn demo_database(&self) -> Result<DatabaseLocation, ConfigError> {
        Ok(self
            .flag_database()?
            .unwrap_or_else(|| DatabaseLocation::Sqlite(PathBuf::from(DEMO_DATABASE))))
    }

    /// `--db` or `JOBTRAIL_DB`, read.
    fn flag_database(&self) -> Result<Option<DatabaseLocation>, ConfigError> {
        self.db
            .as_ref()
            .map(DatabaseArg::location)
            .transpose()
            .map_err(|e| ConfigError::Database(e.to_string()))
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
    /// Whether anything is configured to sync: a project with an ID, one with
    /// only a region, or the whole account; else [`NoProject`].
    pub fn require_projects(&self) -> Result<(), NoProject> {
        if self.projects.is_empty() && self.regional.is_empty() && self.account.is_none() {
            Err(NoProject)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod shard_tests {
    use super::Shard;

    #[test]
    fn every_project_falls_in_exactly_one_share() {
        let ids: Vec<String> = (0..200).map(|n| format!("project-{n:03}")).collect();
        let shares: Vec<Shard> = (1..=3)
            .map(|i| format!("{i}/3").parse().expect("share"))
            .collect();
        for id in &ids {
            let holders = shares.iter().filter(|s| s.includes(id)).count();
            assert_eq!(holders, 1, "{id}");
        }
        for share in &shares {
            let n = ids.iter().filter(|id| share.includes(id)).count();
            assert!((40..=95).contains(&n), "{share} holds {n} of 200");
        }
        let whole: Shard = "1/1".parse().expect("one share");
        assert!(ids.iter().all(|id| whole.includes(id)));
    }

    #[test]
    fn a_share_is_i_of_n_from_one() {
        assert_eq!("2/4".parse::<Shard>().expect("ok").to_string(), "2/4");
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/3/4", ""] {
            let err = bad.parse::<Shard>().expect_err(bad);
            assert!(err.contains("I/N"), "{bad}: {err}");
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
        assert_eq!(
            resolved.database.sqlite_path(),
            Some(dir.path().join("from-file.db").as_path())
        );
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
            db: Some("flag.db".into()),
            config: Some(config),
        };
        assert_eq!(
            flagged.resolve().expect("resolve").database.sqlite_path(),
            Some(Path::new("flag.db"))
        );
        assert_eq!(
            flagged.demo_database().expect("demo").sqlite_path(),
            Some(Path::new("flag.db"))
        );
        let url = Locations {
            db: Some("postgres://ops:s3cret@db.example/jobtrail".into()),
            config: None,
        };
        let database = url.resolve().expect("resolve").database;
        assert!(matches!(database, DatabaseLocation::Postgres(_)));
        assert_eq!(
            database.to_string(),
            "postgres://ops:***@db.example:5432/jobtrail"
        );
        let bad = Locations {
            db: Some("postgres://ops:s3cret@[db/x".into()),
            config: None,
        };
        let err = bad.resolve().expect_err("bad URL");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        for shown in [format!("{url:?}"), format!("{bad:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn without_flags_the_defaults_apply() {
        let none = Locations::default();
        assert_eq!(none.config_file(), PathBuf::from("jobtrail.toml"));
        assert_eq!(
            none.demo_database().expect("demo").sqlite_path(),
            Some(Path::new("jobtrail-demo.db"))
        );
        let empty = Resolved {
            settings: Settings::default(),
            database: DatabaseLocation::Sqlite(PathBuf::from(DEFAULT_DATABASE)),
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
            s.database.as_ref().and_then(DatabaseLocation::sqlite_path),
            Some(Path::new("/etc/jobtrail/data/jobtrail.db"))
        );
        let url = parse("database = \"postgres://ops@db.example/jobtrail\"\n").expect("url");
        assert_eq!(
            url.database.map(|d| d.to_string()).as_deref(),
            Some("postgres://ops@db.example:5432/jobtrail"),
            "a URL is not made relative to the file"
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
    fn a_project_may_give_only_its_region() {
        let s = parse("[[project]]\nregion = \"ap-southeast-1\"\n[project.dbss]\n").expect("valid");
        assert!(s.projects.is_empty());
        let r = &s.regional[0];
        assert_eq!((r.region.as_str(), r.line), ("ap-southeast-1", 2));
        let p = r.with_id("abc");
        assert_eq!(p.id, "abc");
        assert!(p.has(Source::Dbss) && !p.has(Source::Nosql));
        assert_eq!(
            p.endpoints.dbss.as_str(),
            "https://dbss.ap-southeast-1.myhuaweicloud.com/"
        );
        assert_eq!(s.require_projects(), Ok(()));
        let twice = "[[project]]\nregion = \"cn-north-4\"\n[project.nosql]\n\n[[project]]\nregion = \"cn-north-4\"\n[project.dbss]\n";
        let err = parse(twice).expect_err("twice");
        assert!(
            err.contains("line 6") && err.contains("line 2") && err.contains("give one an `id`"),
            "{err}"
        );
    }

    #[test]
    fn the_whole_account() {
        let s = parse("[account]\nprojects = \"all\"\nregions = [\"cn-north-4\", \"cn-north-4\", \"eu-west-101\"]\nsources = [\"image\", \"nosql\"]\nsince = \"2024-02-01\"\n").expect("valid");
        let a = s.account.as_ref().expect("account");
        assert_eq!(a.regions, ["cn-north-4", "eu-west-101"]);
        assert_eq!(a.sources, [Source::Nosql, Source::Image]);
        assert!(a.since.is_some() && a.wants_region("eu-west-101") && !a.wants_region("cn-east-3"));
        assert_eq!(s.require_projects(), Ok(()));
        let all = parse("[account]\nprojects = \"all\"\n").expect("valid");
        assert_eq!(all.account.expect("account").sources, Source::ALL);
        for (text, expected) in [
            (
                "[account]\nprojects = \"some\"\n",
                "line 2: account.projects",
            ),
            (
                "[account]\nprojects = \"all\"\nsources = [\"ecs\"]\n",
                "line 3: account.sources: unknown source `ecs`",
            ),
            (
                "[account]\nprojects = \"all\"\nsources = []\n",
                "account.sources is empty",
            ),
            (
                "[account]\nprojects = \"all\"\nregions = [\"cn north\"]\n",
                "line 3: account.regions",
            ),
            (
                "[account]\nprojects = \"all\"\nsince = \"soon\"\n",
                "line 3: account.since",
            ),
            ("[account]\nregions = []\n", "projects"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn endpoints_per_region_and_from_the_sdks_variables() {
        let text = "[[project]]\nid = \"p1\"\nregion = \"cn-north-4\"\n[project.nosql]\n\n[[project]]\nid = \"p2\"\nregion = \"ap-southeast-1\"\n[project.nosql]\n[project.dbss]\n\n[endpoints]\nnosql = \"https://nosql.proxy.example\"\n\n[endpoints.\"cn-north-4\"]\nnosql = \"https://nosql.vpcep.example\"\niam = \"https://iam.vpcep.example\"\n";
        let env = SdkEnv::from_pairs(&[
            (
                "HUAWEICLOUD_SDK_REGION_DBSS_AP_SOUTHEAST_1",
                " https://dbss.env.example/ ,https://second.example",
            ),
            (
                "HUAWEICLOUD_SDK_REGION_GAUSSDBFORNOSQL_CN_NORTH_4",
                "https://loses.example",
            ),
            ("HUAWEICLOUD_SDK_REGION_ECS_CN_NORTH_4", "not read"),
            ("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://iam.env.example"),
        ]);
        let s = Settings::parse_with(text, Path::new("/x.toml"), &env).expect("valid");
        let e = |i: usize| &s.projects[i].endpoints;
        assert_eq!(
            e(0).nosql.as_str(),
            "https://nosql.vpcep.example/",
            "per region beats env and global"
        );
        assert_eq!(e(0).iam.as_str(), "https://iam.vpcep.example/");
        assert_eq!(
            e(1).nosql.as_str(),
            "https://nosql.proxy.example/",
            "global for the others"
        );
        assert_eq!(
            e(1).dbss.as_str(),
            "https://dbss.env.example/",
            "the variable's first endpoint"
        );
        assert_eq!(e(1).iam.as_str(), "https://iam.env.example/");
        assert_eq!(
            e(0).dbss.as_str(),
            "https://dbss.cn-north-4.myhuaweicloud.com/",
            "the table where nothing is set"
        );

        let bad =
            SdkEnv::from_pairs(&[("HUAWEICLOUD_SDK_REGION_DBSS_CN_NORTH_4", "http://10.0.0.1")]);
        let err = Settings::parse_with(text, Path::new("/x.toml"), &bad)
            .expect_err("insecure")
            .to_string();
        assert!(
            err.contains("HUAWEICLOUD_SDK_REGION_DBSS_CN_NORTH_4") && err.contains("https"),
            "{err}"
        );
        for (table, expected) in [
            ("[endpoints.\"cn-north-4\"]\nnsql = \"https://x\"\n", "nsql"),
            (
                "[endpoints.\"cn-north-4\"]\nnosql = \"http://example.com\"\n",
                "endpoints.\"cn-north-4\".nosql",
            ),
            (
                "[endpoints]\ncompute = \"https://x\"\n",
                "unknown key `endpoints.compute`",
            ),
            ("[endpoints]\nnosql = 3\n", "endpoints.nosql must be a URL"),
        ] {
            let err = parse(&format!("{FULL}\n{table}")).expect_err(table);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn a_source_the_region_lacks_is_kept_off_with_a_note() {
        let text = "[[project]]\nid = \"p1\"\nregion = \"eu-west-101\"\n[project.nosql]\n[project.dbss]\n[project.image]\n";
        let s = parse(text).expect("a note, not an error");
        let p = &s.projects[0];
        assert!(p.has(Source::Nosql) && p.configured(Source::Dbss) && !p.has(Source::Dbss));
        assert_eq!(p.absent, [Source::Dbss, Source::Image]);
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(
            s.notes[0].contains("line 3: project p1: [project.dbss] and [project.image] are not synced: eu-west-101 has no DBSS and Workspace App"),
            "{:?}",
            s.notes
        );
        // An endpoint set for that region makes the service reachable.
        let vpc =
            format!("{text}\n[endpoints.\"eu-west-101\"]\ndbss = \"https://dbss.vpcep.example\"\n");
        let s = parse(&vpc).expect("valid");
        assert_eq!(s.projects[0].absent, [Source::Image]);
        assert!(s.projects[0].has(Source::Dbss));
        // A region the table does not know is tried, with a note.
        let s = parse("[[project]]\nid = \"p\"\nregion = \"xx-new-1\"\n[project.dbss]\n")
            .expect("valid");
        assert!(s.projects[0].has(Source::Dbss));
        assert!(
            s.notes[0].contains("not in jobtrail's region table"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn the_sdks_project_id_and_iam_endpoint_are_judged_too() {
        let s = parse(FULL).expect("valid");
        let s = s
            .with_sdk_defaults(
                Some((" p-env ".into(), "HUAWEICLOUD_SDK_PROJECT_ID".into())),
                Some((
                    "https://iam.creds.example".into(),
                    "credentials file x".into(),
                )),
            )
            .expect("valid");
        assert_eq!(
            s.sdk_project_id,
            Some(("p-env".into(), "HUAWEICLOUD_SDK_PROJECT_ID".into()))
        );
        assert_eq!(
            s.endpoints.iam(Some("cn-north-4")).expect("iam").as_str(),
            "https://iam.creds.example/"
        );
        let err = parse(FULL)
            .expect("valid")
            .with_sdk_defaults(
                Some(("a b".into(), "HUAWEICLOUD_SDK_PROJECT_ID".into())),
                None,
            )
            .expect_err("bad id")
            .to_string();
        assert!(err.contains("HUAWEICLOUD_SDK_PROJECT_ID"), "{err}");
        let err = parse(FULL)
            .expect("valid")
            .with_sdk_defaults(
                None,
                Some(("http://iam.example".into(), "credentials file x".into())),
            )
            .expect_err("insecure")
            .to_string();
        assert!(
            err.contains("credentials file x") && err.contains("iam_endpoint"),
            "{err}"
        );
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

    #[test]
    fn settled_dbss_instances_are_read_every_sync_unless_configured() {
        assert_eq!(
            parse(FULL).expect("valid").dbss_settled_recheck,
            std::time::Duration::ZERO
        );
        let s = parse(&format!("{FULL}\n[dbss]\nsettled_recheck = \"6h\"\n")).expect("valid");
        assert_eq!(
            s.dbss_settled_recheck,
            std::time::Duration::from_secs(6 * 3600)
        );
        let s = parse(&format!("{FULL}\n[dbss]\nsettled_recheck = \"0\"\n")).expect("valid");
        assert_eq!(s.dbss_settled_recheck, std::time::Duration::ZERO);
        let err = parse(&format!("{FULL}\n[dbss]\nsettled_recheck = \"often\"\n"))
            .expect_err("not a duration");
        assert!(
            err.contains("line 19") && err.contains("dbss.settled_recheck") && err.contains("6h"),
            "{err}"
        );
        let err = parse(&format!("{FULL}\n[dbss]\nsettled_recheck = \"400days\"\n"))
            .expect_err("too long");
        assert!(err.contains("at most 366 days"), "{err}");
        let err = parse(&format!("{FULL}\n[dbss]\nsettled = \"6h\"\n")).expect_err("unknown");
        assert!(err.contains("settled"), "{err}");
    }

    #[test]
    fn metrics_file_and_ping_url_are_read_and_a_bad_url_is_named_but_not_shown() {
        let secret = "5f3c9a1e-0b7d-4c3e";
        let text = format!(
            "metrics_file = \"textfile/jobtrail.prom\"\nping_url = \"https://hc-ping.com/{secret}\"\n{FULL}"
        );
        let s = parse(&text).expect("valid");
        assert_eq!(
            s.metrics_file,
            Some(PathBuf::from("/etc/jobtrail/textfile/jobtrail.prom"))
        );
        assert!(!format!("{s:?}").contains(secret));
        let url = s.ping_url.expect("ping url");
        assert_eq!(url.to_string(), "https://hc-ping.com/…");
        let err = parse(&format!("ping_url = \"ftp://x/{secret}\"\n{FULL}"))
            .map(|_| ())
            .expect_err("scheme");
        assert!(err.contains("ping_url") && err.contains("scheme"), "{err}");
        assert!(!err.contains(secret), "{err}");
    }

    #[test]
    fn dot_ids_are_refused_with_key_and_line() {
        let text = FULL.replace(
            "job_ids = [\"702364883651395584\"]",
            "job_ids = [\n  \"702364883651395584\",\n  \"..\",\n]",
        );
        let err = parse(&text).expect_err("..");
        assert!(
            err.contains("line 18")
                && err.contains("project.image.job_ids")
                && err.contains("\"..\""),
            "{err}"
        );
        let text = FULL.replace("2c154fdd-0d43-47b7-9cf1-5236bf6a2ca7", ".");
        let err = parse(&text).expect_err(".");
        assert!(
            err.contains("line 12") && err.contains("project.dbss.resource_ids"),
            "{err}"
        );
        assert!(parse(&FULL.replace("702364883651395584", "a/b")).is_err());
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
