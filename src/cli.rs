//! Command-line arguments as typed (clap derive). Resolution into settings
//! happens in [`crate::config`] (`Locations`), never here.
// The doc comments below are clap's `--help` text, not rustdoc: brackets in them
// such as `[,query=TEXT]` are usage syntax, not links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::DatabaseArg;
use crate::model::Source;

#[derive(Debug, Parser)]
#[command(
    name = "jobtrail",
    version = crate::app::VERSION,
    about = "A local, queryable SQLite history of Huawei Cloud asynchronous jobs",
    long_about = "jobtrail pulls the GaussDB(for NoSQL) task list, DBSS audit-instance jobs and Workspace \
image-server jobs into one SQLite database, so job history and failure reasons can be answered with SQL.",
    after_help = "Examples:\n  jobtrail demo                      # try it against the built-in simulated cloud\n  jobtrail init --project 0549b4a43100d4f32f51c01c2fe4acdb --region cn-north-4 && jobtrail check\n  jobtrail sync                      # pull new jobs (reads ./jobtrail.toml)\n  jobtrail query recent-failures     # a saved report"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Database: a SQLite file (or sqlite:PATH), or a postgres://user@host/db URL [default: from the config file, else ./jobtrail.db]
    #[arg(
        long,
        global = true,
        env = "JOBTRAIL_DB",
        value_name = "PATH|URL",
        hide_env_values = true
    )]
    pub db: Option<DatabaseArg>,
    /// Configuration file [default: ./jobtrail.toml when present]
    #[arg(long, global = true, env = "JOBTRAIL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); JOBTRAIL_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output: -q hides the summary line and warnings, errors still show
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull job history from the cloud into the database
    #[command(
        after_help = "Examples:\n  jobtrail sync                                  # incremental: new jobs + re-check unfinished ones\n  jobtrail sync --source nosql --since 2024-01-01  # backfill NoSQL history from a date\n  jobtrail sync --full                           # re-read everything in range\n  jobtrail --db postgres://jobtrail@db/jobtrail sync --shard 2/3  # host 2 of 3 sharing one database\n  jobtrail -q sync --print-failures --metrics-file /var/lib/prometheus/node-exporter/jobtrail.prom\n\nExit codes: 0 all synced, 1 error (nothing synced), 2 usage error, 3 partial (some failed, the rest stored)."
    )]
    Sync(SyncArgs),
    /// Run SQL, or a saved query by name, on the database (read-only)
    #[command(
        after_help = "Examples:\n  jobtrail query recent-failures --param limit=20\n  jobtrail query 'select source, status, count(*) from jobs group by 1, 2' --format csv\n  jobtrail query stuck-jobs -p hours=6 --format json\n  jobtrail query -f my-report.sql -p since=2024-01-01"
    )]
    Query(QueryArgs),
    /// List the saved queries with their descriptions and parameters
    #[command(
        after_help = "Examples:\n  jobtrail queries\n  jobtrail queries --queries-dir ./my-queries"
    )]
    Queries(QueriesArgs),
    /// Last sync runs, watermarks, job counts by source and status
    #[command(
        after_help = "Examples:\n  jobtrail status\n  jobtrail status --format json | jq .still_running"
    )]
    Status(StatusArgs),
    /// Write a self-contained HTML report: failure trends, reasons, durations
    #[command(
        after_help = "Examples:\n  jobtrail report                                  # writes jobtrail-report.html\n  jobtrail report --since 2024-01-01 -o q1.html\n  jobtrail report --source nosql --source dbss"
    )]
    Report(ReportArgs),
    /// Start the simulated cloud on loopback, sync it into a database and print a short report
    #[command(
        after_help = "Examples:\n  jobtrail demo                       # writes ./jobtrail-demo.db\n  jobtrail demo --db /tmp/demo.db\n  sqlite3 jobtrail-demo.db 'select source, status, count(*) from jobs group by 1, 2'"
    )]
    Demo(DemoArgs),
    /// Serve the simulated cloud on an address until stopped (Ctrl-C)
    #[command(
        after_help = "Examples:\n  jobtrail simulate --listen 127.0.0.1:8080\n  jobtrail simulate --jobs 100000 --latency-ms 50 --rate-limit 50\n  jobtrail simulate --fault-rate 0.05 --seed 7\n  jobtrail simulate --fault 503,path=/jobs,query=offset=50,times=3 --fault invalid-json,path=/audit/"
    )]
    Simulate(SimulateArgs),
    /// Copy a whole history (jobs, status changes, runs and their scopes, state) between databases, SQLite or PostgreSQL
    #[command(
        after_help = "Examples:\n  jobtrail copy --from jobtrail.db --to postgres://jobtrail@db.example/jobtrail  # move up\n  jobtrail copy --from postgres://reader@db.example/jobtrail --to backup.db      # take a copy\n  jobtrail copy --from laptop.db --to postgres://jobtrail@db.example/jobtrail --merge\n\nCopying again copies only what is new (running it twice changes nothing). A target that holds a\ndifferent history (sync runs the source does not have) is refused unless --merge is given.\nExit codes: 0 copied, 1 error (nothing copied), 2 usage error."
    )]
    Copy(CopyArgs),
    /// Write a commented jobtrail.toml to start from
    #[command(
        after_help = "Examples:\n  jobtrail init --region cn-north-4                     # the project ID comes from IAM\n  jobtrail init --account                               # every project of the account\n  jobtrail init --account --region ap-southeast-1 --source nosql\n  jobtrail init --project 0549b4a43100d4f32f51c01c2fe4acdb --region cn-north-4\n  jobtrail init --source nosql --source dbss -o /etc/jobtrail/jobtrail.toml  # fill in the region\n  jobtrail init --region cn-north-4 --endpoint http://127.0.0.1:8080   # `jobtrail simulate`\n\nWithout --region (or --account) the file gets a marked placeholder that `jobtrail check` flags.\nA source the region does not offer is written commented out, with a note.\nExit codes: 0 written, 1 the file exists (add --force) or cannot be written, 2 usage error."
    )]
    Init(InitArgs),
    /// Check the configuration, the credentials and one request per source, without syncing
    #[command(
        after_help = "Examples:\n  jobtrail check\n  jobtrail --config /etc/jobtrail/jobtrail.toml check\n  jobtrail check --timeout 30 && jobtrail sync\n\nExit codes: 0 everything is ready to sync, 1 something needs fixing (see the FAIL lines), 2 usage error."
    )]
    Check(CheckArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  jobtrail completions bash > ~/.local/share/bash-completion/completions/jobtrail\n  jobtrail completions zsh > ~/.zfunc/_jobtrail     # with fpath+=~/.zfunc before compinit\n  jobtrail completions fish > ~/.config/fish/completions/jobtrail.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project ID (console: My Credentials → API Credentials → Projects) [default: found through IAM from the region]
    #[arg(long, value_name = "ID", conflicts_with = "account")]
    pub project: Option<String>,
    /// Region of the project, e.g. cn-north-4; with --account, the only region to sync [default: a placeholder to fill in; with --account, every region]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Sync every enabled project of the account (listed through IAM), each with the sources its region offers
    #[arg(long)]
    pub account: bool,
    /// Sources to turn on (repeatable); the others are written commented out [default: all three, where the region offers them]
    #[arg(long = "source", value_name = "SOURCE", value_parser = parse_source)]
    pub sources: Vec<Source>,
    /// Point every API at this base URL instead of the region's public endpoints (a VPC endpoint, a proxy, `jobtrail simulate`)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Replace the file if it exists
    #[arg(long)]
    pub force: bool,
    /// Where to write [default: --config if given, else ./jobtrail.toml]
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The database to copy from: a SQLite file (or sqlite:PATH) or a postgres:// URL; only read
    #[arg(long, value_name = "PATH|URL")]
    pub from: DatabaseArg,
    /// The database to copy into (created and set up if needed)
    #[arg(long, value_name = "PATH|URL")]
    pub to: DatabaseArg,
    /// Merge into a target that holds another history (its runs are kept; the source's are added)
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Seconds to wait for each test request
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only these sources (repeatable) [default: every configured source]
    #[arg(long = "source", value_name = "SOURCE", value_parser = parse_source)]
    pub sources: Vec<Source>,
    /// Only these project IDs (repeatable) [default: every configured project]
    #[arg(long = "project", value_name = "ID")]
    pub projects: Vec<String>,
    /// Only the I-th of N shares of the configured projects (by a hash of each project ID), so N hosts split an account: 1/3, 2/3 and 3/3
    #[arg(long, value_name = "I/N", conflicts_with = "projects", value_parser = parse_shard)]
    pub shard: Option<crate::config::Shard>,
    /// Start of the NoSQL range to (re-)read: 2024-01-31 or 2024-01-31T08:00:00Z [default: the watermark]
    #[arg(long, value_name = "DATE|DATETIME", value_parser = parse_when)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// End of the NoSQL range [default: now]
    #[arg(long, value_name = "DATE|DATETIME", value_parser = parse_when)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Re-read everything in range, including jobs already final
    #[arg(long)]
    pub full: bool,
    /// After every run, failed ones included, write Prometheus metrics to this file (for
    /// node_exporter's textfile collector) [default: metrics_file in the config]
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Ping a healthchecks-style URL: URL/start at the start, URL on success, URL/fail otherwise,
    /// with the summary line as the body [default: ping_url in the config]
    #[arg(
        long,
        value_name = "URL",
        env = "JOBTRAIL_PING_URL",
        hide_env_values = true,
        value_parser = crate::ping::PingUrl::parse
    )]
    pub ping_url: Option<crate::ping::PingUrl>,
    /// After the summary, print one line per job that became failed in this run (also at -q, so
    /// cron's mail carries them; nothing when none did)
    #[arg(long)]
    pub print_failures: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Inline SQL, or the name of a saved query (see `jobtrail queries`)
    #[arg(value_name = "SQL|NAME", required_unless_present = "file")]
    pub sql: Option<String>,
    /// Read the SQL from a file
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A named parameter for :NAME in the SQL (repeatable)
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = crate::query::parse_param)]
    pub params: Vec<(String, String)>,
    /// Output format [default: table]
    #[arg(long, value_enum, default_value_t = crate::output::Format::Table)]
    pub format: crate::output::Format,
    /// With --format csv: prefix text starting with = + - @ tab or CR with ' so
    /// a spreadsheet shows it instead of running it as a formula
    #[arg(long)]
    pub spreadsheet_safe: bool,
    /// Extra saved queries (*.sql), overriding built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub queries_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueriesArgs {
    /// Extra saved queries (*.sql), overriding built-in ones of the same name
    #[arg(long, value_name = "DIR")]
    pub queries_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Jobs from this date (YYYY-MM-DD or a date-time, UTC)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Jobs up to this date (a date includes that whole day)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only these sources (repeatable)
    #[arg(long = "source", value_name = "SOURCE", value_parser = parse_source)]
    pub sources: Vec<Source>,
    /// Where to write the page
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "jobtrail-report.html"
    )]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the simulated history
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Seed of the simulated history (same seed, same jobs)
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// NoSQL jobs per project
    #[arg(long, default_value_t = 2000)]
    pub jobs: usize,
    /// Days of history the NoSQL jobs are spread over
    #[arg(long, default_value_t = 120)]
    pub days: u32,
    /// Milliseconds added to every response
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests per second above which the simulator answers 429
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Probability (0–1) of a transient fault (5xx or 429) on any request
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Answer the legacy DBSS jobs path as the gateway does for a removed API
    #[arg(long)]
    pub retire_legacy_dbss: bool,
    /// Probability (0–1) that a running job becomes final each time it is served
    #[arg(long, default_value_t = 0.0)]
    pub flip_rate: f64,
    /// Inject a fault (repeatable): KIND[,path=TEXT][,query=TEXT][,times=N].
    /// KIND: 429, 429-no-retry-after, 500, 502, 503, 504, reset, hang=SECS, truncated,
    /// invalid-json, wrong-shape, html, wrong-content-type, oversized=BYTES, latency=MS,
    /// changing-total. path/query match substrings of the request path / raw query.
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    pub faults: Vec<crate::sim::FaultRule>,
    /// Require the credentials found in the environment (AK/SK signatures or token), as the cloud does
    #[arg(long)]
    pub require_auth: bool,
}

