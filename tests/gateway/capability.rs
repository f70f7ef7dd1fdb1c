//! `GET /fhir/metadata`: every interaction and search parameter the
//! CapabilityStatement lists is exercised here, so that the statement
//! cannot claim something the gateway does not do.

use std::collections::BTreeMap;

use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A minimal valid resource of each type that is created by a plain POST.
fn sample(resource_type: &str, patient: &str, organization: &str) -> Option<Value> {
    let subject = json!({"reference": patient});
    let code = json!({"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]});
    Some(match resource_type {
        "Patient" => json!({"resourceType": "Patient", "name": [{"family": "Capable"}]}),
        "Organization" => json!({"resourceType": "Organization", "name": "Capable Clinic"}),
        "Practitioner" => json!({"resourceType": "Practitioner", "name": [{"family": "Capable"}]}),
        "Encounter" => json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}, "subject": subject}),
        "Observation" => {
            json!({"resourceType": "Observation", "status": "final", "code": code, "subject": subject})
        }
        "Condition" => json!({"resourceType": "Condition", "code": code, "subject": subject}),
        "Communication" => {
            json!({"resourceType": "Communication", "status": "completed", "subject": subject,
            "payload": [{"contentString": "hello"}]})
        }
        "Immunization" => json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
            "patient": subject, "occurrenceDateTime": "2026-01-05"}),
        "AllergyIntolerance" => {
            json!({"resourceType": "AllergyIntolerance", "code": code, "patient": subject})
        }
        "MedicationStatement" => json!({"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": code, "subject": subject}),
        "DocumentReference" => {
            json!({"resourceType": "DocumentReference", "status": "current", "subject": subject,
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}]})
        }
        "Procedure" => json!({"resourceType": "Procedure", "status": "completed", "code": code,
            "subject": subject}),
        "DiagnosticReport" => json!({"resourceType": "DiagnosticReport", "status": "final",
            "code": code, "subject": subject}),
        "MedicationRequest" => json!({"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "medicationCodeableConcept": code, "subject": subject}),
        "CarePlan" => json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": subject}),
        "Goal" => json!({"resourceType": "Goal", "lifecycleStatus": "active",
            "description": {"text": "walk again"}, "subject": subject}),
        "ImagingStudy" => json!({"resourceType": "ImagingStudy", "status": "available",
            "subject": subject}),
        "Claim" | "ExplanationOfBenefit" => {
            corridor_tests::clinic::claim_like(resource_type, patient, "2026-11-29", organization)
        }
        "ServiceRequest" => {
            json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": subject, "requester": {"reference": organization},
            "performer": [{"reference": organization}]})
        }
        // Recorded by the caller's own organization (the test's token's),
        // permitting another.
        "Consent" => json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": subject, "dateTime": "2026-11-29T10:00:00Z",
            "organization": [{"reference": corridor_tests::TEST_ORGANIZATION}],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"reference": organization}}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}}),
        _ => return None,
    })
}

/// A type a reference parameter may point to, as its service declares.
fn reference_target(resource_type: &str, name: &str) -> &'static str {
    let def = corridor_identity::RESOURCES
        .iter()
        .chain(corridor_encounters::RESOURCES)
        .chain(corridor_referrals::RESOURCES)
        .find(|d| d.resource_type == resource_type)
        .expect("a served type");
    match def.params.iter().find(|p| p.name == name).map(|p| p.kind) {
        Some(corridor_store::ParamKind::Reference(targets)) => targets[0],
        other => panic!("{resource_type}.{name} is listed as a reference but declared {other:?}"),
    }
}

/// A value each search parameter type accepts.
fn value_for(kind: &str) -> &'static str {
    match kind {
        "string" => "cap",
        "token" => "x",
        "date" => "ge2020-01-01",
        other => {
            panic!("the statement lists a search parameter type the test does not know: {other}")
        }
    }
}

