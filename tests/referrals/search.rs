//! Searching referrals: each ServiceRequest and Task parameter finds the
//! referrals it should and not the others.

use corridor_tests::referral::{parties, patient, refer, service_request, transition};
use corridor_tests::{Backend, FullNode, for_each_backend};
use serde_json::{Value, json};

async fn ids(node: &FullNode, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    let bundle = corridor_tests::referral::search(node, resource_type, params).await;
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn one(id: &str) -> Vec<String> {
    vec![id.to_owned()]
}

async fn each_referral_parameter_finds_its_referrals_and_no_others(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let meron = patient(&node).await;
    let other = patient(&node).await;
    // Meron's referral moves to received; the other patient's is for a
    // different service, authored a year earlier, and stays requested.
    let (sr_a, task_a) = refer(&node, &orgs.ngo, &service_request(&orgs, &meron))
        .await
        .unwrap();
    let mut earlier = service_request(&orgs, &other);
    earlier["authoredOn"] = json!("2025-11-21T09:00:00Z");
    earlier["code"]["coding"][0]["code"] = json!("183524004");
    earlier["category"][0]["coding"][0]["code"] = json!("409063005");
    let (sr_b, task_b) = refer(&node, &orgs.ngo, &earlier).await.unwrap();
    let received = transition(&node, &orgs.hospital, &task_a, "received", "", &[])
        .await
        .unwrap();
    assert_eq!(received.id, task_a.id);

    let meron_id = meron.trim_start_matches("Patient/");
    assert_eq!(
        ids(&node, "ServiceRequest", &[("patient", meron_id)]).await,
        one(&sr_a.id)
    );
    assert_eq!(
        ids(&node, "ServiceRequest", &[("status", "active")])
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(&node, "ServiceRequest", &[("requester", &orgs.ngo)])
            .await
            .len(),
        2
    );
    assert!(
        ids(&node, "ServiceRequest", &[("requester", &orgs.hospital)])
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&node, "ServiceRequest", &[("performer", &orgs.hospital)])
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(&node, "ServiceRequest", &[("authored", "ge2026-01-01")]).await,
        one(&sr_a.id)
    );
    assert_eq!(
        ids(
            &node,
            "ServiceRequest",
            &[("code", "http://snomed.info/sct|183524004")]
        )
        .await,
        one(&sr_b.id)
    );
    assert_eq!(
        ids(&node, "ServiceRequest", &[("category", "409063005")]).await,
        one(&sr_b.id)
    );

    assert_eq!(
        ids(&node, "Task", &[("status", "received")]).await,
        one(&task_a.id)
    );
    assert_eq!(
        ids(&node, "Task", &[("status", "requested")]).await,
        one(&task_b.id)
    );
    assert_eq!(
        ids(&node, "Task", &[("owner", &orgs.hospital)]).await.len(),
        2
    );
    assert!(ids(&node, "Task", &[("owner", &orgs.ngo)]).await.is_empty());
    assert_eq!(
        ids(&node, "Task", &[("requester", &orgs.ngo)]).await.len(),
        2
    );
    assert_eq!(
        ids(
            &node,
            "Task",
            &[("focus", &format!("ServiceRequest/{}", sr_b.id))]
        )
        .await,
        one(&task_b.id)
    );
    assert_eq!(
        ids(&node, "Task", &[("patient", meron_id)]).await,
        one(&task_a.id)
    );
    assert_eq!(ids(&node, "Task", &[("code", "fulfill")]).await.len(), 2);
    let modified: Value = serde_json::from_str(&received.json).unwrap();
    let modified = modified["lastModified"].as_str().unwrap();
    assert_eq!(
        ids(&node, "Task", &[("modified", &format!("ge{modified}"))]).await,
        one(&task_a.id)
    );
    assert_eq!(
        ids(&node, "Task", &[("_lastUpdated", &format!("ge{modified}"))]).await,
        one(&task_a.id)
    );
    assert!(
        ids(&node, "Task", &[("business-status", "waiting")])
            .await
            .is_empty()
    );
}

for_each_backend!(each_referral_parameter_finds_its_referrals_and_no_others);
