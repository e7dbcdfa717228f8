//! The simulated account: its projects as IAM lists them (`GET /v3/projects`, the
//! SDKs' project-ID lookup, and `GET /v3/auth/projects`), each project's region,
//! and which region lacks which service.
//!
//! The region gaps are the simulator's own copy of the SDKs' region tables, kept
//! apart from jobtrail's (`crate::regions`) so a mistake there shows up here.

use serde::Serialize;
use serde_json::json;

use super::State;
use super::routes::{Reply, Req, parse_digits};
use super::world::{DEFAULT_PROJECT, World};

/// The account (IAM domain) every simulated project belongs to.
pub const DOMAIN_ID: &str = "d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f";

/// OBS's built-in project: in every account's list, but no region.
pub const MOS: &str = "MOS";

/// Where the links in IAM's answers point.
const IAM_BASE: &str = "https://iam.myhuaweicloud.com/v3";

/// IAM's largest page (`per_page`).
const MAX_PER_PAGE: u64 = 5000;

/// A project as IAM knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimProject {
    pub id: String,
    /// A region's default project is named after it (`cn-north-4`), a sub-project
    /// `{region}_{name}` (`cn-north-4_dev`); OBS's is [`MOS`].
    pub name: String,
    pub enabled: bool,
}

impl SimProject {
    /// An enabled project.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        SimProject {
            id: id.into(),
            name: name.into(),
            enabled: true,
        }
    }

    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// The name up to the first `_` (`MOS` for OBS's project, which has no region).
    pub fn region(&self) -> &str {
        self.name.split_once('_').map_or(&self.name, |(r, _)| r)
    }

    /// Whether the simulator serves jobs for it: enabled and not OBS's.
    pub fn has_jobs(&self) -> bool {
        self.enabled && self.name != MOS
    }
}

/// The region of the default configuration's projects.
pub const DEFAULT_REGION: &str = "cn-north-4";

/// The account of a configuration that names only project ids: the first is the
/// region's default project, the others its sub-projects.
pub(crate) fn derived_account(project_ids: &[String]) -> Vec<SimProject> {
    project_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let name = if i == 0 {
                DEFAULT_REGION.to_owned()
            } else {
                format!("{DEFAULT_REGION}_project{i}")
            };
            SimProject::new(id.clone(), name)
        })
        .collect()
}

/// The account `SimConfig::account` serves: projects in six regions (two in
/// cn-north-4), OBS's `MOS` project and a disabled sub-project.
pub(crate) fn sample_account() -> Vec<SimProject> {
    vec![
        SimProject::new(DEFAULT_PROJECT, "cn-north-4"),
        SimProject::new("7d2f6a1e9b0c4f3a8e5d1c2b3a4f5e6d", "cn-north-4_dev"),
        SimProject::new("a1b2c3d4e5f60718293a4b5c6d7e8f90", "ap-southeast-1"),
        // NoSQL only, on the .eu domain in the real cloud.
        SimProject::new("5e7a9c1b3d5f7a9c1b3d5f7a9c1b3d5f", "eu-west-101"),
        // No Workspace App.
        SimProject::new("c2e2a4b6c8d0e2f4a6b8c0d2e4f6a8b0", "cn-east-2"),
        // No NoSQL.
        SimProject::new("f1a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8", "af-north-1"),
        SimProject::new("b0b0c1c1d2d2e3e3f4f4a5a5b6b6c7c7", MOS),
        SimProject::new("9f8e7d6c5b4a39281706f5e4d3c2b1a0", "cn-north-4_retired").disabled(),
    ]
}

/// Regions without some of the three services, from the SDKs' region tables
/// (GaussDB NoSQL, DBSS, Workspace App). A region not named here, including one
/// the tables do not know, offers all three.
const REGION_GAPS: &[(&str, &[&str])] = &[
    ("ae-ad-1", &["nosql", "dbss", "image"]),
    ("af-north-1", &["nosql"]),
    ("ap-southeast-4", &["image"]),
    ("ap-southeast-5", &["image"]),
    ("cn-east-2", &["image"]),
    ("cn-east-4", &["image"]),
    ("cn-east-5", &["nosql"]),
    ("cn-north-1", &["image"]),
    ("cn-north-12", &["nosql", "image"]),
    ("cn-north-2", &["image"]),
    ("cn-south-2", &["image"]),
    ("cn-south-4", &["image"]),
    ("cn-southwest-3", &["image"]),
    ("eu-west-0", &["nosql", "dbss", "image"]),
    ("eu-west-101", &["dbss", "image"]),
    ("my-kualalumpur-1", &["nosql", "image"]),
    ("na-mexico-1", &["nosql", "dbss", "image"]),
    ("ru-moscow-1", &["image"]),
    ("ru-northwest-2", &["image"]),
];

/// Whether `region` has `service` (`nosql`, `dbss` or `image`).
pub fn region_offers(region: &str, service: &str) -> bool {
    REGION_GAPS
        .iter()
        .find(|(r, _)| *r == region)
        .is_none_or(|(_, missing)| !missing.contains(&service))
}

#[derive(Serialize)]
struct WireProject<'a> {
    is_domain: bool,
    description: &'a str,
    links: WireSelf,
    enabled: bool,
    id: &'a str,
    parent_id: &'a str,
    domain_id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct WireSelf {
    #[serde(rename = "self")]
    self_link: String,
}

