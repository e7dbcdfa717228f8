//! What one job may store: the byte caps of its text fields and raw JSON, the
//! depth its raw JSON may reach, and the cutting that keeps a hostile answer
//! within them. Every cut leaves a visible marker (`…[cut: N bytes]` in text,
//! a `_jobtrail` member in raw JSON) and is reported as a [`RowCut`].

use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::model::{JobRow, Source};

/// IDs (job, parent job, resource): longer ones keep a prefix and a hash of the
/// whole, so the same ID is cut the same way by every sync.
pub const MAX_ID_BYTES: usize = 256;
/// Short texts: job type, raw status, resource name, error code.
pub const MAX_NAME_BYTES: usize = 1024;
/// The failure reason, and every string inside a cut raw JSON.
pub const MAX_REASON_BYTES: usize = 4096;
/// The raw JSON of one job.
pub const MAX_RAW_JSON_BYTES: usize = 64 * 1024;
/// Nesting of the raw JSON: well under SQLite's JSON depth limit (1000), past
/// which every `json_extract` over the table fails, and under serde_json's (128).
pub const MAX_JSON_DEPTH: usize = 64;

/// One field of one job that was cut to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The column: `fail_reason`, `raw_json`, …
    pub field: &'static str,
    /// Its size as the API sent it, in bytes.
    pub bytes: usize,
    /// For `raw_json`: how deep it was nested.
    pub depth: usize,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} bytes", self.field, self.bytes)?;
        if self.depth > MAX_JSON_DEPTH {
            write!(f, " nested {} levels deep", self.depth)?;
        }
        Ok(())
    }
}

/// What was cut of one job to store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCut {
    pub source: Source,
    pub project_id: String,
    /// The job's ID as stored (itself cut if it was too long).
    pub job_id: String,
    pub cuts: Vec<Cut>,
}

/// Cuts every field of `row` to its cap; `None` when nothing had to change.
pub fn cap_row(row: &mut JobRow) -> Option<RowCut> {
    let mut cuts = Vec::new();
    let mut text = |field: &'static str, value: &mut String, max: usize, id: bool| {
        let cut = if id {
            cut_id(value, max)
        } else {
            cut_text(value, max)
        };
        if let Some(cut) = cut {
            cuts.push(Cut {
                field,
                bytes: value.len(),
                depth: 0,
            });
            *value = cut;
        }
    };
    text("job_id", &mut row.job_id, MAX_ID_BYTES, true);
    let optional = [
        ("parent_job_id", &mut row.parent_job_id, MAX_ID_BYTES, true),
        ("resource_id", &mut row.resource_id, MAX_ID_BYTES, true),
        ("job_type", &mut row.job_type, MAX_NAME_BYTES, false),
        ("raw_status", &mut row.raw_status, MAX_NAME_BYTES, false),
        (
            "resource_name",
            &mut row.resource_name,
            MAX_NAME_BYTES,
            false,
        ),
        ("error_code", &mut row.error_code, MAX_NAME_BYTES, false),
        ("fail_reason", &mut row.fail_reason, MAX_REASON_BYTES, false),
    ];
    for (field, value, max, id) in optional {
        if let Some(value) = value.as_mut() {
            text(field, value, max, id);
        }
    }
    if let Some((fitted, cut)) = fit_raw_json(&row.raw_json) {
        cuts.push(cut);
        row.raw_json = fitted;
    }
    (!cuts.is_empty()).then(|| RowCut {
        source: row.source,
        project_id: row.project_id.clone(),
        job_id: row.job_id.clone(),
        cuts,
    })
}

