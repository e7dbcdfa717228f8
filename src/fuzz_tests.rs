//! Property tests: no parser of API responses, configuration or credentials panics on any input.
//!
//! Two kinds of input: (1) arbitrary bytes and strings; (2) realistic bodies of
//! each API (shapes per API-FACTS) put through random structural mutations (a
//! key deleted, a value replaced by one of another JSON type, a key repeated, a
//! value nested deeply) and byte mutations (truncated, flipped, replaced,
//! inserted, removed). Whenever a parser returns `Ok`, its rows must hold what
//! a user relies on (see [`check_row`]).
//!
//! Runs are deterministic by default; `PROPTEST_RNG_SEED=<u64>` explores other
//! inputs and `PROPTEST_CASES=<n>` changes the case count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::RngSeed;
use serde_json::Value;

use crate::auth::{CredentialOrigin, Credentials, OutgoingRequest, Secret};
use crate::config::{Settings, parse_date_or_datetime, parse_endpoint};
use crate::http::ErrorBody;
use crate::model::{JobRow, Source, Status};
use crate::normalize::{format_utc, from_epoch_ms, parse_api_time, parse_progress};
use crate::sim::sigv::{IncomingRequest, verify};
use crate::sources::{dbss, image, nosql};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 384;
/// Cheap properties (one small function call per case) run more.
const CHEAP_CASES: u32 = 1024;
const SEED: u64 = 0x6a6f_6274_7261_696c; // "jobtrail"

fn config(cases: u32) -> ProptestConfig {
    // `default()` already reads PROPTEST_* variables; only fill in what they left unset.
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    // Failures become named regression tests below, not files next to the source.
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------------------
// Realistic bodies (shapes per /work/shared/api/API-FACTS.md).

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

const NOSQL_PAGE: &str = r#"{"jobs":[
 {"id":"2f3c7a1e","name":"CreateInstance","status":"Running","start_time":"2023-09-12T06:44:01+0800",
  "end_time":"","progress":"60%","instance":{"id":"inst-1","name":"nosql-a"},"fail_reason":""},
 {"id":"9b1d0c44","name":"RestartInstance","status":"Completed","start_time":"2023-09-12T06:44:01+0000",
  "end_time":"2023-09-12T06:45:31+0000","progress":"","instance":{"id":"inst-2","name":"nosql-b"},"fail_reason":""},
 {"id":"77aa01ff","name":"EnlargeInstanceVolume","status":"Failed","start_time":"2023-09-13T01:02:03-0530",
  "end_time":"2023-09-13T01:12:03.250-0530","progress":"","instance":{"id":"inst-3","name":"nosql-c"},
  "fail_reason":"Insufficient resources"}],"total_count":3}"#;

const DBSS_JOBS: &str = r#"{"jobs":[
 {"job_id":"a1b2c3","status":"SUCCESS","job_type":null,"server_id":"vm-1","server_name":"audit-1",
  "resource_id":"2c154fdd-0d43-47b7-9cf1-5236bf6a2ca7","begin_time":1694501041123,"end_time":1694501101123,
  "charge_mode":"Period","error_code":null,"fail_reason":null,"ha_id":"r1","ha_name":null},
 {"job_id":"d4e5f6","status":"FAIL","job_type":"","server_id":"vm-1","server_name":"audit-1","resource_id":null,
  "begin_time":1694501041123,"end_time":0,"charge_mode":"Demand","error_code":"DBSS.10001",
  "fail_reason":"quota exceeded","ha_id":null,"ha_name":null},
 {"job_id":"g7h8i9","status":"RUNNING","server_name":"audit-2","begin_time":"1694501041999","end_time":null}]}"#;

const IMAGE_JOB: &str = r#"{"id":"702364883651395584","job_type":"CREATE_SERVER","begin_time":"2022-03-07T10:40:43.858Z",
 "end_time":"2022-03-07T10:50:49.61Z","status":"FAILED","sub_jobs_total":2,"sub_jobs":[
  {"id":"s1","job_type":"CREATE_SERVER","job_resource_info":{"resource_id":"srv-1","resource_name":"img-srv"},
   "begin_time":"2022-03-07T10:40:44Z","end_time":"2022-03-07T10:45:44Z","status":"ABNORMAL",
   "job_execute_info":{"error_code":"WKS.0001","error_message":"flavor sold out"},"project_id":"p",
   "job_id":"702364883651395584"},
  {"id":"s2","job_type":"CREATE_SERVER_IMAGE","job_resource_info":null,"begin_time":"2022-03-07T10:40:44Z",
   "end_time":null,"status":"ROLLBACK","job_execute_info":{"error_code":"","error_message":""}}]}"#;

const ERROR_BODIES: [&str; 4] = [
    r#"{"error_code":"WKS.00129901","error_msg":"The job does not exist."}"#,
    r#"{"error":{"error_code":"DBSS.XXXX","error_msg":"Invalid resource id"}}"#,
    r#"{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached: policy user over ratelimit,limit:5,time:1 second","request_id":"7b0f"}"#,
    r#"{"errorCode":"DBSS.0001","errorMsg":"bad","details":[{"code":1,"message":"m"}],"encoded_authorization_message":""}"#,
];

const CONFIG_TOML: &str = r#"database = "data/jobtrail.db"
queries_dir = "queries"
allow_insecure_endpoints = false

[[project]]
id = "0549b4a43100d4f32f51c01c2fe4acdb"
region = "cn-north-4"

[project.nosql]
since = "2024-01-01T08:00:00+0800"

[project.dbss]
resource_ids = ["2c154fdd-0d43-47b7-9cf1-5236bf6a2ca7", " r2 ", ""]
discover = true

[project.image]
job_ids = ["702364883651395584"]
discover = false

