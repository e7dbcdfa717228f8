//! Where a PostgreSQL store lives, said without its password: the one form of
//! the URL that messages, log lines and `Debug` output ever show.

use std::fmt;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use super::PgStoreError;

/// What is shown in place of a password.
const REDACTED: &str = "***";

/// A parsed `postgres://` URL: the options to connect with (password
/// included, from the URL, `PGPASSWORD` or `~/.pgpass`, as libpq reads them)
/// and a redacted form for every message. Neither `Display` nor `Debug` shows
/// the password.
#[derive(Clone)]
pub struct DbUrl {
    /// Boxed: errors carry a `DbUrl`, and the options are large.
    options: Box<PgConnectOptions>,
    /// `postgres://user:***@host:5432/db`, built once.
    shown: String,
    /// Passwords given in the URL, scrubbed from any error text that might
    /// quote them (none known does; this is the belt to the braces).
    secrets: Vec<String>,
}

impl DbUrl {
    /// Parses a `postgres://` or `postgresql://` URL. Errors never quote it.
    pub fn parse(text: &str) -> Result<DbUrl, PgStoreError> {
        let url = url::Url::parse(text)
            .map_err(|e| PgStoreError::Url(format!("the PostgreSQL URL is not valid: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(PgStoreError::Url(format!(
                "the database URL starts with `{}:`, not `postgres://`",
                url.scheme()
            )));
        }
        let mut secrets: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned())
            .collect();
        if let Some(password) = url.password() {
            secrets.push(password.to_owned());
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            secrets.push(decoded.into_owned());
        }
        secrets.retain(|s| !s.is_empty());
        // sqlx's own messages would name the options, not the URL: keep them
        // out of this error too.
        let options = PgConnectOptions::from_url(&url)
            .map_err(|e| PgStoreError::Url(format!("the PostgreSQL URL is not usable: {e}")))?;
        let host = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => options.get_host().to_owned(),
        };
        let shown = format!(
            "postgres://{user}{password}@{host}:{port}/{database}",
            user = options.get_username(),
            password = if secrets.is_empty() {
                String::new()
            } else {
                format!(":{REDACTED}")
            },
            port = options.get_port(),
            // PostgreSQL's default database is the user's name.
            database = options.get_database().unwrap_or(options.get_username()),
        );
        let mut parsed = DbUrl {
            options: Box::new(options),
            shown,
            secrets,
        };
        parsed.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(parsed)
    }

    /// The host (or Unix socket folder) connected to.
    pub fn host(&self) -> &str {
        self.options.get_host()
    }

    pub fn port(&self) -> u16 {
        self.options.get_port()
    }

    /// The database name (PostgreSQL's default: the user's name).
    pub fn database(&self) -> &str {
        self.options
            .get_database()
            .unwrap_or(self.options.get_username())
    }

    /// The options to connect with. Never print them: their `Debug` shows the
    /// password.
    pub(super) fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// `text` with any password of this URL replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |t, secret| {
            t.replace(secret.as_str(), REDACTED)
        })
    }

    /// This URL naming another database on the same server (tests create one each).
    #[cfg(test)]
    pub(super) fn with_database(&self, database: &str) -> DbUrl {
        let mut other = self.clone();
        other.options = Box::new(self.options.as_ref().clone().database(database));
        other.shown = format!(
            "{}/{database}",
            self.shown.rsplit_once('/').map_or("", |(head, _)| head)
        );
        other
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DbUrl").field(&self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url_display_and_debug_never_show_the_password() {
        let url =
            DbUrl::parse("postgres://alice:s3cr%40t-pw@db.example:6543/history?sslmode=disable")
                .expect("url");
        assert_eq!(
            url.to_string(),
            "postgres://alice:***@db.example:6543/history"
        );
        let debug = format!("{url:?}");
        assert!(!debug.contains("s3cr"), "{debug}");
        assert_eq!(
            (url.host(), url.port(), url.database()),
            ("db.example", 6543, "history")
        );
        assert_eq!(url.scrub("x s3cr@t-pw y s3cr%40t-pw"), "x *** y ***");
    }

    #[test]
    fn postgres_url_without_a_password_shows_none_and_fills_the_defaults() {
        let url = DbUrl::parse("postgresql://bob@localhost/jobs").expect("url");
        assert_eq!(url.to_string(), "postgres://bob@localhost:5432/jobs");
        let url = DbUrl::parse("postgres://bob:pw@localhost?password=other").expect("url");
        assert_eq!(url.to_string(), "postgres://bob:***@localhost:5432/bob");
        assert!(!format!("{url:?}").contains("other"));
    }

    #[test]
    fn postgres_url_errors_do_not_quote_the_url() {
        for bad in ["mysql://u:hunter2@h/db", "postgres://u:hunter2@[bad/db"] {
            let err = DbUrl::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
    }
}
