//! The versioned FHIR resource store every Corridor service keeps its data in.
//!
//! One store is one service's own database: SQLite (the embedded default) or
//! PostgreSQL (production), chosen by URL, with migrations for each run at
//! start-up. Every write runs in one transaction that commits or rolls back
//! together: the current version, its history row, its search-index rows, its
//! outbox event and the idempotency key that made it.
//!
//! Guarantees:
//! - every write makes a new version (`meta.versionId`, `meta.lastUpdated`);
//!   history is kept and a delete writes a tombstone version;
//! - an update is a compare-and-swap on the version, so no write is silently
//!   overwritten, and `If-Match` refuses stale writes;
//! - conditional create (`If-None-Exist`) is serialized per resource type, so
//!   racing clients create exactly one resource;
//! - a write retried with the same idempotency key replays the first result.

use std::future::Future;
use std::sync::Arc;

use corridor_fhir::{Issue, Validated};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

mod bundle;
pub mod clients;
pub mod compartment;
mod date;
pub mod deliveries;
pub mod distributed;
mod error;
pub mod pairs;
pub mod search;
mod stream;
mod text;
mod transaction;
pub mod witness;

pub use bundle::omit_empty_entry;
pub use error::StoreError;

/// The current time as a FHIR instant in UTC with milliseconds, the form of
/// `meta.lastUpdated`.
pub fn now_instant() -> String {
    date::now().0
}

/// Unix milliseconds as a FHIR instant (UTC, millisecond precision).
pub fn instant_of_millis(ms: i64) -> String {
    date::instant_of_millis(ms)
}
pub use search::access::{Access, Condition};
pub use search::query::{DEFAULT_COUNT, MAX_COUNT};
pub use search::{Keys, ParamKind, ResourceDef, SearchParam};
use search::{index, query, sql};
pub use stream::{ALL_STREAMS, StreamEntry};
pub use transaction::{TxRequest, TxResult};

/// Attempts at a write that lost a race it can safely repeat.
const WRITE_ATTEMPTS: usize = 5;
/// Idempotency keys are 1 to this many visible ASCII characters: a
/// client's key (at most 255) qualified by its client id (at most 64).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 320;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, or None for any other scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Where a store keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`; a
    /// secret, as it may carry a password.
    pub url: SecretString,
    /// PostgreSQL schema holding this service's tables, so that services can
    /// share one database without sharing tables. Ignored for SQLite.
    pub schema: String,
    pub max_connections: u32,
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    /// FHIR instant, e.g. "2026-11-23T15:04:05.123Z".
    pub last_updated: String,
    pub deleted: bool,
    /// The resource JSON with id and meta set; empty for a tombstone.
    pub json: String,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Deleted,
    /// A conditional create found one existing match and created nothing.
    Matched,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Matched => "matched",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Self::Created),
            "updated" => Some(Self::Updated),
            "deleted" => Some(Self::Deleted),
            "matched" => Some(Self::Matched),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WriteResult {
    pub stored: Stored,
    pub outcome: Outcome,
    /// True when an idempotency key replayed an earlier write's result.
    pub replayed: bool,
}

/// A page of a searchset or history Bundle.
#[derive(Debug, Clone)]
pub struct Page {
    pub bundle: Value,
    pub total: i64,
    pub next_token: Option<String>,
    /// References (`Type/id`) that `_include` asks to add to the page, in
    /// the order the matches make them, without duplicates.
    pub includes: Vec<String>,
}

/// How a store's connection pool is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, idle or in use.
    pub size: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The versioned resource store of one service.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    defs: &'static [ResourceDef],
    /// SQLite allows one writer at a time; taking this gate before a write
    /// transaction makes writers queue here instead of failing with BUSY,
    /// and makes read-then-write sequences (conditional create) atomic.
    write_gate: Option<Mutex<()>>,
    /// PostgreSQL `NOTIFY` channel announcing stream appends (see stream.rs).
    notify_channel: Option<String>,
    watch: tokio::sync::broadcast::Sender<Arc<str>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

type Tx = Transaction<'static, Any>;

// === impl Store ===

