//! The embedded region → service table: which of the three job APIs each region
//! offers and under which host, and each region's IAM endpoint. Transcribed from
//! the official SDKs' region tables (`api/REGIONS.md`), so jobtrail never calls a
//! service where the SDK knows no endpoint for it (that would be a DNS error).

use crate::model::Source;

/// The IAM endpoint the SDKs use for a region their IAM table does not list.
pub const GLOBAL_IAM_ENDPOINT: &str = "https://iam.myhuaweicloud.com";

/// The SDKs' variable that overrides the IAM endpoint everywhere.
pub const IAM_ENDPOINT_VAR: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";

/// One region and the base URLs (`https://host`, no trailing slash) of what it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub id: &'static str,
    nosql: Option<&'static str>,
    dbss: Option<&'static str>,
    image: Option<&'static str>,
    /// `None`: the SDKs fall back to [`GLOBAL_IAM_ENDPOINT`].
    iam: Option<&'static str>,
}

impl Region {
    /// The service's base URL in this region, `None` where the region lacks it.
    pub fn endpoint(&self, source: Source) -> Option<&'static str> {
        match source {
            Source::Nosql => self.nosql,
            Source::Dbss => self.dbss,
            Source::Image => self.image,
        }
    }

    /// The service's host name (the endpoint without its scheme).
    pub fn host(&self, source: Source) -> Option<&'static str> {
        self.endpoint(source).map(without_scheme)
    }

    pub fn offers(&self, source: Source) -> bool {
        self.endpoint(source).is_some()
    }

    /// The sources this region offers, in sync order.
    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        Source::ALL.into_iter().filter(|s| self.offers(*s))
    }

    /// The IAM endpoint for this region (its own, else the global one).
    pub fn iam_endpoint(&self) -> &'static str {
        self.iam.unwrap_or(GLOBAL_IAM_ENDPOINT)
    }
}