[[project]]
id = "other_project-2"
region = "eu-west-101"

[project.nosql]

[endpoints]
nosql = "http://127.0.0.1:18080"
iam = "https://iam.example.com/base"
"#;

/// Marks every secret value in generated credentials files: it must never
/// appear in an error message or in the resolved credentials' `Debug`/`Display`.
const SECRET_MARK: &str = "SKq9SECRETq9";

// ---------------------------------------------------------------------------
// Invariants of a returned row.

fn check_time(label: &str, t: &Option<String>) -> Result<Option<DateTime<Utc>>, TestCaseError> {
    let Some(t) = t else { return Ok(None) };
    prop_assert_eq!(t.len(), 24, "{} {:?} is not 24 chars", label, t);
    prop_assert!(t.ends_with('Z'), "{} {:?} does not end in Z", label, t);
    let parsed = parse_api_time(t);
    prop_assert!(parsed.is_some(), "{} {:?} does not parse back", label, t);
    let parsed = parsed.expect("checked");
    prop_assert_eq!(&format_utc(parsed), t, "{} does not round-trip", label);
    Ok(Some(parsed))
}

fn check_text(label: &str, v: &Option<String>) -> Result<(), TestCaseError> {
    if let Some(v) = v {
        prop_assert!(!v.trim().is_empty(), "{} is Some({:?})", label, v);
    }
    Ok(())
}

/// What every stored row must satisfy, whatever the API sent.
fn check_row(row: &JobRow, source: Source) -> Result<(), TestCaseError> {
    prop_assert_eq!(row.source, source);
    prop_assert_eq!(&row.project_id, PROJECT);
    prop_assert!(!row.job_id.is_empty(), "empty job_id");
    prop_assert!(matches!(
        row.status,
        Status::Running | Status::Succeeded | Status::Failed | Status::Unknown
    ));
    prop_assert_eq!(row.status.as_str().parse::<Status>(), Ok(row.status));
    prop_assert!(
        serde_json::from_str::<serde::de::IgnoredAny>(&row.raw_json).is_ok(),
        "raw_json is not JSON: {:?}",
        row.raw_json
    );
    let started = check_time("started_at", &row.started_at)?;
    let ended = check_time("ended_at", &row.ended_at)?;
    if let Some(d) = row.duration_ms {
        prop_assert!(d >= 0, "negative duration {}", d);
        let (Some(s), Some(e)) = (started, ended) else {
            return Err(TestCaseError::fail(format!(
                "duration {d} without both ends: {:?} {:?}",
                row.started_at, row.ended_at
            )));
        };
        prop_assert_eq!(
            d,
            (e - s).num_milliseconds(),
            "duration_ms disagrees with {:?} − {:?}",
            row.ended_at,
            row.started_at
        );
    }
    if let Some(p) = row.progress {
        prop_assert!((0..=100).contains(&p), "progress {}", p);
    }
    check_text("fail_reason", &row.fail_reason)?;
    check_text("error_code", &row.error_code)?;
    check_text("job_type", &row.job_type)?;
    check_text("resource_id", &row.resource_id)?;
    check_text("resource_name", &row.resource_name)?;
    Ok(())
}

fn check_nosql(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(page) = nosql::parse_page(body, PROJECT) {
        for row in &page.parsed.rows {
            check_row(row, Source::Nosql)?;
            prop_assert_eq!(&row.parent_job_id, &None);
            prop_assert_eq!(&row.error_code, &None);
        }
    }
    Ok(())
}

fn check_dbss(body: &[u8]) -> Result<(), TestCaseError> {
    const RESOURCE: &str = "res-asked-for";
    if let Ok(rows) = dbss::parse_jobs(body, PROJECT, RESOURCE).map(|p| p.rows) {
        for row in &rows {
            check_row(row, Source::Dbss)?;
            prop_assert!(row.resource_id.is_some(), "DBSS row without resource_id");
            prop_assert_eq!(row.progress, None);
        }
    }
    Ok(())
}

fn check_image(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(rows) = image::parse_job(body, PROJECT).map(|p| p.rows) {
        prop_assert!(!rows.is_empty(), "Ok without the job's own row");
        prop_assert_eq!(&rows[0].parent_job_id, &None);
        for row in &rows {
            check_row(row, Source::Image)?;
        }
        for sub in &rows[1..] {
            prop_assert_eq!(sub.parent_job_id.as_deref(), Some(rows[0].job_id.as_str()));
        }
    }
    Ok(())
}

fn check_error_body(body: &[u8]) {
    let parsed = ErrorBody::parse(body);
    // A message is only ever reported together with a code.
    assert!(parsed.code.is_some() || parsed.message.is_none());
}

// ---------------------------------------------------------------------------
// Mutations.

/// A structural edit of one JSON node, addressed by its pre-order number.
#[derive(Debug, Clone)]
enum Edit {
    /// Leave the node (and its key) out.
    Delete,
    /// Write this raw text instead (may be invalid on purpose, e.g. `1e400`).
    Replace(String),
    /// Objects: repeat the first key with this raw value; arrays: append it.
    Duplicate(String),
    /// Wrap the node in `depth` arrays (`true`) or single-key objects.
    Nest(usize, bool),
}

/// A byte-level edit of the serialized body.
#[derive(Debug, Clone)]
enum ByteEdit {
    Truncate(Index),
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
}

fn node_count(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(node_count).sum(),
        Value::Object(map) => map.values().map(node_count).sum(),
        _ => 0,
    }
}

fn render(v: &Value, edits: &HashMap<usize, Edit>) -> String {
    let mut out = String::new();
    if !matches!(edits.get(&0), Some(Edit::Delete)) {
        write_node(v, &mut 0, edits, &mut out);
    }
    out
}

