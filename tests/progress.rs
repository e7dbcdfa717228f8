//! Progress is for a person at a terminal: a sync whose stderr is a pipe or a
//! file (cron, CI, these tests) draws nothing at all, however long it runs and
//! however many projects it covers.

use std::time::Duration;

use jobtrail::sim::{DEFAULT_PROJECT, SimConfig};

use crate::util::Env;

/// What a drawn progress line would leave on stderr: terminal control
/// sequences, carriage returns, the spinner and the counts.
fn progress_marks(stderr: &str) -> Vec<&'static str> {
    const MARKS: [&str; 15] = [
        "\x1b[",
        "\r",
        "jobs stored",
        "NoSQL windows",
        "resources/jobs by ID",
        " left",
        "[=",
        "⠁",
        "⠂",
        "⠄",
        "⡀",
        "⢀",
        "⠠",
        "⠐",
        "⠈",
    ];
    MARKS.into_iter().filter(|m| stderr.contains(m)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_without_a_terminal_draws_no_progress() {
    let env = Env::start(SimConfig {
        projects: vec![
            DEFAULT_PROJECT.to_owned(),
            "7d2f6a1e9b0c4f3a8e5d1c2b3a4f5e6d".to_owned(),
        ],
        nosql_jobs: 150,
        // Long enough for the spinner to tick many times, were it drawn.
        latency: Duration::from_millis(15),
        ..SimConfig::new(71)
    })
    .await;
    // A first sync (windows, IDs) and an incremental one (re-checks too).
    for _ in 0..2 {
        let run = env.jobtrail(&["sync"]).await;
        run.assert_code(0);
        assert!(run.stdout.contains(" succeeded: "), "{}", run.stdout);
        let marks = progress_marks(&run.stderr);
        assert!(marks.is_empty(), "{marks:?} on stderr:\n{}", run.stderr);
    }
}
