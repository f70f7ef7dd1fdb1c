//! Writes: real FHIR data stored and read back, recorded consultations and
//! transactions (all or nothing, urn:uuid references resolved, retries
//! replayed), and the Patient check against the identity service.

use corridor_proto::encounters::v1 as pb;
use corridor_tests::clinic::{self, ACT_CODE, consultation_bundle, record, register_patient};
use corridor_tests::{Backend, Node, expression, fixture, for_each_backend, issue_code};
use serde_json::{Value, json};
use tonic::Code;

use crate::api::{self, count_all, create, read, transaction, try_create, try_update};

/// Every `reference` to a Patient in `value` pointed at `patient_id`.
fn point_patients_at(value: &mut Value, patient_id: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(s) if key == "reference" && s.starts_with("Patient/") => {
                        *s = format!("Patient/{patient_id}");
                    }
                    other => point_patients_at(other, patient_id),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| point_patients_at(i, patient_id)),
        _ => {}
    }
}

const EXAMPLES: &[&str] = &[
    "encounter-example.json",
    "observation-example.json",
    "condition-example.json",
    "communication-example.json",
    "immunization-example.json",
    "allergyintolerance-example.json",
    "medicationstatement-example.json",
    "documentreference-example.json",
];

async fn every_hl7_example_survives_create_then_read(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Example").await;
    for name in EXAMPLES {
        let text = std::fs::read_to_string(fixture(&format!("hl7-r4/{name}"))).expect("fixture");
        let mut example: Value = serde_json::from_str(&text).expect("fixture JSON");
        point_patients_at(&mut example, &patient);
        let created = try_create(&node, &example).await.unwrap_or_else(|status| {
            panic!("{name} refused: {:?}", corridor_tests::outcome(&status))
        });
        let stored: Value = serde_json::from_str(
            &read(&node, &created.resource_type, &created.id)
                .await
                .unwrap()
                .json,
        )
        .unwrap();
        // Everything the example says comes back as it was sent; only id
        // and meta are the server's.
        let mut expected = example.clone();
        let mut got = stored.clone();
        for doc in [&mut expected, &mut got] {
            let object = doc.as_object_mut().unwrap();
            object.remove("id");
            object.remove("meta");
        }
        assert_eq!(got, expected, "{name} changed on the way through");
        assert_eq!(stored["meta"]["versionId"], "1", "{name}");
    }
}

/// The Patient, Organizations and Practitioners of a Synthea bundle are
/// registered in identity; its clinical resources go to encounters as one
/// transaction, references rewritten to the registered ids.
/// Resources by type in a searchset page.
fn count_by_type(bundle: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let kind = entry["resource"]["resourceType"].as_str().unwrap_or("?");
        *counts.entry(kind.to_owned()).or_insert(0) += 1;
    }
    counts
}

