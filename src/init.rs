//! Every `jobtrail.toml` jobtrail writes, spelled in one place: the commented
//! file of `jobtrail init` (every setting with its default and a one-line
//! explanation, so the file itself is the manual: one project by its region or
//! ID, or the whole account) and the plain one `jobtrail simulate` prints for
//! its projects. A source the region does not offer is written commented out.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::{
    Availability, EndpointSettings, Endpoints, ProjectIds, parse_endpoint, parse_region,
    service_names,
};
use crate::model::Source;

/// Not written by `init` any more (a project without an ID gets it from IAM),
/// but files written before say it: it is not a valid project ID on purpose,
/// so `sync` refuses the file (naming the line) instead of calling the cloud
/// with it, and `check` names it as the placeholder to fill in.
pub const PROJECT_PLACEHOLDER: &str = "<your project ID>";
/// Written where no region was given; invalid on purpose, like [`PROJECT_PLACEHOLDER`].
pub const REGION_PLACEHOLDER: &str = "<your region, e.g. cn-north-4>";

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// `None`: found through IAM from the region.
    pub project: Option<String>,
    /// With `account`, the only region to sync.
    pub region: Option<String>,
    /// Every project of the account (`[account] projects = "all"`).
    pub account: bool,
    /// Sources to turn on; empty means all three (where the region offers them).
    pub sources: Vec<Source>,
    /// One base URL for every API (instead of the region's public endpoints).
    pub endpoint: Option<String>,
}

/// The file to write, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Sources asked for that the region does not offer (written off), and
    /// the like: notes, not errors.
    pub notes: Vec<String>,
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

/// The commented configuration `init` writes.
pub fn render(options: &InitOptions) -> Result<Rendered, InitError> {
    validate(options)?;
    let asked = !options.sources.is_empty();
    let wanted = if asked {
        options.sources.clone()
    } else {
        Source::ALL.to_vec()
    };
    let trimmed = |value: &Option<String>| value.as_deref().map(|v| v.trim().to_owned());
    let region = trimmed(&options.region);
    let absent = region
        .as_deref()
        .map(|r| EndpointSettings::default().absent(r))
        .unwrap_or_default();
    let mut notes = Vec::new();
    let on: Vec<Source> = wanted
        .iter()
        .copied()
        .filter(|s| !absent.contains(s))
        .collect();
    if let Some(r) = region.as_deref() {
        let refused: Vec<Source> = wanted
            .iter()
            .copied()
            .filter(|s| absent.contains(s))
            .collect();
        if on.is_empty() {
            return Err(InitError::Usage(format!(
                "{r} offers none of the sources asked for ({}): the SDKs know no endpoint of {} there",
                names(&wanted),
                service_names(&wanted)
            )));
        }
        if asked && !refused.is_empty() {
            notes.push(format!(
                "{r} has no {} (the SDKs know no endpoint there): --source {} written commented out",
                service_names(&refused),
                names(&refused)
            ));
        }
        if EndpointSettings::default().availability(r, Source::Nosql) == Availability::UnknownRegion
        {
            notes.push(format!(
                "region {r} is not in jobtrail's region table: its APIs are assumed at the SDKs' usual host names; `jobtrail check` will tell"
            ));
        }
    }
    let endpoint = options
        .endpoint
        .as_deref()
        .map(|url| url.trim().trim_end_matches('/').to_owned());
    let (projects, account) = if options.account {
        let account = AccountDraft {
            region: region.clone(),
            sources: if asked { Some(on) } else { None },
            since: None,
        };
        (Vec::new(), Some(account))
    } else {
        let project = ProjectDraft {
            id: trimmed(&options.project),
            region: region.clone(),
            sources: on,
            absent,
            since: None,
        };
        (vec![project], None)
    };
    let text = config_text(&ConfigDraft {
        annotated: true,
        database: Some("jobtrail.db".into()),
        projects,
        account,
        endpoint,
        region,
    });
    Ok(Rendered { text, notes })
}

