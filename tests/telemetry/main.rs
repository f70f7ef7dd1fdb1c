//! Trace context: a W3C `traceparent` sent by a caller becomes the parent of
//! the service's span for that RPC, and a service's call to another service
//! continues the same trace. Its own binary, because it installs the
//! process-wide subscriber with an in-memory span exporter.

use std::sync::OnceLock;
use std::time::Duration;

use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, Node};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

/// The exporter every test of this binary shares (the subscriber is
/// process-wide and installed once).
fn exporter() -> InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let telemetry =
                corridor_runtime::telemetry::init_with_exporter("corridor-test", exporter.clone())
                    .expect("telemetry");
            // Spans are exported as they end; the provider lives as long as
            // the test process.
            std::mem::forget(telemetry);
            exporter
        })
        .clone()
}

/// The finished span named `name` in trace `trace_id`, waiting a little for
/// the exporter.
async fn span_named(exporter: &InMemorySpanExporter, name: &str, trace_id: TraceId) -> SpanData {
    for _ in 0..250 {
        if let Some(span) = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|s| s.name == name && s.span_context.trace_id() == trace_id)
        {
            return span;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no span {name} in trace {trace_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_traceparent_becomes_the_parent_of_the_rpc_span() {
    let exporter = exporter();
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

    let span = span_named(
        &exporter,
        "corridor.identity.v1.IdentityService/Read",
        TraceId::from_hex(trace_id).unwrap(),
    )
    .await;
    assert_eq!(span.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encounters_write_and_its_identity_check_share_one_trace() {
    let exporter = exporter();
    let node = Node::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let patient = corridor_tests::clinic::register_patient(&node, "Tesfay").await;

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent_id = "b7ad6b7169203331";
    let observation = serde_json::json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] },
        "subject": { "reference": format!("Patient/{patient}") },
    });
    let mut request = tonic::Request::new(corridor_proto::encounters::v1::CreateRequest {
        resource: observation.to_string(),
        if_none_exist: String::new(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    node.encounters
        .client
        .clone()
        .create(request)
        .await
        .expect("the write succeeds");

    let trace = TraceId::from_hex(trace_id).unwrap();
    let write = span_named(
        &exporter,
        "corridor.encounters.v1.EncountersService/Create",
        trace,
    )
    .await;
    let check = span_named(
        &exporter,
        "corridor.identity.v1.IdentityService/ResolvePatient",
        trace,
    )
    .await;
    let audit = span_named(
        &exporter,
        "corridor.identity.v1.IdentityService/RecordAudit",
        trace,
    )
    .await;
    assert_eq!(write.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    // The Patient check and the audit record are children of the write's span.
    assert_eq!(check.parent_span_id, write.span_context.span_id());
    assert_eq!(audit.parent_span_id, write.span_context.span_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_request_s_traceparent_continues_into_the_service_it_reaches() {
    let exporter = exporter();
    let rest = corridor_tests::rest::RestNode::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let parent_id = "eee19b7ec3c1b174";
    let answer = rest
        .send(
            reqwest::Method::GET,
            "Patient/nobody",
            None,
            &[("traceparent", &format!("00-{trace_id}-{parent_id}-01"))],
        )
        .await;
    assert_eq!(answer.status, reqwest::StatusCode::NOT_FOUND);
    let trace = TraceId::from_hex(trace_id).unwrap();
    let http = span_named(&exporter, "http", trace).await;
    assert_eq!(http.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    let rpc = span_named(
        &exporter,
        "corridor.identity.v1.IdentityService/Read",
        trace,
    )
    .await;
    assert_eq!(rpc.parent_span_id, http.span_context.span_id());
}