fn write_node(v: &Value, next: &mut usize, edits: &HashMap<usize, Edit>, out: &mut String) {
    let me = *next;
    *next += 1;
    let edit = edits.get(&me);
    if let Some(Edit::Replace(raw)) = edit {
        out.push_str(raw);
        *next += node_count(v) - 1;
        return;
    }
    let (open, close) = match edit {
        Some(Edit::Nest(depth, true)) => ("[".repeat(*depth), "]".repeat(*depth)),
        Some(Edit::Nest(depth, false)) => ("{\"n\":".repeat(*depth), "}".repeat(*depth)),
        _ => (String::new(), String::new()),
    };
    out.push_str(&open);
    let duplicate = match edit {
        Some(Edit::Duplicate(raw)) => Some(raw.as_str()),
        _ => None,
    };
    match v {
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (key, child) in map {
                if matches!(edits.get(next), Some(Edit::Delete)) {
                    *next += node_count(child);
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_node(child, next, edits, out);
            }
            if let (Some(raw), Some(key)) = (duplicate, map.keys().next()) {
                if !first {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                out.push_str(raw);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            let mut first = true;
            for child in items {
                if matches!(edits.get(next), Some(Edit::Delete)) {
                    *next += node_count(child);
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_node(child, next, edits, out);
            }
            if let Some(raw) = duplicate {
                if !first {
                    out.push(',');
                }
                out.push_str(raw);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
    out.push_str(&close);
}

fn apply_bytes(mut body: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for edit in edits {
        let len = body.len();
        match edit {
            ByteEdit::Insert(at, bytes) => {
                let at = at.index(len + 1);
                body.splice(at..at, bytes.iter().copied());
            }
            _ if len == 0 => {}
            ByteEdit::Truncate(at) => body.truncate(at.index(len)),
            ByteEdit::Flip(at, bit) => body[at.index(len)] ^= 1 << (bit % 8),
            ByteEdit::Set(at, b) => body[at.index(len)] = *b,
            ByteEdit::Remove(at, n) => {
                let at = at.index(len);
                body.drain(at..(at + n).min(len));
            }
        }
    }
    body
}

/// JSON literals of every type, plus values that look right for some field but are not.
const LITERALS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-1",
    "1.5",
    "-1.5",
    "0.0001",
    "1e308",
    "-1e308",
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "253402300799999",
    "253402300800000",
    "8210266876799999",
    "8210266876800000",
    "\"253402300800000\"",
    "\" 1694501041123 \"",
    "\"-5\"",
    "\"1.5e3\"",
    "\"\"",
    "\"   \"",
    "\"\\t\\n\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"ünïcødé 测试 😀\"",
    "\"\\u202e\\u200b\"",
    "[]",
    "{}",
    "[null]",
    "[\"a\",1]",
    "{\"id\":null}",
    "{\"id\":\"x\",\"status\":\"Running\"}",
    "\"60%\"",
    "\"100%\"",
    "\"101%\"",
    "\"-1%\"",
    "\"%\"",
    "\" 7 % \"",
    "\"9223372036854775808%\"",
    "\"Running\"",
    "\"Completed\"",
    "\"Failed\"",
    "\"COMPLETED\"",
    "\"SUCCESS\"",
    "\"FAIL\"",
    "\"ERROR\"",
    "\"INIT\"",
    "\"ABNORMAL\"",
    "\"WAITING\"",
    "\"ROLLBACK\"",
    "\"SOMETHING_NEW\"",
];

const YEARS: &[&str] = &[
    "0000", "0001", "1969", "1970", "2023", "2024", "9999", "10000", "+10000", "-0001", "+262143",
    "-262144", "+262144", "99999",
];
const ZONES: &[&str] = &[
    "", "Z", "z", "+0000", "+0800", "-0530", "+08:00", "-23:59", "+2359", "-2359", "+2400",
    "+9999", "-0000", " Z", "+08", "UTC",
];

/// Strings shaped like the APIs' times, valid or subtly not.
fn time_text() -> impl Strategy<Value = String> {
    (
        select(YEARS),
        0u32..=13,
        0u32..=32,
        0u32..=25,
        0u32..=61,
        0u32..=61,
        proptest::option::of("[0-9]{1,12}"),
        select(ZONES),
        select(&["T", " ", "t"][..]),
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, zone, sep)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}")
        })
}

/// Raw JSON text for a replacement value: any type, any size.
fn wild_json() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(LITERALS).prop_map(str::to_owned),
        3 => time_text().prop_map(|t| Value::String(t).to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| Value::from(f).to_string()),
        1 => (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(|n| n.to_string()),
        2 => any::<String>().prop_map(|s| Value::String(s).to_string()),
        1 => (any::<char>(), 1usize..20_000)
            .prop_map(|(c, n)| Value::String(c.to_string().repeat(n)).to_string()),
        1 => (1usize..400, any::<bool>()).prop_map(|(d, arrays)| if arrays {
            format!("{}1{}", "[".repeat(d), "]".repeat(d))
        } else {
            format!("{}1{}", "{\"k\":".repeat(d), "}".repeat(d))
        }),
    ]
    .boxed()
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => Just(Edit::Delete),
        6 => wild_json().prop_map(Edit::Replace),
        1 => wild_json().prop_map(Edit::Duplicate),
        1 => (1usize..300, any::<bool>()).prop_map(|(d, a)| Edit::Nest(d, a)),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
    ]
}

/// A generated body; shown as (lossy) text when a case fails.
#[derive(Clone)]
struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// `base` with 0–4 structural edits and, in a quarter of the cases, 1–3 byte edits.
fn mutated(base: &'static str) -> impl Strategy<Value = Body> {
    let value: Value = serde_json::from_str(base).expect("base bodies are JSON");
    let count = node_count(&value);
    (
        vec((any::<Index>(), edit()), 0..5),
        prop_oneof![3 => Just(Vec::new()), 1 => vec(byte_edit(), 1..4)],
    )
        .prop_map(move |(edits, bytes)| {
            let edits: HashMap<usize, Edit> = edits
                .into_iter()
                .map(|(i, e)| (i.index(count), e))
                .collect();
            Body(apply_bytes(render(&value, &edits).into_bytes(), &bytes))
        })
}

