//! Rows for `COPY … FROM STDIN (FORMAT binary)`: the writer's way into `jobs`,
//! its history and its staging table. Binary, not text: every value goes as
//! its length and its bytes, so tabs, newlines and backslashes in a job need
//! no escaping, times need no parsing on the server, and there is no escape
//! to get wrong.
//!
//! What PostgreSQL cannot hold is replaced, never refused, so one odd job does
//! not stop a sync: U+0000 in any text (PostgreSQL text has no NUL), and in
//! raw_json the escapes `\u0000` and lone UTF-16 surrogates (which jsonb
//! rejects), all become U+FFFD. Everything else arrives exactly as sent.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};

use super::PgStoreError;
use crate::model::JobRow;
use crate::normalize::parse_api_time;

/// The staging table's columns, in the order [`CopyRows::push_staged`] writes them.
pub(super) const STAGED_COLUMNS: &str = "ord, grp, source, project_id, job_id, parent_job_id, \
     job_type, status, raw_status, progress, started_at, ended_at, duration_ms, resource_id, \
     resource_name, error_code, fail_reason, raw_json";

/// `jobs`' columns, in the order [`CopyRows::push_job`] writes them.
pub(super) const JOB_COLUMNS: &str = "source, project_id, job_id, parent_job_id, job_type, \
     status, raw_status, progress, started_at, ended_at, duration_ms, resource_id, \
     resource_name, error_code, fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id";

/// `job_status_changes`' columns, in the order [`CopyRows::push_first_sighting`]
/// writes them (`id` comes from its identity).
pub(super) const SIGHTING_COLUMNS: &str = "source, project_id, job_id, old_status, new_status, \
     raw_status, fail_reason, observed_at, sync_id";

/// A job's own values, written by [`CopyRows::job_values`].
const JOB_VALUES: i16 = 16;

/// The binary COPY signature, then flags (none) and the header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// jsonb's binary format: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

/// What replaces what PostgreSQL cannot store.
const REPLACEMENT: char = '\u{FFFD}';

