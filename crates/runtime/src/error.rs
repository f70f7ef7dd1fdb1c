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
    /// The caller did not prove who it is (a refused client assertion or
    /// access token).
    #[error("{0}")]
    Unauthenticated(Issue),
    /// The caller may not do this (e.g. a referral transition reserved for
    /// the other organization).
    #[error("{0}")]
    Forbidden(Issue),
    /// The request is valid but the resource's state does not allow it
    /// (e.g. a transition the state machine forbids).
    #[error("{0}")]
    Conflict(Issue),
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
            ApiError::Unauthenticated(issue) => client(Code::Unauthenticated, issue),
            ApiError::Forbidden(issue) => client(Code::PermissionDenied, issue),
            ApiError::Conflict(issue) => client(Code::FailedPrecondition, issue),
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
            StoreError::Unwitnessed(why) => {
                tracing::error!(error = %why, "a write could not be audited; rolled back");
                (
                    Code::Unavailable,
                    Issue::new(
                        "transient",
                        format!("the change could not be audited, so nothing was written ({why}); retry later"),
                    ),
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
/// expression `Observation.status` becomes `Bundle.entry[2].resource.status`,
/// and `If-Match` becomes `Bundle.entry[2].request.ifMatch`.
pub fn in_entry(index: usize, mut issue: Issue) -> Issue {
    let entry = format!("Bundle.entry[{index}]");
    let is_type = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric())
    };
    issue.diagnostics = format!("{entry}: {}", issue.diagnostics);
    issue.expression = Some(match issue.expression.take() {
        None => entry,
        Some(e) => {
            if let Some(rest) = e.strip_prefix("If-None-Exist") {
                format!("{entry}.request.ifNoneExist{rest}")
            } else if let Some(rest) = e.strip_prefix("If-Match") {
                format!("{entry}.request.ifMatch{rest}")
            } else if e == "resourceType" {
                format!("{entry}.resource.resourceType")
            } else {
                match e.split_once('.') {
                    Some((head, rest)) if is_type(head) => format!("{entry}.resource.{rest}"),
                    None if is_type(&e) => format!("{entry}.resource"),
                    _ => format!("{entry}.{e}"),
                }
            }
        }
    });
    issue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_in_a_bundle_entry_point_into_that_entry() {
        let at = |e: &str| {
            in_entry(3, Issue::new("invalid", "x").at(e))
                .expression
                .unwrap_or_default()
        };
        assert_eq!(at("Observation.status"), "Bundle.entry[3].resource.status");
        assert_eq!(at("Observation"), "Bundle.entry[3].resource");
        assert_eq!(at("resourceType"), "Bundle.entry[3].resource.resourceType");
        assert_eq!(at("If-Match"), "Bundle.entry[3].request.ifMatch");
        assert_eq!(
            at("If-None-Exist.identifier"),
            "Bundle.entry[3].request.ifNoneExist.identifier"
        );
        assert_eq!(at("request.url"), "Bundle.entry[3].request.url");
        let issue = in_entry(0, Issue::new("invalid", "bad"));
        assert_eq!(issue.expression.as_deref(), Some("Bundle.entry[0]"));
        assert_eq!(issue.diagnostics, "Bundle.entry[0]: bad");
    }
}
