//! Matching support: candidates found through blocking keys, and the pairs
//! of resources that matching found alike with what people decided about
//! them (the identity service's review queue).
//!
//! Blocking keys (table `match_keys`, made by a `ResourceDef`'s `keys`) are
//! written with every version, in the write's transaction, like the search
//! index.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, Stored, Tx, now_instant, stored_from_row};

/// What a person decided about a pair, or that nobody has yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairStatus {
    Pending,
    Match,
    NotMatch,
}

impl PairStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Match => "match",
            Self::NotMatch => "not-match",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "match" => Some(Self::Match),
            "not-match" => Some(Self::NotMatch),
            _ => None,
        }
    }
}

/// A pair as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub resource_type: String,
    /// The resource whose write found the pair (or the first one named
    /// when a person decided before matching found it).
    pub found_by: String,
    /// The other one.
    pub other: String,
    pub grade: Option<String>,
    pub score: Option<f64>,
    pub evidence: Option<String>,
    pub status: PairStatus,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub found_at: String,
    pub decided_at: Option<String>,
}

/// A pair that matching found.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub other: String,
    pub grade: String,
    pub score: f64,
    pub evidence: String,
}

/// A person's decision about two resources.
#[derive(Debug, Clone)]
pub struct Decision {
    pub resource_type: String,
    pub a: String,
    pub b: String,
    pub status: PairStatus,
    pub decided_by: String,
    pub reason: String,
}

fn ordered<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

