//! Deliveries: messages to other nodes, kept until they are delivered.
//!
//! A relay reads a stream from its cursor ([`Store::cursor`], in the
//! `stream_cursors` table the matching reader uses too) and turns entries
//! into messages;
//! [`Store::enqueue`] writes the messages and moves the cursor in one
//! transaction, so every entry is relayed exactly once, across restarts and
//! replicas. A worker then sends what is [`Store::due`], in order per
//! `ordering_key` (a message not yet delivered holds back every later one
//! of its key), and records each attempt: [`Store::delivered`],
//! [`Store::retry_later`] or [`Store::park`]. Nothing is ever deleted: an
//! operator lists messages and puts parked ones back ([`Store::unpark`]).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Store, StoreError, lock_key};

/// A message for [`Store::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub peer: String,
    /// Unique and stable: enqueueing the same id twice keeps the first.
    pub message_id: String,
    /// Messages with one key are sent one at a time, in the order enqueued.
    pub ordering_key: String,
    pub kind: String,
    pub body: String,
}

/// The states of a delivery.
pub const PENDING: &str = "pending";
pub const PARKED: &str = "parked";
pub const DELIVERED: &str = "delivered";

/// A stored message and where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub peer: String,
    pub message_id: String,
    pub ordering_key: String,
    pub kind: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "id, peer, message_id, ordering_key, kind, body, state, attempts, last_error, created_at, next_attempt_at, delivered_at";

