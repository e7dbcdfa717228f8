//! `jobtrail init`: writes a commented `jobtrail.toml` that shows every setting
//! with its default and a one-line explanation, so the file itself is the manual.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Endpoints, Settings, parse_endpoint};
use crate::model::Source;

/// Written where no project ID was given. It is not a valid project ID on
/// purpose: `sync` refuses the file (naming the line) instead of calling the
/// cloud with it, and `check` names it as the placeholder to fill in.
pub const PROJECT_PLACEHOLDER: &str = "<your project ID>";
/// Written where no region was given; invalid on purpose, like [`PROJECT_PLACEHOLDER`].
pub const REGION_PLACEHOLDER: &str = "<your region, e.g. cn-north-4>";

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub project: Option<String>,
    pub region: Option<String>,
    /// Sources to turn on; empty means all three.
    pub sources: Vec<Source>,
    /// One base URL for every API (instead of the region's public endpoints).
    pub endpoint: Option<String>,
}

/// Why `init` did not write the file.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A flag value that would make an invalid file (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The file is there and `--force` was not given (exit 1).
    #[error(
        "{} already exists: not overwritten. Check it with `jobtrail check`, write elsewhere with -o PATH, or replace it with --force",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A TOML basic string for `value` (quoted and escaped).
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// Checks the flag values with the same rules `sync` applies to the file, so
/// `init` never writes a configuration that `sync` would refuse for them.
fn validate(options: &InitOptions) -> Result<(), InitError> {
    let probe = |id: &str, region: &str| {
        let text = format!(
            "[[project]]\nid = {}\nregion = {}\n[project.nosql]\n",
            quoted(id),
            quoted(region)
        );
        Settings::parse(&text, Path::new("jobtrail.toml")).map(|_| ())
    };
    if let Some(id) = &options.project {
        probe(id, "cn-north-4").map_err(|_| {
            InitError::Usage(format!(
                "--project {id:?} is not a project ID (letters, digits, - and _; find it in the console under My Credentials → API Credentials → Projects)"
            ))
        })?;
    }
    if let Some(region) = &options.region {
        probe("project", region).map_err(|_| {
            InitError::Usage(format!(
                "--region {region:?} is not a region name such as cn-north-4 or ap-southeast-1"
            ))
        })?;
    }
    if let Some(url) = &options.endpoint {
        parse_endpoint(url, false)
            .map_err(|why| InitError::Usage(format!("--endpoint {url:?}: {why}")))?;
    }
    Ok(())
}

