//! Ad-hoc read-only SQL (`jobtrail query`): one statement, run on a connection
//! of its own that can neither write nor open another file, with its values
//! decoded as the database stored them.
//!
//! The caller hands over the statement as text with numbered parameter slots
//! ([`SqlPart`]); how a slot is written (`?NNN` here), how writes are refused
//! (a read-only connection) and how values are decoded (by storage class) are
//! this backend's business, so another backend can supply the same method.
//!
//! SQLite itself judges the statement, not a scan of its text: the connection
//! opens the file read-only, allows no attached database (`ATTACH`, and
//! `VACUUM INTO`, which attaches its target, would otherwise create a file even
//! on a read-only connection), and a statement that would run `VACUUM` or
//! `ATTACH` is refused after it is compiled and before it runs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{BUSY_TIMEOUT, SqliteStore};

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
    /// It would open or create a file other than the database (`ATTACH`,
    /// `VACUUM INTO`): refused before the file system was touched. `message`
    /// says what the statement would have done.
    #[error("{message}")]
    FileRefused { message: String },
    /// Anything else the database reported (syntax, an unknown table, I/O).
    #[error(transparent)]
    Failed(SqlFailure),
}

/// An error from the database, shown in its own words.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SqlFailure(pub(super) Box<dyn std::error::Error + Send + Sync>);

/// What a refused `ATTACH` is told.
const ATTACH_REFUSED: &str = "ATTACH would open another database file, or create it if missing";
/// What a refused `VACUUM INTO` is told.
const VACUUM_INTO_REFUSED: &str = "VACUUM INTO would write a copy of the database to a new file";
/// What a refused `VACUUM` is told.
const VACUUM_REFUSED: &str = "VACUUM rewrites the database file";

impl SqliteStore {
    /// Runs one read-only statement with `params` bound to its slots and
    /// returns every row. A statement that would write, to the database or to
    /// any other file, is refused on any store, even one opened for writing.
    pub async fn run_read_only(
        &self,
        statement: &[SqlPart],
        params: &[SqlValue],
    ) -> Result<ValueRows, AdhocError> {
        let path = self.path().to_path_buf();
        let sql = numbered(statement);
        let params = params.to_vec();
        tokio::task::spawn_blocking(move || run_guarded(&path, &sql, &params))
            .await
            .map_err(|e| AdhocError::Failed(SqlFailure(Box::new(e))))?
    }
}

/// Opens the guarded connection, compiles the statement (refusing what would
/// touch another file), binds and runs it.
fn run_guarded(path: &Path, sql: &str, params: &[SqlValue]) -> Result<ValueRows, AdhocError> {
    let attach_tried = Arc::new(AtomicBool::new(false));
    let conn = open_guarded(path, Arc::clone(&attach_tried)).map_err(classify)?;
    let mut statement = conn.prepare(sql).map_err(|e| {
        if attach_tried.load(Ordering::Relaxed) {
            AdhocError::FileRefused {
                message: ATTACH_REFUSED.to_owned(),
            }
        } else {
            classify(e)
        }
    })?;
    // An EXPLAIN only lists the program; anything else that is not read-only
    // is looked at before it runs.
    if statement.is_explain() == 0 && !statement.readonly() {
        refuse_vacuum(&conn, sql)?;
    }
    for (k, value) in params.iter().enumerate() {
        statement
            .raw_bind_parameter(k + 1, bindable(value))
            .map_err(classify)?;
    }
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next().map_err(classify)? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(decode))
            .collect::<Result<Vec<_>, _>>()
            .map_err(classify)?;
        rows.push(values);
    }
    Ok(ValueRows { columns, rows })
}