fn delivery(row: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.try_get("id")?,
        peer: row.try_get("peer")?,
        message_id: row.try_get("message_id")?,
        ordering_key: row.try_get("ordering_key")?,
        kind: row.try_get("kind")?,
        body: row.try_get("body")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Held by the one process that may relay and send (see
/// [`Store::try_lead`]); dropping it lets another take over.
#[derive(Debug)]
pub struct Leadership {
    // The PostgreSQL session that holds the advisory lock; closed (and the
    // lock released) when this is dropped.
    _session: Option<sqlx::AnyConnection>,
}

impl Store {
    /// Become the one process of this store that runs `role`, if no other
    /// is: on PostgreSQL a session advisory lock, held while the returned
    /// value lives; on SQLite (one process) always.
    pub async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        if self.inner.backend != Backend::Postgres {
            return Ok(Some(Leadership { _session: None }));
        }
        let mut conn = self.inner.pool.acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS held")
            .bind(lock_key(&format!("lead:{role}")))
            .fetch_one(&mut conn)
            .await?;
        let held: bool = row.try_get("held")?;
        Ok(held.then_some(Leadership {
            _session: Some(conn),
        }))
    }

    /// Write `messages` and move cursor `name` from `from` to `to`, in one
    /// transaction. Refused with [`StoreError::Contention`], writing
    /// nothing, when the cursor is no longer at `from` (another relay moved
    /// it). A message whose id is already stored is not written again.
    pub async fn enqueue(
        &self,
        name: &str,
        from: i64,
        to: i64,
        messages: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        let moved = if from == 0 {
            sqlx::query(
                "INSERT INTO stream_cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(to)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query("UPDATE stream_cursors SET seq = $2 WHERE name = $1 AND seq = $3")
                .bind(name)
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        if moved != 1 {
            return Err(StoreError::Contention);
        }
        let now = now_millis();
        for message in messages {
            sqlx::query(
                "INSERT INTO deliveries (peer, message_id, ordering_key, kind, body, state, attempts, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&message.peer)
            .bind(&message.message_id)
            .bind(&message.ordering_key)
            .bind(&message.kind)
            .bind(&message.body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` pending messages for `peer` that are due at `now` and
    /// first in line of their ordering key, oldest first.
    pub async fn due(&self, peer: &str, now: i64, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deliveries d WHERE d.peer = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.peer = d.peer AND e.ordering_key = d.ordering_key \
             AND e.id < d.id AND e.state <> 'delivered') ORDER BY d.id LIMIT $3"
        ))
        .bind(peer)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// When the next pending message for `peer` is due, if any is.
    pub async fn next_due(&self, peer: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS next FROM deliveries WHERE peer = $1 AND state = 'pending'",
        )
        .bind(peer)
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next")?)
    }

    /// Record that message `id` was delivered.
    pub async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.set_state(
            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_error = NULL, delivered_at = $2 WHERE id = $1",
            id,
            None,
            now_millis(),
        )
        .await
    }

    /// Record a failed attempt at message `id`; try again at `at`.
    pub async fn retry_later(&self, id: i64, error: &str, at: i64) -> Result<(), StoreError> {
        self.set_state(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = $3, next_attempt_at = $2 WHERE id = $1",
            id,
            Some(error),
            at,
        )
        .await
    }

    /// Give up on message `id` until an operator puts it back.
    pub async fn park(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.set_state(
            "UPDATE deliveries SET state = 'parked', attempts = attempts + 1, last_error = $3, next_attempt_at = $2 WHERE id = $1",
            id,
            Some(error),
            now_millis(),
        )
        .await
    }

    async fn set_state(
        &self,
        sql: &str,
        id: i64,
        error: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        let query = sqlx::query(sql).bind(id).bind(at);
        let query = match error {
            Some(error) => query.bind(error.to_owned()),
            None => query,
        };
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Messages in `states` (all when empty), of `peer` (every peer's when
    /// None), newest first, at most `limit`.
    pub async fn deliveries(
        &self,
        states: &[&str],
        peer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM deliveries WHERE 1 = 1");
        let mut next = 1;
        if !states.is_empty() {
            sql.push_str(&format!(
                " AND state IN ({})",
                crate::placeholders(next, states.len())
            ));
            next += states.len();
        }
        if peer.is_some() {
            sql.push_str(&format!(" AND peer = ${next}"));
            next += 1;
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
        let mut query = sqlx::query(&sql);
        for state in states {
            query = query.bind(*state);
        }
        if let Some(peer) = peer {
            query = query.bind(peer);
        }
        let rows = query.bind(limit).fetch_all(&self.inner.pool).await?;
        rows.iter().map(delivery).collect()
    }

    /// Put parked messages back, due now: those of `ids`, or with none
    /// given, every parked one (of `peer`, when given). How many.
    pub async fn unpark(&self, ids: &[i64], peer: Option<&str>) -> Result<u64, StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        let now = now_millis();
        let mut done = 0;
        if ids.is_empty() {
            let sql = match peer {
                Some(_) => {
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = $1 WHERE state = 'parked' AND peer = $2"
                }
                None => {
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = $1 WHERE state = 'parked'"
                }
            };
            let mut query = sqlx::query(sql).bind(now);
            if let Some(peer) = peer {
                query = query.bind(peer);
            }
            done += query.execute(&mut *tx).await?.rows_affected();
        } else {
            for id in ids {
                done += sqlx::query(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = $1 WHERE state = 'parked' AND id = $2",
                )
                .bind(now)
                .bind(*id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Messages not yet delivered, by peer and state (pending or parked),
    /// each count with its oldest message's `created_at`.
    pub async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let rows = sqlx::query(
            "SELECT peer, state, COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries \
             WHERE state <> 'delivered' GROUP BY peer, state",
        )
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Backlog {
                    peer: row.try_get("peer")?,
                    state: row.try_get("state")?,
                    messages: row.try_get("n")?,
                    oldest_created_at: row.try_get("oldest")?,
                })
            })
            .collect()
    }

    /// How many entries of `stream` lie beyond cursor `name`.
    pub async fn unread(&self, stream: &str, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM stream_entries WHERE stream = $1 \
             AND seq > COALESCE((SELECT seq FROM stream_cursors WHERE name = $2), 0)",
        )
        .bind(stream)
        .bind(name)
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

/// Undelivered messages of one peer in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub peer: String,
    pub state: String,
    pub messages: i64,
    /// Milliseconds since the epoch.
    pub oldest_created_at: i64,
}
