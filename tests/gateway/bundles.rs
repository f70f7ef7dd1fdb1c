//! `POST /fhir` with a Bundle: a transaction is all or nothing, a batch
//! answers each entry on its own.

use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn encounter_and_observation(patient: &str, status: &str) -> Value {
    json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
             "resource": {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
                          "subject": {"reference": patient}},
             "request": {"method": "POST", "url": "Encounter"}},
            {"resource": {"resourceType": "Observation", "status": status,
                          "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                          "subject": {"reference": patient},
                          "encounter": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                          "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
             "request": {"method": "POST", "url": "Observation"}}
        ]
    })
}

async fn a_transaction_commits_every_entry_or_none(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let pid = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Bundled"}]}))
        .await;
    let patient = format!("Patient/{pid}");
    let answer = rest
        .post("", &encounter_and_observation(&patient, "final"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["type"], "transaction-response");
    let entries = answer.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert!(
            entry["response"]["status"]
                .as_str()
                .unwrap()
                .starts_with("201")
        );
        let location = entry["response"]["location"].as_str().unwrap();
        assert!(location.starts_with(&rest.base), "{location}");
        assert_eq!(rest.get(location).await.status, StatusCode::OK);
    }
    let (observations, _) = rest
        .search_all(&format!("Observation?subject={patient}"))
        .await;
    assert_eq!(observations.len(), 1);
    let encounter = observations[0]["encounter"]["reference"].as_str().unwrap();
    assert!(encounter.starts_with("Encounter/"), "{encounter}");

    // One bad entry (an unknown status code): nothing of this one is kept.
    let refused = rest
        .post("", &encounter_and_observation(&patient, "not-a-status"))
        .await;
    refused.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(
        refused.body.to_string().contains("Bundle.entry[1]"),
        "{}",
        refused.body
    );
    let (encounters, _) = rest
        .search_all(&format!("Encounter?subject={patient}"))
        .await;
    assert_eq!(encounters.len(), 1);
}

async fn a_transaction_of_patients_is_atomic_in_identity(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let bundle = |second_birth: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "Pair", "given": ["One"]}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "name": [{"family": "Pair", "given": ["Two"]}], "birthDate": second_birth},
             "request": {"method": "POST", "url": "Patient"}}
        ]})
    };
    rest.post("", &bundle("1990-02-31"))
        .await
        .assert_outcome(StatusCode::BAD_REQUEST);
    assert!(rest.search_all("Patient?family=Pair").await.0.is_empty());
    let key = [("x-idempotency-key", "transaction-pair-1")];
    let done = rest
        .send(Method::POST, "", Some(&bundle("1990-02-28")), &key)
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let retried = rest
        .send(Method::POST, "", Some(&bundle("1990-02-28")), &key)
        .await;
    assert_eq!(retried.body["entry"], done.body["entry"]);
    assert_eq!(rest.search_all("Patient?family=Pair").await.0.len(), 2);
}

async fn a_transaction_of_service_requests_is_atomic_and_a_task_in_it_is_refused(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let pid = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Referred"}]}))
        .await;
    let org = rest
        .create(&json!({"resourceType": "Organization", "name": "Frontier Care NGO"}))
        .await;
    let request = |code: &str| {
        json!({"resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                            "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
                            "subject": {"reference": format!("Patient/{pid}")},
                            "requester": {"reference": format!("Organization/{org}")}},
               "request": {"method": "POST", "url": "ServiceRequest"}})
    };
    let both = json!({"resourceType": "Bundle", "type": "transaction",
                      "entry": [request("11797002"), request("183524004")]});
    let answer = rest.post("", &both).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["entry"].as_array().unwrap().len(), 2);
    let with_task = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        request("409063005"),
        {"resource": {"resourceType": "Task", "status": "completed", "intent": "order"},
         "request": {"method": "POST", "url": "Task"}}
    ]});
    let refused = rest.post("", &with_task).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    assert_eq!(refused.body["resourceType"], "OperationOutcome");
    let (requests, _) = rest
        .search_all(&format!("ServiceRequest?subject=Patient/{pid}"))
        .await;
    assert_eq!(requests.len(), 2);
}

async fn a_batch_answers_each_entry_with_its_own_status(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let pid = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Batched"}]}))
        .await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Organization", "name": "Batch Clinic"},
         "request": {"method": "POST", "url": "Organization"}},
        {"resource": {"resourceType": "Encounter", "status": "planned",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "subject": {"reference": format!("Patient/{pid}")}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"request": {"method": "GET", "url": format!("Patient/{pid}")}},
        {"request": {"method": "GET", "url": "Patient/nobody-here"}},
        {"resource": {"resourceType": "Patient", "birthDate": "not a date"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient?family=Batched"}}
    ]});
    let answer = rest.post("", &batch).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["type"], "batch-response");
    let statuses: Vec<String> = answer.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap()[..3].to_owned())
        .collect();
    assert_eq!(statuses, ["201", "201", "200", "404", "400", "200"]);
    let entries = answer.body["entry"].as_array().unwrap();
    assert_eq!(
        entries[3]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(entries[5]["resource"]["type"], "searchset");
    assert!(
        entries[0]["response"]["etag"]
            .as_str()
            .unwrap()
            .starts_with("W/")
    );
    let (organizations, _) = rest.search_all("Organization?name=Batch").await;
    assert_eq!(organizations.len(), 1);
}

for_each_backend!(
    a_transaction_commits_every_entry_or_none,
    a_transaction_of_patients_is_atomic_in_identity,
    a_batch_answers_each_entry_with_its_own_status,
    a_transaction_of_service_requests_is_atomic_and_a_task_in_it_is_refused,
);
