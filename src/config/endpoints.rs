//! Where each API of a region is reached, and whether the region has it at all.
//!
//! Precedence for a service in a region, most specific first:
//! `[endpoints."REGION"]` in the file, the SDKs' variable
//! `HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}`, `[endpoints]` in the file, the
//! region table (`crate::regions`). For IAM: `[endpoints."REGION"] iam`, the
//! credentials file's `iam_endpoint`, `HUAWEICLOUD_SDK_IAM_ENDPOINT`,
//! `[endpoints] iam`, the region table, the global endpoint.
//!
//! A service the table does not list for a known region is absent there: it is
//! never called, unless an endpoint is set for that very region (a VPC
//! endpoint, say). The file's global `[endpoints]` do not count: they move a
//! service that exists, they do not create one.

use std::collections::BTreeMap;

use reqwest::Url;

use crate::model::Source;
use crate::regions;

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

    /// The public endpoints of a region, as the official SDKs' region tables
    /// give them (a service the region lacks gets the SDKs' host pattern; it is
    /// never called).
    pub fn public(region: &str) -> Result<Endpoints, String> {
        EndpointSettings::default().for_region(region)
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

/// One set of endpoints given by hand: `[endpoints]`, or `[endpoints."REGION"]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointOverrides {
    pub nosql: Option<Url>,
    pub dbss: Option<Url>,
    pub image: Option<Url>,
    pub iam: Option<Url>,
}

impl EndpointOverrides {
    /// The keys of an endpoints table.
    pub const KEYS: [&'static str; 4] = ["nosql", "dbss", "image", "iam"];

    pub fn source(&self, source: Source) -> Option<&Url> {
        match source {
            Source::Nosql => self.nosql.as_ref(),
            Source::Dbss => self.dbss.as_ref(),
            Source::Image => self.image.as_ref(),
        }
    }

    /// Sets the endpoint of `key` (one of [`EndpointOverrides::KEYS`]).
    pub(super) fn set(&mut self, key: &str, url: Url) {
        match key {
            "nosql" => self.nosql = Some(url),
            "dbss" => self.dbss = Some(url),
            "image" => self.image = Some(url),
            _ => self.iam = Some(url),
        }
    }
}

/// Whether a region has a service, and how jobtrail knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// The region table lists it.
    Listed,
    /// An endpoint is set for this very region (file or SDK variable).
    Configured,
    /// The table knows the region and lists no such service: never called.
    Absent,
    /// The table does not know the region: assumed at the SDKs' host pattern.
    UnknownRegion,
}

/// Everything that decides an endpoint: the file's `[endpoints]` and the
/// SDKs' variables and credentials file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointSettings {
    /// `[endpoints]`.
    pub global: EndpointOverrides,
    /// `[endpoints."REGION"]`, by region.
    pub regions: BTreeMap<String, EndpointOverrides>,
    /// `HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}`, by region and source.
    pub env: BTreeMap<(String, Source), Url>,
    /// `HUAWEICLOUD_SDK_IAM_ENDPOINT`.
    pub env_iam: Option<Url>,
    /// The credentials file's `iam_endpoint` (read only with the file's keys,
    /// as the SDKs do).
    pub credentials_iam: Option<Url>,
}

impl EndpointSettings {
    /// Whether `region` has `source`, and how jobtrail knows.
    pub fn availability(&self, region: &str, source: Source) -> Availability {
        let set_here = self
            .regions
            .get(region)
            .is_some_and(|o| o.source(source).is_some())
            || self.env.contains_key(&(region.to_owned(), source));
        if set_here {
            return Availability::Configured;
        }
        match regions::lookup(region) {
            Some(r) if r.offers(source) => Availability::Listed,
            Some(_) => Availability::Absent,
            None => Availability::UnknownRegion,
        }
    }

    /// The sources `region` lacks (never called there).
    pub fn absent(&self, region: &str) -> Vec<Source> {
        Source::ALL
            .into_iter()
            .filter(|s| self.availability(region, *s) == Availability::Absent)
            .collect()
    }

    /// The base URL of `source` in `region`, by the precedence above.
    pub fn endpoint(&self, region: &str, source: Source) -> Result<Url, String> {
        if let Some(url) = self.regions.get(region).and_then(|o| o.source(source)) {
            return Ok(url.clone());
        }
        if let Some(url) = self.env.get(&(region.to_owned(), source)) {
            return Ok(url.clone());
        }
        if let Some(url) = self.global.source(source) {
            return Ok(url.clone());
        }
        let listed = regions::lookup(region).and_then(|r| r.endpoint(source));
        let text = listed.map_or_else(|| regions::pattern_endpoint(source, region), str::to_owned);
        Url::parse(&text)
            .map_err(|e| format!("region `{region}` does not make a valid host name: {e}"))
    }

    /// The IAM endpoint that finds projects of `region` (`None`: the account's
    /// list, which belongs to no region), by the precedence above.
    pub fn iam(&self, region: Option<&str>) -> Result<Url, String> {
        let per_region = region
            .and_then(|r| self.regions.get(r))
            .and_then(|o| o.iam.as_ref());
        let given = per_region
            .or(self.credentials_iam.as_ref())
            .or(self.env_iam.as_ref())
            .or(self.global.iam.as_ref());
        if let Some(url) = given {
            return Ok(url.clone());
        }
        let text = region.map_or(regions::GLOBAL_IAM_ENDPOINT, regions::iam_endpoint);
        Url::parse(text).map_err(|e| format!("IAM endpoint {text:?}: {e}"))
    }

