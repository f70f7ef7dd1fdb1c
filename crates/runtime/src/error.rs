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
    /// What the request names does not exist (e.g. the Patient of a
    /// Patient/$everything).
    #[error("{0}")]
    NotFound(Issue),
    /// A service this one depends on cannot be reached; nothing was written.
    #[error("{0}")]
    Unavailable(Issue),
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
        let (code, issue) = match err {
            ApiError::Invalid(issue) => client(Code::InvalidArgument, issue),
            ApiError::NotFound(issue) => client(Code::NotFound, issue),
            ApiError::Unavailable(issue) => {
                tracing::warn!(issue = %issue, "dependency unavailable");
                (Code::Unavailable, issue)
            }
            ApiError::Store(store) => store_error(store),
        };
        outcome::status(code, &issue)
    }
}

/// The status code and issue of a store error, logged by its kind.
fn store_error(store: StoreError) -> (Code, Issue) {
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
            StoreError::Entry { index, source } => {
                let (code, issue) = store_error(*source);
                (code, in_entry(index, issue))
            }
            StoreError::Contention => {
                tracing::warn!("write kept losing races with concurrent writes");
                (
                    Code::Aborted,
                    Issue::new("transient", "the write collided with concurrent writes; retry it"),
                )
            }
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                (
                    Code::Unavailable,
                    Issue::new("transient", "the database is unavailable; nothing was written; retry later"),
                )
            }
            StoreError::Database(source) => fault(&source),
            StoreError::Migration(source) => fault(&source),
    }
}

fn client(code: Code, issue: Issue) -> (Code, Issue) {
    tracing::info!(code = ?code, issue = %issue, "request refused");
    (code, issue)
}

fn fault(source: &dyn std::error::Error) -> (Code, Issue) {
    tracing::error!(error = %source, "internal error");
    (
        Code::Internal,
        Issue::new("exception", "internal error; the request was not completed"),
    )
}

/// An issue found in entry `index` of a Bundle, re-anchored there: an
/// expression `Observation.status` becomes `Bundle.entry[2].resource.status`.
pub fn in_entry(index: usize, mut issue: Issue) -> Issue {
    let entry = format!("Bundle.entry[{index}]");
    issue.diagnostics = format!("{entry}: {}", issue.diagnostics);
    issue.expression = Some(match issue.expression.take() {
        Some(e) => match e.split_once('.') {
            Some((head, rest)) if head.starts_with(|c: char| c.is_ascii_uppercase()) => {
                format!("{entry}.resource.{rest}")
            }
            _ if e.starts_with(|c: char| c.is_ascii_uppercase()) && !e.contains('.') => {
                format!("{entry}.resource")
            }
            _ => format!("{entry}.{e}"),
        },
        None => entry,
    });
    issue
}