/// Text made of JSON punctuation and the APIs' words, so that random strings
/// get past the first byte of the JSON parser more often than random bytes do.
fn jsonish() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            select(
                &[
                    "{",
                    "}",
                    "[",
                    "]",
                    ",",
                    ":",
                    "\"",
                    "null",
                    "\"jobs\"",
                    "\"total_count\"",
                    "\"id\"",
                    "\"job_id\"",
                    "\"status\"",
                    "\"sub_jobs\"",
                    "\"start_time\"",
                    "\"begin_time\"",
                    "\"progress\"",
                    "\"Running\"",
                    "\"\"",
                    "1",
                    "-",
                    "e",
                    "\\",
                    " ",
                ][..]
            )
            .prop_map(str::to_owned),
            select(LITERALS).prop_map(str::to_owned),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

// ---------------------------------------------------------------------------
// API response parsers.

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn api_parsers_survive_arbitrary_bytes(body in vec(any::<u8>(), 0..512)) {
        check_nosql(&body)?;
        check_dbss(&body)?;
        check_image(&body)?;
        check_error_body(&body);
    }

    #[test]
    fn api_parsers_survive_jsonish_text(text in jsonish()) {
        check_nosql(text.as_bytes())?;
        check_dbss(text.as_bytes())?;
        check_image(text.as_bytes())?;
        check_error_body(text.as_bytes());
    }

    #[test]
    fn nosql_page_mutations_never_panic_and_rows_hold(Body(body) in mutated(NOSQL_PAGE)) {
        check_nosql(&body)?;
        check_error_body(&body);
    }

    #[test]
    fn dbss_jobs_mutations_never_panic_and_rows_hold(Body(body) in mutated(DBSS_JOBS)) {
        check_dbss(&body)?;
        check_error_body(&body);
    }

    #[test]
    fn image_job_mutations_never_panic_and_rows_hold(Body(body) in mutated(IMAGE_JOB)) {
        check_image(&body)?;
        check_error_body(&body);
    }

    #[test]
    fn error_body_mutations_never_panic(
        which in 0..ERROR_BODIES.len(),
        edits in vec((any::<Index>(), edit()), 0..5),
        bytes in vec(byte_edit(), 0..3),
    ) {
        let value: Value = serde_json::from_str(ERROR_BODIES[which]).expect("JSON");
        let count = node_count(&value);
        let edits: HashMap<usize, Edit> =
            edits.into_iter().map(|(i, e)| (i.index(count), e)).collect();
        let body = apply_bytes(render(&value, &edits).into_bytes(), &bytes);
        check_error_body(&body);
    }
}

// ---------------------------------------------------------------------------
// Field normalizers.