    /// Every endpoint of a project in `region`.
    pub fn for_region(&self, region: &str) -> Result<Endpoints, String> {
        Ok(Endpoints {
            nosql: self.endpoint(region, Source::Nosql)?,
            dbss: self.endpoint(region, Source::Dbss)?,
            image: self.endpoint(region, Source::Image)?,
            iam: self.iam(Some(region))?,
        })
    }
}

/// Names the sources in words for notes: "DBSS and Workspace App".
pub fn service_names(sources: &[Source]) -> String {
    let names: Vec<&str> = sources
        .iter()
        .map(|s| match s {
            Source::Nosql => "GaussDB(for NoSQL)",
            Source::Dbss => "DBSS",
            Source::Image => "Workspace App",
        })
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn the_most_specific_setting_wins() {
        let mut e = EndpointSettings::default();
        assert_eq!(
            e.endpoint("cn-north-4", Source::Dbss)
                .expect("table")
                .as_str(),
            "https://dbss.cn-north-4.myhuaweicloud.com/"
        );
        e.global.dbss = Some(url("https://global.example"));
        assert_eq!(
            e.endpoint("cn-north-4", Source::Dbss)
                .expect("global")
                .as_str(),
            "https://global.example/"
        );
        e.env.insert(
            ("cn-north-4".into(), Source::Dbss),
            url("https://env.example"),
        );
        assert_eq!(
            e.endpoint("cn-north-4", Source::Dbss)
                .expect("env")
                .as_str(),
            "https://env.example/"
        );
        e.regions.entry("cn-north-4".into()).or_default().dbss = Some(url("https://vpcep.example"));
        assert_eq!(
            e.endpoint("cn-north-4", Source::Dbss)
                .expect("region")
                .as_str(),
            "https://vpcep.example/"
        );
        // Other regions keep the global setting.
        assert_eq!(
            e.endpoint("ap-southeast-1", Source::Dbss)
                .expect("global")
                .as_str(),
            "https://global.example/"
        );
    }

    #[test]
    fn iam_precedence_follows_the_sdks() {
        let mut e = EndpointSettings::default();
        assert_eq!(
            e.iam(Some("cn-north-4")).expect("table").as_str(),
            "https://iam.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            e.iam(Some("ap-southeast-5")).expect("global").as_str(),
            "https://iam.myhuaweicloud.com/"
        );
        assert_eq!(
            e.iam(None).expect("global").as_str(),
            "https://iam.myhuaweicloud.com/"
        );
        e.global.iam = Some(url("https://file.example"));
        assert_eq!(
            e.iam(Some("cn-north-4")).expect("file").as_str(),
            "https://file.example/"
        );
        e.env_iam = Some(url("https://env.example"));
        assert_eq!(e.iam(None).expect("env").as_str(), "https://env.example/");
        e.credentials_iam = Some(url("https://creds.example"));
        assert_eq!(
            e.iam(Some("cn-north-4")).expect("creds").as_str(),
            "https://creds.example/"
        );
        e.regions.entry("cn-north-4".into()).or_default().iam = Some(url("https://here.example"));
        assert_eq!(
            e.iam(Some("cn-north-4")).expect("region").as_str(),
            "https://here.example/"
        );
        assert_eq!(
            e.iam(Some("cn-east-3")).expect("creds").as_str(),
            "https://creds.example/"
        );
    }

    #[test]
    fn a_service_is_absent_where_the_table_lacks_it_unless_set_for_that_region() {
        let mut e = EndpointSettings::default();
        assert_eq!(
            e.availability("eu-west-101", Source::Nosql),
            Availability::Listed
        );
        assert_eq!(e.absent("eu-west-101"), [Source::Dbss, Source::Image]);
        assert_eq!(
            e.availability("xx-new-1", Source::Dbss),
            Availability::UnknownRegion
        );
        // A global override does not create a service.
        e.global.dbss = Some(url("http://127.0.0.1:1"));
        assert_eq!(
            e.availability("eu-west-101", Source::Dbss),
            Availability::Absent
        );
        e.regions.entry("eu-west-101".into()).or_default().dbss =
            Some(url("https://dbss.vpcep.example"));
        e.env.insert(
            ("eu-west-101".into(), Source::Image),
            url("https://ws.example"),
        );
        assert_eq!(
            e.availability("eu-west-101", Source::Dbss),
            Availability::Configured
        );
        assert_eq!(
            e.availability("eu-west-101", Source::Image),
            Availability::Configured
        );
        assert!(e.absent("eu-west-101").is_empty());
    }

    #[test]
    fn services_are_named_in_words() {
        assert_eq!(service_names(&[Source::Dbss]), "DBSS");
        assert_eq!(
            service_names(&[Source::Nosql, Source::Dbss, Source::Image]),
            "GaussDB(for NoSQL), DBSS and Workspace App"
        );
    }
}
