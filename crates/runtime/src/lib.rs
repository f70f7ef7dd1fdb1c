//! The runtime every Corridor service shares: errors as gRPC statuses that
//! carry a FHIR OperationOutcome, telemetry (tracing and OpenTelemetry), and
//! the gRPC server harness (health, reflection, per-RPC spans, graceful
//! shutdown), who is calling (access tokens in [`auth`], mutual TLS in
//! [`tls`]), the audit trail ([`audit`]), and Prometheus metrics ([`metrics`])
//! with health for probes on the operations port ([`ops`]). A service crate
//! supplies its own gRPC service and store; this crate runs it the same way
//! for the all-in-one binary and for tests.

pub mod audit;
pub mod auth;
pub mod changes;
pub mod error;
pub mod follow;
pub mod handlers;
pub mod identity;
pub mod link;
pub mod merges;
pub mod metrics;
pub mod ops;
pub mod outcome;
pub mod resources;
pub mod server;
pub mod telemetry;
pub mod tls;
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
    /// Mutual TLS, for serving and for calling the node's other services;
    /// `None` serves plaintext gRPC (a development node).
    pub tls: Option<tls::Tls>,
}

/// The organization the caller acts for, as `Organization/<id>`: the one
/// its verified access token names (see [`auth`]).
pub fn caller_organization<T>(request: &tonic::Request<T>) -> Result<String, ApiError> {
    let _ = request;
    Ok(auth::current()?.organization.clone())
}

/// Metadata key of a client-chosen idempotency key on write RPCs.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response metadata set when an idempotency key replayed an earlier result.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The idempotency key a request carries, if any, qualified by the
/// caller's client id. A key that is not valid ASCII metadata is refused
/// rather than ignored, so a client never believes it is protected when it
/// is not.
pub fn idempotency_key<T>(request: &tonic::Request<T>) -> Result<Option<String>, ApiError> {
    let Some(value) = request.metadata().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let refused = || {
        ApiError::Invalid(
            corridor_fhir::Issue::new(
                "invalid",
                format!("idempotency-key must be 1-{MAX_CLIENT_KEY_LEN} visible ASCII characters"),
            )
            .at(IDEMPOTENCY_KEY),
        )
    };
    let key = value.to_str().map_err(|_| refused())?;
    if !(1..=MAX_CLIENT_KEY_LEN).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(refused());
    }
    // Keys are the caller's own: the same key from another client never
    // replays that client's result.
    Ok(Some(format!("{}|{key}", auth::current()?.client_id)))
}

/// The longest idempotency key a client may send.
pub const MAX_CLIENT_KEY_LEN: usize = 255;