proptest! {
    #![proptest_config(config(CHEAP_CASES))]

    #[test]
    fn api_times_are_fixed_width_utc_or_none(
        s in prop_oneof![time_text(), any::<String>(), "[0-9T:+Z. -]{0,30}"]
    ) {
        if let Some(t) = parse_api_time(&s) {
            let text = format_utc(t);
            check_time("parsed time", &Some(text))?;
        }
    }

    #[test]
    fn epoch_millis_are_fixed_width_utc_or_none(
        ms in prop_oneof![any::<i64>(), -1i64..=1, 253_402_300_000_000i64..253_402_400_000_000]
    ) {
        match from_epoch_ms(ms) {
            None => {}
            Some(t) => {
                prop_assert!(ms > 0);
                prop_assert_eq!(t.timestamp_millis(), ms);
                check_time("epoch time", &Some(format_utc(t)))?;
            }
        }
    }

    #[test]
    fn progress_is_a_percentage_or_none(
        s in prop_oneof![any::<String>(), "[ +-]{0,2}[0-9]{0,20} ?%? ?"]
    ) {
        if let Some(p) = parse_progress(&s) {
            prop_assert!((0..=100).contains(&p), "{:?} → {}", s, p);
        }
    }

    #[test]
    fn dates_in_config_never_panic(
        s in prop_oneof![
            time_text(),
            any::<String>(),
            (select(YEARS), 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
            (select(YEARS), 0u32..14, 0u32..33, 0u32..25, 0u32..61, select(&["T", " "][..]))
                .prop_map(|(y, m, d, h, mi, sep)| format!("{y}-{m:02}-{d:02}{sep}{h:02}:{mi:02}")),
        ]
    ) {
        if let Err(why) = parse_date_or_datetime(&s) {
            prop_assert!(!why.is_empty());
        }
    }

    #[test]
    fn endpoints_are_https_or_allowed_http_with_a_host(
        s in prop_oneof![
            any::<String>(),
            (
                select(&["https", "http", "HTTP", "ftp", "file", "", "https:", "unix"][..]),
                select(&["://", ":", ":/", ":///", "://user:pw@"][..]),
                select(&[
                    "127.0.0.1", "127.1", "0x7f.1", "2130706433", "[::1]", "[::ffff:127.0.0.1]",
                    "localhost", "LOCALHOST", "localhost.", "example.com", "", "a b", "[::1",
                    "xn--nxasmq6b", "ü.example", "%41", "10.0.0.5",
                ][..]),
                select(&["", ":0", ":8080", ":65535", ":65536", ":-1", ":x"][..]),
                select(&["", "/", "/base", "/a b", "?q=1", "#f", "/p?", "/p#"][..]),
            )
                .prop_map(|(a, b, c, d, e)| format!(" {a}{b}{c}{d}{e} ")),
        ],
        allow in any::<bool>(),
    ) {
        if let Ok(url) = parse_endpoint(&s, allow) {
            prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{}", url);
            prop_assert!(url.query().is_none() && url.fragment().is_none(), "{}", url);
            match url.scheme() {
                "https" => {}
                "http" if allow => {}
                "http" => {
                    let loopback = match url.host() {
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                        None => false,
                    };
                    prop_assert!(loopback, "insecure endpoint accepted: {}", url);
                }
                other => prop_assert!(false, "scheme {} accepted", other),
            }
        }
    }

    #[test]
    fn parse_query_never_panics_and_inverts_the_canonical_query(
        raw in prop_oneof![any::<String>(), "[a-z=&%0-9A-F+ ]{0,40}"],
        pairs in vec(("\\PC{0,6}", "\\PC{0,6}"), 0..6),
    ) {
        let _ = crate::auth::parse_query(&raw);
        let mut sorted = pairs.clone();
        sorted.sort();
        let canonical = crate::auth::canonical_query_string(&pairs);
        prop_assert_eq!(crate::auth::parse_query(&canonical), sorted);
    }
}

// ---------------------------------------------------------------------------
// Configuration and credentials files.

/// Lines of [`CONFIG_TOML`] with edits: a line deleted, repeated, its value
/// replaced, a random line inserted; optionally truncated at a byte.
#[derive(Debug, Clone)]
enum LineEdit {
    Delete(Index),
    Repeat(Index),
    Value(Index, String),
    Insert(Index, String),
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "\"\"",
                "\"   \"",
                "\"cn-north-4\"",
                "\"a/b\"",
                "\"-\"",
                "\"_\"",
                "\"http://127.0.0.1:1\"",
                "\"http://[::1]\"",
                "\"http://localhost\"",
                "\"http://10.0.0.5\"",
                "\"https://\"",
                "\"https://h?q=1\"",
                "\"https://h#f\"",
                "\"ftp://x\"",
                "\"https://a b\"",
                "\"unix:/run/x\"",
                "\"2024-02-30\"",
                "\"+12345-01-01\"",
                "\"9999-12-31T23:59:59-23:59\"",
                "\"0000-01-01T00:00:00+01:00\"",
                "\"2024-01-01T08:00\"",
                "1",
                "-1",
                "1.5",
                "nan",
                "inf",
                "true",
                "[]",
                "{}",
                "[1, \"a\"]",
                "[\"a\", \"a\", \" a \"]",
                "{ id = \"x\" }",
                "1979-05-27T07:32:00Z",
                "1979-05-27",
                "'''multi\nline'''",
                "\"\\u0000\"",
                "\"\\uD800\"",
            ][..]
        )
        .prop_map(str::to_owned),
        time_text().prop_map(|t| Value::String(t).to_string()),
        // JSON string escapes are valid TOML basic-string escapes.
        any::<String>().prop_map(|s| Value::String(s).to_string()),
    ]
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        any::<Index>().prop_map(LineEdit::Delete),
        any::<Index>().prop_map(LineEdit::Repeat),
        (any::<Index>(), toml_value()).prop_map(|(i, v)| LineEdit::Value(i, v)),
        (
            any::<Index>(),
            prop_oneof![
                select(
                    &[
                        "[[project]]",
                        "[project.nosql]",
                        "[project.dbss]",
                        "[project.image]",
                        "[endpoints]",
                        "[project]",
                        "[[endpoints]]",
                        "id = \"p1\"",
                        "region = \"cn-north-4\"",
                        "discover = true",
                        "since = \"2024-01-01\"",
                        "dbss = \"http://127.0.0.1:9\"",
                        "image = \"https://x\"",
                        "unknown = 1",
                        "database = 5",
                        "[",
                        "]",
                        "=",
                        "\"",
                        "#",
                        "a.b.c = 1",
                        "id = \"p1\" # c",
                    ][..]
                )
                .prop_map(str::to_owned),
                any::<String>(),
            ]
        )
            .prop_map(|(i, l)| LineEdit::Insert(i, l)),
    ]
}