/// The marker put where text was cut: the original size, in bytes.
fn marker(bytes: usize) -> String {
    format!("…[cut: {bytes} bytes]")
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes, the marker included; `None` when it fits.
pub fn cut_text(s: &str, max: usize) -> Option<String> {
    if s.len() <= max {
        return None;
    }
    let marker = marker(s.len());
    Some(format!(
        "{}{marker}",
        prefix(s, max.saturating_sub(marker.len()))
    ))
}

/// An ID cut like [`cut_text`], with the start of its SHA-256 in the marker so
/// two long IDs that share a prefix stay two jobs.
fn cut_id(s: &str, max: usize) -> Option<String> {
    if s.len() <= max {
        return None;
    }
    let hash = hex::encode(&Sha256::digest(s.as_bytes())[..8]);
    let marker = format!("…[cut: {} bytes, sha256 {hash}]", s.len());
    Some(format!(
        "{}{marker}",
        prefix(s, max.saturating_sub(marker.len()))
    ))
}

/// How deeply a JSON text nests arrays and objects (0 for a scalar). Reads
/// bytes only, so any depth costs no stack.
pub fn json_depth(raw: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The raw JSON to store for `raw` when it is too large or too deep, and what
/// was cut; `None` when it fits as it is. The result is a JSON object within
/// [`MAX_RAW_JSON_BYTES`] and [`MAX_JSON_DEPTH`]: the members that fit, in
/// order (long strings cut, containers nested too deeply or too large replaced
/// by a marker string), then a `_jobtrail` member saying what was cut.
pub fn fit_raw_json(raw: &str) -> Option<(String, Cut)> {
    let depth = json_depth(raw);
    if raw.len() <= MAX_RAW_JSON_BYTES && depth <= MAX_JSON_DEPTH {
        return None;
    }
    let cut = Cut {
        field: "raw_json",
        bytes: raw.len(),
        depth,
    };
    let mut pruner = Pruner::new(raw);
    let body = pruner.object().unwrap_or_else(|_| {
        pruner.dropped += 1;
        String::new()
    });
    let mut out = String::with_capacity(body.len() + 200);
    out.push('{');
    out.push_str(&body);
    if !body.is_empty() {
        out.push(',');
    }
    let why = if depth > MAX_JSON_DEPTH {
        format!("nested {depth} levels deep (more than {MAX_JSON_DEPTH})")
    } else {
        format!("larger than {MAX_RAW_JSON_BYTES} bytes")
    };
    let _ = write!(
        out,
        "\"_jobtrail\":{{\"cut\":\"the job's JSON was {why}; long values are cut and marked\",\
         \"original_bytes\":{},\"original_depth\":{depth},\"members_dropped\":{}}}}}",
        raw.len(),
        pruner.dropped
    );
    Some((out, cut))
}

/// Room kept in the raw JSON budget for the `_jobtrail` member and the closing brace.
const RESERVED: usize = 512;
/// The most one top-level member (its key and value) may take.
const MAX_MEMBER_BYTES: usize = 16 * 1024;
/// Object keys longer than this are cut.
const MAX_KEY_BYTES: usize = 256;

/// A value that does not fit where it is being copied.
struct TooLarge;

/// Not valid JSON: the raw value is given up as a whole.
struct Invalid;

/// Copies a JSON text member by member, in one pass and without recursion,
/// cutting what does not fit. Input that is not JSON is refused as a whole.
struct Pruner<'a> {
    input: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Top-level members left out because they did not fit.
    dropped: usize,
}

impl<'a> Pruner<'a> {
    fn new(raw: &'a str) -> Pruner<'a> {
        Pruner {
            input: raw.as_bytes(),
            text: raw,
            pos: 0,
            dropped: 0,
        }
    }

    /// The members of the top-level object (without its braces), each within
    /// [`MAX_MEMBER_BYTES`] and all within the budget. Another top-level value
    /// becomes a `value` member.
    fn object(&mut self) -> Result<String, Invalid> {
        let budget = MAX_RAW_JSON_BYTES - RESERVED;
        let mut out = String::new();
        self.skip_ws();
        if self.peek() != Some(b'{') {
            let mut member = String::from("\"value\":");
            self.member_value(&mut member)?;
            return Ok(if member.len() <= budget {
                member
            } else {
                self.dropped += 1;
                String::new()
            });
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            return Ok(out);
        }
        loop {
            self.skip_ws();
            let mut member = String::new();
            self.string(&mut member, MAX_KEY_BYTES)?;
            self.skip_ws();
            self.expect(b':')?;
            member.push(':');
            self.member_value(&mut member)?;
            let comma = usize::from(!out.is_empty());
            if out.len() + comma + member.len() <= budget {
                if comma == 1 {
                    out.push(',');
                }
                out.push_str(&member);
            } else {
                self.dropped += 1;
            }
            self.skip_ws();
            match self.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(out),
                _ => return Err(Invalid),
            }
        }
    }

    /// Appends one member's value; one that would pass [`MAX_MEMBER_BYTES`]
    /// becomes a marker string with its size.
    fn member_value(&mut self, out: &mut String) -> Result<(), Invalid> {
        self.skip_ws();
        let (start, mark) = (self.pos, out.len());
        match self.value(out, mark + MAX_MEMBER_BYTES) {
            Ok(()) => Ok(()),
            Err(Ok(TooLarge)) => {
                out.truncate(mark);
                self.pos = start;
                self.skip_value()?;
                let _ = write!(out, "\"{}\"", marker(self.pos - start));
                Ok(())
            }
            Err(Err(invalid)) => Err(invalid),
        }
    }

    /// Copies one value into `out`, which may not grow past `limit`. Strings
    /// are cut at [`MAX_REASON_BYTES`]; a container that would pass
    /// [`MAX_JSON_DEPTH`] becomes a marker string.
    fn value(&mut self, out: &mut String, limit: usize) -> Result<(), Result<TooLarge, Invalid>> {
        // The closing byte of each open container.
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.skip_ws();
            match self.peek().ok_or(Err(Invalid))? {
                b'[' | b'{' if open.len() + 1 >= MAX_JSON_DEPTH => {
                    let start = self.pos;
                    self.skip_value().map_err(Err)?;
                    let _ = write!(
                        out,
                        "\"{} nested more than {MAX_JSON_DEPTH} levels deep\"",
                        marker(self.pos - start)
                    );
                }
                b @ (b'[' | b'{') => {
                    self.pos += 1;
                    out.push(char::from(b));
                    open.push(if b == b'[' { b']' } else { b'}' });
                    self.skip_ws();
                    if let Some(&close) = open.last()
                        && self.peek() == Some(close)
                    {
                        self.pos += 1;
                        out.push(char::from(close));
                        open.pop();
                    } else {
                        if open.last() == Some(&b'}') {
                            self.key(out)?;
                        }
                        continue;
                    }
                }
                b'"' => self.string(out, MAX_REASON_BYTES).map_err(Err)?,
                _ => self.scalar(out).map_err(Err)?,
            }
            if out.len() > limit {
                return Err(Ok(TooLarge));
            }
            // After a value: the next member, or the end of containers.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match self.next() {
                    Some(b',') => {
                        out.push(',');
                        if close == b'}' {
                            self.key(out)?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        out.push(char::from(close));
                        open.pop();
                    }
                    _ => return Err(Err(Invalid)),
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self, out: &mut String) -> Result<(), Result<TooLarge, Invalid>> {
        self.skip_ws();
        self.string(out, MAX_KEY_BYTES).map_err(Err)?;
        self.skip_ws();
        self.expect(b':').map_err(Err)?;
        out.push(':');
        Ok(())
    }

    /// Copies a string, cut to at most `max` bytes of its JSON text (never
    /// inside an escape or a character) with the marker inside the quotes.
    fn string(&mut self, out: &mut String, max: usize) -> Result<(), Invalid> {
        self.expect(b'"')?;
        let start = self.pos;
        // Only `"` and `\\` matter to find the end (an escape's other bytes are
        // never either): a plain byte loop, however long the string.
        loop {
            match self.input.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return Err(Invalid),
            }
        }
        let end = self.pos;
        if !self.text.is_char_boundary(end) {
            return Err(Invalid);
        }
        self.pos += 1;
        out.push('"');
        if end - start <= max {
            out.push_str(&self.text[start..end]);
        } else {
            let marker = marker(end - start);
            let mut cut = start;
            while cut < end {
                let len = self.piece_len(cut)?;
                if cut + len - start + marker.len() > max {
                    break;
                }
                cut += len;
            }
            out.push_str(&self.text[start..cut]);
            out.push_str(&marker);
        }
        out.push('"');
        Ok(())
    }

    /// The length of the escape or character at `at` inside a string.
    fn piece_len(&self, at: usize) -> Result<usize, Invalid> {
        match self.input.get(at).ok_or(Invalid)? {
            b'\\' => match self.input.get(at + 1) {
                Some(b'u') if self.text.is_char_boundary(at + 6) => Ok(6),
                Some(b'u') | None => Err(Invalid),
                Some(_) if self.text.is_char_boundary(at + 2) => Ok(2),
                Some(_) => Err(Invalid),
            },
            _ => self
                .text
                .get(at..)
                .and_then(|rest| rest.chars().next())
                .map(char::len_utf8)
                .ok_or(Invalid),
        }
    }

    /// A number, `true`, `false` or `null`, copied as it is.
    fn scalar(&mut self, out: &mut String) -> Result<(), Invalid> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        let valid = matches!(token, "true" | "false" | "null")
            || (!token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')));
        if !valid {
            return Err(Invalid);
        }
        out.push_str(token);
        Ok(())
    }

    /// Moves past one value without copying it, however deep.
    fn skip_value(&mut self) -> Result<(), Invalid> {
        let mut depth = 0usize;
        loop {
            self.skip_ws();
            match self.peek().ok_or(Invalid)? {
                b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                b']' | b'}' => {
                    depth = depth.checked_sub(1).ok_or(Invalid)?;
                    self.pos += 1;
                }
                b'"' => {
                    let mut ignored = String::new();
                    self.string(&mut ignored, 0)?;
                }
                b',' | b':' => {
                    self.pos += 1;
                    continue;
                }
                _ => {
                    let mut ignored = String::new();
                    self.scalar(&mut ignored)?;
                }
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Result<(), Invalid> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn row(raw_json: &str) -> JobRow {
        JobRow {
            source: Source::Nosql,
            project_id: "p".into(),
            job_id: "j1".into(),
            parent_job_id: None,
            job_type: Some("CreateInstance".into()),
            status: Status::Failed,
            raw_status: Some("Failed".into()),
            progress: None,
            started_at: None,
            ended_at: None,
            duration_ms: None,
            resource_id: None,
            resource_name: None,
            error_code: None,
            fail_reason: Some("quota".into()),
            raw_json: raw_json.into(),
        }
    }

    #[test]
    fn rows_within_the_caps_are_left_alone() {
        let mut r = row(r#"{"id":"j1","status":"Failed"}"#);
        let before = r.clone();
        assert_eq!(cap_row(&mut r), None);
        assert_eq!(r, before);
    }

    #[test]
    fn a_long_reason_is_cut_with_its_size_and_a_long_id_keeps_a_hash() {
        let reason = "é".repeat(3_000_000);
        let mut r = row("{}");
        r.fail_reason = Some(reason.clone());
        r.job_id = "x".repeat(10_000);
        let cut = cap_row(&mut r).expect("cut");
        let stored = r.fail_reason.as_deref().expect("reason");
        assert!(stored.len() <= MAX_REASON_BYTES, "{}", stored.len());
        assert!(stored.ends_with("…[cut: 6000000 bytes]"), "{stored}");
        assert!(stored.starts_with("éé"));
        assert!(r.job_id.len() <= MAX_ID_BYTES);
        assert!(
            r.job_id.contains("[cut: 10000 bytes, sha256 "),
            "{}",
            r.job_id
        );
        let mut other = row("{}");
        other.job_id = format!("{}y", "x".repeat(9_999));
        cap_row(&mut other);
        assert_ne!(other.job_id, r.job_id, "a different ID stays different");
        assert_eq!(cut.job_id, r.job_id);
        let fields: Vec<&str> = cut.cuts.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["job_id", "fail_reason"]);
    }

    fn extract<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
        &v[key]
    }

    #[test]
    fn a_large_raw_json_keeps_its_small_members_and_says_what_was_cut() {
        let raw = format!(
            r#"{{"blob":"{}","id":"j1","list":[{}],"status":"Failed","instance":{{"id":"i1","name":"{}"}},"n":-1.5e3,"ok":true,"none":null}}"#,
            "a".repeat(1_000_000),
            vec!["1"; 100_000].join(","),
            "b".repeat(10_000),
        );
        let (fitted, cut) = fit_raw_json(&raw).expect("cut");
        assert!(fitted.len() <= MAX_RAW_JSON_BYTES, "{}", fitted.len());
        assert_eq!((cut.field, cut.bytes), ("raw_json", raw.len()));
        let v: serde_json::Value = serde_json::from_str(&fitted).expect("valid JSON");
        assert_eq!(extract(&v, "id"), "j1");
        assert_eq!(extract(&v, "status"), "Failed");
        assert_eq!(v["instance"]["id"], "i1");
        assert!(
            v["instance"]["name"]
                .as_str()
                .is_some_and(|s| s.ends_with("…[cut: 10000 bytes]"))
        );
        assert!(
            v["blob"].as_str().is_some_and(
                |s| s.len() <= MAX_REASON_BYTES && s.ends_with("…[cut: 1000000 bytes]")
            )
        );
        assert!(
            v["list"].as_str().is_some_and(|s| s.starts_with("…[cut: ")),
            "{}",
            v["list"]
        );
        assert_eq!(
            (v["n"].as_f64(), v["ok"].as_bool()),
            (Some(-1500.0), Some(true))
        );
        assert!(v["none"].is_null());
        assert_eq!(v["_jobtrail"]["original_bytes"], raw.len());
    }

    #[test]
    fn a_deep_raw_json_is_flattened_below_the_limit() {
        let depth = 100_000;
        let raw = format!(
            r#"{{"id":"j1","deep":{}1{},"status":"Failed"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(json_depth(&raw), depth + 1);
        let (fitted, cut) = fit_raw_json(&raw).expect("cut");
        assert_eq!(cut.depth, depth + 1);
        assert!(
            json_depth(&fitted) <= MAX_JSON_DEPTH,
            "{}",
            json_depth(&fitted)
        );
        let v: serde_json::Value = serde_json::from_str(&fitted).expect("valid JSON");
        assert_eq!(v["status"], "Failed");
        assert!(
            fitted.contains("nested more than 64 levels deep"),
            "{fitted:.300}"
        );
        assert!(
            v["_jobtrail"]["cut"]
                .as_str()
                .is_some_and(|s| s.contains("100001 levels deep"))
        );
    }

    #[test]
    fn escapes_and_multibyte_text_are_never_split() {
        let text = "\\u00e9\\n中".repeat(2_000);
        let raw = format!(r#"{{"s":"{text}","pad":"{}"}}"#, "p".repeat(70_000));
        let (fitted, _) = fit_raw_json(&raw).expect("cut");
        let v: serde_json::Value = serde_json::from_str(&fitted).expect("valid JSON");
        assert!(v["s"].as_str().is_some_and(|s| s.starts_with("é\n中")));
    }

    #[test]
    fn text_that_is_not_json_is_replaced_by_a_marker_object() {
        let raw = format!("{{\"a\":{}", "x".repeat(70_000));
        let (fitted, _) = fit_raw_json(&raw).expect("cut");
        let v: serde_json::Value = serde_json::from_str(&fitted).expect("valid JSON");
        assert_eq!(v["_jobtrail"]["original_bytes"], raw.len());
        let top_array = format!("[\"{}\"]", "y".repeat(70_000));
        let (fitted, _) = fit_raw_json(&top_array).expect("cut");
        let v: serde_json::Value = serde_json::from_str(&fitted).expect("valid JSON");
        assert!(v["value"].is_array(), "{fitted:.200}");
    }
}