async fn synthea_records_store_as_one_transaction(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(fixture("synthea-r4/patients"))
        .expect("Synthea fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "two Synthea patients in the fixtures");
    let owned: Vec<&str> = corridor_encounters::RESOURCES
        .iter()
        .map(|d| d.resource_type)
        .collect();
    for path in &files {
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut registered = std::collections::HashMap::new();
        let mut clinical = Vec::new();
        // What $everything must answer: the whole bundle, the Organization
        // and Practitioner its records name included.
        let mut expected = std::collections::BTreeMap::new();
        for entry in bundle["entry"].as_array().unwrap() {
            let resource = &entry["resource"];
            let kind = resource["resourceType"].as_str().unwrap();
            assert!(
                ["Patient", "Organization", "Practitioner"].contains(&kind)
                    || owned.contains(&kind),
                "{path:?} holds a {kind}, which no service of the node serves"
            );
            *expected.entry(kind.to_owned()).or_insert(0) += 1;
            if ["Patient", "Organization", "Practitioner"].contains(&kind) {
                let created = node
                    .identity
                    .client
                    .clone()
                    .create(corridor_proto::identity::v1::CreateRequest {
                        resource: resource.to_string(),
                        if_none_exist: String::new(),
                    })
                    .await
                    .unwrap_or_else(|s| panic!("{kind} of {path:?}: {s:?}"))
                    .into_inner()
                    .resource
                    .unwrap();
                registered.insert(
                    entry["fullUrl"].as_str().unwrap().to_owned(),
                    format!("{kind}/{}", created.id),
                );
            } else if owned.contains(&kind) {
                clinical.push(entry.clone());
            }
        }
        let mut text =
            json!({ "resourceType": "Bundle", "type": "transaction", "entry": clinical })
                .to_string();
        for (urn, reference) in &registered {
            text = text.replace(&format!("\"{urn}\""), &format!("\"{reference}\""));
        }
        let transaction_bundle: Value = serde_json::from_str(&text).unwrap();
        let response = transaction(&node, &transaction_bundle)
            .await
            .unwrap_or_else(|s| panic!("{path:?}: {:?}", corridor_tests::outcome(&s)));
        let entries = response["entry"].as_array().unwrap();
        assert_eq!(entries.len(), clinical.len(), "{path:?}");
        assert!(
            entries
                .iter()
                .all(|e| e["response"]["status"] == "201 Created"),
            "{path:?}"
        );
        // urn:uuid references between the entries now name stored ids.
        for entry in entries {
            let json = entry["resource"].to_string();
            assert!(
                !json.contains("urn:uuid:"),
                "unresolved reference in {json}"
            );
        }
        // $everything answers exactly the bundle's records of the patient.
        let patient = registered
            .values()
            .find_map(|r| r.strip_prefix("Patient/"))
            .expect("the bundle's Patient")
            .to_owned();
        let everything = node
            .encounters
            .client
            .clone()
            .everything(corridor_proto::encounters::v1::EverythingRequest {
                patient_id: patient,
                since: String::new(),
                count: 1000,
                page_token: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("$everything of {path:?}: {s:?}"))
            .into_inner();
        let page: Value = serde_json::from_str(&everything.bundle.expect("bundle").json).unwrap();
        assert_eq!(count_by_type(&page), expected, "{path:?}");
    }
}

async fn a_recorded_consultation_stores_every_entry_with_references_resolved(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    let recorded = record(&node, &consultation_bundle(&patient)).await.unwrap();
    let response: Value = serde_json::from_str(&recorded.bundle.unwrap().json).unwrap();
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    for entry in entries {
        assert_eq!(entry["response"]["status"], "201 Created");
        assert_eq!(entry["response"]["etag"], "W/\"1\"");
        let location = entry["response"]["location"].as_str().unwrap();
        assert!(location.ends_with("/_history/1"), "{location}");
    }
    let encounter_ref = format!("Encounter/{}", recorded.encounter_id);
    assert_eq!(
        entries[0]["response"]["location"],
        format!("{encounter_ref}/_history/1")
    );
    let observation_id = entries[1]["resource"]["id"].as_str().unwrap();
    let observation: Value = serde_json::from_str(
        &read(&node, "Observation", observation_id)
            .await
            .unwrap()
            .json,
    )
    .unwrap();
    assert_eq!(observation["encounter"]["reference"], encounter_ref);
    assert_eq!(
        observation["subject"]["reference"],
        format!("Patient/{patient}")
    );
    let note_id = entries[5]["resource"]["id"].as_str().unwrap();
    let note: Value = serde_json::from_str(
        &read(&node, "DocumentReference", note_id)
            .await
            .unwrap()
            .json,
    )
    .unwrap();
    assert_eq!(note["context"]["encounter"][0]["reference"], encounter_ref);
    assert_eq!(count_all(&node).await, 6);
}

async fn a_consultation_must_be_virtual_say_its_language_and_link_its_entries(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;

    let mut in_person = consultation_bundle(&patient);
    in_person["entry"][0]["resource"]["class"] = json!({ "system": ACT_CODE, "code": "AMB" });
    let err = record(&node, &in_person).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "Bundle.entry[0].resource.class");

    let mut no_language = consultation_bundle(&patient);
    no_language["entry"][0]["resource"]["extension"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let err = record(&node, &no_language).await.unwrap_err();
    assert_eq!(expression(&err), "Bundle.entry[0].resource.extension");
    assert!(err.message().contains("language"), "{}", err.message());

    let mut no_interpreter_listed = consultation_bundle(&patient);
    no_interpreter_listed["entry"][0]["resource"]["participant"]
        .as_array_mut()
        .unwrap()
        .pop();
    let err = record(&node, &no_interpreter_listed).await.unwrap_err();
    assert_eq!(expression(&err), "Bundle.entry[0].resource.participant");

    let mut stray = consultation_bundle(&patient);
    stray["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("encounter");
    let err = record(&node, &stray).await.unwrap_err();
    assert_eq!(expression(&err), "Bundle.entry[2].resource.encounter");

    assert_eq!(
        count_all(&node).await,
        0,
        "nothing of a refused consultation is stored"
    );
}

async fn a_transaction_with_one_invalid_entry_stores_nothing(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    let mut bundle = consultation_bundle(&patient);
    // The fifth entry's MedicationStatement gets a date that is not one.
    bundle["entry"][4]["resource"]["effectiveDateTime"] = json!("yesterday");
    let err = record(&node, &bundle).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        expression(&err).starts_with("Bundle.entry[4].resource"),
        "{}",
        expression(&err)
    );
    assert_eq!(count_all(&node).await, 0);

    // An entry that fails only in the database (an update of a resource that
    // does not exist) also undoes the creates before it.
    let mut bundle = consultation_bundle(&patient);
    bundle["entry"].as_array_mut().unwrap().push(json!({
        "resource": clinic::virtual_encounter(&patient),
        "request": { "method": "PUT", "url": "Encounter/not-there" },
    }));
    bundle["entry"][6]["resource"]["id"] = json!("not-there");
    let err = api::transaction(&node, &bundle).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        expression(&err).starts_with("Bundle.entry[6]"),
        "{}",
        expression(&err)
    );
    assert_eq!(count_all(&node).await, 0);

    // A reference to a urn:uuid that no entry declares.
    let mut bundle = consultation_bundle(&patient);
    bundle["entry"][1]["resource"]["encounter"]["reference"] =
        json!("urn:uuid:00000000-0000-4000-8000-00000000dead");
    let err = api::transaction(&node, &bundle).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(issue_code(&err), "not-found");
    assert!(
        err.message()
            .contains("urn:uuid:00000000-0000-4000-8000-00000000dead")
    );
    assert_eq!(count_all(&node).await, 0);
}

async fn a_retried_transaction_replays_and_a_conditional_one_creates_nothing_new(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    let bundle = consultation_bundle(&patient);
    let send = |key: &'static str| {
        let mut request = tonic::Request::new(pb::TransactionRequest {
            bundle: bundle.to_string(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        let mut client = node.encounters.client.clone();
        async move { client.transaction(request).await }
    };
    let first = send("consult-2026-11-20-tesfay").await.unwrap();
    let again = send("consult-2026-11-20-tesfay").await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        first.into_inner().bundle.unwrap().json,
        again.into_inner().bundle.unwrap().json,
        "the retry answers exactly as the first time"
    );
    assert_eq!(count_all(&node).await, 6);

    // Without a key, ifNoneExist makes re-posting the same Bundle harmless.
    let mut conditional = consultation_bundle(&patient);
    for (n, entry) in conditional["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        entry["resource"]["identifier"] =
            json!([{ "system": "https://ngo.example/visit", "value": format!("v-77-{n}") }]);
        entry["request"]["ifNoneExist"] =
            json!(format!("identifier=https://ngo.example/visit|v-77-{n}"));
    }
    let first = transaction(&node, &conditional).await.unwrap();
    let second = transaction(&node, &conditional).await.unwrap();
    assert_eq!(count_all(&node).await, 12);
    for (a, b) in first["entry"]
        .as_array()
        .unwrap()
        .iter()
        .zip(second["entry"].as_array().unwrap())
    {
        assert_eq!(a["response"]["status"], "201 Created");
        assert_eq!(b["response"]["status"], "200 OK");
        assert_eq!(a["fullUrl"], b["fullUrl"]);
    }
}

async fn a_write_naming_an_unknown_patient_is_refused_at_that_element(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] },
        "subject": { "reference": "Patient/never-registered" },
        "valueQuantity": { "value": 88, "unit": "/min" },
    });
    let err = try_create(&node, &observation).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "Observation.subject");
    assert_eq!(issue_code(&err), "not-found");
    assert!(err.message().contains("Patient/never-registered"));

    let immunization = json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "115" }] },
        "patient": { "reference": "Patient/never-registered" },
        "occurrenceDateTime": "2026-11-02",
    });
    let err = try_create(&node, &immunization).await.unwrap_err();
    assert_eq!(expression(&err), "Immunization.patient");

    // Another server's Patient, or one hidden in the resource, cannot be
    // checked and is refused too.
    let mut elsewhere = observation.clone();
    elsewhere["subject"]["reference"] = json!("https://other.example/fhir/Patient/1");
    let err = try_create(&node, &elsewhere).await.unwrap_err();
    assert_eq!(expression(&err), "Observation.subject");

    // An update is checked the same way; a deleted patient counts as unknown.
    let patient = register_patient(&node, "Tesfay").await;
    let mut good = observation.clone();
    good["subject"]["reference"] = json!(format!("Patient/{patient}"));
    let stored = create(&node, &good).await;
    node.identity
        .client
        .clone()
        .delete(corridor_proto::identity::v1::DeleteRequest {
            resource_type: "Patient".into(),
            id: patient.clone(),
            if_match: String::new(),
        })
        .await
        .unwrap();
    let err = try_update(&node, "Observation", &stored.id, &good)
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "Observation.subject");

    // In a transaction, the entry is named.
    let mut bundle = consultation_bundle("never-registered");
    bundle["entry"][0]["resource"]["subject"]["reference"] = json!(format!("Patient/{patient}"));
    let err = api::transaction(&node, &bundle).await.unwrap_err();
    assert!(
        expression(&err).starts_with("Bundle.entry["),
        "{}",
        expression(&err)
    );
    assert_eq!(count_all(&node).await, 1);
}

async fn with_identity_stopped_writes_fail_unavailable_and_store_nothing(backend: Backend) {
    let Some(mut node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    node.identity.halt().await;
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] },
        "subject": { "reference": format!("Patient/{patient}") },
    });
    let err = try_create(&node, &observation).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("identity"), "{}", err.message());
    corridor_tests::outcome(&err);

    let err = record(&node, &consultation_bundle(&patient))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(count_all(&node).await, 0);
}

for_each_backend!(
    every_hl7_example_survives_create_then_read,
    synthea_records_store_as_one_transaction,
    a_recorded_consultation_stores_every_entry_with_references_resolved,
    a_consultation_must_be_virtual_say_its_language_and_link_its_entries,
    a_transaction_with_one_invalid_entry_stores_nothing,
    a_retried_transaction_replays_and_a_conditional_one_creates_nothing_new,
    a_write_naming_an_unknown_patient_is_refused_at_that_element,
    with_identity_stopped_writes_fail_unavailable_and_store_nothing,
);
