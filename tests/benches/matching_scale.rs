//! Matching at registry scale, on PostgreSQL: the cost of maintaining
//! blocking keys on Patient creates, and `Match` latency over a registry
//! of a million patients. Prints figures; asserts nothing.
//!
//! `just bench-match-scale` (release; needs CORRIDOR_TEST_POSTGRES_URL).
//! Settings: MATCH_SCALE_PEOPLE (1,000,000 people in the registry),
//! MATCH_SCALE_CREATES (10,000 creates per throughput comparison),
//! MATCH_SCALE_QUERIES (2,000 Match calls), MATCH_CONCURRENCY (8).
//! MATCH_SCALE_KEEP=1 keeps the loaded registry in the database
//! `corridor_match_scale` and reuses it on the next run (the load of a
//! million takes about 18 minutes on 2 cores); drop that database by hand.
//!
//! 1. Extraction: the CPU time of a Patient's blocking keys, alone.
//! 2. Throughput: Patients created one by one through the store with the
//!    identity service's Patient definition, and with that definition
//!    minus its blocking keys, in alternating runs: first each run into a
//!    fresh schema, then into the loaded registry.
//! 3. Scale: the registry is written through the store in transactions
//!    (the same write path as the service, keys and stream included,
//!    without gRPC). Then the identity service is started on that database
//!    and asked `Match` about records of the population: once to warm the
//!    caches, then measured with one client, then with several.

use std::time::{Duration, Instant};

use corridor_fhir::Validated;
use corridor_matching::{Person, Rules};
use corridor_proto::identity::v1 as pb;
use corridor_store::{ResourceDef, Store, StoreConfig, TxRequest};
use corridor_tests::bench::{ms, percentile, setting};
use corridor_tests::population::{Config, Population, Record};
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
    // The registry, plus the records the throughput runs create into it.
    let extra = 2 * creates;
    let population = Population::generate(&Config {
        people: people + extra,
        duplicates: people / 10,
        seed: 11,
    });
    println!(
        "population: {} records, generated in {:.1} s",
        population.records.len(),
        start.elapsed().as_secs_f64()
    );
    let (registry, fresh) = population
        .records
        .split_at(population.records.len() - extra);
    let fresh: Vec<Validated> = fresh.iter().map(validated).collect();

    extraction(&fresh);
    throughput("an empty registry", None, &fresh[..creates], concurrency).await;
    scale(registry, &fresh, queries, concurrency).await;
}

fn validated(record: &Record) -> Validated {
    corridor_fhir::validate(
        &record.resource.to_string(),
        &["Patient"],
        &Default::default(),
    )
    .expect("generated Patients are valid")
}

