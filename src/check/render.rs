//! The checklist `check` prints: one section per thing checked, `[ok]`,
//! `[warn]`, `[FAIL]` (with what to do), `[skip]` or `[note]` per line, then
//! the verdict.

use super::{DatabaseCheck, Discovery, Outcome, ProjectReport, Report};
use crate::config::service_names;
use crate::iam::{Answered, Found};
use crate::normalize::format_utc;
use crate::text::{for_terminal, redact_url_text};

const OK: &str = "[ok]  ";
const WARN: &str = "[warn]";
const FAIL: &str = "[FAIL]";
const SKIP: &str = "[skip]";
const NOTE: &str = "[note]";
const INDENT: &str = "         ";

/// The checklist, for stdout.
pub fn render(report: &Report) -> String {
    let mut out = Lines(String::new());
    configuration(&mut out, report);
    database(&mut out, report.database.as_ref());
    out.line("Credentials:".into());
    match &report.credentials {
        Ok(c) => out.line(format!("  {OK} {}", c.describe())),
        Err(e) => out.line(format!("  {FAIL} {e}")),
    }
    if report.config.settings.is_none() {
        out.line("Requests:".into());
        out.line(format!("  {SKIP} none made: fix the configuration first"));
    }
    discovery(&mut out, &report.discovery, &report.projects);
    for project in &report.projects {
        project_lines(&mut out, project);
    }
    out.line(String::new());
    if report.is_ready() {
        out.line("Ready: `jobtrail sync` will work with this setup.".into());
    } else {
        let n = report.problem_count().max(1);
        out.line(format!(
            "Not ready: {n} problem{} (the FAIL lines above). Fix, then run `jobtrail check` again.",
            if n == 1 { "" } else { "s" }
        ));
    }
    out.0
}

/// Where `sync` would write: a file (and whether it exists) or a server
/// (and whether it answered).
fn database(out: &mut Lines, database: Option<&DatabaseCheck>) {
    match database {
        None => {}
        Some(DatabaseCheck::File { path, exists }) => {
            out.line(format!("Database: {}", path.display()));
            out.line(format!(
                "  {OK} {}",
                if *exists {
                    "exists"
                } else {
                    "will be created by the first sync"
                }
            ));
        }
        Some(DatabaseCheck::Postgres { url, reached }) => {
            out.line(format!("Database: {url} (PostgreSQL)"));
            out.line(match reached {
                Ok(true) => format!("  {OK} reachable, jobtrail's tables are there"),
                Ok(false) => format!("  {OK} reachable; the first sync creates jobtrail's tables"),
                Err(e) => format!("  {FAIL} {e}"),
            });
        }
        Some(DatabaseCheck::Invalid(why)) => {
            out.line("Database:".into());
            out.line(format!("  {FAIL} {why}"));
        }
    }
}

struct Lines(String);

impl Lines {
    /// One line: what came from outside (an answer's message, a path, an ID)
    /// has its control characters escaped, so it stays one line.
    fn line(&mut self, text: String) {
        self.0.push_str(&for_terminal(&text));
        self.0.push('\n');
    }

    /// A `[FAIL]` line whose text (laid out by us) may run over several lines.
    fn fail(&mut self, text: &str) {
        let mut lines = text.lines();
        self.line(format!("  {FAIL} {}", lines.next().unwrap_or_default()));
        for more in lines {
            self.line(format!("{INDENT}{more}"));
        }
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The file: valid (and what it names) or every problem; then its notes.
fn configuration(out: &mut Lines, report: &Report) {
    out.line(format!("Configuration: {}", report.config.path.display()));
    if !report.config.problems.is_empty() {
        for problem in &report.config.problems {
            out.fail(&problem.to_string());
        }
        return;
    }
    let Some(settings) = &report.config.settings else {
        return;
    };
    let mut named = Vec::new();
    if !settings.projects.is_empty() {
        named.push(plural(settings.projects.len(), "project"));
    }
    if !settings.regional.is_empty() {
        let n = settings.regional.len();
        named.push(if named.is_empty() {
            format!("{} by region", plural(n, "project"))
        } else {
            format!("{n} by region")
        });
    }
    if settings.account.is_some() {
        named.push("the whole account".to_owned());
    }
    out.line(format!("  {OK} valid, {}", named.join(", ")));
    for note in &settings.notes {
        out.line(format!("  {NOTE} {note}"));
    }
}

/// What IAM said: each project found by region, the account's list and what
/// it skipped, lookups that failed.
fn discovery(out: &mut Lines, discovery: &Discovery, projects: &[ProjectReport]) {
    if !discovery.asked && discovery.problems.is_empty() {
        return;
    }
    out.line("Projects found through IAM:".into());
    for p in projects {
        let by = match &p.found {
            Found::ByRegion { endpoint, answered } => format!(
                "{} GET /v3/projects?name={}{}",
                origin(endpoint.as_str()),
                p.region,
                answered_note(answered)
            ),
            Found::Sdk(origin) => format!("from {origin}, IAM not asked"),
            Found::Configured | Found::Account { .. } => continue,
        };
        out.line(format!(
            "  {OK} region {}: project {} ({by})",
            p.region, p.id
        ));
    }
    if let Some(account) = &discovery.account {
        let synced = projects
            .iter()
            .filter(|p| matches!(p.found, Found::Account { .. }))
            .count();
        out.line(format!(
            "  {OK} account: {} listed by {} GET /v3/auth/projects{}, {} to sync",
            plural(account.listed, "project"),
            origin(account.endpoint.as_str()),
            answered_note(&account.answered),
            synced
        ));
        for s in &account.skipped {
            out.line(format!(
                "  {SKIP} {} ({}): {}",
                s.project.name, s.project.id, s.why
            ));
        }
    }
    for note in &discovery.notes {
        out.line(format!("  {NOTE} {note}"));
    }
    for problem in &discovery.problems {
        out.fail(problem);
    }
}

fn answered_note(answered: &Answered) -> String {
    match answered {
        Answered::Iam => String::new(),
        Answered::Cache(at) => format!(", answered {}", format_utc(*at)),
        Answered::Stale(at) => format!(", IAM failed: its answer of {}", format_utc(*at)),
    }
}

/// A project's heading and one line per source.
fn project_lines(out: &mut Lines, project: &ProjectReport) {
    let heading = match &project.name {
        Some(name) if name != &project.region => format!("{}, {name}", project.region),
        _ => project.region.clone(),
    };
    out.line(format!("Project {} ({heading}):", project.id));
    for p in &project.probes {
        let name = format!("{:<5}", p.source.as_str());
        match &p.outcome {
            Outcome::Ok(seen) => out.line(format!("  {OK} {name}  {}: {seen}", origin(&p.url))),
            Outcome::Warn(note) => out.line(format!("  {WARN} {name}  {}: {note}", origin(&p.url))),
            Outcome::Fail { what, fix } => {
                out.line(format!("  {FAIL} {name}  GET {}", redact_url_text(&p.url)));
                out.line(format!("{INDENT}{what}"));
                out.line(format!("{INDENT}fix: {fix}"));
            }
            Outcome::Skipped(why) => out.line(format!("  {SKIP} {name}  {why}")),
        }
    }
    if !project.absent.is_empty() {
        let names: Vec<&str> = project.absent.iter().map(|s| s.as_str()).collect();
        out.line(format!(
            "  {NOTE} {}  not called: {} has no {}",
            names.join(", "),
            project.region,
            service_names(&project.absent)
        ));
    }
}

/// `scheme://host:port` of a URL, for the short ok lines.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.origin().ascii_serialization())
}
