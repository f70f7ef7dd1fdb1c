//! Logging and tracing: `tracing` everywhere, OpenTelemetry spans whose
//! parent is the caller's W3C `traceparent`, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Flushes and stops tracing when the process ends.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Install the global subscriber (`RUST_LOG` filters; default `info`) and
/// the W3C trace-context propagator. Spans are exported over OTLP/gRPC when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and kept local otherwise.
pub fn init(service_name: &str) -> Result<Telemetry, TelemetryError> {
    let mut builder = SdkTracerProvider::builder();
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    install(
        builder,
        service_name,
        tracing_subscriber::fmt::layer().boxed(),
    )
}

/// Install with a given exporter, synchronously; used by tests to capture
/// spans in memory.
pub fn init_with_exporter<E: SpanExporter + 'static>(
    service_name: &str,
    exporter: E,
) -> Result<Telemetry, TelemetryError> {
    let builder = SdkTracerProvider::builder().with_simple_exporter(exporter);
    install(
        builder,
        service_name,
        tracing_subscriber::fmt::layer().with_test_writer().boxed(),
    )
}

fn install(
    builder: opentelemetry_sdk::trace::TracerProviderBuilder,
    service_name: &str,
    fmt: Box<dyn Layer<Registry> + Send + Sync>,
) -> Result<Telemetry, TelemetryError> {
    let provider = builder
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer("corridor");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(filter)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Export what is buffered and stop.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {err}");
        }
    }
}

/// The trace context in incoming HTTP/2 (gRPC) headers.
pub fn extract(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&Headers(headers)))
}

/// Write `cx` into outgoing gRPC metadata as `traceparent`/`tracestate`.
pub fn inject(cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut Metadata(metadata)));
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Write the current span's trace context into outgoing gRPC metadata, so
/// that a call to another service continues this trace.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    inject(&tracing::Span::current().context(), metadata);
}
