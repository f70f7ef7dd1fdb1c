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

/// The NGO cancels Task `id` on A, at its current version.
async fn cancel_on_a(w: &World, id: &str) {
    transition(
        &w.a,
        &w.ngo_token,
        id,
        &version(&w.a, id).await,
        "cancelled",
        "the patient left",
        &[],
    )
    .await
    .unwrap_or_else(|s| panic!("cancel Task/{id} on A: {s:?}"));
}

/// The hospital moves Task `id` on B through `statuses`; the last with
/// `outputs`.
async fn move_on_b(w: &World, id: &str, statuses: &[&str], outputs: &[&str]) {
    for (i, status) in statuses.iter().enumerate() {
        let outputs = if i + 1 == statuses.len() {
            outputs
        } else {
            &[]
        };
        let reason = if *status == "rejected" {
            "no cardiology slot"
        } else {
            ""
        };
        transition(
            &w.b,
            &w.hospital_token,
            id,
            &version(&w.b, id).await,
            status,
            reason,
            outputs,
        )
        .await
        .unwrap_or_else(|s| panic!("move Task/{id} on B to {status}: {s:?}"));
    }
}

async fn version(node: &crate::node::Node, id: &str) -> String {
    World::task(node, id).await["meta"]["versionId"]
        .as_str()
        .expect("version")
        .to_owned()
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
    // Before the partition: the first two accepted, as both sides know.
    for r in &referrals[..2] {
        move_on_b(&w, &r.b, &["received", "accepted"], &[]).await;
        World::until_status(&w.a, &r.a, "accepted").await;
    }
    w.settled().await;

    let (to_b, to_a) = w.links.as_ref().expect("links");
    to_b.cut();
    to_a.cut();
    // Both sides move while they cannot hear each other.
    // 0: A cancels an accepted referral; B starts it.
    cancel_on_a(&w, &referrals[0].a).await;
    move_on_b(&w, &referrals[0].b, &["in-progress"], &[]).await;
    // 1: A cancels; B starts and completes it.
    cancel_on_a(&w, &referrals[1].a).await;
    move_on_b(&w, &referrals[1].b, &["in-progress"], &[]).await;
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
    move_on_b(&w, &referrals[1].b, &["completed"], &[&encounter]).await;
    // 2: A cancels a requested referral; B receives it.
    cancel_on_a(&w, &referrals[2].a).await;
    move_on_b(&w, &referrals[2].b, &["received"], &[]).await;
    // 3: A cancels; B receives and rejects it.
    cancel_on_a(&w, &referrals[3].a).await;
    move_on_b(&w, &referrals[3].b, &["received", "rejected"], &[]).await;

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
