//! Transactions that span services: the gateway splits a FHIR transaction
//! Bundle by the service that owns each entry, and each service writes its
//! part in one local transaction. This module keeps both halves of the
//! bookkeeping that makes the whole all-or-nothing as clients observe it:
//!
//! - **Parts** (every service): a part is written and visible at once, with
//!   a `transaction_parts` row listing what it wrote. When the transaction
//!   is decided, the part is settled: committed, the list is dropped;
//!   aborted, every write is purged (a create leaves no trace, an update or
//!   delete restores the version before it) and the row stays `aborted`, so
//!   that a late copy of the part is refused rather than written.
//! - **Decisions** (the identity service, the coordinator): one row per
//!   attempt, `open` until the gateway commits it. An attempt still open
//!   past its deadline is presumed aborted: whoever decides first wins, so
//!   a gateway that crashed, or came back too late, cannot commit half.
//!
//! Nothing here calls another service; the identity service's recovery
//! worker and the gateway do that.

use serde_json::Value;
use sqlx::Row;

use crate::{Backend, Outcome, Store, StoreError, Tx, date, index, insert_index_rows, pairs};

/// What [`Store::begin_distributed`] found for the client's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// A new attempt, open under this id.
    New(String),
    /// An attempt with the same key is still open.
    InProgress(String),
    /// An attempt with the same key committed: its parts replay.
    Committed(String),
}

/// The state of a transaction's decision, or of one service's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Undecided (`open` at the coordinator, `tentative` for a part).
    Open,
    Committed,
    Aborted,
}

impl TxState {
    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "open" | "tentative" => Ok(Self::Open),
            "committed" => Ok(Self::Committed),
            "aborted" => Ok(Self::Aborted),
            _ => Err(StoreError::Contention),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Committed => "committed",
            Self::Aborted => "aborted",
        }
    }
}

/// A decided transaction whose parts have not all been settled yet.
#[derive(Debug, Clone)]
pub struct Unsettled {
    pub id: String,
    pub state: TxState,
    pub participants: Vec<String>,
}

/// One write of a part, as recorded: `[type, id, version, outcome]`.
type Write = (String, String, i64, String);

impl Store {
    // === the coordinator (identity) ===

