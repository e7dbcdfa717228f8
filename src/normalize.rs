//! Turning the three APIs' field formats into one: times to fixed-width UTC,
//! raw statuses to [`Status`], NoSQL's "60%" progress to a number.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};

use crate::model::Status;

/// Formats a UTC instant as `YYYY-MM-DDTHH:MM:SS.sssZ`: fixed width, so text
/// order in SQLite is time order.
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a parsed instant is stored as: whole milliseconds, the resolution of
/// [`format_utc`] (so a duration computed from it equals the one between the
/// stored texts), and only within the UTC years 0000–9999 (chrono writes other
/// years with a sign and more digits, breaking the fixed width and so the text
/// order of stored times).
fn storable(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)?;
    (0..=9999).contains(&t.year()).then_some(t)
}

/// Parses any time string the three APIs send: NoSQL's `2023-09-12T06:44:01+0800`
/// (offset without colon), RFC 3339 (`Z` or `+08:00`, any fraction digits, as
/// Workspace sends `…49.61Z`), and a bare `YYYY-MM-DDTHH:MM:SS` taken as UTC.
/// Sub-millisecond digits are dropped. Returns `None` for anything else,
/// including the empty string and instants outside the years 0000–9999 (UTC).
pub fn parse_api_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return storable(t.with_timezone(&Utc));
    }
    // `%z` accepts `+0800` and `+08:00`; `%.f` accepts zero or more fraction digits.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return storable(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return storable(t.and_utc());
        }
    }
    None
}

/// Converts DBSS epoch milliseconds. DBSS reports an unset time as null or 0;
/// both (and anything after the year 9999) become `None`.
pub fn from_epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    if ms <= 0 {
        return None;
    }
    Utc.timestamp_millis_opt(ms).single().and_then(storable)
}

/// `ended − started` in milliseconds when both are known and in order.
pub fn duration_ms(started: Option<DateTime<Utc>>, ended: Option<DateTime<Utc>>) -> Option<i64> {
    match (started, ended) {
        (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds()),
        _ => None,
    }
}

/// Parses NoSQL's progress (`"60%"`, `"60"`, `""`) into a percentage 0–100.
pub fn parse_progress(s: &str) -> Option<i64> {
    let digits = s.trim().trim_end_matches('%').trim();
    let value: i64 = digits.parse().ok()?;
    (0..=100).contains(&value).then_some(value)
}

/// Empty or whitespace-only strings are stored as NULL (SPEC §4: `fail_reason`).
pub fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

/// Which job kind a raw status belongs to: image sub-jobs have extra states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Nosql,
    Dbss,
    ImageJob,
    ImageSubJob,
}

/// The status table of SPEC §4, in one place. Raw values compare case-insensitively.
/// DBSS: the API documents `FAIL`; Terraform checks `ERROR`; `FAILED` appears in
/// other Huawei APIs — all three mean failed.
const STATUS_TABLE: &[(JobKind, &str, Status)] = &[
    (JobKind::Nosql, "running", Status::Running),
    (JobKind::Nosql, "completed", Status::Succeeded),
    (JobKind::Nosql, "failed", Status::Failed),
    (JobKind::Dbss, "init", Status::Running),
    (JobKind::Dbss, "ready", Status::Running),
    (JobKind::Dbss, "running", Status::Running),
    (JobKind::Dbss, "success", Status::Succeeded),
    (JobKind::Dbss, "fail", Status::Failed),
    (JobKind::Dbss, "error", Status::Failed),
    (JobKind::Dbss, "failed", Status::Failed),
    (JobKind::ImageJob, "waiting", Status::Running),
    (JobKind::ImageJob, "running", Status::Running),
    (JobKind::ImageJob, "success", Status::Succeeded),
    (JobKind::ImageJob, "failed", Status::Failed),
    (JobKind::ImageSubJob, "waiting", Status::Running),
    (JobKind::ImageSubJob, "running", Status::Running),
    (JobKind::ImageSubJob, "rollback", Status::Running),
    (JobKind::ImageSubJob, "aborting", Status::Running),
    (JobKind::ImageSubJob, "success", Status::Succeeded),
    (JobKind::ImageSubJob, "failed", Status::Failed),
    (JobKind::ImageSubJob, "abnormal", Status::Failed),
];

