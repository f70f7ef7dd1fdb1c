//! Matching at registry scale, on PostgreSQL: the cost of maintaining
//! blocking keys on Patient creates, and `Match` latency over a registry
//! of a million patients. Prints figures; asserts nothing.
//!
//! `just bench-match-scale` (release; needs CORRIDOR_TEST_POSTGRES_URL).
//! Settings: MATCH_SCALE_PEOPLE (1,000,000), MATCH_SCALE_CREATES (10,000
//! creates per throughput run), MATCH_SCALE_QUERIES (2,000 Match calls),
//! MATCH_CONCURRENCY (8).
//!
//! 1. Throughput: the same Patients created through the store with the
//!    identity service's Patient definition, and with that definition
//!    minus its blocking keys, each into a fresh schema, twice in turns.
//! 2. Scale: the population is written through the store (the same write
//!    path as the service, keys and stream included, without gRPC), then the
//!    identity service is started on that database and asked `Match` about
//!    records of the population: one client at a time, then concurrently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use corridor_fhir::Validated;
use corridor_proto::identity::v1 as pb;
use corridor_store::{ResourceDef, Store, StoreConfig};
use corridor_tests::bench::{ms, percentile, setting};
use corridor_tests::population::{Config, Population};
use corridor_tests::{Backend, IdentityApp, TestDatabase, service_config};
use futures::{StreamExt, stream};
use secrecy::SecretString;
use serde_json::Value;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let people = setting("MATCH_SCALE_PEOPLE", 1_000_000);
    let creates = setting("MATCH_SCALE_CREATES", 10_000);
    let queries = setting("MATCH_SCALE_QUERIES", 2_000);
    let concurrency = setting("MATCH_CONCURRENCY", 8);
    if corridor_tests::postgres_url().is_none() {
        println!("matching at scale runs on PostgreSQL only: set CORRIDOR_TEST_POSTGRES_URL");
        return;
    }
    let start = Instant::now();
    let population = Population::generate(&Config {
        people,
        duplicates: people / 10,
        seed: 11,
    });
    println!(
        "population: {} records of {people} people, generated in {:.1} s",
        population.records.len(),
        start.elapsed().as_secs_f64()
    );
    let bodies: Vec<Validated> = population
        .records
        .iter()
        .map(|r| {
            corridor_fhir::validate(&r.resource.to_string(), &["Patient"], &Default::default())
                .expect("generated Patients are valid")
        })
        .collect();

    throughput(&bodies[..creates.min(bodies.len())], concurrency).await;
    scale(&population, &bodies, queries, concurrency).await;
}

/// The identity service's Patient definition, with or without its keys.
fn patient_def(keys: bool) -> &'static [ResourceDef] {
    let mut def = corridor_identity::RESOURCES[0];
    assert_eq!(def.resource_type, "Patient");
    if !keys {
        def.keys = None;
    }
    Box::leak(Box::new([def]))
}

async fn store(
    db: &TestDatabase,
    schema: &str,
    defs: &'static [ResourceDef],
    connections: u32,
) -> Store {
    let config = StoreConfig {
        url: SecretString::from(db.url.clone()),
        schema: schema.to_owned(),
        max_connections: connections,
    };
    Store::connect(&config, defs).await.expect("store connects")
}

/// Create `bodies` with `concurrency` writers; creates per second.
async fn load(store: &Store, bodies: &[Validated], concurrency: usize, progress: bool) -> f64 {
    let start = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    stream::iter(bodies)
        .for_each_concurrent(concurrency, |body| {
            let done = done.clone();
            async move {
                store.create(body, None, None).await.expect("create");
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if progress && n.is_multiple_of(50_000) {
                    println!(
                        "  loaded {n} of {} ({:.0}/s)",
                        bodies.len(),
                        n as f64 / start.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
    bodies.len() as f64 / start.elapsed().as_secs_f64()
}

async fn throughput(bodies: &[Validated], concurrency: usize) {
    let db = TestDatabase::new(Backend::Postgres)
        .await
        .expect("postgres");
    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..2 {
        for keys in [true, false] {
            let schema = format!("t{round}_{}", if keys { "keys" } else { "plain" });
            let store = store(&db, &schema, patient_def(keys), concurrency as u32).await;
            let rate = load(&store, bodies, concurrency, false).await;
            store.close().await;
            if keys { &mut with } else { &mut without }.push(rate);
        }
    }
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "Patient creates through the store, {concurrency} writers, {} each run: with blocking keys {}/s, without {}/s; with/without = {:.0}%",
        bodies.len(),
        show(&with),
        show(&without),
        100.0 * mean(&with) / mean(&without)
    );
}

async fn scale(population: &Population, bodies: &[Validated], queries: usize, concurrency: usize) {
    let db = TestDatabase::new(Backend::Postgres)
        .await
        .expect("postgres");
    let loader = store(
        &db,
        corridor_identity::SCHEMA,
        corridor_identity::RESOURCES,
        16,
    )
    .await;
    let rate = load(&loader, bodies, 16, true).await;
    // The review queue would now work through every write; a registry
    // that grew by ordinary use has it caught up, so start it at the end.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let last: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(seq), 0) FROM {}.stream_entries WHERE stream = $1",
        corridor_identity::SCHEMA
    ))
    .bind(corridor_identity::PATIENT_CHANGES)
    .fetch_one(&pool)
    .await
    .expect("last stream entry");
    sqlx::query(&format!(
        "INSERT INTO {}.stream_cursors (name, seq) VALUES ('identity-review-queue', $1)",
        corridor_identity::SCHEMA
    ))
    .bind(last)
    .execute(&pool)
    .await
    .expect("cursor");
    loader.close().await;
    println!(
        "registry: {} Patients loaded at {rate:.0}/s (16 writers, blocking keys and stream included)",
        bodies.len()
    );

    let config = service_config(&db, corridor_identity::SCHEMA);
    let app = IdentityApp::spawn_on(config).await;
    let step = (population.records.len() / queries).max(1);
    let asked: Vec<String> = population
        .records
        .iter()
        .step_by(step)
        .take(queries)
        .map(|r| {
            let mut p: Value = r.resource.clone();
            p.as_object_mut().map(|o| o.remove("id"));
            p.to_string()
        })
        .collect();
    for clients in [1, concurrency] {
        let start = Instant::now();
        let mut latencies: Vec<Duration> = stream::iter(asked.iter())
            .map(|resource| {
                let mut client = app.client.clone();
                async move {
                    let begun = Instant::now();
                    client
                        .r#match(pb::MatchRequest {
                            resource: resource.clone(),
                            count: 10,
                            only_certain_matches: false,
                        })
                        .await
                        .expect("match");
                    begun.elapsed()
                }
            })
            .buffer_unordered(clients)
            .collect()
            .await;
        latencies.sort();
        println!(
            "Match over {} Patients, {clients} client(s): {:.0}/s; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            bodies.len(),
            latencies.len() as f64 / start.elapsed().as_secs_f64(),
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 95)),
            ms(percentile(&latencies, 99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        );
    }
    app.stop().await;
}