/// Rows encoded for one binary COPY, all of one shape (one `push_…` method).
pub(super) struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    pub fn with_capacity(bytes: usize) -> CopyRows {
        let mut buf = Vec::with_capacity(bytes + HEADER.len() + 2);
        buf.extend_from_slice(HEADER);
        CopyRows { buf }
    }

    /// Appends a job for the staging table: its place in the batch (`ord`),
    /// the round of the upsert it belongs to (`grp`, see `writer`) and its
    /// values ([`STAGED_COLUMNS`]).
    pub fn push_staged(&mut self, ord: i32, grp: i32, row: &JobRow) -> Result<(), PgStoreError> {
        self.buf.extend_from_slice(&(JOB_VALUES + 2).to_be_bytes());
        self.int4(ord);
        self.int4(grp);
        self.job_values(row)
    }

    /// Appends a job as `jobs` holds it, first seen at `seen_at` by run
    /// `sync_id` ([`JOB_COLUMNS`]).
    pub fn push_job(
        &mut self,
        row: &JobRow,
        seen_at: DateTime<Utc>,
        sync_id: i64,
    ) -> Result<(), PgStoreError> {
        self.buf.extend_from_slice(&(JOB_VALUES + 3).to_be_bytes());
        self.job_values(row)?;
        self.timestamptz(seen_at);
        self.timestamptz(seen_at);
        self.int8(Some(sync_id));
        Ok(())
    }

    /// Appends the history row of a job's first sighting at `seen_at` by run
    /// `sync_id` ([`SIGHTING_COLUMNS`]): no old status, the job's new one.
    pub fn push_first_sighting(
        &mut self,
        row: &JobRow,
        seen_at: DateTime<Utc>,
        sync_id: i64,
    ) -> Result<(), PgStoreError> {
        let field = |column: &'static str| Field { row, column };
        self.buf.extend_from_slice(&9i16.to_be_bytes());
        self.text(field("source"), Some(row.source.as_str()))?;
        self.text(field("project_id"), Some(&row.project_id))?;
        self.text(field("job_id"), Some(&row.job_id))?;
        self.null();
        self.text(field("status"), Some(row.status.as_str()))?;
        self.text(field("raw_status"), row.raw_status.as_deref())?;
        self.text(field("fail_reason"), row.fail_reason.as_deref())?;
        self.timestamptz(seen_at);
        self.int8(Some(sync_id));
        Ok(())
    }

    /// A job's sixteen values, `source` to `raw_json`.
    fn job_values(&mut self, row: &JobRow) -> Result<(), PgStoreError> {
        let field = |column: &'static str| Field { row, column };
        self.text(field("source"), Some(row.source.as_str()))?;
        self.text(field("project_id"), Some(&row.project_id))?;
        self.text(field("job_id"), Some(&row.job_id))?;
        self.text(field("parent_job_id"), row.parent_job_id.as_deref())?;
        self.text(field("job_type"), row.job_type.as_deref())?;
        self.text(field("status"), Some(row.status.as_str()))?;
        self.text(field("raw_status"), row.raw_status.as_deref())?;
        self.int8(row.progress);
        self.time(field("started_at"), row.started_at.as_deref())?;
        self.time(field("ended_at"), row.ended_at.as_deref())?;
        self.int8(row.duration_ms);
        self.text(field("resource_id"), row.resource_id.as_deref())?;
        self.text(field("resource_name"), row.resource_name.as_deref())?;
        self.text(field("error_code"), row.error_code.as_deref())?;
        self.text(field("fail_reason"), row.fail_reason.as_deref())?;
        self.jsonb(field("raw_json"), &row.raw_json)
    }

    /// The encoded rows with the trailer that ends them.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn int4(&mut self, value: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn int8(&mut self, value: Option<i64>) {
        match value {
            Some(v) => {
                self.buf.extend_from_slice(&8i32.to_be_bytes());
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
            None => self.null(),
        }
    }

    fn text(&mut self, field: Field<'_>, value: Option<&str>) -> Result<(), PgStoreError> {
        match value {
            Some(v) => self.bytes(field, &[], without_nul(v).as_bytes()),
            None => {
                self.null();
                Ok(())
            }
        }
    }

    /// A time the API gave as text, as a timestamptz.
    fn time(&mut self, field: Field<'_>, value: Option<&str>) -> Result<(), PgStoreError> {
        let Some(text) = value else {
            self.null();
            return Ok(());
        };
        let at =
            parse_api_time(text).ok_or_else(|| field.error(format!("{text:?} is not a time")))?;
        self.timestamptz(at);
        Ok(())
    }

    /// A timestamptz: microseconds since 2000-01-01 UTC.
    fn timestamptz(&mut self, at: DateTime<Utc>) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        let micros = at.timestamp_micros() - postgres_epoch().timestamp_micros();
        self.buf.extend_from_slice(&micros.to_be_bytes());
    }

    fn jsonb(&mut self, field: Field<'_>, json: &str) -> Result<(), PgStoreError> {
        let json = without_nul(json);
        let json = jsonb_safe(&json);
        self.bytes(field, &[JSONB_VERSION], json.as_bytes())
    }

    /// A value of `prefix` then `bytes`, after its length.
    fn bytes(&mut self, field: Field<'_>, prefix: &[u8], bytes: &[u8]) -> Result<(), PgStoreError> {
        let len = i32::try_from(prefix.len() + bytes.len()).map_err(|_| {
            field.error(format!("is {} bytes, over PostgreSQL's limit", bytes.len()))
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(prefix);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

/// Which value of which job is being encoded, for an error that names both.
#[derive(Clone, Copy)]
struct Field<'a> {
    row: &'a JobRow,
    column: &'static str,
}

impl Field<'_> {
    fn error(self, problem: String) -> PgStoreError {
        PgStoreError::BadValue {
            job: format!(
                "{}/{}/{}",
                self.row.source, self.row.project_id, self.row.job_id
            ),
            column: self.column,
            problem,
        }
    }
}

/// PostgreSQL's epoch for times, 2000-01-01T00:00:00Z.
fn postgres_epoch() -> DateTime<Utc> {
    // 946,684,800 s after the Unix epoch: always a valid instant.
    Utc.timestamp_opt(946_684_800, 0)
        .single()
        .unwrap_or_default()
}

/// `text` without U+0000, which no PostgreSQL text can hold.
pub(super) fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', &REPLACEMENT.to_string()))
    } else {
        Cow::Borrowed(text)
    }
}