fn mutated_config() -> impl Strategy<Value = String> {
    (
        vec(line_edit(), 0..5),
        proptest::option::weighted(0.2, any::<Index>()),
    )
        .prop_map(|(edits, cut)| {
            let mut lines: Vec<String> = CONFIG_TOML.lines().map(str::to_owned).collect();
            for edit in edits {
                let n = lines.len();
                match edit {
                    LineEdit::Insert(at, line) => lines.insert(at.index(n + 1), line),
                    _ if n == 0 => {}
                    LineEdit::Delete(at) => {
                        lines.remove(at.index(n));
                    }
                    LineEdit::Repeat(at) => {
                        let at = at.index(n);
                        let line = lines[at].clone();
                        lines.insert(at, line);
                    }
                    LineEdit::Value(at, value) => {
                        let line = &mut lines[at.index(n)];
                        if let Some((key, _)) = line.split_once('=') {
                            *line = format!("{key}= {value}");
                        }
                    }
                }
            }
            let mut text = lines.join("\n");
            if let Some(cut) = cut {
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            text
        })
}

fn config_path() -> impl Strategy<Value = PathBuf> {
    prop_oneof![
        Just(PathBuf::from("/etc/jobtrail/jobtrail.toml")),
        Just(PathBuf::from("jobtrail.toml")),
        Just(PathBuf::from("")),
        "[a-zA-Z0-9 ü._-]{1,12}"
            .prop_map(|name| PathBuf::from(format!("/srv/job trail/{name}.toml"))),
    ]
}

fn check_config(text: &str, path: &Path) -> Result<(), TestCaseError> {
    match Settings::parse(text, path) {
        Err(e) => {
            let message = e.to_string();
            let shown = path.display().to_string();
            prop_assert!(
                message.contains(&shown),
                "{:?} does not name {:?}",
                message,
                shown
            );
        }
        Ok(settings) => {
            for p in &settings.projects {
                prop_assert!(
                    !p.id.is_empty() && p.id == p.id.trim(),
                    "project id {:?}",
                    p.id
                );
                prop_assert!(!p.region.is_empty(), "region {:?}", p.region);
                prop_assert!(p.nosql.is_some() || p.dbss.is_some() || p.image.is_some());
                for id in p.dbss.iter().flat_map(|d| &d.resource_ids) {
                    prop_assert!(!id.is_empty() && id == id.trim(), "resource id {:?}", id);
                }
                for id in p.image.iter().flat_map(|i| &i.job_ids) {
                    prop_assert!(!id.is_empty() && id == id.trim(), "job id {:?}", id);
                }
            }
            let mut ids: Vec<&str> = settings.projects.iter().map(|p| p.id.as_str()).collect();
            ids.sort_unstable();
            let n = ids.len();
            ids.dedup();
            prop_assert_eq!(ids.len(), n, "a project is listed twice");
        }
    }
    Ok(())
}

/// Lines for a credentials file: sections, keys with marked secret values,
/// comments, junk.
fn credentials_line() -> impl Strategy<Value = String> {
    let value = "[A-Za-z0-9+/=]{0,12}".prop_map(|v| format!("{SECRET_MARK}{v}"));
    prop_oneof![
        3 => select(&["[basic]", "[ basic ]", "[BASIC]", "[global]", "[basic", "basic]", "[]", "\u{feff}[basic]"][..])
            .prop_map(str::to_owned),
        4 => (
            select(&["ak", "AK", " ak ", "akx", ""][..]),
            select(&[" = ", "=", ": ", " :", "= ="][..]),
            "[A-Z0-9]{0,20}",
        )
            .prop_map(|(k, sep, v)| format!("{k}{sep}{v}")),
        4 => (
            select(&["sk", "Sk", "security_token", "project_id", "domain_id", "=", ":"][..]),
            select(&[" = ", "=", ": ", " = \t"][..]),
            value,
        )
            .prop_map(|(k, sep, v)| format!("{k}{sep}{v}")),
        2 => select(&["", "   ", "# comment", "; comment", "  #x = y", "junk", "\r"][..]).prop_map(str::to_owned),
        1 => "[a-z \\[\\]=:#;\t]{0,20}",
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn config_text_is_settings_or_an_error_naming_the_file(
        text in prop_oneof![
            4 => mutated_config(),
            1 => any::<String>(),
            1 => "[\\[\\]a-z=\" .\n\\-_0-9]{0,200}",
        ],
        path in config_path(),
    ) {
        check_config(&text, &path)?;
    }

    #[test]
    fn credentials_files_give_aksk_or_an_error_without_secrets(
        text in prop_oneof![
            4 => (vec(credentials_line(), 0..10), select(&["\n", "\r\n"][..]))
                .prop_map(|(lines, eol)| lines.join(eol)),
            1 => any::<String>().prop_map(|s| format!("[basic]\nsk = {SECRET_MARK}\n{s}")),
        ],
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials");
        std::fs::write(&path, &text).expect("write");
        let shown = path.to_string_lossy().into_owned();
        let lookup = |name: &str| (name == "HUAWEICLOUD_SDK_CREDENTIALS_FILE").then(|| shown.clone());
        match Credentials::resolve(&lookup, None) {
            Err(e) => {
                let (display, debug) = (e.to_string(), format!("{e:?}"));
                prop_assert!(display.contains(&path.display().to_string()), "{}", display);
                prop_assert!(!display.contains(SECRET_MARK) && !debug.contains(SECRET_MARK), "{}", display);
            }
            Ok(creds) => {
                let (display, debug) = (creds.to_string(), format!("{creds:?}"));
                prop_assert!(!display.contains(SECRET_MARK) && !debug.contains(SECRET_MARK), "{}", debug);
                match &creds {
                    Credentials::AkSk { ak, sk, security_token, origin } => {
                        prop_assert!(!ak.is_empty() && ak == ak.trim());
                        prop_assert!(sk.expose().starts_with(SECRET_MARK));
                        prop_assert!(security_token.as_ref().is_none_or(|t| !t.expose().is_empty()));
                        prop_assert!(matches!(origin, CredentialOrigin::File(p) if *p == path));
                    }
                    Credentials::Token { .. } => prop_assert!(false, "a file gave a token"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The simulator's signature check.

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "Authorization",
                "authorization",
                "X-Sdk-Date",
                "x-sdk-date",
                "Host",
                "host",
                "X-Sdk-Content-Sha256",
                "Content-Type",
                "X-Project-Id",
                "",
            ][..]
        )
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn authorization_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (
            select(
                &[
                    "SDK-HMAC-SHA256 ",
                    "SDK-HMAC-SHA256",
                    "sdk-hmac-sha256 ",
                    " SDK-HMAC-SHA256  ",
                    ""
                ][..]
            ),
            select(&["Access=AK", "Access=", "Access=other", "", "Access=AK=AK"][..]),
            select(&[", ", ",", " , ", ",,", ", Access=AK, "][..]),
            select(
                &[
                    "SignedHeaders=host;x-sdk-date",
                    "SignedHeaders=host;x-sdk-date;",
                    "SignedHeaders=",
                    "SignedHeaders=;",
                    "SignedHeaders=HOST;X-SDK-DATE;content-type",
                    "SignedHeaders=x-sdk-date",
                    "Unknown=1",
                    "",
                ][..]
            ),
            "[0-9a-fA-Fg]{0,66}",
        )
            .prop_map(|(alg, access, sep, signed, sig)| {
                format!("{alg}{access}{sep}{signed}{sep}Signature={sig}")
            }),
    ]
}

fn date_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("20240520T103949Z".to_owned()),
        Just(" 20240520T103949Z ".to_owned()),
        "[0-9]{8}T[0-9]{6}Z",
        "[+-]?[0-9]{4,7}[0-9]{4}T[0-9]{6}Z?",
        any::<String>(),
    ]
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::from_timestamp(1_716_201_589, 0).expect("2024-05-20T10:39:49Z")),
        any::<i64>()
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)),
        Just(DateTime::<Utc>::MAX_UTC),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn sigv_verify_never_panics_on_arbitrary_requests(
        method in prop_oneof![Just("GET".to_owned()), any::<String>()],
        path in prop_oneof![Just("/v3/p/jobs".to_owned()), any::<String>(), "[/%0-9a-fA-Fg]{0,20}"],
        raw_query in proptest::option::of(prop_oneof![any::<String>(), "[a-z=&%0-9A-Fg+]{0,30}"]),
        extra in vec((header_name(), any::<String>()), 0..4),
        auth in authorization_value(),
        date in date_value(),
        body in vec(any::<u8>(), 0..64),
        now in any_instant(),
    ) {
        let mut headers = vec![
            ("Authorization".to_owned(), auth),
            ("X-Sdk-Date".to_owned(), date),
            ("host".to_owned(), "sim.local".to_owned()),
        ];
        headers.extend(extra);
        let req = IncomingRequest {
            method: &method,
            path: &path,
            raw_query: raw_query.as_deref(),
            headers: &headers,
            body: &body,
        };
        let _ = verify(&req, "AK", "SK", now);
        // Headers in another order (the verifier takes the first of a name).
        let reversed: Vec<(String, String)> = headers.iter().rev().cloned().collect();
        let req = IncomingRequest { headers: &reversed, ..req };
        let _ = verify(&req, "AK", "SK", now);
    }

    #[test]
    fn signed_requests_verify_and_tampered_ones_do_not(
        method in select(&["GET", "POST", "get", "DELETE"][..]),
        segments in vec("\\PC{0,8}", 0..4),
        pairs in vec(("\\PC{0,8}", "\\PC{0,8}"), 0..6),
        content_type in select(&["application/json", "application/json;charset=UTF-8", "text/plain", ""][..]),
        body in vec(any::<u8>(), 0..64),
        token in proptest::option::of("[A-Za-z0-9+/=]{1,20}"),
        flip in any::<Index>(),
    ) {
        let creds = Credentials::AkSk {
            ak: "FUZZAK".to_owned(),
            sk: Secret::new("fuzz-secret"),
            security_token: token.map(Secret::new),
            origin: CredentialOrigin::Env("CLOUD_SDK_AK/CLOUD_SDK_SK"),
        };
        let base = reqwest::Url::parse("http://127.0.0.1:18080").expect("base");
        let path: String = segments
            .iter()
            .map(|s| format!("/{}", crate::auth::signer::encode(s)))
            .collect();
        let url = crate::http::build_url(&base, &path, &pairs);
        let now = DateTime::from_timestamp(1_716_201_589, 0).expect("now");
        let mut headers = Vec::new();
        if !content_type.is_empty() {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        let added = creds.authorize(&OutgoingRequest {
            method,
            url: &url,
            headers: &headers,
            body: &body,
            project_id: Some(PROJECT),
            now,
        });
        headers.extend(added);
        headers.push(("Host".to_owned(), crate::auth::host_header(&url)));
        let req = IncomingRequest {
            method,
            path: url.path(),
            raw_query: url.query(),
            headers: &headers,
            body: &body,
        };
        prop_assert_eq!(verify(&req, "FUZZAK", "fuzz-secret", now), Ok(()), "{}", url);
        prop_assert!(verify(&req, "FUZZAK", "other-secret", now).is_err());

        // One byte of the signature changed.
        let mut tampered = headers.clone();
        let auth = tampered
            .iter_mut()
            .find(|(k, _)| k == "Authorization")
            .expect("signed");
        let at = auth.1.rfind('=').expect("Signature=") + 1 + flip.index(64);
        let mut bytes = auth.1.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        auth.1 = String::from_utf8(bytes).expect("ASCII");
        let req = IncomingRequest { headers: &tampered, ..req };
        prop_assert!(verify(&req, "FUZZAK", "fuzz-secret", now).is_err());
    }
}