/// The commented configuration text.
pub fn render(options: &InitOptions) -> Result<String, InitError> {
    validate(options)?;
    let enabled = |source: Source| options.sources.is_empty() || options.sources.contains(&source);
    let id = options.project.as_deref().map(str::trim);
    let region = options.region.as_deref().map(str::trim);
    let mut t = String::new();
    let mut line = |text: &str| {
        t.push_str(text);
        t.push('\n');
    };

    line("# jobtrail configuration, written by `jobtrail init`.");
    line("# Every setting is listed with its default; a line starting with # is off.");
    line("# Next: `jobtrail check` (tests this file, the credentials and each API),");
    line("# then `jobtrail sync`.");
    line("#");
    line("# Credentials never go in this file. Set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK");
    line("# (plus HUAWEICLOUD_SDK_SECURITY_TOKEN for temporary ones), or CLOUD_SDK_TOKEN,");
    line("# or put ak/sk in the [basic] section of ~/.huaweicloud/credentials.");
    line("");
    line("# SQLite file for the job history, relative to this file's folder.");
    line("# Without this key: ./jobtrail.db in the working directory. --db and JOBTRAIL_DB win.");
    line("database = \"jobtrail.db\"");
    line("");
    line("# Folder of extra saved queries (*.sql) for `jobtrail query NAME`, relative to");
    line("# this file; they override built-in queries of the same name. Default: built-in only.");
    line("# queries_dir = \"queries\"");
    line("");
    line("# Allow plain-http endpoints that are not loopback: signed requests would travel");
    line("# in clear text. Default: false (https only, http only to 127.0.0.1/localhost).");
    line("# allow_insecure_endpoints = false");
    line("");
    line("# One [[project]] block per project to sync; copy the whole block for another.");
    line("[[project]]");
    line("# Project ID: console → My Credentials → API Credentials → Projects.");
    match id {
        Some(id) => line(&format!("id = {}", quoted(id))),
        None => {
            line(
                "# FILL IN: replace the placeholder below (`jobtrail check` flags it until then).",
            );
            line(&format!("id = {}", quoted(PROJECT_PLACEHOLDER)));
        }
    }
    line("# Region of that project, e.g. cn-north-4, ap-southeast-1, eu-west-101.");
    match region {
        Some(region) => line(&format!("region = {}", quoted(region))),
        None => {
            line(
                "# FILL IN: replace the placeholder below (`jobtrail check` flags it until then).",
            );
            line(&format!("region = {}", quoted(REGION_PLACEHOLDER)));
        }
    }
    line("");
    line("# A source is on when its table is present; comment a table out to turn it off.");
    line("");
    section(
        &mut line,
        enabled(Source::Nosql),
        "GaussDB(for NoSQL) task list",
        &[
            "[project.nosql]",
            "# Where the first sync starts: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).",
            "# Default: 30 days before the first sync; later syncs continue from there.",
            "# since = \"2024-01-01\"",
        ],
    );
    section(
        &mut line,
        enabled(Source::Dbss),
        "DBSS audit-instance jobs",
        &[
            "[project.dbss]",
            "# Audit instances to read, by resource ID. Default: none.",
            "resource_ids = []",
            "# Also list every audit instance of the project and read them all. Default: false.",
            "discover = true",
        ],
    );
    section(
        &mut line,
        enabled(Source::Image),
        "Workspace App image-server jobs, with their sub-jobs",
        &[
            "[project.image]",
            "# Jobs to read, by job ID. Default: none.",
            "job_ids = []",
            "# Also list the project's image-server jobs and read them all. Default: false.",
            "discover = true",
        ],
    );

    line("# Base URL of each API, for every project. Default: the public endpoints of each");
    line("# project's region. Set them for a VPC endpoint, a proxy or `jobtrail simulate`.");
    match &options.endpoint {
        Some(url) => {
            let url = url.trim().trim_end_matches('/');
            line("[endpoints]");
            for key in ["nosql", "dbss", "image", "iam"] {
                line(&format!("{key} = {}", quoted(url)));
            }
        }
        None => {
            // Show the real defaults when the region is known.
            let shown = region.and_then(|r| Endpoints::public(r).ok());
            let url = |u: Option<&reqwest::Url>, example: &str| {
                u.map_or_else(
                    || example.to_owned(),
                    |u| u.as_str().trim_end_matches('/').to_owned(),
                )
            };
            line("# [endpoints]");
            line(&format!(
                "# nosql = {}",
                quoted(&url(
                    shown.as_ref().map(|e| &e.nosql),
                    "https://gaussdb-nosql.REGION.myhuaweicloud.com"
                ))
            ));
            line(&format!(
                "# dbss = {}",
                quoted(&url(
                    shown.as_ref().map(|e| &e.dbss),
                    "https://dbss.REGION.myhuaweicloud.com"
                ))
            ));
            line(&format!(
                "# image = {}",
                quoted(&url(
                    shown.as_ref().map(|e| &e.image),
                    "https://workspace.REGION.myhuaweicloud.com"
                ))
            ));
            line(&format!(
                "# iam = {}",
                quoted(&url(
                    shown.as_ref().map(|e| &e.iam),
                    "https://iam.REGION.myhuaweicloud.com"
                ))
            ));
        }
    }
    Ok(t)
}

/// A source's table: as is when on, every line commented out when off.
fn section(line: &mut impl FnMut(&str), on: bool, title: &str, body: &[&str]) {
    if on {
        line(&format!("# {title}."));
        for text in body {
            line(text);
        }
    } else {
        line(&format!(
            "# {title}: off. Remove the leading \"# \" of the lines below to turn it on."
        ));
        for text in body {
            line(&format!("# {text}"));
        }
    }
    line("");
}

