//! The operations port of a process: Prometheus `/metrics` over HTTP and
//! `grpc.health.v1.Health` for probes, both in plaintext on one address
//! (`CORRIDOR_OPS_ADDR`), apart from the services' own ports.
//!
//! Why a port of its own: the services' ports may take only mutual TLS with
//! a token, while Kubernetes' gRPC probes and Prometheus speak neither.
//! Nothing on this port reads or changes records.
//!
//! Health here is the process's: service `""` is SERVING when every service
//! the process runs is (each reports as its own port does, see
//! [`crate::server`]), and [`LIVENESS`] is SERVING while the process runs.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::response::IntoResponse;
use tokio::net::TcpListener;
pub use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::metrics;
use crate::server::ServeError;

/// The health service name a liveness probe asks about.
pub const LIVENESS: &str = "liveness";

struct ProcessHealth {
    reporter: HealthReporter,
    services: tokio::sync::Mutex<BTreeMap<String, ServingStatus>>,
}

static HEALTH: LazyLock<ProcessHealth> = LazyLock::new(|| ProcessHealth {
    reporter: HealthReporter::new(),
    services: tokio::sync::Mutex::new(BTreeMap::new()),
});

/// Record that `service` (a gRPC service name, or `corridor.gateway`) is in
/// `status`, and update the process's overall status.
pub async fn report(service: &str, status: ServingStatus) {
    let mut services = HEALTH.services.lock().await;
    services.insert(service.to_owned(), status);
    let overall = if services.values().all(|s| *s == ServingStatus::Serving) {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    HEALTH.reporter.set_service_status(service, status).await;
    HEALTH.reporter.set_service_status("", overall).await;
}

/// Serve `/metrics` and health on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> Result<(), ServeError> {
    HEALTH
        .reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    {
        // Not ready before any service has said it is.
        let services = HEALTH.services.lock().await;
        if services.is_empty() {
            HEALTH
                .reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
        }
    }
    let health = HealthServer::new(HealthService::from_health_reporter(HEALTH.reporter.clone()));
    let app = tonic::service::Routes::new(health)
        .into_axum_router()
        .route("/metrics", axum::routing::get(scrape));
    axum::serve(listener, app).await.map_err(ServeError::Http)
}

async fn scrape() -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render().await,
    )
}

/// Ask the health service at `addr` (host:port of an operations port) about
/// `service`: whether it answered SERVING, or what went wrong.
pub async fn check(addr: &str, service: &str) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("{addr} is not a host:port: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(3));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let answer = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|s| format!("{addr} answered {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let status = tonic_health::pb::health_check_response::ServingStatus::try_from(answer.status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    if status == "SERVING" {
        Ok(())
    } else {
        Err(format!("{addr} reports {status}"))
    }
}
