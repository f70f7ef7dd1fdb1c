//! The audit trail: every access leaves exactly one AuditEvent naming who,
//! what, when and how it ended; "who has seen this person's record" is one
//! search; the trail cannot be altered; and no access goes unaudited: a
//! change whose record cannot be written is not stored.

use corridor_auth::keys::SigningKey;
use corridor_proto::encounters::v1 as enc;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_runtime::auth::BREAK_GLASS;
use corridor_tests::rest::RestNode;
use corridor_tests::{
    ALL_SCOPES, Backend, FullNode, as_admin, claims, connect_with, for_each_backend, sign, token,
    token_settings, with_token,
};
use serde_json::{Value, json};
use tonic::Code;

const ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";

async fn organization(node: &FullNode, name: &str, kind: &str) -> String {
    let id = node
        .identity
        .register(&json!({"resourceType": "Organization", "name": name,
            "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}]}))
        .await;
    format!("Organization/{id}")
}

/// The AuditEvents a search finds, as the node's operator, oldest first.
async fn audit_events(node: &FullNode, params: &[(&str, &str)]) -> Vec<Value> {
    let mut parameters: Vec<SearchParameter> = params
        .iter()
        .map(|(n, v)| SearchParameter {
            name: (*n).to_owned(),
            value: (*v).to_owned(),
        })
        .collect();
    parameters.push(SearchParameter {
        name: "_sort".to_owned(),
        value: "date".to_owned(),
    });
    let bundle = node
        .identity
        .client
        .clone()
        .search(as_admin(pb::SearchRequest {
            resource_type: "AuditEvent".to_owned(),
            parameters,
            page_token: String::new(),
        }))
        .await
        .expect("the operator searches the audit trail")
        .into_inner()
        .bundle
        .expect("bundle");
    let value: Value = serde_json::from_str(&bundle.json).unwrap();
    value["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

fn entities(event: &Value) -> Vec<String> {
    event["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["what"]["reference"].as_str().map(str::to_owned))
        .collect()
}

/// (action, subtype, outcome) of each event.
fn summary(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["subtype"][0]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn triple(action: &str, subtype: &str, outcome: &str) -> (String, String, String) {
    (action.to_owned(), subtype.to_owned(), outcome.to_owned())
}

async fn every_access_leaves_exactly_one_audit_event_with_its_agent_and_patient(backend: Backend) {
    let Some(mut node) = FullNode::spawn(backend).await else {
        return;
    };
    let clinic = organization(&node, "Field clinic", "cg").await;
    let hospital = organization(&node, "Border hospital", "prov").await;
    let as_clinic = token(&clinic, ALL_SCOPES);
    let as_hospital = token(&hospital, ALL_SCOPES);
    let patient = node
        .identity
        .register(&json!({"resourceType": "Patient", "name": [{"family": "Haddad"}]}))
        .await;
    let patient_ref = format!("Patient/{patient}");
    let encounter = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "subject": {"reference": patient_ref}});
    let mut client = node.encounters.client.clone();

    // The clinic writes, reads, searches and updates its record.
    let created = client
        .create(with_token(
            &as_clinic,
            enc::CreateRequest {
                resource: encounter.to_string(),
                if_none_exist: String::new(),
            },
        ))
        .await
        .expect("created")
        .into_inner()
        .resource
        .expect("resource");
    let record = format!("Encounter/{}", created.id);
    let read = |token: &str, break_glass: Option<&str>| {
        let mut request = with_token(
            token,
            enc::ReadRequest {
                resource_type: "Encounter".to_owned(),
                id: created.id.clone(),
            },
        );
        if let Some(reason) = break_glass {
            request
                .metadata_mut()
                .insert(BREAK_GLASS, reason.parse().unwrap());
        }
        let mut client = node.encounters.client.clone();
        async move { client.read(request).await.map(|_| ()) }
    };
    read(&as_clinic, None).await.expect("the clinic reads it");
    client
        .search(with_token(
            &as_clinic,
            enc::SearchRequest {
                resource_type: "Encounter".to_owned(),
                parameters: vec![SearchParameter {
                    name: "patient".to_owned(),
                    value: patient_ref.clone(),
                }],
                page_token: String::new(),
            },
        ))
        .await
        .expect("the clinic searches");
    let mut changed = encounter.clone();
    changed["id"] = json!(created.id);
    changed["status"] = json!("cancelled");
    client
        .update(with_token(
            &as_clinic,
            enc::UpdateRequest {
                resource_type: "Encounter".to_owned(),
                id: created.id.clone(),
                resource: changed.to_string(),
                if_match: String::new(),
            },
        ))
        .await
        .expect("the clinic updates it");
    // The hospital has no relationship: refused twice, then it breaks the
    // glass.
    assert_eq!(
        read(&as_hospital, None).await.unwrap_err().code(),
        Code::NotFound
    );
    let err = client
        .delete(with_token(
            &as_hospital,
            enc::DeleteRequest {
                resource_type: "Encounter".to_owned(),
                id: created.id.clone(),
                if_match: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    read(&as_hospital, Some("unconscious on arrival"))
        .await
        .expect("break-glass");

    let by_clinic = audit_events(&node, &[("agent", &clinic)]).await;
    assert_eq!(
        summary(&by_clinic),
        [
            triple("C", "create", "0"),
            triple("R", "read", "0"),
            triple("E", "search-type", "0"),
            triple("U", "update", "0"),
        ],
        "one event per access of the clinic"
    );
    for event in &by_clinic {
        assert!(entities(event).contains(&patient_ref), "{event}");
        assert_eq!(event["agent"][0]["altId"], "test-client");
        assert_eq!(
            event["source"]["observer"]["display"],
            "corridor encounters"
        );
    }
    assert!(entities(&by_clinic[1]).contains(&record));
    assert_eq!(
        by_clinic[2]["entity"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e["description"].as_str()),
        Some(format!("Encounter?patient={patient_ref}").as_str())
    );
    let by_hospital = audit_events(&node, &[("agent", &hospital)]).await;
    assert_eq!(
        summary(&by_hospital),
        [
            triple("R", "read", "4"),
            triple("D", "delete", "4"),
            triple("R", "read", "0"),
        ],
        "refused attempts are audited too"
    );
    assert_eq!(
        by_hospital[2]["purposeOfEvent"][0]["coding"][0]["code"],
        "BTG"
    );
    assert_eq!(
        by_hospital[2]["purposeOfEvent"][0]["text"],
        "unconscious on arrival"
    );
    // Who has seen this person's record: one search.
    let about_patient = audit_events(&node, &[("patient", &patient_ref), ("action", "R")]).await;
    let readers: Vec<&str> = about_patient
        .iter()
        .filter(|e| e["outcome"] == "0")
        .filter_map(|e| e["agent"][0]["who"]["reference"].as_str())
        .collect();
    assert_eq!(readers, [clinic.as_str(), hospital.as_str()]);
    // A partner sees its own trail only.
    let own = node
        .identity
        .client
        .clone()
        .search(with_token(
            &as_clinic,
            pb::SearchRequest {
                resource_type: "AuditEvent".to_owned(),
                parameters: vec![],
                page_token: String::new(),
            },
        ))
        .await
        .expect("the clinic reads its trail")
        .into_inner()
        .bundle
        .expect("bundle");
    assert_eq!(own.total, 4, "the clinic's own four accesses");
    // Without identity, no access can be audited, so none is made.
    node.identity.halt().await;
    let err = read(&as_clinic, None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

async fn the_audit_trail_cannot_be_written_changed_or_deleted_through_the_api(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    rest.create(&json!({"resourceType": "Patient", "name": [{"family": "Okafor"}]}))
        .await;
    let found = rest.get("AuditEvent?action=C").await;
    let mut event = found.body["entry"][0]["resource"].clone();
    let id = event["id"]
        .as_str()
        .expect("the create was audited")
        .to_owned();
    // Not even the node's operator (the suite's token) can.
    event["outcome"] = json!("8");
    rest.send(
        reqwest::Method::PUT,
        &format!("AuditEvent/{id}"),
        Some(&event),
        &[],
    )
    .await
    .assert_outcome(reqwest::StatusCode::FORBIDDEN);
    rest.send(
        reqwest::Method::DELETE,
        &format!("AuditEvent/{id}"),
        None,
        &[],
    )
    .await
    .assert_outcome(reqwest::StatusCode::FORBIDDEN);
    let mut forged = event.clone();
    forged.as_object_mut().unwrap().remove("id");
    forged.as_object_mut().unwrap().remove("meta");
    let refused = rest.post("AuditEvent", &forged).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": forged, "request": {"method": "POST", "url": "AuditEvent"}}]});
    let refused = rest.post("", &bundle).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let unchanged = rest.get(&format!("AuditEvent/{id}")).await;
    assert_eq!(unchanged.body["meta"]["versionId"], "1");
    assert_eq!(unchanged.body["outcome"], "0");
}

async fn token_requests_are_audited_issued_or_refused(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let org = organization(&node, "Ospedale San Paolo", "prov").await;
    let key = SigningKey::generate().unwrap();
    node.identity
        .client
        .clone()
        .register_client(as_admin(pb::RegisterClientRequest {
            client_id: "hospital-ehr".to_owned(),
            organization: org.clone(),
            jwks: json!({"keys": [key.jwk]}).to_string(),
            scopes: "system/Patient.rs".to_owned(),
            registered_by: "Practitioner/node-admin".to_owned(),
            require_certificate: false,
        }))
        .await
        .expect("registered");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = corridor_auth::tokens::sign_assertion(
        &key,
        &json!({"iss": "hospital-ehr", "sub": "hospital-ehr", "aud": token_settings().token_url,
                "exp": now + 240, "jti": "once"}),
    )
    .unwrap();
    let mut anonymous = IdentityServiceClient::new(connect_with(node.identity.addr, None).await);
    let request = || pb::TokenRequest {
        grant_type: "client_credentials".to_owned(),
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        client_assertion: assertion.clone(),
        scope: String::new(),
    };
    anonymous.token(request()).await.expect("issued");
    let replay = anonymous.token(request()).await.unwrap_err();
    assert_eq!(replay.code(), Code::Unauthenticated);
    let events = audit_events(&node, &[("altid", "hospital-ehr")]).await;
    assert_eq!(
        summary(&events),
        [triple("E", "$token", "0"), triple("E", "$token", "4")]
    );
    assert_eq!(events[1]["agent"][0]["who"]["reference"], org);
}

/// An audit trail that takes nothing, as one that cannot be reached.
#[derive(Debug)]
struct Unreachable;

impl corridor_runtime::audit::Audit for Unreachable {
    fn record(&self, _: corridor_runtime::audit::Record) -> corridor_runtime::audit::Recording<'_> {
        Box::pin(async {
            Err(corridor_runtime::link::unreachable(
                "identity",
                "to record",
                "test",
            ))
        })
    }

    fn record_within(
        &self,
        _: corridor_runtime::audit::Record,
    ) -> corridor_runtime::audit::RecordingWithin<'_> {
        Box::pin(async {
            Err(corridor_runtime::link::unreachable(
                "identity",
                "to record",
                "test",
            ))
        })
    }
}

/// An audit trail that records every write it is shown.
#[derive(Debug, Default)]
struct Kept(std::sync::Mutex<Vec<corridor_runtime::audit::Record>>);

impl corridor_runtime::audit::Audit for Kept {
    fn record(
        &self,
        record: corridor_runtime::audit::Record,
    ) -> corridor_runtime::audit::Recording<'_> {
        self.0.lock().unwrap().push(record);
        Box::pin(async { Ok(()) })
    }

    fn record_within(
        &self,
        record: corridor_runtime::audit::Record,
    ) -> corridor_runtime::audit::RecordingWithin<'_> {
        self.0.lock().unwrap().push(record);
        Box::pin(async { Ok(None) })
    }
}

async fn a_change_whose_audit_record_cannot_be_written_is_not_stored(backend: Backend) {
    use corridor_runtime::auth::{Authenticator, OwnKeys, Published, acting_as};
    let Some(db) = corridor_tests::TestDatabase::new(backend).await else {
        return;
    };
    let store = corridor_store::Store::connect(
        &corridor_tests::service_config(&db, corridor_encounters::SCHEMA).store,
        corridor_encounters::RESOURCES,
    )
    .await
    .expect("store");
    let settings = token_settings();
    let caller = Authenticator::new(std::sync::Arc::new(OwnKeys(Published {
        jwks: settings.jwks(),
        issuer: settings.issuer.clone(),
    })))
    .authenticate(&token("Organization/clinic", ALL_SCOPES))
    .await
    .expect("a caller");
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "temperature"}, "subject": {"reference": "Patient/p1"}})
    .to_string();

    let failing = corridor_runtime::resources::Resources::new(store.clone(), Default::default())
        .with_audit(std::sync::Arc::new(Unreachable));
    let refused = acting_as(
        caller.clone(),
        failing.create(&observation, "", Some("k-1")),
    )
    .await
    .expect_err("no audit record, no change");
    assert!(
        matches!(
            refused,
            corridor_runtime::ApiError::Store(corridor_store::StoreError::Unwitnessed(_))
        ),
        "{refused:?}"
    );
    let bundle = acting_as(caller.clone(), async {
        corridor_runtime::resources::Resources::new(store.clone(), Default::default())
            .search("Observation", &[], "")
            .await
    })
    .await
    .expect("search");
    let found: Value = serde_json::from_str(&bundle.json).unwrap();
    assert_eq!(found["total"], 0, "the change was rolled back: {found}");

    // With the audit trail back, the same request (same idempotency key)
    // is stored, and recorded once, inside its own transaction.
    let kept = std::sync::Arc::new(Kept::default());
    let working = corridor_runtime::resources::Resources::new(store.clone(), Default::default())
        .with_audit(kept.clone());
    let created = acting_as(caller, working.create(&observation, "", Some("k-1")))
        .await
        .expect("stored and audited");
    let records = kept.0.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0]
            .entities
            .contains(&format!("Observation/{}", created.stored.id)),
        "{records:?}"
    );
    assert!(records[0].entities.contains(&"Patient/p1".to_owned()));
    store.close().await;
}

async fn an_operation_refused_for_its_scope_leaves_a_refused_audit_event(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let reader = sign(&corridor_auth::AccessClaims {
        sub: "reading-client".to_owned(),
        ..claims("Organization/clinic", "system/Patient.rs system/Task.r")
    });
    let denied = node
        .identity
        .client
        .clone()
        .merge(with_token(
            &reader,
            pb::MergeRequest {
                source_id: "a".to_owned(),
                target_id: "b".to_owned(),
                decided_by: "Practitioner/x".to_owned(),
                reason: String::new(),
            },
        ))
        .await
        .expect_err("$merge needs Patient.u");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = node
        .referrals
        .client
        .clone()
        .transition(with_token(
            &reader,
            corridor_proto::referrals::v1::TransitionRequest {
                task_id: "t".to_owned(),
                if_match: "1".to_owned(),
                status: "accepted".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("$transition needs Task.u");
    assert_eq!(denied.code(), Code::PermissionDenied);
    for subtype in ["$merge", "$transition"] {
        let events =
            audit_events(&node, &[("altid", "reading-client"), ("subtype", subtype)]).await;
        assert_eq!(
            events.len(),
            1,
            "one event for the refused {subtype}: {events:?}"
        );
        assert_eq!(events[0]["outcome"], "4", "{events:?}");
        assert!(
            events[0]["outcomeDesc"]
                .as_str()
                .is_some_and(|d| d.contains("scope")),
            "{events:?}"
        );
    }
}

async fn a_call_refused_for_its_token_leaves_an_audit_event_that_names_nobody(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    // A token the node did not sign, claiming to be some client's.
    let stranger = corridor_auth::NodeKeys::generate().expect("a key");
    let forged = corridor_auth::tokens::issue(
        &stranger,
        &corridor_auth::AccessClaims {
            sub: "hospital-ehr".to_owned(),
            ..claims("Organization/clinic", ALL_SCOPES)
        },
    )
    .expect("signed");
    let refused =
        corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient::new(
            connect_with(node.encounters.addr, Some(&forged)).await,
        )
        .search(enc::SearchRequest {
            resource_type: "Encounter".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("a forged token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = IdentityServiceClient::new(connect_with(node.identity.addr, None).await)
        .read(pb::ReadRequest {
            resource_type: "Patient".to_owned(),
            id: "anyone".to_owned(),
        })
        .await
        .expect_err("no token, no read");
    assert_eq!(refused.code(), Code::Unauthenticated);
    // Recorded in the background: wait for both.
    let start = std::time::Instant::now();
    let events = loop {
        let events = audit_events(&node, &[("altid", "unauthenticated")]).await;
        if events.len() >= 2 || start.elapsed() > std::time::Duration::from_secs(10) {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(events.len(), 2, "{events:?}");
    let of = |method: &str| {
        events
            .iter()
            .find(|e| e["subtype"][0]["code"] == method)
            .unwrap_or_else(|| panic!("an event for {method}: {events:?}"))
    };
    let forged_call = of("corridor.encounters.v1.EncountersService/Search");
    assert_eq!(forged_call["outcome"], "4");
    assert_eq!(forged_call["agent"][0]["name"], "unauthenticated");
    assert!(
        forged_call["agent"][0].get("who").is_none(),
        "no organization was proven"
    );
    let description = forged_call["outcomeDesc"].as_str().unwrap_or_default();
    assert!(
        description.contains("hospital-ehr") && description.contains("unverified"),
        "{description}"
    );
    assert_eq!(
        forged_call["source"]["observer"]["display"],
        "corridor encounters"
    );
    let anonymous = of("corridor.identity.v1.IdentityService/Read");
    assert_eq!(
        anonymous["source"]["observer"]["display"],
        "corridor identity"
    );
}

for_each_backend!(
    a_call_refused_for_its_token_leaves_an_audit_event_that_names_nobody,
    an_operation_refused_for_its_scope_leaves_a_refused_audit_event,
    a_change_whose_audit_record_cannot_be_written_is_not_stored,
    every_access_leaves_exactly_one_audit_event_with_its_agent_and_patient,
    the_audit_trail_cannot_be_written_changed_or_deleted_through_the_api,
    token_requests_are_audited_issued_or_refused,
);
