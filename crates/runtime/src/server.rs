//! The gRPC server harness: one call starts a service with health,
//! reflection and per-RPC spans, and drains it within a grace period on
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::{Auth, AuthLayer};
use crate::metrics::RpcMetricsLayer;
use crate::telemetry;

/// Tells every service of a process to stop.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Resolves once shutdown has been triggered.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Trigger on SIGTERM or SIGINT (Ctrl-C).
    pub async fn on_signals(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the node");
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        self.trigger();
    }
}

impl Shutdown {
    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(mut self) {
        // An error means every trigger is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// The largest gRPC message a service decodes: its resource limit plus
/// room for the envelope, so that the service's own limit (which answers
/// with an OperationOutcome) cuts in before gRPC's.
pub fn max_message_size(limits: &corridor_fhir::Limits) -> usize {
    limits.max_bytes.saturating_add(64 * 1024)
}

/// [`serve`] for a service that keeps its data in `store`: ready once the
/// store answers, and the store closed after shutdown.
pub async fn serve_with_store(
    listener: TcpListener,
    routes: Routes,
    health_name: &'static str,
    store: corridor_store::Store,
    auth: Auth,
    shutdown: Shutdown,
    grace: Duration,
) -> Result<(), ServeError> {
    // "corridor.identity.v1.IdentityService" is the identity service.
    let service = health_name.split('.').nth(1).unwrap_or(health_name);
    crate::metrics::sample_pool(service, &store);
    let ready = {
        let store = store.clone();
        async move { store.ping().await.is_ok() }
    };
    let result = serve(listener, routes, health_name, ready, auth, shutdown, grace).await;
    store.close().await;
    result
}

/// Serve `routes` (a service's own gRPC services) on `listener`, with gRPC
/// health and reflection added. `health_name` is the service's full gRPC
/// name; it reports NOT_SERVING until `ready` succeeds, and again once
/// shutdown starts. Every call except health, reflection and `auth`'s
/// public methods must carry a valid access token (see [`crate::auth`]);
/// with `auth.tls`, calls come over mutual TLS (see [`crate::tls`]).
/// After shutdown, in-flight calls get `grace` to finish.
pub async fn serve<R>(
    listener: TcpListener,
    routes: Routes,
    health_name: &'static str,
    ready: R,
    auth: Auth,
    shutdown: Shutdown,
    grace: Duration,
) -> Result<(), ServeError>
where
    R: Future<Output = bool>,
{
    let warming = {
        let authenticator = Arc::clone(&auth.authenticator);
        tokio::spawn(async move { authenticator.warm(30).await })
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, health_name, ServingStatus::NotServing).await;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let (drain_tx, mut drain_rx) = watch::channel(false);
    let on_shutdown = {
        let health = health.clone();
        async move {
            shutdown.wait().await;
            set_health(&health, health_name, ServingStatus::NotServing).await;
            drain_tx.send_replace(true);
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &auth.tls {
        builder = builder.tls_config(tls.server())?;
    }
    let server = builder
        .trace_fn(rpc_span)
        .layer(RpcMetricsLayer)
        .layer(AuthLayer(auth))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(listener), on_shutdown);
    let mark_ready = async {
        if ready.await {
            set_health(&health, health_name, ServingStatus::Serving).await;
            tracing::info!(service = health_name, "serving");
        } else {
            tracing::warn!(
                service = health_name,
                "dependencies did not answer; health stays NOT_SERVING"
            );
        }
    };
    let grace_over = async {
        let _ = drain_rx.wait_for(|draining| *draining).await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(server);
    let (result, ()) = tokio::join!(
        async {
            tokio::select! {
                result = &mut server => result.map_err(ServeError::from),
                () = grace_over => {
                    tracing::warn!(service = health_name, ?grace, "grace period over; cancelling calls still in flight");
                    Ok(())
                }
            }
        },
        mark_ready,
    );
    warming.abort();
    result
}

/// Accepted connections with TCP_NODELAY and keepalive. Without NODELAY,
/// small gRPC responses wait on Nagle's algorithm and the peer's delayed
/// ACK: about 40 ms per call.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Report `status` for the service and for the server as a whole (""),
/// which is what a plain `grpc.health.v1.Health/Check` asks about.
async fn set_health(health: &HealthReporter, service: &str, status: ServingStatus) {
    health.set_service_status(service, status).await;
    health.set_service_status("", status).await;
    crate::ops::report(service, status).await;
}

/// Reflection over every protobuf a Corridor service speaks: its own, health,
/// and google.rpc.Status (so grpcurl can show error details).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(corridor_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// The server span of one RPC, a child of the caller's `traceparent`.
fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        enduser.id = tracing::field::Empty,
    );
    if let Err(err) = span.set_parent(telemetry::extract(request.headers())) {
        tracing::debug!(error = %err, "trace context not attached");
    }
    span
}

/// The address a listener actually got, for port-0 binds.
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr, ServeError> {
    listener.local_addr().map_err(|source| ServeError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}
