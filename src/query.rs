//! `jobtrail query` and `jobtrail queries`: read-only SQL, inline or saved.
//!
//! Saved queries are `.sql` files: the first comment line is the description,
//! further header lines `-- :name [= DEFAULT] help` document parameters (a
//! default of `NULL` makes one optional). Built-in ones are embedded from
//! `queries/`; files in a user folder override or extend them.
//!
//! sqlx's SQLite driver binds only `?`, `?NNN` and `$NNN`, and silently binds
//! NULL to a name it does not know, so `:name` parameters are rewritten here to
//! `?NNN` (skipping string literals, quoted identifiers and comments), and every
//! other placeholder form is refused rather than left to become NULL.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Column, Executor, Row, SqlSafeStr, Statement, TypeInfo, ValueRef};

use crate::output::{Cell, Format, ResultSet, write_results};
use crate::store::Store;

/// The saved queries shipped in the binary, from `queries/`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "failure-rate-by-type",
        include_str!("../queries/failure-rate-by-type.sql"),
    ),
    (
        "failure-rate-by-week",
        include_str!("../queries/failure-rate-by-week.sql"),
    ),
    (
        "failures-by-reason",
        include_str!("../queries/failures-by-reason.sql"),
    ),
    ("job-history", include_str!("../queries/job-history.sql")),
    (
        "recent-failures",
        include_str!("../queries/recent-failures.sql"),
    ),
    (
        "slowest-job-types",
        include_str!("../queries/slowest-job-types.sql"),
    ),
    ("stuck-jobs", include_str!("../queries/stuck-jobs.sql")),
];

/// Errors running a query, each naming the query and what to do.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "no saved query named `{name}` (saved queries: {available}); inline SQL must be a whole statement, e.g. \"SELECT * FROM jobs LIMIT 5\""
    )]
    NoSuchQuery { name: String, available: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{origin}, line {line}: {message}")]
    BadHeader {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{query} needs the parameter :{name}: pass --param {name}=VALUE")]
    MissingParam { query: String, name: String },
    #[error("{query} has no parameter :{name} ({expected})")]
    UnknownParam {
        query: String,
        name: String,
        expected: String,
    },
    #[error("the parameter :{name} is given more than once")]
    DuplicateParam { name: String },
    #[error(
        "{query}: the placeholder `{token}` is not supported; name parameters like :since and pass them with --param since=VALUE"
    )]
    Placeholder { query: String, token: String },
    #[error("{query}: run one statement at a time (there is more SQL after the first `;`)")]
    MultipleStatements { query: String },
    #[error("{query}: there is no SQL to run")]
    Empty { query: String },
    #[error(
        "query opens the database read-only; {query} tries to change it ({message}), so it was refused and changes nothing"
    )]
    ReadOnly { query: String, message: String },
    #[error("{query} failed: {source}")]
    Sql { query: String, source: sqlx::Error },
}

/// What a parameter gets when `--param` does not give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamDefault {
    /// No default: leaving it out is an error.
    Required,
    /// Optional: bound as NULL (the SQL tests `:name IS NULL`).
    Null,
    /// Bound like a `--param` value with this text.
    Value(String),
}

/// One documented parameter of a saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub default: ParamDefault,
    /// The rest of its header line (may be empty).
    pub help: String,
}

/// A saved (or inline) query, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    pub name: String,
    pub description: String,
    /// The whole file, header comments included.
    pub sql: String,
    /// Every `:name` the SQL uses, in order of first use.
    pub params: Vec<String>,
    /// One per entry of `params`, same order.
    pub param_specs: Vec<ParamSpec>,
    /// The file it came from; `None` for built-in and inline queries.
    pub path: Option<PathBuf>,
}

impl SavedQuery {
    /// Parses a query file: description line, parameter header, SQL.
    /// `origin` names it in errors.
    pub fn parse(name: &str, origin: &str, text: &str) -> Result<SavedQuery, QueryError> {
        let bad = |line: usize, message: String| QueryError::BadHeader {
            origin: origin.to_owned(),
            line,
            message,
        };
        let mut description = String::new();
        let mut declared: Vec<(usize, ParamSpec)> = Vec::new();
        let mut first = true;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let Some(comment) = trimmed.strip_prefix("--") else {
                break;
            };
            let comment = comment.trim();
            if std::mem::take(&mut first) && !comment.starts_with(':') {
                description = comment.to_owned();
                continue;
            }
            if let Some(spec) = comment.strip_prefix(':') {
                let spec = parse_param_spec(spec).map_err(|m| bad(n + 1, m))?;
                if declared.iter().any(|(_, d)| d.name == spec.name) {
                    return Err(bad(n + 1, format!(":{} is declared twice", spec.name)));
                }
                declared.push((n + 1, spec));
            }
        }
        let scanned = scan(text, origin)?;
        for (line, spec) in &declared {
            if !scanned.names.contains(&spec.name) {
                return Err(bad(
                    *line,
                    format!("declares :{} but the SQL never uses it", spec.name),
                ));
            }
        }
        let param_specs = scanned
            .names
            .iter()
            .map(|name| {
                declared
                    .iter()
                    .find(|(_, d)| &d.name == name)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| ParamSpec {
                        name: name.clone(),
                        default: ParamDefault::Required,
                        help: String::new(),
                    })
            })
            .collect();
        Ok(SavedQuery {
            name: name.to_owned(),
            description,
            sql: text.to_owned(),
            params: scanned.names,
            param_specs,
            path: None,
        })
    }

    /// How errors name this query.
    fn label(&self) -> String {
        match &self.path {
            Some(path) => format!("query file {}", path.display()),
            None if self.name == INLINE => "the SQL".to_owned(),
            None => format!("saved query `{}`", self.name),
        }
    }
}

/// SQL statements that are a single word: run as SQL when no saved query has the name.
const ONE_WORD_STATEMENTS: [&str; 7] = [
    "ANALYZE", "BEGIN", "COMMIT", "END", "REINDEX", "ROLLBACK", "VACUUM",
];

/// The name given to SQL typed on the command line.
const INLINE: &str = "(inline)";