/// Maps a raw API status to its normalized form; anything unlisted (or absent)
/// is [`Status::Unknown`], never an error.
pub fn map_status(kind: JobKind, raw: Option<&str>) -> Status {
    let Some(raw) = raw.map(str::trim) else {
        return Status::Unknown;
    };
    STATUS_TABLE
        .iter()
        .find(|(k, r, _)| *k == kind && r.eq_ignore_ascii_case(raw))
        .map_or(Status::Unknown, |(_, _, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> String {
        format_utc(parse_api_time(s).expect(s))
    }

    #[test]
    fn parses_every_api_time_format_to_fixed_width_utc() {
        assert_eq!(utc("2023-09-12T06:44:01+0000"), "2023-09-12T06:44:01.000Z");
        assert_eq!(utc("2023-09-12T06:44:01+0800"), "2023-09-11T22:44:01.000Z");
        assert_eq!(utc("2023-09-12T06:44:01-0530"), "2023-09-12T12:14:01.000Z");
        assert_eq!(utc("2023-09-12T06:44:01+08:00"), "2023-09-11T22:44:01.000Z");
        assert_eq!(utc("2023-09-12T06:44:01Z"), "2023-09-12T06:44:01.000Z");
        assert_eq!(utc("2022-03-07T10:40:43.858Z"), "2022-03-07T10:40:43.858Z");
        assert_eq!(utc("2022-03-07T10:40:49.61Z"), "2022-03-07T10:40:49.610Z");
        assert_eq!(
            utc("2022-03-07T10:40:49.123456Z"),
            "2022-03-07T10:40:49.123Z"
        );
        assert_eq!(utc("2022-03-07T10:40:49"), "2022-03-07T10:40:49.000Z");
        assert_eq!(utc("2023-09-12 06:44:01+0800"), "2023-09-11T22:44:01.000Z");
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "  ",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "1694500000000",
        ] {
            assert_eq!(parse_api_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fixed_width_text_sorts_as_time() {
        let a = utc("2023-09-12T06:44:01.9+0000");
        let b = utc("2023-09-12T06:44:02+0000");
        assert_eq!(a.len(), 24);
        assert_eq!(b.len(), 24);
        assert!(a < b);
    }

    #[test]
    fn epoch_millis_from_dbss() {
        let t = from_epoch_ms(1_694_501_041_123).map(format_utc);
        assert_eq!(t.as_deref(), Some("2023-09-12T06:44:01.123Z"));
        assert_eq!(from_epoch_ms(0), None);
        assert_eq!(from_epoch_ms(-5), None);
    }

    #[test]
    fn durations_need_both_ends_in_order() {
        let s = parse_api_time("2023-09-12T06:44:01Z");
        let e = parse_api_time("2023-09-12T06:45:02.5Z");
        assert_eq!(duration_ms(s, e), Some(61_500));
        assert_eq!(duration_ms(s, None), None);
        assert_eq!(duration_ms(e, s), None);
    }

    #[test]
    fn progress_percentages() {
        assert_eq!(parse_progress("60%"), Some(60));
        assert_eq!(parse_progress("0%"), Some(0));
        assert_eq!(parse_progress("100"), Some(100));
        assert_eq!(parse_progress(""), None);
        assert_eq!(parse_progress("101%"), None);
        assert_eq!(parse_progress("abc"), None);
    }

    #[test]
    fn status_table_matches_spec_case_insensitively() {
        use JobKind::*;
        assert_eq!(map_status(Nosql, Some("Running")), Status::Running);
        assert_eq!(map_status(Nosql, Some("COMPLETED")), Status::Succeeded);
        assert_eq!(map_status(Nosql, Some("Failed")), Status::Failed);
        assert_eq!(map_status(Nosql, Some("Pending")), Status::Unknown);
        for raw in ["INIT", "READY", "RUNNING"] {
            assert_eq!(map_status(Dbss, Some(raw)), Status::Running);
        }
        assert_eq!(map_status(Dbss, Some("SUCCESS")), Status::Succeeded);
        for raw in ["FAIL", "ERROR", "FAILED", "fail"] {
            assert_eq!(map_status(Dbss, Some(raw)), Status::Failed);
        }
        assert_eq!(map_status(ImageJob, Some("WAITING")), Status::Running);
        assert_eq!(map_status(ImageJob, Some("ABNORMAL")), Status::Unknown);
        assert_eq!(map_status(ImageSubJob, Some("ABNORMAL")), Status::Failed);
        for raw in ["ROLLBACK", "ABORTING", "WAITING", "RUNNING"] {
            assert_eq!(map_status(ImageSubJob, Some(raw)), Status::Running);
        }
        assert_eq!(map_status(ImageSubJob, None), Status::Unknown);
        assert_eq!(map_status(ImageJob, Some("SOMETHING_NEW")), Status::Unknown);
    }

    #[test]
    fn empty_reasons_become_null() {
        assert_eq!(non_empty(Some(String::new())), None);
        assert_eq!(non_empty(Some("  ".into())), None);
        assert_eq!(
            non_empty(Some("disk full".into())),
            Some("disk full".into())
        );
    }
}
