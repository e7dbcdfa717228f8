//! `iam_projects`: what IAM answered about an account's projects, so a cron run
//! asks IAM at most once a day. An answer is stored and read whole.

use chrono::{DateTime, Utc};

use super::{SqliteStore, StoreError};
use crate::model::IamProject;
use crate::normalize::{format_utc, parse_api_time};

/// Which question an answer is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamLookup<'a> {
    /// `GET /v3/projects?name={name}`: the projects of that name.
    Name(&'a str),
    /// `GET /v3/auth/projects`: every project the credentials may use.
    Account,
}

impl IamLookup<'_> {
    /// How the lookup is stored: the name, or `*` (no project is named so).
    pub(super) fn key(&self) -> &str {
        match self {
            IamLookup::Name(name) => name,
            IamLookup::Account => "*",
        }
    }
}

/// Whose answer, from where, to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamCacheKey<'a> {
    /// The credentials' fingerprint (`Credentials::fingerprint`), never a key.
    pub credential: &'a str,
    /// The IAM endpoint asked, as a URL.
    pub endpoint: &'a str,
    pub lookup: IamLookup<'a>,
}

/// A stored answer and when IAM gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedProjects {
    pub projects: Vec<IamProject>,
    pub fetched_at: DateTime<Utc>,
}

impl SqliteStore {
    /// The stored answer to `key`, however old (the caller judges its age);
    /// `None` if there is none.
    pub async fn cached_iam_projects(
        &self,
        key: &IamCacheKey<'_>,
    ) -> Result<Option<CachedProjects>, StoreError> {
        let rows: Vec<(String, String, bool, String)> = sqlx::query_as(
            "SELECT project_id, name, enabled, fetched_at FROM iam_projects \
             WHERE credential = ? AND iam_endpoint = ? AND lookup = ? ORDER BY position",
        )
        .bind(key.credential)
        .bind(key.endpoint)
        .bind(key.lookup.key())
        .fetch_all(&self.pool)
        .await?;
        let Some(fetched_at) = rows.first().and_then(|r| parse_api_time(&r.3)) else {
            return Ok(None);
        };
        let projects = rows
            .into_iter()
            .map(|(id, name, enabled, _)| IamProject { id, name, enabled })
            .collect();
        Ok(Some(CachedProjects {
            projects,
            fetched_at,
        }))
    }

    /// Stores IAM's answer to `key`, replacing the previous one.
    pub async fn cache_iam_projects(
        &self,
        key: &IamCacheKey<'_>,
        projects: &[IamProject],
        fetched_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = format_utc(fetched_at);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM iam_projects WHERE credential = ? AND iam_endpoint = ? AND lookup = ?",
        )
        .bind(key.credential)
        .bind(key.endpoint)
        .bind(key.lookup.key())
        .execute(&mut *tx)
        .await?;
        for (position, p) in (0_i64..).zip(projects) {
            // IAM never lists a project twice; should it, the first answer stays.
            sqlx::query(
                "INSERT INTO iam_projects (credential, iam_endpoint, lookup, project_id, name, enabled, position, fetched_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(key.credential)
            .bind(key.endpoint)
            .bind(key.lookup.key())
            .bind(&p.id)
            .bind(&p.name)
            .bind(p.enabled)
            .bind(position)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::db_with;

    fn project(id: &str, name: &str, enabled: bool) -> IamProject {
        IamProject {
            id: id.into(),
            name: name.into(),
            enabled,
        }
    }

    #[tokio::test]
    async fn an_answer_reads_back_whole_and_is_replaced_whole() {
        let db = db_with(&[]).await;
        let store = &db.store;
        let key = |lookup| IamCacheKey {
            credential: "c1",
            endpoint: "https://iam.example/",
            lookup,
        };
        let at = parse_api_time("2024-03-01T00:00:00Z").expect("time");
        assert_eq!(
            store
                .cached_iam_projects(&key(IamLookup::Account))
                .await
                .expect("read"),
            None
        );
        let all = [
            project("b", "cn-north-4_dev", true),
            project("a", "MOS", true),
            project("c", "x", false),
        ];
        store
            .cache_iam_projects(&key(IamLookup::Account), &all, at)
            .await
            .expect("store");
        store
            .cache_iam_projects(&key(IamLookup::Name("cn-north-4")), &all[..1], at)
            .await
            .expect("store");
        let read = store
            .cached_iam_projects(&key(IamLookup::Account))
            .await
            .expect("read")
            .expect("cached");
        assert_eq!(read.projects, all, "IAM's order, every field");
        assert_eq!(read.fetched_at, at);

        let later = parse_api_time("2024-03-02T00:00:00Z").expect("time");
        store
            .cache_iam_projects(&key(IamLookup::Account), &all[2..], later)
            .await
            .expect("replace");
        let read = store
            .cached_iam_projects(&key(IamLookup::Account))
            .await
            .expect("read")
            .expect("cached");
        assert_eq!(
            (read.projects.as_slice(), read.fetched_at),
            (&all[2..], later)
        );
        // Other lookups and other credentials are apart.
        let other = IamCacheKey {
            credential: "c2",
            ..key(IamLookup::Name("cn-north-4"))
        };
        assert_eq!(store.cached_iam_projects(&other).await.expect("read"), None);
        assert_eq!(
            store
                .cached_iam_projects(&key(IamLookup::Name("cn-north-4")))
                .await
                .expect("read")
                .map(|c| c.projects),
            Some(all[..1].to_vec())
        );
    }
}
