//! A compartment: every current resource of any type whose reference
//! parameter names one of some resources, such as everything whose
//! `patient` is `Patient/123` (or, for a merged person, any of their
//! Patients). It answers `Patient/$everything`.

use sqlx::Row;

use crate::search::query::{self, DEFAULT_COUNT, MAX_COUNT};
use corridor_fhir::Issue;

use crate::{Store, StoreError, Stored, date, stored_from_row};

/// One page of a compartment, ordered by type and id.
#[derive(Debug, Clone)]
pub struct Slice {
    pub entries: Vec<Stored>,
    pub total: i64,
    pub next_token: Option<String>,
}

impl Store {
    /// Current resources whose parameter `param` refers to any of
    /// `references` (`Type/id`), last updated at or after `since` (a FHIR
    /// instant) when given. A page token is bound to the references: asked
    /// with others, it is refused.
    pub async fn compartment(
        &self,
        param: &str,
        references: &[String],
        since: Option<&str>,
        count: i64,
        page_token: Option<&str>,
        access: Option<&crate::Access>,
    ) -> Result<Slice, StoreError> {
        let count = if count <= 0 {
            DEFAULT_COUNT
        } else {
            count.min(MAX_COUNT)
        };
        let since_ms = match since.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(date::parse(s).map(|r| r.lo).ok_or_else(|| {
                Issue::new(
                    "invalid",
                    format!(
                        "_since must be a FHIR instant such as 2026-01-31T08:00:00Z, not '{s}'"
                    ),
                )
                .at("_since")
            })?),
            None => None,
        };
        if references.is_empty() {
            return Ok(Slice {
                entries: Vec::new(),
                total: 0,
                next_token: None,
            });
        }
        let mut sorted: Vec<&str> = references.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let fingerprint = format!(
            "compartment:{param}:{}:{}:{count}",
            sorted.join(","),
            since_ms.unwrap_or(i64::MIN)
        );
        let offset = match page_token.filter(|t| !t.is_empty()) {
            Some(token) => query::decode_token(token, &fingerprint)?,
            None => 0,
        };
        // Driven from the index rows that name the references (index
        // search_index_ref_any), not from a scan of every resource.
        let placeholders = crate::placeholders(3, sorted.len());
        let (visible, access_args) = match access {
            Some(access) => {
                let (sql, args) = crate::search::sql::access_clause(2 + sorted.len(), access);
                (format!(" AND {sql}"), args)
            }
            None => (String::new(), Vec::new()),
        };
        let from = format!(
            "FROM resources r JOIN (SELECT DISTINCT resource_type, resource_id FROM search_index \
             WHERE ref IN ({}) AND param = $1) s ON s.resource_type = r.resource_type AND s.resource_id = r.id \
             WHERE r.deleted = 0 AND r.last_updated_ms >= $2{visible}",
            placeholders
        );
        let lower = since_ms.unwrap_or(i64::MIN);
        let mut conn = self.inner.pool.acquire().await?;
        let count_sql = format!("SELECT COUNT(*) AS n {from}");
        let mut count_query = sqlx::query(&count_sql).bind(param).bind(lower);
        for reference in &sorted {
            count_query = count_query.bind(*reference);
        }
        let count_query = crate::bind_all(count_query, &access_args);
        let total: i64 = count_query.fetch_one(&mut *conn).await?.try_get("n")?;
        let page_sql = format!(
            "SELECT r.resource_type, r.id, r.version, r.last_updated, r.deleted, r.content {from} \
             ORDER BY r.resource_type, r.id LIMIT ${} OFFSET ${}",
            sorted.len() + access_args.len() + 3,
            sorted.len() + access_args.len() + 4
        );
        let mut page_query = sqlx::query(&page_sql).bind(param).bind(lower);
        for reference in &sorted {
            page_query = page_query.bind(*reference);
        }
        let page_query = crate::bind_all(page_query, &access_args);
        let page_query = page_query.bind(count).bind(offset);
        let rows = page_query.fetch_all(&mut *conn).await?;
        let entries = rows
            .iter()
            .map(stored_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let shown = offset + i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let next_token = (shown < total).then(|| query::encode_token(shown, &fingerprint));
        Ok(Slice {
            entries,
            total,
            next_token,
        })
    }
}
