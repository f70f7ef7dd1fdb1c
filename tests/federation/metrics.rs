//! The outbox as an operator's Prometheus sees it: a backlog for a peer
//! that is down shows as pending messages, a growing lag and retries, and
//! clears once the peer is back.

use std::time::Duration;

use corridor_tests::{Backend, for_each_backend};

use crate::world::{self, eventually};

for_each_backend!(the_outbox_metrics_show_a_backlog_while_the_peer_is_down_and_clear_after,);

const PEER: (&str, &str) = ("peer", "fr-1");

async fn the_outbox_metrics_show_a_backlog_while_the_peer_is_down_and_clear_after(
    backend: Backend,
) {
    let Some(mut w) = world::world(backend, false).await else {
        return;
    };
    let before = w.a.metrics().await;
    for family in [
        "corridor_outbox_messages",
        "corridor_outbox_oldest_pending_age_seconds",
        "corridor_outbox_unrelayed_events",
    ] {
        assert!(before.declares(family), "{family} is exported");
    }
    assert_eq!(
        before.sum("corridor_outbox_messages", &[PEER, ("state", "pending")]),
        0.0
    );
    let delivered_before = before.sum(
        "corridor_federation_sends_total",
        &[PEER, ("outcome", "delivered")],
    );

    let patient = w.patient("Tesfaye").await;
    w.consent(&patient, "permit", &w.hospital_on_a).await;
    w.b.stop().await;
    for _ in 0..3 {
        w.refer(&patient).await.expect("referral");
    }
    let backlog = eventually(
        "A's metrics show 3 messages pending for fr-1, retried",
        Duration::from_secs(30),
        || async {
            let scrape = w.a.metrics().await;
            let pending = scrape.sum("corridor_outbox_messages", &[PEER, ("state", "pending")]);
            let retries = scrape.sum(
                "corridor_federation_sends_total",
                &[PEER, ("outcome", "retry")],
            );
            (pending == 3.0 && retries > 0.0).then_some(scrape)
        },
    )
    .await;
    assert_eq!(
        backlog.sum("corridor_outbox_messages", &[PEER, ("state", "parked")]),
        0.0,
        "nothing parked"
    );
    assert_eq!(backlog.sum("corridor_outbox_unrelayed_events", &[]), 0.0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lag =
        w.a.metrics()
            .await
            .sum("corridor_outbox_oldest_pending_age_seconds", &[PEER]);
    assert!(
        lag >= 1.0,
        "the oldest pending message is over a second old: {lag}"
    );

    w.b.start().await;
    let cleared = eventually(
        "A's metrics show the backlog delivered",
        Duration::from_secs(60),
        || async {
            let scrape = w.a.metrics().await;
            let pending = scrape.sum("corridor_outbox_messages", &[PEER, ("state", "pending")]);
            (pending == 0.0).then_some(scrape)
        },
    )
    .await;
    assert_eq!(
        cleared.sum("corridor_outbox_oldest_pending_age_seconds", &[PEER]),
        0.0
    );
    assert!(
        cleared.sum(
            "corridor_federation_sends_total",
            &[PEER, ("outcome", "delivered")]
        ) >= delivered_before + 3.0,
        "three more deliveries counted"
    );
}
