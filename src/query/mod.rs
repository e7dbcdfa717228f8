//! `jobtrail query` and `jobtrail queries`: read-only SQL, inline or saved.
//!
//! A query is found (`saved`: the registry), its `:name` parameters are given
//! values (`params`: the scanner and binding plan), and the store runs it
//! read-only ([`Store::run_read_only`]); how the database writes a parameter,
//! refuses a write and types a value is the store's business.

mod params;
mod saved;

use std::io;
use std::path::{Path, PathBuf};

use crate::output::{Cell, Format, ResultSet, write_results};
use crate::store::{AdhocError, SqlFailure, SqlValue, Store};

pub use params::{ParamDefault, ParamSpec, parse_param};
pub use saved::{Origin, SavedQuery, resolve, saved_queries};

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
    #[error(
        "query only reads the database; {query} was refused before it touched any file ({message})"
    )]
    FileRefused { query: String, message: String },
    #[error("{query} failed: {source}")]
    Sql { query: String, source: SqlFailure },
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
    let query = resolve(input, file, user_dir, store.backend())?;
    run_query(store, &query, params).await
}

/// Runs one parsed query read-only with its parameters.
pub async fn run_query(
    store: &Store,
    query: &SavedQuery,
    params: &[(String, String)],
) -> Result<ResultSet, QueryError> {
    let label = query.label();
    let values = params::bind_values(&query.param_specs, &label, params)?;
    let rows = store
        .run_read_only(&query.statement, &values)
        .await
        .map_err(|e| match e {
            AdhocError::WriteRefused { message } => QueryError::ReadOnly {
                query: label.clone(),
                message,
            },
            AdhocError::FileRefused { message } => QueryError::FileRefused {
                query: label.clone(),
                message,
            },
            AdhocError::Failed(source) => QueryError::Sql {
                query: label.clone(),
                source,
            },
        })?;
    Ok(ResultSet {
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(cell).collect())
            .collect(),
    })
}

fn cell(value: SqlValue) -> Cell {
    match value {
        SqlValue::Null => Cell::Null,
        SqlValue::Integer(i) => Cell::Integer(i),
        SqlValue::Real(f) => Cell::Real(f),
        SqlValue::Text(t) => Cell::Text(t),
        SqlValue::Blob(b) => Cell::Blob(b),
    }
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
    write_results(out, &rs, Format::Table, Default::default())
}

#[cfg(test)]
mod tests;