/// The CPU cost of blocking keys in the write path, without the database.
fn extraction(bodies: &[Validated]) {
    let rules = Rules::default_rules();
    let objects: Vec<Value> = bodies
        .iter()
        .map(|b| Value::Object(b.object.clone()))
        .collect();
    let start = Instant::now();
    let mut keys = 0;
    for patient in &objects {
        keys += corridor_identity::matcher::index_keys(patient).len();
    }
    let keyed = start.elapsed();
    let start = Instant::now();
    for patient in &objects {
        std::hint::black_box(Person::from_patient(patient, &rules));
    }
    let read = start.elapsed();
    println!(
        "blocking keys of {} Patients: {:.1} µs each ({:.1} µs of it reading the Patient), {:.1} keys each",
        objects.len(),
        keyed.as_secs_f64() * 1e6 / objects.len() as f64,
        read.as_secs_f64() * 1e6 / objects.len() as f64,
        keys as f64 / objects.len() as f64,
    );
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

/// Create `bodies` one by one with `concurrency` writers; creates per
/// second.
async fn create_each(store: &Store, bodies: &[Validated], concurrency: usize) -> f64 {
    let start = Instant::now();
    stream::iter(bodies)
        .for_each_concurrent(concurrency, |body| async move {
            store.create(body, None, None).await.expect("create");
        })
        .await;
    bodies.len() as f64 / start.elapsed().as_secs_f64()
}

/// Patient creates per second through the store with and without blocking
/// keys, in alternating runs of half of `bodies` each, three rounds. With
/// `schema`, into that (loaded) registry; otherwise each run into a fresh
/// schema.
async fn throughput(
    label: &str,
    registry: Option<(&TestDatabase, &str)>,
    bodies: &[Validated],
    concurrency: usize,
) {
    let own;
    let db = match registry {
        Some((db, _)) => db,
        None => {
            own = TestDatabase::new(Backend::Postgres)
                .await
                .expect("postgres");
            &own
        }
    };
    let rounds = 3;
    let per_run = bodies.len() / (2 * rounds);
    let mut with = Vec::new();
    let mut without = Vec::new();
    for (round, runs) in bodies.chunks(2 * per_run).take(rounds).enumerate() {
        for (keys, run) in [true, false].into_iter().zip(runs.chunks(per_run)) {
            let schema = match registry {
                Some((_, schema)) => schema.to_owned(),
                None => format!("t{round}_{}", if keys { "keys" } else { "plain" }),
            };
            let store = store(db, &schema, patient_def(keys), concurrency as u32).await;
            let rate = create_each(&store, run, concurrency).await;
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
        "Patient creates into {label}, {concurrency} writers, runs of {per_run}: with blocking keys {}/s, without {}/s; with/without = {:.0}%",
        show(&with),
        show(&without),
        100.0 * mean(&with) / mean(&without)
    );
}

/// Write `records` as transactions of [`LOAD_BATCH`] creates, the same
/// write path as a create (index, keys, stream), `LOAD_WRITERS` at a time.
async fn load(store: &Store, records: &[Record]) -> f64 {
    const LOAD_BATCH: usize = 250;
    const LOAD_WRITERS: usize = 4;
    let start = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    stream::iter(records.chunks(LOAD_BATCH))
        .for_each_concurrent(LOAD_WRITERS, |chunk| async move {
            let requests: Vec<TxRequest> = chunk
                .iter()
                .map(|record| TxRequest::Create {
                    full_url: None,
                    resource: validated(record),
                    if_none_exist: None,
                    id: None,
                })
                .collect();
            store
                .transaction(&requests, None)
                .await
                .expect("load transaction");
            let before = done.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            let after = before + chunk.len();
            if before / 100_000 != after / 100_000 {
                println!(
                    "  loaded {after} of {} ({:.0}/s)",
                    records.len(),
                    after as f64 / start.elapsed().as_secs_f64()
                );
            }
        })
        .await;
    records.len() as f64 / start.elapsed().as_secs_f64()
}

async fn scale(registry: &[Record], fresh: &[Validated], queries: usize, concurrency: usize) {
    let keep = std::env::var_os("MATCH_SCALE_KEEP").is_some();
    let db = if keep {
        TestDatabase::kept_postgres("corridor_match_scale").await
    } else {
        TestDatabase::new(Backend::Postgres).await
    }
    .expect("postgres");
    let schema = corridor_identity::SCHEMA;
    let loader = store(&db, schema, corridor_identity::RESOURCES, 8).await;
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let present: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {schema}.resources WHERE resource_type = 'Patient'"
    ))
    .fetch_one(&pool)
    .await
    .expect("count");
    if keep && present as usize >= registry.len() {
        println!("registry: {present} Patients kept from an earlier run");
    } else {
        let rate = load(&loader, registry).await;
        println!(
            "registry: {} Patients loaded at {rate:.0}/s (transactions of 250, blocking keys and stream included)",
            registry.len()
        );
    }
    loader.close().await;
    sqlx::raw_sql(&format!("VACUUM ANALYZE {schema}.match_keys"))
        .execute(&pool)
        .await
        .expect("vacuum");
    throughput(
        &format!("a registry of {} Patients", registry.len()),
        Some((&db, schema)),
        fresh,
        concurrency,
    )
    .await;

    // The review queue would now work through every write; a registry
    // that grew by ordinary use has it caught up, so start it at the end.
    let last: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(seq), 0) FROM {schema}.stream_entries WHERE stream = $1"
    ))
    .bind(corridor_identity::PATIENT_CHANGES)
    .fetch_one(&pool)
    .await
    .expect("last stream entry");
    sqlx::query(&format!(
        "INSERT INTO {schema}.stream_cursors (name, seq) VALUES ('identity-review-queue', $1) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq"
    ))
    .bind(last)
    .execute(&pool)
    .await
    .expect("cursor");

    let config = service_config(&db, schema);
    let app = IdentityApp::spawn_on(config).await;
    let step = (registry.len() / queries).max(1);
    let asked: Vec<String> = registry
        .iter()
        .step_by(step)
        .take(queries)
        .map(|r| r.resource.to_string())
        .collect();
    // Once to warm the database's cache and the matcher's, as a running
    // registry has them; then measured.
    for (clients, measured) in [(concurrency, false), (1, true), (concurrency, true)] {
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
        if !measured {
            continue;
        }
        latencies.sort();
        println!(
            "Match over {} Patients, {clients} client(s): {:.0}/s; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            registry.len(),
            latencies.len() as f64 / start.elapsed().as_secs_f64(),
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 95)),
            ms(percentile(&latencies, 99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        );
    }
    app.stop().await;
}
