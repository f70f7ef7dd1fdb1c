//! Prometheus metrics of a Corridor process, served at `/metrics` on the
//! operations port (see [`crate::ops`]).
//!
//! One registry per process: when one process runs several services, their
//! series share it and tell themselves apart by labels. What is measured:
//! - every gRPC call, by [`RpcMetricsLayer`] in the server harness: a counter
//!   by method and status code, and a latency histogram by method;
//! - the server-streaming calls open now (Watch, OpenChannel, ...), which are
//!   the stream subscribers;
//! - every REST request of the gateway, by route template and status
//!   ([`HttpRecorder`]);
//! - gauges read when scraped, by the samplers services register
//!   ([`register_sampler`]): database pool usage, and the federation outbox.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prost::Message as _;

/// Labels of one RPC outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcCode {
    pub rpc_service: String,
    pub rpc_method: String,
    pub code: &'static str,
}

/// Labels of one RPC method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcMethod {
    pub rpc_service: String,
    pub rpc_method: String,
}

/// Labels of one REST request outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpStatus {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of one REST route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRoute {
    pub method: String,
    pub route: String,
}

/// Labels of a database pool gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolState {
    pub service: String,
    pub state: &'static str,
}

/// Labels naming a service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: String,
}

/// Labels of outbox message counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerState {
    pub peer: String,
    pub state: &'static str,
}

/// Labels naming a peer node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

/// Labels of one attempt to send to a peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerOutcome {
    pub peer: String,
    pub outcome: &'static str,
}

type Latency = Family<RpcMethod, Histogram, fn() -> Histogram>;
type HttpLatency = Family<HttpRoute, Histogram, fn() -> Histogram>;

/// Every series a Corridor process exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub rpc_requests: Family<RpcCode, Counter>,
    pub rpc_duration: Latency,
    pub stream_subscribers: Family<RpcMethod, Gauge>,
    pub http_requests: Family<HttpStatus, Counter>,
    pub http_duration: HttpLatency,
    pub db_pool_connections: Family<PoolState, Gauge>,
    pub db_pool_max_connections: Family<ServiceLabel, Gauge>,
    pub outbox_messages: Family<PeerState, Gauge>,
    pub outbox_oldest_pending_age: Family<PeerLabel, Gauge<f64, AtomicU64>>,
    pub outbox_unrelayed_events: Family<ServiceLabel, Gauge>,
    pub federation_sends: Family<PeerOutcome, Counter>,
}

/// Latency buckets from 1 ms to about 33 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("corridor");
    let rpc_requests = Family::<RpcCode, Counter>::default();
    registry.register(
        "rpc_requests",
        "gRPC calls handled, by method and status code",
        rpc_requests.clone(),
    );
    let rpc_duration: Latency = Family::new_with_constructor(latency);
    registry.register(
        "rpc_duration_seconds",
        "Time from a gRPC call's arrival to the end of its response (a stream's whole life)",
        rpc_duration.clone(),
    );
    let stream_subscribers = Family::<RpcMethod, Gauge>::default();
    registry.register(
        "stream_subscribers",
        "Server-streaming gRPC calls open now (watchers and channel readers)",
        stream_subscribers.clone(),
    );
    let http_requests = Family::<HttpStatus, Counter>::default();
    registry.register(
        "http_requests",
        "REST requests the gateway answered, by route template and status",
        http_requests.clone(),
    );
    let http_duration: HttpLatency = Family::new_with_constructor(latency);
    registry.register(
        "http_request_duration_seconds",
        "Time the gateway took to answer a REST request, by route template",
        http_duration.clone(),
    );
    let db_pool_connections = Family::<PoolState, Gauge>::default();
    registry.register(
        "db_pool_connections",
        "Database connections of a service's pool, idle or in use",
        db_pool_connections.clone(),
    );
    let db_pool_max_connections = Family::<ServiceLabel, Gauge>::default();
    registry.register(
        "db_pool_max_connections",
        "The most connections a service's pool opens",
        db_pool_max_connections.clone(),
    );
    let outbox_messages = Family::<PeerState, Gauge>::default();
    registry.register(
        "outbox_messages",
        "Messages to peer nodes not yet delivered: pending (being retried) or parked (waiting for an operator)",
        outbox_messages.clone(),
    );
    let outbox_oldest_pending_age = Family::<PeerLabel, Gauge<f64, AtomicU64>>::default();
    registry.register(
        "outbox_oldest_pending_age_seconds",
        "Age of the oldest pending message to a peer (0 when none waits): the outbox lag",
        outbox_oldest_pending_age.clone(),
    );
    // A family, so that only a process that relays (a federating referrals
    // service) shows it.
    let outbox_unrelayed_events = Family::<ServiceLabel, Gauge>::default();
    registry.register(
        "outbox_unrelayed_events",
        "Referral events not yet turned into messages to peers",
        outbox_unrelayed_events.clone(),
    );
    let federation_sends = Family::<PeerOutcome, Counter>::default();
    registry.register(
        "federation_sends",
        "Attempts to send a message to a peer node, by outcome (delivered, retry, parked)",
        federation_sends.clone(),
    );
    Metrics {
        registry,
        rpc_requests,
        rpc_duration,
        stream_subscribers,
        http_requests,
        http_duration,
        db_pool_connections,
        db_pool_max_connections,
        outbox_messages,
        outbox_oldest_pending_age,
        outbox_unrelayed_events,
        federation_sends,
    }
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Something that sets gauges from the current state when `/metrics` is
/// scraped (a query, a pool's counters).
pub type Sampler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

