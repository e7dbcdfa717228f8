//! The saved-query registry: `.sql` files whose first comment line is the
//! description and whose further header lines `-- :name [= DEFAULT] help`
//! document parameters (a default of `NULL` makes one optional). Built-in ones
//! are embedded from `queries/`; files in a user folder override or extend them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::QueryError;
use super::params::{ParamDefault, ParamSpec, parse_param_spec, scan};
use crate::store::{Backend, SqlPart};

/// The saved queries shipped in the binary for SQLite, from `queries/`.
const SQLITE_BUILTIN: &[(&str, &str)] = &[
    (
        "failure-rate-by-type",
        include_str!("../../queries/failure-rate-by-type.sql"),
    ),
    (
        "failure-rate-by-week",
        include_str!("../../queries/failure-rate-by-week.sql"),
    ),
    (
        "failures-by-reason",
        include_str!("../../queries/failures-by-reason.sql"),
    ),
    ("job-history", include_str!("../../queries/job-history.sql")),
    (
        "new-failures",
        include_str!("../../queries/new-failures.sql"),
    ),
    (
        "recent-failures",
        include_str!("../../queries/recent-failures.sql"),
    ),
    (
        "slowest-job-types",
        include_str!("../../queries/slowest-job-types.sql"),
    ),
    ("stuck-jobs", include_str!("../../queries/stuck-jobs.sql")),
];

/// The same queries (names, parameters and meaning) in PostgreSQL's dialect,
/// from `queries/postgres/`.
const POSTGRES_BUILTIN: &[(&str, &str)] = &[
    (
        "failure-rate-by-type",
        include_str!("../../queries/postgres/failure-rate-by-type.sql"),
    ),
    (
        "failure-rate-by-week",
        include_str!("../../queries/postgres/failure-rate-by-week.sql"),
    ),
    (
        "failures-by-reason",
        include_str!("../../queries/postgres/failures-by-reason.sql"),
    ),
    (
        "job-history",
        include_str!("../../queries/postgres/job-history.sql"),
    ),
    (
        "new-failures",
        include_str!("../../queries/postgres/new-failures.sql"),
    ),
    (
        "recent-failures",
        include_str!("../../queries/postgres/recent-failures.sql"),
    ),
    (
        "slowest-job-types",
        include_str!("../../queries/postgres/slowest-job-types.sql"),
    ),
    (
        "stuck-jobs",
        include_str!("../../queries/postgres/stuck-jobs.sql"),
    ),
];

/// The built-in queries for a backend's dialect.
fn builtin(backend: Backend) -> &'static [(&'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE_BUILTIN,
        Backend::Postgres => POSTGRES_BUILTIN,
    }
}

/// SQL statements that are a single word: run as SQL when no saved query has the name.
const ONE_WORD_STATEMENTS: [&str; 7] = [
    "ANALYZE", "BEGIN", "COMMIT", "END", "REINDEX", "ROLLBACK", "VACUUM",
];

/// The name given to SQL typed on the command line.
const INLINE: &str = "(inline)";

/// Where a query's text came from; errors name it accordingly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded from `queries/`.
    BuiltIn,
    /// A file in the user's folder, or given with `-f`.
    File(PathBuf),
    /// SQL typed on the command line.
    Inline,
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
    pub origin: Origin,
    /// The statement to run: `sql` up to its first `;`, `params[k]` in slot `k`.
    pub(super) statement: Vec<SqlPart>,
}

impl SavedQuery {
    /// Parses a query's text: description line, parameter header, SQL.
    pub fn parse(name: &str, origin: Origin, text: &str) -> Result<SavedQuery, QueryError> {
        let source = match &origin {
            Origin::BuiltIn => format!("built-in query {name}"),
            Origin::File(path) => path.display().to_string(),
            Origin::Inline => "the SQL".to_owned(),
        };
        let bad = |line: usize, message: String| QueryError::BadHeader {
            origin: source.clone(),
            line,
            message,
        };
        let Header {
            description,
            declared,
        } = parse_header(text, bad)?;
        let scanned = scan(text, &source)?;
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
            origin,
            statement: scanned.parts,
        })
    }

    /// The file it came from; `None` for built-in and inline queries.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(path) => Some(path),
            Origin::BuiltIn | Origin::Inline => None,
        }
    }

    /// How errors running it name this query.
    pub(super) fn label(&self) -> String {
        match &self.origin {
            Origin::File(path) => format!("query file {}", path.display()),
            Origin::Inline => "the SQL".to_owned(),
            Origin::BuiltIn => format!("saved query `{}`", self.name),
        }
    }
}

/// A query's leading comment lines.
struct Header {
    description: String,
    /// Each declared parameter with its 1-based line.
    declared: Vec<(usize, ParamSpec)>,
}

/// Reads the header; `bad` turns a line number and what is wrong there into the error.
fn parse_header(
    text: &str,
    bad: impl Fn(usize, String) -> QueryError,
) -> Result<Header, QueryError> {
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
    Ok(Header {
        description,
        declared,
    })
}