/// Parses `--fault KIND[,path=TEXT][,query=TEXT][,times=N]`.
fn parse_fault(spec: &str) -> Result<crate::sim::FaultRule, String> {
    use std::time::Duration;

    use crate::sim::{Fault, FaultRule};
    let mut parts = spec.split(',');
    let kind = parts.next().unwrap_or_default().trim();
    let (name, value) = kind
        .split_once('=')
        .map_or((kind, None), |(k, v)| (k, Some(v)));
    let number = |what: &str| -> Result<u64, String> {
        value
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("fault `{name}` needs a number: {name}={what}"))
    };
    let fault = match name {
        "429" => Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        "429-no-retry-after" => Fault::TooManyRequests {
            retry_after_secs: None,
        },
        "500" | "502" | "503" | "504" => {
            Fault::Status(name.parse().map_err(|_| "bad status".to_owned())?)
        }
        "reset" => Fault::ConnectionReset,
        "hang" => Fault::Hang(Duration::from_secs(number("SECS")?)),
        "truncated" => Fault::Truncated,
        "invalid-json" => Fault::InvalidJson,
        "wrong-shape" => Fault::WrongShape,
        "html" => Fault::HtmlPage,
        "wrong-content-type" => Fault::WrongContentType,
        "oversized" => {
            Fault::Oversized(usize::try_from(number("BYTES")?).map_err(|e| e.to_string())?)
        }
        "latency" => Fault::Latency(Duration::from_millis(number("MS")?)),
        "changing-total" => Fault::ChangingTotal,
        other => return Err(format!("unknown fault kind `{other}` (see --help)")),
    };
    let mut rule = FaultRule::new("", fault);
    for part in parts {
        match part.trim().split_once('=') {
            Some(("path", v)) => rule.path_contains = v.to_owned(),
            Some(("query", v)) => rule.query_contains = Some(v.to_owned()),
            Some(("times", v)) => {
                rule = rule.times(
                    v.parse()
                        .map_err(|_| format!("times={v} is not a number"))?,
                );
            }
            _ => return Err(format!("`{part}` is not path=…, query=… or times=…")),
        }
    }
    Ok(rule)
}

