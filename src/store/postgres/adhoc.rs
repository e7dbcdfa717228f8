//! Ad-hoc read-only SQL on PostgreSQL (`jobtrail query`): one statement in a
//! READ ONLY transaction, its parameters given the types PostgreSQL infers
//! for them, its values decoded into the same [`SqlValue`]s as on SQLite.
//!
//! Parameters: the statement is first prepared with untyped `$N` slots, so
//! the server says what each one is (`started_at >= :since` makes `:since` a
//! timestamptz); each slot is then written `CAST(CAST($N AS text) AS type)`
//! and given the value's text, which PostgreSQL reads as it would a literal.
//! When it cannot type every slot (`SELECT :n`, or `:x IS NULL OR …`), each
//! is bound as its value's own type (bigint, double precision or text): a
//! saved query says what it means with `CAST(:since AS timestamptz)`.
//!
//! Values: integers, reals, text, JSON, byte strings and times decode
//! directly (times as the fixed-width UTC text SQLite stores, `numeric` as an
//! integer when it has no decimals, else a real); any other type (an array,
//! an interval, a UUID) comes back as PostgreSQL's own text for it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnection, PgRow, PgTypeInfo};
use sqlx::{
    AssertSqlSafe, Column, Executor, Postgres, Row, SqlSafeStr, Statement, Type, TypeInfo, ValueRef,
};

use super::PgStore;
use crate::normalize::format_utc;
use crate::store::{AdhocError, SqlFailure, SqlPart, SqlValue, ValueRows};

/// `read_only_sql_transaction`: a write in a READ ONLY transaction.
const READ_ONLY_SQLSTATE: &str = "25006";

/// A parameter the server could not type: `indeterminate_datatype` (used
/// only where any type goes, `SELECT :n`) or `ambiguous_parameter` (typed in
/// one place and not in another, `:x IS NULL OR status = :x`).
const UNTYPED_SQLSTATES: [&str; 2] = ["42P18", "42P08"];

/// Column types decoded directly; any other is read as text.
const DECODED: [&str; 18] = [
    "BOOL",
    "INT2",
    "INT4",
    "INT8",
    "OID",
    "FLOAT4",
    "FLOAT8",
    "NUMERIC",
    "TEXT",
    "VARCHAR",
    "CHAR",
    "NAME",
    "JSON",
    "JSONB",
    "TIMESTAMPTZ",
    "TIMESTAMP",
    "DATE",
    "BYTEA",
];