/// The built-in queries in `backend`'s dialect, overridden or extended by
/// `*.sql` files in `user_dir` (same name wins; they are the user's, in the
/// dialect of the user's database). A `user_dir` that does not exist adds
/// nothing. Sorted by name.
pub fn saved_queries(
    backend: Backend,
    user_dir: Option<&Path>,
) -> Result<Vec<SavedQuery>, QueryError> {
    let mut all: BTreeMap<String, SavedQuery> = BTreeMap::new();
    for (name, text) in builtin(backend) {
        all.insert(
            (*name).to_owned(),
            SavedQuery::parse(name, Origin::BuiltIn, text)?,
        );
    }
    if let Some(dir) = user_dir {
        for path in sql_files(dir)? {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let query = load_file(&path, name)?;
            all.insert(name.to_owned(), query);
        }
    }
    Ok(all.into_values().collect())
}

/// The `*.sql` files in `dir`, sorted; none when it does not exist.
fn sql_files(dir: &Path) -> Result<Vec<PathBuf>, QueryError> {
    let unreadable = |source| QueryError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(unreadable(source)),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_file(path: &Path, name: &str) -> Result<SavedQuery, QueryError> {
    let text = std::fs::read_to_string(path).map_err(|source| QueryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    SavedQuery::parse(name, Origin::File(path.to_path_buf()), &text)
}

/// Finds what to run: `file` when given, else the saved query named `input`
/// (in `backend`'s dialect), else `input` as inline SQL.
pub fn resolve(
    input: &str,
    file: Option<&Path>,
    user_dir: Option<&Path>,
    backend: Backend,
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
        let mut queries = saved_queries(backend, user_dir)?;
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
    SavedQuery::parse(INLINE, Origin::Inline, input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Cell;
    use crate::query::run;
    use crate::test_support::db_with;

    #[test]
    fn builtin_queries_are_documented() {
        let queries = saved_queries(Backend::Sqlite, None).expect("built-ins parse");
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

    #[test]
    fn both_dialects_have_the_same_queries_with_the_same_parameters() {
        let sqlite = saved_queries(Backend::Sqlite, None).expect("SQLite's parse");
        let postgres = saved_queries(Backend::Postgres, None).expect("PostgreSQL's parse");
        let outline = |queries: &[SavedQuery]| -> Vec<(String, String, Vec<ParamSpec>)> {
            queries
                .iter()
                .map(|q| (q.name.clone(), q.description.clone(), q.param_specs.clone()))
                .collect()
        };
        assert_eq!(outline(&postgres), outline(&sqlite));
        // Every file of either folder is embedded, and no other.
        for (dir, backend) in [
            ("queries", Backend::Sqlite),
            ("queries/postgres", Backend::Postgres),
        ] {
            let on_disk: Vec<String> = sql_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                .expect("folder")
                .iter()
                .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
                .collect();
            let embedded: Vec<&str> = builtin(backend).iter().map(|(name, _)| *name).collect();
            assert_eq!(on_disk, embedded, "{dir}");
        }
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
        let queries = saved_queries(Backend::Sqlite, Some(dir.path())).expect("load");
        let stuck = queries
            .iter()
            .find(|q| q.name == "stuck-jobs")
            .expect("stuck-jobs");
        assert_eq!(stuck.description, "My own stuck jobs");
        assert_eq!(
            stuck.path(),
            Some(dir.path().join("stuck-jobs.sql").as_path())
        );
        assert!(queries.iter().any(|q| q.name == "mine"));
        assert!(!queries.iter().any(|q| q.name == "notes"));
        assert_eq!(
            queries.len(),
            saved_queries(Backend::Sqlite, None)
                .expect("built-ins")
                .len()
                + 1
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
        let none = saved_queries(Backend::Sqlite, Some(&dir.path().join("missing")))
            .expect("missing dir is fine");
        assert_eq!(none.len(), queries.len() - 1);
    }

    #[test]
    fn bad_headers_name_the_file_and_line() {
        let err = SavedQuery::parse(
            "x",
            Origin::File("x.sql".into()),
            "-- d\n-- :unused = 1\nSELECT 1",
        )
        .expect_err("unused");
        assert_eq!(
            err.to_string(),
            "x.sql, line 2: declares :unused but the SQL never uses it"
        );
        let err = SavedQuery::parse(
            "x",
            Origin::File("x.sql".into()),
            "-- d\n-- :a =\nSELECT :a",
        )
        .expect_err("empty default");
        assert!(err.to_string().contains("line 2"), "{err}");
        let q = SavedQuery::parse("x", Origin::File("x.sql".into()), "SELECT :a")
            .expect("no header is fine");
        assert_eq!(q.description, "");
        assert_eq!(q.param_specs[0].default, ParamDefault::Required);
    }
}
