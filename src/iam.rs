//! Project IDs found, not typed. A `[[project]]` with only a region gets its ID
//! from IAM as the official SDKs find it (`GET /v3/projects?name={region}`,
//! signed, exactly one match), and `[account]` lists every project the
//! credentials may use (`GET /v3/auth/projects`), skipping OBS's `MOS` and
//! disabled projects. IAM's answers are kept in the store for a day, so a cron
//! run costs at most one IAM call per question a day; when IAM cannot be
//! reached, yesterday's answer is used with a warning.
//!
//! [`plan`] turns the settings into the projects a command syncs or probes,
//! each with how its ID was found; it never fails half-way: every lookup that
//! failed is a [`PlanError`] in the plan, so `check` can show them all.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use reqwest::Url;
use serde::Deserialize;

use crate::auth::Credentials;
use crate::config::{
    AccountSettings, Availability, ConfigError, DbssSettings, ImageSettings, NosqlSettings,
    ProjectSettings, RegionalProject, Settings, service_names,
};
use crate::http::{ApiClient, ApiError};
use crate::model::{IamProject, Source};
use crate::store::{IamCacheKey, IamLookup, Store};

/// How long an answer of IAM is used before IAM is asked again.
pub const CACHE_FOR: Duration = Duration::hours(24);

/// OBS's built-in project: in every account's list, but no region.
pub const OBS_PROJECT: &str = "MOS";

/// IAM's path for projects by name (KeystoneListProjects).
const PROJECTS_PATH: &str = "/v3/projects";
/// IAM's path for the projects the caller may use (KeystoneListAuthProjects).
const AUTH_PROJECTS_PATH: &str = "/v3/auth/projects";

/// Asks IAM, through the store's cache when there is one.
pub struct Iam<'a> {
    client: &'a ApiClient,
    /// `None` (`check`): always ask, store nothing.
    cache: Option<&'a Store>,
    credential: String,
    /// `sync --full`: ask again whatever the cache holds.
    refresh: bool,
    now: DateTime<Utc>,
}

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// IAM answered now.
    Iam,
    /// The store's answer from this time (less than [`CACHE_FOR`] ago).
    Cache(DateTime<Utc>),
    /// IAM failed now; the store's older answer from this time was used.
    Stale(DateTime<Utc>),
}

/// IAM's answer to one question.
#[derive(Debug, Clone)]
struct Answer {
    projects: Vec<IamProject>,
    answered: Answered,
}

#[derive(Deserialize)]
struct ProjectList {
    projects: Vec<WireProject>,
}

#[derive(Deserialize)]
struct WireProject {
    id: String,
    name: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Reads `{"projects": [{"id", "name", "enabled"}, …]}`.
fn parse_projects(body: &[u8]) -> Result<Vec<IamProject>, String> {
    let list: ProjectList =
        serde_json::from_slice(body).map_err(|e| format!("not IAM's project list: {e}"))?;
    Ok(list
        .projects
        .into_iter()
        .map(|p| IamProject {
            id: p.id,
            name: p.name,
            enabled: p.enabled,
        })
        .collect())
}

impl<'a> Iam<'a> {
    /// `cache`: the store to read and keep answers in (none: always ask).
    pub fn new(
        client: &'a ApiClient,
        cache: Option<&'a Store>,
        refresh: bool,
        now: DateTime<Utc>,
    ) -> Iam<'a> {
        Iam {
            client,
            cache,
            credential: client.credential_fingerprint(),
            refresh,
            now,
        }
    }

    /// The answer to `lookup` at `endpoint`: the cache's when fresh, else IAM's
    /// (then kept), else on failure the cache's however old.
    async fn ask(&self, endpoint: &Url, lookup: IamLookup<'_>) -> Result<Answer, ApiError> {
        let key = IamCacheKey {
            credential: &self.credential,
            endpoint: endpoint.as_str(),
            lookup,
        };
        let cached = match self.cache {
            None => None,
            Some(store) => store.cached_iam_projects(&key).await.unwrap_or_else(|e| {
                tracing::warn!("cannot read IAM's cached answer, asking IAM: {e}");
                None
            }),
        };
        if let Some(c) = &cached
            && !self.refresh
            && self.now - c.fetched_at < CACHE_FOR
        {
            return Ok(Answer {
                projects: c.projects.clone(),
                answered: Answered::Cache(c.fetched_at),
            });
        }
        let (path, query) = match lookup {
            IamLookup::Name(name) => (PROJECTS_PATH, vec![("name".to_owned(), name.to_owned())]),
            IamLookup::Account => (AUTH_PROJECTS_PATH, Vec::new()),
        };
        match self
            .client
            .get_iam(endpoint, path, &query, parse_projects)
            .await
        {
            Ok(projects) => {
                self.keep(&key, &projects).await;
                Ok(Answer {
                    projects,
                    answered: Answered::Iam,
                })
            }
            Err(e) => match cached {
                // Yesterday's answer beats none when IAM is down; refused
                // credentials are not IAM being down.
                Some(c) if !e.is_auth() => {
                    tracing::warn!(
                        "{e}; using IAM's answer of {} instead",
                        crate::normalize::format_utc(c.fetched_at)
                    );
                    Ok(Answer {
                        projects: c.projects,
                        answered: Answered::Stale(c.fetched_at),
                    })
                }
                _ => Err(e),
            },
        }
    }

