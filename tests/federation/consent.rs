//! Nothing leaves a node without the patient's Consent: no Consent or a
//! denying one refuses the referral, and after a revocation what was still
//! waiting to go is held back and parked, and no new referral is made.

use std::time::Duration;

use corridor_proto::identity::v1 as idpb;
use corridor_tests::{Backend, for_each_backend};
use tonic::Code;

use crate::world::{self, World, eventually};

for_each_backend!(
    without_a_permitting_consent_no_referral_leaves_the_node,
    after_a_revocation_no_new_data_leaves_the_node,
);

async fn without_a_permitting_consent_no_referral_leaves_the_node(backend: Backend) {
    let Some(w) = world::world(backend, false).await else {
        return;
    };
    let patient = w.patient("Kidane").await;
    let refused = w.refer(&patient).await.expect_err("no Consent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("Consent") && refused.message().contains(&w.hospital_on_a),
        "says what is missing: {}",
        refused.message()
    );
    // A Consent that permits, and one that denies: the denial wins.
    w.consent(&patient, "permit", &w.hospital_on_a).await;
    let denial = w.consent(&patient, "deny", &w.hospital_on_a).await;
    let refused = w.refer(&patient).await.expect_err("a denying Consent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains(&denial),
        "names the denial: {}",
        refused.message()
    );
    // Nothing was written, queued or sent.
    assert!(world::search_referrals(&w.a, "Task", &[]).await["entry"].is_null());
    assert!(w.a.deliveries("").await.is_empty());
    assert!(w.a.deliveries("delivered").await.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(world::search_referrals(&w.b, "Task", &[]).await["entry"].is_null());
    assert!(
        world::search(&w.b, "Patient", &[]).await["entry"].is_null(),
        "B learned of nobody"
    );
}

async fn after_a_revocation_no_new_data_leaves_the_node(backend: Backend) {
    let Some(mut w) = world::world(backend, false).await else {
        return;
    };
    let patient = w.patient("Bekele").await;
    let consent = w.consent(&patient, "permit", &w.hospital_on_a).await;
    // Made while B is down: it waits in A's outbox.
    w.b.stop().await;
    let (_, task) = w.refer(&patient).await.expect("referral under the Consent");
    // The patient withdraws their Consent.
    let mut revoked = World::read_identity(&w.a, &consent).await;
    revoked["status"] = serde_json::json!("inactive");
    w.a.identity(Some(&w.ngo_token))
        .await
        .update(idpb::UpdateRequest {
            resource_type: "Consent".to_owned(),
            id: consent.trim_start_matches("Consent/").to_owned(),
            resource: revoked.to_string(),
            if_match: String::new(),
        })
        .await
        .expect("revoked");
    let refused = w
        .refer(&patient)
        .await
        .expect_err("no new referral after revocation");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    w.b.start().await;
    let parked = eventually(
        "the waiting referral is held back",
        Duration::from_secs(30),
        || async { w.a.deliveries("parked").await.into_iter().next() },
    )
    .await;
    assert_eq!(parked.task_id, task.id);
    assert!(
        parked.last_error.contains("not disclosed"),
        "{}",
        parked.last_error
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.b_task(&task.id).await.is_none(), "nothing reached B");
    assert!(
        world::search(&w.b, "Patient", &[]).await["entry"].is_null(),
        "B learned of nobody"
    );
    let withheld = world::search(
        &w.a,
        "AuditEvent",
        &[("subtype", "$federation-disclose"), ("outcome", "4")],
    )
    .await;
    assert_eq!(
        withheld["total"], 1,
        "the withheld disclosure is audited: {withheld}"
    );
}