/// `nosql dbss` as flags name them.
fn names(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The configuration `jobtrail simulate` prints: the whole account, as a
/// user configures one (the simulator's IAM names its projects, so no ID is
/// written), NoSQL read from `since`, every API (IAM too) at `base`.
pub fn simulator_config(since: NaiveDate, base: &str) -> String {
    config_text(&ConfigDraft {
        annotated: false,
        database: None,
        projects: Vec::new(),
        account: Some(AccountDraft {
            region: None,
            sources: None,
            since: Some(since.format("%Y-%m-%d").to_string()),
        }),
        endpoint: Some(base.to_owned()),
        region: None,
    })
}

/// What a `jobtrail.toml` is to say; [`config_text`] spells it.
struct ConfigDraft {
    /// With a comment on every setting, defaults shown, sources that are off
    /// written commented out (what `init` writes); otherwise only what is set.
    annotated: bool,
    database: Option<String>,
    projects: Vec<ProjectDraft>,
    account: Option<AccountDraft>,
    /// One base URL for every API, written as given.
    endpoint: Option<String>,
    /// The region whose public endpoints are shown as the defaults.
    region: Option<String>,
}

/// One `[[project]]`. Discovery is on for DBSS and images in every file
/// jobtrail writes.
struct ProjectDraft {
    /// `None`: left out (IAM finds it), an example shown commented out.
    id: Option<String>,
    /// `None` writes [`REGION_PLACEHOLDER`].
    region: Option<String>,
    /// The sources that are on.
    sources: Vec<Source>,
    /// Sources the region does not offer (off, and said so).
    absent: Vec<Source>,
    /// `project.nosql.since`, as written.
    since: Option<String>,
}

/// `[account]`: every project of the account.
struct AccountDraft {
    /// The only region to sync; `None`: every region.
    region: Option<String>,
    /// The sources asked for; `None`: all three (the default, shown).
    sources: Option<Vec<Source>>,
    /// `account.since`, as written; `None`: an example.
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
    if let Some(account) = &draft.account {
        w.account(account);
    }
    for project in &draft.projects {
        w.project(project);
    }
    // Show the real defaults when the region is known.
    let shown = draft
        .region
        .as_deref()
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
        self.note("For unattended runs (README: \"Running unattended\"): a Prometheus text file");
        self.note("written after every sync, and a healthchecks-style ping URL. Default: none.");
        self.example(
            "metrics_file",
            &quoted("/var/lib/prometheus/node-exporter/jobtrail.prom"),
        );
        self.example("ping_url", &quoted("https://hc-ping.com/your-check-uuid"));
        self.blank();
    }

    fn project(&mut self, project: &ProjectDraft) {
        self.note("One [[project]] block per project to sync; copy the whole block for another.");
        self.line("[[project]]");
        match &project.id {
            Some(id) => {
                self.note("Project ID: console → My Credentials → API Credentials → Projects.");
                self.string("id", id);
            }
            None => {
                self.note(
                    "Project ID. Default: the region's project, found through IAM as the official",
                );
                self.note(
                    "SDKs find it (GET /v3/projects?name=REGION, asked once a day). Set it for a",
                );
                self.note("sub-project: console → My Credentials → API Credentials → Projects.");
                self.example("id", &quoted("0549b4a43100d4f32f51c01c2fe4acdb"));
            }
        }
        self.note("Region of that project, e.g. cn-north-4, ap-southeast-1, eu-west-101.");
        self.filled_in("region", project.region.as_deref(), REGION_PLACEHOLDER);
        self.blank();
        self.note("A source is on when its table is present; comment a table out to turn it off.");
        self.blank();
        let on = |source| project.sources.contains(&source);
        let lacks = |source: Source| {
            project.absent.contains(&source).then(|| {
                format!(
                    "off: {} has no {} (the SDKs know no endpoint there)",
                    project.region.as_deref().unwrap_or_default(),
                    service_names(&[source])
                )
            })
        };
        self.section(
            on(Source::Nosql),
            lacks(Source::Nosql),
            "GaussDB(for NoSQL) task list",
            |w| {
                w.line("[project.nosql]");
                w.note("Where the first sync starts: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).");
                w.note("Default: 30 days before the first sync; later syncs continue from there.");
                match &project.since {
                    Some(since) => w.string("since", since),
                    None => w.example("since", &quoted("2024-01-01")),
                }
            },
        );
        self.section(
            on(Source::Dbss),
            lacks(Source::Dbss),
            "DBSS audit-instance jobs",
            |w| {
                w.line("[project.dbss]");
                w.note("Audit instances to read, by resource ID. Default: none.");
                w.shown_default("resource_ids", "[]");
                w.note(
                "Also list every audit instance of the project and read them all. Default: false.",
            );
                w.value("discover", "true");
            },
        );
        self.section(
            on(Source::Image),
            lacks(Source::Image),
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

    /// `[account]`: every project of the account, and the settings that narrow it.
    fn account(&mut self, account: &AccountDraft) {
        self.note("The whole account: every enabled project these credentials may use (listed");
        self.note("through IAM, GET /v3/auth/projects, once a day), except OBS's MOS and disabled");
        self.note("projects. Each project syncs the sources its region offers; a service a region");
        self.note("does not have is never called there. Add a [[project]] with an `id` for a");
        self.note("project that needs its own settings (resource IDs, since): it wins over this.");
        self.line("[account]");
        self.string("projects", "all");
        self.note("Only projects in these regions. Default: every region.");
        match &account.region {
            Some(region) => self.value("regions", &format!("[{}]", quoted(region))),
            None => self.example("regions", "[\"cn-north-4\", \"ap-southeast-1\"]"),
        }
        self.note("The sources to sync, where a project's region offers them. Default: all three.");
        let list = |sources: &[Source]| {
            let items: Vec<String> = sources.iter().map(|s| quoted(s.as_str())).collect();
            format!("[{}]", items.join(", "))
        };
        match &account.sources {
            Some(sources) => self.value("sources", &list(sources)),
            None => self.shown_default("sources", &list(&Source::ALL)),
        }
        self.note(
            "Where each project's first NoSQL sync starts: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.",
        );
        self.note("Default: 30 days before the first sync; later syncs continue from there.");
        match &account.since {
            Some(since) => self.string("since", since),
            None => self.example("since", &quoted("2024-01-01")),
        }
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

    /// A source's table: as is when on, commented out when off (`lacks`: why
    /// it cannot be on).
    fn section(
        &mut self,
        on: bool,
        lacks: Option<String>,
        title: &str,
        body: impl FnOnce(&mut TomlWriter),
    ) {
        if on {
            self.note(&format!("{title}."));
            body(self);
        } else {
            match lacks {
                Some(why) => self.note(&format!("{title}: {why}.")),
                None => self.note(&format!(
                    "{title}: off. Remove the leading \"# \" of the lines below to turn it on."
                )),
            }
            self.commented(body);
        }
        self.blank();
    }

    /// `[endpoints]` at `endpoint`, or the defaults (`shown`, else examples)
    /// commented out.
    fn endpoints(&mut self, endpoint: Option<&str>, shown: Option<&Endpoints>) {
        self.note("Base URL of each API, for every project. Default: the public endpoints of each");
        self.note("project's region. Set them for a proxy or `jobtrail simulate`. A region's own");
        self.note(
            "(a VPC endpoint, say) go in its table, e.g. [endpoints.\"cn-north-4\"] nosql = \"…\".",
        );
        self.note("Precedence: [endpoints.\"REGION\"], then the SDKs' variables");
        self.note(
            "HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}, then [endpoints], then the region table.",
        );
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
            account: false,
            sources: sources.to_vec(),
            endpoint: None,
        }
    }

    /// The text `render` writes (its notes aside).
    fn text_of(options: &InitOptions) -> String {
        render(options).expect("renders").text
    }

    fn parse(text: &str) -> Settings {
        Settings::parse(text, Path::new("/etc/jobtrail/jobtrail.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn all_sources_by_default_with_discovery_and_public_endpoints() {
        let text = text_of(&options(&[]));
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
        assert_eq!(
            s.database.as_ref().and_then(|d| d.sqlite_path()),
            Some(std::path::Path::new("/etc/jobtrail/jobtrail.db"))
        );
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
        let text = text_of(&options(&[Source::Dbss]));
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
        let on = text_of(&options(&[]));
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
        let s = parse(&text_of(&o));
        let e = &s.projects[0].endpoints;
        for url in [&e.nosql, &e.dbss, &e.image, &e.iam] {
            assert_eq!(url.as_str(), "http://127.0.0.1:8080/");
        }
        o.endpoint = Some("http://example.com".into());
        assert!(matches!(render(&o), Err(InitError::Usage(m)) if m.contains("https")));
    }

    #[test]
    fn the_region_placeholder_is_refused_by_the_parser_until_filled_in() {
        let text = text_of(&InitOptions::default());
        assert!(text.contains(REGION_PLACEHOLDER) && !text.contains(PROJECT_PLACEHOLDER));
        let err = Settings::parse(&text, Path::new("jobtrail.toml")).expect_err("placeholder");
        assert!(err.to_string().contains("project.region"), "{err}");
        let filled = text.replace(REGION_PLACEHOLDER, "cn-north-4");
        let s = parse(&filled);
        assert!(s.projects.is_empty());
        assert_eq!(s.regional[0].region, "cn-north-4");
    }

    #[test]
    fn without_a_project_id_the_region_is_enough() {
        let mut o = options(&[]);
        o.project = None;
        let text = text_of(&o);
        let s = parse(&text);
        assert!(s.projects.is_empty());
        let p = &s.regional[0];
        assert_eq!(p.region, "ap-southeast-1");
        assert!(p.nosql.is_some() && p.dbss.is_some() && p.image.is_some());
        assert!(
            text.contains("# id = "),
            "an example ID, commented out:\n{text}"
        );
        assert!(text.contains("GET /v3/projects?name=REGION"), "{text}");
    }

    #[test]
    fn a_source_the_region_lacks_is_written_off_with_a_note() {
        let mut o = options(&[]);
        o.region = Some("eu-west-101".into());
        let rendered = render(&o).expect("renders");
        assert!(rendered.notes.is_empty(), "all three by default: no note");
        let p = &parse(&rendered.text).projects[0];
        assert!(
            p.has(Source::Nosql) && !p.configured(Source::Dbss) && !p.configured(Source::Image)
        );
        assert!(
            rendered
                .text
                .contains("# DBSS audit-instance jobs: off: eu-west-101 has no DBSS"),
            "{}",
            rendered.text
        );
        // Asked for by name: written off all the same, and said.
        o.sources = vec![Source::Nosql, Source::Dbss];
        let rendered = render(&o).expect("renders");
        assert_eq!(rendered.notes.len(), 1, "{:?}", rendered.notes);
        assert!(
            rendered.notes[0].contains("eu-west-101 has no DBSS"),
            "{:?}",
            rendered.notes
        );
        assert!(!parse(&rendered.text).projects[0].configured(Source::Dbss));
        // Nothing the region offers: nothing to write.
        o.sources = vec![Source::Dbss, Source::Image];
        assert!(matches!(render(&o), Err(InitError::Usage(m)) if m.contains("offers none")));
    }

    #[test]
    fn the_whole_account_in_one_table() {
        let o = InitOptions {
            account: true,
            ..InitOptions::default()
        };
        let text = text_of(&o);
        let s = parse(&text);
        assert!(s.projects.is_empty() && s.regional.is_empty());
        let account = s.account.expect("[account]");
        assert!(account.regions.is_empty());
        assert_eq!(account.sources, Source::ALL);
        assert!(text.contains("projects = \"all\""), "{text}");
        assert!(!text.contains(REGION_PLACEHOLDER), "{text}");

        let o = InitOptions {
            account: true,
            region: Some("ap-southeast-1".into()),
            sources: vec![Source::Dbss],
            ..InitOptions::default()
        };
        let account = parse(&text_of(&o)).account.expect("[account]");
        assert_eq!(account.regions, ["ap-southeast-1"]);
        assert_eq!(account.sources, [Source::Dbss]);
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
    fn the_simulator_config_is_the_whole_account_without_an_id() {
        let since = NaiveDate::from_ymd_opt(2024, 3, 1).expect("date");
        let base = "http://127.0.0.1:8080";
        let text = simulator_config(since, base);
        assert_eq!(
            text,
            format!(
                "[account]\nprojects = \"all\"\nsince = \"2024-03-01\"\n\n[endpoints]\nnosql = \"{base}\"\ndbss = \"{base}\"\nimage = \"{base}\"\niam = \"{base}\"\n"
            )
        );
        let s = parse(&text);
        assert!(s.projects.is_empty(), "IAM names the projects");
        assert_eq!(
            s.endpoints.global.iam.as_ref().map(|u| u.as_str()),
            Some("http://127.0.0.1:8080/"),
            "IAM is the simulator's"
        );
        let account = s.account.expect("[account]");
        assert_eq!(account.sources, Source::ALL);
        assert!(account.regions.is_empty());
        assert_eq!(
            account.since.map(|t| t.to_rfc3339()),
            Some("2024-03-01T00:00:00+00:00".to_owned())
        );
    }
}