    /// Keeps an answer that settles its question: one project of a name, or
    /// a non-empty account list (an error is asked again next time).
    async fn keep(&self, key: &IamCacheKey<'_>, projects: &[IamProject]) {
        let settles = match key.lookup {
            IamLookup::Name(_) => projects.len() == 1,
            IamLookup::Account => !projects.is_empty(),
        };
        if let Some(store) = self.cache
            && settles
            && let Err(e) = store.cache_iam_projects(key, projects, self.now).await
        {
            tracing::warn!("cannot keep IAM's answer (it is asked again next time): {e}");
        }
    }
}

/// How a project's ID was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `id = "…"` in the file.
    Configured,
    /// An SDK setting, named (`HUAWEICLOUD_SDK_PROJECT_ID`, the credentials file).
    Sdk(String),
    /// IAM's only project named after the region.
    ByRegion { endpoint: Url, answered: Answered },
    /// The account's project list.
    Account { endpoint: Url, answered: Answered },
}

/// A project to sync, its IAM name when known, and how its ID was found.
#[derive(Debug, Clone)]
pub struct PlannedProject {
    pub project: ProjectSettings,
    pub name: Option<String>,
    pub found: Found,
}

/// Why a project of the account is not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// OBS's `MOS`, which is no region.
    Obs,
    Disabled,
    /// `[account] regions` leaves its region out.
    OtherRegion,
    /// Configured with its `id` too: that block's settings apply.
    Configured,
    /// jobtrail's region table does not know its region.
    UnknownRegion,
    /// Its region offers none of the sources asked for.
    NoSources,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Obs => "OBS's own project, no region",
            SkipReason::Disabled => "disabled",
            SkipReason::OtherRegion => "not in [account] regions",
            SkipReason::Configured => "configured by its id",
            SkipReason::UnknownRegion => "region unknown to jobtrail's table",
            SkipReason::NoSources => "its region offers none of the sources",
        })
    }
}

/// A project of the account that is not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub project: IamProject,
    pub why: SkipReason,
}

/// What the account's list held, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountListing {
    pub endpoint: Url,
    pub answered: Answered,
    pub listed: usize,
    pub skipped: Vec<Skipped>,
}

/// The projects a command works on.
#[derive(Debug, Default)]
pub struct Plan {
    pub projects: Vec<PlannedProject>,
    /// The account's list, when `[account]` asked for it and IAM answered.
    pub account: Option<AccountListing>,
    /// Every lookup that failed: a sync does not start with any.
    pub problems: Vec<PlanError>,
    /// Worth saying once, not a failure (projects skipped for their region,
    /// settings unused); the file's own notes are [`Settings::notes`].
    pub notes: Vec<String>,
    /// Regions of the account's projects that lack a source asked for.
    pub gaps: Vec<RegionGap>,
}

/// A region that lacks sources `[account]` asks for: they are not called for
/// its projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionGap {
    pub region: String,
    pub absent: Vec<Source>,
    pub projects: usize,
}

impl fmt::Display for RegionGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has no {} (the SDKs know no endpoint there): not called for its {} project{}",
            self.region,
            service_names(&self.absent),
            self.projects,
            if self.projects == 1 { "" } else { "s" }
        )
    }
}

