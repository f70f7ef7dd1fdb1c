//! Streams: ordered logs of resources under a key, such as the messages of
//! one Encounter's consult channel.
//!
//! Appending creates the resource and gives it the stream's next sequence
//! number in the same transaction, so a stream has one total order with no
//! gaps and nothing is sequenced that was not stored. Readers ask for what
//! follows the last sequence they saw, and [`Store::watch`] tells them when
//! to ask again: appends made by this process at once, and, on PostgreSQL,
//! appends made by any other process through `LISTEN`/`NOTIFY`.

use std::sync::Arc;
use std::time::Duration;

use corridor_fhir::Validated;
use sqlx::Row;
use tokio::sync::broadcast;

use crate::{
    Backend, Outcome, Store, StoreError, Stored, Tx, lock_key, request_hash, retrying,
    stored_from_row,
};

/// One resource of a stream, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub seq: i64,
    pub stored: Stored,
}

/// How many stream names a slow watcher may fall behind before it is told
/// it lagged (and should re-read everything it follows).
pub(crate) const WATCH_CAPACITY: usize = 4096;

impl Store {
    /// Create `resource` and append it to `stream`. A retry with the same
    /// idempotency key returns the first append and its sequence number.
    /// `request` is what the client sent, as the caller renders it: a retry
    /// must match it, whereas the stored resource may hold values the server
    /// made (such as the time it was sent), which differ between attempts.
    pub async fn append(
        &self,
        stream: &str,
        resource: &Validated,
        idempotency_key: Option<&str>,
        request: &str,
    ) -> Result<(crate::WriteResult, i64), StoreError> {
        let def = self.def(&resource.resource_type)?;
        let hash = request_hash(&["append", stream, request]);
        let result = retrying(|| async {
            let (_gate, mut tx) = self.begin().await?;
            if let Some(replay) = self.claim_key(&mut tx, idempotency_key, &hash).await? {
                let seq = seq_of(&mut tx, stream, &replay.stored).await?;
                tx.commit().await?;
                return Ok((replay, seq));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let stored = self
                .write_version(&mut tx, def, &id, None, Some(&resource.object), "create")
                .await?;
            let seq = self.append_entry(&mut tx, stream, &stored).await?;
            let result = self
                .finish(tx, idempotency_key, stored, Outcome::Created)
                .await?;
            Ok((result, seq))
        })
        .await?;
        self.announced(stream);
        Ok(result)
    }

    /// Give `stored` the next sequence number of `stream`, inside the write's
    /// transaction. On PostgreSQL a per-stream advisory lock makes appends
    /// to one stream commit in sequence order (so a reader never sees seq
    /// N+1 before N), and NOTIFY tells other processes on commit.
    pub(crate) async fn append_entry(
        &self,
        tx: &mut Tx,
        stream: &str,
        stored: &Stored,
    ) -> Result<i64, StoreError> {
        if self.inner.backend == Backend::Postgres {
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(lock_key(&format!("stream:{stream}")))
                .execute(&mut **tx)
                .await?;
        }
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM stream_entries WHERE stream = $1",
        )
        .bind(stream)
        .fetch_one(&mut **tx)
        .await?
        .try_get("next")?;
        sqlx::query(
            "INSERT INTO stream_entries (stream, seq, resource_type, id, version) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(stream)
        .bind(seq)
        .bind(&stored.resource_type)
        .bind(&stored.id)
        .bind(stored.version)
        .execute(&mut **tx)
        .await?;
        if let Some(channel) = &self.inner.notify_channel {
            // Delivered to every listener when, and only if, this commits.
            sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS n")
                .bind(channel)
                .bind(stream)
                .execute(&mut **tx)
                .await?;
        }
        Ok(seq)
    }

    /// Append `stored` to its type's announce stream, if it has one. Called
    /// as the last step before commit, so that the stream lock is held for
    /// as short a time as possible.
    /// A version already announced (a delete of a deleted resource writes
    /// nothing new) is not announced again.
    pub(crate) async fn announce_in(&self, tx: &mut Tx, stored: &Stored) -> Result<(), StoreError> {
        let Some(stream) = self.def(&stored.resource_type)?.announce else {
            return Ok(());
        };
        let announced = sqlx::query(
            "SELECT 1 AS found FROM stream_entries WHERE resource_type = $1 AND id = $2 AND version = $3 AND stream = $4",
        )
        .bind(&stored.resource_type)
        .bind(&stored.id)
        .bind(stored.version)
        .bind(stream)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
        if !announced {
            self.append_entry(tx, stream, stored).await?;
        }
        Ok(())
    }

    /// Tell readers in this process that `stream` grew (after the commit).
    pub(crate) fn announced(&self, stream: &str) {
        // No receiver is fine.
        let _ = self.inner.watch.send(Arc::from(stream));
    }

    /// The last sequence of `stream` (0 when it is empty): where a follower
    /// that wants only what comes next starts.
    pub async fn stream_last(&self, stream: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS last FROM stream_entries WHERE stream = $1",
        )
        .bind(stream)
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(row.try_get::<i64, _>("last")?)
    }

    /// Up to `limit` entries of `stream` after sequence `after`, in order,
    /// each with the version it was appended with.
    pub async fn stream_after(
        &self,
        stream: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, r.resource_type, r.id, r.version, r.last_updated, r.deleted, r.content \
             FROM stream_entries e JOIN resource_versions r ON r.resource_type = e.resource_type \
             AND r.id = e.id AND r.version = COALESCE(e.version, 1) \
             WHERE e.stream = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
        )
        .bind(stream)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StreamEntry {
                    seq: row.try_get("seq")?,
                    stored: stored_from_row(row)?,
                })
            })
            .collect()
    }

    /// Names of streams that may have new entries, as appends happen. A
    /// receiver that lags gets `RecvError::Lagged` and should re-read.
    pub fn watch(&self) -> broadcast::Receiver<Arc<str>> {
        self.inner.watch.subscribe()
    }
}

async fn seq_of(tx: &mut Tx, stream: &str, stored: &Stored) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT seq FROM stream_entries WHERE stream = $1 AND resource_type = $2 AND id = $3",
    )
    .bind(stream)
    .bind(&stored.resource_type)
    .bind(&stored.id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::IdempotencyKeyReused)?
    .try_get("seq")?)
}

/// Forward PostgreSQL notifications on `channel` to `watch` until aborted.
/// When the connection drops, every stream is reported (so that readers
/// re-read what they may have missed) and the listener reconnects.
pub(crate) async fn listen(url: String, channel: String, watch: broadcast::Sender<Arc<str>>) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(&channel).await {
                Ok(()) => loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let _ = watch.send(Arc::from(notification.payload()));
                        }
                        Ok(None) => {
                            tracing::warn!("stream listener lost its connection; reconnecting");
                            let _ = watch.send(Arc::from(ALL_STREAMS));
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "stream listener failed");
                            break;
                        }
                    }
                },
                Err(err) => tracing::warn!(error = %err, "LISTEN failed"),
            },
            Err(err) => tracing::warn!(error = %err, "stream listener cannot connect"),
        }
        let _ = watch.send(Arc::from(ALL_STREAMS));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sent on the watch channel when any stream may have changed unseen.
pub const ALL_STREAMS: &str = "*";
