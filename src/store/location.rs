//! Where a jobtrail database lives: a SQLite file or a PostgreSQL URL, told
//! apart by one rule (SPEC §8) that `--db`, `JOBTRAIL_DB`, the config file's
//! `database` and `copy --from/--to` all share.

use std::fmt;
use std::path::{Path, PathBuf};

use super::postgres::{DbUrl, PgStoreError};

/// Which engine holds a database: what SQL dialect it speaks (saved queries
/// come in one per backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database: `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite:PATH`
/// or a plain path is a SQLite file. Shown (`Display`, `Debug`) without any
/// password.
#[derive(Clone, Debug)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(DbUrl),
}

impl DatabaseLocation {
    /// Reads a location as the user wrote it. Only a PostgreSQL URL can be
    /// refused (and its error never quotes it).
    pub fn parse(text: &Path) -> Result<DatabaseLocation, PgStoreError> {
        let Some(utf8) = text.to_str() else {
            // Not UTF-8: not a URL, so a file name.
            return Ok(DatabaseLocation::Sqlite(text.to_path_buf()));
        };
        if is_postgres_url(utf8) {
            return Ok(DatabaseLocation::Postgres(DbUrl::parse(utf8)?));
        }
        match strip_prefix_ignore_case(utf8, "sqlite:") {
            // `sqlite://x.db` as sqlx writes it, or `sqlite:x.db`.
            Some(rest) => Ok(DatabaseLocation::Sqlite(PathBuf::from(
                rest.strip_prefix("//").unwrap_or(rest),
            ))),
            None => Ok(DatabaseLocation::Sqlite(text.to_path_buf())),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseLocation::Sqlite(_) => Backend::Sqlite,
            DatabaseLocation::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DatabaseLocation::Sqlite(path) => Some(path),
            DatabaseLocation::Postgres(_) => None,
        }
    }

    /// A SQLite path relative to `base` (the config file's folder) becomes
    /// `base/path`; a URL or an absolute path is left as it is.
    pub fn relative_to(self, base: &Path) -> DatabaseLocation {
        match self {
            DatabaseLocation::Sqlite(path) if path.is_relative() => {
                DatabaseLocation::Sqlite(base.join(path))
            }
            other => other,
        }
    }

    /// Whether two locations name the same database (the same file, or the
    /// same server, port, database and user).
    pub fn same_as(&self, other: &DatabaseLocation) -> bool {
        match (self, other) {
            (DatabaseLocation::Sqlite(a), DatabaseLocation::Sqlite(b)) => {
                match (a.canonicalize(), b.canonicalize()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a == b,
                }
            }
            (DatabaseLocation::Postgres(a), DatabaseLocation::Postgres(b)) => {
                a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

/// `postgres://` or `postgresql://`, in any case.
fn is_postgres_url(text: &str) -> bool {
    ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| strip_prefix_ignore_case(text, scheme).is_some())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl From<PathBuf> for DatabaseLocation {
    fn from(path: PathBuf) -> DatabaseLocation {
        DatabaseLocation::Sqlite(path)
    }
}

impl From<&Path> for DatabaseLocation {
    fn from(path: &Path) -> DatabaseLocation {
        DatabaseLocation::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for DatabaseLocation {
    fn from(path: &PathBuf) -> DatabaseLocation {
        DatabaseLocation::Sqlite(path.clone())
    }
}

impl From<&DatabaseLocation> for DatabaseLocation {
    fn from(location: &DatabaseLocation) -> DatabaseLocation {
        location.clone()
    }
}

impl From<DbUrl> for DatabaseLocation {
    fn from(url: DbUrl) -> DatabaseLocation {
        DatabaseLocation::Postgres(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DatabaseLocation {
        DatabaseLocation::parse(Path::new(text)).expect(text)
    }

    #[test]
    fn urls_are_postgres_and_everything_else_is_a_sqlite_file() {
        for url in [
            "postgres://u:pw@db.example:6543/history",
            "postgresql://u@localhost/jobs",
            "POSTGRES://u@h/d",
        ] {
            let location = parse(url);
            assert!(matches!(location, DatabaseLocation::Postgres(_)), "{url}");
            assert!(!location.to_string().contains("pw"), "{location}");
            assert!(!format!("{location:?}").contains(":pw@"), "{location:?}");
        }
        let file = |text: &str| parse(text).sqlite_path().map(Path::to_path_buf);
        assert_eq!(file("jobtrail.db"), Some(PathBuf::from("jobtrail.db")));
        assert_eq!(file("sqlite:data/j.db"), Some(PathBuf::from("data/j.db")));
        assert_eq!(file("sqlite:///tmp/j.db"), Some(PathBuf::from("/tmp/j.db")));
        assert_eq!(
            file("/var/lib/postgres.db"),
            Some(PathBuf::from("/var/lib/postgres.db"))
        );
        assert_eq!(
            parse("j.db")
                .relative_to(Path::new("/etc/jobtrail"))
                .sqlite_path(),
            Some(Path::new("/etc/jobtrail/j.db"))
        );
    }

    #[test]
    fn a_bad_postgres_url_is_refused_without_being_quoted() {
        let err = DatabaseLocation::parse(Path::new("postgres://u:hunter2@[::1/db"))
            .expect_err("bad url");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