fn without_scheme(url: &'static str) -> &'static str {
    url.strip_prefix("https://").unwrap_or(url)
}

const fn region(
    id: &'static str,
    nosql: Option<&'static str>,
    dbss: Option<&'static str>,
    image: Option<&'static str>,
    iam: Option<&'static str>,
) -> Region {
    Region {
        id,
        nosql,
        dbss,
        image,
        iam,
    }
}

/// Every region the SDKs know, sorted by id (byte order) for binary search.
///
/// One deliberate departure from the SDK's IAM table: eu-west-101 (the European
/// site, a separate account system) gets `iam.eu-west-101.myhuaweicloud.eu`, which
/// the SDK's README says European users must set by hand; the global endpoint
/// does not know their accounts.
#[rustfmt::skip]
static REGIONS: [Region; 34] = [
    region("ae-ad-1", None, None, None, Some("https://iam.ae-ad-1.myhuaweicloud.com")),
    region("af-north-1", None, Some("https://dbss.af-north-1.myhuaweicloud.com"), Some("https://workspace.af-north-1.myhuaweicloud.com"), None),
    region("af-south-1", Some("https://gaussdb-nosql.af-south-1.myhuaweicloud.com"), Some("https://dbss.af-south-1.myhuaweicloud.com"), Some("https://workspace.af-south-1.myhuaweicloud.com"), Some("https://iam.af-south-1.myhuaweicloud.com")),
    region("ap-southeast-1", Some("https://gaussdb-nosql.ap-southeast-1.myhuaweicloud.com"), Some("https://dbss.ap-southeast-1.myhuaweicloud.com"), Some("https://workspace.ap-southeast-1.myhuaweicloud.com"), Some("https://iam.ap-southeast-1.myhuaweicloud.com")),
    region("ap-southeast-2", Some("https://gaussdb-nosql.ap-southeast-2.myhuaweicloud.com"), Some("https://dbss.ap-southeast-2.myhuaweicloud.com"), Some("https://workspace.ap-southeast-2.myhuaweicloud.com"), Some("https://iam.ap-southeast-2.myhuaweicloud.com")),
    region("ap-southeast-3", Some("https://gaussdb-nosql.ap-southeast-3.myhuaweicloud.com"), Some("https://dbss.ap-southeast-3.myhuaweicloud.com"), Some("https://workspace.ap-southeast-3.myhuaweicloud.com"), Some("https://iam.ap-southeast-3.myhuaweicloud.com")),
    region("ap-southeast-4", Some("https://gaussdb-nosql.ap-southeast-4.myhuaweicloud.com"), Some("https://dbss.ap-southeast-4.myhuaweicloud.com"), None, Some("https://iam.ap-southeast-4.myhuaweicloud.com")),
    region("ap-southeast-5", Some("https://gaussdb-nosql.ap-southeast-5.myhuaweicloud.com"), Some("https://dbss.ap-southeast-5.myhuaweicloud.com"), None, None),
    region("cn-east-2", Some("https://gaussdb-nosql.cn-east-2.myhuaweicloud.com"), Some("https://dbss.cn-east-2.myhuaweicloud.com"), None, Some("https://iam.cn-east-2.myhuaweicloud.com")),
    region("cn-east-3", Some("https://gaussdb-nosql.cn-east-3.myhuaweicloud.com"), Some("https://dbss.cn-east-3.myhuaweicloud.com"), Some("https://appstream.cn-east-3.myhuaweicloud.com"), Some("https://iam.cn-east-3.myhuaweicloud.com")),
    region("cn-east-4", Some("https://gaussdb-nosql.cn-east-4.myhuaweicloud.com"), Some("https://dbss.cn-east-4.myhuaweicloud.com"), None, Some("https://iam.cn-east-4.myhuaweicloud.com")),
    region("cn-east-5", None, Some("https://dbss.cn-east-5.myhuaweicloud.com"), Some("https://workspace.cn-east-5.myhuaweicloud.com"), Some("https://iam.cn-east-5.myhuaweicloud.com")),
    region("cn-north-1", Some("https://gaussdb-nosql.cn-north-1.myhuaweicloud.com"), Some("https://dbss.cn-north-1.myhuaweicloud.com"), None, Some("https://iam.cn-north-1.myhuaweicloud.com")),
    region("cn-north-11", Some("https://gaussdb-nosql.cn-north-11.myhuaweicloud.com"), Some("https://dbss.cn-north-11.myhuaweicloud.com"), Some("https://workspace.cn-north-11.myhuaweicloud.com"), None),
    region("cn-north-12", None, Some("https://dbss.cn-north-12.myhuaweicloud.com"), None, Some("https://iam.cn-north-12.myhuaweicloud.com")),
    region("cn-north-2", Some("https://gaussdb-nosql.cn-north-2.myhuaweicloud.com"), Some("https://dbss.cn-north-2.myhuaweicloud.com"), None, Some("https://iam.cn-north-2.myhuaweicloud.com")),
    region("cn-north-4", Some("https://gaussdb-nosql.cn-north-4.myhuaweicloud.com"), Some("https://dbss.cn-north-4.myhuaweicloud.com"), Some("https://appstream.cn-north-4.myhuaweicloud.com"), Some("https://iam.cn-north-4.myhuaweicloud.com")),
    region("cn-north-9", Some("https://gaussdb-nosql.cn-north-9.myhuaweicloud.com"), Some("https://dbss.cn-north-9.myhuaweicloud.com"), Some("https://appstream.cn-north-9.myhuaweicloud.com"), Some("https://iam.cn-north-9.myhuaweicloud.com")),
    region("cn-south-1", Some("https://gaussdb-nosql.cn-south-1.myhuaweicloud.com"), Some("https://dbss.cn-south-1.myhuaweicloud.com"), Some("https://appstream.cn-south-1.myhuaweicloud.com"), Some("https://iam.cn-south-1.myhuaweicloud.com")),
    region("cn-south-2", Some("https://gaussdb-nosql.cn-south-2.myhuaweicloud.com"), Some("https://dbss.cn-south-2.myhuaweicloud.com"), None, Some("https://iam.cn-south-2.myhuaweicloud.com")),
    region("cn-south-4", Some("https://gaussdb-nosql.cn-south-4.myhuaweicloud.com"), Some("https://dbss.cn-south-4.myhuaweicloud.com"), None, None),
    region("cn-southwest-2", Some("https://gaussdb-nosql.cn-southwest-2.myhuaweicloud.com"), Some("https://dbss.cn-southwest-2.myhuaweicloud.com"), Some("https://appstream.cn-southwest-2.myhuaweicloud.com"), Some("https://iam.cn-southwest-2.myhuaweicloud.com")),
    region("cn-southwest-3", Some("https://gaussdb-nosql.cn-southwest-3.myhuaweicloud.com"), Some("https://dbss.cn-southwest-3.myhuaweicloud.com"), None, None),
    region("eu-west-0", None, None, None, Some("https://iam.eu-west-0.myhuaweicloud.com")),
    region("eu-west-101", Some("https://gaussdb-nosql.eu-west-101.myhuaweicloud.eu"), None, None, Some("https://iam.eu-west-101.myhuaweicloud.eu")),
    region("la-north-2", Some("https://gaussdb-nosql.la-north-2.myhuaweicloud.com"), Some("https://dbss.la-north-2.myhuaweicloud.com"), Some("https://workspace.la-north-2.myhuaweicloud.com"), Some("https://iam.la-north-2.myhuaweicloud.com")),
    region("la-south-2", Some("https://gaussdb-nosql.la-south-2.myhuaweicloud.com"), Some("https://dbss.la-south-2.myhuaweicloud.com"), Some("https://workspace.la-south-2.myhuaweicloud.com"), Some("https://iam.la-south-2.myhuaweicloud.com")),
    region("me-east-1", Some("https://gaussdb-nosql.me-east-1.myhuaweicloud.com"), Some("https://dbss.me-east-1.myhuaweicloud.com"), Some("https://workspace.me-east-1.myhuaweicloud.com"), Some("https://iam.me-east-1.myhuaweicloud.com")),
    region("my-kualalumpur-1", None, Some("https://dbss.my-kualalumpur-1.myhuaweicloud.com"), None, Some("https://iam.my-kualalumpur-1.myhuaweicloud.com")),
    region("na-mexico-1", None, None, None, Some("https://iam.na-mexico-1.myhuaweicloud.com")),
    region("ru-moscow-1", Some("https://gaussdb-nosql.ru-moscow-1.myhuaweicloud.com"), Some("https://dbss.ru-moscow-1.myhuaweicloud.com"), None, Some("https://iam.ru-moscow-1.myhuaweicloud.com")),
    region("ru-northwest-2", Some("https://gaussdb-nosql.ru-northwest-2.myhuaweicloud.com"), Some("https://dbss.ru-northwest-2.myhuaweicloud.com"), None, None),
    region("sa-brazil-1", Some("https://gaussdb-nosql.sa-brazil-1.myhuaweicloud.com"), Some("https://dbss.sa-brazil-1.myhuaweicloud.com"), Some("https://workspace.sa-brazil-1.myhuaweicloud.com"), Some("https://iam.sa-brazil-1.myhuaweicloud.com")),
    region("tr-west-1", Some("https://gaussdb-nosql.tr-west-1.myhuaweicloud.com"), Some("https://dbss.tr-west-1.myhuaweicloud.com"), Some("https://workspace.tr-west-1.myhuaweicloud.com"), Some("https://iam.tr-west-1.myhuaweicloud.com")),
];

/// Every region in the table, sorted by id.
pub fn all() -> &'static [Region] {
    &REGIONS
}

