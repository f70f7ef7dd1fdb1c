//! The referral loop and its state machine: refer, receive, accept, see the
//! patient, complete with the outcome, with every move checked: who may make
//! it, what reason it needs, which version it starts from, and what it
//! points at. Bad input stores nothing.

use std::time::Duration;

use corridor_proto::referrals::v1 as pb;
use corridor_tests::referral::{
    acting_for, consultation, parties, patient, refer, service_request, status_of, transition,
    watch,
};
use corridor_tests::{Backend, FullNode, expression, for_each_backend, issue_code};
use serde_json::{Value, json};
use tonic::Code;

const PATIENCE: Duration = Duration::from_secs(60);

async fn next_event(stream: &mut tonic::Streaming<pb::WatchResponse>) -> pb::ReferralEvent {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an event within the patience")
        .expect("the watch is open")
        .expect("an event")
        .event
        .expect("event")
}

async fn count(node: &FullNode, resource_type: &str) -> i64 {
    let bundle = node
        .referrals
        .client
        .clone()
        .search(pb::SearchRequest {
            resource_type: resource_type.to_owned(),
            parameters: vec![corridor_proto::fhir::v1::SearchParameter {
                name: "_count".into(),
                value: "0".into(),
            }],
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .bundle
        .unwrap();
    bundle.total
}

async fn the_full_loop_closes_and_the_ngo_sees_every_step_in_order(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let mut ngo_feed = watch(&node, &orgs.ngo, 0).await;

    let (sr, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    let task_json: Value = serde_json::from_str(&task.json).unwrap();
    assert_eq!(task_json["status"], "requested");
    assert_eq!(task_json["intent"], "order");
    assert_eq!(task_json["code"]["coding"][0]["code"], "fulfill");
    assert_eq!(
        task_json["focus"]["reference"],
        format!("ServiceRequest/{}", sr.id)
    );
    assert_eq!(task_json["requester"]["reference"], orgs.ngo);
    assert_eq!(task_json["owner"]["reference"], orgs.hospital);
    assert_eq!(task_json["for"]["reference"], patient);

    let received = transition(&node, &orgs.hospital, &task, "received", "", &[])
        .await
        .unwrap();
    let accepted = transition(&node, &orgs.hospital, &received, "accepted", "", &[])
        .await
        .unwrap();
    let started = transition(&node, &orgs.hospital, &accepted, "in-progress", "", &[])
        .await
        .unwrap();
    let (encounter, note) = consultation(&node, &patient).await;
    let completed = transition(
        &node,
        &orgs.hospital,
        &started,
        "completed",
        "",
        &[&encounter, &note],
    )
    .await
    .unwrap();
    let done: Value = serde_json::from_str(&completed.json).unwrap();
    assert_eq!(done["status"], "completed");
    let outputs: Vec<&str> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["valueReference"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(outputs, [encounter.as_str(), note.as_str()]);

    let mut seen = Vec::new();
    for _ in 0..6 {
        let event = next_event(&mut ngo_feed).await;
        seen.push((event.kind, event.previous_status, event.status));
    }
    let expected = [
        ("service-request-created", "", "active"),
        ("created", "", "requested"),
        ("status-changed", "requested", "received"),
        ("status-changed", "received", "accepted"),
        ("status-changed", "accepted", "in-progress"),
        ("status-changed", "in-progress", "completed"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(k, p, s)| ((*k).to_owned(), (*p).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(seen, expected);

    // $everything from encounters now shows the referral too.
    let everything = node
        .encounters
        .client
        .clone()
        .everything(corridor_proto::encounters::v1::EverythingRequest {
            patient_id: patient.trim_start_matches("Patient/").to_owned(),
            since: String::new(),
            count: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .bundle
        .unwrap();
    let mut pages = vec![serde_json::from_str::<Value>(&everything.json).unwrap()];
    let mut token = everything.next_page_token;
    while !token.is_empty() {
        let page = node
            .encounters
            .client
            .clone()
            .everything(corridor_proto::encounters::v1::EverythingRequest {
                patient_id: patient.trim_start_matches("Patient/").to_owned(),
                since: String::new(),
                count: 100,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner()
            .bundle
            .unwrap();
        token = page.next_page_token;
        pages.push(serde_json::from_str(&page.json).unwrap());
    }
    // The records that match (the Organizations they name come along as
    // includes, which `total` does not count).
    let types: Vec<String> = pages
        .iter()
        .flat_map(|p| p["entry"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "Task").count(),
        1,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "ServiceRequest").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "Encounter").count(), 1);
    assert_eq!(pages[0]["total"], json!(types.len()));
}

async fn every_move_the_state_machine_forbids_is_refused_naming_the_allowed_ones(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    // From requested, the hospital may only receive it (or put it on hold).
    for to in [
        "accepted",
        "in-progress",
        "completed",
        "draft",
        "requested",
        "rejected",
        "failed",
        "nonsense",
    ] {
        let err = transition(&node, &orgs.hospital, &task, to, "because", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{to}: {err:?}");
        assert_eq!(expression(&err), "status");
        assert!(err.message().contains("is requested"), "{}", err.message());
        assert!(
            err.message().contains("received, on-hold"),
            "{}",
            err.message()
        );
    }
    // A completed referral is final.
    let mut current = task.clone();
    for to in ["received", "accepted", "in-progress"] {
        current = transition(&node, &orgs.hospital, &current, to, "", &[])
            .await
            .unwrap();
    }
    let (encounter, _) = consultation(&node, &patient).await;
    current = transition(
        &node,
        &orgs.hospital,
        &current,
        "completed",
        "",
        &[&encounter],
    )
    .await
    .unwrap();
    let err = transition(&node, &orgs.hospital, &current, "in-progress", "", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("final"), "{}", err.message());
    assert_eq!(status_of(&current), "completed");
}

async fn on_hold_returns_only_to_where_it_was(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    let received = transition(&node, &orgs.hospital, &task, "received", "", &[])
        .await
        .unwrap();
    let accepted = transition(&node, &orgs.hospital, &received, "accepted", "", &[])
        .await
        .unwrap();
    // The NGO pauses it (the patient moved on for the season).
    let held = transition(&node, &orgs.ngo, &accepted, "on-hold", "", &[])
        .await
        .unwrap();
    let err = transition(&node, &orgs.hospital, &held, "in-progress", "", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let back = transition(&node, &orgs.hospital, &held, "accepted", "", &[])
        .await
        .unwrap();
    assert_eq!(status_of(&back), "accepted");
}

async fn reject_cancel_and_fail_need_a_reason(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let sr = service_request(&orgs, &patient);

    let (_, task) = refer(&node, &orgs.ngo, &sr).await.unwrap();
    let err = transition(&node, &orgs.ngo, &task, "cancelled", "  ", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "reason");
    let cancelled = transition(
        &node,
        &orgs.ngo,
        &task,
        "cancelled",
        "The patient left the region",
        &[],
    )
    .await
    .unwrap();
    let cancelled: Value = serde_json::from_str(&cancelled.json).unwrap();
    assert_eq!(
        cancelled["statusReason"]["text"],
        "The patient left the region"
    );

    let (_, task) = refer(&node, &orgs.ngo, &sr).await.unwrap();
    let received = transition(&node, &orgs.hospital, &task, "received", "", &[])
        .await
        .unwrap();
    let err = transition(&node, &orgs.hospital, &received, "rejected", "", &[])
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "reason");
    transition(
        &node,
        &orgs.hospital,
        &received,
        "rejected",
        "No cardiology slots this month",
        &[],
    )
    .await
    .unwrap();

    let (_, task) = refer(&node, &orgs.ngo, &sr).await.unwrap();
    let mut current = task;
    for to in ["received", "accepted", "in-progress"] {
        current = transition(&node, &orgs.hospital, &current, to, "", &[])
            .await
            .unwrap();
    }
    let err = transition(&node, &orgs.hospital, &current, "failed", "", &[])
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "reason");
    let failed = transition(
        &node,
        &orgs.hospital,
        &current,
        "failed",
        "The video link never held",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(status_of(&failed), "failed");
}

async fn a_move_by_the_wrong_organization_is_refused(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    // Receiving is the hospital's move, not the NGO's.
    let err = transition(&node, &orgs.ngo, &task, "received", "", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(issue_code(&err), "forbidden");
    // Cancelling is the NGO's, not the hospital's.
    let err = transition(&node, &orgs.hospital, &task, "cancelled", "busy", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A third organization takes no part at all.
    let err = transition(&node, "Organization/bystander", &task, "received", "", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A token for an organization that takes no part: refused.
    let err = node
        .referrals
        .client
        .clone()
        .transition(pb::TransitionRequest {
            task_id: task.id.clone(),
            if_match: task.version_id.clone(),
            status: "received".into(),
            reason: String::new(),
            outputs: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(expression(&err), corridor_runtime::auth::AUTHORIZATION);
    // Only the requester refers.
    let err = refer(&node, &orgs.hospital, &service_request(&orgs, &patient))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(count(&node, "Task").await, 1);
}

async fn of_two_concurrent_moves_from_one_version_exactly_one_wins(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    let received = transition(&node, &orgs.hospital, &task, "received", "", &[])
        .await
        .unwrap();
    // Two staff members at the hospital act on the same screen at once.
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            transition(&node, &orgs.hospital, &received, "accepted", "", &[]),
            transition(
                &node,
                &orgs.hospital,
                &received,
                "rejected",
                "no capacity",
                &[]
            ),
        );
        let outcomes = [a.is_ok(), b.is_ok()];
        if outcomes == [true, true] {
            panic!(
                "both transitions from version {} succeeded",
                received.version_id
            );
        }
        let loser = a.as_ref().err().or(b.as_ref().err()).expect("one loses");
        assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
        if outcomes.contains(&true) {
            let winner = a.or(b).unwrap();
            assert_eq!(winner.version_id, "3");
            break;
        }
    }
    let history = node
        .referrals
        .client
        .clone()
        .history(pb::HistoryRequest {
            resource_type: "Task".into(),
            id: task.id.clone(),
            count: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .bundle
        .unwrap();
    assert_eq!(history.total, 3, "created, received, and one of the two");
}

async fn a_stale_transition_is_refused(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    transition(&node, &orgs.hospital, &task, "received", "", &[])
        .await
        .unwrap();
    // The NGO still shows version 1 and tries to cancel.
    let err = transition(&node, &orgs.ngo, &task, "cancelled", "duplicate", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(expression(&err), "If-Match");
    // Without a version, nothing moves.
    let mut no_version = task.clone();
    no_version.version_id = String::new();
    let err = transition(&node, &orgs.hospital, &no_version, "accepted", "", &[])
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "if_match");
}

async fn bad_referrals_and_outcomes_are_refused_and_store_nothing(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;

    // A patient the registry does not have.
    let err = refer(&node, &orgs.ngo, &service_request(&orgs, "Patient/nobody"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "ServiceRequest.subject");
    // A performer that is not a registered Organization.
    let mut sr = service_request(&orgs, &patient);
    sr["performer"][0]["reference"] = json!("Organization/not-registered");
    let err = refer(&node, &orgs.ngo, &sr).await.unwrap_err();
    assert_eq!(expression(&err), "ServiceRequest.performer");
    // A malformed ServiceRequest.
    let mut sr = service_request(&orgs, &patient);
    sr["intent"] = json!({ "code": "order" });
    let err = refer(&node, &orgs.ngo, &sr).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A Task written directly, bypassing the state machine.
    let rogue = json!({
        "resourceType": "Task", "status": "completed", "intent": "order",
        "for": { "reference": patient },
    });
    let err = node
        .referrals
        .client
        .clone()
        .create(pb::CreateRequest {
            resource: rogue.to_string(),
            if_none_exist: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "Task");
    assert_eq!(count(&node, "Task").await, 0);
    assert_eq!(count(&node, "ServiceRequest").await, 0);

    // Completing with an outcome that does not exist.
    let (_, task) = refer(&node, &orgs.ngo, &service_request(&orgs, &patient))
        .await
        .unwrap();
    let mut current = task;
    for to in ["received", "accepted", "in-progress"] {
        current = transition(&node, &orgs.hospital, &current, to, "", &[])
            .await
            .unwrap();
    }
    let err = transition(
        &node,
        &orgs.hospital,
        &current,
        "completed",
        "",
        &["Encounter/never-held"],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "outputs[0]");
    assert_eq!(issue_code(&err), "not-found");
    let err = transition(&node, &orgs.hospital, &current, "completed", "", &[])
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "outputs");
    let err = transition(
        &node,
        &orgs.hospital,
        &current,
        "completed",
        "",
        &["Patient/x"],
    )
    .await
    .unwrap_err();
    assert_eq!(expression(&err), "outputs[0]");
    let task = node
        .referrals
        .client
        .clone()
        .read(pb::ReadRequest {
            resource_type: "Task".into(),
            id: current.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap();
    assert_eq!(status_of(&task), "in-progress");
    assert_eq!(task.version_id, current.version_id, "nothing was written");
}

async fn a_retried_referral_or_transition_replays_instead_of_repeating(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let orgs = parties(&node).await;
    let patient = patient(&node).await;
    let sr = service_request(&orgs, &patient);
    let refer_with_key = || {
        let mut request = acting_for(
            &orgs.ngo,
            pb::CreateReferralRequest {
                service_request: sr.to_string(),
                draft: false,
            },
        );
        request
            .metadata_mut()
            .insert("idempotency-key", "refer-meron-bp".parse().unwrap());
        let mut client = node.referrals.client.clone();
        async move { client.create_referral(request).await }
    };
    let first = refer_with_key().await.unwrap().into_inner();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = refer_with_key().await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        again.into_inner().task.unwrap().id,
        first.task.clone().unwrap().id
    );
    assert_eq!(count(&node, "Task").await, 1);

    let task = first.task.unwrap();
    let receive_with_key = || {
        let mut request = acting_for(
            &orgs.hospital,
            pb::TransitionRequest {
                task_id: task.id.clone(),
                if_match: task.version_id.clone(),
                status: "received".into(),
                reason: String::new(),
                outputs: vec![],
            },
        );
        request
            .metadata_mut()
            .insert("idempotency-key", "receive-meron-bp".parse().unwrap());
        let mut client = node.referrals.client.clone();
        async move { client.transition(request).await }
    };
    let first = receive_with_key().await.unwrap().into_inner().task.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = receive_with_key().await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        again.into_inner().task.unwrap().version_id,
        first.version_id
    );
}

for_each_backend!(
    the_full_loop_closes_and_the_ngo_sees_every_step_in_order,
    every_move_the_state_machine_forbids_is_refused_naming_the_allowed_ones,
    on_hold_returns_only_to_where_it_was,
    reject_cancel_and_fail_need_a_reason,
    a_move_by_the_wrong_organization_is_refused,
    of_two_concurrent_moves_from_one_version_exactly_one_wins,
    a_stale_transition_is_refused,
    bad_referrals_and_outcomes_are_refused_and_store_nothing,
    a_retried_referral_or_transition_replays_instead_of_repeating,
);
