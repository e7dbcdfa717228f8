//! The configuration half of `check`: every problem in a `jobtrail.toml` at
//! once, each with its line and key. The rules themselves are
//! [`Settings::parse`]'s (what `sync` runs); this walk only finds them all.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{
    ConfigError, EndpointOverrides, Lines, ProjectIds, SdkEnv, Settings, check_listed_id,
    parse_endpoint, parse_nosql_date, parse_region, parse_settled_recheck, shown,
};
use crate::init::{PROJECT_PLACEHOLDER, REGION_PLACEHOLDER};
use crate::model::Source;

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

/// Reads and checks the configuration file at `path`, with the SDKs'
/// endpoint variables of this process (as `sync` reads it).
pub fn check_config_file(path: &Path) -> ConfigReport {
    match std::fs::read_to_string(path) {
        Ok(text) => check_config_with(&text, path, &SdkEnv::from_process()),
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no configuration file at {}: write one with `jobtrail init --region REGION` (or `--account`), or name yours with --config PATH",
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
    check_config_with(text, path, &SdkEnv::default())
}

/// [`check_config`] with the SDKs' endpoint variables in `env`.
pub fn check_config_with(text: &str, path: &Path, env: &SdkEnv) -> ConfigReport {
    let mut problems = lint(text);
    let settings = match Settings::parse_with(text, path, env) {
        Ok(settings) => Some(settings),
        Err(e) => {
            let message = match e {
                ConfigError::Invalid { message, .. } => message,
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
        && s.require_projects().is_err()
        && problems.is_empty()
    {
        problems.push(Problem {
            line: None,
            message:
                "no [[project]] and no [account] is configured: add one (`jobtrail init` shows how)"
                    .into(),
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

/// Problems listed for the items of one ID list; the rest are counted in one
/// more line (a list of 300k bad IDs must not print 300k lines).
const MAX_ITEM_PROBLEMS: usize = 10;

struct Linter {
    lines: Lines,
    problems: Vec<Problem>,
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

impl Linter {
    fn at(&mut self, span: std::ops::Range<usize>, message: String) {
        let line = self.lines.at(span);
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

    /// A list of IDs: strings, each within the length limit [`Settings::parse`]
    /// applies. At most [`MAX_ITEM_PROBLEMS`] items are named, the rest counted.
    fn id_list(&mut self, name: &str, value: &Spanned<DeValue<'_>>) {
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(name, value, "a list of strings, e.g. [\"id-1\", \"id-2\"]");
            return;
        };
        let before = self.problems.len();
        let mut more = 0usize;
        for item in items.iter() {
            let problem = match item.get_ref().as_str() {
                None => Some(None),
                Some(id) => check_listed_id(name, id.trim()).err().map(Some),
            };
            let Some(problem) = problem else { continue };
            if self.problems.len() - before >= MAX_ITEM_PROBLEMS {
                more += 1;
                continue;
            }
            match problem {
                None => self.wrong_type(&format!("every item of {name}"), item, "a string"),
                Some(why) => self.at(item.span(), why),
            }
        }
        if more > 0 {
            self.at(
                value.span(),
                format!("{more} more items of {name} have the same kinds of problems"),
            );
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
        const TOP: [&str; 9] = [
            "database",
            "queries_dir",
            "metrics_file",
            "ping_url",
            "allow_insecure_endpoints",
            "project",
            "account",
            "endpoints",
            "dbss",
        ];
        let allow_insecure = doc
            .get("allow_insecure_endpoints")
            .and_then(|v| v.get_ref().as_bool())
            .unwrap_or(false);
        for entry in doc.iter() {
            let (key, value) = entry;
            match key.get_ref().as_ref() {
                "database" | "queries_dir" | "metrics_file" => {
                    self.string(key.get_ref(), value);
                }
                "ping_url" => {
                    if let Some(url) = self.string("ping_url", value)
                        && let Err(why) = crate::ping::PingUrl::parse(url)
                    {
                        // Not the value: it holds the check's secret.
                        self.at(value.span(), format!("ping_url: {why}"));
                    }
                }
                "allow_insecure_endpoints" => {
                    self.boolean("allow_insecure_endpoints", value);
                }
                "project" => self.projects(value),
                "account" => {
                    if let Some(table) = self.table("[account]", value) {
                        self.account(table);
                    }
                }
                "endpoints" => {
                    if let Some(table) = self.table("[endpoints]", value) {
                        self.endpoints(table, allow_insecure);
                    }
                }
                "dbss" => {
                    if let Some(table) = self.table("[dbss]", value) {
                        self.dbss_settings(table);
                    }
                }
                _ => self.unknown(entry, "", &TOP),
            }
        }
    }

    /// `[endpoints]`: service keys, and tables of a region's own endpoints.
    fn endpoints(&mut self, table: &DeTable<'_>, allow_insecure: bool) {
        for entry in table.iter() {
            let (key, value) = entry;
            let name = key.get_ref().as_ref();
            if EndpointOverrides::KEYS.contains(&name) {
                self.endpoint(&format!("endpoints.{name}"), value, allow_insecure);
                continue;
            }
            let is_region = parse_region(name).is_ok_and(|(r, _)| r == name);
            match value.get_ref().as_table() {
                Some(region) if is_region => {
                    for inner in region.iter() {
                        let (k, v) = inner;
                        if EndpointOverrides::KEYS.contains(&k.get_ref().as_ref()) {
                            self.endpoint(
                                &format!("endpoints.\"{name}\".{}", k.get_ref()),
                                v,
                                allow_insecure,
                            );
                        } else {
                            self.unknown(
                                inner,
                                &format!("endpoints.\"{name}\""),
                                &EndpointOverrides::KEYS,
                            );
                        }
                    }
                }
                _ => self.unknown(
                    entry,
                    "endpoints",
                    &[
                        "nosql",
                        "dbss",
                        "image",
                        "iam",
                        "a region's table such as [endpoints.\"cn-north-4\"]",
                    ],
                ),
            }
        }
    }

    fn endpoint(&mut self, name: &str, value: &Spanned<DeValue<'_>>, allow_insecure: bool) {
        if let Some(url) = self.string(name, value)
            && let Err(why) = parse_endpoint(url, allow_insecure)
        {
            let shown = crate::text::redact_url_text(url);
            self.at(value.span(), format!("{name} = {shown:?}: {why}"));
        }
    }

    /// `[account]`: `projects = "all"`, and the settings that narrow it.
    fn account(&mut self, table: &DeTable<'_>) {
        const KEYS: [&str; 4] = ["projects", "regions", "sources", "since"];
        for entry in table.iter() {
            let (key, value) = entry;
            match key.get_ref().as_ref() {
                "projects" => {
                    if let Some(v) = self.string("account.projects", value)
                        && v.trim() != "all"
                    {
                        self.at(
                            value.span(),
                            format!("account.projects = {v:?}: the only value is \"all\" (every enabled project of the account); name single projects with [[project]] instead"),
                        );
                    }
                }
                "regions" => self.string_list("account.regions", value),
                "sources" => self.account_sources(value),
                "since" => {
                    if let Some(since) = self.string("account.since", value)
                        && let Err(why) = parse_nosql_date(since)
                    {
                        let shown = shown(since);
                        self.at(value.span(), format!("account.since = {shown}: {why}"));
                    }
                }
                _ => self.unknown(entry, "account", &KEYS),
            }
        }
        if table.get("projects").is_none() {
            self.problems.push(Problem {
                line: None,
                message: "[account] has no `projects`: add `projects = \"all\"` under it".into(),
            });
        }
    }

    fn account_sources(&mut self, value: &Spanned<DeValue<'_>>) {
        self.string_list("account.sources", value);
        for item in value.get_ref().as_array().into_iter().flatten() {
            if let Some(name) = item.get_ref().as_str()
                && let Err(why) = name.parse::<Source>()
            {
                self.at(item.span(), format!("account.sources: {why}"));
            }
        }
    }

    /// The account-wide `[dbss]` table.
    fn dbss_settings(&mut self, table: &DeTable<'_>) {
        const KEYS: [&str; 1] = ["settled_recheck"];
        for entry in table.iter() {
            let (key, value) = entry;
            if !KEYS.contains(&key.get_ref().as_ref()) {
                self.unknown(entry, "dbss", &KEYS);
                continue;
            }
            if let Some(every) = self.string("dbss.settled_recheck", value)
                && let Err(why) = parse_settled_recheck(every)
            {
                self.at(
                    value.span(),
                    format!("dbss.settled_recheck = {every:?}: {why}"),
                );
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
        let mut seen = ProjectIds::default();
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
        seen: &mut ProjectIds,
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
        // The ID may be left out: IAM finds it from the region.
        if table.get("region").is_none() {
            self.at(
                span.clone(),
                format!(
                    "project #{number} has no `region`: add `region = \"…\"` under [[project]]"
                ),
            );
        }
        if !has_source {
            self.at(
                span,
                format!("project #{number} has no source table: add [project.nosql], [project.dbss] or [project.image] under it"),
            );
        }
    }

    /// The placeholder `init` writes gets its own message; the rest is
    /// [`ProjectIds`]'s to judge.
    fn project_id(&mut self, id: &str, span: std::ops::Range<usize>, seen: &mut ProjectIds) {
        if id.trim() == PROJECT_PLACEHOLDER {
            self.at(
                span,
                "project.id is still the placeholder from `jobtrail init`: put your project ID there (console → My Credentials → API Credentials → Projects)".into(),
            );
        } else if let Err(why) = seen.add(id) {
            self.at(span, why);
        }
    }

    /// The placeholder `init` writes gets its own message; the rest is
    /// [`parse_region`]'s to judge.
    fn region(&mut self, region: &str, span: std::ops::Range<usize>) {
        if region.trim() == REGION_PLACEHOLDER {
            self.at(
                span,
                "project.region is still the placeholder from `jobtrail init`: put the project's region there, e.g. \"cn-north-4\"".into(),
            );
        } else if let Err(why) = parse_region(region) {
            self.at(span, why);
        }
    }

    fn nosql(&mut self, table: &DeTable<'_>) {
        for entry in table.iter() {
            let (key, value) = entry;
            if key.get_ref() == "since" {
                if let Some(since) = self.string("project.nosql.since", value)
                    && let Err(why) = parse_nosql_date(since)
                {
                    self.at(
                        value.span(),
                        format!("project.nosql.since = {}: {why}", shown(since)),
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
                self.id_list(&name, value);
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
        lines: Lines::new(text),
        problems: Vec::new(),
    };
    if !errors.is_empty() {
        for e in errors {
            let line = e.span().map(|s| linter.lines.at(s));
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
        .expect("renders")
        .text;
        let report = check(&text);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.settings.is_some());
    }

    #[test]
    fn the_operations_keys_are_known_and_a_bad_ping_url_is_named_not_shown() {
        let project = "[[project]]\nid = \"p1\"\nregion = \"cn-north-4\"\n[project.nosql]\n";
        let good = format!(
            "metrics_file = \"/var/lib/node_exporter/jobtrail.prom\"\nping_url = \"https://hc-ping.com/0b7d\"\n{project}"
        );
        assert!(
            check(&good).problems.is_empty(),
            "{:?}",
            check(&good).problems
        );
        let bad = format!("metrics_file = 3\nping_url = \"ftp://host/0b7d-secret\"\n{project}");
        let m = messages(&check(&bad));
        assert!(
            m[0].contains("line 1:") && m[0].contains("metrics_file must be a string"),
            "{m:?}"
        );
        assert!(
            m[1].contains("line 2:") && m[1].contains("ping_url: unsupported scheme"),
            "{m:?}"
        );
        assert!(!m.iter().any(|m| m.contains("0b7d-secret")), "{m:?}");
    }

    #[test]
    fn the_region_placeholder_is_named_with_its_line() {
        let text = init_render(&InitOptions::default()).expect("renders").text;
        let report = check(&text);
        let m = messages(&report);
        assert_eq!(m.len(), 1, "{m:?}");
        let line_of = |needle: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .map(|i| i + 1)
                .expect("present")
        };
        assert_eq!(report.problems[0].line, Some(line_of(REGION_PLACEHOLDER)));
        assert!(
            m[0].contains("project.region is still the placeholder"),
            "{m:?}"
        );
        assert!(report.settings.is_none());
        // The ID placeholder of files written before is named too.
        let old = format!(
            "[[project]]\nid = \"{PROJECT_PLACEHOLDER}\"\nregion = \"cn-north-4\"\n[project.nosql]\n"
        );
        let m = messages(&check(&old));
        assert!(
            m.iter()
                .any(|p| p.contains("line 2: project.id is still the placeholder")),
            "{m:?}"
        );
    }

    #[test]
    fn accounts_and_region_tables_are_linted_like_the_rest() {
        let text = r#"[account]
projects = "some"
regions = "cn-north-4"
sources = ["nosql", "ecs"]
sinse = "2024-01-01"

[[project]]
region = "cn-north-4"
[project.nosql]

[endpoints."cn-north-4"]
nosql = "http://example.com"
nsql = "https://x.example"

[endpoints]
dbss = "https://dbss.example"
"cn north" = "x"
"#;
        let m = messages(&check(text));
        for (a, b) in [
            ("line 2:", "the only value is \"all\""),
            ("line 3:", "account.regions must be a list"),
            ("line 4:", "unknown source `ecs`"),
            ("line 5:", "unknown key `account.sinse`"),
            ("line 12:", "endpoints.\"cn-north-4\".nosql"),
            ("line 13:", "unknown key `endpoints.\"cn-north-4\".nsql`"),
            ("line 17:", "unknown key `endpoints.cn north`"),
        ] {
            assert!(
                m.iter().any(|x| x.contains(a) && x.contains(b)),
                "{a} {b} not in {m:#?}"
            );
        }
        assert!(
            !m.iter().any(|x| x.contains("no `id`")),
            "an ID may be left out: {m:#?}"
        );
        let fine = "[account]\nprojects = \"all\"\nregions = [\"eu-west-101\"]\nsources = [\"nosql\"]\nsince = \"2024-01-01\"\n\n[endpoints.\"eu-west-101\"]\nnosql = \"https://nosql.vpcep.example\"\n";
        let report = check(fine);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.settings.is_some_and(|s| s.account.is_some()));
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
id = "p3"

[endpoints]
nosql = "http://example.com"

[dbss]
settled_recheck = "sometimes"
recheck = "6h"
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
            ("no `region`", "project #3"),
            ("project #3 has no source table", ""),
            ("line 25:", "endpoints.nosql"),
            ("line 28:", "dbss.settled_recheck = \"sometimes\""),
            ("line 29:", "unknown key `dbss.recheck`"),
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
        assert!(messages(&report)[0].contains("no [[project]] and no [account]"));
    }

    /// Issue 18 item 13: removing repeated IDs compared each with all before
    /// it, so 300k `job_ids` took over a minute. Now linear.
    #[test]
    fn a_list_of_300k_job_ids_is_checked_and_its_repeats_dropped() {
        use std::fmt::Write as _;
        let n = 300_000;
        let mut text = String::with_capacity(n * 24 + 100);
        text.push_str("[[project]]\nid = \"p1\"\nregion = \"cn-north-4\"\n");
        text.push_str("[project.image]\njob_ids = [\n");
        for i in 0..n {
            // Every ID twice: the second half repeats the first.
            let _ = writeln!(text, "\"{:018}\",", i % (n / 2));
        }
        text.push_str("]\n");
        let report = check(&text);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let settings = report.settings.expect("valid");
        let ids = &settings.projects[0].image.as_ref().expect("image").job_ids;
        assert_eq!(ids.len(), n / 2);
        assert_eq!(ids[0], format!("{:018}", 0));
        assert_eq!(ids[n / 2 - 1], format!("{:018}", n / 2 - 1));
    }
}