async fn every_listed_interaction_and_search_parameter_works(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let statement = rest.get("metadata").await;
    assert_eq!(statement.status, StatusCode::OK);
    assert_eq!(statement.body["resourceType"], "CapabilityStatement");
    assert_eq!(statement.body["fhirVersion"], "4.0.1");
    let server = &statement.body["rest"][0];
    let patient = format!(
        "Patient/{}",
        rest.create(&sample("Patient", "", "").unwrap()).await
    );
    let organization = format!(
        "Organization/{}",
        rest.create(&sample("Organization", "", "").unwrap()).await
    );
    // A Task exists only through a referral.
    let referral = rest
        .send(
            Method::POST,
            "ServiceRequest/$refer",
            Some(&json!({"resourceType": "Parameters", "parameter": [
                {"name": "serviceRequest", "resource": sample("ServiceRequest", &patient, &organization).unwrap()}
            ]})),
            &[("authorization", &RestNode::acting_for(&organization))],
        )
        .await;
    assert_eq!(referral.status, StatusCode::CREATED, "{}", referral.body);
    let task_id = referral.body["parameter"][1]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut exercised: BTreeMap<String, usize> = BTreeMap::new();
    for resource in server["resource"].as_array().unwrap() {
        let resource_type = resource["type"].as_str().unwrap();
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let id = if resource_type == "Task" {
            task_id.clone()
        } else if resource_type == "AuditEvent" {
            // Written only by the node: the audit record of the $refer above.
            let found = rest
                .get("AuditEvent?subtype=urn:corridor:operation|$refer")
                .await;
            assert_eq!(found.status, StatusCode::OK, "{}", found.body);
            found.body["entry"][0]["resource"]["id"]
                .as_str()
                .expect("the $refer was audited")
                .to_owned()
        } else {
            let body = sample(resource_type, &patient, &organization).unwrap_or_else(|| {
                panic!("{resource_type} is listed as created by POST, but the test has no sample")
            });
            assert!(interactions.contains(&"create"), "{resource_type}");
            rest.create(&body).await
        };
        for interaction in &interactions {
            let path = format!("{resource_type}/{id}");
            let answer = match *interaction {
                "read" => rest.get(&path).await,
                "vread" => rest.get(&format!("{path}/_history/1")).await,
                "history-instance" => rest.get(&format!("{path}/_history")).await,
                "search-type" => rest.get(&format!("{resource_type}?_id={id}")).await,
                "create" => continue, // done above
                "update" => {
                    let current = rest.get(&path).await.body;
                    rest.send(
                        Method::PUT,
                        &path,
                        Some(&current),
                        &[("if-match", "W/\"1\"")],
                    )
                    .await
                }
                "delete" => continue, // below, last
                other => panic!(
                    "{resource_type}: the statement lists interaction '{other}', which this test does not exercise"
                ),
            };
            assert!(
                answer.status.is_success(),
                "{resource_type} {interaction}: {}",
                answer.body
            );
            *exercised
                .entry(format!("{resource_type} {interaction}"))
                .or_default() += 1;
        }
        for param in resource["searchParam"].as_array().unwrap() {
            let name = param["name"].as_str().unwrap();
            let target;
            let value = match name {
                "_id" => id.as_str(),
                "phone" => "+41791234567",
                _ if param["type"] == "reference" => {
                    target = format!("{}/nobody", reference_target(resource_type, name));
                    target.as_str()
                }
                _ => value_for(param["type"].as_str().unwrap()),
            };
            let answer = rest
                .send(
                    Method::GET,
                    &format!("{resource_type}?{name}={value}"),
                    None,
                    &[("prefer", "handling=strict")],
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{resource_type}?{name}={value}: {}",
                answer.body
            );
            assert_eq!(answer.body["type"], "searchset");
        }
        for include in resource["searchInclude"].as_array().into_iter().flatten() {
            let include = include.as_str().unwrap();
            let answer = rest
                .get(&format!("{resource_type}?_include={include}"))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{include}: {}", answer.body);
        }
        for operation in resource["operation"].as_array().into_iter().flatten() {
            // Each operation is exercised in operations.rs; here it must at
            // least be routed (a bad call gets an OperationOutcome, not 404).
            let name = operation["name"].as_str().unwrap();
            let instance = rest
                .post(
                    &format!("{resource_type}/{id}/${name}"),
                    &json!({"resourceType": "Parameters"}),
                )
                .await;
            let type_level = rest
                .post(
                    &format!("{resource_type}/${name}"),
                    &json!({"resourceType": "Parameters"}),
                )
                .await;
            assert!(
                instance.status != StatusCode::NOT_FOUND
                    || type_level.status != StatusCode::NOT_FOUND,
                "{resource_type} ${name} is listed but not routed: {} / {}",
                instance.body,
                type_level.body
            );
        }
        if interactions.contains(&"delete") {
            let answer = rest
                .send(Method::DELETE, &format!("{resource_type}/{id}"), None, &[])
                .await;
            assert_eq!(
                answer.status,
                StatusCode::NO_CONTENT,
                "{resource_type} delete: {}",
                answer.body
            );
        } else {
            let refused = rest
                .send(Method::DELETE, &format!("{resource_type}/{id}"), None, &[])
                .await;
            assert!(
                refused.status.is_client_error(),
                "{resource_type} delete is not listed but worked"
            );
        }
    }
    assert!(exercised.len() >= 13 * 4, "{exercised:?}");
    for code in ["transaction", "batch"] {
        assert!(
            server["interaction"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["code"] == code),
            "{code}"
        );
    }
}

async fn the_statement_lists_every_type_the_services_own(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let statement = rest.get("metadata").await.body;
    let listed: Vec<&str> = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    let owned: Vec<&str> = corridor_identity::RESOURCES
        .iter()
        .chain(corridor_encounters::RESOURCES)
        .chain(corridor_referrals::RESOURCES)
        .map(|d| d.resource_type)
        .collect();
    assert_eq!(listed, owned);
}

for_each_backend!(
    every_listed_interaction_and_search_parameter_works,
    the_statement_lists_every_type_the_services_own,
);
