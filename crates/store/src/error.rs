//! The store's errors, and the one place where database failures are sorted
//! into what a caller can act on.

use corridor_fhir::Issue;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource_type}/{id} not found")]
    NotFound { resource_type: String, id: String },
    #[error("{resource_type}/{id} has no version {version}")]
    VersionNotFound {
        resource_type: String,
        id: String,
        version: String,
    },
    #[error("{resource_type}/{id} was deleted in version {version}")]
    Deleted {
        resource_type: String,
        id: String,
        version: i64,
    },
    #[error("{resource_type}/{id} is at version {current}, not {expected}")]
    VersionConflict {
        resource_type: String,
        id: String,
        expected: i64,
        current: i64,
    },
    #[error("conditional create matched {count} resources")]
    MultipleMatches { count: i64 },
    #[error("idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("{0}")]
    Invalid(Issue),
    /// Entry `index` (from 0) of a transaction failed with `source`.
    #[error("entry {index}: {source}")]
    Entry {
        index: usize,
        source: Box<StoreError>,
    },
    /// The write's witness (the audit trail) could not see it, so it was
    /// rolled back; see [`crate::witness`].
    #[error("{0}")]
    Unwitnessed(String),
    /// Another writer got there first; the write can be retried as it is.
    #[error("the write conflicted with a concurrent write")]
    Contention,
    /// The database cannot be reached or is overloaded right now.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<Issue> for StoreError {
    fn from(issue: Issue) -> Self {
        Self::Invalid(issue)
    }
}

impl From<sqlx::Error> for StoreError {
    /// SQLSTATEs and SQLite result codes are mapped here and nowhere else.
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match code.as_str() {
                    // unique_violation, serialization_failure, deadlock_detected
                    "23505" | "40001" | "40P01" => Self::Contention,
                    // SQLite: constraint (unique/primary key)
                    "1555" | "2067" => Self::Contention,
                    // SQLite: busy, locked
                    "5" | "6" | "261" | "517" => Self::Unavailable(err),
                    // too_many_connections, cannot_connect_now, admin/crash shutdown
                    "53300" | "57P03" | "57P01" | "57P02" => Self::Unavailable(err),
                    _ => Self::Database(err),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => Self::Unavailable(err),
            _ => Self::Database(err),
        }
    }
}
