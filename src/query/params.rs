//! `:name` parameters: the scanner that finds them in SQL (outside string
//! literals, quoted identifiers and comments), their declarations in a query's
//! header, `--param NAME=VALUE`, and the plan that gives each slot its value.
//!
//! Other placeholder forms (`?`, `?1`, `@x`, `$x`, `:1`) are refused rather than
//! left for a driver to bind to NULL.

use std::collections::BTreeMap;

use super::QueryError;
use crate::store::{SqlPart, SqlValue};

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

/// `NAME [= DEFAULT] [help]` after the `:` of a header line.
pub(super) fn parse_param_spec(s: &str) -> Result<ParamSpec, String> {
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

/// Integers bind as integers and reals as reals when written canonically (so a
/// job ID like `0123` stays text), everything else as text.
fn typed(value: &str) -> SqlValue {
    if let Ok(i) = value.parse::<i64>()
        && i.to_string() == value
    {
        return SqlValue::Integer(i);
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
        return SqlValue::Real(f);
    }
    SqlValue::Text(value.to_owned())
}

/// The value of each of `specs` (in order, one per slot), from `given`
/// (`--param` pairs) or the spec's default. `label` names the query in errors.
pub(super) fn bind_values(
    specs: &[ParamSpec],
    label: &str,
    given: &[(String, String)],
) -> Result<Vec<SqlValue>, QueryError> {
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in given {
        let name = name.strip_prefix(':').unwrap_or(name);
        if by_name.insert(name, value).is_some() {
            return Err(QueryError::DuplicateParam {
                name: name.to_owned(),
            });
        }
    }
    for name in by_name.keys() {
        if !specs.iter().any(|s| s.name == *name) {
            return Err(QueryError::UnknownParam {
                query: label.to_owned(),
                name: (*name).to_owned(),
                expected: expected_params(specs),
            });
        }
    }
    specs
        .iter()
        .map(
            |spec| match (by_name.get(spec.name.as_str()), &spec.default) {
                (Some(value), _) => Ok(typed(value)),
                (None, ParamDefault::Null) => Ok(SqlValue::Null),
                (None, ParamDefault::Value(v)) => Ok(typed(v)),
                (None, ParamDefault::Required) => Err(QueryError::MissingParam {
                    query: label.to_owned(),
                    name: spec.name.clone(),
                }),
            },
        )
        .collect()
}

/// What a query takes, for the error about a parameter it does not.
fn expected_params(specs: &[ParamSpec]) -> String {
    if specs.is_empty() {
        return "it takes no parameters".to_owned();
    }
    let names: Vec<String> = specs.iter().map(|s| format!(":{}", s.name)).collect();
    format!("it takes {}", names.join(", "))
}

/// One statement, cut at its first top-level `;`, with each `:name` turned
/// into a numbered slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scanned {
    /// The SQL as written, `:name` replaced by [`SqlPart::Param`].
    pub parts: Vec<SqlPart>,
    /// `names[k]` fills slot `k`, in order of first use.
    pub names: Vec<String>,
}

/// Builds [`Scanned`] as the scanner walks the SQL.
struct Builder<'a> {
    sql: &'a str,
    parts: Vec<SqlPart>,
    names: Vec<String>,
    /// Where the SQL not yet in `parts` starts.
    copied: usize,
}

impl Builder<'_> {
    /// The `:name` at `start..end` (the colon included) becomes a slot.
    fn param(&mut self, start: usize, end: usize) {
        let name = &self.sql[start + 1..end];
        let slot = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| {
                self.names.push(name.to_owned());
                self.names.len() - 1
            });
        self.text_up_to(start);
        self.parts.push(SqlPart::Param(slot));
        self.copied = end;
    }

    fn text_up_to(&mut self, end: usize) {
        if self.copied < end {
            self.parts
                .push(SqlPart::Sql(self.sql[self.copied..end].to_owned()));
        }
    }

    fn finish(mut self, stop: usize) -> Scanned {
        self.text_up_to(stop);
        Scanned {
            parts: self.parts,
            names: self.names,
        }
    }
}

/// Finds the `:name` parameters outside string literals, quoted identifiers
/// and comments; refuses other placeholder forms and a second statement.
pub(super) fn scan(sql: &str, label: &str) -> Result<Scanned, QueryError> {
    let b = sql.as_bytes();
    let mut built = Builder {
        sql,
        parts: Vec::new(),
        names: Vec::new(),
        copied: 0,
    };
    let mut i = 0;
    let mut end_of_statement: Option<usize> = None;
    let mut has_content = false;
    // Whether the previous character continues an identifier (`a$b` is one name).
    let mut in_word = false;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Comments and whitespace may follow the last `;`; anything else may not.
        let is_comment = (c == b'-' && next == Some(b'-')) || (c == b'/' && next == Some(b'*'));
        if end_of_statement.is_some() && !c.is_ascii_whitespace() && !is_comment && c != b';' {
            return Err(QueryError::MultipleStatements {
                query: label.to_owned(),
            });
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
            // PostgreSQL's cast, `started_at::date`: not a parameter.
            b':' if next == Some(b':') => {
                i += 2;
                has_content = true;
                in_word = false;
            }
            b':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == b'_') => {
                let mut end = i + 1;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                built.param(i, end);
                i = end;
                has_content = true;
                in_word = true;
            }
            // `@name` is a placeholder; PostgreSQL's `@>`, `<@` and `@@` are operators.
            b'@' if !next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_') => {
                i += 1;
                has_content = true;
                in_word = false;
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
    Ok(built.finish(end_of_statement.unwrap_or(b.len())))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanned statement with slot `k` shown as `?{k+1}`, the way the
    /// SQLite store writes it.
    fn numbered(s: &Scanned) -> String {
        s.parts
            .iter()
            .map(|part| match part {
                SqlPart::Sql(text) => text.clone(),
                SqlPart::Param(k) => format!("?{}", k + 1),
            })
            .collect()
    }

    #[test]
    fn scanning_rewrites_repeated_names_to_one_position() {
        let s = scan(
            "SELECT * FROM jobs WHERE (:s IS NULL OR source = :s) AND job_id = :id;",
            "t",
        )
        .expect("scans");
        assert_eq!(
            numbered(&s),
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
}
