//! Every `jobtrail.toml` jobtrail writes, spelled in one place: the commented
//! file of `jobtrail init` (every setting with its default and a one-line
//! explanation, so the file itself is the manual) and the plain one `jobtrail
//! simulate` prints for its projects.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::{Endpoints, ProjectIds, parse_endpoint, parse_region};
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
    #[error(transparent)]
    File(#[from] crate::files::FileError),
}

/// A TOML basic string for `value` (quoted and escaped).
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// Checks the flag values with the rules `sync` applies to the file, so
/// `init` never writes a configuration that `sync` would refuse for them.
fn validate(options: &InitOptions) -> Result<(), InitError> {
    if let Some(id) = &options.project {
        ProjectIds::default().add(id).map_err(|_| {
            InitError::Usage(format!(
                "--project {id:?} is not a project ID (letters, digits, - and _; find it in the console under My Credentials → API Credentials → Projects)"
            ))
        })?;
    }
    if let Some(region) = &options.region {
        parse_region(region).map_err(|_| {
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

/// The commented configuration text `init` writes.
pub fn render(options: &InitOptions) -> Result<String, InitError> {
    validate(options)?;
    let sources = if options.sources.is_empty() {
        Source::ALL.to_vec()
    } else {
        options.sources.clone()
    };
    let trimmed = |value: &Option<String>| value.as_deref().map(|v| v.trim().to_owned());
    Ok(config_text(&ConfigDraft {
        annotated: true,
        database: Some("jobtrail.db".into()),
        projects: vec![ProjectDraft {
            id: trimmed(&options.project),
            region: trimmed(&options.region),
            sources,
            since: None,
        }],
        endpoint: options
            .endpoint
            .as_deref()
            .map(|url| url.trim().trim_end_matches('/').to_owned()),
    }))
}

/// The configuration `jobtrail simulate` prints for its projects: every source
/// on with discovery, NoSQL read from `since`, every API at `base`.
pub fn simulator_config(projects: &[String], since: NaiveDate, base: &str) -> String {
    config_text(&ConfigDraft {
        annotated: false,
        database: None,
        projects: projects
            .iter()
            .map(|id| ProjectDraft {
                id: Some(id.clone()),
                region: Some("cn-north-4".into()),
                sources: Source::ALL.to_vec(),
                since: Some(since.format("%Y-%m-%d").to_string()),
            })
            .collect(),
        endpoint: Some(base.to_owned()),
    })
}

/// What a `jobtrail.toml` is to say; [`config_text`] spells it.
struct ConfigDraft {
    /// With a comment on every setting, defaults shown, sources that are off
    /// written commented out (what `init` writes); otherwise only what is set.
    annotated: bool,
    database: Option<String>,
    projects: Vec<ProjectDraft>,
    /// One base URL for every API, written as given.
    endpoint: Option<String>,
}

/// One `[[project]]`. Discovery is on for DBSS and images in every file
/// jobtrail writes.
struct ProjectDraft {
    /// `None` writes [`PROJECT_PLACEHOLDER`].
    id: Option<String>,
    /// `None` writes [`REGION_PLACEHOLDER`].
    region: Option<String>,
    /// The sources that are on.
    sources: Vec<Source>,
    /// `project.nosql.since`, as written.
    since: Option<String>,
}

/// The one place that spells a `jobtrail.toml`: its tables, keys and comments.
fn config_text(draft: &ConfigDraft) -> String {
    let mut w = TomlWriter {
        text: String::new(),
        annotated: draft.annotated,
        off: false,
    };
    w.preamble(draft.database.as_deref());
    for project in &draft.projects {
        w.project(project);
    }
    // Show the real defaults when the region is known.
    let shown = draft
        .projects
        .first()
        .and_then(|p| p.region.as_deref())
        .and_then(|r| Endpoints::public(r).ok());
    w.endpoints(draft.endpoint.as_deref(), shown.as_ref());
    w.text
}

/// Writes TOML line by line. Comments and shown defaults appear in annotated
/// text only; a part that is off is commented out there and left out otherwise.
struct TomlWriter {
    text: String,
    annotated: bool,
    /// Inside a part that is off.
    off: bool,
}

impl TomlWriter {
    fn line(&mut self, text: &str) {
        if self.off {
            if !self.annotated {
                return;
            }
            self.text.push_str("# ");
        }
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// A comment line.
    fn note(&mut self, text: &str) {
        if self.annotated {
            if text.is_empty() {
                self.line("#");
            } else {
                self.line(&format!("# {text}"));
            }
        }
    }

    /// An empty line between explained settings.
    fn blank(&mut self) {
        if self.annotated {
            self.text.push('\n');
        }
    }

    /// An empty line before what follows, unless there is one.
    fn separate(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            self.text.push('\n');
        }
    }

    fn value(&mut self, key: &str, toml: &str) {
        self.line(&format!("{key} = {toml}"));
    }

    fn string(&mut self, key: &str, value: &str) {
        self.value(key, &quoted(value));
    }

    /// A setting left at its default, shown commented out with an example value.
    fn example(&mut self, key: &str, toml: &str) {
        self.note(&format!("{key} = {toml}"));
    }

    /// A setting written with its default value, to show where it goes.
    fn shown_default(&mut self, key: &str, toml: &str) {
        if self.annotated {
            self.value(key, toml);
        }
    }

    /// Writes what `body` writes as a part that is off.
    fn commented(&mut self, body: impl FnOnce(&mut TomlWriter)) {
        self.off = true;
        body(self);
        self.off = false;
    }

    fn preamble(&mut self, database: Option<&str>) {
        self.note("jobtrail configuration, written by `jobtrail init`.");
        self.note("Every setting is listed with its default; a line starting with # is off.");
        self.note("Next: `jobtrail check` (tests this file, the credentials and each API),");
        self.note("then `jobtrail sync`.");
        self.note("");
        self.note(
            "Credentials never go in this file. Set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK",
        );
        self.note("(plus HUAWEICLOUD_SDK_SECURITY_TOKEN for temporary ones), or CLOUD_SDK_TOKEN,");
        self.note("or put ak/sk in the [basic] section of ~/.huaweicloud/credentials.");
        self.blank();
        self.note("SQLite file for the job history, relative to this file's folder.");
        self.note(
            "Without this key: ./jobtrail.db in the working directory. --db and JOBTRAIL_DB win.",
        );
        match database {
            Some(path) => self.string("database", path),
            None => self.example("database", &quoted("jobtrail.db")),
        }
        self.blank();
        self.note("Folder of extra saved queries (*.sql) for `jobtrail query NAME`, relative to");
        self.note(
            "this file; they override built-in queries of the same name. Default: built-in only.",
        );
        self.example("queries_dir", &quoted("queries"));
        self.blank();
        self.note("Allow plain-http endpoints that are not loopback: signed requests would travel");
        self.note("in clear text. Default: false (https only, http only to 127.0.0.1/localhost).");
        self.example("allow_insecure_endpoints", "false");
        self.blank();
    }

    fn project(&mut self, project: &ProjectDraft) {
        self.note("One [[project]] block per project to sync; copy the whole block for another.");
        self.line("[[project]]");
        self.note("Project ID: console → My Credentials → API Credentials → Projects.");
        self.filled_in("id", project.id.as_deref(), PROJECT_PLACEHOLDER);
        self.note("Region of that project, e.g. cn-north-4, ap-southeast-1, eu-west-101.");
        self.filled_in("region", project.region.as_deref(), REGION_PLACEHOLDER);
        self.blank();
        self.note("A source is on when its table is present; comment a table out to turn it off.");
        self.blank();
        let on = |source| project.sources.contains(&source);
        self.section(on(Source::Nosql), "GaussDB(for NoSQL) task list", |w| {
            w.line("[project.nosql]");
            w.note("Where the first sync starts: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).");
            w.note("Default: 30 days before the first sync; later syncs continue from there.");
            match &project.since {
                Some(since) => w.string("since", since),
                None => w.example("since", &quoted("2024-01-01")),
            }
        });
        self.section(on(Source::Dbss), "DBSS audit-instance jobs", |w| {
            w.line("[project.dbss]");
            w.note("Audit instances to read, by resource ID. Default: none.");
            w.shown_default("resource_ids", "[]");
            w.note(
                "Also list every audit instance of the project and read them all. Default: false.",
            );
            w.value("discover", "true");
        });
        self.section(
            on(Source::Image),
            "Workspace App image-server jobs, with their sub-jobs",
            |w| {
                w.line("[project.image]");
                w.note("Jobs to read, by job ID. Default: none.");
                w.shown_default("job_ids", "[]");
                w.note(
                    "Also list the project's image-server jobs and read them all. Default: false.",
                );
                w.value("discover", "true");
            },
        );
        self.separate();
    }

    /// `key = value`, or the placeholder with a note to fill it in.
    fn filled_in(&mut self, key: &str, value: Option<&str>, placeholder: &str) {
        match value {
            Some(value) => self.string(key, value),
            None => {
                self.note(
                    "FILL IN: replace the placeholder below (`jobtrail check` flags it until then).",
                );
                self.string(key, placeholder);
            }
        }
    }

    /// A source's table: as is when on, commented out when off.
    fn section(&mut self, on: bool, title: &str, body: impl FnOnce(&mut TomlWriter)) {
        if on {
            self.note(&format!("{title}."));
            body(self);
        } else {
            self.note(&format!(
                "{title}: off. Remove the leading \"# \" of the lines below to turn it on."
            ));
            self.commented(body);
        }
        self.blank();
    }

    /// `[endpoints]` at `endpoint`, or the defaults (`shown`, else examples)
    /// commented out.
    fn endpoints(&mut self, endpoint: Option<&str>, shown: Option<&Endpoints>) {
        self.note("Base URL of each API, for every project. Default: the public endpoints of each");
        self.note("project's region. Set them for a VPC endpoint, a proxy or `jobtrail simulate`.");
        const KEYS: [(&str, &str); 4] = [
            ("nosql", "https://gaussdb-nosql.REGION.myhuaweicloud.com"),
            ("dbss", "https://dbss.REGION.myhuaweicloud.com"),
            ("image", "https://workspace.REGION.myhuaweicloud.com"),
            ("iam", "https://iam.REGION.myhuaweicloud.com"),
        ];
        match endpoint {
            Some(url) => {
                self.line("[endpoints]");
                for (key, _) in KEYS {
                    self.string(key, url);
                }
            }
            None => self.commented(|w| {
                w.line("[endpoints]");
                for (key, example) in KEYS {
                    let url = shown.map(|e| match key {
                        "nosql" => &e.nosql,
                        "dbss" => &e.dbss,
                        "image" => &e.image,
                        _ => &e.iam,
                    });
                    let url = url.map_or(example, |u| u.as_str().trim_end_matches('/'));
                    w.string(key, url);
                }
            }),
        }
    }
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
        // Replaced in one step: an interrupted write never leaves half a config,
        // and a planted temporary name cannot redirect it.
        crate::files::write_atomically(path, text.as_bytes())?;
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
    use crate::config::Settings;

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

    #[test]
    fn the_simulator_config_is_plain_and_resolves_to_the_simulator() {
        let since = NaiveDate::from_ymd_opt(2024, 3, 1).expect("date");
        let projects = ["p1".to_owned(), "p2".to_owned()];
        let text = simulator_config(&projects, since, "http://127.0.0.1:8080");
        let project = |id: &str| {
            format!(
                "[[project]]\nid = \"{id}\"\nregion = \"cn-north-4\"\n[project.nosql]\nsince = \"2024-03-01\"\n[project.dbss]\ndiscover = true\n[project.image]\ndiscover = true\n\n"
            )
        };
        let base = "http://127.0.0.1:8080";
        assert_eq!(
            text,
            format!(
                "{}{}[endpoints]\nnosql = \"{base}\"\ndbss = \"{base}\"\nimage = \"{base}\"\niam = \"{base}\"\n",
                project("p1"),
                project("p2")
            )
        );
        let s = parse(&text);
        assert_eq!(s.projects.len(), 2);
        assert!(
            s.projects
                .iter()
                .all(|p| Source::ALL.iter().all(|&src| p.has(src)))
        );
        assert_eq!(
            s.projects[1].endpoints.iam.as_str(),
            "http://127.0.0.1:8080/"
        );
    }
}
