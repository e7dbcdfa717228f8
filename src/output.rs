//! Formatting data for stdout: tables for people, CSV, JSON and NDJSON for tools.
//! This is the only module that writes result data; everything else hands it a
//! [`ResultSet`] (or a typed report) and an `impl Write`.

use std::borrow::Cow;
use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table};
use serde::ser::{Serialize, Serializer};
use unicode_width::UnicodeWidthChar;

use crate::text::{cut_chars, for_terminal, for_terminal_lines, is_unsafe_for_terminal};

/// How results are printed (`--format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An aligned table for people (wide cells truncated on a terminal).
    Table,
    /// A header row, then one record per row; NULL is an empty field.
    Csv,
    /// One JSON array of objects, values typed (NULL as null).
    Json,
    /// One JSON object per line.
    #[value(alias = "jsonl", alias = "nl")]
    Ndjson,
}

/// One value of a result row, typed as SQLite stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Printed as lowercase hex in every format.
    Blob(Vec<u8>),
}

impl Cell {
    /// The value as text for CSV and tables (`None` for NULL).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Integer(i) => Some(i.to_string()),
            Cell::Real(f) => Some(format_real(*f)),
            Cell::Text(s) => Some(s.clone()),
            Cell::Blob(b) => Some(to_hex(b)),
        }
    }

    /// The value as a table shows it: at most [`MAX_TABLE_CELL_CHARS`]
    /// characters, with a marker saying how many more there were (a 5 MB
    /// reason would otherwise make a 5 MB-wide table, slowly).
    fn table_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Text(s) => Some(cut_chars(s, MAX_TABLE_CELL_CHARS)),
            Cell::Blob(b) if b.len() * 2 > MAX_TABLE_CELL_CHARS => {
                let shown = to_hex(&b[..MAX_TABLE_CELL_CHARS / 2]);
                let rest = (b.len() - MAX_TABLE_CELL_CHARS / 2) * 2;
                Some(Cow::Owned(format!("{shown}…[+{rest} chars]")))
            }
            other => other.to_text().map(Cow::Owned),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Cell::Integer(_) | Cell::Real(_))
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Integer(v)
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Real(v)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Integer(i) => s.serialize_i64(*i),
            // serde_json writes a non-finite float as null: JSON has no Inf.
            Cell::Real(f) => s.serialize_f64(*f),
            Cell::Text(t) => s.serialize_str(t),
            Cell::Blob(b) => s.serialize_str(&to_hex(b)),
        }
    }
}

/// The columns and rows of one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl ResultSet {
    /// The index of the first column with this name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// A table cell shows at most this many characters of a value, then says how
/// many more there were; CSV, JSON and NDJSON always carry the whole value.
pub const MAX_TABLE_CELL_CHARS: usize = 2000;

/// Where the results go, beyond the format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destination {
    /// The terminal width when stdout is a terminal: tables then shorten wide
    /// cells (long `fail_reason`, `raw_json`) with "…" so each row stays on one
    /// line. `None` (a pipe or file) keeps each cell up to
    /// [`MAX_TABLE_CELL_CHARS`]. Other formats ignore it.
    pub width: Option<u16>,
    /// stdout is a terminal: CSV shows control characters as escapes (`\x1b`)
    /// instead of sending them to it. Into a pipe or file CSV is exact.
    pub terminal: bool,
    /// CSV for spreadsheets: a text value starting with `=`, `+`, `-`, `@`, tab
    /// or CR gets a leading `'`, so a spreadsheet shows it instead of running
    /// it as a formula (OWASP's advice for CSV injection).
    pub spreadsheet_safe: bool,
}

/// Writes a result set in the chosen format.
pub fn write_results(
    out: &mut dyn Write,
    rs: &ResultSet,
    format: Format,
    to: Destination,
) -> io::Result<()> {
    match format {
        Format::Table => write_table(out, rs, to.width),
        Format::Csv => write_csv(out, rs, to),
        Format::Json => write_json(out, rs),
        Format::Ndjson => write_ndjson(out, rs),
    }
}

