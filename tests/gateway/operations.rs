//! FHIR operations through the gateway: Patient `$match`, `$merge` and
//! `$unmerge`, `$everything`, and the referral loop (`$refer`,
//! `$transition`).

use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn parameters(parts: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": parts})
}

async fn match_finds_a_romanized_patient_and_explains_the_grade(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let id = rest
        .create(
            &json!({"resourceType": "Patient", "name": [{"given": ["محمد"], "family": "الحسن"}],
                        "birthDate": "1990-05-01", "gender": "male"}),
        )
        .await;
    let asked = parameters(json!([
        {"name": "resource", "resource": {"resourceType": "Patient", "name": [{"given": ["Mohammed"], "family": "Al-Hassan"}], "birthDate": "1990", "gender": "male"}},
        {"name": "count", "valueInteger": 5}
    ]));
    let answer = rest.post("Patient/$match", &asked).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let first = &answer.body["entry"][0];
    assert_eq!(first["resource"]["id"], json!(id));
    assert_eq!(first["fullUrl"], json!(rest.url(&format!("Patient/{id}"))));
    let score = first["search"]["score"].as_f64().unwrap();
    assert!(score > 0.0 && score <= 1.0);
    let extensions = first["search"]["extension"].as_array().unwrap();
    assert!(
        extensions
            .iter()
            .any(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
    );

    let empty = rest
        .post(
            "Patient/$match",
            &parameters(json!([{"name": "resource", "resource": {"resourceType": "Patient"}}])),
        )
        .await;
    empty.assert_outcome(StatusCode::BAD_REQUEST);
    let missing = rest.post("Patient/$match", &parameters(json!([]))).await;
    missing.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(missing.diagnostics().contains("resource"));
    let by_get = rest.get("Patient/$match").await;
    by_get.assert_outcome(StatusCode::METHOD_NOT_ALLOWED);
}

async fn merge_then_everything_on_the_target_includes_the_sources_records(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let source = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Alhasan", "given": ["Muhammad"]}]}))
        .await;
    let target = rest
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Al-Hassan", "given": ["Mohammed"]}]}))
        .await;
    let encounter = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "subject": {"reference": format!("Patient/{source}")}});
    let eid = rest.create(&encounter).await;
    let merge = parameters(json!([
        {"name": "source-patient", "valueReference": {"reference": format!("Patient/{source}")}},
        {"name": "target-patient", "valueReference": {"reference": format!("Patient/{target}")}},
        {"name": "decided-by", "valueString": "Practitioner/case-manager-1"},
        {"name": "reason", "valueString": "same passport seen at both clinics"}
    ]));
    let merged = rest.post("Patient/$merge", &merge).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["parameter"][1]["resource"]["id"], json!(target));
    let everything = rest.get(&format!("Patient/{target}/$everything")).await;
    assert_eq!(everything.status, StatusCode::OK, "{}", everything.body);
    let ids: Vec<&str> = everything.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(ids.contains(&eid.as_str()), "{ids:?}");
    assert!(ids.contains(&source.as_str()), "{ids:?}");

    let undecided = rest
        .post("Patient/$merge", &parameters(json!([
            {"name": "source-patient", "valueReference": {"reference": format!("Patient/{source}")}},
            {"name": "target-patient", "valueReference": {"reference": format!("Patient/{target}")}}
        ])))
        .await;
    undecided.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(undecided.diagnostics().contains("decided-by"));

    let unmerged = rest
        .post("Patient/$unmerge", &parameters(json!([
            {"name": "source-patient", "valueReference": {"reference": format!("Patient/{source}")}},
            {"name": "decided-by", "valueString": "Practitioner/case-manager-1"}
        ])))
        .await;
    assert_eq!(unmerged.status, StatusCode::OK, "{}", unmerged.body);
    let after = rest.get(&format!("Patient/{target}/$everything")).await;
    let ids: Vec<&str> = after.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(!ids.contains(&eid.as_str()), "{ids:?}");
}

