//! Concurrent moves on both sides during a partition converge, by the
//! edge-ownership rules, to one agreed status on both nodes.

use std::time::Duration;

use corridor_tests::{Backend, for_each_backend};

use crate::world::{self, World, eventually, transition};

for_each_backend!(moves_made_on_both_sides_of_a_partition_converge_to_one_status);

/// A referral as both nodes hold it.
struct Referral {
    a: String,
    b: String,
}

impl Referral {
    async fn version(node: &crate::node::Node, id: &str) -> String {
        World::task(node, id).await["meta"]["versionId"]
            .as_str()
            .expect("version")
            .to_owned()
    }
}

async fn moves_made_on_both_sides_of_a_partition_converge_to_one_status(backend: Backend) {
    let Some(w) = world::world(backend, true).await else {
        return;
    };
    let patient = w.patient("Alemu").await;
    w.consent(&patient, "permit", &w.hospital_on_a).await;
    let mut referrals = Vec::new();
    for _ in 0..4 {
        let (_, task) = w.refer(&patient).await.expect("referral");
        let on_b = w.on_b(&task.id).await;
        referrals.push(Referral {
            a: task.id,
            b: on_b["id"].as_str().expect("id").to_owned(),
        });
    }
    let hospital = &w.hospital_token;
    let ngo = &w.ngo_token;
    // Before the partition: the first two accepted, as both sides know.
    for r in &referrals[..2] {
        let mut version = "1".to_owned();
        for status in ["received", "accepted"] {
            version = transition(&w.b, hospital, &r.b, &version, status, "", &[])
                .await
                .expect("move on B")
                .version_id;
        }
        World::until_status(&w.a, &r.a, "accepted").await;
    }
    w.settled().await;

    let (to_b, to_a) = w.links.as_ref().expect("links");
    to_b.cut();
    to_a.cut();
    // Both sides move while they cannot hear each other.
    // 0: A cancels an accepted referral; B starts it.
    transition(
        &w.a,
        ngo,
        &referrals[0].a,
        &Referral::version(&w.a, &referrals[0].a).await,
        "cancelled",
        "the patient left",
        &[],
    )
    .await
    .expect("cancel on A");
    transition(
        &w.b,
        hospital,
        &referrals[0].b,
        &Referral::version(&w.b, &referrals[0].b).await,
        "in-progress",
        "",
        &[],
    )
    .await
    .expect("start on B");
    // 1: A cancels; B starts and completes it.
    transition(
        &w.a,
        ngo,
        &referrals[1].a,
        &Referral::version(&w.a, &referrals[1].a).await,
        "cancelled",
        "the patient left",
        &[],
    )
    .await
    .expect("cancel on A");
    let started = transition(
        &w.b,
        hospital,
        &referrals[1].b,
        &Referral::version(&w.b, &referrals[1].b).await,
        "in-progress",
        "",
        &[],
    )
    .await
    .expect("start on B");
    let b_patient = World::task(&w.b, &referrals[1].b).await["for"]["reference"]
        .as_str()
        .expect("patient")
        .trim_start_matches("Patient/")
        .to_owned();
    let recorded =
        w.b.encounters(Some(hospital))
            .await
            .record_consultation(corridor_proto::encounters::v1::RecordConsultationRequest {
                bundle: corridor_tests::clinic::consultation_bundle(&b_patient).to_string(),
            })
            .await
            .expect("consultation")
            .into_inner();
    let encounter = format!("Encounter/{}", recorded.encounter_id);
    transition(
        &w.b,
        hospital,
        &referrals[1].b,
        &started.version_id,
        "completed",
        "",
        &[&encounter],
    )
    .await
    .expect("complete on B");
    // 2: A cancels a requested referral; B receives it.
    transition(
        &w.a,
        ngo,
        &referrals[2].a,
        "1",
        "cancelled",
        "found care nearer",
        &[],
    )
    .await
    .expect("cancel on A");
    transition(&w.b, hospital, &referrals[2].b, "1", "received", "", &[])
        .await
        .expect("receive on B");
    // 3: A cancels; B receives and rejects it.
    transition(
        &w.a,
        ngo,
        &referrals[3].a,
        "1",
        "cancelled",
        "found care nearer",
        &[],
    )
    .await
    .expect("cancel on A");
    let received = transition(&w.b, hospital, &referrals[3].b, "1", "received", "", &[])
        .await
        .expect("receive on B");
    transition(
        &w.b,
        hospital,
        &referrals[3].b,
        &received.version_id,
        "rejected",
        "no cardiology slot",
        &[],
    )
    .await
    .expect("reject on B");

    // Still apart, each side shows its own view.
    assert_eq!(
        World::task(&w.a, &referrals[1].a).await["status"],
        "cancelled"
    );
    assert_eq!(
        World::task(&w.b, &referrals[1].b).await["status"],
        "completed"
    );

    to_b.heal();
    to_a.heal();
    w.settled().await;
    // The owner's final statuses win; otherwise the cancellation does.
    let expected = ["cancelled", "completed", "cancelled", "rejected"];
    for (r, status) in referrals.iter().zip(expected) {
        let agreed = eventually(
            &format!("both nodes show Task {} as {status}", r.a),
            Duration::from_secs(30),
            || async {
                let a = World::task(&w.a, &r.a).await;
                let b = World::task(&w.b, &r.b).await;
                (a["status"] == status && b["status"] == status).then_some(())
            },
        )
        .await;
        let () = agreed;
    }
    assert!(w.a.deliveries("parked").await.is_empty());
    assert!(w.b.deliveries("parked").await.is_empty());
}