    /// Open an attempt of a transaction with parts at `participants`. With
    /// the client's idempotency key, an attempt already open or committed
    /// under it is returned instead (a key reused for another request, as
    /// `request_hash` tells, is refused).
    pub async fn begin_distributed(
        &self,
        client_key: Option<&str>,
        request_hash: &str,
        participants: &[&str],
    ) -> Result<Begun, StoreError> {
        if let Some(key) = client_key {
            crate::valid_key(key)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let inserted = sqlx::query(
            "INSERT INTO distributed_transactions (transaction_id, client_key, request_hash, state, participants, created_ms, settled) \
             VALUES ($1, $2, $3, 'open', $4, $5, 0) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(client_key)
        .bind(request_hash)
        .bind(participants.join(","))
        .bind(date::now().1)
        .execute(&self.inner.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Begun::New(id));
        }
        // Only the key's live attempt can have been in the way.
        let row = sqlx::query(
            "SELECT transaction_id, request_hash, state FROM distributed_transactions \
             WHERE client_key = $1 AND state IN ('open', 'committed')",
        )
        .bind(client_key)
        .fetch_optional(&self.inner.pool)
        .await?
        // Decided aborted meanwhile: the caller may try again.
        .ok_or(StoreError::Contention)?;
        if row.try_get::<String, _>("request_hash")? != request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let existing: String = row.try_get("transaction_id")?;
        match TxState::parse(&row.try_get::<String, _>("state")?)? {
            TxState::Committed => Ok(Begun::Committed(existing)),
            _ => Ok(Begun::InProgress(existing)),
        }
    }

    /// Decide an open transaction: commit or abort. The first decision
    /// stands; the answer is the decision that stands (None: no such
    /// transaction).
    pub async fn decide_distributed(
        &self,
        id: &str,
        commit: bool,
    ) -> Result<Option<TxState>, StoreError> {
        let state = if commit { "committed" } else { "aborted" };
        sqlx::query(
            "UPDATE distributed_transactions SET state = $2, decided_ms = $3 \
             WHERE transaction_id = $1 AND state = 'open'",
        )
        .bind(id)
        .bind(state)
        .bind(date::now().1)
        .execute(&self.inner.pool)
        .await?;
        let row =
            sqlx::query("SELECT state FROM distributed_transactions WHERE transaction_id = $1")
                .bind(id)
                .fetch_optional(&self.inner.pool)
                .await?;
        row.map(|r| TxState::parse(&r.try_get::<String, _>("state")?))
            .transpose()
    }

    /// Abort every transaction still open that began before `before_ms`
    /// (presumed abort); how many.
    pub async fn presume_aborted(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE distributed_transactions SET state = 'aborted', decided_ms = $2 \
             WHERE state = 'open' AND created_ms < $1",
        )
        .bind(before_ms)
        .bind(date::now().1)
        .execute(&self.inner.pool)
        .await?
        .rows_affected())
    }

    /// Decided transactions whose parts are not all settled yet, oldest
    /// first.
    pub async fn unsettled_distributed(&self, limit: i64) -> Result<Vec<Unsettled>, StoreError> {
        let rows = sqlx::query(
            "SELECT transaction_id, state, participants FROM distributed_transactions \
             WHERE settled = 0 AND state <> 'open' ORDER BY created_ms LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Unsettled {
                    id: row.try_get("transaction_id")?,
                    state: TxState::parse(&row.try_get::<String, _>("state")?)?,
                    participants: row
                        .try_get::<String, _>("participants")?
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }

    /// Every part of `id` has been settled.
    pub async fn distributed_settled(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE distributed_transactions SET settled = 1 WHERE transaction_id = $1")
            .bind(id)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    // === the parts (every service) ===

    /// Settle this service's part of transaction `id`: forget its writes
    /// when committed, purge them when aborted. Settling twice, or a part
    /// that was never written, is harmless; an abort of a part that was
    /// committed (or the reverse) is refused, since decisions never change.
    pub async fn settle_part(&self, id: &str, commit: bool) -> Result<(), StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        if commit {
            sqlx::query(
                "UPDATE transaction_parts SET state = 'committed', written = NULL \
                 WHERE transaction_id = $1 AND state = 'tentative'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        } else {
            // Insert or update in one statement: on PostgreSQL it waits for a
            // part being written right now, and a part written after it finds
            // 'aborted' and is refused.
            sqlx::query(
                "INSERT INTO transaction_parts (transaction_id, state, created_ms) VALUES ($1, 'aborted', $2) \
                 ON CONFLICT (transaction_id) DO UPDATE SET state = 'aborted' \
                 WHERE transaction_parts.state = 'tentative'",
            )
            .bind(id)
            .bind(date::now().1)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "SELECT state, written, idempotency_key FROM transaction_parts WHERE transaction_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(());
        };
        let state = TxState::parse(&row.try_get::<String, _>("state")?)?;
        let wanted = if commit {
            TxState::Committed
        } else {
            TxState::Aborted
        };
        if state != wanted {
            return Err(corridor_fhir::Issue::new(
                "conflict",
                format!(
                    "this service's part of transaction {id} is {}; it cannot become {}",
                    state.as_str(),
                    wanted.as_str()
                ),
            )
            .into());
        }
        if let Some(written) = row.try_get::<Option<String>, _>("written")? {
            let writes: Vec<Write> =
                serde_json::from_str(&written).map_err(|_| StoreError::Contention)?;
            for write in writes.iter().rev() {
                self.purge_write(&mut tx, write).await?;
            }
            if let Some(key) = row.try_get::<Option<String>, _>("idempotency_key")? {
                sqlx::query("DELETE FROM idempotency_keys WHERE idempotency_key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE transaction_parts SET written = NULL WHERE transaction_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tracing::info!(
                transaction = id,
                writes = writes.len(),
                "aborted part purged"
            );
        }
        tx.commit().await?;
        Ok(())
    }

    /// Undo one write of an aborted part: a create leaves no trace; an
    /// update or delete restores the version before it, unless someone
    /// wrote on top of it since (then the later write stays, and is
    /// logged).
    async fn purge_write(&self, tx: &mut Tx, write: &Write) -> Result<(), StoreError> {
        let (resource_type, id, version, outcome) = write;
        let outcome = Outcome::parse(outcome).ok_or(StoreError::Contention)?;
        let by_resource = |table: &str, id_column: &str| {
            format!("DELETE FROM {table} WHERE resource_type = $1 AND {id_column} = $2")
        };
        match outcome {
            Outcome::Matched => {}
            Outcome::Created => {
                for (table, column) in [
                    ("resources", "id"),
                    ("resource_versions", "id"),
                    ("search_index", "resource_id"),
                    ("match_keys", "resource_id"),
                    ("stream_entries", "id"),
                    ("outbox", "id"),
                ] {
                    sqlx::query(&by_resource(table, column))
                        .bind(resource_type)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                sqlx::query(
                    "DELETE FROM match_pairs WHERE resource_type = $1 AND (low_id = $2 OR high_id = $2)",
                )
                .bind(resource_type)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
            Outcome::Updated | Outcome::Deleted => {
                let previous = sqlx::query(
                    "SELECT version, last_updated, last_updated_ms, deleted, content FROM resource_versions \
                     WHERE resource_type = $1 AND id = $2 AND version = $3",
                )
                .bind(resource_type)
                .bind(id)
                .bind(version - 1)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::Contention)?;
                let content: Option<String> = previous.try_get("content")?;
                let restored = sqlx::query(
                    "UPDATE resources SET version = $4, last_updated = $5, last_updated_ms = $6, deleted = $7, content = $8 \
                     WHERE resource_type = $1 AND id = $2 AND version = $3",
                )
                .bind(resource_type)
                .bind(id)
                .bind(version)
                .bind(version - 1)
                .bind(previous.try_get::<String, _>("last_updated")?)
                .bind(previous.try_get::<i64, _>("last_updated_ms")?)
                .bind(previous.try_get::<i64, _>("deleted")?)
                .bind(content.as_deref())
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if restored == 0 {
                    tracing::warn!(
                        resource = %format!("{resource_type}/{id}"),
                        version,
                        "an aborted transaction's update was written over since; the later version stays"
                    );
                    return Ok(());
                }
                for table in ["resource_versions", "stream_entries", "outbox"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE resource_type = $1 AND id = $2 AND version = $3"
                    ))
                    .bind(resource_type)
                    .bind(id)
                    .bind(version)
                    .execute(&mut **tx)
                    .await?;
                }
                let def = self.def(resource_type)?;
                sqlx::query(&by_resource("search_index", "resource_id"))
                    .bind(resource_type)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                if def.keys.is_some() {
                    pairs::delete_keys(tx, resource_type, id).await?;
                }
                if let Some(content) = content.and_then(|c| serde_json::from_str::<Value>(&c).ok())
                {
                    insert_index_rows(tx, def, id, &index::rows(def, &content)).await?;
                    if let Some(keys) = def.keys {
                        pairs::insert_keys(
                            tx,
                            resource_type,
                            id,
                            version - 1,
                            (keys.extract)(&content),
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Claim transaction `id`'s part at this service inside the part's own
    /// database transaction: refused when the transaction was already
    /// aborted here. On PostgreSQL an abort arriving meanwhile waits for
    /// this transaction, then purges what it wrote.
    pub(crate) async fn claim_part(
        &self,
        tx: &mut Tx,
        id: &str,
        key: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO transaction_parts (transaction_id, state, idempotency_key, created_ms) \
             VALUES ($1, 'tentative', $2, $3) ON CONFLICT (transaction_id) DO NOTHING",
        )
        .bind(id)
        .bind(key)
        .bind(date::now().1)
        .execute(&mut **tx)
        .await?;
        let lock = match self.inner.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let state: String = sqlx::query(&format!(
            "SELECT state FROM transaction_parts WHERE transaction_id = $1{lock}"
        ))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("state")?;
        match TxState::parse(&state)? {
            TxState::Open => Ok(()),
            decided => Err(corridor_fhir::Issue::new(
                "conflict",
                format!(
                    "transaction {id} was already {} here; its parts cannot be written any more; send the Bundle again",
                    decided.as_str()
                ),
            )
            .at("Bundle")
            .into()),
        }
    }

    /// Record what the part of transaction `id` wrote, in its transaction.
    pub(crate) async fn record_part(
        &self,
        tx: &mut Tx,
        id: &str,
        writes: &[Write],
    ) -> Result<(), StoreError> {
        let written = serde_json::to_string(writes).map_err(|_| StoreError::Contention)?;
        sqlx::query("UPDATE transaction_parts SET written = $2 WHERE transaction_id = $1")
            .bind(id)
            .bind(written)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