/// JSON text that jsonb accepts: the escapes `\u0000` and lone UTF-16
/// surrogates (`\ud800` not followed by a low surrogate, or a low one alone)
/// become `\ufffd`. Anything else, valid or not, is left as it is.
pub(super) fn jsonb_safe(json: &str) -> Cow<'_, str> {
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let mut out = String::new();
    // `json[copied..]` is not yet in `out`; every index used to slice sits on
    // an ASCII byte (a backslash, or just past an ASCII escape), so on a
    // character boundary.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unicode_escape(bytes, i) else {
            // Some other escape: skip it whole, so `\\u0000` (an escaped
            // backslash, then text) is never read as an escape.
            i += 2;
            continue;
        };
        let pair = (0xD800..=0xDBFF).contains(&unit)
            && unicode_escape(bytes, i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
        if pair {
            i += 12;
        } else if unit == 0 || (0xD800..=0xDFFF).contains(&unit) {
            out.push_str(&json[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

/// The code unit of a `\uXXXX` escape starting at `at`, if there is one.
fn unicode_escape(bytes: &[u8], at: usize) -> Option<u32> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_jsonb_safe_replaces_only_what_jsonb_refuses() {
        let cases = [
            (r#"{"a":"x"}"#, r#"{"a":"x"}"#),
            (r#"{"a":"\u0000"}"#, r#"{"a":"\ufffd"}"#),
            (r#"{"a":"\\u0000"}"#, r#"{"a":"\\u0000"}"#),
            (r#"{"a":"\\\u0000"}"#, r#"{"a":"\\\ufffd"}"#),
            (r#"{"a":"\ud83d\ude00"}"#, r#"{"a":"\ud83d\ude00"}"#),
            (r#"{"a":"\ud83d"}"#, r#"{"a":"\ufffd"}"#),
            (r#"{"a":"\ude00\u00e9"}"#, r#"{"a":"\ufffd\u00e9"}"#),
            (r#"{"a":"\ud83d\u0041"}"#, r#"{"a":"\ufffd\u0041"}"#),
            (r#"{"é":"\u00"}"#, r#"{"é":"\u00"}"#),
        ];
        for (input, expected) in cases {
            assert_eq!(jsonb_safe(input), expected, "{input}");
        }
        assert!(matches!(jsonb_safe(r#"{"a":"\u00e9"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn postgres_copy_refuses_a_time_that_is_not_one_naming_the_job() {
        let row = JobRow {
            source: crate::model::Source::Nosql,
            project_id: "p1".into(),
            job_id: "j1".into(),
            parent_job_id: None,
            job_type: None,
            status: crate::model::Status::Running,
            raw_status: None,
            progress: None,
            started_at: Some("yesterday".into()),
            ended_at: None,
            duration_ms: None,
            resource_id: None,
            resource_name: None,
            error_code: None,
            fail_reason: None,
            raw_json: "{}".into(),
        };
        let err = CopyRows::with_capacity(0)
            .push_staged(0, 0, &row)
            .expect_err("not a time");
        assert_eq!(
            err.to_string(),
            "cannot store job nosql/p1/j1: its started_at \"yesterday\" is not a time"
        );
    }
}