static SAMPLERS: Mutex<Vec<(String, Sampler)>> = Mutex::new(Vec::new());

/// Run `sampler` before every scrape. A sampler registered again under the
/// same `name` replaces the earlier one (a service restarted in-process).
pub fn register_sampler(name: impl Into<String>, sampler: Sampler) {
    let name = name.into();
    let mut samplers = SAMPLERS.lock().unwrap_or_else(|e| e.into_inner());
    samplers.retain(|(n, _)| *n != name);
    samplers.push((name, sampler));
}

/// How long one sampler may take before the scrape goes on without it.
const SAMPLE_DEADLINE: Duration = Duration::from_secs(2);

/// The text exposition (OpenMetrics) of every series, after running the
/// samplers.
pub async fn render() -> String {
    let samplers: Vec<(String, Sampler)> = SAMPLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(n, s)| (n.clone(), Arc::clone(s)))
        .collect();
    let runs = samplers.iter().map(|(name, sampler)| async move {
        if tokio::time::timeout(SAMPLE_DEADLINE, sampler())
            .await
            .is_err()
        {
            tracing::warn!(
                sampler = %name,
                "metrics sampler took over 2 s; its gauges keep their last values"
            );
        }
    });
    futures::future::join_all(runs).await;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry);
    out
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// gRPC paths (`/package.Service/Method`) of the server-streaming methods
/// of every Corridor service, from the compiled descriptors.
static STREAMING: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    let Ok(set) = prost_types::FileDescriptorSet::decode(corridor_proto::FILE_DESCRIPTOR_SET)
    else {
        return paths;
    };
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                if method.server_streaming.unwrap_or(false) {
                    paths.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    paths
});

/// The name of a gRPC status code, as the gRPC specification spells it.
pub fn code_name(code: &str) -> &'static str {
    match code.trim() {
        "0" => "OK",
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "6" => "ALREADY_EXISTS",
        "7" => "PERMISSION_DENIED",
        "8" => "RESOURCE_EXHAUSTED",
        "9" => "FAILED_PRECONDITION",
        "10" => "ABORTED",
        "11" => "OUT_OF_RANGE",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        "15" => "DATA_LOSS",
        "16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Counts and times every gRPC call of the server it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let (rpc_service, rpc_method) = path
                .trim_start_matches('/')
                .split_once('/')
                .map(|(s, m)| (s.to_owned(), m.to_owned()))
                .unwrap_or_else(|| (path.clone(), String::new()));
            let method = RpcMethod {
                rpc_service,
                rpc_method,
            };
            // A trailers-only response (an error) carries its status in the
            // headers; otherwise it comes in the trailers.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(code_name);
            let streaming = STREAMING.contains(&path);
            if streaming {
                METRICS.stream_subscribers.get_or_create(&method).inc();
            }
            Ok(response.map(|body| MeteredBody {
                body,
                call: Some(Call {
                    method,
                    started,
                    code,
                    streaming,
                }),
            }))
        })
    }
}