// ---------------------------------------------------------------------------
// Fixed cases: the seeds parse as expected, and extreme inputs.

#[test]
fn realistic_bodies_parse_and_hold_the_invariants() {
    let page = nosql::parse_page(NOSQL_PAGE.as_bytes(), PROJECT).expect("nosql");
    assert_eq!((page.parsed.rows.len(), page.total_count), (3, 3));
    let rows = dbss::parse_jobs(DBSS_JOBS.as_bytes(), PROJECT, "res-asked-for")
        .expect("dbss")
        .rows;
    assert_eq!(rows.len(), 3);
    let rows = image::parse_job(IMAGE_JOB.as_bytes(), PROJECT)
        .map(|p| p.rows)
        .expect("image");
    assert_eq!(rows.len(), 3);
    for body in [NOSQL_PAGE, DBSS_JOBS, IMAGE_JOB] {
        check_nosql(body.as_bytes()).expect("nosql rows");
        check_dbss(body.as_bytes()).expect("dbss rows");
        check_image(body.as_bytes()).expect("image rows");
    }
    for body in ERROR_BODIES {
        assert!(ErrorBody::parse(body.as_bytes()).code.is_some(), "{body}");
    }
    let settings = Settings::parse(CONFIG_TOML, Path::new("/etc/jobtrail.toml")).expect("config");
    assert_eq!(settings.projects.len(), 2);
    check_config(CONFIG_TOML, Path::new("x.toml")).expect("config invariants");
}

