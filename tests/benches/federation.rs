//! Figures of federation between two release nodes, each its own `corridor
//! serve` process with its own database, on loopback, on SQLite and (when
//! CORRIDOR_TEST_POSTGRES_URL is set) PostgreSQL:
//!
//! - cross-node delivery latency, p50 and p99: from the return of a
//!   `CreateReferral` on node A to the moment the hospital's Watch stream
//!   on node B yields the received Task; and from a `Transition` on B to
//!   the NGO's Watch stream on A yielding it;
//! - catch-up after a backlog: 100 referrals made on A while B is
//!   stopped; the time from starting B until A has delivered all 100
//!   (B's own start-up included, and reported apart).
//!
//! Prints figures, asserts nothing about speed.
//! `cargo bench -p corridor-tests --bench federation` (release profile).
//! CORRIDOR_BENCH_FEDERATION_SAMPLES sets how many referrals are timed one
//! at a time (default 100); CORRIDOR_BENCH_FEDERATION_BACKLOG the backlog
//! (default 100).

#[path = "../federation/node.rs"]
#[expect(
    dead_code,
    reason = "the suite's nodes, of which the benchmark uses a part"
)]
mod node;
#[path = "../federation/world.rs"]
#[expect(
    dead_code,
    reason = "the suite's world, of which the benchmark uses a part"
)]
mod world;

use std::time::{Duration, Instant};

use corridor_proto::referrals::v1 as refpb;
use corridor_tests::bench;

/// The next Task event on `feed`, skipping ServiceRequest events.
async fn next_task(feed: &mut tonic::Streaming<refpb::WatchResponse>) -> refpb::ReferralEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), feed.message())
            .await
            .expect("an event within a minute")
            .expect("stream")
            .expect("open")
            .event
            .expect("event");
        if event
            .resource
            .as_ref()
            .is_some_and(|r| r.resource_type == "Task")
        {
            return event;
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let samples = bench::setting("CORRIDOR_BENCH_FEDERATION_SAMPLES", 100);
    let backlog = bench::setting("CORRIDOR_BENCH_FEDERATION_BACKLOG", 100);
    for backend in bench::backends() {
        let mut w = world::world(backend, false).await.expect("two nodes start");
        let patient = w.patient("Haile").await;
        w.consent(&patient, "permit", &w.hospital_on_a).await;
        let mut at_b =
            w.b.referrals(Some(&w.hospital_token))
                .await
                .watch(refpb::WatchRequest { after_sequence: 0 })
                .await
                .expect("B's watch")
                .into_inner();
        let mut at_a =
            w.a.referrals(Some(&w.ngo_token))
                .await
                .watch(refpb::WatchRequest { after_sequence: 0 })
                .await
                .expect("A's watch")
                .into_inner();
        // Warm up both directions once.
        let (_, task) = w.refer(&patient).await.expect("referral");
        let received = next_task(&mut at_b).await;
        next_task(&mut at_a).await;
        let warm = received.resource.expect("task");
        world::transition(
            &w.b,
            &w.hospital_token,
            &warm.id,
            &warm.version_id,
            "received",
            "",
            &[],
        )
        .await
        .expect("move");
        // B's own stream shows its move too.
        next_task(&mut at_b).await;
        while next_task(&mut at_a).await.status != "received" {}
        let _ = task;

        let mut there = Vec::with_capacity(samples);
        let mut back = Vec::with_capacity(samples);
        for _ in 0..samples {
            w.refer(&patient).await.expect("referral");
            let sent = Instant::now();
            next_task(&mut at_a).await;
            let arrived = next_task(&mut at_b).await;
            there.push(sent.elapsed());
            let b_task = arrived.resource.expect("task");
            world::transition(
                &w.b,
                &w.hospital_token,
                &b_task.id,
                &b_task.version_id,
                "received",
                "",
                &[],
            )
            .await
            .expect("move on B");
            let moved = Instant::now();
            next_task(&mut at_b).await;
            while next_task(&mut at_a).await.status != "received" {}
            back.push(moved.elapsed());
        }
        there.sort();
        back.sort();
        for (what, values) in [("A → B (referral)", &there), ("B → A (status)", &back)] {
            println!(
                "federation {backend:?}: delivery {what}: p50 {:.1} ms, p99 {:.1} ms over {} messages",
                bench::ms(bench::percentile(values, 50)),
                bench::ms(bench::percentile(values, 99)),
                values.len()
            );
        }

        // The backlog.
        w.settled().await;
        let delivered_before = w.a.deliveries("delivered").await.len();
        w.b.stop().await;
        for _ in 0..backlog {
            w.refer(&patient).await.expect("referral");
        }
        world::eventually("the backlog is queued", Duration::from_secs(60), || async {
            (w.a.deliveries("pending").await.len() == backlog).then_some(())
        })
        .await;
        let started = Instant::now();
        w.b.start().await;
        let ready = started.elapsed();
        world::eventually("the backlog drains", Duration::from_secs(300), || async {
            (w.a.deliveries("delivered").await.len() == delivered_before + backlog).then_some(())
        })
        .await;
        let total = started.elapsed();
        println!(
            "federation {backend:?}: catch-up after a {backlog}-message backlog: {} ms from starting node B ({} ms of it B's start-up, {} ms delivering)",
            total.as_millis(),
            ready.as_millis(),
            (total - ready).as_millis()
        );
        w.a.stop().await;
        w.b.stop().await;
    }
}