impl PgStore {
    /// Runs one read-only statement with `params` bound to its slots and
    /// returns every row. Whatever the role may do, the transaction refuses
    /// every write.
    pub async fn run_read_only(
        &self,
        statement: &[SqlPart],
        params: &[SqlValue],
    ) -> Result<ValueRows, AdhocError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        // Closed afterwards rather than returned to the pool: nothing the
        // statement set on its session (a setting, an advisory lock) outlives it.
        conn.close_on_drop();
        // Typed first, outside the transaction: preparing runs nothing, and a
        // statement the server cannot type would abort the transaction.
        let typed = typed_statement(&mut conn, statement, params).await?;
        // Dates given as text, and `to_char` of times, mean UTC, as on SQLite.
        sqlx::raw_sql("BEGIN TRANSACTION READ ONLY; SET LOCAL TimeZone = 'UTC'")
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        let fetched = run_prepared(&mut conn, typed).await;
        // Nothing to keep: the transaction could not write anyway.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        let (columns, fetched) = fetched?;
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

/// Prepares the typed statement (its odd columns read as text), runs it and
/// returns its columns and rows.
async fn run_prepared(
    conn: &mut PgConnection,
    (sql, types, values): Typed,
) -> Result<(Vec<String>, Vec<PgRow>), AdhocError> {
    let prepared = (&mut *conn)
        .prepare_with(AssertSqlSafe(sql.clone()).into_sql_str(), &types)
        .await
        .map_err(classify)?;
    let columns: Vec<String> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let prepared = match as_text_where_needed(&sql, &prepared) {
        None => prepared,
        Some(wrapped) => (&mut *conn)
            .prepare_with(AssertSqlSafe(wrapped).into_sql_str(), &types)
            .await
            .map_err(classify)?,
    };
    let mut query = prepared.query();
    for value in values {
        query = match value {
            Bound::Text(t) => query.bind(t),
            Bound::Integer(i) => query.bind(i),
            Bound::Real(f) => query.bind(f),
            Bound::Bytes(b) => query.bind(b),
        };
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(classify)?;
    Ok((columns, rows))
}

/// A value as it is sent.
enum Bound {
    Text(Option<String>),
    Integer(i64),
    Real(f64),
    Bytes(Vec<u8>),
}

/// The statement to run, the types its parameters are declared with and
/// their values.
type Typed = (String, Vec<PgTypeInfo>, Vec<Bound>);

/// The statement with its parameters typed as the server infers them where
/// it can (see the module's doc).
async fn typed_statement(
    conn: &mut PgConnection,
    statement: &[SqlPart],
    params: &[SqlValue],
) -> Result<Typed, AdhocError> {
    let plain = numbered(statement, |k| format!("${}", k + 1));
    if params.is_empty() {
        return Ok((plain, Vec::new(), Vec::new()));
    }
    let inferred = match (&mut *conn)
        .prepare(AssertSqlSafe(plain.clone()).into_sql_str())
        .await
    {
        Ok(prepared) => inferred_types(conn, &prepared).await?,
        Err(sqlx::Error::Database(e))
            if e.code()
                .is_some_and(|c| UNTYPED_SQLSTATES.contains(&c.as_ref())) =>
        {
            None
        }
        Err(e) => return Err(classify(e)),
    };
    match inferred {
        Some(names) => {
            let sql = numbered(statement, |k| {
                format!("CAST(CAST(${} AS text) AS {})", k + 1, names[k])
            });
            let types = vec![<String as Type<Postgres>>::type_info(); params.len()];
            let values = params.iter().map(|v| Bound::Text(as_text(v))).collect();
            Ok((sql, types, values))
        }
        None => {
            let (types, values) = params.iter().map(own_type).unzip();
            Ok((plain, types, values))
        }
    }
}

/// The SQL names of the types the server gave a prepared statement's
/// parameters (`None` if it did not say).
async fn inferred_types(
    conn: &mut PgConnection,
    prepared: &sqlx::postgres::PgStatement,
) -> Result<Option<Vec<String>>, AdhocError> {
    let Some(sqlx::Either::Left(types)) = prepared.parameters() else {
        return Ok(None);
    };
    let Some(oids) = types
        .iter()
        .map(|t| t.oid().map(|o| i64::from(o.0)))
        .collect::<Option<Vec<i64>>>()
    else {
        return Ok(None);
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT format_type(o::oid, NULL) FROM unnest($1::int8[]) WITH ORDINALITY AS u (o, n) ORDER BY n")
            .bind(oids)
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
    Ok(Some(names))
}

/// A value's text, as PostgreSQL reads it into any type (NULL stays NULL).
fn as_text(value: &SqlValue) -> Option<String> {
    match value {
        SqlValue::Null => None,
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Real(f) => Some(f.to_string()),
        SqlValue::Text(t) => Some(t.clone()),
        SqlValue::Blob(b) => Some(format!("\\x{}", hex::encode(b))),
    }
}

/// A value bound as its own type, where the server could not infer one.
fn own_type(value: &SqlValue) -> (PgTypeInfo, Bound) {
    match value {
        SqlValue::Null => (<String as Type<Postgres>>::type_info(), Bound::Text(None)),
        SqlValue::Integer(i) => (<i64 as Type<Postgres>>::type_info(), Bound::Integer(*i)),
        SqlValue::Real(f) => (<f64 as Type<Postgres>>::type_info(), Bound::Real(*f)),
        SqlValue::Text(t) => (
            <String as Type<Postgres>>::type_info(),
            Bound::Text(Some(t.clone())),
        ),
        SqlValue::Blob(b) => (
            <Vec<u8> as Type<Postgres>>::type_info(),
            Bound::Bytes(b.clone()),
        ),
    }
}

/// The statement's text with slot `k` written by `slot`.
fn numbered(statement: &[SqlPart], slot: impl Fn(usize) -> String) -> String {
    let mut sql = String::new();
    for part in statement {
        match part {
            SqlPart::Sql(text) => sql.push_str(text),
            SqlPart::Param(k) => sql.push_str(&slot(*k)),
        }
    }
    sql
}

/// When some column has a type not decoded directly: the statement again,
/// with those columns cast to text (by position, so repeated names are fine).
fn as_text_where_needed(sql: &str, prepared: &sqlx::postgres::PgStatement) -> Option<String> {
    let columns = prepared.columns();
    let decoded = |c: &sqlx::postgres::PgColumn| DECODED.contains(&c.type_info().name());
    if columns.iter().all(decoded) {
        return None;
    }
    let names: Vec<String> = (1..=columns.len()).map(|n| format!("c{n}")).collect();
    let list: Vec<String> = columns
        .iter()
        .zip(&names)
        .map(|(c, name)| {
            if decoded(c) {
                name.clone()
            } else {
                format!("CAST({name} AS text)")
            }
        })
        .collect();
    // The newline ends a trailing `--` comment of the statement.
    Some(format!(
        "SELECT {} FROM (\n{sql}\n) AS jobtrail_query ({})",
        list.join(", "),
        names.join(", ")
    ))
}

/// A refused write is told apart from every other failure.
fn classify(source: sqlx::Error) -> AdhocError {
    if let sqlx::Error::Database(db) = &source
        && db.code().as_deref() == Some(READ_ONLY_SQLSTATE)
    {
        return AdhocError::WriteRefused {
            message: db.message().to_owned(),
        };
    }
    AdhocError::Failed(SqlFailure(Box::new(source)))
}

/// One value, typed as on SQLite.
fn decode(row: &PgRow, i: usize) -> Result<SqlValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(SqlValue::Null);
    }
    let kind = raw.type_info().name().to_owned();
    Ok(match kind.as_str() {
        "BOOL" => SqlValue::Integer(i64::from(row.try_get::<bool, _>(i)?)),
        "INT2" => SqlValue::Integer(i64::from(row.try_get::<i16, _>(i)?)),
        "INT4" => SqlValue::Integer(i64::from(row.try_get::<i32, _>(i)?)),
        "INT8" => SqlValue::Integer(row.try_get::<i64, _>(i)?),
        "OID" => SqlValue::Integer(i64::from(
            row.try_get::<sqlx::postgres::types::Oid, _>(i)?.0,
        )),
        "FLOAT4" => SqlValue::Real(f64::from(row.try_get::<f32, _>(i)?)),
        "FLOAT8" => SqlValue::Real(row.try_get::<f64, _>(i)?),
        "NUMERIC" => numeric(raw.as_bytes().map_err(sqlx::Error::Decode)?),
        "TIMESTAMPTZ" => SqlValue::Text(format_utc(row.try_get::<DateTime<Utc>, _>(i)?)),
        "TIMESTAMP" => SqlValue::Text(format_utc(row.try_get::<NaiveDateTime, _>(i)?.and_utc())),
        "DATE" => SqlValue::Text(
            row.try_get::<NaiveDate, _>(i)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        "JSONB" => {
            // jsonb's binary form: a version byte, then the JSON text.
            let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
            SqlValue::Text(String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned())
        }
        "BYTEA" => SqlValue::Blob(row.try_get::<Vec<u8>, _>(i)?),
        // Text of any kind (and types cast to text above): the bytes as sent.
        _ => {
            let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
            SqlValue::Text(String::from_utf8_lossy(bytes).into_owned())
        }
    })
}

/// A `numeric` in PostgreSQL's binary form: an integer when it has no
/// decimals (and fits), a real when it has some, else its text.
fn numeric(bytes: &[u8]) -> SqlValue {
    match numeric_text(bytes) {
        None => SqlValue::Null,
        Some((text, 0)) => match text.parse::<i64>() {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => SqlValue::Text(text),
        },
        Some((text, _)) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => SqlValue::Real(f),
            _ => SqlValue::Text(text),
        },
    }
}

/// The decimal text of a binary `numeric` and its scale: four header words
/// (digit count, weight of the first digit, sign, display scale), then
/// base-10,000 digits. `None` if the bytes are not one.
fn numeric_text(bytes: &[u8]) -> Option<(String, u16)> {
    let word = |n: usize| -> Option<i16> {
        let b = bytes.get(n * 2..n * 2 + 2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    };
    let (count, weight, sign, scale) = (word(0)?, word(1)?, word(2)? as u16, word(3)? as u16);
    match sign {
        0xC000 => return Some(("NaN".to_owned(), 1)),
        0xD000 => return Some(("Infinity".to_owned(), 1)),
        0xF000 => return Some(("-Infinity".to_owned(), 1)),
        _ => {}
    }
    let digits: Vec<i16> = (0..usize::try_from(count).ok()?)
        .map(|n| word(4 + n))
        .collect::<Option<_>>()?;
    let digit = |place: i32| -> i16 {
        // The digit `place` groups after the first one.
        usize::try_from(place)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let weight = i32::from(weight);
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0).to_string());
        for place in 1..=weight {
            text.push_str(&format!("{:04}", digit(place)));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut place = weight + 1;
        while fraction.len() < usize::from(scale) {
            fraction.push_str(&format!("{:04}", digit(place)));
            place += 1;
        }
        fraction.truncate(usize::from(scale));
        text.push('.');
        text.push_str(&fraction);
    }
    Some((text, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary numeric from its header and digits.
    fn binary(weight: i16, sign: u16, scale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as i16, weight, sign as i16, scale as i16] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn postgres_numerics_read_as_integers_reals_or_text() {
        // 12345678 = 1234|5678, weight 1.
        assert_eq!(
            numeric(&binary(1, 0, 0, &[1234, 5678])),
            SqlValue::Integer(12_345_678)
        );
        // 12.5 = 12 . 5000, scale 1.
        assert_eq!(numeric(&binary(0, 0, 1, &[12, 5000])), SqlValue::Real(12.5));
        // -0.0042 = 0 . 0042, weight -1, scale 4.
        assert_eq!(
            numeric(&binary(-1, 0x4000, 4, &[42])),
            SqlValue::Real(-0.0042)
        );
        // 0.00000001: weight -2 (one leading zero group), scale 8.
        assert_eq!(
            numeric_text(&binary(-2, 0, 8, &[1])),
            Some(("0.00000001".into(), 8))
        );
        // 10000 = 1|0000 with the trailing zero group dropped.
        assert_eq!(numeric(&binary(1, 0, 0, &[1])), SqlValue::Integer(10_000));
        assert_eq!(numeric(&binary(0, 0, 0, &[])), SqlValue::Integer(0));
        // 10^20 does not fit an i64.
        assert_eq!(
            numeric(&binary(5, 0, 0, &[1])),
            SqlValue::Text("100000000000000000000".into())
        );
        assert_eq!(
            numeric(&binary(0, 0xC000, 0, &[])),
            SqlValue::Text("NaN".into())
        );
    }

    #[test]
    fn postgres_columns_of_other_types_are_read_as_text_by_position() {
        let parts = [
            SqlPart::Sql("SELECT a FROM t WHERE x = ".into()),
            SqlPart::Param(0),
            SqlPart::Sql(" OR y = ".into()),
            SqlPart::Param(0),
        ];
        assert_eq!(
            numbered(&parts, |k| format!("${}", k + 1)),
            "SELECT a FROM t WHERE x = $1 OR y = $1"
        );
    }
}