/// `NAME [= DEFAULT] [help]` after the `:` of a header line.
fn parse_param_spec(s: &str) -> Result<ParamSpec, String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if !is_param_name(name) {
        return Err(format!(
            "`:{s}` does not start with a parameter name (letters, digits, _)"
        ));
    }
    let rest = s[end..].trim_start();
    let (default, help) = match rest.strip_prefix('=') {
        Some(after) => {
            let after = after.trim_start();
            let value_end = after.find(char::is_whitespace).unwrap_or(after.len());
            let value = &after[..value_end];
            if value.is_empty() {
                return Err(format!(":{name} has `=` but no default value"));
            }
            let default = if value.eq_ignore_ascii_case("null") {
                ParamDefault::Null
            } else {
                ParamDefault::Value(value.to_owned())
            };
            (default, after[value_end..].trim())
        }
        None => (ParamDefault::Required, rest),
    };
    Ok(ParamSpec {
        name: name.to_owned(),
        default,
        help: help.to_owned(),
    })
}

fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Built-in queries, overridden or extended by `*.sql` files in `user_dir`
/// (same name wins). A `user_dir` that does not exist adds nothing. Sorted by name.
pub fn saved_queries(user_dir: Option<&Path>) -> Result<Vec<SavedQuery>, QueryError> {
    let mut all: BTreeMap<String, SavedQuery> = BTreeMap::new();
    for (name, text) in BUILTIN {
        all.insert(
            (*name).to_owned(),
            SavedQuery::parse(name, &format!("built-in query {name}"), text)?,
        );
    }
    if let Some(dir) = user_dir {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(all.into_values().collect());
            }
            Err(source) => {
                return Err(QueryError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| QueryError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let query = load_file(&path, name)?;
            all.insert(name.to_owned(), query);
        }
    }
    Ok(all.into_values().collect())
}

