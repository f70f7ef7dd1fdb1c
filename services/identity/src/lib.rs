//! The identity service: the registry of patients, organizations and
//! practitioners that every partner shares, so that the same migrant is
//! found again instead of registered twice. It serves Patient, Organization
//! and Practitioner over `corridor.identity.v1.IdentityService`.
//!
//! Like every Corridor service it is a library: [`Application::build`]
//! connects and migrates its store and binds its port, and
//! [`Application::run_until_stopped`] serves until shutdown. The `corridor`
//! binary and the integration tests start it the same way.

use std::net::SocketAddr;

use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_server::{
    IdentityService, IdentityServiceServer,
};
use corridor_runtime::resources::Resources;
use corridor_runtime::server::{self, ServeError};
use corridor_runtime::{ServiceConfig, Shutdown};
use corridor_store::{Store, StoreError};
use tokio::net::TcpListener;

mod params;

pub use params::RESOURCES;

/// Full gRPC name of the service, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "corridor.identity.v1.IdentityService";
/// PostgreSQL schema of the service's tables.
pub const SCHEMA: &str = "identity";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("identity store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The identity service, built and bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    resources: Resources,
    config: ServiceConfig,
}

impl Application {
    /// Connect the store and run its migrations, then bind the port.
    pub async fn build(config: ServiceConfig) -> Result<Self, BuildError> {
        let store = Store::connect(&config.store, RESOURCES).await?;
        let listener = server::bind(config.listen).await?;
        let local_addr = server::local_addr(&listener)?;
        let resources = Resources::new(store, config.limits);
        Ok(Self {
            listener,
            local_addr,
            resources,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown`, then drain within the grace period and close
    /// the store.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let store = self.resources.store().clone();
        let service = IdentityServiceServer::new(Identity {
            resources: self.resources,
        })
        .max_decoding_message_size(server::max_message_size(&self.config.limits));
        server::serve_with_store(
            self.listener,
            tonic::service::Routes::new(service),
            SERVICE_NAME,
            store,
            shutdown,
            self.config.shutdown_grace,
        )
        .await
    }
}

/// The gRPC handlers.
#[derive(Debug)]
struct Identity {
    resources: Resources,
}

corridor_runtime::fhir_service! {
    impl IdentityService for Identity, messages pb {}
}
