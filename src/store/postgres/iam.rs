//! `iam_projects` on PostgreSQL: the projects IAM named, per key pair,
//! endpoint and lookup, so a cron run asks IAM at most once a day. The same
//! answers as SQLite's (`store::iam`).

use chrono::{DateTime, Utc};

use super::copy::without_nul;
use super::{PgStore, PgStoreError, to_millis};
use crate::model::IamProject;
use crate::store::{CachedProjects, IamCacheKey};

impl PgStore {
    /// The last answer IAM gave for `key`, in IAM's order, and when.
    pub async fn cached_iam_projects(
        &self,
        key: &IamCacheKey<'_>,
    ) -> Result<Option<CachedProjects>, PgStoreError> {
        let rows: Vec<(String, String, bool, DateTime<Utc>)> = sqlx::query_as(
            "SELECT project_id, name, enabled, fetched_at FROM iam_projects
             WHERE credential = $1 AND iam_endpoint = $2 AND lookup = $3 ORDER BY position",
        )
        .bind(key.credential)
        .bind(without_nul(key.endpoint).into_owned())
        .bind(without_nul(key.lookup.key()).into_owned())
        .fetch_all(&self.pool)
        .await?;
        let Some(fetched_at) = rows.first().map(|r| r.3) else {
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

    /// Replaces the answer kept for `key` with `projects`, fetched at
    /// `fetched_at`, in one transaction.
    pub async fn cache_iam_projects(
        &self,
        key: &IamCacheKey<'_>,
        projects: &[IamProject],
        fetched_at: DateTime<Utc>,
    ) -> Result<(), PgStoreError> {
        let text = |t: &str| without_nul(t).into_owned();
        let (endpoint, lookup) = (text(key.endpoint), text(key.lookup.key()));
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM iam_projects WHERE credential = $1 AND iam_endpoint = $2 AND lookup = $3",
        )
        .bind(key.credential)
        .bind(&endpoint)
        .bind(&lookup)
        .execute(&mut *tx)
        .await?;
        let ids: Vec<String> = projects.iter().map(|p| text(&p.id)).collect();
        let names: Vec<String> = projects.iter().map(|p| text(&p.name)).collect();
        let enabled: Vec<bool> = projects.iter().map(|p| p.enabled).collect();
        sqlx::query(
            "INSERT INTO iam_projects (credential, iam_endpoint, lookup, project_id, name, enabled, position, fetched_at)
             SELECT $1, $2, $3, id, name, enabled, position - 1, $7
             FROM UNNEST($4::text[], $5::text[], $6::boolean[]) WITH ORDINALITY AS u (id, name, enabled, position)
             ON CONFLICT DO NOTHING",
        )
        .bind(key.credential)
        .bind(&endpoint)
        .bind(&lookup)
        .bind(&ids)
        .bind(&names)
        .bind(&enabled)
        .bind(to_millis(fetched_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
