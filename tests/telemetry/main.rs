//! Trace context: a W3C `traceparent` sent by a caller becomes the parent of
//! the service's span for that RPC. Its own binary, because it installs the
//! process-wide subscriber with an in-memory span exporter.

use std::time::Duration;

use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::InMemorySpanExporter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_traceparent_becomes_the_parent_of_the_rpc_span() {
    let exporter = InMemorySpanExporter::default();
    let telemetry =
        corridor_runtime::telemetry::init_with_exporter("corridor-test", exporter.clone())
            .expect("telemetry");
    let app = IdentityApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(pb::ReadRequest {
        resource_type: "Patient".into(),
        id: "nobody".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    let err = app
        .client
        .clone()
        .read(request)
        .await
        .expect_err("no such patient");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let mut rpc_span = None;
    for _ in 0..100 {
        rpc_span = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|s| s.name == "corridor.identity.v1.IdentityService/Read");
        if rpc_span.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let span = rpc_span.expect("the Read RPC produced a span");
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(trace_id).unwrap()
    );
    assert_eq!(span.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    app.stop().await;
    telemetry.shutdown();
}