/// A connection of its own on the database file: read-only, with no room for
/// an attached database (which `VACUUM INTO` needs too), and an authorizer
/// that refuses `ATTACH` while compiling, noting it in `attach_tried`.
fn open_guarded(path: &Path, attach_tried: Arc<AtomicBool>) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI: the path is a file name, whatever it contains.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.authorizer(Some(move |context: AuthContext<'_>| {
        // An ATTACH of anything but a string literal has no file name to
        // report, and reaches rusqlite as an unknown action with ATTACH's code.
        if matches!(
            context.action,
            AuthAction::Attach { .. }
                | AuthAction::Unknown {
                    code: rusqlite::ffi::SQLITE_ATTACH,
                    ..
                }
        ) {
            attach_tried.store(true, Ordering::Relaxed);
            Authorization::Deny
        } else {
            Authorization::Allow
        }
    }))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Refuses a statement whose compiled program runs `VACUUM` (with `INTO`, it
/// writes a new file; without, it rewrites the database). A statement that
/// cannot be looked at is refused too: it would write, and the connection
/// refuses writes anyway.
fn refuse_vacuum(conn: &Connection, sql: &str) -> Result<(), AdhocError> {
    let vacuum = vacuum_target(conn, sql).unwrap_or(Some(true));
    match vacuum {
        None => Ok(()),
        Some(true) => Err(AdhocError::FileRefused {
            message: VACUUM_INTO_REFUSED.to_owned(),
        }),
        Some(false) => Err(AdhocError::WriteRefused {
            message: VACUUM_REFUSED.to_owned(),
        }),
    }
}

/// Whether the program of `sql` runs `VACUUM` and, if so, whether `INTO` a
/// file (its `Vacuum` instruction names the file's register in `p2`).
fn vacuum_target(conn: &Connection, sql: &str) -> rusqlite::Result<Option<bool>> {
    let mut explain = conn.prepare(&format!("EXPLAIN {sql}"))?;
    let mut program = explain.query([])?;
    while let Some(op) = program.next()? {
        if op.get_ref("opcode")?.as_str()? == "Vacuum" {
            return Ok(Some(op.get::<_, i64>("p2")? != 0));
        }
    }
    Ok(None)
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
fn classify(source: rusqlite::Error) -> AdhocError {
    if let rusqlite::Error::SqliteFailure(e, message) = &source
        && e.code == ErrorCode::ReadOnly
    {
        return AdhocError::WriteRefused {
            message: message.clone().unwrap_or_else(|| e.to_string()),
        };
    }
    AdhocError::Failed(SqlFailure(Box::new(source)))
}

fn bindable(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(t) => Value::Text(t.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

/// One value as SQLite stored it (its storage class, not the column's declared
/// type). Text that is not UTF-8 is shown rather than failing the whole query.
fn decode(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
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

    /// Issue 18 item 4: `VACUUM INTO` (and `ATTACH` on a writable store) left
    /// a new empty file behind although the statement was refused.
    #[tokio::test]
    async fn statements_that_would_create_a_file_are_refused_before_it_exists() {
        let db = db_with(&[]).await;
        let read_only = Store::open_read_only(&db.path).await.expect("read-only");
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("copy.db");
        let file = target.display().to_string();
        let cases = [
            (vec![sql(&format!("VACUUM INTO '{file}'"))], "VACUUM INTO"),
            (vec![sql("VACUUM INTO "), SqlPart::Param(0)], "VACUUM INTO"),
            (
                vec![sql(&format!("ATTACH DATABASE '{file}' AS other"))],
                "ATTACH",
            ),
            (
                vec![sql("ATTACH "), SqlPart::Param(0), sql(" AS other")],
                "ATTACH",
            ),
        ];
        for store in [&db.store, &read_only] {
            for (statement, what) in &cases {
                let err = store
                    .run_read_only(statement, &[SqlValue::Text(file.clone())])
                    .await
                    .expect_err("refused");
                assert!(matches!(err, AdhocError::FileRefused { .. }), "{err}");
                assert!(err.to_string().starts_with(what), "{err}");
                assert!(!target.exists(), "{what} created {file}");
            }
        }
        let err = db
            .store
            .run_read_only(&[sql("VACUUM")], &[])
            .await
            .expect_err("vacuum");
        assert!(matches!(err, AdhocError::WriteRefused { .. }), "{err}");
    }

    /// Behind the refusal, the connection itself has no room for another
    /// database file: even run directly, `VACUUM INTO` and `ATTACH` create nothing.
    #[tokio::test]
    async fn the_guarded_connection_cannot_open_another_file() {
        let db = db_with(&[]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("copy.db");
        let file = target.display().to_string();
        let flag = Arc::new(AtomicBool::new(false));
        let conn = open_guarded(&db.path, Arc::clone(&flag)).expect("opens");
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
            .expect("authorizer off");
        let err = conn
            .execute("VACUUM INTO ?1", [&file])
            .expect_err("vacuum into");
        assert!(err.to_string().contains("too many attached"), "{err}");
        let err = conn
            .execute("ATTACH ?1 AS other", [&file])
            .expect_err("attach");
        assert!(err.to_string().contains("too many attached"), "{err}");
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn the_store_runs_one_statement_only() {
        let db = db_with(&[]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("copy.db");
        let two = format!("SELECT 1; VACUUM INTO '{}'", target.display());
        let err = db
            .store
            .run_read_only(&[sql(&two)], &[])
            .await
            .expect_err("two statements");
        assert!(matches!(err, AdhocError::Failed(_)), "{err}");
        assert!(!target.exists());
    }
}
