//! Hostile places and odd input on the command line (issue 18): files planted
//! in a folder others can write to, special files as `report -o`, a read-only
//! query that would create a file, dates at the edges of the calendar. Each
//! test sets the trap in a temporary folder and runs the real CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use jobtrail::sim::SimConfig;
use jobtrail::store::Store;

use crate::util::{Env, Run, run_cli};

const VICTIM: &str = "someone else's file: must not change\n";

/// An empty jobtrail database in a folder of its own under `dir` (its WAL
/// files then stay out of the folder a test watches).
async fn empty_db(dir: &Path) -> PathBuf {
    let folder = dir.join("db");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let path = folder.join("jobtrail.db");
    Store::open(&path)
        .await
        .expect("create database")
        .close()
        .await;
    path
}

/// Runs the CLI in `dir` on the database `db`.
async fn cli(dir: &Path, db: &Path, args: &[&str]) -> Run {
    let mut full = vec!["--db".to_owned(), db.display().to_string()];
    full.extend(args.iter().map(|s| (*s).to_owned()));
    run_cli(dir.to_path_buf(), full, Vec::new()).await
}

/// A file the attacker wants overwritten, outside the folder being written.
fn victim(dir: &Path) -> PathBuf {
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, VICTIM).expect("write victim");
    victim
}

fn plant_symlink(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).expect("plant symlink");
}

fn mkfifo(at: &Path) {
    let status = Command::new("mkfifo").arg(at).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", at.display());
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
    let env = Env::start(SimConfig::new(3)).await;
    let victim = victim(env.dir.path());
    let lock = env.dir.path().join("jobtrail.db.lock");
    plant_symlink(&victim, &lock);
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&lock.display().to_string()) && run.stderr.contains("symbolic link"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), VICTIM);
    assert_eq!(env.sim.request_count(), 0, "nothing requested");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_and_init_never_write_through_a_planted_tmp_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = empty_db(dir.path()).await;
    let victim = victim(dir.path());
    let report = dir.path().join("report.html");
    plant_symlink(&victim, &dir.path().join("report.html.tmp"));
    cli(dir.path(), &db, &["report", "-o", "report.html"])
        .await
        .assert_code(0);
    assert!(
        std::fs::read_to_string(&report)
            .expect("report")
            .contains("<!DOCTYPE html>")
    );
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), VICTIM);

    let config = dir.path().join("jobtrail.toml");
    std::fs::write(&config, "# old\n").expect("write");
    plant_symlink(&victim, &dir.path().join("jobtrail.toml.tmp"));
    let run = cli(
        dir.path(),
        &db,
        &[
            "init",
            "--force",
            "-o",
            "jobtrail.toml",
            "--project",
            "p1",
            "--region",
            "cn-north-4",
        ],
    )
    .await;
    run.assert_code(0);
    assert!(
        std::fs::read_to_string(&config)
            .expect("config")
            .contains("\"p1\"")
    );
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), VICTIM);
    // Only the files written and the planted links: no temporary file is left.
    assert_eq!(
        names_in(dir.path()),
        [
            "db",
            "jobtrail.toml",
            "jobtrail.toml.tmp",
            "outside",
            "report.html",
            "report.html.tmp"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_writes_into_a_pipe_and_to_stdout_without_replacing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = empty_db(dir.path()).await;
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    // A pipe no one reads is refused, not waited on forever.
    let run = cli(dir.path(), &db, &["report", "-o", "pipe"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("no one is reading"), "{}", run.stderr);
    assert!(is_fifo(&fifo), "the pipe is still a pipe");
    // Held open for reading and writing, the pipe has a reader from the start;
    // once it is closed, the reader thread sees the end of the page.
    let keeper = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("keeper");
    // Opened here, while the keeper is a writer, so it never waits.
    let mut read_end = std::fs::File::open(&fifo).expect("read end");
    let reader = std::thread::spawn(move || {
        let mut html = String::new();
        std::io::Read::read_to_string(&mut read_end, &mut html).expect("read the pipe");
        html
    });
    let run = cli(dir.path(), &db, &["report", "-o", "pipe"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.is_empty(),
        "nothing after a page sent to a stream"
    );
    // Checked before waiting for the reader: had the pipe been replaced, the
    // reader would wait for a writer forever.
    assert!(is_fifo(&fifo), "the pipe is still a pipe");
    drop(keeper);
    let html = reader.join().expect("reader");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));

    let run = cli(dir.path(), &db, &["report", "-o", "-"]).await;
    run.assert_code(0);
    assert!(run.stdout.starts_with("<!DOCTYPE html>"), "{}", run.stdout);
    assert!(!run.stdout.contains("wrote"), "data only on stdout");
    assert!(!dir.path().join("-").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn report_refuses_a_folder_or_a_link_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = empty_db(dir.path()).await;
    std::fs::create_dir(dir.path().join("somefolder")).expect("mkdir");
    let victim = victim(dir.path());
    plant_symlink(&victim, &dir.path().join("link.html"));
    let before = names_in(dir.path());

    let run = cli(dir.path(), &db, &["report", "-o", "somefolder"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("somefolder") && run.stderr.contains("is a folder"),
        "{}",
        run.stderr
    );
    let run = cli(dir.path(), &db, &["report", "-o", "link.html"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("link.html") && run.stderr.contains("symbolic link"),
        "{}",
        run.stderr
    );
    assert_eq!(names_in(dir.path()), before, "no temporary file left");
    assert!(names_in(&dir.path().join("somefolder")).is_empty());
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), VICTIM);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_query_creates_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = empty_db(dir.path()).await;
    let copy = dir.path().join("copy.db");
    for sql in [
        format!("VACUUM INTO '{}'", copy.display()),
        format!("ATTACH DATABASE '{}' AS other", copy.display()),
    ] {
        let run = cli(dir.path(), &db, &["query", &sql]).await;
        run.assert_code(1);
        assert!(
            run.stderr.contains("refused before it touched any file"),
            "{sql}: {}",
            run.stderr
        );
        assert!(!copy.exists(), "{sql} created {}", copy.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nosql_dates_before_the_service_are_refused_not_silently_empty() {
    let env = Env::start(SimConfig::new(3)).await;
    let project = env.world().projects.keys().next().expect("project").clone();
    env.write_config(&format!(
        "[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n\n[project.nosql]\nsince = \"0001-01-01\"\n"
    ));
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("line 6")
            && run.stderr.contains("project.nosql.since")
            && run.stderr.contains("2000-01-01 to 9999-12-31"),
        "{}",
        run.stderr
    );
    env.write_config(&format!(
        "[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n\n[project.nosql]\n"
    ));
    let run = env.jobtrail(&["sync", "--since", "1600-01-01"]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains("--since") && run.stderr.contains("2000-01-01 to 9999-12-31"),
        "{}",
        run.stderr
    );
    assert_eq!(env.sim.request_count(), 0, "nothing requested");
}
