//! The FHIR R4 REST gateway: how partner EHRs and FHIR client libraries
//! talk to a Corridor node without writing gRPC.
//!
//! It serves FHIR's RESTful API under `/fhir` on its own port and holds no
//! data: each request goes, over gRPC with the caller's trace context, to
//! the service that owns the resource type (identity, encounters or
//! referrals), and the answer comes back with FHIR's HTTP conventions:
//! `ETag`/`Last-Modified`/`Location`, conditional headers, `Prefer`,
//! absolute paging links, gzip, and an OperationOutcome with the right
//! status for every refusal. `GET /fhir/metadata` is generated from the
//! services' own definitions and the routes and operations wired here.
//!
//! - [`rest`]: routing and the interactions;
//! - [`bundles`]: `POST /fhir` with a transaction or batch Bundle;
//! - [`operations`]: `$match`, `$everything`, `$merge`, `$unmerge`,
//!   `$refer`, `$transition`;
//! - [`capability`]: the CapabilityStatement;
//! - [`oauth`]: the token endpoint and SMART discovery (tokens are issued,
//!   not yet required);
//! - [`reply`]: statuses, OperationOutcomes, presentation;
//! - [`backends`]: the gRPC clients, and which service owns which type.

pub mod backends;
pub mod bulk;
pub mod bundles;
pub mod capability;
pub mod oauth;
pub mod operations;
pub mod reply;
pub mod rest;
pub mod spanning;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use corridor_runtime::Shutdown;
use corridor_runtime::server::{self, ServeError};
use tokio::net::TcpListener;

pub use rest::{BASE_PATH, IDEMPOTENCY_HEADER, Limits};

/// Largest request body by default: a Bundle of a few thousand resources.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// Most entries in one batch or transaction by default.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000;
/// Longest one request may take by default, reading its body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub identity_url: String,
    pub encounters_url: String,
    pub referrals_url: String,
    /// How long a call to a service may take.
    pub deadline: Duration,
    /// The public base URL (e.g. `https://fhir.example.org/fhir`), when the
    /// gateway is behind a proxy; otherwise links are made from the
    /// request's `Host` and [`BASE_PATH`].
    pub base_url: Option<String>,
    pub limits: Limits,
    pub shutdown_grace: Duration,
    /// Mutual TLS to the services (the gateway's certificate, naming the
    /// `gateway` service); `None` calls them over plaintext gRPC.
    pub tls: Option<corridor_runtime::tls::Tls>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("a service URL is not valid: {0}")]
    ServiceUrl(#[from] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The gateway, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    gateway: Arc<rest::Gateway>,
    grace: Duration,
}

impl Application {
    /// Make the (lazily connected) service clients and bind the port.
    pub async fn build(config: GatewayConfig) -> Result<Self, BuildError> {
        let backends = backends::Backends::new(
            &config.identity_url,
            &config.encounters_url,
            &config.referrals_url,
            config.deadline,
            config.tls.as_ref(),
        )?;
        let listener = server::bind(config.listen).await?;
        let local_addr = server::local_addr(&listener)?;
        Ok(Self {
            listener,
            local_addr,
            gateway: Arc::new(rest::Gateway {
                backends,
                imports: bulk::Imports::default(),
                base_url: config.base_url,
                limits: config.limits,
            }),
            grace: config.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The router: the FHIR API under [`BASE_PATH`], gzip when asked.
    pub fn router(gateway: Arc<rest::Gateway>) -> Router {
        Router::new()
            .route(BASE_PATH, any(rest::handle))
            .route(&format!("{BASE_PATH}/"), any(rest::handle))
            .route(&format!("{BASE_PATH}/{{*path}}"), any(rest::handle))
            .with_state(gateway)
            .layer(tower_http::compression::CompressionLayer::new().gzip(true))
    }

    /// Serve until `shutdown`; requests in flight get the grace period.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let router = Self::router(self.gateway);
        let grace = self.grace;
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = axum::serve(self.listener, router).with_graceful_shutdown(async move {
            shutdown.wait().await;
            let _ = drained_tx.send(());
        });
        tokio::select! {
            result = serving => result.map_err(ServeError::Http),
            () = async {
                let _ = drained_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("gateway: requests still running after the grace period were cut off");
                Ok(())
            }
        }
    }
}
