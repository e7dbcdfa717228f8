//! Authentication as the official SDKs do it, against a simulator that checks
//! every signature, and proof that no secret leaves the process.

use jobtrail::sim::{SimAuth, SimConfig};

use crate::util::{Env, TOKEN};

const AK: &str = "HPUAEXAMPLEAKID00042";
const SK: &str = "sk-9f8e7d6c5b4a39281706ffeeddccbbaa";
const SECURITY_TOKEN: &str = "st-temporary-credential-4c1d2e3f5a6b";

fn aksk() -> SimAuth {
    SimAuth::AkSk {
        ak: AK.into(),
        sk: SK.into(),
        security_token: Some(SECURITY_TOKEN.into()),
    }
}

fn small() -> SimConfig {
    SimConfig {
        nosql_jobs: 120,
        ..SimConfig::new(41)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_with_signed_requests_succeeds_on_every_source() {
    let env = Env::start_with(
        small(),
        aksk(),
        &[
            ("HUAWEICLOUD_SDK_AK", AK),
            ("HUAWEICLOUD_SDK_SK", SK),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", SECURITY_TOKEN),
        ],
    )
    .await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    let requests = env.sim.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "every signature verified"
    );
    for kind in ["/jobs", "/audit/", "/image-server-jobs"] {
        assert!(
            requests.iter().any(|r| r.path.contains(kind)),
            "{kind} requested"
        );
    }
    let sources: Vec<String> = sqlx::query_scalar("SELECT DISTINCT source FROM jobs ORDER BY 1")
        .fetch_all(&env.pool().await)
        .await
        .expect("sources");
    assert_eq!(sources, ["dbss", "image", "nosql"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cloud_code_sample_names_and_the_credentials_file_work_too() {
    let env = Env::start_with(
        small(),
        SimAuth::AkSk {
            ak: AK.into(),
            sk: SK.into(),
            security_token: None,
        },
        &[("CLOUD_SDK_AK", AK), ("CLOUD_SDK_SK", SK)],
    )
    .await;
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);

    let file = env.dir.path().join("creds.ini");
    std::fs::write(&file, format!("[basic]\nak = {AK}\nsk = {SK}\n")).expect("write");
    let mut env = env;
    env.env = vec![(
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE".into(),
        file.display().to_string(),
    )];
    let run = env.jobtrail(&["sync", "--source", "nosql", "-v"]).await;
    run.assert_code(0);
    assert!(
        run.stderr.contains("credentials file"),
        "says where credentials came from: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_key_fails_fast_with_an_authentication_message() {
    let env = Env::start_with(
        small(),
        aksk(),
        &[
            ("HUAWEICLOUD_SDK_AK", AK),
            ("HUAWEICLOUD_SDK_SK", "not-the-right-secret-key"),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", SECURITY_TOKEN),
        ],
    )
    .await;
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("authentication refused"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("AK/SK"),
        "names the credential kind: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("APIGW.0301"),
        "names the cloud's code: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-the-right-secret-key"));
    let refused = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert!(
        refused <= 3,
        "no retries after a 401 (saw {refused} refusals for 3 sources)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_half_credentials_are_a_clear_error() {
    let env = Env::start_with(small(), SimAuth::Any, &[]).await;
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("HUAWEICLOUD_SDK_AK") && run.stderr.contains("CLOUD_SDK_TOKEN"),
        "{}",
        run.stderr
    );
    let mut env = env;
    env.env = vec![("HUAWEICLOUD_SDK_AK".into(), AK.into())];
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("HUAWEICLOUD_SDK_SK"), "{}", run.stderr);
    assert_eq!(
        env.sim.request_count(),
        0,
        "nothing sent without usable credentials"
    );
}

/// Every text column of every table, concatenated.
async fn all_text(env: &Env) -> String {
    let pool = env.pool().await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .expect("tables");
    let mut text = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
            .fetch_all(&pool)
            .await
            .expect("rows");
        for row in rows {
            use sqlx::{Column, Row};
            for column in row.columns() {
                if let Ok(Some(value)) = row.try_get::<Option<String>, _>(column.ordinal()) {
                    text.push_str(&value);
                    text.push('\n');
                }
            }
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_output_logs_or_the_database() {
    let env = Env::start_with(
        small(),
        aksk(),
        &[
            ("HUAWEICLOUD_SDK_AK", AK),
            ("HUAWEICLOUD_SDK_SK", SK),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", SECURITY_TOKEN),
        ],
    )
    .await;
    let ok = env.jobtrail(&["sync", "-vvv"]).await;
    ok.assert_code(0);
    let json = env.jobtrail(&["sync", "-vv", "--log-format", "json"]).await;
    json.assert_code(0);
    let mut bad = Env::start_with(
        small(),
        SimAuth::Token(TOKEN.into()),
        &[("CLOUD_SDK_TOKEN", "wrong-token-7d7d7d")],
    )
    .await;
    let refused = bad.jobtrail(&["sync", "-vvv"]).await;
    refused.assert_code(1);
    bad.env = vec![("CLOUD_SDK_TOKEN".into(), TOKEN.into())];
    let token_run = bad.jobtrail(&["sync", "-vvv"]).await;
    token_run.assert_code(0);

    let mut everything = String::new();
    for run in [&ok, &json, &refused, &token_run] {
        everything.push_str(&run.stdout);
        everything.push_str(&run.stderr);
    }
    everything.push_str(&all_text(&env).await);
    everything.push_str(&all_text(&bad).await);
    assert!(ok.stderr.lines().count() > 20, "-vvv really logged");
    for secret in [SK, SECURITY_TOKEN, TOKEN, "wrong-token-7d7d7d"] {
        assert!(!everything.contains(secret), "secret {secret:?} leaked");
    }
}
