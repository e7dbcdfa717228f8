//! Ad-hoc read-only SQL (`jobtrail query`): one statement, run on a connection
//! that refuses writes, with its values decoded as the database stored them.
//!
//! The caller hands over the statement as text with numbered parameter slots
//! ([`SqlPart`]); how a slot is written (`?NNN` here), how writes are refused
//! (`PRAGMA query_only`) and how values are decoded (by storage class) are this
//! backend's business, so another backend can supply the same method.

use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Column, Executor, Row, SqlSafeStr, Statement, TypeInfo, ValueRef};

use super::SqliteStore;

/// One value bound to a statement or read from a result, typed as the
/// database holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A piece of a statement: SQL text as written, or the slot of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlPart {
    Sql(String),
    /// Bound to the value at this index (0-based) of the parameters.
    Param(usize),
}

/// The columns and rows a statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueRows {
    /// Known even when there are no rows.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// Why an ad-hoc statement did not run.
#[derive(Debug, thiserror::Error)]
pub enum AdhocError {
    /// It tried to change the database and was refused: nothing changed.
    /// `message` is the database's own words.
    #[error("{message}")]
    WriteRefused { message: String },
    /// Anything else the database reported (syntax, an unknown table, I/O).
    #[error(transparent)]
    Failed(SqlFailure),
}

/// An error from the database, shown in its own words.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SqlFailure(pub(super) sqlx::Error);

/// SQLite's result code for "attempt to write a readonly database" (low byte of
/// the extended code).
const SQLITE_READONLY: i64 = 8;

impl SqliteStore {
    /// Runs one read-only statement with `params` bound to its slots and
    /// returns every row. A statement that would write is refused on any
    /// store, even one opened for writing.
    pub async fn run_read_only(
        &self,
        statement: &[SqlPart],
        params: &[SqlValue],
    ) -> Result<ValueRows, AdhocError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        // Belt and braces: the CLI opens the file read-only, and this connection
        // refuses writes too, whatever store it came from. It is closed afterwards
        // rather than returned to the pool, so the setting never outlives the query.
        conn.close_on_drop();
        sqlx::query("PRAGMA query_only = ON")
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        let prepared = (&mut *conn)
            .prepare(AssertSqlSafe(numbered(statement)).into_sql_str())
            .await
            .map_err(classify)?;
        let columns: Vec<String> = prepared
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let mut query = prepared.query();
        for value in params {
            query = match value {
                SqlValue::Null => query.bind(None::<String>),
                SqlValue::Integer(i) => query.bind(*i),
                SqlValue::Real(f) => query.bind(*f),
                SqlValue::Text(t) => query.bind(t.clone()),
                SqlValue::Blob(b) => query.bind(b.clone()),
            };
        }
        let fetched = query.fetch_all(&mut *conn).await.map_err(classify)?;
        let mut rows = Vec::with_capacity(fetched.len());
        for row in &fetched {
            let values = (0..row.len())
                .map(|i| decode(row, i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(classify)?;
            rows.push(values);
        }
        Ok(ValueRows { columns, rows })
    }
}

/// The statement's text with slot `k` written `?{k+1}`: SQLite's numbered
/// parameters (its driver binds no `:name`, and binds NULL to a name it does
/// not know).
fn numbered(statement: &[SqlPart]) -> String {
    let mut sql = String::new();
    for part in statement {
        match part {
            SqlPart::Sql(text) => sql.push_str(text),
            SqlPart::Param(k) => {
                sql.push('?');
                sql.push_str(&(k + 1).to_string());
            }
        }
    }
    sql
}

/// A refused write is told apart from every other failure.
fn classify(source: sqlx::Error) -> AdhocError {
    if let sqlx::Error::Database(db) = &source {
        let code = db.code().and_then(|c| c.parse::<i64>().ok());
        if code.is_some_and(|c| c & 0xff == SQLITE_READONLY) {
            return AdhocError::WriteRefused {
                message: db.message().to_owned(),
            };
        }
    }
    AdhocError::Failed(SqlFailure(source))
}

/// One value as SQLite stored it (its storage class, not the column's declared type).
fn decode(row: &SqliteRow, i: usize) -> Result<SqlValue, sqlx::Error> {
    let kind = {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(SqlValue::Null);
        }
        raw.type_info().name().to_owned()
    };
    Ok(match kind.as_str() {
        "INTEGER" | "BOOLEAN" => SqlValue::Integer(row.try_get_unchecked::<i64, _>(i)?),
        "REAL" => SqlValue::Real(row.try_get_unchecked::<f64, _>(i)?),
        "BLOB" => SqlValue::Blob(row.try_get_unchecked::<Vec<u8>, _>(i)?),
        _ => match row.try_get_unchecked::<String, _>(i) {
            Ok(s) => SqlValue::Text(s),
            // Text that is not UTF-8: show it rather than fail the whole query.
            Err(_) => SqlValue::Text(
                String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i)?).into_owned(),
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::db_with;

    fn sql(text: &str) -> SqlPart {
        SqlPart::Sql(text.to_owned())
    }

    #[test]
    fn slots_are_numbered_from_one_and_repeat() {
        let statement = [
            sql("SELECT "),
            SqlPart::Param(0),
            sql(", "),
            SqlPart::Param(1),
            sql(" + "),
            SqlPart::Param(0),
        ];
        assert_eq!(numbered(&statement), "SELECT ?1, ?2 + ?1");
    }

    #[tokio::test]
    async fn values_bind_and_decode_by_type() {
        let db = db_with(&[]).await;
        let statement = [
            sql("SELECT "),
            SqlPart::Param(0),
            sql(", "),
            SqlPart::Param(1),
            sql(", "),
            SqlPart::Param(2),
            sql(", "),
            SqlPart::Param(3),
            sql(", "),
            SqlPart::Param(4),
            sql(" AS b"),
        ];
        let params = [
            SqlValue::Null,
            SqlValue::Integer(7),
            SqlValue::Real(0.5),
            SqlValue::Text("t".into()),
            SqlValue::Blob(vec![1, 2]),
        ];
        let got = db
            .store
            .run_read_only(&statement, &params)
            .await
            .expect("runs");
        assert_eq!(got.columns.len(), 5);
        assert_eq!(got.columns[4], "b");
        assert_eq!(got.rows, vec![params.to_vec()]);
    }

    #[tokio::test]
    async fn a_write_is_refused_and_other_errors_keep_their_words() {
        let db = db_with(&[]).await;
        let err = db
            .store
            .run_read_only(&[sql("DELETE FROM jobs")], &[])
            .await
            .expect_err("write");
        assert!(matches!(err, AdhocError::WriteRefused { .. }), "{err}");
        let err = db
            .store
            .run_read_only(&[sql("SELECT * FROM nowhere")], &[])
            .await
            .expect_err("no table");
        assert!(matches!(err, AdhocError::Failed(_)), "{err}");
        assert!(err.to_string().contains("no such table: nowhere"), "{err}");
    }
}
