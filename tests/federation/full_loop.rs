//! The whole cross-border loop: an NGO on node A refers a patient to a
//! hospital of node B's directory, under the patient's Consent; B links the
//! patient to the person it already knows, takes the referral with a
//! patient summary, moves it to completion with a recorded consultation;
//! A's Task ends completed with the outcome, its watch stream sees it, and
//! both audit trails hold every disclosure and receipt.

use std::time::Duration;

use base64::Engine;
use corridor_proto::encounters::v1 as encpb;
use corridor_proto::referrals::v1 as refpb;
use corridor_tests::{Backend, for_each_backend};
use serde_json::{Value, json};

use crate::world::{self, World, register, search, transition};

fn attachment(output: &Value) -> Value {
    let data = output["valueAttachment"]["data"]
        .as_str()
        .expect("attachment data");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("attached JSON")
}

fn resource_types(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["resourceType"].as_str().map(str::to_owned))
        .collect()
}

async fn audit_events(node: &crate::node::Node, subtype: &str) -> Vec<Value> {
    let found = search(
        node,
        "AuditEvent",
        &[("subtype", subtype), ("_count", "500")],
    )
    .await;
    found["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

for_each_backend!(a_referral_crosses_the_border_and_its_outcome_comes_back);

async fn a_referral_crosses_the_border_and_its_outcome_comes_back(backend: Backend) {
    let Some(w) = world::world(backend, false).await else {
        return;
    };
    // The node's services trust its own certificate only when a call says
    // which service it is: a request through the REST gateway (whose
    // certificate is a service's) without a token stays unauthenticated,
    // and so does a gRPC call with the node's certificate and no token.
    let anonymous = reqwest::get(format!(
        "http://127.0.0.1:{}/fhir/Patient",
        w.a.gateway_port
    ))
    .await
    .expect("gateway answers");
    assert_eq!(anonymous.status(), 401, "no token, no answer");
    let bare = w.a.bare_identity().await;
    let refused = bare
        .clone()
        .search(corridor_proto::identity::v1::SearchRequest {
            resource_type: "Patient".to_owned(),
            parameters: Vec::new(),
            page_token: String::new(),
        })
        .await
        .expect_err("no token and no service named");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // B already knows the person, under its own record.
    let known_on_b = register(&w.b, Some(&w.hospital_token), &world::person("Haile")).await;
    let patient = w.patient("Haile").await;
    // A's clinical record: a problem and an immunization, for the summary.
    let patient_id = patient.trim_start_matches("Patient/");
    let mut encounters = w.a.encounters(Some(&w.ngo_token)).await;
    for resource in [
        json!({"resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
            "subject": {"reference": patient}}),
        json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "115", "display": "Tdap"}]},
            "patient": {"reference": patient}, "occurrenceDateTime": "2025-05-01"}),
    ] {
        encounters
            .create(encpb::CreateRequest {
                resource: resource.to_string(),
                if_none_exist: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", resource["resourceType"]));
    }
    let consent = w.consent(&patient, "permit", &w.hospital_on_a).await;
    let mut feed =
        w.a.referrals(Some(&w.ngo_token))
            .await
            .watch(refpb::WatchRequest { after_sequence: 0 })
            .await
            .expect("watch opens")
            .into_inner();

    let (service_request, task) = w.refer(&patient).await.expect("the referral is made");
    let task_value: Value = serde_json::from_str(&task.json).expect("Task");
    assert_eq!(task_value["status"], "requested");

    // On B: the referral, its ServiceRequest, the patient linked, the summary.
    let b_task = w.on_b(&task.id).await;
    let b_task_id = b_task["id"].as_str().expect("id").to_owned();
    assert_eq!(b_task["status"], "requested");
    assert_eq!(b_task["owner"]["reference"], w.hospital.as_str());
    assert_eq!(b_task["meta"]["source"], "urn:corridor:node:it-1");
    let b_patient = b_task["for"]["reference"].as_str().expect("for").to_owned();
    assert_ne!(
        b_patient, known_on_b,
        "the referred patient gets a record of its own on B"
    );
    let b_patient_value = World::read_identity(&w.b, &b_patient).await;
    let identifiers = b_patient_value["identifier"].to_string();
    assert!(
        identifiers.contains(&format!("\"Patient/{patient_id}\""))
            && identifiers.contains("urn:corridor:node:it-1"),
        "B's record keeps A's identifier: {identifiers}"
    );
    let links = b_patient_value["link"].to_string();
    assert!(
        links.contains(&known_on_b),
        "$match is certain it is the person B knows, so they are linked: {links}"
    );
    let summary = attachment(&b_task["input"][0]);
    assert_eq!(summary["type"], "document");
    let types = resource_types(&summary);
    assert_eq!(types[..2], ["Composition", "Patient"]);
    assert!(
        types.contains(&"Condition".to_owned()) && types.contains(&"Immunization".to_owned()),
        "{types:?}"
    );
    let b_service_request = world::search_referrals(
        &w.b,
        "ServiceRequest",
        &[(
            "identifier",
            &format!(
                "urn:corridor:node:it-1|ServiceRequest/{}",
                service_request.id
            ),
        )],
    )
    .await;
    assert_eq!(b_service_request["total"], 1, "{b_service_request}");

    // B performs it.
    let mut version = "1".to_owned();
    for status in ["received", "accepted", "in-progress"] {
        let moved = transition(
            &w.b,
            &w.hospital_token,
            &b_task_id,
            &version,
            status,
            "",
            &[],
        )
        .await
        .unwrap_or_else(|s| panic!("{status}: {s:?}"));
        version = moved.version_id;
    }
    // The requester's moves are A's, not B's; on-hold is not shared.
    let refused = transition(
        &w.b,
        &w.hospital_token,
        &b_task_id,
        &version,
        "on-hold",
        "",
        &[],
    )
    .await
    .expect_err("a cross-border referral is not put on hold");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let recorded =
        w.b.encounters(Some(&w.hospital_token))
            .await
            .record_consultation(encpb::RecordConsultationRequest {
                bundle: corridor_tests::clinic::consultation_bundle(
                    b_patient.trim_start_matches("Patient/"),
                )
                .to_string(),
            })
            .await
            .expect("consultation recorded on B")
            .into_inner();
    let encounter = format!("Encounter/{}", recorded.encounter_id);
    transition(
        &w.b,
        &w.hospital_token,
        &b_task_id,
        &version,
        "completed",
        "",
        &[&encounter],
    )
    .await
    .expect("completed on B");

    // On A: completed, with the outcome.
    let done = World::until_status(&w.a, &task.id, "completed").await;
    assert_eq!(done["meta"]["source"], "urn:corridor:node:fr-1");
    let outputs = done["output"].as_array().expect("outputs");
    let summary_line = outputs
        .iter()
        .find_map(|o| o["valueString"].as_str())
        .expect("the outcome's summary");
    assert!(
        summary_line.contains("Hôpital Saint-Louis") && summary_line.contains("fr-1"),
        "{summary_line}"
    );
    let outcome = outputs
        .iter()
        .find(|o| o["valueAttachment"].is_object())
        .map(attachment)
        .expect("the outcome Bundle");
    assert_eq!(resource_types(&outcome), ["Encounter"]);
    assert!(
        outputs.iter().any(|o| o["valueReference"]["identifier"]
            == json!({"system": "urn:corridor:node:fr-1", "value": encounter})),
        "the outcome names B's Encounter: {outputs:?}"
    );
    // The NGO's watch stream sees every step, the completion last.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("completed") {
        let next = tokio::time::timeout(Duration::from_secs(30), feed.message())
            .await
            .expect("the watch stream moves")
            .expect("stream")
            .expect("event");
        let event = next.event.expect("event");
        if event
            .resource
            .as_ref()
            .is_some_and(|r| r.resource_type == "Task")
        {
            seen.push(event.status);
        }
    }
    assert_eq!(
        seen,
        [
            "requested",
            "received",
            "accepted",
            "in-progress",
            "completed"
        ]
    );

    // B keeps the NGO as the referral's requester: a copy that B's
    // directory sync leaves alone, as A does not publish it.
    let requester = b_task["requester"]["reference"]
        .as_str()
        .expect("requester");
    let ngo_on_b = World::read_identity(&w.b, requester).await;
    assert_eq!(ngo_on_b["name"], "Frontier Care NGO");
    assert_ne!(ngo_on_b["active"], false, "not withdrawn: {ngo_on_b}");
    assert!(
        !ngo_on_b["meta"].to_string().contains("directory"),
        "{ngo_on_b}"
    );
    let hospital_copy = World::read_identity(&w.a, &w.hospital_on_a).await;
    assert!(
        hospital_copy["meta"].to_string().contains("\"directory\""),
        "{hospital_copy}"
    );

    // Delivered once each, nothing left; both audit trails complete.
    w.settled().await;
    assert_eq!(w.a.deliveries("delivered").await.len(), 1);
    assert_eq!(w.b.deliveries("delivered").await.len(), 4);
    let a_disclosed = audit_events(&w.a, "$federation-disclose").await;
    let a_received = audit_events(&w.a, "$federation-receive").await;
    let b_disclosed = audit_events(&w.b, "$federation-disclose").await;
    let b_received = audit_events(&w.b, "$federation-receive").await;
    assert_eq!(
        (
            a_disclosed.len(),
            a_received.len(),
            b_disclosed.len(),
            b_received.len()
        ),
        (1, 4, 4, 1),
        "A disclosed the referral and received 4 moves; B the reverse"
    );
    for event in a_disclosed
        .iter()
        .chain(&a_received)
        .chain(&b_disclosed)
        .chain(&b_received)
    {
        assert_eq!(event["outcome"], "0", "{event}");
        let text = event.to_string();
        assert!(text.contains(&consent), "under which Consent: {text}");
    }
    assert!(
        a_disclosed[0].to_string().contains("node fr-1 (FR)"),
        "to whom"
    );
    assert!(
        a_disclosed[0].to_string().contains(&patient),
        "whose record"
    );
    assert!(
        b_received[0].to_string().contains("node it-1 (IT)"),
        "from whom"
    );
    assert!(
        b_received[0].to_string().contains(&b_patient),
        "whose record, on B"
    );
}

impl World {
    /// A resource of `node`'s identity as JSON, by `Type/id`.
    pub async fn read_identity(node: &crate::node::Node, reference: &str) -> Value {
        let (resource_type, id) = reference.split_once('/').expect("Type/id");
        let stored = node
            .identity(None)
            .await
            .read(corridor_proto::identity::v1::ReadRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("{reference}: {s:?}"))
            .into_inner()
            .resource
            .expect("resource");
        serde_json::from_str(&stored.json).expect("JSON")
    }
}