/// Writes `text` to `path`. Without `force` an existing file is never touched
/// (the check and the creation are one step, so a race cannot clobber it).
pub fn write(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let write_error = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    if path.is_dir() {
        return Err(write_error(std::io::Error::other("it is a folder")));
    }
    if force {
        // Through a temporary file: an interrupted write never leaves half a config.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(write_error)?;
        std::fs::rename(&tmp, path).map_err(write_error)?;
        return Ok(());
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists(path.to_path_buf()));
        }
        Err(e) => return Err(write_error(e)),
    };
    file.write_all(text.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(sources: &[Source]) -> InitOptions {
        InitOptions {
            project: Some("0549b4a43100d4f32f51c01c2fe4acdb".into()),
            region: Some("ap-southeast-1".into()),
            sources: sources.to_vec(),
            endpoint: None,
        }
    }

    fn parse(text: &str) -> Settings {
        Settings::parse(text, Path::new("/etc/jobtrail/jobtrail.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn all_sources_by_default_with_discovery_and_public_endpoints() {
        let text = render(&options(&[])).expect("renders");
        let s = parse(&text);
        let p = &s.projects[0];
        assert_eq!(
            (p.id.as_str(), p.region.as_str()),
            ("0549b4a43100d4f32f51c01c2fe4acdb", "ap-southeast-1")
        );
        assert!(Source::ALL.iter().all(|&src| p.has(src)));
        assert!(p.dbss.as_ref().is_some_and(|d| d.discover));
        assert!(p.image.as_ref().is_some_and(|i| i.discover));
        assert_eq!(p.nosql.as_ref().and_then(|n| n.since), None);
        assert_eq!(s.database, Some(PathBuf::from("/etc/jobtrail/jobtrail.db")));
        assert_eq!(
            p.endpoints,
            Endpoints::public("ap-southeast-1").expect("public")
        );
        // The region's real endpoints are shown, commented out.
        assert!(
            text.contains("# image = \"https://workspace.ap-southeast-1.myhuaweicloud.com\""),
            "{text}"
        );
        for key in [
            "database",
            "queries_dir",
            "allow_insecure_endpoints",
            "since",
            "resource_ids",
            "job_ids",
            "[endpoints]",
            "iam =",
        ] {
            assert!(text.contains(key), "{key} missing:\n{text}");
        }
    }

    #[test]
    fn only_the_named_sources_are_on_and_the_others_stay_visible() {
        let text = render(&options(&[Source::Dbss])).expect("renders");
        let p = &parse(&text).projects[0];
        assert!(p.has(Source::Dbss) && !p.has(Source::Nosql) && !p.has(Source::Image));
        assert!(text.contains("# [project.nosql]"), "{text}");
        // Uncommenting an off table gives exactly the lines of an on one.
        let block = |text: &str, start: &str| -> Vec<String> {
            text.lines()
                .skip_while(|l| *l != start)
                .take_while(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let on = render(&options(&[])).expect("renders");
        for table in ["[project.nosql]", "[project.image]"] {
            let off = block(&text, &format!("# {table}"));
            assert!(off.len() > 2, "{text}");
            let uncommented: Vec<String> = off
                .iter()
                .map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned())
                .collect();
            assert_eq!(uncommented, block(&on, table));
        }
    }

    #[test]
    fn an_endpoint_points_every_api_at_it() {
        let mut o = options(&[Source::Nosql]);
        o.endpoint = Some("http://127.0.0.1:8080/".into());
        let s = parse(&render(&o).expect("renders"));
        let e = &s.projects[0].endpoints;
        for url in [&e.nosql, &e.dbss, &e.image, &e.iam] {
            assert_eq!(url.as_str(), "http://127.0.0.1:8080/");
        }
        o.endpoint = Some("http://example.com".into());
        assert!(matches!(render(&o), Err(InitError::Usage(m)) if m.contains("https")));
    }

    #[test]
    fn placeholders_are_refused_by_the_parser_until_filled_in() {
        let text = render(&InitOptions::default()).expect("renders");
        assert!(text.contains(PROJECT_PLACEHOLDER) && text.contains(REGION_PLACEHOLDER));
        let err = Settings::parse(&text, Path::new("jobtrail.toml")).expect_err("placeholder");
        assert!(err.to_string().contains("project.id"), "{err}");
        let filled = text
            .replace(PROJECT_PLACEHOLDER, "abc123")
            .replace(REGION_PLACEHOLDER, "cn-north-4");
        assert_eq!(parse(&filled).projects[0].id, "abc123");
    }

    #[test]
    fn bad_flag_values_are_usage_errors() {
        let mut o = options(&[]);
        o.project = Some("not a project".into());
        assert!(matches!(render(&o), Err(InitError::Usage(m)) if m.contains("--project")));
        let mut o = options(&[]);
        o.region = Some("cn north".into());
        assert!(matches!(render(&o), Err(InitError::Usage(m)) if m.contains("--region")));
        // Quotes and backslashes cannot break out of the TOML string.
        let mut o = options(&[]);
        o.project = Some("a\"\nb = 1".into());
        assert!(matches!(render(&o), Err(InitError::Usage(_))));
    }

    #[test]
    fn never_overwrites_without_force() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub/jobtrail.toml");
        write(&path, "first\n", false).expect("creates");
        assert!(matches!(
            write(&path, "second\n", false),
            Err(InitError::Exists(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "first\n");
        write(&path, "third\n", true).expect("forced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "third\n");
    }
}
