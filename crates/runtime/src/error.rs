//! The errors a service returns, and their one mapping to gRPC statuses.

use corridor_fhir::Issue;
use corridor_store::StoreError;
use tonic::Code;

use crate::outcome;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(Issue),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Issue> for ApiError {
    fn from(issue: Issue) -> Self {
        Self::Invalid(issue)
    }
}

impl From<ApiError> for tonic::Status {
    /// Client errors are logged at info, server faults at warn or error, and
    /// internals (SQL, paths, URLs) never reach the caller.
    fn from(err: ApiError) -> Self {
        let store = match err {
            ApiError::Invalid(issue) => return client(Code::InvalidArgument, issue),
            ApiError::Store(store) => store,
        };
        match store {
            StoreError::NotFound { resource_type, id } => client(
                Code::NotFound,
                Issue::new("not-found", format!("{resource_type}/{id} is not known here")).at(resource_type),
            ),
            StoreError::VersionNotFound { resource_type, id, version } => client(
                Code::NotFound,
                Issue::new("not-found", format!("{resource_type}/{id} has no version '{version}'")).at(resource_type),
            ),
            StoreError::Deleted { resource_type, id, version } => client(
                Code::NotFound,
                Issue::new("deleted", format!("{resource_type}/{id} was deleted (version {version})")).at(resource_type),
            ),
            StoreError::VersionConflict { resource_type, id, expected, current } => client(
                Code::FailedPrecondition,
                Issue::new(
                    "conflict",
                    format!(
                        "{resource_type}/{id} is at version {current}, not {expected}; read it again, reapply your change and send If-Match {current}"
                    ),
                )
                .at("If-Match"),
            ),
            StoreError::MultipleMatches { count } => client(
                Code::FailedPrecondition,
                Issue::new(
                    "multiple-matches",
                    format!("If-None-Exist matched {count} resources; make the condition specific to one"),
                )
                .at("If-None-Exist"),
            ),
            StoreError::IdempotencyKeyReused => client(
                Code::InvalidArgument,
                Issue::new(
                    "invalid",
                    "idempotency-key was already used for a different request; use a new key for a new request",
                )
                .at(crate::IDEMPOTENCY_KEY),
            ),
            StoreError::Invalid(issue) => client(Code::InvalidArgument, issue),
            StoreError::Contention => {
                tracing::warn!("write kept losing races with concurrent writes");
                outcome::status(
                    Code::Aborted,
                    &Issue::new("transient", "the write collided with concurrent writes; retry it"),
                )
            }
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                outcome::status(
                    Code::Unavailable,
                    &Issue::new("transient", "the database is unavailable; nothing was written; retry later"),
                )
            }
            StoreError::Database(source) => fault(&source),
            StoreError::Migration(source) => fault(&source),
        }
    }
}

fn client(code: Code, issue: Issue) -> tonic::Status {
    tracing::info!(code = ?code, issue = %issue, "request refused");
    outcome::status(code, &issue)
}

fn fault(source: &dyn std::error::Error) -> tonic::Status {
    tracing::error!(error = %source, "internal error");
    outcome::status(
        Code::Internal,
        &Issue::new("exception", "internal error; the request was not completed"),
    )
}
