//! Hostile bytes on their way to a person: a cloud whose job names, IDs and
//! error messages hold terminal escape sequences, bidi overrides and line
//! breaks; endpoint URLs with credentials in them; values a spreadsheet would
//! run as formulas; cells of megabytes. Each runs the real CLI and checks what
//! reaches stdout and stderr.

use jobtrail::sim::{Fault, FaultRule, SimConfig};
use serde_json::json;

use crate::util::{Env, Run};

/// Everything a terminal could act on: SGR colours, OSC 52 (writes the
/// clipboard), OSC 0 (window title), backspace, CR and LF (a forged log line),
/// NUL, DEL, C1 CSI, a right-to-left override.
const HOSTILE: &str = "\u{1b}[31mred\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]0;owned\u{7}\u{8}\r\nWARN forged\0\u{7f}\u{9b}2J\u{202e}txt.exe";

/// How the start of [`HOSTILE`] must be shown: as visible escapes.
const SHOWN: &str = r"\x1b[31mred\x1b]52;c;ZXZpbA==\x07\x1b]0;owned\x07\x08\r\nWARN forged\x00\x7f\u{9b}2J\u{202e}txt.exe";

/// A character a terminal could act on (a line break of the output itself aside).
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn assert_terminal_safe(what: &str, text: &str) {
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| unsafe_char(c)) {
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(60)
            .map_or(0, |(i, _)| i);
        panic!(
            "{what}: raw {c:?} at byte {at}, after {:?}",
            &text[from..at]
        );
    }
}

fn assert_run_safe(what: &str, run: &Run) {
    assert_terminal_safe(&format!("{what} stdout"), &run.stdout);
    assert_terminal_safe(&format!("{what} stderr"), &run.stderr);
}

fn small_world(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 12,
        history_days: 10,
        dbss_resources: 1,
        dbss_jobs_per_resource: 1,
        image_jobs: 2,
        ..SimConfig::new(seed)
    }
}

