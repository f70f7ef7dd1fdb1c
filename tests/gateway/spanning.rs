//! Transactions whose entries belong to several services: split by the
//! gateway, all or nothing as a client sees them, conditional creates and
//! references resolved, and a retry with the same key replayed.

use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PATIENT_URN: &str = "urn:uuid:9b1f3c52-8d4e-4f0a-a1c2-6e5d4c3b2a10";
const ORGANIZATION_URN: &str = "urn:uuid:2c4d6e8f-1a3b-4c5d-8e7f-9a0b1c2d3e4f";
const ENCOUNTER_URN: &str = "urn:uuid:7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";

/// A hospital's record of one visit, as Synthea and partner EHRs send it:
/// Organization, Patient, Encounter, Observation and a ServiceRequest, each
/// referring to the others by `urn:uuid`, belonging to three services.
/// Entries are listed dependants first, so the gateway has to order them.
fn visit(family: &str, observation_status: &str) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:3d5e7f90-2b4c-4d6e-8f01-a2b3c4d5e6f7",
         "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "183524004"}]},
                      "subject": {"reference": PATIENT_URN},
                      "encounter": {"reference": ENCOUNTER_URN},
                      "requester": {"reference": ORGANIZATION_URN}},
         "request": {"method": "POST", "url": "ServiceRequest"}},
        {"fullUrl": ENCOUNTER_URN,
         "resource": {"resourceType": "Encounter", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "subject": {"reference": PATIENT_URN},
                      "serviceProvider": {"reference": ORGANIZATION_URN}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"fullUrl": ORGANIZATION_URN,
         "resource": {"resourceType": "Organization", "name": format!("{family} Clinic")},
         "request": {"method": "POST", "url": "Organization"}},
        {"fullUrl": PATIENT_URN,
         "resource": {"resourceType": "Patient", "name": [{"family": family}],
                      "managingOrganization": {"reference": ORGANIZATION_URN}},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:4e6f8091-3c5d-4e7f-9012-b3c4d5e6f708",
         "resource": {"resourceType": "Observation", "status": observation_status,
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                      "subject": {"reference": PATIENT_URN},
                      "encounter": {"reference": ENCOUNTER_URN},
                      "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]})
}

/// How many resources of each type the node holds for `family`'s visit.
async fn held(rest: &RestNode, family: &str) -> [usize; 5] {
    let patients = rest.search_all(&format!("Patient?family={family}")).await.0;
    let organizations = rest
        .search_all(&format!("Organization?name={family}"))
        .await
        .0;
    let mut counts = [patients.len(), organizations.len(), 0, 0, 0];
    for patient in &patients {
        let id = patient["id"].as_str().unwrap();
        counts[2] += rest
            .search_all(&format!("Encounter?subject=Patient/{id}"))
            .await
            .0
            .len();
        counts[3] += rest
            .search_all(&format!("Observation?subject=Patient/{id}"))
            .await
            .0
            .len();
        counts[4] += rest
            .search_all(&format!("ServiceRequest?subject=Patient/{id}"))
            .await
            .0
            .len();
    }
    counts
}

/// `Type/id` of entry `index` of a transaction-response.
fn written(answer: &Value, index: usize) -> String {
    let location = answer["entry"][index]["response"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("entry {index} has a location: {answer}"));
    let path = location.split("/fhir/").nth(1).unwrap_or(location);
    let mut parts = path.split('/');
    format!("{}/{}", parts.next().unwrap(), parts.next().unwrap())
}

async fn a_transaction_across_three_services_writes_every_part_with_references_resolved(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let answer = rest.post("", &visit("Across", "final")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["type"], "transaction-response");
    let entries = answer.body["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        5,
        "one answer per entry, in the client's order"
    );
    for (index, resource_type) in [
        "ServiceRequest",
        "Encounter",
        "Organization",
        "Patient",
        "Observation",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(entries[index]["response"]["status"], "201 Created");
        assert!(written(&answer.body, index).starts_with(&format!("{resource_type}/")));
    }
    let (request, encounter, organization, patient, observation) = (
        written(&answer.body, 0),
        written(&answer.body, 1),
        written(&answer.body, 2),
        written(&answer.body, 3),
        written(&answer.body, 4),
    );
    let read = |reference: String| {
        let rest = &rest;
        async move {
            let answer = rest.get(&reference).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{reference}: {}",
                answer.body
            );
            answer.body
        }
    };
    let stored = read(request).await;
    assert_eq!(stored["subject"]["reference"], patient.as_str());
    assert_eq!(stored["encounter"]["reference"], encounter.as_str());
    assert_eq!(stored["requester"]["reference"], organization.as_str());
    let stored = read(encounter.clone()).await;
    assert_eq!(stored["subject"]["reference"], patient.as_str());
    assert_eq!(
        stored["serviceProvider"]["reference"],
        organization.as_str()
    );
    let stored = read(patient.clone()).await;
    assert_eq!(
        stored["managingOrganization"]["reference"],
        organization.as_str()
    );
    let stored = read(observation).await;
    assert_eq!(stored["encounter"]["reference"], encounter.as_str());
    assert_eq!(held(&rest, "Across").await, [1, 1, 1, 1, 1]);
}

async fn a_transaction_whose_last_entry_is_invalid_leaves_nothing_in_any_service(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let refused = rest.post("", &visit("Halfway", "not-a-status")).await;
    refused.assert_outcome(StatusCode::BAD_REQUEST);
    let expression = refused.body["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        expression.starts_with("Bundle.entry[4]"),
        "the error names the entry as the client numbered it: {}",
        refused.body
    );
    assert!(
        refused.diagnostics().contains("not-a-status"),
        "{}",
        refused.body
    );
    // The identity part (Organization, Patient) was written before the
    // encounters part failed, and is gone.
    assert_eq!(held(&rest, "Halfway").await, [0, 0, 0, 0, 0]);

    // Failing in the last part (referrals) purges the two before it.
    let mut late = visit("Latecomer", "final");
    late["entry"][0]["resource"]["intent"] = json!("not-an-intent");
    let refused = rest.post("", &late).await;
    refused.assert_outcome(StatusCode::BAD_REQUEST);
    assert_eq!(held(&rest, "Latecomer").await, [0, 0, 0, 0, 0]);
    let (observations, _) = rest.search_all("Observation?code=8867-4").await;
    assert!(observations.is_empty(), "{observations:?}");
}

async fn a_retry_with_the_same_key_replays_the_transaction_and_writes_nothing_new(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let key = [("x-idempotency-key", "visit-2026-11-30-1")];
    let bundle = visit("Retried", "final");
    let first = rest.send(Method::POST, "", Some(&bundle), &key).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = rest.send(Method::POST, "", Some(&bundle), &key).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    for index in 0..5 {
        assert_eq!(written(&again.body, index), written(&first.body, index));
    }
    assert_eq!(held(&rest, "Retried").await, [1, 1, 1, 1, 1]);

    let other = rest
        .send(
            Method::POST,
            "",
            Some(&visit("Someone Else", "final")),
            &key,
        )
        .await;
    other.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(
        other
            .diagnostics()
            .contains("already used for a different request"),
        "{}",
        other.body
    );
    assert!(rest.search_all("Patient?family=Someone").await.0.is_empty());

    // After a failed attempt, the same key may be used for the corrected
    // Bundle.
    let key = [("x-idempotency-key", "visit-2026-11-30-2")];
    let failed = rest
        .send(Method::POST, "", Some(&visit("Corrected", "nope")), &key)
        .await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST, "{}", failed.body);
    let fixed = rest
        .send(Method::POST, "", Some(&visit("Corrected", "final")), &key)
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert_eq!(held(&rest, "Corrected").await, [1, 1, 1, 1, 1]);
}

