//! Delivery through outages: messages written while the peer is down, or
//! in flight when a node is killed, arrive once each and in order per
//! referral.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use corridor_proto::referrals::v1 as refpb;
use corridor_tests::{Backend, for_each_backend};
use serde_json::Value;

use crate::world::{self, World, eventually, transition};

for_each_backend!(
    everything_written_while_the_peer_is_down_arrives_once_and_in_order,
    a_node_killed_mid_delivery_loses_nothing_and_duplicates_nothing,
);

/// Every Task on B that came from A, by A's Task id.
async fn received_on_b(w: &World) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page =
            w.b.referrals(None)
                .await
                .search(refpb::SearchRequest {
                    resource_type: "Task".to_owned(),
                    parameters: vec![corridor_proto::fhir::v1::SearchParameter {
                        name: "_count".to_owned(),
                        value: "500".to_owned(),
                    }],
                    page_token: token.clone(),
                })
                .await
                .expect("search B's Tasks")
                .into_inner()
                .bundle
                .expect("bundle");
        let value: Value = serde_json::from_str(&page.json).expect("Bundle");
        for entry in value["entry"].as_array().into_iter().flatten() {
            let task = entry["resource"].clone();
            let origin = task["identifier"][0]["value"]
                .as_str()
                .and_then(|v| v.strip_prefix("Task/"))
                .expect("B's Task names A's")
                .to_owned();
            assert!(
                found.insert(origin.clone(), task).is_none(),
                "A's Task/{origin} arrived twice"
            );
        }
        if page.next_page_token.is_empty() {
            return found;
        }
        token = page.next_page_token;
    }
}

/// The statuses of every version of `task_id` on `node`, oldest first.
async fn history(node: &crate::node::Node, task_id: &str) -> Vec<String> {
    let page = node
        .referrals(None)
        .await
        .history(refpb::HistoryRequest {
            resource_type: "Task".to_owned(),
            id: task_id.to_owned(),
            count: 100,
            page_token: String::new(),
        })
        .await
        .expect("history")
        .into_inner()
        .bundle
        .expect("bundle");
    let value: Value = serde_json::from_str(&page.json).expect("Bundle");
    let mut statuses: Vec<String> = value["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e["resource"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    statuses.reverse();
    statuses
}

/// Refer the patient `count` times; A's Task ids.
async fn referrals(w: &World, patient: &str, count: usize) -> Vec<String> {
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (_, task) = w.refer(patient).await.expect("referral");
        tasks.push(task.id);
    }
    tasks
}

async fn everything_written_while_the_peer_is_down_arrives_once_and_in_order(backend: Backend) {
    let Some(mut w) = world::world(backend, false).await else {
        return;
    };
    let patient = w.patient("Tesfaye").await;
    w.consent(&patient, "permit", &w.hospital_on_a).await;
    w.b.stop().await;
    // 60 referrals, and 40 of them cancelled: 100 messages for a peer
    // that is down.
    let tasks = referrals(&w, &patient, 60).await;
    let cancelled: BTreeSet<String> = tasks.iter().take(40).cloned().collect();
    for task in &cancelled {
        transition(
            &w.a,
            &w.ngo_token,
            task,
            "1",
            "cancelled",
            "the patient moved on",
            &[],
        )
        .await
        .expect("cancelled on A");
    }
    let waiting = eventually(
        "A has queued all 100 messages",
        Duration::from_secs(30),
        || async {
            let pending = w.a.deliveries("pending").await;
            (pending.len() == 100).then_some(pending)
        },
    )
    .await;
    assert!(
        waiting
            .iter()
            .any(|d| d.attempts > 0 && !d.last_error.is_empty()),
        "A tried and is backing off"
    );
    assert!(w.a.deliveries("delivered").await.is_empty());

    let started = Instant::now();
    w.b.start().await;
    eventually("the backlog drains", Duration::from_secs(120), || async {
        (w.a.deliveries("delivered").await.len() == 100).then_some(())
    })
    .await;
    println!(
        "catch-up after a 100-message backlog ({backend:?}): {} ms from starting node B",
        started.elapsed().as_millis()
    );
    assert!(
        w.a.deliveries("").await.is_empty(),
        "nothing pending or parked"
    );

    let on_b = received_on_b(&w).await;
    assert_eq!(on_b.len(), 60, "each referral arrived exactly once");
    for task in &tasks {
        let b_task = on_b.get(task).expect("every referral arrived");
        let id = b_task["id"].as_str().expect("id");
        let expected: &[&str] = if cancelled.contains(task) {
            &["requested", "cancelled"]
        } else {
            &["requested"]
        };
        assert_eq!(
            history(&w.b, id).await,
            expected,
            "Task/{id} took each message once, in order"
        );
    }
    let receipts = world::search(
        &w.b,
        "AuditEvent",
        &[("subtype", "$federation-receive"), ("_count", "0")],
    )
    .await;
    assert_eq!(receipts["total"], 100, "one receipt audited per message");
}

async fn a_node_killed_mid_delivery_loses_nothing_and_duplicates_nothing(backend: Backend) {
    let Some(mut w) = world::world(backend, false).await else {
        return;
    };
    let patient = w.patient("Gebre").await;
    w.consent(&patient, "permit", &w.hospital_on_a).await;
    let tasks = referrals(&w, &patient, 40).await;
    // Some are delivered, some in flight, some still queued.
    w.a.kill();
    let before = received_on_b(&w).await.len();
    w.a.start().await;
    eventually(
        "A delivers the rest after its restart",
        Duration::from_secs(120),
        || async { (w.a.deliveries("delivered").await.len() == tasks.len()).then_some(()) },
    )
    .await;
    assert!(
        w.a.deliveries("").await.is_empty(),
        "nothing pending or parked"
    );
    let on_b = received_on_b(&w).await;
    println!("{before} of {} had arrived when A was killed", tasks.len());
    assert_eq!(
        on_b.keys().cloned().collect::<BTreeSet<_>>(),
        tasks.iter().cloned().collect::<BTreeSet<_>>(),
        "every referral arrived, once"
    );
    for b_task in on_b.values() {
        let id = b_task["id"].as_str().expect("id");
        assert_eq!(
            history(&w.b, id).await,
            ["requested"],
            "Task/{id} was applied once"
        );
    }
    // And B killed mid-delivery too: A's moves still arrive once.
    let (first, rest) = tasks.split_first().expect("tasks");
    for task in rest.iter().take(10) {
        transition(
            &w.a,
            &w.ngo_token,
            task,
            "1",
            "cancelled",
            "duplicate referral",
            &[],
        )
        .await
        .expect("cancelled");
    }
    w.b.kill();
    w.b.start().await;
    eventually(
        "the cancellations arrive after B's restart",
        Duration::from_secs(120),
        || async { (w.a.deliveries("delivered").await.len() == tasks.len() + 10).then_some(()) },
    )
    .await;
    let on_b = received_on_b(&w).await;
    assert_eq!(on_b[first]["status"], "requested");
    for task in rest.iter().take(10) {
        let id = on_b[task]["id"].as_str().expect("id");
        assert_eq!(history(&w.b, id).await, ["requested", "cancelled"]);
    }
}