/// A project that could not be found. Each says what IAM returned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// IAM could not be asked, or refused.
    #[error("{what}: {source}{}", hint(.source))]
    Iam {
        what: String,
        #[source]
        source: ApiError,
    },
    /// IAM knows no project of that name.
    #[error("{}", no_match(.line, .region, .endpoint, .available.as_deref()))]
    NoMatch {
        line: usize,
        region: String,
        endpoint: Url,
        /// The projects the credentials may use, when IAM listed them.
        available: Option<Vec<IamProject>>,
    },
    /// IAM knows several projects of that name.
    #[error(
        "[[project]] at line {line} (region {region}): IAM at {endpoint} returned {} projects named {region:?}: {}; the SDKs refuse to guess and so does jobtrail: set `id = \"…\"` in that [[project]] to the one to sync",
        .matches.len(),
        list(.matches)
    )]
    Several {
        line: usize,
        region: String,
        endpoint: Url,
        matches: Vec<IamProject>,
    },
    /// The region's project is configured by its ID as well.
    #[error(
        "[[project]] at line {line} (region {region}) is project {id}, which another [[project]] names by its id: remove one of the two"
    )]
    Twice {
        line: usize,
        region: String,
        id: String,
    },
    /// An endpoint that is not a URL.
    #[error("{0}")]
    Endpoint(String),
}

/// What to do when IAM refuses the SDKs' lookup itself: listing projects by
/// name (KeystoneListProjects) needs an IAM permission that a key pair for
/// job APIs may well lack.
fn hint(e: &ApiError) -> &'static str {
    if e.http_status() == Some(403) && !e.is_auth() {
        ". The user may not list projects by name (IAM permission iam:projects:listProjects): grant it, set `id = \"…\"` in the [[project]] (or HUAWEICLOUD_SDK_PROJECT_ID), or use [account], whose list (GET /v3/auth/projects) needs no extra permission"
    } else {
        ""
    }
}

fn no_match(
    line: &usize,
    region: &str,
    endpoint: &Url,
    available: Option<&[IamProject]>,
) -> String {
    let mut text = format!(
        "[[project]] at line {line} (region {region}): IAM at {endpoint} has no project named {region:?} (GET {PROJECTS_PATH}?name={region} returned none)"
    );
    match available {
        Some([]) => text.push_str("; these credentials may use no project at all"),
        Some(projects) => {
            text.push_str("; these credentials may use: ");
            text.push_str(&list(projects));
        }
        None => {}
    }
    text.push_str(
        ". Check the region, that the key pair belongs to the right account, and the IAM endpoint; or set `id = \"…\"` in that [[project]]",
    );
    text
}