/// The same visit, written so that posting it again finds what the first
/// post made: every create conditional on an identifier, and the Patient
/// named by a conditional reference.
fn conditional_visit() -> Value {
    let system = "https://hospital.example.org/ids";
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": ORGANIZATION_URN,
         "resource": {"resourceType": "Organization", "name": "Conditional Clinic",
                      "identifier": [{"system": system, "value": "org-1"}]},
         "request": {"method": "POST", "url": "Organization", "ifNoneExist": format!("identifier={system}|org-1")}},
        {"resource": {"resourceType": "Patient", "name": [{"family": "Conditional"}],
                      "identifier": [{"system": system, "value": "mrn-1"}],
                      "managingOrganization": {"reference": ORGANIZATION_URN}},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={system}|mrn-1")}},
        {"fullUrl": ENCOUNTER_URN,
         "resource": {"resourceType": "Encounter", "status": "finished",
                      "identifier": [{"system": system, "value": "visit-1"}],
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "subject": {"reference": format!("Patient?identifier={system}|mrn-1")},
                      "serviceProvider": {"reference": ORGANIZATION_URN}},
         "request": {"method": "POST", "url": "Encounter", "ifNoneExist": format!("identifier={system}|visit-1")}}
    ]})
}

async fn a_bundle_of_conditional_creates_and_references_posted_twice_creates_nothing_new(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let first = rest.post("", &conditional_visit()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let statuses = |answer: &Value| -> Vec<String> {
        answer["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(statuses(&first.body), ["201 Created"; 3]);
    let patient = written(&first.body, 1);
    let encounter = rest.get(&written(&first.body, 2)).await.body;
    assert_eq!(
        encounter["subject"]["reference"],
        patient.as_str(),
        "the conditional reference names the Patient this Bundle created"
    );

    let second = rest.post("", &conditional_visit()).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(statuses(&second.body), ["200 OK"; 3]);
    for index in 0..3 {
        assert_eq!(written(&second.body, index), written(&first.body, index));
    }
    assert_eq!(
        rest.search_all("Patient?family=Conditional").await.0.len(),
        1
    );
    assert_eq!(
        rest.search_all("Organization?name=Conditional")
            .await
            .0
            .len(),
        1
    );
    assert_eq!(
        rest.search_all(&format!("Encounter?subject={patient}"))
            .await
            .0
            .len(),
        1
    );
}

async fn a_conditional_reference_that_finds_none_or_several_is_refused_naming_the_entry(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let encounter = |subject: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "subject": {"reference": subject}},
             "request": {"method": "POST", "url": "Encounter"}}
        ]})
    };
    let none = rest
        .post("", &encounter("Patient?identifier=urn:x|nobody"))
        .await;
    none.assert_outcome(StatusCode::NOT_FOUND);
    assert!(
        none.diagnostics().contains("matches no Patient"),
        "{}",
        none.body
    );
    for _ in 0..2 {
        rest.create(&json!({"resourceType": "Patient", "name": [{"family": "Twice"}]}))
            .await;
    }
    let several = rest.post("", &encounter("Patient?family=Twice")).await;
    several.assert_outcome(StatusCode::PRECONDITION_FAILED);
    assert!(
        several.diagnostics().contains("more than one Patient"),
        "{}",
        several.body
    );
    let pid = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Once"}]}))
        .await;
    let one = rest.post("", &encounter("Patient?family=Once")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let stored = rest.get(&written(&one.body, 0)).await.body;
    assert_eq!(stored["subject"]["reference"], format!("Patient/{pid}"));
}

for_each_backend!(
    a_transaction_across_three_services_writes_every_part_with_references_resolved,
    a_transaction_whose_last_entry_is_invalid_leaves_nothing_in_any_service,
    a_retry_with_the_same_key_replays_the_transaction_and_writes_nothing_new,
    a_bundle_of_conditional_creates_and_references_posted_twice_creates_nothing_new,
    a_conditional_reference_that_finds_none_or_several_is_refused_naming_the_entry,
);