/// The region with this id (exact, lower-case as the cloud writes it).
pub fn lookup(region: &str) -> Option<&'static Region> {
    REGIONS
        .binary_search_by(|r| r.id.cmp(region))
        .ok()
        .map(|i| &REGIONS[i])
}

/// The IAM endpoint for a region: its own where the SDKs list one, else the
/// global one (also for a region the table does not know).
pub fn iam_endpoint(region: &str) -> &'static str {
    lookup(region).map_or(GLOBAL_IAM_ENDPOINT, Region::iam_endpoint)
}

/// The service name in the SDKs' override variables.
pub fn sdk_service_name(source: Source) -> &'static str {
    match source {
        Source::Nosql => "GAUSSDBFORNOSQL",
        Source::Dbss => "DBSS",
        Source::Image => "WORKSPACEAPP",
    }
}

/// `HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}`, the region upper-cased with `-`
/// turned into `_` (`HUAWEICLOUD_SDK_REGION_DBSS_CN_NORTH_4`).
pub fn override_var(source: Source, region: &str) -> String {
    let region: String = region
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!(
        "HUAWEICLOUD_SDK_REGION_{}_{region}",
        sdk_service_name(source)
    )
}

/// The endpoint the SDKs' override variable sets for a service in a region, read
/// through `env` (a lookup such as `|name| std::env::var(name).ok()`). The SDKs
/// take a comma-separated list for failover; jobtrail uses its first entry. Unset,
/// empty or blank counts as no override.
pub fn env_override(
    source: Source,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let value = env(&override_var(source, region))?;
    value
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_owned())
}

