//! The runtime every Corridor service shares: errors as gRPC statuses that
//! carry a FHIR OperationOutcome, telemetry (tracing and OpenTelemetry), and
//! the gRPC server harness (health, reflection, per-RPC spans, graceful
//! shutdown). A service crate supplies its own gRPC service and store; this
//! crate runs it the same way for the all-in-one binary and for tests.

pub mod error;
pub mod follow;
pub mod handlers;
pub mod identity;
pub mod link;
pub mod merges;
pub mod outcome;
pub mod resources;
pub mod server;
pub mod telemetry;
pub mod transaction;

pub use error::ApiError;
pub use server::{Shutdown, ShutdownTrigger, shutdown_channel};

use std::net::SocketAddr;
use std::time::Duration;

use corridor_store::StoreConfig;

/// How long in-flight calls may run after a shutdown signal, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything one service needs to start, already validated.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub limits: corridor_fhir::Limits,
    pub shutdown_grace: Duration,
}

/// Metadata key naming the caller's organization (`Organization/<id>`).
pub const CALLER_ORGANIZATION: &str = "x-corridor-organization";

/// The organization the caller acts for, as `Organization/<id>`.
///
/// Until authentication exists (issue 7) this is taken on trust from the
/// request metadata; this function is the one place that will read it from
/// the verified access token instead.
pub fn caller_organization<T>(request: &tonic::Request<T>) -> Result<String, ApiError> {
    let missing = || {
        ApiError::Invalid(
            corridor_fhir::Issue::new(
                "required",
                format!("say which organization you act for: metadata {CALLER_ORGANIZATION}: Organization/<id>"),
            )
            .at(CALLER_ORGANIZATION),
        )
    };
    let value = request
        .metadata()
        .get(CALLER_ORGANIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?
        .trim();
    match value.strip_prefix("Organization/") {
        Some(id) if !id.is_empty() && !id.contains('/') => Ok(value.to_owned()),
        _ => Err(missing()),
    }
}

/// Metadata key of a client-chosen idempotency key on write RPCs.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response metadata set when an idempotency key replayed an earlier result.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The idempotency key a request carries, if any. A key that is not valid
/// ASCII metadata is refused rather than ignored, so a client never believes
/// it is protected when it is not.
pub fn idempotency_key<T>(request: &tonic::Request<T>) -> Result<Option<String>, ApiError> {
    match request.metadata().get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
            ApiError::Invalid(
                corridor_fhir::Issue::new(
                    "invalid",
                    "idempotency-key must be visible ASCII characters",
                )
                .at(IDEMPOTENCY_KEY),
            )
        }),
    }
}