/// Renders a result set as a table string (no trailing newline); used by the
/// status page and the query list as well as `write_results`.
pub fn render_table(rs: &ResultSet, width: Option<u16>) -> String {
    if rs.columns.is_empty() {
        return String::new();
    }
    let flatten = width.is_some();
    let mut header: Vec<String> = rs
        .columns
        .iter()
        .map(|c| clean(&cut_chars(c, MAX_TABLE_CELL_CHARS), true))
        .collect();
    let mut body: Vec<Vec<String>> = rs
        .rows
        .iter()
        .map(|row| {
            (0..rs.columns.len())
                .map(|i| {
                    row.get(i)
                        .and_then(Cell::table_text)
                        .map(|t| clean(&t, flatten))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();

    if let Some(width) = width {
        let natural: Vec<usize> = (0..header.len())
            .map(|i| {
                body.iter()
                    .map(|r| text_width(&r[i]))
                    .chain(std::iter::once(text_width(&header[i])))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let limits = fit_columns(&natural, usize::from(width));
        for (i, limit) in limits.iter().enumerate() {
            header[i] = truncate(&header[i], *limit);
            for row in &mut body {
                row[i] = truncate(&row[i], *limit);
            }
        }
    }

    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    for row in body {
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        let numeric = rs
            .rows
            .iter()
            .any(|r| r.get(i).is_some_and(Cell::is_number))
            && rs
                .rows
                .iter()
                .all(|r| r.get(i).is_none_or(|c| c.is_number() || *c == Cell::Null));
        if numeric {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

fn write_table(out: &mut dyn Write, rs: &ResultSet, width: Option<u16>) -> io::Result<()> {
    if rs.columns.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", render_table(rs, width))
}

fn write_csv(out: &mut dyn Write, rs: &ResultSet, to: Destination) -> io::Result<()> {
    let field = |text: String, is_text: bool| -> String {
        let text = if to.spreadsheet_safe && is_text {
            neutralize_formula(text)
        } else {
            text
        };
        if to.terminal {
            for_terminal_lines(&text).into_owned()
        } else {
            text
        }
    };
    let mut writer = csv::Writer::from_writer(out);
    if !rs.columns.is_empty() {
        writer.write_record(rs.columns.iter().map(|c| field(c.clone(), true)))?;
    }
    for row in &rs.rows {
        writer.write_record(
            row.iter()
                .map(|c| field(c.to_text().unwrap_or_default(), matches!(c, Cell::Text(_)))),
        )?;
    }
    writer.flush()
}

/// `=SUM(A1)` → `'=SUM(A1)`: a spreadsheet shows a value starting with `'` as
/// text. Numbers are typed cells and are left alone (`-5` stays a number).
fn neutralize_formula(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn write_json(out: &mut dyn Write, rs: &ResultSet) -> io::Result<()> {
    if rs.rows.is_empty() {
        return writeln!(out, "[]");
    }
    let keys = unique_keys(&rs.columns);
    writeln!(out, "[")?;
    for (n, row) in rs.rows.iter().enumerate() {
        out.write_all(b"  ")?;
        write_object(out, &keys, row)?;
        out.write_all(if n + 1 < rs.rows.len() { b",\n" } else { b"\n" })?;
    }
    writeln!(out, "]")
}

fn write_ndjson(out: &mut dyn Write, rs: &ResultSet) -> io::Result<()> {
    let keys = unique_keys(&rs.columns);
    for row in &rs.rows {
        write_object(out, &keys, row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One row as a JSON object, keys in column order.
fn write_object(out: &mut dyn Write, keys: &[String], row: &[Cell]) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        write_json_value(out, key, false)?;
        out.write_all(b": ")?;
        write_json_value(out, row.get(i).unwrap_or(&Cell::Null), false)?;
    }
    out.write_all(b"}")
}

/// Writes `value` as JSON (indented when `pretty`), with the characters
/// serde_json leaves raw but a terminal could act on (bidirectional-text
/// controls such as U+202E, C1 controls, DEL) written as `\u` escapes: the
/// value read back is the same.
pub fn write_json_value<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
    pretty: bool,
) -> io::Result<()> {
    if pretty {
        let formatter = TerminalSafe(serde_json::ser::PrettyFormatter::new());
        value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))?;
    } else {
        let formatter = TerminalSafe(serde_json::ser::CompactFormatter);
        value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))?;
    }
    Ok(())
}

/// A serde_json formatter that writes strings through
/// [`crate::text::json_terminal_safe`] and leaves the layout to `F`.
struct TerminalSafe<F>(F);

/// Forwards every layout method `F` may override.
macro_rules! forward {
    ($($name:ident),*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.0.$name(w)
        }
    )*};
}

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    forward!(
        begin_array,
        end_array,
        end_array_value,
        begin_object,
        end_object,
        end_object_key,
        begin_object_value,
        end_object_value
    );

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        w.write_all(crate::text::json_terminal_safe(fragment).as_bytes())
    }
}

/// JSON objects cannot repeat a key: a second `id` becomes `id_2`, and so on.
fn unique_keys(columns: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    for column in columns {
        let mut key = column.clone();
        let mut n = 2;
        while keys.contains(&key) {
            key = format!("{column}_{n}");
            n += 1;
        }
        keys.push(key);
    }
    keys
}

/// Shortest text that reads back as the same float, always marked as a real
/// (`100.0`, not `100`).
pub fn format_real(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{f:?}")
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Makes text safe for a terminal table: tabs become spaces, line breaks are
/// kept only when `flatten` is false, other control characters (escape
/// sequences from the database included) and bidirectional-text controls are
/// shown as escapes (`\x1b`, `\u{202e}`), as everywhere else.
fn clean(s: &str, flatten: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(' '),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push(if flatten { ' ' } else { '\n' }),
            c if is_unsafe_for_terminal(c) => {
                out.push_str(&for_terminal(c.encode_utf8(&mut [0; 4])));
            }
            c => out.push(c),
        }
    }
    out
}

/// Display width in terminal columns (CJK characters count two).
pub fn text_width(s: &str) -> usize {
    s.lines()
        .map(|l| l.chars().map(|c| c.width().unwrap_or(0)).sum())
        .max()
        .unwrap_or(0)
}

/// Cuts `s` to at most `limit` columns, ending with "…" when anything was cut.
pub fn truncate(s: &str, limit: usize) -> String {
    if text_width(s) <= limit {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > limit {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// The narrowest a column is cut to, however little room there is.
const MIN_COLUMN_WIDTH: usize = 4;

/// Decides each column's maximum width so the table fits `total` terminal
/// columns: narrow columns keep their natural width, the room left is shared
/// equally among the wide ones (water-filling).
fn fit_columns(natural: &[usize], total: usize) -> Vec<usize> {
    let n = natural.len();
    // Per column: one border and a space of padding either side; plus the last border.
    let overhead = 3 * n + 1;
    let mut budget = total.saturating_sub(overhead);
    if natural.iter().sum::<usize>() <= budget {
        return natural.to_vec();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| natural[i]);
    let mut limits = natural.to_vec();
    let mut remaining = n;
    for (k, &i) in order.iter().enumerate() {
        let share = budget / remaining;
        if natural[i] <= share {
            budget -= natural[i];
            remaining -= 1;
            continue;
        }
        // Every column from here on is wider than its share: split what is left.
        let rest = &order[k..];
        let extra = budget % remaining;
        for (j, &col) in rest.iter().enumerate() {
            let mut limit = share + usize::from(j >= rest.len() - extra);
            limit = limit.max(MIN_COLUMN_WIDTH.min(natural[col]));
            limits[col] = limit;
        }
        break;
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResultSet {
        ResultSet {
            columns: vec![
                "id".into(),
                "rate".into(),
                "reason".into(),
                "empty".into(),
                "blob".into(),
            ],
            rows: vec![
                vec![
                    Cell::Integer(1),
                    Cell::Real(12.5),
                    Cell::Text("disk full, \"quoted\", comma".into()),
                    Cell::Null,
                    Cell::Blob(vec![0, 255]),
                ],
                vec![
                    Cell::Integer(-9_007_199_254_740_993),
                    Cell::Real(100.0),
                    Cell::Text("line one\nline two 中文".into()),
                    Cell::Text(String::new()),
                    Cell::Null,
                ],
            ],
        }
    }

    fn render(rs: &ResultSet, format: Format, width: Option<u16>) -> String {
        let mut buf = Vec::new();
        let to = Destination {
            width,
            ..Destination::default()
        };
        write_results(&mut buf, rs, format, to).expect("write to a Vec");
        String::from_utf8(buf).expect("utf-8 output")
    }

    fn json_to_cell(v: &serde_json::Value) -> Cell {
        match v {
            serde_json::Value::Null => Cell::Null,
            serde_json::Value::Number(n) if n.is_i64() => Cell::Integer(n.as_i64().expect("i64")),
            serde_json::Value::Number(n) => Cell::Real(n.as_f64().expect("f64")),
            serde_json::Value::String(s) => Cell::Text(s.clone()),
            other => panic!("unexpected JSON value {other}"),
        }
    }

    /// What a typed round trip through JSON can preserve (blobs become hex text).
    fn expected_json_rows(rs: &ResultSet) -> Vec<Vec<Cell>> {
        rs.rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Blob(b) => Cell::Text(to_hex(b)),
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn json_parses_back_with_types_and_column_order() {
        let rs = sample();
        let text = render(&rs, Format::Json, None);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let rows = value.as_array().expect("an array");
        let parsed: Vec<Vec<Cell>> = rows
            .iter()
            .map(|o| {
                let o = o.as_object().expect("an object");
                rs.columns.iter().map(|c| json_to_cell(&o[c])).collect()
            })
            .collect();
        assert_eq!(parsed, expected_json_rows(&rs));
        // Large integers stay exact, 100.0 stays a real, keys keep column order.
        assert!(text.contains("-9007199254740993"));
        assert!(text.contains("100.0"));
        let first = text.lines().nth(1).expect("a row line");
        assert!(first.find("\"id\"") < first.find("\"rate\""));
        assert!(first.find("\"rate\"") < first.find("\"reason\""));
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let rs = sample();
        let text = render(&rs, Format::Ndjson, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let parsed: Vec<Vec<Cell>> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON line");
                rs.columns.iter().map(|c| json_to_cell(&v[c])).collect()
            })
            .collect();
        assert_eq!(parsed, expected_json_rows(&rs));
    }

    #[test]
    fn empty_results_are_still_valid() {
        let rs = ResultSet {
            columns: vec!["a".into()],
            rows: vec![],
        };
        let json: serde_json::Value =
            serde_json::from_str(&render(&rs, Format::Json, None)).expect("valid JSON");
        assert_eq!(json, serde_json::json!([]));
        assert_eq!(render(&rs, Format::Ndjson, None), "");
        assert_eq!(render(&rs, Format::Csv, None), "a\n");
        assert!(render(&rs, Format::Table, Some(80)).contains('a'));
    }

    #[test]
    fn duplicate_column_names_get_distinct_json_keys() {
        let rs = ResultSet {
            columns: vec!["id".into(), "id".into()],
            rows: vec![vec![Cell::Integer(1), Cell::Integer(2)]],
        };
        let v: serde_json::Value =
            serde_json::from_str(render(&rs, Format::Ndjson, None).trim()).expect("valid JSON");
        assert_eq!(v, serde_json::json!({"id": 1, "id_2": 2}));
    }

    #[test]
    fn csv_parses_back_to_the_same_rows() {
        let rs = sample();
        let text = render(&rs, Format::Csv, None);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, rs.columns);
        let records: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(records.len(), rs.rows.len());
        for (record, row) in records.iter().zip(&rs.rows) {
            for (field, cell) in record.iter().zip(row) {
                match cell {
                    Cell::Null => assert_eq!(field, ""),
                    Cell::Integer(i) => assert_eq!(field.parse::<i64>().expect("integer"), *i),
                    Cell::Real(f) => assert_eq!(field.parse::<f64>().expect("real"), *f),
                    Cell::Text(t) => assert_eq!(field, t),
                    Cell::Blob(b) => assert_eq!(field, to_hex(b)),
                }
            }
        }
        // Reals keep a decimal point so they read back as reals.
        assert_eq!(&records[1][1], "100.0");
    }

    #[test]
    fn tables_align_and_keep_everything_without_a_width() {
        let rs = sample();
        let text = render(&rs, Format::Table, None);
        assert!(text.contains("disk full, \"quoted\", comma"));
        assert!(text.contains("line two 中文"));
        assert!(!text.contains('…'));
        // Every line of a table has the same display width.
        let widths: Vec<usize> = text.lines().map(text_width).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }

    #[test]
    fn tables_truncate_wide_cells_to_the_terminal_width() {
        let long = "x".repeat(500);
        let rs = ResultSet {
            columns: vec!["job_id".into(), "status".into(), "raw_json".into()],
            rows: vec![
                vec!["abc-123".into(), "failed".into(), Cell::Text(long.clone())],
                vec![
                    "def".into(),
                    "ok".into(),
                    "中文中文中文中文中文中文中文中文中文中文中文中文中文中文".into(),
                ],
            ],
        };
        let text = render(&rs, Format::Table, Some(60));
        for line in text.lines() {
            assert!(text_width(line) <= 60, "line too wide: {line}");
        }
        assert!(text.contains('…'));
        // Narrow columns are kept whole; only the wide one is cut.
        assert!(text.contains("abc-123"));
        assert!(text.contains("failed"));
        assert!(!text.contains(&long));
        // One line per row: header, 2 rows, and 3 rule lines.
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let rs = ResultSet {
            columns: vec!["reason".into()],
            rows: vec![vec!["evil \u{1b}[31mred\u{1b}[0m\ttab".into()]],
        };
        let text = render(&rs, Format::Table, Some(80));
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("red"));
        assert!(text.contains("evil \\x1b[31mred"), "{text}");
    }

    #[test]
    fn bidi_controls_are_escaped_in_tables_and_json() {
        let rs = ResultSet {
            columns: vec!["name\u{202e}".into()],
            rows: vec![vec!["invoice\u{202e}fdp.exe\u{9b}".into()]],
        };
        let table = render(&rs, Format::Table, None);
        assert!(
            !table
                .chars()
                .any(|c| c != '\n' && is_unsafe_for_terminal(c)),
            "{table}"
        );
        assert!(table.contains("invoice\\u{202e}fdp.exe\\u{9b}"), "{table}");
        for format in [Format::Json, Format::Ndjson] {
            let json = render(&rs, format, None);
            assert!(
                !json.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)),
                "{json}"
            );
            assert!(json.contains("invoice\\u202efdp.exe\\u009b"), "{json}");
            let value: serde_json::Value = serde_json::from_str(
                json.lines()
                    .find(|l| l.contains('{'))
                    .unwrap_or("{}")
                    .trim_end_matches(','),
            )
            .expect("valid JSON");
            assert_eq!(value["name\u{202e}"], "invoice\u{202e}fdp.exe\u{9b}");
        }
    }

    #[test]
    fn huge_cells_are_cut_in_tables_only() {
        let huge = "r".repeat(5_000_000);
        let rs = ResultSet {
            columns: vec!["id".into(), "reason".into(), "blob".into()],
            rows: (0..6)
                .map(|i| {
                    vec![
                        Cell::Integer(i),
                        Cell::Text(huge.clone()),
                        Cell::Blob(vec![0xab; 1_000_000]),
                    ]
                })
                .collect(),
        };
        let table = render(&rs, Format::Table, None);
        // Three 4,000-column border lines of 3-byte box characters, seven rows:
        // tens of kilobytes, where the values hold 36 MB.
        assert!(table.len() < 100_000, "{} bytes", table.len());
        assert!(table.contains(&format!("…[+{} chars]", 5_000_000 - MAX_TABLE_CELL_CHARS)));
        assert!(table.contains(&format!("…[+{} chars]", 2_000_000 - MAX_TABLE_CELL_CHARS)));
        let csv = render(&rs, Format::Csv, None);
        assert!(csv.len() > 6 * 7_000_000, "CSV keeps every value whole");
    }

    #[test]
    fn csv_is_exact_unless_asked_to_be_spreadsheet_safe() {
        let rs = ResultSet {
            columns: vec!["v".into(), "n".into()],
            rows: [
                "=HYPERLINK(\"http://x\")",
                "+1",
                "-2",
                "@SUM(A1)",
                "\tx",
                "\ry",
                "plain",
                "a=b",
            ]
            .into_iter()
            .map(|v| vec![Cell::from(v), Cell::Integer(-5)])
            .collect(),
        };
        let exact = render(&rs, Format::Csv, None);
        assert!(
            exact.contains("\"=HYPERLINK(\"\"http://x\"\")\",-5"),
            "{exact}"
        );
        let mut buf = Vec::new();
        let to = Destination {
            spreadsheet_safe: true,
            ..Destination::default()
        };
        write_results(&mut buf, &rs, Format::Csv, to).expect("csv");
        let safe = String::from_utf8(buf).expect("utf-8");
        let mut reader = csv::Reader::from_reader(safe.as_bytes());
        let values: Vec<(String, String)> = reader
            .records()
            .map(|r| {
                let r = r.expect("record");
                (r[0].to_owned(), r[1].to_owned())
            })
            .collect();
        let expected = [
            "'=HYPERLINK(\"http://x\")",
            "'+1",
            "'-2",
            "'@SUM(A1)",
            "'\tx",
            "'\ry",
            "plain",
            "a=b",
        ];
        for ((value, number), want) in values.iter().zip(expected) {
            assert_eq!(value, want);
            assert_eq!(number, "-5", "numbers stay numbers");
        }
    }

    #[test]
    fn csv_on_a_terminal_shows_controls_as_escapes() {
        let rs = ResultSet {
            columns: vec!["v".into()],
            rows: vec![vec!["a\u{1b}]52;c;eA==\u{7}\nb".into()]],
        };
        let mut buf = Vec::new();
        let to = Destination {
            terminal: true,
            ..Destination::default()
        };
        write_results(&mut buf, &rs, Format::Csv, to).expect("csv");
        let text = String::from_utf8(buf).expect("utf-8");
        assert_eq!(text, "v\n\"a\\x1b]52;c;eA==\\x07\nb\"\n");
        // Into a pipe it is exact.
        assert!(render(&rs, Format::Csv, None).contains('\u{1b}'));
    }

    #[test]
    fn numeric_columns_are_right_aligned() {
        let rs = ResultSet {
            columns: vec!["n".into(), "name".into()],
            rows: vec![
                vec![Cell::Integer(5), "a".into()],
                vec![Cell::Integer(12345), "bbbbbb".into()],
            ],
        };
        let text = render(&rs, Format::Table, None);
        assert!(text.contains("│     5 ┆ a      │"), "{text}");
    }

    #[test]
    fn column_fitting_shares_room_among_wide_columns() {
        assert_eq!(fit_columns(&[3, 4, 5], 100), vec![3, 4, 5]);
        // 3 columns: overhead 10, budget 40: 5 fits, the rest share 35.
        assert_eq!(fit_columns(&[5, 100, 100], 50), vec![5, 17, 18]);
        let limits = fit_columns(&[2, 50, 300], 40);
        assert_eq!(limits[0], 2);
        assert!(limits.iter().sum::<usize>() <= 40 - 10);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("中文中文", 5), "中文…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