/// The service and region an SDK override variable names
/// (`HUAWEICLOUD_SDK_REGION_DBSS_CN_NORTH_4` → DBSS in `cn-north-4`); `None` for
/// other variables and other services. Region ids hold no `_`, so the name
/// reads back unambiguously.
pub fn parse_override_var(name: &str) -> Option<(Source, String)> {
    let rest = name.strip_prefix("HUAWEICLOUD_SDK_REGION_")?;
    let (service, region) = rest.split_once('_')?;
    let source = Source::ALL
        .into_iter()
        .find(|s| sdk_service_name(*s) == service)?;
    if region.is_empty() {
        return None;
    }
    let region: String = region
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    Some((source, region))
}

/// The base URL a service would have in a region the table does not know,
/// by the SDKs' host pattern (`https://dbss.{region}.myhuaweicloud.com`;
/// Workspace App under `workspace.`).
pub fn pattern_endpoint(source: Source, region: &str) -> String {
    let host = match source {
        Source::Nosql => "gaussdb-nosql",
        Source::Dbss => "dbss",
        Source::Image => "workspace",
    };
    format!("https://{host}.{region}.myhuaweicloud.com")
}

/// A project's region from its IAM name: a region's default project is named after
/// it (`cn-north-4`), a sub-project `{region}_{name}` (`cn-north-4_dev`). Names
/// without a region (`MOS`) come back unchanged and match no [`lookup`].
pub fn project_region(project_name: &str) -> &str {
    project_name
        .split_once('_')
        .map_or(project_name, |(region, _)| region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(region: &str, source: Source) -> Option<&'static str> {
        lookup(region).and_then(|r| r.endpoint(source))
    }

    #[test]
    fn the_table_is_sorted_and_unique_so_lookup_finds_every_row() {
        assert!(REGIONS.windows(2).all(|w| w[0].id < w[1].id));
        for r in all() {
            assert_eq!(lookup(r.id), Some(r));
        }
        assert_eq!(lookup("cn-north-3"), None);
        assert_eq!(lookup("CN-NORTH-4"), None);
    }

    #[test]
    fn workspace_app_has_two_host_names() {
        assert_eq!(
            url("cn-north-4", Source::Image),
            Some("https://appstream.cn-north-4.myhuaweicloud.com")
        );
        assert_eq!(
            lookup("ap-southeast-1").and_then(|r| r.host(Source::Image)),
            Some("workspace.ap-southeast-1.myhuaweicloud.com")
        );
        let appstream: Vec<&str> = all()
            .iter()
            .filter(|r| {
                r.host(Source::Image)
                    .is_some_and(|h| h.starts_with("appstream."))
            })
            .map(|r| r.id)
            .collect();
        assert_eq!(
            appstream,
            [
                "cn-east-3",
                "cn-north-4",
                "cn-north-9",
                "cn-south-1",
                "cn-southwest-2"
            ]
        );
    }

    #[test]
    fn eu_west_101_is_on_the_eu_domain_with_nosql_only() {
        let eu = lookup("eu-west-101").expect("known");
        assert_eq!(
            eu.endpoint(Source::Nosql),
            Some("https://gaussdb-nosql.eu-west-101.myhuaweicloud.eu")
        );
        assert_eq!(eu.sources().collect::<Vec<_>>(), [Source::Nosql]);
        assert_eq!(
            eu.iam_endpoint(),
            "https://iam.eu-west-101.myhuaweicloud.eu"
        );
    }

    #[test]
    fn regions_lacking_services() {
        let cn_east_2 = lookup("cn-east-2").expect("known");
        assert_eq!(
            cn_east_2.sources().collect::<Vec<_>>(),
            [Source::Nosql, Source::Dbss]
        );
        assert_eq!(
            cn_east_2.endpoint(Source::Dbss),
            Some("https://dbss.cn-east-2.myhuaweicloud.com")
        );
        let ae = lookup("ae-ad-1").expect("known");
        assert_eq!(ae.sources().count(), 0);
        assert_eq!(ae.iam_endpoint(), "https://iam.ae-ad-1.myhuaweicloud.com");
        let af = lookup("af-north-1").expect("known");
        assert!(!af.offers(Source::Nosql) && af.offers(Source::Dbss) && af.offers(Source::Image));
        assert_eq!(
            lookup("cn-north-12")
                .expect("known")
                .sources()
                .collect::<Vec<_>>(),
            [Source::Dbss]
        );
    }

    #[test]
    fn iam_endpoint_falls_back_to_the_global_one() {
        assert_eq!(
            iam_endpoint("cn-north-4"),
            "https://iam.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(iam_endpoint("ap-southeast-5"), GLOBAL_IAM_ENDPOINT);
        assert_eq!(iam_endpoint("af-north-1"), "https://iam.myhuaweicloud.com");
        assert_eq!(iam_endpoint("xx-nowhere-1"), GLOBAL_IAM_ENDPOINT);
        // The SDK's IAM table lists 27 of these regions; eu-west-101 is ours.
        assert_eq!(REGIONS.iter().filter(|r| r.iam.is_some()).count(), 28);
    }

    #[test]
    fn every_endpoint_is_the_services_host_in_its_region() {
        for r in all() {
            for source in r.sources() {
                let host = r.host(source).expect("offered");
                let prefix = match source {
                    Source::Nosql => "gaussdb-nosql.",
                    Source::Dbss => "dbss.",
                    Source::Image => {
                        if host.starts_with("appstream.") {
                            "appstream."
                        } else {
                            "workspace."
                        }
                    }
                };
                let domain = if r.id == "eu-west-101" {
                    "myhuaweicloud.eu"
                } else {
                    "myhuaweicloud.com"
                };
                assert_eq!(host, format!("{prefix}{}.{domain}", r.id));
            }
        }
        assert_eq!(all().iter().filter(|r| r.offers(Source::Nosql)).count(), 27);
        assert_eq!(all().iter().filter(|r| r.offers(Source::Dbss)).count(), 30);
        assert_eq!(all().iter().filter(|r| r.offers(Source::Image)).count(), 17);
    }

    #[test]
    fn override_variables_follow_the_sdk_naming() {
        assert_eq!(
            override_var(Source::Nosql, "cn-north-4"),
            "HUAWEICLOUD_SDK_REGION_GAUSSDBFORNOSQL_CN_NORTH_4"
        );
        assert_eq!(
            override_var(Source::Dbss, "my-kualalumpur-1"),
            "HUAWEICLOUD_SDK_REGION_DBSS_MY_KUALALUMPUR_1"
        );
        assert_eq!(
            override_var(Source::Image, "eu-west-101"),
            "HUAWEICLOUD_SDK_REGION_WORKSPACEAPP_EU_WEST_101"
        );
    }

    #[test]
    fn env_override_takes_the_first_listed_endpoint() {
        let env = |name: &str| match name {
            "HUAWEICLOUD_SDK_REGION_DBSS_CN_NORTH_4" => {
                Some(" https://dbss.vpcep.example/ ,https://other.example".to_owned())
            }
            "HUAWEICLOUD_SDK_REGION_GAUSSDBFORNOSQL_CN_NORTH_4" => Some(" , ".to_owned()),
            "HUAWEICLOUD_SDK_REGION_WORKSPACEAPP_CN_NORTH_4" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            env_override(Source::Dbss, "cn-north-4", env).as_deref(),
            Some("https://dbss.vpcep.example")
        );
        assert_eq!(env_override(Source::Nosql, "cn-north-4", env), None);
        assert_eq!(env_override(Source::Image, "cn-north-4", env), None);
        assert_eq!(env_override(Source::Dbss, "cn-north-1", env), None);
    }

    #[test]
    fn override_variables_read_back_as_service_and_region() {
        for source in Source::ALL {
            for region in ["cn-north-4", "my-kualalumpur-1", "eu-west-101"] {
                assert_eq!(
                    parse_override_var(&override_var(source, region)),
                    Some((source, region.to_owned()))
                );
            }
        }
        assert_eq!(
            parse_override_var("HUAWEICLOUD_SDK_REGION_ECS_CN_NORTH_4"),
            None
        );
        assert_eq!(parse_override_var("HUAWEICLOUD_SDK_REGION_DBSS_"), None);
        assert_eq!(parse_override_var("HUAWEICLOUD_SDK_IAM_ENDPOINT"), None);
        assert_eq!(
            pattern_endpoint(Source::Image, "xx-new-1"),
            "https://workspace.xx-new-1.myhuaweicloud.com"
        );
    }

    #[test]
    fn a_projects_region_is_its_name_up_to_the_first_underscore() {
        assert_eq!(project_region("cn-north-4"), "cn-north-4");
        assert_eq!(project_region("cn-north-4_dev_eu"), "cn-north-4");
        assert_eq!(project_region("MOS"), "MOS");
        assert_eq!(lookup(project_region("MOS")), None);
    }
}
