//! The operations port of a whole node: every named series is there, and
//! each moves when the traffic it measures happens.

use std::time::{Duration, Instant};

use corridor_proto::identity::v1 as idpb;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1 as refpb;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_tests::{Backend, Bearer, Scrape, for_each_backend};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::process::node;

for_each_backend!(
    a_scrape_names_every_series_and_each_moves_with_the_traffic_it_measures,
    health_for_probes_reports_ready_and_alive_in_plaintext,
);

const IDENTITY: &str = "corridor.identity.v1.IdentityService";
const REFERRALS: &str = "corridor.referrals.v1.ReferralsService";

async fn channel(port: u16, token: &str) -> InterceptedService<Channel, Bearer> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    InterceptedService::new(channel, Bearer(Some(corridor_tests::bearer(token))))
}

fn rpc<'a>(service: &'a str, method: &'a str, code: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("rpc_service", service),
        ("rpc_method", method),
        ("code", code),
    ]
}

async fn a_scrape_names_every_series_and_each_moves_with_the_traffic_it_measures(backend: Backend) {
    let Some((_dir, _db, node)) = node(backend).await else {
        return;
    };
    let before = Scrape::of(&node.ops).await;
    for service in ["identity", "encounters", "referrals"] {
        assert_eq!(
            before.sum("corridor_db_pool_max_connections", &[("service", service)]),
            10.0,
            "{service}'s pool size (CORRIDOR_DB_MAX_CONNECTIONS)"
        );
        assert!(
            before.has(
                "corridor_db_pool_connections",
                &[("service", service), ("state", "idle")]
            ),
            "{service}'s idle connections"
        );
    }

    // Traffic: a create that works, one that is refused, a watch stream,
    // and two REST requests.
    let token = node.admin_token();
    let mut identity = IdentityServiceClient::new(channel(node.identity_port, &token).await);
    identity
        .create(idpb::CreateRequest {
            resource: r#"{"resourceType":"Patient","name":[{"family":"Haile"}]}"#.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create a Patient");
    let refused = identity
        .create(idpb::CreateRequest {
            resource: r#"{"resourceType":"Patient","gender":"sometimes"}"#.to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("an invalid Patient is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let mut referrals = ReferralsServiceClient::new(channel(node.referrals_port, &token).await);
    let watch = referrals
        .watch(refpb::WatchRequest { after_sequence: 0 })
        .await
        .expect("watch")
        .into_inner();
    let rest = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/fhir", node.gateway_port);
    let metadata = rest
        .get(format!("{base}/metadata"))
        .send()
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), 200);
    let missing = rest
        .get(format!("{base}/Patient/no-such-patient"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read");
    assert_eq!(missing.status(), 404);

    let after = Scrape::of(&node.ops).await;
    // A family shows once it has a sample.
    for family in [
        "corridor_rpc_requests",
        "corridor_rpc_duration_seconds",
        "corridor_stream_subscribers",
        "corridor_http_requests",
        "corridor_http_request_duration_seconds",
        "corridor_db_pool_connections",
        "corridor_db_pool_max_connections",
    ] {
        assert!(
            after.declares(family),
            "{family} is exported:\n{}",
            after.text
        );
    }
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert_eq!(
        moved(
            "corridor_rpc_requests_total",
            &rpc(IDENTITY, "Create", "OK")
        ),
        1.0
    );
    assert_eq!(
        moved(
            "corridor_rpc_requests_total",
            &rpc(IDENTITY, "Create", "INVALID_ARGUMENT")
        ),
        1.0
    );
    assert_eq!(
        moved(
            "corridor_rpc_duration_seconds_count",
            &[("rpc_service", IDENTITY), ("rpc_method", "Create")]
        ),
        2.0
    );
    assert_eq!(
        after.sum(
            "corridor_stream_subscribers",
            &[("rpc_service", REFERRALS), ("rpc_method", "Watch")]
        ),
        1.0,
        "one watcher"
    );
    assert_eq!(
        moved(
            "corridor_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/fhir/metadata"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "corridor_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/fhir/Patient/{id}"),
                ("status", "404")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "corridor_http_request_duration_seconds_count",
            &[("route", "/fhir/metadata")]
        ),
        1.0
    );

    // The watcher leaves: the gauge falls back and its call is counted.
    drop(watch);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = Scrape::of(&node.ops).await;
        let watching = scrape.sum(
            "corridor_stream_subscribers",
            &[("rpc_service", REFERRALS), ("rpc_method", "Watch")],
        );
        let ended = scrape.sum(
            "corridor_rpc_requests_total",
            &rpc(REFERRALS, "Watch", "CANCELLED"),
        );
        if watching == 0.0 && ended == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed watch is still counted ({watching} watching, {ended} ended)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health_for_probes_reports_ready_and_alive_in_plaintext(backend: Backend) {
    let Some((_dir, _db, node)) = node(backend).await else {
        return;
    };
    corridor_runtime::ops::check(&node.ops, "")
        .await
        .expect("ready");
    corridor_runtime::ops::check(&node.ops, corridor_runtime::ops::LIVENESS)
        .await
        .expect("alive");
    for service in [IDENTITY, REFERRALS, "corridor.gateway"] {
        corridor_runtime::ops::check(&node.ops, service)
            .await
            .unwrap_or_else(|e| panic!("{service}: {e}"));
    }
    let unknown = corridor_runtime::ops::check(&node.ops, "corridor.nothing.v1.Nothing").await;
    assert!(
        unknown.is_err(),
        "a service the process does not run is not reported healthy"
    );
    // `corridor health`, the container health check, says the same.
    let out = std::process::Command::new(corridor_tests::corridor_binary())
        .args(["health", "--addr", &node.ops])
        .output()
        .expect("corridor health");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