#[test]
fn mutation_renderer_without_edits_is_the_identity() {
    for body in [NOSQL_PAGE, DBSS_JOBS, IMAGE_JOB] {
        let value: Value = serde_json::from_str(body).expect("JSON");
        let again: Value = serde_json::from_str(&render(&value, &HashMap::new())).expect("JSON");
        assert_eq!(value, again);
    }
}

#[test]
fn very_deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    for nested in [&deep, &deep_obj] {
        for body in [
            format!(r#"{{"jobs":[{{"id":"a","status":"Running","x":{nested}}}],"total_count":1}}"#),
            format!(
                r#"{{"jobs":[{{"id":"a","status":"Running","instance":{nested}}}],"total_count":1}}"#
            ),
            format!(r#"{{"jobs":[{{"job_id":"a","status":"INIT","begin_time":{nested}}}]}}"#),
            format!(
                r#"{{"id":"a","status":"RUNNING","sub_jobs":[{{"id":"s","status":"x","job_execute_info":{nested}}}]}}"#
            ),
            format!(r#"{{"error":{nested}}}"#),
            nested.clone(),
        ] {
            check_nosql(body.as_bytes()).expect("nosql");
            check_dbss(body.as_bytes()).expect("dbss");
            check_image(body.as_bytes()).expect("image");
            check_error_body(body.as_bytes());
        }
    }
}

#[test]
fn huge_config_and_credentials_inputs_do_not_panic() {
    let long = "x".repeat(200_000);
    let nested = format!("a = {}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for text in [
        long.as_str(),
        nested.as_str(),
        "\u{feff}",
        "\0",
        "[[project]]\n".repeat(500).as_str(),
    ] {
        check_config(text, Path::new("/etc/jobtrail.toml")).expect("config");
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the properties above (violated invariants, no panics).

/// Found by `api_times_are_fixed_width_utc_or_none`, `epoch_millis_are_fixed_width_utc_or_none`
/// and the NoSQL/DBSS mutation properties: a time whose UTC year is outside
/// 0000–9999 was stored as `+10000-01-02T00:00:00.000Z` (26 chars), breaking
/// the fixed width that makes text order time order. Such times are now unknown.
#[test]
fn regression_times_outside_years_0000_to_9999_are_not_stored() {
    for text in [
        "+10000-01-01T00:00:00-23:59",
        "+10000-01-02T00:00:00+0000",
        "9999-12-31T23:59:59-0100",
        "0000-01-01T00:00:00+01:00",
    ] {
        assert_eq!(parse_api_time(text), None, "{text}");
    }
    assert_eq!(
        parse_api_time("9999-12-31T23:59:59.999Z")
            .map(format_utc)
            .as_deref(),
        Some("9999-12-31T23:59:59.999Z")
    );
    assert_eq!(
        parse_api_time("0000-01-01T00:00:00Z")
            .map(format_utc)
            .as_deref(),
        Some("0000-01-01T00:00:00.000Z")
    );
    assert_eq!(from_epoch_ms(253_402_300_800_000), None);
    assert_eq!(
        from_epoch_ms(253_402_300_799_999)
            .map(format_utc)
            .as_deref(),
        Some("9999-12-31T23:59:59.999Z")
    );

    let body = r#"{"jobs":[{"id":"a","status":"Completed","start_time":"2023-09-12T06:44:01+0800",
        "end_time":"+10000-01-02T00:00:00+0000"}],"total_count":1}"#;
    let page = nosql::parse_page(body.as_bytes(), PROJECT).expect("parses");
    assert_eq!(
        (
            page.parsed.rows[0].ended_at.as_deref(),
            page.parsed.rows[0].duration_ms
        ),
        (None, None)
    );
    check_nosql(body.as_bytes()).expect("invariants");

    let body = r#"{"jobs":[{"job_id":"j","status":"SUCCESS","begin_time":1694501041123,"end_time":253402300800000}]}"#;
    let rows = dbss::parse_jobs(body.as_bytes(), PROJECT, "r")
        .expect("parses")
        .rows;
    assert_eq!(
        (rows[0].ended_at.as_deref(), rows[0].duration_ms),
        (None, None)
    );
    check_dbss(body.as_bytes()).expect("invariants");
}

/// Found by `image_job_mutations_never_panic_and_rows_hold` (seed 5): with
/// sub-millisecond digits, `duration_ms` came from the full-precision times
/// while the stored texts were cut to milliseconds, so the two disagreed
/// (`.0009Z`→`.0011Z` gave 0 ms between `.000Z` and `.001Z`). Times are now cut
/// to milliseconds when parsed.
#[test]
fn regression_sub_millisecond_times_give_durations_matching_the_stored_times() {
    let body = r#"{"id":"j","status":"RUNNING","begin_time":"2022-03-07T10:40:44.0009Z",
        "end_time":"2022-03-07T10:40:44.0011Z","sub_jobs":[{"id":"s","status":"SUCCESS",
        "begin_time":"0000-01-01T00:00:00.0001-23:59","end_time":"2022-03-07T10:45:44.999999Z"}]}"#;
    let rows = image::parse_job(body.as_bytes(), PROJECT)
        .map(|p| p.rows)
        .expect("parses");
    assert_eq!(
        rows[0].started_at.as_deref(),
        Some("2022-03-07T10:40:44.000Z")
    );
    assert_eq!(
        rows[0].ended_at.as_deref(),
        Some("2022-03-07T10:40:44.001Z")
    );
    assert_eq!(rows[0].duration_ms, Some(1));
    check_image(body.as_bytes()).expect("invariants");
}
