//! `jobtrail simulate`: the configuration it prints names no project ID (the
//! whole account, found through the simulator's IAM), and pasted as it is
//! into a `jobtrail.toml` it syncs every project's jobs from the running
//! simulator, signatures checked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::run_cli;

const AK: &str = "HPUASIMULATEAKID0042";
const SK: &str = "sk-simulate-3c2b1a09f8e7";
const KEYS: [(&str, &str); 2] = [("HUAWEICLOUD_SDK_AK", AK), ("HUAWEICLOUD_SDK_SK", SK)];

/// NoSQL jobs per project the simulator is asked for.
const JOBS: usize = 40;

/// A `jobtrail simulate` process of this test's, stopped when dropped.
struct Simulator {
    child: Child,
    /// What it printed up to the end of the configuration.
    printed: Vec<String>,
}

impl Simulator {
    /// Starts `jobtrail simulate ARGS` on an ephemeral loopback port, with
    /// only `KEYS` as credentials, and reads what it prints about itself.
    fn start(args: &[&str]) -> Simulator {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtrail"));
        cmd.arg("simulate")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("HUAWEICLOUD_SDK_")
                || key.starts_with("CLOUD_SDK_")
                || key.starts_with("JOBTRAIL_")
            {
                cmd.env_remove(key);
            }
        }
        cmd.envs(KEYS);
        let child = cmd.spawn().expect("start jobtrail simulate");
        let mut simulator = Simulator {
            child,
            printed: Vec::new(),
        };
        let stdout = simulator.child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The configuration ends with the IAM endpoint; a few dozen lines at most.
        for _ in 0..60 {
            let line = lines
                .next()
                .expect("simulate stopped before printing its configuration")
                .expect("read stdout");
            let last = line.starts_with("iam = ");
            simulator.printed.push(line);
            if last {
                return simulator;
            }
        }
        panic!("no configuration in:\n{}", simulator.printed.join("\n"));
    }

    /// The configuration: from its `# a jobtrail.toml` line to the end.
    fn config(&self) -> String {
        let start = self
            .printed
            .iter()
            .position(|l| l.starts_with("# a jobtrail.toml"))
            .expect("a configuration");
        self.printed[start..].join("\n") + "\n"
    }

    /// The project IDs it listed, with their IAM names.
    fn listed_projects(&self) -> BTreeMap<String, String> {
        self.printed
            .iter()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("  "))
            .map(|l| {
                let (id, name) = l.split_once("  ").expect("ID  name");
                (id.to_owned(), name.to_owned())
            })
            .collect()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_config_names_no_project_and_syncs_the_whole_simulated_account() {
    let jobs = JOBS.to_string();
    let sim = tokio::task::spawn_blocking(move || {
        Simulator::start(&["--require-auth", "--jobs", &jobs, "--days", "20"])
    })
    .await
    .expect("simulator thread");
    let config = sim.config();
    let projects = sim.listed_projects();
    assert_eq!(
        projects.values().map(String::as_str).collect::<Vec<_>>(),
        ["cn-north-4", "cn-north-4_project1"],
        "{:?}",
        sim.printed
    );
    assert!(
        config.contains("[account]\nprojects = \"all\"\n"),
        "{config}"
    );
    assert!(
        !config.contains("id =") && projects.keys().all(|id| !config.contains(id.as_str())),
        "no project ID to copy:\n{config}"
    );

    // Pasted as printed, then synced with the credentials the simulator checks.
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("jobtrail.toml");
    std::fs::write(&config_path, &config).expect("write config");
    let db = dir.path().join("jobtrail.db").display().to_string();
    let cli = |args: &[&str]| {
        let mut full = vec![
            "--db".to_owned(),
            db.clone(),
            "--config".to_owned(),
            config_path.display().to_string(),
        ];
        full.extend(args.iter().map(|a| (*a).to_owned()));
        let env = KEYS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        run_cli(dir.path().to_path_buf(), full, env)
    };
    let run = cli(&["sync"]).await;
    run.assert_code(0);

    let rows = cli(&[
        "query",
        "SELECT project_id, source, COUNT(*) AS n FROM jobs GROUP BY 1, 2",
        "--format",
        "json",
    ])
    .await;
    rows.assert_code(0);
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for row in crate::util::parse_rows(&rows.stdout) {
        let project = crate::util::text(&row, "project_id").expect("project");
        let source = crate::util::text(&row, "source").expect("source");
        counts.insert((project, source), crate::util::int(&row, "n"));
    }
    let stored: BTreeSet<&String> = counts.keys().map(|(p, _)| p).collect();
    assert_eq!(
        stored,
        projects.keys().collect(),
        "every listed project, found through IAM"
    );
    for id in projects.keys() {
        assert_eq!(
            counts.get(&(id.clone(), "nosql".to_owned())),
            Some(&(JOBS as i64)),
            "{id}: every NoSQL job"
        );
        for source in ["dbss", "image"] {
            assert!(
                counts
                    .get(&(id.clone(), source.to_owned()))
                    .is_some_and(|&n| n > 0),
                "{id}: {source} jobs in {counts:?}"
            );
        }
    }
    drop(sim);
}