async fn a_referral_is_made_and_moved_through_operations(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let ngo = format!(
        "Organization/{}",
        rest.create(&json!({"resourceType": "Organization", "name": "Frontier Care NGO"}))
            .await
    );
    let hospital = format!(
        "Organization/{}",
        rest.create(&json!({"resourceType": "Organization", "name": "Ospedale San Paolo"}))
            .await
    );
    let patient = format!(
        "Patient/{}",
        rest.create(&json!({"resourceType": "Patient", "name": [{"family": "Haile"}]}))
            .await
    );
    let sr = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"reference": patient}, "requester": {"reference": ngo}, "performer": [{"reference": hospital}]});
    let referred = rest
        .send(
            Method::POST,
            "ServiceRequest/$refer",
            Some(&parameters(
                json!([{"name": "serviceRequest", "resource": sr}]),
            )),
            &[("authorization", &RestNode::acting_for(&ngo))],
        )
        .await;
    assert_eq!(referred.status, StatusCode::CREATED, "{}", referred.body);
    let task = referred.body["parameter"][1]["resource"].clone();
    assert_eq!(task["status"], "requested");
    let task_id = task["id"].as_str().unwrap();

    let step = |status: &str| parameters(json!([{"name": "status", "valueCode": status}]));
    let by_ngo = rest
        .send(
            Method::POST,
            &format!("Task/{task_id}/$transition"),
            Some(&step("received")),
            &[
                ("authorization", &RestNode::acting_for(&ngo)),
                ("if-match", "W/\"1\""),
            ],
        )
        .await;
    assert_eq!(by_ngo.status, StatusCode::FORBIDDEN, "{}", by_ngo.body);
    let received = rest
        .send(
            Method::POST,
            &format!("Task/{task_id}/$transition"),
            Some(&step("received")),
            &[
                ("authorization", &RestNode::acting_for(&hospital)),
                ("if-match", "W/\"1\""),
            ],
        )
        .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    assert_eq!(received.body["status"], "received");
    assert_eq!(received.header("etag"), Some("W/\"2\""));
    let stale = rest
        .send(
            Method::POST,
            &format!("Task/{task_id}/$transition"),
            Some(&step("accepted")),
            &[
                ("authorization", &RestNode::acting_for(&hospital)),
                ("if-match", "W/\"1\""),
            ],
        )
        .await;
    stale.assert_outcome(StatusCode::PRECONDITION_FAILED);
    let unconditional = rest
        .send(
            Method::POST,
            &format!("Task/{task_id}/$transition"),
            Some(&step("accepted")),
            &[("authorization", &RestNode::acting_for(&hospital))],
        )
        .await;
    unconditional.assert_outcome(StatusCode::PRECONDITION_REQUIRED);
    assert!(unconditional.diagnostics().contains("If-Match"));
    let skipping = rest
        .send(
            Method::POST,
            &format!("Task/{task_id}/$transition"),
            Some(&step("completed")),
            &[
                ("authorization", &RestNode::acting_for(&hospital)),
                ("if-match", "W/\"2\""),
            ],
        )
        .await;
    skipping.assert_outcome(StatusCode::CONFLICT);
    // A Task changes only through $transition.
    let mut edited: Value = rest.get(&format!("Task/{task_id}")).await.body;
    edited["status"] = json!("completed");
    let put = rest
        .send(Method::PUT, &format!("Task/{task_id}"), Some(&edited), &[])
        .await;
    assert!(put.status.is_client_error(), "{}", put.body);
    assert_eq!(
        rest.get(&format!("Task/{task_id}")).await.body["status"],
        "received"
    );
}

for_each_backend!(
    match_finds_a_romanized_patient_and_explains_the_grade,
    merge_then_everything_on_the_target_includes_the_sources_records,
    a_referral_is_made_and_moved_through_operations,
);