fn load_file(path: &Path, name: &str) -> Result<SavedQuery, QueryError> {
    let text = std::fs::read_to_string(path).map_err(|source| QueryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut query = SavedQuery::parse(name, &path.display().to_string(), &text)?;
    query.path = Some(path.to_path_buf());
    Ok(query)
}

/// For clap: `NAME=VALUE` (a leading `:` on the name is allowed) → `(NAME, VALUE)`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!(
            "`{s}` is not NAME=VALUE (for example --param since=2024-01-01)"
        ));
    };
    let name = name.trim();
    let name = name.strip_prefix(':').unwrap_or(name);
    if !is_param_name(name) {
        return Err(format!(
            "`{name}` is not a parameter name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Finds what to run: `file` when given, else the saved query named `input`,
/// else `input` as inline SQL.
pub fn resolve(
    input: &str,
    file: Option<&Path>,
    user_dir: Option<&Path>,
) -> Result<SavedQuery, QueryError> {
    if let Some(path) = file {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("query")
            .to_owned();
        return load_file(path, &name);
    }
    let trimmed = input.trim();
    let looks_like_name = !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if looks_like_name {
        let mut queries = saved_queries(user_dir)?;
        let wanted = trimmed.strip_suffix(".sql").unwrap_or(trimmed);
        if let Some(found) = queries.iter().position(|q| q.name == wanted) {
            return Ok(queries.swap_remove(found));
        }
        if !ONE_WORD_STATEMENTS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(trimmed))
        {
            return Err(QueryError::NoSuchQuery {
                name: trimmed.to_owned(),
                available: queries
                    .iter()
                    .map(|q| q.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    SavedQuery::parse(INLINE, "the SQL", input)
}

/// Runs inline SQL, a saved query by name, or `file` (which wins when given) on
/// the store, read-only, with `:name` parameters filled from `params`.
pub async fn run(
    store: &Store,
    input: &str,
    file: Option<&Path>,
    user_dir: Option<&Path>,
    params: &[(String, String)],
) -> Result<ResultSet, QueryError> {
    let query = resolve(input, file, user_dir)?;
    run_query(store, &query, params).await
}

/// Runs one parsed query read-only with its parameters.
pub async fn run_query(
    store: &Store,
    query: &SavedQuery,
    params: &[(String, String)],
) -> Result<ResultSet, QueryError> {
    let label = query.label();
    let scanned = scan(&query.sql, &label)?;
    let binds = bind_values(query, &label, params)?;
    execute(store, &label, &scanned.sql, &binds).await
}

/// A value ready to bind: typed from its text.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// Integers bind as integers and reals as reals when written canonically (so a
/// job ID like `0123` stays text), everything else as text.
fn typed(value: &str) -> Bind {
    if let Ok(i) = value.parse::<i64>()
        && i.to_string() == value
    {
        return Bind::Integer(i);
    }
    let numeric_chars = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    let starts_well = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-');
    if numeric_chars
        && starts_well
        && value.contains(['.', 'e', 'E'])
        && let Ok(f) = value.parse::<f64>()
        && f.is_finite()
    {
        return Bind::Real(f);
    }
    Bind::Text(value.to_owned())
}

fn bind_values(
    query: &SavedQuery,
    label: &str,
    params: &[(String, String)],
) -> Result<Vec<Bind>, QueryError> {
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in params {
        let name = name.strip_prefix(':').unwrap_or(name);
        if given.insert(name, value).is_some() {
            return Err(QueryError::DuplicateParam {
                name: name.to_owned(),
            });
        }
    }
    for name in given.keys() {
        if !query.params.iter().any(|p| p == name) {
            let expected = if query.params.is_empty() {
                "it takes no parameters".to_owned()
            } else {
                format!(
                    "it takes {}",
                    query
                        .params
                        .iter()
                        .map(|p| format!(":{p}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(QueryError::UnknownParam {
                query: label.to_owned(),
                name: (*name).to_owned(),
                expected,
            });
        }
    }
    query
        .param_specs
        .iter()
        .map(
            |spec| match (given.get(spec.name.as_str()), &spec.default) {
                (Some(value), _) => Ok(typed(value)),
                (None, ParamDefault::Null) => Ok(Bind::Null),
                (None, ParamDefault::Value(v)) => Ok(typed(v)),
                (None, ParamDefault::Required) => Err(QueryError::MissingParam {
                    query: label.to_owned(),
                    name: spec.name.clone(),
                }),
            },
        )
        .collect()
}

/// SQL with `:name` rewritten to `?N`, cut at its first top-level `;`.
#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    sql: String,
    /// `names[k]` is bound as `?{k+1}`.
    names: Vec<String>,
}

/// Rewrites `:name` parameters to numbered ones, outside string literals,
/// quoted identifiers and comments; refuses other placeholder forms and a
/// second statement.
fn scan(sql: &str, label: &str) -> Result<Scanned, QueryError> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut names: Vec<String> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    let mut end_of_statement: Option<usize> = None;
    let mut has_content = false;
    // Whether the previous character continues an identifier (`a$b` is one name).
    let mut in_word = false;
    let more_sql = || QueryError::MultipleStatements {
        query: label.to_owned(),
    };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Comments and whitespace may follow the last `;`; anything else may not.
        let is_comment = (c == b'-' && next == Some(b'-')) || (c == b'/' && next == Some(b'*'));
        if end_of_statement.is_some() && !c.is_ascii_whitespace() && !is_comment && c != b';' {
            return Err(more_sql());
        }
        match c {
            b'-' if next == Some(b'-') => {
                i = find_from(b, i + 2, b"\n").map_or(b.len(), |p| p + 1);
                in_word = false;
            }
            b'/' if next == Some(b'*') => {
                i = find_from(b, i + 2, b"*/").map_or(b.len(), |p| p + 2);
                in_word = false;
            }
            b'\'' | b'"' | b'`' => {
                i = skip_quoted(b, i, c);
                has_content = true;
                in_word = false;
            }
            b'[' => {
                i = find_from(b, i + 1, b"]").map_or(b.len(), |p| p + 1);
                has_content = true;
                in_word = false;
            }
            b';' => {
                end_of_statement.get_or_insert(i);
                i += 1;
                in_word = false;
            }
            b':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == b'_') => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &sql[start..end];
                let index = match names.iter().position(|n| n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name.to_owned());
                        names.len()
                    }
                };
                out.push_str(&sql[copied..i]);
                out.push_str(&format!("?{index}"));
                copied = end;
                i = end;
                has_content = true;
                in_word = true;
            }
            b':' | b'@' | b'?' => return Err(placeholder(sql, i, label)),
            b'$' if !in_word => return Err(placeholder(sql, i, label)),
            c if c.is_ascii_whitespace() => {
                i += 1;
                in_word = false;
            }
            c => {
                i += 1;
                has_content = true;
                in_word = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
            }
        }
    }
    if !has_content {
        return Err(QueryError::Empty {
            query: label.to_owned(),
        });
    }
    let stop = end_of_statement.unwrap_or(b.len());
    if copied < stop {
        out.push_str(&sql[copied..stop]);
    }
    Ok(Scanned { sql: out, names })
}

/// The end (one past the closing quote) of a quoted run starting at `start`;
/// a doubled quote character is an escaped one.
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn find_from(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn placeholder(sql: &str, at: usize, label: &str) -> QueryError {
    let token: String = sql[at..]
        .chars()
        .enumerate()
        .take_while(|(k, c)| *k == 0 || c.is_alphanumeric() || *c == '_')
        .map(|(_, c)| c)
        .collect();
    QueryError::Placeholder {
        query: label.to_owned(),
        token,
    }
}

/// SQLite's result code for "attempt to write a readonly database" (low byte of
/// the extended code).
const SQLITE_READONLY: i64 = 8;

fn sql_error(label: &str, source: sqlx::Error) -> QueryError {
    if let sqlx::Error::Database(db) = &source {
        let code = db.code().and_then(|c| c.parse::<i64>().ok());
        if code.is_some_and(|c| c & 0xff == SQLITE_READONLY) {
            return QueryError::ReadOnly {
                query: label.to_owned(),
                message: db.message().to_owned(),
            };
        }
    }
    QueryError::Sql {
        query: label.to_owned(),
        source,
    }
}

async fn execute(
    store: &Store,
    label: &str,
    sql: &str,
    binds: &[Bind],
) -> Result<ResultSet, QueryError> {
    let err = |e| sql_error(label, e);
    let mut conn = store.pool().acquire().await.map_err(err)?;
    // Belt and braces: the CLI opens the file read-only, and this connection
    // refuses writes too, whatever store it came from. It is closed afterwards
    // rather than returned to the pool, so the setting never outlives the query.
    conn.close_on_drop();
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    let statement = (&mut *conn)
        .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await
        .map_err(err)?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let mut q = statement.query();
    for bind in binds {
        q = match bind {
            Bind::Null => q.bind(None::<String>),
            Bind::Integer(i) => q.bind(*i),
            Bind::Real(f) => q.bind(*f),
            Bind::Text(t) => q.bind(t.clone()),
        };
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..row.len() {
            cells.push(decode(row, i).map_err(err)?);
        }
        out.push(cells);
    }
    Ok(ResultSet { columns, rows: out })
}

/// One value as SQLite stored it (its storage class, not the column's declared type).
fn decode(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Cell, sqlx::Error> {
    let kind = {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Cell::Null);
        }
        raw.type_info().name().to_owned()
    };
    Ok(match kind.as_str() {
        "INTEGER" | "BOOLEAN" => Cell::Integer(row.try_get_unchecked::<i64, _>(i)?),
        "REAL" => Cell::Real(row.try_get_unchecked::<f64, _>(i)?),
        "BLOB" => Cell::Blob(row.try_get_unchecked::<Vec<u8>, _>(i)?),
        _ => match row.try_get_unchecked::<String, _>(i) {
            Ok(s) => Cell::Text(s),
            // Text that is not UTF-8: show it rather than fail the whole query.
            Err(_) => Cell::Text(
                String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i)?).into_owned(),
            ),
        },
    })
}

/// `jobtrail queries`: name, description and parameters, as a table.
pub fn write_query_list(out: &mut dyn io::Write, queries: &[SavedQuery]) -> io::Result<()> {
    let rows = queries
        .iter()
        .map(|q| {
            let params = q
                .param_specs
                .iter()
                .map(|p| match &p.default {
                    ParamDefault::Required => format!(":{}", p.name),
                    ParamDefault::Null => format!(":{} (optional)", p.name),
                    ParamDefault::Value(v) => format!(":{} (default {v})", p.name),
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                Cell::Text(q.name.clone()),
                Cell::Text(q.description.clone()),
                Cell::Text(params),
            ]
        })
        .collect();
    let rs = ResultSet {
        columns: vec!["name".into(), "description".into(), "parameters".into()],
        rows,
    };
    write_results(out, &rs, Format::Table, None)
}

/// A temporary database filled through the store, and a deterministic mix of
/// jobs, shared by the query, status and report tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    use chrono::{DateTime, Duration, TimeZone, Utc};

    use crate::model::{JobRow, Source, Status};
    use crate::normalize::format_utc;
    use crate::store::{JobBatch, RunOutcome, Store};

    pub struct TestDb {
        pub _dir: tempfile::TempDir,
        pub path: PathBuf,
        pub store: Store,
    }

    /// When the n-th sync run (0-based) of a test database sees its jobs.
    pub fn seen_at(n: usize) -> String {
        format!("2024-03-20T00:00:{:02}.000Z", n)
    }

    /// A database where each batch is stored by its own sync run.
    pub async fn db_with(batches: &[Vec<JobRow>]) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("jobtrail.db");
        let store = Store::open(&path).await.expect("open store");
        for (n, rows) in batches.iter().enumerate() {
            let at = crate::normalize::parse_api_time(&seen_at(n)).expect("a time");
            let run = store.begin_run(&Source::ALL, at).await.expect("begin run");
            let batch = JobBatch {
                rows: rows.clone(),
                state: Vec::new(),
            };
            store
                .write_batch(run.id, at, batch)
                .await
                .expect("write batch");
            store
                .finish_run(&run, RunOutcome::Succeeded, 10 + n as u64, None, at)
                .await
                .expect("finish run");
        }
        TestDb {
            _dir: dir,
            path,
            store,
        }
    }

    pub fn job(
        source: Source,
        job_id: &str,
        job_type: Option<&str>,
        status: Status,
        started: Option<DateTime<Utc>>,
        ended: Option<DateTime<Utc>>,
    ) -> JobRow {
        JobRow {
            source,
            project_id: "p1".to_owned(),
            job_id: job_id.to_owned(),
            parent_job_id: None,
            job_type: job_type.map(str::to_owned),
            status,
            raw_status: Some(status.as_str().to_uppercase()),
            progress: None,
            started_at: started.map(format_utc),
            ended_at: ended.map(format_utc),
            duration_ms: match (started, ended) {
                (Some(s), Some(e)) => Some((e - s).num_milliseconds()),
                _ => None,
            },
            resource_id: Some(format!("res-{job_id}")),
            resource_name: Some(format!("instance {job_id}")),
            error_code: None,
            fail_reason: None,
            raw_json: format!("{{\"id\":\"{job_id}\"}}"),
        }
    }

    /// A small linear congruential generator: the same jobs every run.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// About 300 jobs over ten weeks from Monday 2024-01-01, every status,
    /// reasons with and without error codes, missing types and start times.
    pub fn sample_jobs() -> Vec<JobRow> {
        let base = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date");
        let types: [(Source, &[Option<&str>]); 3] = [
            (
                Source::Nosql,
                &[Some("CreateInstance"), Some("ResizeVolume"), Some("Backup")],
            ),
            (
                Source::Dbss,
                &[Some("START"), Some("STOP"), Some("ADD_RDS")],
            ),
            (Source::Image, &[Some("CREATE_IMAGE"), None]),
        ];
        let reasons: [(Option<&str>, Option<&str>); 5] = [
            (Some("disk full"), None),
            (Some("quota exceeded"), Some("DBS.280001")),
            (Some("timeout <waiting>"), None),
            (None, Some("WKS.0042")),
            (None, None),
        ];
        let mut rng = Lcg(42);
        let mut rows = Vec::new();
        for k in 0..300 {
            let (source, kinds) = types[k % 3];
            let job_type = kinds[rng.next(kinds.len() as u64) as usize];
            let roll = rng.next(100);
            let status = match roll {
                0..70 => Status::Succeeded,
                70..90 => Status::Failed,
                90..97 => Status::Running,
                _ => Status::Unknown,
            };
            let started =
                (k % 37 != 5).then(|| base + Duration::minutes(rng.next(70 * 24 * 60) as i64));
            let ended = match (status.is_terminal(), started) {
                (true, Some(s)) => {
                    Some(s + Duration::milliseconds(1_000 + rng.next(7_200_000) as i64))
                }
                (true, None) if k % 2 == 0 => Some(base + Duration::days(3)),
                _ => None,
            };
            let mut row = job(
                source,
                &format!("{}-{k:04}", source.as_str()),
                job_type,
                status,
                started,
                ended,
            );
            row.project_id = if k % 5 == 0 { "p2" } else { "p1" }.to_owned();
            if status == Status::Failed {
                let (reason, code) = reasons[rng.next(reasons.len() as u64) as usize];
                row.fail_reason = reason.map(str::to_owned);
                row.error_code = code.map(str::to_owned);
            }
            rows.push(row);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, Datelike, Duration, Utc};

    use super::test_support::{TestDb, db_with, job, sample_jobs, seen_at};
    use super::*;
    use crate::model::{JobRow, Source, Status};
    use crate::normalize::{format_utc, parse_api_time};

    fn p(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    fn text(c: &Cell) -> Option<String> {
        match c {
            Cell::Null => None,
            Cell::Text(t) => Some(t.clone()),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn int(c: &Cell) -> i64 {
        match c {
            Cell::Integer(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }

    fn real(c: &Cell) -> Option<f64> {
        match c {
            Cell::Null => None,
            Cell::Real(f) => Some(*f),
            other => panic!("expected a real, got {other:?}"),
        }
    }

    fn col<'a>(rs: &ResultSet, row: &'a [Cell], name: &str) -> &'a Cell {
        &row[rs
            .column(name)
            .unwrap_or_else(|| panic!("no column {name}"))]
    }

    async fn sample_db() -> (TestDb, Vec<JobRow>) {
        let rows = sample_jobs();
        (db_with(std::slice::from_ref(&rows)).await, rows)
    }

    async fn read_only(db: &TestDb) -> Store {
        Store::open_read_only(&db.path)
            .await
            .expect("open read-only")
    }

    async fn run_saved(store: &Store, name: &str, params: &[(String, String)]) -> ResultSet {
        run(store, name, None, None, params)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The instant the tests' queries use for a job: start, else end, else first seen.
    fn job_time(r: &JobRow) -> String {
        r.started_at
            .clone()
            .or_else(|| r.ended_at.clone())
            .unwrap_or_else(|| seen_at(0))
    }

    fn iso_week(t: &str) -> String {
        let t = parse_api_time(t).expect("a stored time parses");
        let w = t.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }

    fn reason(r: &JobRow) -> String {
        r.fail_reason
            .clone()
            .or_else(|| r.error_code.clone())
            .unwrap_or_else(|| "(no reason given)".to_owned())
    }

    #[tokio::test]
    async fn failures_by_reason_counts_each_week_and_reason() {
        let (db, rows) = sample_db().await;
        let store = read_only(&db).await;
        for since in [None, Some("2024-02-01")] {
            let params: Vec<_> = since.map(|s| p("since", s)).into_iter().collect();
            let rs = run_saved(&store, "failures-by-reason", &params).await;
            let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.status == Status::Failed) {
                if since.is_some_and(|s| job_time(r).as_str() < s) {
                    continue;
                }
                *expected
                    .entry((iso_week(&job_time(r)), reason(r)))
                    .or_default() += 1;
            }
            let got: BTreeMap<(String, String), i64> = rs
                .rows
                .iter()
                .map(|row| {
                    (
                        (
                            text(col(&rs, row, "week")).expect("week"),
                            text(col(&rs, row, "reason")).expect("reason"),
                        ),
                        int(col(&rs, row, "failures")),
                    )
                })
                .collect();
            assert_eq!(got.len(), rs.rows.len(), "one row per week and reason");
            assert_eq!(got, expected, "since {since:?}");
            assert!(
                expected.len() > 10,
                "the sample covers many weeks and reasons"
            );
        }
    }

    /// (total, succeeded, failed, unfinished, rate)
    type Rates = (i64, i64, i64, i64, Option<f64>);

    fn rates<'a>(rows: impl Iterator<Item = &'a JobRow>) -> Rates {
        let mut t = (0, 0, 0, 0, None);
        for r in rows {
            t.0 += 1;
            match r.status {
                Status::Succeeded => t.1 += 1,
                Status::Failed => t.2 += 1,
                _ => t.3 += 1,
            }
        }
        if t.1 + t.2 > 0 {
            t.4 = Some(100.0 * t.2 as f64 / (t.1 + t.2) as f64);
        }
        t
    }

    fn assert_rate(got: Option<f64>, want: Option<f64>) {
        match (got, want) {
            (None, None) => {}
            (Some(g), Some(w)) => assert!((g - w).abs() <= 0.05 + 1e-9, "rate {g} vs {w}"),
            other => panic!("rates differ: {other:?}"),
        }
    }

    #[tokio::test]
    async fn failure_rate_by_type_matches_the_rows() {
        let (db, rows) = sample_db().await;
        let rs = run_saved(&read_only(&db).await, "failure-rate-by-type", &[]).await;
        let mut groups: BTreeMap<(String, Option<String>), Vec<&JobRow>> = BTreeMap::new();
        for r in &rows {
            groups
                .entry((r.source.to_string(), r.job_type.clone()))
                .or_default()
                .push(r);
        }
        assert_eq!(rs.rows.len(), groups.len());
        for row in &rs.rows {
            let key = (
                text(col(&rs, row, "source")).expect("source"),
                text(col(&rs, row, "job_type")),
            );
            let want = rates(groups[&key].iter().copied());
            assert_eq!(int(col(&rs, row, "total")), want.0, "{key:?}");
            assert_eq!(int(col(&rs, row, "succeeded")), want.1, "{key:?}");
            assert_eq!(int(col(&rs, row, "failed")), want.2, "{key:?}");
            assert_eq!(int(col(&rs, row, "unfinished")), want.3, "{key:?}");
            assert_rate(real(col(&rs, row, "failure_rate_pct")), want.4);
        }
    }

    #[tokio::test]
    async fn failure_rate_by_week_matches_the_rows() {
        let (db, rows) = sample_db().await;
        let rs = run_saved(&read_only(&db).await, "failure-rate-by-week", &[]).await;
        let mut groups: BTreeMap<(String, String, Option<String>), Vec<&JobRow>> = BTreeMap::new();
        for r in &rows {
            groups
                .entry((
                    iso_week(&job_time(r)),
                    r.source.to_string(),
                    r.job_type.clone(),
                ))
                .or_default()
                .push(r);
        }
        assert_eq!(rs.rows.len(), groups.len());
        for row in &rs.rows {
            let key = (
                text(col(&rs, row, "week")).expect("week"),
                text(col(&rs, row, "source")).expect("source"),
                text(col(&rs, row, "job_type")),
            );
            let want = rates(groups[&key].iter().copied());
            assert_eq!(int(col(&rs, row, "total")), want.0, "{key:?}");
            assert_eq!(int(col(&rs, row, "failed")), want.2, "{key:?}");
            assert_rate(real(col(&rs, row, "failure_rate_pct")), want.4);
        }
    }

    #[tokio::test]
    async fn slowest_job_types_reports_nearest_rank_percentiles() {
        let (db, rows) = sample_db().await;
        let rs = run_saved(&read_only(&db).await, "slowest-job-types", &[]).await;
        let mut groups: BTreeMap<(String, Option<String>), Vec<i64>> = BTreeMap::new();
        for r in &rows {
            if let Some(d) = r.duration_ms {
                groups
                    .entry((r.source.to_string(), r.job_type.clone()))
                    .or_default()
                    .push(d);
            }
        }
        assert_eq!(rs.rows.len(), groups.len());
        let rank = |sorted: &[i64], pct: usize| sorted[(sorted.len() * pct).div_ceil(100) - 1];
        let mut last_p95 = i64::MAX;
        for row in &rs.rows {
            let key = (
                text(col(&rs, row, "source")).expect("source"),
                text(col(&rs, row, "job_type")),
            );
            let mut d = groups[&key].clone();
            d.sort_unstable();
            assert_eq!(int(col(&rs, row, "jobs")), d.len() as i64, "{key:?}");
            assert_eq!(int(col(&rs, row, "p50_ms")), rank(&d, 50), "{key:?}");
            assert_eq!(int(col(&rs, row, "p95_ms")), rank(&d, 95), "{key:?}");
            assert_eq!(int(col(&rs, row, "max_ms")), d[d.len() - 1], "{key:?}");
            let p95 = int(col(&rs, row, "p95_ms"));
            assert!(p95 <= last_p95, "slowest first");
            last_p95 = p95;
        }
    }

    #[tokio::test]
    async fn percentiles_on_a_known_small_set() {
        // 20 durations 1..=20 s: p50 is the 10th, p95 the 19th.
        let start = parse_api_time("2024-01-01T00:00:00Z").expect("time");
        let rows: Vec<JobRow> = (1..=20)
            .map(|s| {
                job(
                    Source::Nosql,
                    &format!("j{s}"),
                    Some("Backup"),
                    Status::Succeeded,
                    Some(start),
                    Some(start + Duration::seconds(s)),
                )
            })
            .collect();
        let db = db_with(&[rows]).await;
        let rs = run_saved(&db.store, "slowest-job-types", &[]).await;
        assert_eq!(rs.rows.len(), 1);
        let row = &rs.rows[0];
        assert_eq!(int(col(&rs, row, "p50_ms")), 10_000);
        assert_eq!(int(col(&rs, row, "p95_ms")), 19_000);
        assert_eq!(int(col(&rs, row, "max_ms")), 20_000);
    }

    #[tokio::test]
    async fn recent_failures_lists_the_newest_first_with_reasons() {
        let (db, rows) = sample_db().await;
        let rs = run_saved(&read_only(&db).await, "recent-failures", &[p("limit", "7")]).await;
        let mut failed: Vec<&JobRow> = rows.iter().filter(|r| r.status == Status::Failed).collect();
        let at = |r: &JobRow| {
            r.ended_at
                .clone()
                .or_else(|| r.started_at.clone())
                .unwrap_or_else(|| seen_at(0))
        };
        failed.sort_by(|a, b| {
            at(b)
                .cmp(&at(a))
                .then(a.source.as_str().cmp(b.source.as_str()))
                .then(a.job_id.cmp(&b.job_id))
        });
        let want: Vec<(String, String, Option<String>, Option<String>)> = failed
            .iter()
            .take(7)
            .map(|r| {
                (
                    at(r),
                    r.job_id.clone(),
                    r.fail_reason.clone(),
                    r.error_code.clone(),
                )
            })
            .collect();
        let got: Vec<_> = rs
            .rows
            .iter()
            .map(|row| {
                (
                    text(col(&rs, row, "failed_at")).expect("failed_at"),
                    text(col(&rs, row, "job_id")).expect("job_id"),
                    text(col(&rs, row, "fail_reason")),
                    text(col(&rs, row, "error_code")),
                )
            })
            .collect();
        assert_eq!(got, want);
        // Default limit is 50, all sources.
        let rs = run_saved(&db.store, "recent-failures", &[]).await;
        assert_eq!(rs.rows.len(), failed.len().min(50));
        let sources: BTreeSet<_> = rs
            .rows
            .iter()
            .map(|r| text(col(&rs, r, "source")))
            .collect();
        assert_eq!(sources.len(), 3);
    }

    #[tokio::test]
    async fn stuck_jobs_are_measured_from_now() {
        let now = Utc::now();
        let mut rows = sample_jobs();
        let fresh = |id: &str, ago: i64, status| {
            job(
                Source::Dbss,
                id,
                Some("START"),
                status,
                Some(now - Duration::hours(ago)),
                None,
            )
        };
        rows.push(fresh("recent-2h", 2, Status::Running));
        rows.push(fresh("old-48h", 48, Status::Running));
        rows.push(fresh("odd-30h", 30, Status::Unknown));
        let db = db_with(std::slice::from_ref(&rows)).await;
        let store = read_only(&db).await;
        for hours in ["24", "1.5", "0"] {
            let limit: f64 = hours.parse().expect("number");
            let rs = run_saved(&store, "stuck-jobs", &[p("hours", hours)]).await;
            let want: BTreeSet<String> = rows
                .iter()
                .filter(|r| matches!(r.status, Status::Running | Status::Unknown))
                .filter(|r| {
                    let since = r.started_at.clone().unwrap_or_else(|| seen_at(0));
                    let since: DateTime<Utc> = parse_api_time(&since).expect("time");
                    (now - since).num_seconds() as f64 / 3600.0 > limit
                })
                .map(|r| r.job_id.clone())
                .collect();
            let got: BTreeSet<String> = rs
                .rows
                .iter()
                .map(|r| text(col(&rs, r, "job_id")).expect("job_id"))
                .collect();
            assert_eq!(got, want, "hours {hours}");
            assert!(got.contains("old-48h"));
            assert_eq!(got.contains("recent-2h"), limit < 2.0);
        }
        // The default is 24 hours.
        let rs = run_saved(&store, "stuck-jobs", &[]).await;
        let ids: BTreeSet<_> = rs
            .rows
            .iter()
            .map(|r| text(col(&rs, r, "job_id")).expect("id"))
            .collect();
        assert!(ids.contains("odd-30h") && !ids.contains("recent-2h"));
    }

    #[tokio::test]
    async fn job_history_follows_one_job_across_syncs() {
        let t = parse_api_time("2024-01-02T03:04:05Z").expect("time");
        let running = job(
            Source::Image,
            "702364883651395584",
            Some("CREATE_IMAGE"),
            Status::Running,
            Some(t),
            None,
        );
        let mut failed = job(
            Source::Image,
            "702364883651395584",
            Some("CREATE_IMAGE"),
            Status::Failed,
            Some(t),
            Some(t + Duration::minutes(5)),
        );
        failed.fail_reason = Some("image build failed".into());
        let mut same_id_elsewhere = running.clone();
        same_id_elsewhere.source = Source::Nosql;
        let other = job(
            Source::Image,
            "0702364883651395584",
            None,
            Status::Succeeded,
            Some(t),
            Some(t),
        );
        let db = db_with(&[
            vec![running.clone(), same_id_elsewhere, other],
            vec![running.clone()],
            vec![failed],
        ])
        .await;
        let store = read_only(&db).await;
        // A numeric-looking ID binds as an integer yet still matches the text column.
        let rs = run_saved(
            &store,
            "job-history",
            &[p("job_id", "702364883651395584"), p("source", "image")],
        )
        .await;
        let got: Vec<_> = rs
            .rows
            .iter()
            .map(|r| {
                (
                    text(col(&rs, r, "old_status")),
                    text(col(&rs, r, "new_status")).expect("new"),
                    text(col(&rs, r, "fail_reason")),
                    text(col(&rs, r, "observed_at")).expect("observed"),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (None, "running".into(), None, seen_at(0)),
                (
                    Some("running".into()),
                    "failed".into(),
                    Some("image build failed".into()),
                    seen_at(2)
                ),
            ]
        );
        // Without :source, the same ID in another source shows too; a leading zero is another job.
        let rs = run_saved(&store, "job-history", &[p("job_id", "702364883651395584")]).await;
        assert_eq!(rs.rows.len(), 3);
        let rs = run_saved(&store, "job-history", &[p("job_id", "0702364883651395584")]).await;
        assert_eq!(rs.rows.len(), 1);
        // :job_id is required.
        let err = run(&store, "job-history", None, None, &[])
            .await
            .expect_err("missing");
        assert!(
            matches!(&err, QueryError::MissingParam { name, .. } if name == "job_id"),
            "{err}"
        );
        assert!(err.to_string().contains(":job_id"), "{err}");
    }

    async fn job_count(db: &TestDb) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(db.store.pool())
            .await
            .expect("count")
    }

    const WRITES: [&str; 7] = [
        "DELETE FROM jobs",
        "DROP TABLE jobs",
        "INSERT INTO sync_runs (started_at, status, sources) VALUES ('x', 'running', 'nosql')",
        "UPDATE jobs SET status = 'failed'",
        "CREATE TABLE evil (x)",
        "WITH doomed AS (SELECT job_id FROM jobs) DELETE FROM jobs WHERE job_id IN (SELECT job_id FROM doomed)",
        "VACUUM",
    ];

    #[tokio::test]
    async fn writes_are_refused_on_a_read_only_store() {
        let (db, rows) = sample_db().await;
        let store = read_only(&db).await;
        for sql in WRITES {
            let err = run(&store, sql, None, None, &[]).await.expect_err(sql);
            assert!(matches!(err, QueryError::ReadOnly { .. }), "{sql}: {err}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("query opens the database read-only;"),
                "{msg}"
            );
            assert!(msg.contains("changes nothing"), "{msg}");
            assert_eq!(job_count(&db).await, rows.len() as i64, "{sql}");
        }
    }

    #[tokio::test]
    async fn writes_are_refused_even_through_a_writable_store() {
        let (db, rows) = sample_db().await;
        for sql in WRITES {
            let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
            assert!(matches!(err, QueryError::ReadOnly { .. }), "{sql}: {err}");
        }
        // A statement that tries to lift the guard only affects its own connection.
        run(&db.store, "PRAGMA query_only = OFF", None, None, &[])
            .await
            .expect("pragma");
        assert_eq!(job_count(&db).await, rows.len() as i64);
        // The guard does not leak into the store: it can still write.
        db.store
            .begin_run(
                &[Source::Nosql],
                crate::normalize::parse_api_time(&seen_at(9)).expect("a time"),
            )
            .await
            .expect("store still writable");
    }

    #[tokio::test]
    async fn a_second_statement_is_refused() {
        let (db, rows) = sample_db().await;
        for sql in [
            "SELECT 1; DELETE FROM jobs",
            "SELECT 1;\n-- done\nDROP TABLE jobs;",
        ] {
            let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
            assert!(
                matches!(err, QueryError::MultipleStatements { .. }),
                "{err}"
            );
        }
        assert_eq!(job_count(&db).await, rows.len() as i64);
        // A trailing semicolon and comment are fine.
        let rs = run(&db.store, "SELECT 1 AS one; -- bye\n", None, None, &[])
            .await
            .expect("ok");
        assert_eq!(rs.rows, vec![vec![Cell::Integer(1)]]);
    }

    #[tokio::test]
    async fn named_params_skip_literals_identifiers_and_comments() {
        let db = db_with(&[]).await;
        let sql = "SELECT ':not_a_param' AS \"a:b\", -- :in_a_comment\n\
                   /* :also_not */ :x AS [c:d], 'it''s :quoted' AS e, :x + 1 AS f";
        let rs = run(&db.store, sql, None, None, &[p("x", "5")])
            .await
            .expect("runs");
        assert_eq!(rs.columns, vec!["a:b", "c:d", "e", "f"]);
        assert_eq!(
            rs.rows,
            vec![vec![
                Cell::Text(":not_a_param".into()),
                Cell::Integer(5),
                Cell::Text("it's :quoted".into()),
                Cell::Integer(6),
            ]]
        );
    }

    #[tokio::test]
    async fn params_are_typed_from_their_text() {
        let db = db_with(&[]).await;
        let sql = "SELECT typeof(:i), typeof(:r), typeof(:t), typeof(:z), typeof(:e), :i + 0";
        let params = [
            p("i", "-42"),
            p("r", "1.5"),
            p("t", "2024-01-01"),
            p("z", "0123"),
            p(":e", ""),
        ];
        let rs = run(&db.store, sql, None, None, &params)
            .await
            .expect("runs");
        assert_eq!(
            rs.rows[0],
            vec![
                Cell::from("integer"),
                Cell::from("real"),
                Cell::from("text"),
                Cell::from("text"),
                Cell::from("text"),
                Cell::Integer(-42),
            ]
        );
    }

    #[tokio::test]
    async fn missing_and_unknown_params_are_named() {
        let db = db_with(&[]).await;
        let err = run(&db.store, "SELECT :a, :b", None, None, &[p("a", "1")])
            .await
            .expect_err("missing b");
        assert!(matches!(&err, QueryError::MissingParam { name, .. } if name == "b"));
        assert!(
            err.to_string().contains(":b") && err.to_string().contains("--param b="),
            "{err}"
        );

        let err = run(
            &db.store,
            "SELECT :a",
            None,
            None,
            &[p("a", "1"), p("c", "2")],
        )
        .await
        .expect_err("unknown c");
        assert!(matches!(&err, QueryError::UnknownParam { name, .. } if name == "c"));
        assert!(
            err.to_string().contains(":c") && err.to_string().contains(":a"),
            "{err}"
        );

        let err = run(&db.store, "recent-failures", None, None, &[p("hours", "3")])
            .await
            .expect_err("unknown hours");
        assert!(
            err.to_string()
                .contains("saved query `recent-failures` has no parameter :hours"),
            "{err}"
        );

        let err = run(
            &db.store,
            "SELECT :a",
            None,
            None,
            &[p("a", "1"), p("a", "2")],
        )
        .await
        .expect_err("twice");
        assert!(matches!(err, QueryError::DuplicateParam { .. }));
    }

    #[tokio::test]
    async fn other_placeholder_forms_are_refused_not_bound_to_null() {
        let db = db_with(&[]).await;
        for (sql, token) in [
            ("SELECT ?", "?"),
            ("SELECT ?1", "?1"),
            ("SELECT @name", "@name"),
            ("SELECT $name", "$name"),
            ("SELECT :1", ":1"),
        ] {
            let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
            assert!(
                matches!(&err, QueryError::Placeholder { token: t, .. } if t == token),
                "{sql}: {err}"
            );
        }
        // `$` inside an identifier is part of the name, not a placeholder.
        let scanned = scan("SELECT 1 AS a$b", "t").expect("scans");
        assert!(scanned.names.is_empty());
    }

    #[test]
    fn scanning_rewrites_repeated_names_to_one_position() {
        let s = scan(
            "SELECT * FROM jobs WHERE (:s IS NULL OR source = :s) AND job_id = :id;",
            "t",
        )
        .expect("scans");
        assert_eq!(
            s.sql,
            "SELECT * FROM jobs WHERE (?1 IS NULL OR source = ?1) AND job_id = ?2"
        );
        assert_eq!(s.names, vec!["s", "id"]);
        assert!(matches!(
            scan("-- only a comment\n", "t"),
            Err(QueryError::Empty { .. })
        ));
        // Unterminated literals and comments do not panic; SQLite reports them.
        assert!(scan("SELECT 'open", "t").is_ok());
        assert!(scan("SELECT 1 /* open", "t").is_ok());
    }

    #[tokio::test]
    async fn unknown_names_and_bad_sql_are_clear() {
        let db = db_with(&[]).await;
        let err = run(&db.store, "no-such-query", None, None, &[])
            .await
            .expect_err("unknown");
        let msg = err.to_string();
        assert!(
            msg.contains("no saved query named `no-such-query`") && msg.contains("stuck-jobs"),
            "{msg}"
        );
        let err = run(&db.store, "SELECT * FROM nowhere", None, None, &[])
            .await
            .expect_err("bad");
        assert!(err.to_string().contains("no such table: nowhere"), "{err}");
        // A saved name may be given with its file extension.
        run(&db.store, "failure-rate-by-type.sql", None, None, &[])
            .await
            .expect("by file name");
    }

    #[test]
    fn builtin_queries_are_documented() {
        let queries = saved_queries(None).expect("built-ins parse");
        let names: Vec<_> = queries.iter().map(|q| q.name.as_str()).collect();
        for wanted in [
            "failures-by-reason",
            "failure-rate-by-type",
            "stuck-jobs",
            "slowest-job-types",
            "recent-failures",
            "job-history",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing");
        }
        for q in &queries {
            assert!(!q.description.is_empty(), "{} has no description", q.name);
            assert!(!q.description.starts_with(':'));
            assert_eq!(q.params.len(), q.param_specs.len());
        }
        let stuck = queries
            .iter()
            .find(|q| q.name == "stuck-jobs")
            .expect("stuck-jobs");
        assert_eq!(
            stuck.param_specs[0].default,
            ParamDefault::Value("24".into())
        );
        let history = queries
            .iter()
            .find(|q| q.name == "job-history")
            .expect("job-history");
        assert_eq!(history.params, vec!["job_id", "source"]);
        assert_eq!(history.param_specs[0].default, ParamDefault::Required);
        assert_eq!(history.param_specs[1].default, ParamDefault::Null);
    }

    #[tokio::test]
    async fn user_queries_override_and_extend_the_built_ins() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("stuck-jobs.sql"),
            "-- My own stuck jobs\n-- :n = 3 how many\nSELECT :n AS n;\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("mine.sql"),
            "-- Count jobs\nSELECT COUNT(*) AS jobs FROM jobs\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a query").expect("write");
        let queries = saved_queries(Some(dir.path())).expect("load");
        let stuck = queries
            .iter()
            .find(|q| q.name == "stuck-jobs")
            .expect("stuck-jobs");
        assert_eq!(stuck.description, "My own stuck jobs");
        assert_eq!(
            stuck.path.as_deref(),
            Some(dir.path().join("stuck-jobs.sql").as_path())
        );
        assert!(queries.iter().any(|q| q.name == "mine"));
        assert!(!queries.iter().any(|q| q.name == "notes"));
        assert_eq!(
            queries.len(),
            saved_queries(None).expect("built-ins").len() + 1
        );

        let db = db_with(&[]).await;
        let rs = run(&db.store, "stuck-jobs", None, Some(dir.path()), &[])
            .await
            .expect("override");
        assert_eq!(rs.rows, vec![vec![Cell::Integer(3)]]);
        let rs = run(&db.store, "mine", None, Some(dir.path()), &[])
            .await
            .expect("mine");
        assert_eq!(rs.rows, vec![vec![Cell::Integer(0)]]);
        // -f FILE wins over the name.
        let file = dir.path().join("mine.sql");
        let rs = run(&db.store, "", Some(&file), None, &[])
            .await
            .expect("file");
        assert_eq!(rs.columns, vec!["jobs"]);
        // A folder that does not exist adds nothing.
        let none = saved_queries(Some(&dir.path().join("missing"))).expect("missing dir is fine");
        assert_eq!(none.len(), queries.len() - 1);
    }

    #[test]
    fn bad_headers_name_the_file_and_line() {
        let err =
            SavedQuery::parse("x", "x.sql", "-- d\n-- :unused = 1\nSELECT 1").expect_err("unused");
        assert_eq!(
            err.to_string(),
            "x.sql, line 2: declares :unused but the SQL never uses it"
        );
        let err =
            SavedQuery::parse("x", "x.sql", "-- d\n-- :a =\nSELECT :a").expect_err("empty default");
        assert!(err.to_string().contains("line 2"), "{err}");
        let q = SavedQuery::parse("x", "x.sql", "SELECT :a").expect("no header is fine");
        assert_eq!(q.description, "");
        assert_eq!(q.param_specs[0].default, ParamDefault::Required);
    }

    #[test]
    fn param_arguments_parse() {
        assert_eq!(
            parse_param("since=2024-01-01"),
            Ok(("since".into(), "2024-01-01".into()))
        );
        assert_eq!(parse_param(":hours=2"), Ok(("hours".into(), "2".into())));
        assert_eq!(parse_param("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(parse_param("empty="), Ok(("empty".into(), String::new())));
        assert!(
            parse_param("since")
                .expect_err("no =")
                .contains("NAME=VALUE")
        );
        assert!(parse_param("1x=2").is_err());
        assert!(parse_param("=2").is_err());
    }

    #[test]
    fn the_query_list_shows_names_descriptions_and_params() {
        let queries = saved_queries(None).expect("built-ins");
        let mut out = Vec::new();
        write_query_list(&mut out, &queries).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        for q in &queries {
            assert!(text.contains(&q.name));
            assert!(text.contains(&q.description), "{}", q.description);
        }
        assert!(text.contains(":hours (default 24)"));
        assert!(text.contains(":job_id, :source (optional)"));
    }

    #[tokio::test]
    async fn values_keep_their_storage_types() {
        let db = db_with(&[]).await;
        let rs = run(
            &db.store,
            "SELECT 1, 2.5, 'x', NULL, x'00ff', 1e999",
            None,
            None,
            &[],
        )
        .await
        .expect("runs");
        assert_eq!(
            rs.rows[0],
            vec![
                Cell::Integer(1),
                Cell::Real(2.5),
                Cell::from("x"),
                Cell::Null,
                Cell::Blob(vec![0, 255]),
                Cell::Real(f64::INFINITY),
            ]
        );
        // Columns are known even when there are no rows.
        let rs = run(
            &db.store,
            "SELECT job_id, status FROM jobs",
            None,
            None,
            &[],
        )
        .await
        .expect("runs");
        assert_eq!(rs.columns, vec!["job_id", "status"]);
        assert!(rs.rows.is_empty());
        let _ = format_utc(Utc::now());
    }
}