fn parse_shard(s: &str) -> Result<crate::config::Shard, String> {
    s.parse()
}

fn parse_source(s: &str) -> Result<Source, String> {
    s.parse()
}

/// `sync --since/--until`: bounds of the NoSQL range.
fn parse_when(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::config::parse_nosql_date(s)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_fault;
    use crate::sim::Fault;

    #[test]
    fn fault_specs_parse_with_their_matchers() {
        let rule = parse_fault("503,path=/jobs,query=offset=50,times=3").expect("parses");
        assert_eq!(rule.fault, Fault::Status(503));
        assert_eq!(rule.path_contains, "/jobs");
        assert_eq!(rule.query_contains.as_deref(), Some("offset=50"));
        assert_eq!(rule.times, Some(3));
        let rule = parse_fault("hang=40").expect("hang");
        assert_eq!(
            (rule.fault, rule.times),
            (Fault::Hang(Duration::from_secs(40)), None)
        );
        assert_eq!(
            parse_fault("429-no-retry-after").expect("429").fault,
            Fault::TooManyRequests {
                retry_after_secs: None
            }
        );
    }

    #[test]
    fn bad_fault_specs_say_what_is_wrong() {
        assert!(
            parse_fault("teapot")
                .expect_err("kind")
                .contains("unknown fault kind `teapot`")
        );
        assert!(parse_fault("hang").expect_err("secs").contains("hang=SECS"));
        assert!(
            parse_fault("500,times=x")
                .expect_err("times")
                .contains("times=x")
        );
        assert!(
            parse_fault("500,colour=red")
                .expect_err("key")
                .contains("colour=red")
        );
    }
}