/// A project as both list APIs render it: a sub-project's parent is its region's
/// default project, a default project's parent is the account.
fn wire_project<'a>(world: &'a World, project: &'a SimProject) -> WireProject<'a> {
    let parent_id = match project.name.split_once('_') {
        Some((region, _)) => world
            .account
            .iter()
            .find(|p| p.name == region)
            .map_or(DOMAIN_ID, |p| p.id.as_str()),
        None => DOMAIN_ID,
    };
    WireProject {
        is_domain: false,
        description: "",
        links: WireSelf {
            self_link: format!("{IAM_BASE}/projects/{}", project.id),
        },
        enabled: project.enabled,
        id: &project.id,
        parent_id,
        domain_id: DOMAIN_ID,
        name: &project.name,
    }
}

/// Keystone's error body, as IAM answers.
fn iam_error(status: u16, title: &str, message: &str) -> Reply {
    Reply::json_value(
        status,
        &json!({"error": {"code": status, "message": message, "title": title}}),
    )
}

fn bad_request(message: &str) -> Reply {
    iam_error(400, "Bad Request", message)
}

/// `GET /v3/projects?name=&domain_id=&parent_id=&enabled=&is_domain=&page=&per_page=`
/// (KeystoneListProjects): the account's projects matching every filter given.
/// The SDKs call it with `name={region}` to find a project id.
pub(crate) fn list_projects(st: &State, req: &Req) -> Reply {
    let world = &st.world;
    let flag = |name: &str| -> Result<Option<bool>, Reply> {
        match req.param(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(bad_request(&format!(
                "Invalid input for field '{name}': {v:?} is not a boolean."
            ))),
        }
    };
    let (enabled, is_domain) = match (flag("enabled"), flag("is_domain")) {
        (Ok(e), Ok(d)) => (e, d),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let (page, per_page) = match paging(req) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let matching: Vec<WireProject> = world
        .account
        .iter()
        .map(|p| wire_project(world, p))
        .filter(|p| {
            req.param("name").is_none_or(|n| p.name == n)
                && req.param("domain_id").is_none_or(|d| p.domain_id == d)
                && req.param("parent_id").is_none_or(|d| p.parent_id == d)
                && enabled.is_none_or(|e| p.enabled == e)
                // No project is a domain.
                && is_domain != Some(true)
        })
        .collect();
    let projects: Vec<WireProject> = match (page, per_page) {
        (Some(page), Some(per_page)) => matching
            .into_iter()
            .skip(page.saturating_sub(1).saturating_mul(per_page))
            .take(per_page)
            .collect(),
        _ => matching,
    };
    let query = req
        .raw_query
        .as_deref()
        .map_or(String::new(), |q| format!("?{q}"));
    Reply::json_value(
        200,
        &json!({
            "links": {"self": format!("{IAM_BASE}/projects{query}"), "previous": null, "next": null},
            "projects": projects,
        }),
    )
}

/// `page` and `per_page` come together: page ≥ 1, per_page 1..=5000.
fn paging(req: &Req) -> Result<(Option<usize>, Option<usize>), Reply> {
    let number = |name: &str, max: u64| -> Result<Option<usize>, Reply> {
        match req.param(name) {
            None => Ok(None),
            Some(v) => match parse_digits(v) {
                Some(n) if (1..=max).contains(&n) => Ok(usize::try_from(n).ok()),
                _ => Err(bad_request(&format!(
                    "Invalid input for field '{name}': {v:?} must be an integer from 1 to {max}."
                ))),
            },
        }
    };
    let page = number("page", u64::from(u32::MAX))?;
    let per_page = number("per_page", MAX_PER_PAGE)?;
    if page.is_some() != per_page.is_some() {
        return Err(bad_request(
            "Invalid input: 'page' and 'per_page' must be given together.",
        ));
    }
    Ok((page, per_page))
}

/// `GET /v3/auth/projects` (KeystoneListAuthProjects): every project the caller may
/// use, OBS's `MOS` and disabled ones included (callers skip them).
pub(crate) fn list_auth_projects(st: &State) -> Reply {
    let world = &st.world;
    let projects: Vec<WireProject> = world
        .account
        .iter()
        .map(|p| wire_project(world, p))
        .collect();
    Reply::json_value(
        200,
        &json!({
            "links": {"self": format!("{IAM_BASE}/auth/projects")},
            "projects": projects,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projects_region_is_its_name_up_to_the_first_underscore() {
        assert_eq!(SimProject::new("a", "cn-north-4").region(), "cn-north-4");
        assert_eq!(
            SimProject::new("b", "cn-north-4_dev_x").region(),
            "cn-north-4"
        );
        assert_eq!(SimProject::new("c", MOS).region(), MOS);
        assert!(!SimProject::new("c", MOS).has_jobs());
        assert!(!SimProject::new("d", "cn-east-2").disabled().has_jobs());
    }

    #[test]
    fn region_gaps_follow_the_sdk_tables() {
        assert!(region_offers("cn-north-4", "image"));
        assert!(!region_offers("cn-east-2", "image"));
        assert!(region_offers("cn-east-2", "dbss"));
        assert!(!region_offers("eu-west-101", "dbss"));
        assert!(region_offers("eu-west-101", "nosql"));
        assert!(!region_offers("ae-ad-1", "nosql"));
        // Unknown to the tables: the simulator serves everything there.
        assert!(region_offers("xx-test-1", "dbss"));
        assert!(region_offers(MOS, "nosql"));
    }

    #[test]
    fn a_list_of_ids_becomes_a_default_project_and_its_sub_projects() {
        let account = derived_account(&["p0".to_owned(), "p1".to_owned()]);
        assert_eq!(account[0], SimProject::new("p0", "cn-north-4"));
        assert_eq!(account[1], SimProject::new("p1", "cn-north-4_project1"));
    }
}