/// `cn-north-4 (0549…), cn-north-4_old (7d2f…, disabled)`.
fn list(projects: &[IamProject]) -> String {
    projects
        .iter()
        .map(|p| {
            if p.enabled {
                format!("{} ({})", p.name, p.id)
            } else {
                format!("{} ({}, disabled)", p.name, p.id)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every failed lookup, one per line.
#[derive(Debug)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for PlanErrors {}

/// `settings` with what the SDKs read beside these credentials: the project ID
/// of a single region-only project and the credentials file's IAM endpoint.
pub fn with_credentials(
    settings: Settings,
    credentials: &Credentials,
) -> Result<Settings, ConfigError> {
    let extras = credentials.sdk_extras(&|name| std::env::var(name).ok());
    settings.with_sdk_defaults(extras.project_id, extras.iam_endpoint)
}

/// The projects `settings` name: configured ones as they are, region-only
/// ones with the ID IAM (or an SDK setting) gives, and the account's.
pub async fn plan(settings: &Settings, iam: &Iam<'_>) -> Plan {
    let mut plan = Plan {
        projects: settings
            .projects
            .iter()
            .map(|p| PlannedProject {
                project: p.clone(),
                name: None,
                found: Found::Configured,
            })
            .collect(),
        ..Plan::default()
    };
    plan_regional(settings, iam, &mut plan).await;
    if let Some(account) = &settings.account {
        plan_account(settings, account, iam, &mut plan).await;
    }
    plan
}

/// Region-only `[[project]]` blocks: the SDKs' project ID for a single one,
/// else IAM's only project named after the region.
async fn plan_regional(settings: &Settings, iam: &Iam<'_>, plan: &mut Plan) {
    let sdk_id = match (&settings.sdk_project_id, settings.regional.as_slice()) {
        (Some(given), [_]) => Some(given),
        (Some((_, origin)), many) if !many.is_empty() => {
            plan.notes.push(format!(
                "{origin} is not used: it names one project, and {} [[project]] blocks give only a region (their IDs come from IAM)",
                many.len()
            ));
            None
        }
        _ => None,
    };
    for regional in &settings.regional {
        let found = match sdk_id {
            Some((id, origin)) => Ok((id.clone(), None, Found::Sdk(origin.clone()))),
            None => find_by_region(settings, regional, iam).await,
        };
        match found {
            Ok((id, name, found)) => {
                if plan.projects.iter().any(|p| p.project.id == id) {
                    plan.problems.push(PlanError::Twice {
                        line: regional.line,
                        region: regional.region.clone(),
                        id,
                    });
                    continue;
                }
                plan.projects.push(PlannedProject {
                    project: regional.with_id(&id),
                    name,
                    found,
                });
            }
            Err(e) => plan.problems.push(e),
        }
    }
}

/// IAM's only project named after the region, as the SDKs find it.
async fn find_by_region(
    settings: &Settings,
    regional: &RegionalProject,
    iam: &Iam<'_>,
) -> Result<(String, Option<String>, Found), PlanError> {
    let region = &regional.region;
    let endpoint = settings
        .endpoints
        .iam(Some(region))
        .map_err(PlanError::Endpoint)?;
    let answer = iam
        .ask(&endpoint, IamLookup::Name(region))
        .await
        .map_err(|source| PlanError::Iam {
            what: format!(
                "[[project]] at line {} (region {region}): cannot find its project ID",
                regional.line
            ),
            source,
        })?;
    let matches: Vec<IamProject> = answer
        .projects
        .into_iter()
        .filter(|p| &p.name == region)
        .collect();
    match matches.as_slice() {
        [one] => Ok((
            one.id.clone(),
            Some(one.name.clone()),
            Found::ByRegion {
                endpoint,
                answered: answer.answered,
            },
        )),
        [] => {
            // Say what the credentials may use instead, if IAM tells.
            let available = iam
                .ask(&endpoint, IamLookup::Account)
                .await
                .ok()
                .map(|a| a.projects);
            Err(PlanError::NoMatch {
                line: regional.line,
                region: region.clone(),
                endpoint,
                available,
            })
        }
        _ => Err(PlanError::Several {
            line: regional.line,
            region: region.clone(),
            endpoint,
            matches,
        }),
    }
}

/// `[account]`: every enabled project of the account but OBS's, in the regions
/// asked for, with the sources its region offers.
async fn plan_account(
    settings: &Settings,
    account: &AccountSettings,
    iam: &Iam<'_>,
    plan: &mut Plan,
) {
    let endpoint = match settings
        .endpoints
        .iam(account.regions.first().map(String::as_str))
    {
        Ok(url) => url,
        Err(e) => {
            plan.problems.push(PlanError::Endpoint(e));
            return;
        }
    };
    let answer = match iam.ask(&endpoint, IamLookup::Account).await {
        Ok(answer) => answer,
        Err(source) => {
            plan.problems.push(PlanError::Iam {
                what: "[account]: cannot list the account's projects".into(),
                source,
            });
            return;
        }
    };
    let mut skipped = Vec::new();
    for project in &answer.projects {
        match account_project(settings, account, project, plan) {
            Ok((settings, absent)) => {
                note_gap(&mut plan.gaps, &settings.region, &absent);
                plan.projects.push(PlannedProject {
                    project: settings,
                    name: Some(project.name.clone()),
                    found: Found::Account {
                        endpoint: endpoint.clone(),
                        answered: answer.answered.clone(),
                    },
                });
            }
            Err(why) => skipped.push(Skipped {
                project: project.clone(),
                why,
            }),
        }
    }
    account_notes(account, &answer.projects, &skipped, plan);
    plan.account = Some(AccountListing {
        endpoint,
        answered: answer.answered,
        listed: answer.projects.len(),
        skipped,
    });
}

/// One project of the account as a project to sync, with the sources its
/// region lacks; or why it is skipped.
fn account_project(
    settings: &Settings,
    account: &AccountSettings,
    project: &IamProject,
    plan: &Plan,
) -> Result<(ProjectSettings, Vec<Source>), SkipReason> {
    let region = project.region();
    if project.name == OBS_PROJECT {
        return Err(SkipReason::Obs);
    }
    if !project.enabled {
        return Err(SkipReason::Disabled);
    }
    if plan.projects.iter().any(|p| p.project.id == project.id) {
        return Err(SkipReason::Configured);
    }
    if !account.wants_region(region) {
        return Err(SkipReason::OtherRegion);
    }
    let availability = |s: Source| settings.endpoints.availability(region, s);
    let usable = |s: &Source| {
        matches!(
            availability(*s),
            Availability::Listed | Availability::Configured
        )
    };
    if !account.sources.iter().any(|s| {
        matches!(
            availability(*s),
            Availability::Listed | Availability::Configured | Availability::Absent
        )
    }) {
        return Err(SkipReason::UnknownRegion);
    }
    if !account.sources.iter().any(usable) {
        return Err(SkipReason::NoSources);
    }
    let endpoints = settings
        .endpoints
        .for_region(region)
        .map_err(|_| SkipReason::UnknownRegion)?;
    let wants = |s: Source| account.sources.contains(&s);
    let absent: Vec<Source> = account
        .sources
        .iter()
        .copied()
        .filter(|s| !usable(s))
        .collect();
    let synced = ProjectSettings {
        id: project.id.clone(),
        region: region.to_owned(),
        nosql: wants(Source::Nosql).then_some(NosqlSettings {
            since: account.since,
        }),
        dbss: wants(Source::Dbss).then(|| DbssSettings {
            resource_ids: Vec::new(),
            discover: true,
        }),
        image: wants(Source::Image).then(|| ImageSettings {
            job_ids: Vec::new(),
            discover: true,
        }),
        endpoints,
        absent: absent.clone(),
    };
    Ok((synced, absent))
}

/// Counts a project of `region` that lacks `absent`.
fn note_gap(gaps: &mut Vec<RegionGap>, region: &str, absent: &[Source]) {
    if absent.is_empty() {
        return;
    }
    match gaps.iter_mut().find(|g| g.region == region) {
        Some(gap) => gap.projects += 1,
        None => gaps.push(RegionGap {
            region: region.to_owned(),
            absent: absent.to_vec(),
            projects: 1,
        }),
    }
}

/// Says what the account's list left out that the user may not expect.
fn account_notes(
    account: &AccountSettings,
    listed: &[IamProject],
    skipped: &[Skipped],
    plan: &mut Plan,
) {
    for s in skipped {
        match s.why {
            SkipReason::UnknownRegion => plan.notes.push(format!(
                "project {} ({}) is skipped: jobtrail's region table does not know region {}; set [endpoints.\"{}\"] to sync it",
                s.project.name,
                s.project.id,
                s.project.region(),
                s.project.region()
            )),
            SkipReason::NoSources => plan.notes.push(format!(
                "project {} ({}) is skipped: region {} offers none of {}",
                s.project.name,
                s.project.id,
                s.project.region(),
                service_names(&account.sources)
            )),
            _ => {}
        }
    }
    for region in &account.regions {
        if !listed.iter().any(|p| p.region() == region) {
            plan.notes.push(format!(
                "[account] regions names {region}, but the account has no project there"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_lists_read_with_enabled_by_default() {
        let body = br#"{"links":{"self":"x"},"projects":[
            {"id":"a","name":"cn-north-4","enabled":true,"domain_id":"d","is_domain":false},
            {"id":"b","name":"MOS"},
            {"id":"c","name":"cn-north-4_old","enabled":false}]}"#;
        let projects = parse_projects(body).expect("parses");
        assert_eq!(projects.len(), 3);
        assert!(projects[1].enabled && !projects[2].enabled);
        assert_eq!(projects[2].region(), "cn-north-4");
        assert!(parse_projects(b"{\"items\":[]}").is_err());
    }

    #[test]
    fn errors_name_what_iam_returned() {
        let endpoint = Url::parse("https://iam.example").expect("url");
        let p = |id: &str, name: &str, enabled| IamProject {
            id: id.into(),
            name: name.into(),
            enabled,
        };
        let several = PlanError::Several {
            line: 3,
            region: "cn-north-4".into(),
            endpoint: endpoint.clone(),
            matches: vec![p("a1", "cn-north-4", true), p("b2", "cn-north-4", false)],
        }
        .to_string();
        assert!(
            several.contains("line 3")
                && several.contains("returned 2 projects")
                && several.contains("cn-north-4 (a1), cn-north-4 (b2, disabled)")
                && several.contains("id = "),
            "{several}"
        );
        let none = PlanError::NoMatch {
            line: 7,
            region: "cn-east-3".into(),
            endpoint,
            available: Some(vec![p("a1", "cn-north-4", true)]),
        }
        .to_string();
        assert!(
            none.contains("no project named \"cn-east-3\"")
                && none.contains("returned none")
                && none.contains("may use: cn-north-4 (a1)"),
            "{none}"
        );
    }
}