/// An error body the way the services send theirs, with a hostile code and message.
fn hostile_error_body() -> String {
    json!({"error_code": "DBSS.\u{1b}[1m01", "error_msg": HOSTILE}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_job_names_and_ids_are_escaped_in_status_and_query() {
    let env = Env::start(small_world(181)).await;
    env.sim.edit_world(|world| {
        for project in world.projects.values_mut() {
            for job in &mut project.nosql {
                job.name = HOSTILE.to_owned();
                job.id = format!("{}\u{1b}[2J\u{202e}", job.id);
                job.status = "Running".to_owned();
                job.end = None;
                job.progress = "50%".to_owned();
            }
        }
    });
    env.jobtrail(&["sync"]).await.assert_code(0);

    let status = env.jobtrail(&["status"]).await;
    status.assert_code(0);
    assert_run_safe("status", &status);
    let still = status
        .stdout
        .lines()
        .find(|l| l.starts_with("Still running:"))
        .expect("a still-running line");
    assert!(still.contains(SHOWN), "{still}");
    assert!(
        still.contains(r"\x1b[2J\u{202e}"),
        "the ID is escaped: {still}"
    );

    let json = env.jobtrail(&["status", "--format", "json"]).await;
    json.assert_code(0);
    assert_run_safe("status --format json", &json);
    assert!(json.stdout.contains(r"\u202e"), "{}", json.stdout);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    assert_eq!(
        value["still_running"]["oldest"]["job_type"], HOSTILE,
        "JSON keeps the exact value"
    );

    let sql = "select job_type, job_id from jobs where source = 'nosql' limit 2";
    let table = env.jobtrail(&["query", sql]).await;
    table.assert_code(0);
    assert_run_safe("query table", &table);
    for format in ["json", "ndjson"] {
        let run = env.jobtrail(&["query", sql, "--format", format]).await;
        run.assert_code(0);
        assert_run_safe(format, &run);
        assert!(run.stdout.contains(r"\u202e"), "{}", run.stdout);
        let first = run
            .stdout
            .lines()
            .find(|l| l.contains("job_type"))
            .expect("a row");
        let row: serde_json::Value =
            serde_json::from_str(first.trim().trim_end_matches(',')).expect("valid JSON row");
        assert_eq!(row["job_type"], HOSTILE, "{format} keeps the exact value");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_error_message_is_escaped_once_in_sync_status_and_check() {
    let env = Env::start(small_world(182)).await;
    env.sim.add_fault(FaultRule::new(
        "/audit/instances",
        Fault::Body(400, hostile_error_body()),
    ));

    let sync = env.jobtrail(&["sync"]).await;
    sync.assert_code(3);
    assert_run_safe("sync", &sync);
    let mentions: Vec<&str> = sync
        .stderr
        .lines()
        .filter(|l| l.contains(r"\x1b]52;"))
        .collect();
    assert_eq!(mentions.len(), 1, "each warning once:\n{}", sync.stderr);
    assert!(mentions[0].contains(SHOWN), "{}", mentions[0]);
    assert!(
        mentions[0].contains(r"error code DBSS.\x1b[1m01"),
        "{}",
        mentions[0]
    );

    let status = env.jobtrail(&["status"]).await;
    assert_run_safe("status", &status);
    assert!(status.stdout.contains("HTTP 400"), "{}", status.stdout);

    let check = env.jobtrail(&["check"]).await;
    check.assert_code(1);
    assert_run_safe("check", &check);
    let fail = check
        .stdout
        .lines()
        .find(|l| l.contains("HTTP 400"))
        .unwrap_or_else(|| panic!("a FAIL explanation:\n{}", check.stdout));
    assert!(fail.contains(SHOWN), "{fail}");
}

/// Every stderr line of a JSON-log run is one JSON object, bidi and C1
/// controls escaped; returns them.
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    assert_terminal_safe("stderr", &run.stderr);
    run.stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", run.stderr))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_json_on_every_line_and_text_logs_say_each_thing_once() {
    let env = Env::start(small_world(183)).await;
    env.sim.add_fault(FaultRule::new(
        "/audit/instances",
        Fault::Body(400, hostile_error_body()),
    ));

    // A partial run: its warning is one JSON event.
    let partial = env.jobtrail(&["--log-format", "json", "sync"]).await;
    partial.assert_code(3);
    let lines = json_lines(&partial);
    let warnings: Vec<&serde_json::Value> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "{}", partial.stderr);
    let message = warnings[0]["message"].as_str().expect("a message");
    assert!(message.contains(SHOWN), "{message}");

    // A failed run: its final error is a JSON object too.
    env.sim
        .add_fault(FaultRule::new("/", Fault::Body(400, hostile_error_body())));
    let failed = env.jobtrail(&["--log-format", "json", "sync"]).await;
    failed.assert_code(1);
    let lines = json_lines(&failed);
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR", "{}", failed.stderr);
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed") && m.contains(SHOWN)),
        "{last}"
    );
    assert!(
        lines.iter().all(|l| l["timestamp"].is_string()),
        "{}",
        failed.stderr
    );

    // The same failure in text mode: each failure on one line, once; the final
    // error is one `error:` line.
    let text = env.jobtrail(&["sync"]).await;
    text.assert_code(1);
    assert_run_safe("text sync", &text);
    let lines: Vec<&str> = text.stderr.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", text.stderr);
    assert!(
        !lines.iter().any(|l| l.starts_with("warning: ")),
        "no second copy of the log's warnings:\n{}",
        text.stderr
    );
    let warned: Vec<&&str> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert!(!warned.is_empty(), "{}", text.stderr);
    let mut seen = std::collections::HashSet::new();
    for line in &warned {
        let message = line.split_once(" WARN ").map_or(**line, |(_, m)| m);
        assert!(seen.insert(message), "said twice: {message}");
        assert!(
            !errors[0].contains(message),
            "the final error repeats a warning:\n{}",
            text.stderr
        );
    }

    // A usage mistake under JSON logs is a JSON line as well.
    let usage = env
        .jobtrail(&["--log-format", "json", "query", "--no-such-flag"])
        .await;
    usage.assert_code(2);
    let lines = json_lines(&usage);
    assert_eq!(lines.len(), 1, "{}", usage.stderr);
    assert_eq!(lines[0]["level"], "ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_endpoint_urls_are_never_shown() {
    const USER: &str = "jobuser7";
    const PASSWORD: &str = "hunter2secret";
    let env = Env::start(small_world(184)).await;
    let base = env.sim.base_url();
    let with_userinfo = base.replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let project = "0123456789abcdef0123456789abcdef";
    let config = |endpoint: &str, extra: &str| {
        format!(
            "{extra}[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n[project.nosql]\n[project.dbss]\n[project.image]\n\n[endpoints]\nnosql = \"{endpoint}\"\ndbss = \"{endpoint}\"\nimage = \"{endpoint}\"\niam = \"{endpoint}\"\n"
        )
    };
    let write = |text: String| std::fs::write(env.config_path(), text).expect("config");
    let assert_hidden = |what: &str, run: &Run| {
        for secret in [USER, PASSWORD] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{what} shows {secret}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    };

    // A project the cloud does not know (404), and a retired API (404 APIGW.0101):
    // FAIL lines show the request and the endpoint.
    env.sim.add_fault(FaultRule::new(
        "/audit/instances",
        Fault::Body(
            404,
            json!({"error_code": "APIGW.0101", "error_msg": "The API does not exist"}).to_string(),
        ),
    ));
    write(config(&with_userinfo, ""));
    let check = env.jobtrail(&["check"]).await;
    check.assert_code(1);
    assert_hidden("check", &check);
    assert!(
        check.stdout.contains("GET http://***:***@127.0.0.1:"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("gateway at http://***:***@127.0.0.1:"),
        "{}",
        check.stdout
    );
    let sync = env.jobtrail(&["-vv", "sync"]).await;
    assert_hidden("sync -vv", &sync);

    // Nothing listens.
    write(config(&format!("http://{USER}:{PASSWORD}@127.0.0.1:1"), ""));
    let refused = env.jobtrail(&["check", "--timeout", "2"]).await;
    refused.assert_code(1);
    assert_hidden("check (refused)", &refused);
    assert!(refused.stdout.contains("***:***@"), "{}", refused.stdout);

    // A refused endpoint value is quoted back without its credentials.
    write(config(&format!("http://{USER}:{PASSWORD}@example.com"), ""));
    for args in [&["check"][..], &["sync"][..]] {
        let run = env.jobtrail(args).await;
        assert!(run.code != 0, "{args:?} refuses plain http");
        assert_hidden(&format!("{args:?} (config)"), &run);
        assert!(
            run.stdout.contains("http://***:***@example.com")
                || run.stderr.contains("http://***:***@example.com"),
            "{}{}",
            run.stdout,
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_is_exact_by_default_and_spreadsheet_safe_on_request() {
    let env = Env::start(small_world(185)).await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    let sql = "select '=HYPERLINK(\"http://evil.example\",\"click\")' as a, '@SUM(A1)' as b, \
               '-2+3' as c, 'plain' as d, -5 as n";

    let exact = env.jobtrail(&["query", sql, "--format", "csv"]).await;
    exact.assert_code(0);
    assert_eq!(
        exact.stdout.lines().nth(1),
        Some("\"=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",@SUM(A1),-2+3,plain,-5")
    );

    let safe = env
        .jobtrail(&["query", sql, "--format", "csv", "--spreadsheet-safe"])
        .await;
    safe.assert_code(0);
    assert_eq!(
        safe.stdout.lines().nth(1),
        Some("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",'@SUM(A1),'-2+3,plain,-5")
    );

    let wrong = env
        .jobtrail(&["query", sql, "--format", "json", "--spreadsheet-safe"])
        .await;
    wrong.assert_code(2);
    assert!(wrong.stderr.contains("--format csv"), "{}", wrong.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_of_huge_cells_stays_small() {
    let env = Env::start(small_world(186)).await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    // Six rows, each with a 5,000,000-character reason.
    let sql = "with n(i) as (select 1 union all select i + 1 from n where i < 6) \
               select i, replace(hex(zeroblob(2500000)), '00', 'xx') as reason from n";
    let table = env.jobtrail(&["query", sql]).await;
    table.assert_code(0);
    assert!(
        table.stdout.len() < 64 * 1024,
        "{} bytes of table",
        table.stdout.len()
    );
    assert_eq!(
        table.stdout.matches("…[+4998000 chars]").count(),
        6,
        "each cut says how much: {}",
        &table.stdout[..table.stdout.len().min(400)]
    );

    let csv = env
        .jobtrail(&["query", &format!("{sql} limit 1"), "--format", "csv"])
        .await;
    csv.assert_code(0);
    assert!(csv.stdout.len() > 5_000_000, "CSV keeps the whole value");
}
