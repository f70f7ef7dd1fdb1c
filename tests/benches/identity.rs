//! Throughput of the identity service over gRPC, on SQLite and (when
//! CORRIDOR_TEST_POSTGRES_URL is set) PostgreSQL: creates one client at a
//! time and 16 at a time, then identifier and name searches. Prints figures.
//!
//! `just bench-identity` (release profile).

use std::time::Instant;

use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, fixture};
use serde_json::Value;

const SEQUENTIAL: usize = 500;
const CONCURRENT: usize = 2000;
const CLIENTS: usize = 16;
const SEARCHES: usize = 500;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let patients: Vec<Value> = std::fs::read_to_string(fixture("synthea-r4/identity.ndjson"))
        .expect("synthea fixture")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["resourceType"] == "Patient")
        .collect();
    for backend in corridor_tests::bench::backends() {
        let app = IdentityApp::spawn(backend).await.expect("service starts");
        run(&app, backend, &patients).await;
        app.stop().await;
    }
}

/// Synthea patient `n`, with an identifier of its own.
fn patient(patients: &[Value], n: usize) -> String {
    let mut p = patients[n % patients.len()].clone();
    p["identifier"] = serde_json::json!([{"system": "urn:bench", "value": format!("p-{n}")}]);
    p.to_string()
}

async fn run(app: &IdentityApp, backend: Backend, patients: &[Value]) {
    let start = Instant::now();
    for n in 0..SEQUENTIAL {
        let request = pb::CreateRequest {
            resource: patient(patients, n),
            if_none_exist: String::new(),
        };
        app.client.clone().create(request).await.expect("create");
    }
    let sequential = SEQUENTIAL as f64 / start.elapsed().as_secs_f64();
    println!(
        "identity on {backend:?}: create, 1 client: {sequential:.0}/s ({SEQUENTIAL} patients)"
    );

    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = app.client.clone();
            let bodies: Vec<String> = (0..CONCURRENT / CLIENTS)
                .map(|i| patient(patients, SEQUENTIAL + c * (CONCURRENT / CLIENTS) + i))
                .collect();
            tokio::spawn(async move {
                for body in bodies {
                    client
                        .clone()
                        .create(pb::CreateRequest {
                            resource: body,
                            if_none_exist: String::new(),
                        })
                        .await
                        .expect("create");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = (CONCURRENT / CLIENTS * CLIENTS) as f64 / start.elapsed().as_secs_f64();
    println!(
        "identity on {backend:?}: create, {CLIENTS} clients: {concurrent:.0}/s ({CONCURRENT} patients)"
    );
    let total = SEQUENTIAL + CONCURRENT / CLIENTS * CLIENTS;

    let search = |name: &str, value: String| pb::SearchRequest {
        resource_type: "Patient".into(),
        parameters: vec![SearchParameter {
            name: name.into(),
            value,
        }],
        page_token: String::new(),
    };
    let start = Instant::now();
    for n in 0..SEARCHES {
        let found = app
            .client
            .clone()
            .search(search("identifier", format!("urn:bench|p-{}", n * 3)))
            .await
            .expect("search");
        assert_eq!(found.into_inner().bundle.unwrap().total, 1);
    }
    let by_identifier = start.elapsed().as_secs_f64() * 1000.0 / SEARCHES as f64;
    println!(
        "identity on {backend:?}: search by identifier among {total} patients: {by_identifier:.2} ms mean (1 client)"
    );

    let start = Instant::now();
    for n in 0..SEARCHES {
        let family = patients[n % patients.len()]["name"][0]["family"]
            .as_str()
            .unwrap_or("a")
            .chars()
            .take(3)
            .collect::<String>();
        app.client
            .clone()
            .search(search("family", family))
            .await
            .expect("search");
    }
    let by_name = start.elapsed().as_secs_f64() * 1000.0 / SEARCHES as f64;
    println!(
        "identity on {backend:?}: search by family prefix among {total} patients: {by_name:.2} ms mean (1 client)"
    );
}
