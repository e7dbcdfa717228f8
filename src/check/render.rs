//! The checklist `check` prints: one section per thing checked, `[ok]`,
//! `[warn]`, `[FAIL]` (with what to do) or `[skip]` per line, then the verdict.

use super::{Outcome, Report};
use crate::text::{for_terminal, redact_url_text};

/// The checklist, for stdout. Each line is one line: what came from outside
/// (an answer's message, a path, an ID) has its control characters escaped.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&for_terminal(&text));
        out.push('\n');
    };
    const OK: &str = "[ok]  ";
    const WARN: &str = "[warn]";
    const FAIL: &str = "[FAIL]";
    const SKIP: &str = "[skip]";
    const INDENT: &str = "         ";

    line(format!("Configuration: {}", report.config.path.display()));
    if report.config.problems.is_empty() {
        let n = report
            .config
            .settings
            .as_ref()
            .map_or(0, |s| s.projects.len());
        line(format!(
            "  {OK} valid, {n} project{}",
            if n == 1 { "" } else { "s" }
        ));
    } else {
        for problem in &report.config.problems {
            let text = problem.to_string();
            let mut lines = text.lines();
            line(format!("  {FAIL} {}", lines.next().unwrap_or_default()));
            for more in lines {
                line(format!("{INDENT}{more}"));
            }
        }
    }
    if let Some((path, exists)) = &report.database {
        line(format!("Database: {}", path.display()));
        line(format!(
            "  {OK} {}",
            if *exists {
                "exists"
            } else {
                "will be created by the first sync"
            }
        ));
    }
    line("Credentials:".into());
    match &report.credentials {
        Ok(c) => line(format!("  {OK} {}", c.describe())),
        Err(e) => line(format!("  {FAIL} {e}")),
    }
    if report.config.settings.is_none() {
        line("Requests:".into());
        line(format!("  {SKIP} none made: fix the configuration first"));
    }
    for (id, region, probes) in &report.projects {
        line(format!("Project {id} ({region}):"));
        for p in probes {
            let name = format!("{:<5}", p.source.as_str());
            match &p.outcome {
                Outcome::Ok(seen) => line(format!("  {OK} {name}  {}: {seen}", origin(&p.url))),
                Outcome::Warn(note) => line(format!("  {WARN} {name}  {}: {note}", origin(&p.url))),
                Outcome::Fail { what, fix } => {
                    line(format!("  {FAIL} {name}  GET {}", redact_url_text(&p.url)));
                    line(format!("{INDENT}{what}"));
                    line(format!("{INDENT}fix: {fix}"));
                }
                Outcome::Skipped(why) => line(format!("  {SKIP} {name}  {why}")),
            }
        }
    }
    line(String::new());
    if report.is_ready() {
        line("Ready: `jobtrail sync` will work with this setup.".into());
    } else {
        let n = report.problem_count().max(1);
        line(format!(
            "Not ready: {n} problem{} (the FAIL lines above). Fix, then run `jobtrail check` again.",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}

/// `scheme://host:port` of a URL, for the short ok lines.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.origin().ascii_serialization())
}