/// What is recorded of a call when its response ends.
#[derive(Debug)]
struct Call {
    method: RpcMethod,
    started: Instant,
    code: Option<&'static str>,
    streaming: bool,
}

impl Call {
    fn record(self, code: &'static str) {
        METRICS
            .rpc_requests
            .get_or_create(&RpcCode {
                rpc_service: self.method.rpc_service.clone(),
                rpc_method: self.method.rpc_method.clone(),
                code,
            })
            .inc();
        METRICS
            .rpc_duration
            .get_or_create(&self.method)
            .observe(self.started.elapsed().as_secs_f64());
        if self.streaming {
            METRICS.stream_subscribers.get_or_create(&self.method).dec();
        }
    }
}

/// A response body that records its call once it ends: with the status of
/// its trailers, or CANCELLED when the client went away first.
#[derive(Debug)]
pub struct MeteredBody<B> {
    body: B,
    call: Option<Call>,
}

impl<B> Body for MeteredBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .map(code_name)
                        .or(call.code)
                        .unwrap_or("UNKNOWN");
                    call.record(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.record("INTERNAL");
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    let code = call.code.unwrap_or("UNKNOWN");
                    call.record(code);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            // Ended before its trailers: the status in the headers if it
            // had one, else the client cancelled (a closed watch stream).
            let code = call.code.unwrap_or("CANCELLED");
            call.record(code);
        }
    }
}

/// Records one REST request of the gateway.
#[derive(Debug)]
pub struct HttpRecorder {
    route: HttpRoute,
    started: Instant,
}

impl HttpRecorder {
    /// Start timing a request of `method` to `route` (the route template,
    /// such as `/fhir/{type}/{id}`, never the raw path, so that the series
    /// stay few).
    pub fn start(method: &str, route: &str) -> Self {
        Self {
            route: HttpRoute {
                method: method.to_owned(),
                route: route.to_owned(),
            },
            started: Instant::now(),
        }
    }

    /// The request was answered with `status`.
    pub fn finish(self, status: u16) {
        METRICS
            .http_requests
            .get_or_create(&HttpStatus {
                method: self.route.method.clone(),
                route: self.route.route.clone(),
                status,
            })
            .inc();
        METRICS
            .http_duration
            .get_or_create(&self.route)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Register the sampler of `store`'s connection pool, as service `service`.
pub fn sample_pool(service: &str, store: &corridor_store::Store) {
    let store = store.clone();
    let name = service.to_owned();
    register_sampler(
        format!("pool:{service}"),
        Arc::new(move || {
            let stats = store.pool_stats();
            let service = name.clone();
            Box::pin(async move {
                let m = metrics();
                m.db_pool_connections
                    .get_or_create(&PoolState {
                        service: service.clone(),
                        state: "idle",
                    })
                    .set(i64::from(stats.idle));
                m.db_pool_connections
                    .get_or_create(&PoolState {
                        service: service.clone(),
                        state: "in_use",
                    })
                    .set(i64::from(stats.size.saturating_sub(stats.idle)));
                m.db_pool_max_connections
                    .get_or_create(&ServiceLabel { service })
                    .set(i64::from(stats.max));
            })
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_methods_come_from_the_descriptors() {
        assert!(STREAMING.contains("/corridor.referrals.v1.ReferralsService/Watch"));
        assert!(STREAMING.contains("/corridor.encounters.v1.EncountersService/OpenChannel"));
        assert!(!STREAMING.contains("/corridor.identity.v1.IdentityService/Create"));
    }

    #[test]
    fn status_codes_are_named_as_the_grpc_specification_names_them() {
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("3"), "INVALID_ARGUMENT");
        assert_eq!(code_name("14"), "UNAVAILABLE");
        assert_eq!(code_name("99"), "UNKNOWN");
    }
}