impl Store {
    /// Connect, prepare the schema and run migrations.
    pub async fn connect(
        config: &StoreConfig,
        defs: &'static [ResourceDef],
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let config_url = config.url.expose_secret();
        let backend = Backend::of_url(config_url).ok_or_else(|| {
            StoreError::Invalid(Issue::new(
                "invalid",
                "database URL must start with sqlite: or postgres://",
            ))
        })?;
        let setup = match backend {
            Backend::Sqlite => {
                prepare_sqlite_dir(config_url)?;
                // FULL: a committed write survives power loss, not only a crash.
                // A 16 MiB page cache per connection (the default is 2 MiB)
                // keeps a registry's index pages in memory.
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384".to_owned()
            }
            Backend::Postgres => {
                let schema = valid_schema(&config.schema)?;
                let search_path = format!("SET search_path TO \"{schema}\"");
                migrate_postgres(config_url, schema, &search_path).await?;
                search_path
            }
        };
        let url = match backend {
            Backend::Sqlite if !config_url.contains("mode=") => {
                let sep = if config_url.contains('?') { '&' } else { '?' };
                format!("{config_url}{sep}mode=rwc")
            }
            _ => config_url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .after_connect(move |conn, _meta| {
                let setup = setup.clone();
                Box::pin(async move {
                    conn.execute(setup.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        }
        let write_gate = (backend == Backend::Sqlite).then(|| Mutex::new(()));
        let (watch, _) = tokio::sync::broadcast::channel(stream::WATCH_CAPACITY);
        let notify_channel =
            (backend == Backend::Postgres).then(|| format!("corridor_streams_{}", config.schema));
        let listener = notify_channel.clone().map(|channel| {
            tokio::spawn(stream::listen(
                config_url.to_owned(),
                channel,
                watch.clone(),
            ))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                backend,
                defs,
                write_gate,
                notify_channel,
                watch,
                listener,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The resource types this store serves.
    pub fn resource_types(&self) -> impl Iterator<Item = &'static str> {
        self.inner.defs.iter().map(|d| d.resource_type)
    }

    /// Check the database answers; used by health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    /// The connection pool's use now, for metrics.
    pub fn pool_stats(&self) -> PoolStats {
        let pool = &self.inner.pool;
        let size = pool.size();
        PoolStats {
            size,
            idle: u32::try_from(pool.num_idle()).unwrap_or(size).min(size),
            max: pool.options().get_max_connections(),
        }
    }

    /// Close the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        if let Some(listener) = &self.inner.listener {
            listener.abort();
        }
        self.inner.pool.close().await;
    }

    fn def(&self, resource_type: &str) -> Result<&'static ResourceDef, StoreError> {
        self.inner
            .defs
            .iter()
            .find(|d| d.resource_type == resource_type)
            .ok_or_else(|| {
                StoreError::Invalid(
                Issue::new(
                    "not-supported",
                    format!(
                        "resource type '{resource_type}' is not served here; expected one of: {}",
                        self.resource_types().collect::<Vec<_>>().join(", ")
                    ),
                )
                .at("resourceType"),
            )
            })
    }

    async fn begin(&self) -> Result<(Option<MutexGuard<'_, ()>>, Tx), StoreError> {
        let gate = match &self.inner.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let tx = self.inner.pool.begin().await?;
        Ok((gate, tx))
    }

    /// The current version, locked for the rest of a write transaction on
    /// PostgreSQL so that concurrent writers to one resource queue instead
    /// of failing their compare-and-swap. (SQLite writers are already
    /// serialized by the write gate.)
    async fn current_for_write(
        &self,
        tx: &mut Tx,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        match self.inner.backend {
            Backend::Postgres => {
                fetch_current(tx, &format!("{CURRENT_SQL} FOR UPDATE"), resource_type, id).await
            }
            Backend::Sqlite => current(tx, resource_type, id).await,
        }
    }

    // === writes ===

    /// Create a resource with a server-assigned id. With `if_none_exist` (a
    /// FHIR query string), one existing match is returned instead, and two
    /// or more refuse the create.
    pub async fn create(
        &self,
        resource: &Validated,
        if_none_exist: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<WriteResult, StoreError> {
        let def = self.def(&resource.resource_type)?;
        let condition = match if_none_exist.filter(|q| !q.trim().is_empty()) {
            Some(q) => Some(parse_query_string(q)?),
            None => None,
        };
        if let Some(params) = &condition {
            // Refuse a bad condition before anything is written.
            query::parse(def, params, None)
                .map_err(|issue| prefix_issue(issue, "If-None-Exist"))?;
        }
        let hash = request_hash(&[
            "create",
            def.resource_type,
            if_none_exist.unwrap_or_default(),
            &body(&resource.object),
        ]);
        retrying(|| self.create_once(def, resource, condition.as_deref(), idempotency_key, &hash))
            .await
    }

    async fn create_once(
        &self,
        def: &'static ResourceDef,
        resource: &Validated,
        condition: Option<&[(String, String)]>,
        key: Option<&str>,
        hash: &str,
    ) -> Result<WriteResult, StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        if let Some(replay) = self.claim_key(&mut tx, key, hash).await? {
            tx.commit().await?;
            return Ok(replay);
        }
        if let Some(params) = condition
            && let Some(stored) = self.find_match(&mut tx, def, params).await?
        {
            return self.finish(tx, key, stored, Outcome::Matched).await;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let stored = self
            .write_version(&mut tx, def, &id, None, Some(&resource.object), "create")
            .await?;
        self.finish(tx, key, stored, Outcome::Created).await
    }

    /// The one resource a conditional create's query matches, or None. Two
    /// or more matches refuse the create. On PostgreSQL the check holds a
    /// per-type advisory lock until the transaction ends, so that racing
    /// conditional creates of one type run one after the other.
    async fn find_match(
        &self,
        tx: &mut Tx,
        def: &'static ResourceDef,
        params: &[(String, String)],
    ) -> Result<Option<Stored>, StoreError> {
        if self.inner.backend == Backend::Postgres {
            let lock = lock_key(&format!("conditional-create:{}", def.resource_type));
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(lock)
                .execute(&mut **tx)
                .await?;
        }
        let q = query::parse(def, params, None)
            .map_err(|issue| prefix_issue(issue, "If-None-Exist"))?;
        let built = sql::build(def.resource_type, &q, None);
        let sql = format!(
            "SELECT r.id FROM resources r WHERE {} ORDER BY r.id LIMIT 2",
            built.where_sql
        );
        let ids: Vec<String> = bind_all(sqlx::query(&sql), &built.args[..built.where_args])
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some(
                current(tx, def.resource_type, id)
                    .await?
                    .ok_or(StoreError::Contention)?,
            )),
            _ => Err(StoreError::MultipleMatches {
                count: count_where(tx, &built).await?,
            }),
        }
    }

    /// Replace resource `id` with a new version. `if_match` is the version
    /// the client last saw (`3` or `W/"3"`); when given and stale, the
    /// update is refused.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        resource: &Validated,
        if_match: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<WriteResult, StoreError> {
        let request = body(&resource.object);
        self.update_as(
            resource_type,
            id,
            resource,
            if_match,
            idempotency_key,
            &request,
        )
        .await
    }

    /// [`Store::update`] of a resource the server built from the client's
    /// `request` (which may differ between retries only in server-made
    /// values such as times): the idempotency key is bound to `request`.
    pub async fn update_as(
        &self,
        resource_type: &str,
        id: &str,
        resource: &Validated,
        if_match: Option<&str>,
        idempotency_key: Option<&str>,
        request: &str,
    ) -> Result<WriteResult, StoreError> {
        let def = self.def(resource_type)?;
        check_update(def, id, resource)?;
        let expected = parse_if_match(if_match)?;
        let hash = request_hash(&[
            "update",
            resource_type,
            id,
            if_match.unwrap_or_default(),
            request,
        ]);
        let hash = hash.as_str();
        retrying(|| async move {
            let (_gate, mut tx) = self.begin().await?;
            if let Some(replay) = self.claim_key(&mut tx, idempotency_key, hash).await? {
                tx.commit().await?;
                return Ok(replay);
            }
            let result = self
                .write_existing(&mut tx, resource_type, id, Some(&resource.object), expected)
                .await?;
            self.finish(tx, idempotency_key, result.stored, result.outcome)
                .await
        })
        .await
    }

    /// What an earlier [`Store::update_as`] with this idempotency key and
    /// these arguments recorded, if it completed: a caller that checks
    /// preconditions against the current state (which the first attempt
    /// changed) asks this first, so that a retry replays instead of failing.
    pub async fn recorded_update(
        &self,
        resource_type: &str,
        id: &str,
        if_match: Option<&str>,
        idempotency_key: &str,
        request: &str,
    ) -> Result<Option<WriteResult>, StoreError> {
        let hash = request_hash(&[
            "update",
            resource_type,
            id,
            if_match.unwrap_or_default(),
            request,
        ]);
        let mut conn = self.inner.pool.acquire().await?;
        let Some(row) = sqlx::query(
            "SELECT request_hash, resource_type, id, version, outcome FROM idempotency_keys WHERE idempotency_key = $1",
        )
        .bind(idempotency_key)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        if row.try_get::<String, _>("request_hash")? != hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let (Some(resource_type), Some(id), Some(version), Some(outcome)) = (
            row.try_get::<Option<String>, _>("resource_type")?,
            row.try_get::<Option<String>, _>("id")?,
            row.try_get::<Option<i64>, _>("version")?,
            row.try_get::<Option<String>, _>("outcome")?
                .as_deref()
                .and_then(Outcome::parse),
        ) else {
            return Ok(None);
        };
        Ok(version_of(&mut conn, &resource_type, &id, version)
            .await?
            .map(|stored| WriteResult {
                stored,
                outcome,
                replayed: true,
            }))
    }

    /// Delete resource `id` by writing a tombstone version. Deleting a
    /// deleted resource returns its tombstone and writes nothing.
    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        if_match: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<WriteResult, StoreError> {
        self.def(resource_type)?;
        valid_id(id)?;
        let expected = parse_if_match(if_match)?;
        let hash = request_hash(&["delete", resource_type, id, if_match.unwrap_or_default()]);
        let hash = hash.as_str();
        retrying(|| async move {
            let (_gate, mut tx) = self.begin().await?;
            if let Some(replay) = self.claim_key(&mut tx, idempotency_key, hash).await? {
                tx.commit().await?;
                return Ok(replay);
            }
            let result = self
                .write_existing(&mut tx, resource_type, id, None, expected)
                .await?;
            self.finish(tx, idempotency_key, result.stored, result.outcome)
                .await
        })
        .await
    }

    /// Write a new version of the existing `id` inside an open write
    /// transaction, if it is at `expected`: `object`, or a tombstone when
    /// None. Deleting a deleted resource returns its tombstone and writes
    /// nothing.
    async fn write_existing(
        &self,
        tx: &mut Tx,
        resource_type: &str,
        id: &str,
        object: Option<&Map<String, Value>>,
        expected: Option<i64>,
    ) -> Result<WriteResult, StoreError> {
        let def = self.def(resource_type)?;
        let current = self
            .current_for_write(tx, resource_type, id)
            .await?
            .ok_or_else(|| not_found(resource_type, id))?;
        if object.is_none() && current.deleted {
            return Ok(written(current, Outcome::Deleted));
        }
        check_expected(&current, expected)?;
        let (method, outcome) = match object {
            Some(_) => ("update", Outcome::Updated),
            None => ("delete", Outcome::Deleted),
        };
        let stored = self
            .write_version(tx, def, id, Some(current.version), object, method)
            .await?;
        Ok(written(stored, outcome))
    }

    /// Write version `previous + 1` (or 1), its history row, index rows and
    /// outbox event. The current-row update is a compare-and-swap on
    /// `previous`, so a concurrent writer makes this fail with Contention
    /// rather than be overwritten.
    /// Version 1 of each of `created` (type, id, resource), written with a
    /// few multi-row statements per table rather than several statements
    /// per resource: a transaction's creates, which may be thousands.
    async fn write_created(
        &self,
        tx: &mut Tx,
        created: &[(&'static ResourceDef, String, Map<String, Value>)],
    ) -> Result<Vec<Stored>, StoreError> {
        let (last_updated, last_updated_ms) = date::now();
        let mut stored = Vec::with_capacity(created.len());
        let mut index_rows = Vec::with_capacity(created.len());
        for (def, id, object) in created {
            let content = with_meta(object, id, 1, &last_updated);
            index_rows.push(index::rows(def, &content));
            if let Some(keys) = def.keys {
                pairs::insert_keys(tx, def.resource_type, id, 1, (keys.extract)(&content)).await?;
            }
            stored.push(Stored {
                resource_type: def.resource_type.to_owned(),
                id: id.clone(),
                version: 1,
                last_updated: last_updated.clone(),
                deleted: false,
                json: content.to_string(),
            });
        }
        // Six values a row; 100 rows stay well below every bind limit.
        for chunk in stored.chunks(100) {
            let values = |per_row: usize| {
                (0..chunk.len())
                    .map(|n| {
                        let params: Vec<String> = (1..=per_row)
                            .map(|k| format!("${}", n * per_row + k))
                            .collect();
                        format!("({})", params.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let resources_sql = format!(
                "INSERT INTO resources (resource_type, id, version, last_updated, last_updated_ms, content, deleted) VALUES {}",
                values(6).replace(')', ", 0)")
            );
            let versions_sql = format!(
                "INSERT INTO resource_versions (resource_type, id, version, last_updated, last_updated_ms, content, deleted, method) VALUES {}",
                values(6).replace(')', ", 0, 'create')")
            );
            let outbox_sql = format!(
                "INSERT INTO outbox (resource_type, id, version, recorded_at, operation) VALUES {}",
                values(4).replace(')', ", 'create')")
            );
            let mut resources = sqlx::query(&resources_sql);
            let mut versions = sqlx::query(&versions_sql);
            let mut outbox = sqlx::query(&outbox_sql);
            for row in chunk {
                resources = resources
                    .bind(&row.resource_type)
                    .bind(&row.id)
                    .bind(1_i64)
                    .bind(&last_updated)
                    .bind(last_updated_ms)
                    .bind(&row.json);
                versions = versions
                    .bind(&row.resource_type)
                    .bind(&row.id)
                    .bind(1_i64)
                    .bind(&last_updated)
                    .bind(last_updated_ms)
                    .bind(&row.json);
                outbox = outbox
                    .bind(&row.resource_type)
                    .bind(&row.id)
                    .bind(1_i64)
                    .bind(&last_updated);
            }
            resources.execute(&mut **tx).await?;
            versions.execute(&mut **tx).await?;
            outbox.execute(&mut **tx).await?;
        }
        let rows: Vec<(&str, &str, &index::IndexRow)> = stored
            .iter()
            .zip(&index_rows)
            .flat_map(|(s, rows)| {
                rows.iter()
                    .map(move |row| (s.resource_type.as_str(), s.id.as_str(), row))
            })
            .collect();
        insert_index_rows_of(tx, &rows).await?;
        Ok(stored)
    }

    async fn write_version(
        &self,
        tx: &mut Tx,
        def: &ResourceDef,
        id: &str,
        previous: Option<i64>,
        object: Option<&Map<String, Value>>,
        method: &str,
    ) -> Result<Stored, StoreError> {
        let version = previous.unwrap_or(0) + 1;
        let (last_updated, last_updated_ms) = date::now();
        let content = object.map(|o| with_meta(o, id, version, &last_updated));
        let json = content.as_ref().map(Value::to_string);
        let deleted = json.is_none();
        let deleted_flag = i64::from(deleted);
        let affected = match previous {
            None => sqlx::query(
                "INSERT INTO resources (resource_type, id, version, last_updated, last_updated_ms, deleted, content) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(def.resource_type)
            .bind(id)
            .bind(version)
            .bind(&last_updated)
            .bind(last_updated_ms)
            .bind(deleted_flag)
            .bind(json.as_deref())
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            Some(previous) => sqlx::query(
                "UPDATE resources SET version = $3, last_updated = $4, last_updated_ms = $5, deleted = $6, content = $7 \
                 WHERE resource_type = $1 AND id = $2 AND version = $8",
            )
            .bind(def.resource_type)
            .bind(id)
            .bind(version)
            .bind(&last_updated)
            .bind(last_updated_ms)
            .bind(deleted_flag)
            .bind(json.as_deref())
            .bind(previous)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        if affected != 1 {
            return Err(StoreError::Contention);
        }
        sqlx::query(
            "INSERT INTO resource_versions (resource_type, id, version, last_updated, last_updated_ms, deleted, method, content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(def.resource_type)
        .bind(id)
        .bind(version)
        .bind(&last_updated)
        .bind(last_updated_ms)
        .bind(deleted_flag)
        .bind(method)
        .bind(json.as_deref())
        .execute(&mut **tx)
        .await?;
        if previous.is_some() {
            // A new resource has no index rows yet.
            sqlx::query("DELETE FROM search_index WHERE resource_type = $1 AND resource_id = $2")
                .bind(def.resource_type)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            if def.keys.is_some() {
                pairs::delete_keys(tx, def.resource_type, id).await?;
            }
        }
        if let Some(content) = &content {
            insert_index_rows(tx, def, id, &index::rows(def, content)).await?;
            if let Some(keys) = def.keys {
                pairs::insert_keys(tx, def.resource_type, id, version, (keys.extract)(content))
                    .await?;
            }
        }
        sqlx::query("INSERT INTO outbox (resource_type, id, version, operation, recorded_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(def.resource_type)
            .bind(id)
            .bind(version)
            .bind(method)
            .bind(&last_updated)
            .execute(&mut **tx)
            .await?;
        let stored = Stored {
            resource_type: def.resource_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            deleted,
            json: json.unwrap_or_default(),
        };
        Ok(stored)
    }

    /// Claim `key` for this write inside its transaction. A concurrent write
    /// with the same key waits on the claim (PostgreSQL) or the write gate
    /// (SQLite); once the first commits, the key's recorded result is
    /// replayed. A key reused for a different request is refused.
    async fn claim_key(
        &self,
        tx: &mut Tx,
        key: Option<&str>,
        hash: &str,
    ) -> Result<Option<WriteResult>, StoreError> {
        let Some(row) = claim(tx, key, hash).await? else {
            return Ok(None);
        };
        let (Some(resource_type), Some(id), Some(version), Some(outcome)) = (
            row.try_get::<Option<String>, _>("resource_type")?,
            row.try_get::<Option<String>, _>("id")?,
            row.try_get::<Option<i64>, _>("version")?,
            row.try_get::<Option<String>, _>("outcome")?
                .as_deref()
                .and_then(Outcome::parse),
        ) else {
            // Claimed but never completed: cannot happen, as claim and result
            // commit together; treat as a race and let the caller retry.
            return Err(StoreError::Contention);
        };
        Ok(Some(
            replayed(tx, &resource_type, &id, version, outcome).await?,
        ))
    }

    /// Record the write's result under its idempotency key and commit.
    async fn finish(
        &self,
        mut tx: Tx,
        key: Option<&str>,
        stored: Stored,
        outcome: Outcome,
    ) -> Result<WriteResult, StoreError> {
        self.record_key(&mut tx, key, &stored, outcome).await?;
        if outcome != Outcome::Matched {
            // The witness first: announcing takes the stream's lock, held
            // until commit, and the witness may call another service.
            self.witness_in(&mut tx, std::slice::from_ref(&stored))
                .await?;
            self.announce_in(&mut tx, &stored).await?;
        }
        tx.commit().await?;
        if let Ok(def) = self.def(&stored.resource_type)
            && let Some(stream) = def.announce
        {
            self.announced(stream);
        }
        Ok(written(stored, outcome))
    }

    async fn record_key(
        &self,
        tx: &mut Tx,
        key: Option<&str>,
        stored: &Stored,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let Some(key) = key else { return Ok(()) };
        sqlx::query(
            "UPDATE idempotency_keys SET resource_type = $2, id = $3, version = $4, outcome = $5 WHERE idempotency_key = $1",
        )
        .bind(key)
        .bind(&stored.resource_type)
        .bind(&stored.id)
        .bind(stored.version)
        .bind(outcome.as_str())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    // === reads ===

    /// The current version; a deleted resource is an error naming the
    /// tombstone's version.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<Stored, StoreError> {
        let def = self.def(resource_type)?;
        let mut conn = self.inner.pool.acquire().await?;
        let stored = current(&mut conn, def.resource_type, id)
            .await?
            .ok_or_else(|| not_found(resource_type, id))?;
        if stored.deleted {
            return Err(StoreError::Deleted {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version: stored.version,
            });
        }
        Ok(stored)
    }

    /// One version of a resource.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<Stored, StoreError> {
        let def = self.def(resource_type)?;
        let missing = || StoreError::VersionNotFound {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version: version.to_owned(),
        };
        let number: i64 = version.parse().map_err(|_| missing())?;
        let mut conn = self.inner.pool.acquire().await?;
        match version_of(&mut conn, def.resource_type, id, number).await? {
            Some(stored) if stored.deleted => Err(StoreError::Deleted {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version: stored.version,
            }),
            Some(stored) => Ok(stored),
            None => match current(&mut conn, def.resource_type, id).await? {
                Some(_) => Err(missing()),
                None => Err(not_found(resource_type, id)),
            },
        }
    }

    /// The versions of one resource, newest first, as a history Bundle.
    pub async fn history(
        &self,
        resource_type: &str,
        id: &str,
        count: i64,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let def = self.def(resource_type)?;
        let count = if count <= 0 {
            DEFAULT_COUNT
        } else {
            count.min(MAX_COUNT)
        };
        let fingerprint = format!("history:{resource_type}/{id}");
        let offset = match page_token.filter(|t| !t.is_empty()) {
            Some(token) => query::decode_token(token, &fingerprint)?,
            None => 0,
        };
        let mut conn = self.inner.pool.acquire().await?;
        let latest = current(&mut conn, def.resource_type, id)
            .await?
            .ok_or_else(|| not_found(resource_type, id))?;
        let rows = sqlx::query(
            "SELECT resource_type, id, version, last_updated, deleted, content, method FROM resource_versions \
             WHERE resource_type = $1 AND id = $2 ORDER BY version DESC LIMIT $3 OFFSET $4",
        )
        .bind(def.resource_type)
        .bind(id)
        .bind(count)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
        let versions = rows
            .iter()
            .map(|row| Ok((stored_from_row(row)?, row.try_get::<String, _>("method")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total = latest.version;
        let next =
            (offset + count < total).then(|| query::encode_token(offset + count, &fingerprint));
        Ok(Page {
            bundle: bundle::history(resource_type, id, &versions, total, next.as_deref()),
            total,
            next_token: next,
            includes: Vec::new(),
        })
    }

    /// Search with FHIR parameters; returns a searchset Bundle.
    pub async fn search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.search_visible(resource_type, params, page_token, None)
            .await
    }

    /// [`Store::search`] over only the resources `access` lets a caller
    /// see: the total and the pages count nothing else.
    pub async fn search_visible(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        page_token: Option<&str>,
        access: Option<&Access>,
    ) -> Result<Page, StoreError> {
        let def = self.def(resource_type)?;
        let q = query::parse(def, params, page_token)?;
        let built = sql::build(def.resource_type, &q, access);
        let mut conn = self.inner.pool.acquire().await?;
        let total = count_where(&mut conn, &built).await?;
        let entries = if q.count == 0 {
            Vec::new()
        } else {
            let sql = format!(
                "SELECT r.resource_type, r.id, r.version, r.last_updated, r.deleted, r.content FROM resources r \
                 WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
                built.where_sql, built.order_sql, q.count, q.offset
            );
            bind_all(sqlx::query(&sql), &built.args)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(stored_from_row)
                .collect::<Result<Vec<_>, _>>()?
        };
        let shown = q.offset + i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let next =
            (q.count > 0 && shown < total).then(|| query::encode_token(shown, &q.fingerprint));
        let mut includes: Vec<String> = Vec::new();
        for entry in &entries {
            let Ok(content) = serde_json::from_str::<Value>(&entry.json) else {
                continue;
            };
            for include in &q.includes {
                for reference in index::references(include.param, &content) {
                    let wanted = include
                        .target
                        .as_deref()
                        .is_none_or(|t| reference.split('/').next() == Some(t));
                    if wanted && !includes.contains(&reference) {
                        includes.push(reference);
                    }
                }
            }
        }
        Ok(Page {
            includes,
            bundle: bundle::searchset(resource_type, &entries, total, &q.params, next.as_deref()),
            total,
            next_token: next,
        })
    }
}

impl Store {
    /// Whether the current version of `resource_type/id` is one `access`
    /// lets a caller see (false when there is no such resource).
    pub async fn is_visible(
        &self,
        resource_type: &str,
        id: &str,
        access: &Access,
    ) -> Result<bool, StoreError> {
        let def = self.def(resource_type)?;
        let q = query::parse(def, &[("_id".to_owned(), id.to_owned())], None)?;
        let built = sql::build(def.resource_type, &q, Some(access));
        let mut conn = self.inner.pool.acquire().await?;
        Ok(count_where(&mut conn, &built).await? > 0)
    }
}

// === helpers ===

async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(StoreError::Contention) if tries < WRITE_ATTEMPTS => {
                tracing::debug!(tries, "write lost a race; retrying");
            }
            result => return result,
        }
    }
}

/// Claim idempotency `key` for a request with `hash`: None when this
/// request now owns the key (or has none), the key's row when an earlier
/// request with the same hash completed. A different hash is refused.
async fn claim(tx: &mut Tx, key: Option<&str>, hash: &str) -> Result<Option<AnyRow>, StoreError> {
    let Some(key) = key else { return Ok(None) };
    valid_key(key)?;
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (idempotency_key, request_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(key)
    .bind(hash)
    .bind(date::now().0)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT request_hash, resource_type, id, version, outcome, results FROM idempotency_keys WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    if row.try_get::<String, _>("request_hash")? != hash {
        return Err(StoreError::IdempotencyKeyReused);
    }
    Ok(Some(row))
}

/// The recorded result of an earlier write, as its replay.
async fn replayed(
    tx: &mut Tx,
    resource_type: &str,
    id: &str,
    version: i64,
    outcome: Outcome,
) -> Result<WriteResult, StoreError> {
    let stored = version_of(tx, resource_type, id, version)
        .await?
        .ok_or(StoreError::Contention)?;
    Ok(WriteResult {
        stored,
        outcome,
        replayed: true,
    })
}

/// The result of a write made now (not replayed).
fn written(stored: Stored, outcome: Outcome) -> WriteResult {
    WriteResult {
        stored,
        outcome,
        replayed: false,
    }
}

fn not_found(resource_type: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
    }
}

/// An update's body must be of the type and carry the id being updated.
fn check_update(def: &ResourceDef, id: &str, resource: &Validated) -> Result<(), StoreError> {
    let resource_type = def.resource_type;
    if resource.resource_type != resource_type {
        return Err(Issue::new(
            "invalid",
            format!(
                "resourceType is {} but the request updates a {resource_type}",
                resource.resource_type
            ),
        )
        .at("resourceType")
        .into());
    }
    valid_id(id)?;
    if let Some(body_id) = resource.object.get("id")
        && body_id.as_str() != Some(id)
    {
        return Err(Issue::new(
            "invalid",
            format!("the resource's id {body_id} does not match the id being updated ({id})"),
        )
        .at(format!("{resource_type}.id"))
        .into());
    }
    Ok(())
}

fn check_expected(current: &Stored, expected: Option<i64>) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != current.version => Err(StoreError::VersionConflict {
            resource_type: current.resource_type.clone(),
            id: current.id.clone(),
            expected,
            current: current.version,
        }),
        _ => Ok(()),
    }
}

/// `3`, `"3"` and `W/"3"` all mean version 3.
fn parse_if_match(if_match: Option<&str>) -> Result<Option<i64>, StoreError> {
    let Some(raw) = if_match.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bare = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        Issue::new(
            "invalid",
            format!("If-Match must be a version such as 3 or W/\"3\", not '{raw}'"),
        )
        .at("If-Match")
        .into()
    })
}

/// FHIR ids: 1-64 of `A-Z a-z 0-9 - .`.
fn valid_id(id: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Issue::new(
            "invalid",
            format!("'{id}' is not a FHIR id (1-64 of A-Z, a-z, 0-9, '-', '.')"),
        )
        .at("id")
        .into())
    }
}

fn valid_key(key: &str) -> Result<(), StoreError> {
    let ok = (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Issue::new(
            "invalid",
            format!("idempotency-key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        )
        .at("idempotency-key")
        .into())
    }
}

fn valid_schema(schema: &str) -> Result<&str, StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(schema)
    } else {
        Err(Issue::new(
            "invalid",
            format!("schema '{schema}' must be lowercase letters, digits and '_'"),
        )
        .into())
    }
}

fn prepare_sqlite_dir(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
    }
    Ok(())
}

fn prefix_issue(mut issue: Issue, prefix: &str) -> StoreError {
    issue.diagnostics = format!("{prefix}: {}", issue.diagnostics);
    issue.expression = Some(match issue.expression {
        Some(e) => format!("{prefix}.{e}"),
        None => prefix.to_owned(),
    });
    StoreError::Invalid(issue)
}

/// Name/value pairs of a FHIR query string such as `identifier=x%7C1&name=al`.
pub fn parse_query_string(q: &str) -> Result<Vec<(String, String)>, StoreError> {
    let q = q.trim().trim_start_matches('?');
    let q = q.split_once('?').map_or(q, |(_, rest)| rest);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    if pairs.is_empty() {
        return Err(Issue::new(
            "invalid",
            "If-None-Exist must be a search query such as identifier=system|value",
        )
        .at("If-None-Exist")
        .into());
    }
    Ok(pairs)
}

fn body(object: &Map<String, Value>) -> String {
    serde_json::to_string(object).unwrap_or_default()
}

fn request_hash(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Create `schema` and run its migrations, holding a session advisory lock
/// of the database meanwhile: replicas (or services sharing a database)
/// that start at once take turns, so that `CREATE SCHEMA` and each
/// migration run once, and a replica that waited finds them done.
async fn migrate_postgres(url: &str, schema: &str, search_path: &str) -> Result<(), StoreError> {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    let key = lock_key("corridor:migrations");
    sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l")
        .bind(key)
        .execute(&mut conn)
        .await?;
    let migrated: Result<(), StoreError> = async {
        conn.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
            .await?;
        conn.execute(search_path).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await?;
        Ok(())
    }
    .await;
    // Closing the session releases the lock too; unlocking first frees it
    // at once for the next replica.
    let _ = sqlx::query("SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS l")
        .bind(key)
        .execute(&mut conn)
        .await;
    let _ = sqlx::Connection::close(conn).await;
    migrated
}

fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The client's resource with the server's id, versionId and lastUpdated.
/// Other meta (profile, tag, security, source) is the client's and is kept.
fn with_meta(object: &Map<String, Value>, id: &str, version: i64, last_updated: &str) -> Value {
    let mut out = Map::new();
    for (key, value) in object {
        if key == "id" || key == "meta" {
            continue;
        }
        out.insert(key.clone(), value.clone());
        if key == "resourceType" {
            out.insert("id".to_owned(), json!(id));
            let mut meta = object
                .get("meta")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            meta.insert("versionId".to_owned(), json!(version.to_string()));
            meta.insert("lastUpdated".to_owned(), json!(last_updated));
            out.insert("meta".to_owned(), Value::Object(meta));
        }
    }
    Value::Object(out)
}

/// `count` numbered parameters from `$first`, comma-separated, for an
/// `IN (...)` list.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    args: &'q [sql::Arg],
) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
    for arg in args {
        q = match arg {
            sql::Arg::Text(s) => q.bind(s.as_str()),
            sql::Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

async fn count_where(conn: &mut sqlx::AnyConnection, built: &sql::Sql) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM resources r WHERE {}",
        built.where_sql
    );
    let row = bind_all(sqlx::query(&sql), &built.args[..built.where_args])
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")?)
}

async fn insert_index_rows(
    tx: &mut Tx,
    def: &ResourceDef,
    id: &str,
    rows: &[index::IndexRow],
) -> Result<(), StoreError> {
    let owned: Vec<(&str, &str, &index::IndexRow)> = rows
        .iter()
        .map(|row| (def.resource_type, id, row))
        .collect();
    insert_index_rows_of(tx, &owned).await
}

/// Index rows of several resources, each with its type and id.
async fn insert_index_rows_of(
    tx: &mut Tx,
    rows: &[(&str, &str, &index::IndexRow)],
) -> Result<(), StoreError> {
    // Ten values per row; 200 rows stay well below every bind limit.
    // (Statements of 16 rows were slower on the bench-import transaction:
    // the round trips cost more than SQLite's binding by name.)
    for chunk in rows.chunks(200) {
        let mut sql = String::from(
            "INSERT INTO search_index (resource_type, resource_id, param, text_norm, text_exact, token_system, token_code, date_lo, date_hi, ref) VALUES ",
        );
        for n in 0..chunk.len() {
            let b = n * 10;
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10
            ));
        }
        let mut q = sqlx::query(&sql);
        for (resource_type, id, row) in chunk {
            q = q
                .bind(*resource_type)
                .bind(*id)
                .bind(row.param)
                .bind(row.text_norm.as_deref())
                .bind(row.text_exact.as_deref())
                .bind(row.token_system.as_deref())
                .bind(row.token_code.as_deref())
                .bind(row.date_lo)
                .bind(row.date_hi)
                .bind(row.reference.as_deref());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

const CURRENT_SQL: &str = "SELECT resource_type, id, version, last_updated, deleted, content FROM resources WHERE resource_type = $1 AND id = $2";

async fn current(
    conn: &mut sqlx::AnyConnection,
    resource_type: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    fetch_current(conn, CURRENT_SQL, resource_type, id).await
}

async fn fetch_current(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    resource_type: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    let row = sqlx::query(sql)
        .bind(resource_type)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored_from_row).transpose()
}

async fn version_of(
    conn: &mut sqlx::AnyConnection,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<Stored>, StoreError> {
    let row = sqlx::query(
        "SELECT resource_type, id, version, last_updated, deleted, content FROM resource_versions \
         WHERE resource_type = $1 AND id = $2 AND version = $3",
    )
    .bind(resource_type)
    .bind(id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(stored_from_row).transpose()
}

fn stored_from_row(row: &AnyRow) -> Result<Stored, StoreError> {
    Ok(Stored {
        resource_type: row.try_get("resource_type")?,
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        last_updated: row.try_get("last_updated")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        json: row
            .try_get::<Option<String>, _>("content")?
            .unwrap_or_default(),
    })
}