fn pair_from_row(row: &AnyRow) -> Result<Pair, StoreError> {
    let low: String = row.try_get("low_id")?;
    let high: String = row.try_get("high_id")?;
    let found_by: String = row.try_get("found_by")?;
    let other = if found_by == low { high } else { low };
    let status: String = row.try_get("status")?;
    Ok(Pair {
        resource_type: row.try_get("resource_type")?,
        found_by,
        other,
        grade: row.try_get("grade")?,
        score: row.try_get("score")?,
        evidence: row.try_get("evidence")?,
        status: PairStatus::parse(&status).ok_or(StoreError::Contention)?,
        decided_by: row.try_get("decided_by")?,
        reason: row.try_get("reason")?,
        found_at: row.try_get("found_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

const PAIR_COLUMNS: &str = "resource_type, low_id, high_id, found_by, grade, score, evidence, status, decided_by, reason, found_at, decided_at";

impl Store {
    /// The current, non-deleted resources of `resource_type` stored under
    /// any of `keys` (blocking keys of its `keys` parameter), as (id,
    /// version), at most `limit`, best first. At most `per_key` records are
    /// read under each key, so that a key thousands share costs no more
    /// than a rare one. A key that reached that cap tells little (the pair
    /// "Mohammed Ahmed"), so the order is: most keys shared among those
    /// that did not reach it, then most keys shared. Content is left to
    /// [`Store::read_many`], so that a caller that keeps what it read before
    /// fetches only what changed.
    pub async fn candidates(
        &self,
        resource_type: &str,
        keys: &[String],
        limit: usize,
        per_key: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let def = self.def(resource_type)?;
        if def.keys.is_none() || keys.is_empty() || per_key == 0 {
            return Ok(Vec::new());
        }
        // One bounded range of the key index per key, read first and only
        // then grouped (asked to group directly, SQLite's planner walks the
        // index in resource order instead). The index holds the version, so
        // no table row is read; a deleted resource has no keys.
        let per_key_reads: Vec<String> = (0..keys.len())
            .map(|n| {
                format!(
                    "SELECT resource_id, version, COUNT(*) OVER () AS listed FROM \
                     (SELECT resource_id, version FROM match_keys \
                      WHERE resource_type = $1 AND match_key = ${} LIMIT $3) AS k{n}",
                    n + 4
                )
            })
            .collect();
        let sql = format!(
            "WITH hits AS MATERIALIZED ({}) \
             SELECT resource_id AS id, MAX(version) AS version, \
                    SUM(CASE WHEN listed < $3 THEN 1 ELSE 0 END) AS telling, COUNT(*) AS shared \
             FROM hits GROUP BY resource_id ORDER BY telling DESC, shared DESC, resource_id LIMIT $2",
            per_key_reads.join(" UNION ALL ")
        );
        let mut q = sqlx::query(&sql)
            .bind(def.resource_type)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(per_key).unwrap_or(i64::MAX));
        for key in keys {
            q = q.bind(key.as_str());
        }
        let rows = q.fetch_all(&self.inner.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("version")?)))
            .collect()
    }

    /// The current, non-deleted versions of those of `ids` that exist, in
    /// no particular order.
    pub async fn read_many(
        &self,
        resource_type: &str,
        ids: &[&str],
    ) -> Result<Vec<Stored>, StoreError> {
        let def = self.def(resource_type)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders = crate::placeholders(2, chunk.len());
            let sql = format!(
                "SELECT resource_type, id, version, last_updated, deleted, content FROM resources \
                 WHERE resource_type = $1 AND deleted = 0 AND id IN ({})",
                placeholders
            );
            let mut q = sqlx::query(&sql).bind(def.resource_type);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.inner.pool).await? {
                out.push(stored_from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Record what matching found for the writes of a stream up to entry
    /// `seq`, each as (the id written, the pairs found), and move the
    /// reader `cursor` to `seq`, in one transaction. A pending pair is
    /// refreshed; a decided one is left as the person decided.
    pub async fn propose_pairs(
        &self,
        cursor: &str,
        seq: i64,
        resource_type: &str,
        found: &[(String, Vec<Proposal>)],
    ) -> Result<(), StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        let now = now_instant();
        for (found_by, proposals) in found {
            for p in proposals {
                let (low, high) = ordered(found_by, &p.other);
                sqlx::query(&format!(
                    "INSERT INTO match_pairs ({PAIR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', NULL, NULL, $8, NULL) \
                     ON CONFLICT (resource_type, low_id, high_id) DO UPDATE SET found_by = excluded.found_by, \
                     grade = excluded.grade, score = excluded.score, evidence = excluded.evidence, found_at = excluded.found_at \
                     WHERE match_pairs.status = 'pending'"
                ))
                .bind(resource_type)
                .bind(low)
                .bind(high)
                .bind(found_by.as_str())
                .bind(p.grade.as_str())
                .bind(p.score)
                .bind(p.evidence.as_str())
                .bind(now.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        save_cursor(&mut tx, cursor, seq).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where the reader `cursor` stopped (0 when it never read).
    pub async fn cursor(&self, cursor: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM stream_cursors WHERE name = $1")
            .bind(cursor)
            .fetch_optional(&self.inner.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("seq")?,
            None => 0,
        })
    }

    /// The pair of `a` and `b`, if matching found it or a person decided it.
    pub async fn pair(
        &self,
        resource_type: &str,
        a: &str,
        b: &str,
    ) -> Result<Option<Pair>, StoreError> {
        let (low, high) = ordered(a, b);
        let row = sqlx::query(&format!(
            "SELECT {PAIR_COLUMNS} FROM match_pairs WHERE resource_type = $1 AND low_id = $2 AND high_id = $3"
        ))
        .bind(resource_type)
        .bind(low)
        .bind(high)
        .fetch_optional(&self.inner.pool)
        .await?;
        row.as_ref().map(pair_from_row).transpose()
    }

    /// The pairs of `id` that a person decided, as (other id, status).
    pub async fn decisions(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Vec<(String, PairStatus)>, StoreError> {
        // Two indexed lookups, one per side of the pair: an OR of the two
        // would read every pair of the type on SQLite.
        let rows = sqlx::query(&format!(
            "SELECT {PAIR_COLUMNS} FROM match_pairs WHERE resource_type = $1 AND low_id = $2 AND status <> 'pending' \
             UNION ALL \
             SELECT {PAIR_COLUMNS} FROM match_pairs WHERE resource_type = $1 AND high_id = $2 AND status <> 'pending'"
        ))
        .bind(resource_type)
        .bind(id)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let low: String = row.try_get("low_id")?;
                let high: String = row.try_get("high_id")?;
                let status: String = row.try_get("status")?;
                let other = if low == id { high } else { low };
                Ok((
                    other,
                    PairStatus::parse(&status).ok_or(StoreError::Contention)?,
                ))
            })
            .collect()
    }

    /// Pairs with `status` (all when None), oldest found first, skipping
    /// `offset`; at most `limit`.
    pub async fn pairs(
        &self,
        resource_type: &str,
        status: Option<PairStatus>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Pair>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAIR_COLUMNS} FROM match_pairs WHERE resource_type = $1 AND ($2 = '' OR status = $2) \
             ORDER BY found_at, low_id, high_id LIMIT $3 OFFSET $4"
        ))
        .bind(resource_type)
        .bind(status.map_or("", PairStatus::as_str))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(pair_from_row).collect()
    }
}

/// Remove a resource's blocking keys (before its new version's are written).
pub(crate) async fn delete_keys(
    tx: &mut Tx,
    resource_type: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM match_keys WHERE resource_type = $1 AND resource_id = $2")
        .bind(resource_type)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Write a resource's blocking keys.
pub(crate) async fn insert_keys(
    tx: &mut Tx,
    resource_type: &str,
    id: &str,
    version: i64,
    mut keys: Vec<String>,
) -> Result<(), StoreError> {
    keys.sort();
    keys.dedup();
    // One value per row besides the three shared; 300 rows stay well below
    // every bind limit.
    for chunk in keys.chunks(300) {
        let values: Vec<String> = (0..chunk.len())
            .map(|n| format!("($1, $2, $3, ${})", n + 4))
            .collect();
        let sql = format!(
            "INSERT INTO match_keys (resource_type, resource_id, version, match_key) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(resource_type).bind(id).bind(version);
        for key in chunk {
            q = q.bind(key.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Record a person's decision inside a write transaction.
pub(crate) async fn decide_in(tx: &mut Tx, decision: &Decision) -> Result<(), StoreError> {
    let (low, high) = ordered(&decision.a, &decision.b);
    let now = now_instant();
    sqlx::query(&format!(
        "INSERT INTO match_pairs ({PAIR_COLUMNS}) VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, $6, $7, $8, $8) \
         ON CONFLICT (resource_type, low_id, high_id) DO UPDATE SET status = excluded.status, \
         decided_by = excluded.decided_by, reason = excluded.reason, decided_at = excluded.decided_at"
    ))
    .bind(decision.resource_type.as_str())
    .bind(low)
    .bind(high)
    .bind(decision.a.as_str())
    .bind(decision.status.as_str())
    .bind(decision.decided_by.as_str())
    .bind(decision.reason.as_str())
    .bind(now.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn save_cursor(tx: &mut Tx, cursor: &str, seq: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO stream_cursors (name, seq) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE stream_cursors.seq < excluded.seq",
    )
    .bind(cursor)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
