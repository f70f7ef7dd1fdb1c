//! The authorization matrix: two NGOs and two hospitals, with and without
//! referrals, with permitting and denying Consents; each interaction on each
//! resource type asserted allowed or denied for each of them, and searches
//! checked for leaks in their results and totals.
//!
//! The cast:
//! - NGO A (a community group) registers three patients and records their
//!   consultations: P1 (Encounter E1, Observation O1), P2 (E2) and P3 (E3).
//! - NGO A refers P1 and P2 to Hospital 1 (a provider).
//! - P1 permits Hospital 2 by name. P2 denies Hospital 1 (which wins over
//!   the referral) and permits every provider by kind. P3 consents to
//!   nothing.
//! - NGO B (a community group) has no relationship with anyone.

use corridor_proto::encounters::v1 as enc;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_proto::referrals::v1 as refpb;
use corridor_runtime::auth::BREAK_GLASS;
use corridor_tests::referral::{Parties, service_request};
use corridor_tests::{ALL_SCOPES, Backend, FullNode, for_each_backend, token, with_token};
use serde_json::{Value, json};
use tonic::Code;

const ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";

/// An organization of the cast and its partner token.
struct Party {
    name: &'static str,
    org: String,
    token: String,
}

async fn organization(node: &FullNode, name: &'static str, kind: &str) -> Party {
    let id = node
        .identity
        .register(
            &json!({"resourceType": "Organization", "name": name, "active": true,
            "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}]}),
        )
        .await;
    let org = format!("Organization/{id}");
    Party {
        name,
        token: token(&org, ALL_SCOPES),
        org,
    }
}

fn encounter(patient: &str) -> Value {
    json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "subject": {"reference": format!("Patient/{patient}")}})
}

fn observation(patient: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")}})
}

/// A Consent of `patient` recorded by `recorder`: `kind` (permit or deny)
/// for `actor`, a reference or an organization kind.
fn consent(patient: &str, recorder: &str, kind: &str, actor: Value) -> Value {
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2026-11-29T10:00:00Z",
        "organization": [{"reference": recorder}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": kind, "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
            "reference": actor}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}})
}

struct World {
    node: FullNode,
    ngo_a: Party,
    ngo_b: Party,
    hospital_1: Party,
    hospital_2: Party,
    patients: [String; 3],
    /// E1, O1, E2, E3 as (type, id).
    records: Vec<(&'static str, String)>,
    tasks: Vec<String>,
    service_requests: Vec<String>,
    consents: Vec<String>,
}

async fn create_clinical(node: &FullNode, party: &Party, resource: &Value) -> String {
    node.encounters
        .client
        .clone()
        .create(with_token(
            &party.token,
            enc::CreateRequest {
                resource: resource.to_string(),
                if_none_exist: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("{} records {}: {s:?}", party.name, resource["resourceType"]))
        .into_inner()
        .resource
        .expect("resource")
        .id
}

async fn record_consent(
    node: &FullNode,
    party: &Party,
    resource: &Value,
) -> Result<String, tonic::Status> {
    Ok(node
        .identity
        .client
        .clone()
        .create(with_token(
            &party.token,
            pb::CreateRequest {
                resource: resource.to_string(),
                if_none_exist: String::new(),
            },
        ))
        .await?
        .into_inner()
        .resource
        .expect("resource")
        .id)
}

async fn world(backend: Backend) -> Option<World> {
    let node = FullNode::spawn(backend).await?;
    let ngo_a = organization(&node, "NGO A", "cg").await;
    let ngo_b = organization(&node, "NGO B", "cg").await;
    let hospital_1 = organization(&node, "Hospital 1", "prov").await;
    let hospital_2 = organization(&node, "Hospital 2", "prov").await;
    let mut patients = Vec::new();
    for family in ["Haddad", "Okafor", "Tesfay"] {
        patients.push(
            node.identity
                .register(&json!({"resourceType": "Patient", "name": [{"family": family}]}))
                .await,
        );
    }
    let patients: [String; 3] = patients.try_into().expect("three");
    let records = vec![
        (
            "Encounter",
            create_clinical(&node, &ngo_a, &encounter(&patients[0])).await,
        ),
        (
            "Observation",
            create_clinical(&node, &ngo_a, &observation(&patients[0])).await,
        ),
        (
            "Encounter",
            create_clinical(&node, &ngo_a, &encounter(&patients[1])).await,
        ),
        (
            "Encounter",
            create_clinical(&node, &ngo_a, &encounter(&patients[2])).await,
        ),
    ];
    let parties = Parties {
        ngo: ngo_a.org.clone(),
        hospital: hospital_1.org.clone(),
    };
    let mut tasks = Vec::new();
    let mut service_requests = Vec::new();
    for patient in &patients[..2] {
        let made = node
            .referrals
            .client
            .clone()
            .create_referral(with_token(
                &ngo_a.token,
                refpb::CreateReferralRequest {
                    service_request: service_request(&parties, &format!("Patient/{patient}"))
                        .to_string(),
                    draft: false,
                },
            ))
            .await
            .expect("NGO A refers")
            .into_inner();
        service_requests.push(made.service_request.expect("sr").id);
        tasks.push(made.task.expect("task").id);
    }
    let consents = vec![
        record_consent(
            &node,
            &ngo_a,
            &consent(
                &patients[0],
                &ngo_a.org,
                "permit",
                json!({"reference": hospital_2.org}),
            ),
        )
        .await
        .expect("P1 permits Hospital 2"),
        record_consent(
            &node,
            &ngo_a,
            &consent(
                &patients[1],
                &ngo_a.org,
                "deny",
                json!({"reference": hospital_1.org}),
            ),
        )
        .await
        .expect("P2 denies Hospital 1"),
        record_consent(
            &node,
            &ngo_a,
            &consent(
                &patients[1],
                &ngo_a.org,
                "permit",
                json!({"identifier": {"system": ORG_TYPE, "value": "prov"}}),
            ),
        )
        .await
        .expect("P2 permits providers"),
    ];
    Some(World {
        node,
        ngo_a,
        ngo_b,
        hospital_1,
        hospital_2,
        patients,
        records,
        tasks,
        service_requests,
        consents,
    })
}

impl World {
    /// `party` sends the revocation (status inactive) of the first Consent:
    /// NGO A's, which lets Hospital 2 read the first patient's records.
    async fn revoke_first_consent(&self, party: &Party) -> Result<(), tonic::Status> {
        let mut revoked = consent(
            &self.patients[0],
            &self.ngo_a.org,
            "permit",
            json!({"reference": self.hospital_2.org}),
        );
        revoked["id"] = json!(self.consents[0]);
        revoked["status"] = json!("inactive");
        self.node
            .identity
            .client
            .clone()
            .update(with_token(
                &party.token,
                pb::UpdateRequest {
                    resource_type: "Consent".to_owned(),
                    id: self.consents[0].clone(),
                    resource: revoked.to_string(),
                    if_match: String::new(),
                },
            ))
            .await
            .map(|_| ())
    }

    fn parties(&self) -> [&Party; 4] {
        [&self.ngo_a, &self.ngo_b, &self.hospital_1, &self.hospital_2]
    }

    async fn read_clinical(
        &self,
        party: &Party,
        resource_type: &str,
        id: &str,
    ) -> Result<(), tonic::Status> {
        self.node
            .encounters
            .client
            .clone()
            .read(with_token(
                &party.token,
                enc::ReadRequest {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn history_clinical(
        &self,
        party: &Party,
        resource_type: &str,
        id: &str,
    ) -> Result<(), tonic::Status> {
        self.node
            .encounters
            .client
            .clone()
            .history(with_token(
                &party.token,
                enc::HistoryRequest {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    count: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .map(|_| ())
    }

    /// Ids and total of a search of the encounters service as `party`.
    async fn search_clinical(
        &self,
        party: &Party,
        resource_type: &str,
        params: &[(&str, &str)],
    ) -> (Vec<String>, i64) {
        let bundle = self
            .node
            .encounters
            .client
            .clone()
            .search(with_token(
                &party.token,
                enc::SearchRequest {
                    resource_type: resource_type.to_owned(),
                    parameters: params
                        .iter()
                        .map(|(n, v)| SearchParameter {
                            name: (*n).to_owned(),
                            value: (*v).to_owned(),
                        })
                        .collect(),
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("{} searches {resource_type}: {s:?}", party.name))
            .into_inner()
            .bundle
            .expect("bundle");
        (ids(&bundle.json), bundle.total)
    }

    async fn update_clinical(
        &self,
        party: &Party,
        resource_type: &str,
        id: &str,
    ) -> Result<(), tonic::Status> {
        let mut resource = if resource_type == "Encounter" {
            encounter(&self.patients[0])
        } else {
            observation(&self.patients[0])
        };
        resource["id"] = json!(id);
        self.node
            .encounters
            .client
            .clone()
            .update(with_token(
                &party.token,
                enc::UpdateRequest {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    resource: resource.to_string(),
                    if_match: String::new(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn delete_clinical(
        &self,
        party: &Party,
        resource_type: &str,
        id: &str,
    ) -> Result<(), tonic::Status> {
        self.node
            .encounters
            .client
            .clone()
            .delete(with_token(
                &party.token,
                enc::DeleteRequest {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    if_match: String::new(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn read_referral(
        &self,
        party: &Party,
        resource_type: &str,
        id: &str,
    ) -> Result<(), tonic::Status> {
        self.node
            .referrals
            .client
            .clone()
            .read(with_token(
                &party.token,
                refpb::ReadRequest {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn search_referrals(&self, party: &Party, resource_type: &str) -> (Vec<String>, i64) {
        let bundle = self
            .node
            .referrals
            .client
            .clone()
            .search(with_token(
                &party.token,
                refpb::SearchRequest {
                    resource_type: resource_type.to_owned(),
                    parameters: vec![],
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("{} searches {resource_type}: {s:?}", party.name))
            .into_inner()
            .bundle
            .expect("bundle");
        (ids(&bundle.json), bundle.total)
    }

    async fn search_identity(&self, party: &Party, resource_type: &str) -> (Vec<String>, i64) {
        let bundle = self
            .node
            .identity
            .client
            .clone()
            .search(with_token(
                &party.token,
                pb::SearchRequest {
                    resource_type: resource_type.to_owned(),
                    parameters: vec![],
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("{} searches {resource_type}: {s:?}", party.name))
            .into_inner()
            .bundle
            .expect("bundle");
        (ids(&bundle.json), bundle.total)
    }
}

fn ids(bundle: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(bundle).expect("bundle JSON");
    let mut ids: Vec<String> = value["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Assert `result` is allowed (`true`) or refused as `code`.
fn expect(result: Result<(), tonic::Status>, allowed: bool, code: Code, what: &str) {
    match (result, allowed) {
        (Ok(()), true) => {}
        (Err(status), false) => assert_eq!(status.code(), code, "{what}: {status:?}"),
        (Ok(()), false) => panic!("{what}: allowed, but must be refused with {code:?}"),
        (Err(status), true) => panic!("{what}: refused, but must be allowed: {status:?}"),
    }
}

async fn clinical_records_are_read_searched_and_changed_by_relationship_and_consent(
    backend: Backend,
) {
    let Some(w) = world(backend).await else {
        return;
    };
    let [e1, o1, e2, e3] = [0, 1, 2, 3].map(|i| w.records[i].1.clone());
    // Who may read each record: [NGO A, NGO B, Hospital 1, Hospital 2].
    let readable: [(&str, &String, [bool; 4], &str); 4] = [
        (
            "Encounter",
            &e1,
            [true, false, true, true],
            "E1 of P1: writer, referral, consent by name",
        ),
        (
            "Observation",
            &o1,
            [true, false, true, true],
            "O1 of P1: as E1",
        ),
        (
            "Encounter",
            &e2,
            [true, false, false, true],
            "E2 of P2: the denial beats Hospital 1's referral; providers permitted by kind",
        ),
        (
            "Encounter",
            &e3,
            [true, false, false, false],
            "E3 of P3: only its writer",
        ),
    ];
    for (resource_type, id, allowed, why) in &readable {
        for (party, allowed) in w.parties().into_iter().zip(allowed) {
            let what = format!("{} reads {resource_type} ({why})", party.name);
            expect(
                w.read_clinical(party, resource_type, id).await,
                *allowed,
                Code::NotFound,
                &what,
            );
            let what = format!(
                "{} reads the history of {resource_type} ({why})",
                party.name
            );
            expect(
                w.history_clinical(party, resource_type, id).await,
                *allowed,
                Code::NotFound,
                &what,
            );
        }
    }
    // Searches find exactly what each may read, and count nothing else.
    for (index, party) in w.parties().into_iter().enumerate() {
        for resource_type in ["Encounter", "Observation"] {
            let expected: Vec<String> = sorted(
                readable
                    .iter()
                    .filter(|(t, _, allowed, _)| *t == resource_type && allowed[index])
                    .map(|(_, id, _, _)| (*id).clone())
                    .collect(),
            );
            let (found, total) = w.search_clinical(party, resource_type, &[]).await;
            assert_eq!(found, expected, "{} searches {resource_type}", party.name);
            assert_eq!(
                total,
                expected.len() as i64,
                "{} counts {resource_type}",
                party.name
            );
            let (_, counted) = w
                .search_clinical(party, resource_type, &[("_count", "0")])
                .await;
            assert_eq!(
                counted,
                expected.len() as i64,
                "{} counts {resource_type} with _count=0",
                party.name
            );
        }
        // A search by a Patient the caller may not see finds nothing, and
        // says nothing about whether there is anything.
        let p2 = format!("Patient/{}", w.patients[1]);
        let (found, total) = w
            .search_clinical(party, "Encounter", &[("patient", &p2)])
            .await;
        let sees_e2 = readable[2].2[index];
        assert_eq!(
            (found.is_empty(), total == 0),
            (!sees_e2, !sees_e2),
            "{} searches P2's Encounters",
            party.name
        );
    }
    // Only the writer changes a record: one who may read it is refused
    // (PERMISSION_DENIED), one who may not is told there is nothing.
    for (party, code) in [
        (&w.ngo_b, Code::NotFound),
        (&w.hospital_1, Code::PermissionDenied),
        (&w.hospital_2, Code::PermissionDenied),
    ] {
        expect(
            w.update_clinical(party, "Encounter", &e1).await,
            false,
            code,
            &format!("{} updates E1", party.name),
        );
        expect(
            w.delete_clinical(party, "Observation", &o1).await,
            false,
            code,
            &format!("{} deletes O1", party.name),
        );
    }
    expect(
        w.update_clinical(&w.ngo_a, "Encounter", &e1).await,
        true,
        Code::Ok,
        "NGO A updates E1",
    );
    expect(
        w.delete_clinical(&w.ngo_a, "Observation", &o1).await,
        true,
        Code::Ok,
        "NGO A deletes O1",
    );
    // Anyone with the scope records its own care of a registered patient,
    // and then reads what it wrote.
    let own = create_clinical(&w.node, &w.ngo_b, &encounter(&w.patients[2])).await;
    expect(
        w.read_clinical(&w.ngo_b, "Encounter", &own).await,
        true,
        Code::Ok,
        "NGO B reads its own Encounter",
    );
    expect(
        w.read_clinical(&w.hospital_2, "Encounter", &own).await,
        false,
        Code::NotFound,
        "Hospital 2 reads NGO B's Encounter of P3",
    );
}

async fn referrals_and_consents_are_seen_only_by_those_they_name(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    // Referrals: the requester (NGO A) and the owner (Hospital 1) only.
    let parties_see = [true, false, true, false];
    for (party, sees) in w.parties().into_iter().zip(parties_see) {
        for task in &w.tasks {
            expect(
                w.read_referral(party, "Task", task).await,
                sees,
                Code::NotFound,
                &format!("{} reads a Task", party.name),
            );
        }
        for sr in &w.service_requests {
            expect(
                w.read_referral(party, "ServiceRequest", sr).await,
                sees,
                Code::NotFound,
                &format!("{} reads a ServiceRequest", party.name),
            );
        }
        for resource_type in ["Task", "ServiceRequest"] {
            let (found, total) = w.search_referrals(party, resource_type).await;
            let expected = if sees { 2 } else { 0 };
            assert_eq!(
                (found.len(), total),
                (expected, expected as i64),
                "{} searches {resource_type}",
                party.name
            );
        }
    }
    // Nobody writes a referral in another organization's name.
    let spoofed = service_request(
        &Parties {
            ngo: w.ngo_a.org.clone(),
            hospital: w.hospital_1.org.clone(),
        },
        &format!("Patient/{}", w.patients[2]),
    );
    let err = w
        .node
        .referrals
        .client
        .clone()
        .create(with_token(
            &w.ngo_b.token,
            refpb::CreateRequest {
                resource: spoofed.to_string(),
                if_none_exist: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "NGO B writes NGO A's referral: {err:?}"
    );
    // Consents: the organization that recorded them, and those they name.
    let expected_consents = [3, 0, 1, 1];
    for (party, expected) in w.parties().into_iter().zip(expected_consents) {
        let (found, total) = w.search_identity(party, "Consent").await;
        assert_eq!(
            (found.len(), total),
            (expected, expected as i64),
            "{} searches Consents",
            party.name
        );
    }
    // The shared registry: every partner sees every Patient.
    for party in w.parties() {
        let (_, total) = w.search_identity(party, "Patient").await;
        assert_eq!(total, 3, "{} searches Patients", party.name);
    }
    // Nobody but the recorder changes a Consent, and nobody grants itself.
    expect(
        w.revoke_first_consent(&w.ngo_b).await,
        false,
        Code::NotFound,
        "NGO B revokes NGO A's Consent",
    );
    expect(
        w.revoke_first_consent(&w.hospital_2).await,
        false,
        Code::PermissionDenied,
        "Hospital 2 revokes the Consent that names it",
    );
    let own = consent(
        &w.patients[2],
        &w.hospital_2.org,
        "permit",
        json!({"reference": w.hospital_2.org}),
    );
    let err = record_consent(&w.node, &w.hospital_2, &own)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "a Consent that permits its recorder: {err:?}"
    );
    let forged = consent(
        &w.patients[2],
        &w.ngo_a.org,
        "permit",
        json!({"reference": w.ngo_b.org}),
    );
    let err = record_consent(&w.node, &w.ngo_b, &forged)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "a Consent recorded in another's name: {err:?}"
    );
    // Revoking takes effect within moments: encounters drops its cached
    // decision when identity's change feed tells it a Consent changed.
    let e1 = w.records[0].1.clone();
    expect(
        w.read_clinical(&w.hospital_2, "Encounter", &e1).await,
        true,
        Code::Ok,
        "Hospital 2 reads E1 under the Consent",
    );
    expect(
        w.revoke_first_consent(&w.ngo_a).await,
        true,
        Code::Ok,
        "NGO A records the revocation",
    );
    within_bound("the revocation reaches encounters", async || {
        w.read_clinical(&w.hospital_2, "Encounter", &e1)
            .await
            .is_err()
    })
    .await;
    expect(
        w.read_clinical(&w.hospital_2, "Encounter", &e1).await,
        false,
        Code::NotFound,
        "Hospital 2 reads E1 after the revocation",
    );
}

/// How soon a revocation must reach encounters: the delivery time of
/// identity's change feed, with room for a loaded test machine. A liveness
/// bound, not a speed claim.
const REVOCATION_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

async fn everything_the_channel_and_break_glass_follow_the_same_rules(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    // Every page of $everything as `party`: the types found, sorted.
    let everything = |party: &Party, patient: &str, break_glass: Option<&str>| {
        let client = w.node.encounters.client.clone();
        let token = party.token.clone();
        let patient = patient.to_owned();
        let break_glass = break_glass.map(str::to_owned);
        async move {
            let mut types = Vec::new();
            let mut page_token = String::new();
            loop {
                let mut request = with_token(
                    &token,
                    enc::EverythingRequest {
                        patient_id: patient.clone(),
                        since: String::new(),
                        count: 0,
                        page_token: page_token.clone(),
                    },
                );
                if let Some(reason) = &break_glass {
                    request
                        .metadata_mut()
                        .insert(BREAK_GLASS, reason.parse().unwrap());
                }
                let bundle = client
                    .clone()
                    .everything(request)
                    .await?
                    .into_inner()
                    .bundle
                    .expect("bundle");
                let value: Value = serde_json::from_str(&bundle.json).unwrap();
                // The records that match: the Organizations and
                // Practitioners they name come along as includes.
                types.extend(
                    value["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|e| e["search"]["mode"] == "match")
                        .filter_map(|e| e["resource"]["resourceType"].as_str().map(str::to_owned)),
                );
                if bundle.next_page_token.is_empty() {
                    break;
                }
                page_token = bundle.next_page_token;
            }
            types.sort();
            Ok::<_, tonic::Status>(types)
        }
    };
    // P1's record: Hospital 2 (by Consent) gets the clinical records but not
    // the referral, which is NGO A's and Hospital 1's; NGO B gets only the
    // Patient from the shared registry.
    assert_eq!(
        everything(&w.hospital_2, &w.patients[0], None)
            .await
            .unwrap(),
        ["Encounter", "Observation", "Patient"]
    );
    assert_eq!(
        everything(&w.hospital_1, &w.patients[0], None)
            .await
            .unwrap(),
        [
            "Encounter",
            "Observation",
            "Patient",
            "ServiceRequest",
            "Task"
        ]
    );
    assert_eq!(
        everything(&w.ngo_b, &w.patients[0], None).await.unwrap(),
        ["Patient"]
    );
    // The consult channel of E3 opens only for who may read E3.
    let open = |party: &Party| {
        let mut client = w.node.encounters.client.clone();
        let request = with_token(
            &party.token,
            enc::OpenChannelRequest {
                encounter_id: w.records[3].1.clone(),
                after_sequence: 0,
            },
        );
        async move { client.open_channel(request).await.map(|_| ()) }
    };
    expect(
        open(&w.ngo_a).await,
        true,
        Code::Ok,
        "NGO A opens E3's channel",
    );
    expect(
        open(&w.hospital_2).await,
        false,
        Code::NotFound,
        "Hospital 2 opens E3's channel",
    );
    // Break-glass: a provider reads P3's records in an emergency; an NGO
    // may not ask; and a denial still wins (Hospital 1 and P2).
    assert_eq!(
        everything(
            &w.hospital_2,
            &w.patients[2],
            Some("unconscious at the border post")
        )
        .await
        .unwrap(),
        ["Encounter", "Patient"]
    );
    let err = everything(&w.ngo_b, &w.patients[2], Some("curious"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("break-glass"), "{}", err.message());
    assert_eq!(
        everything(&w.hospital_1, &w.patients[1], Some("emergency"))
            .await
            .unwrap(),
        ["Patient", "ServiceRequest", "Task"],
        "P2 denies Hospital 1 its clinical records, emergency or not"
    );
}

/// Whether `cache` holds an answer for `organization` (asked without
/// fetching: a miss is an error).
async fn holds<V>(cache: &corridor_runtime::changes::Cached<V>, organization: &str) -> bool {
    cache
        .get_or_fetch(organization, || async {
            Err(corridor_runtime::ApiError::Unavailable(
                corridor_fhir::Issue::new("transient", "not cached"),
            ))
        })
        .await
        .is_ok()
}

/// Wait up to [`REVOCATION_BOUND`] for `done`.
async fn within_bound(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < REVOCATION_BOUND,
            "{what} within {REVOCATION_BOUND:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn decisions_are_cached_while_the_feeds_are_followed_and_dropped_when_a_consent_or_referral_changes(
    backend: Backend,
) {
    let Some(w) = world(backend).await else {
        return;
    };
    let decisions = w.node.encounters.decisions.clone();
    within_bound(
        "encounters follows identity's and referrals' change feeds",
        async || decisions.consent.is_live() && decisions.referred.is_live(),
    )
    .await;
    // Hospital 2 reads E1 under NGO A's Consent: both answers are cached.
    let e1 = w.records[0].1.clone();
    expect(
        w.read_clinical(&w.hospital_2, "Encounter", &e1).await,
        true,
        Code::Ok,
        "Hospital 2 reads E1 under the Consent",
    );
    assert!(
        holds(&decisions.consent, &w.hospital_2.org).await,
        "consent decision cached"
    );
    assert!(
        holds(&decisions.referred, &w.hospital_2.org).await,
        "referred patients cached"
    );
    // A referral change drops the referral answers, and only those.
    let task = w.tasks[0].clone();
    w.node
        .referrals
        .client
        .clone()
        .transition(with_token(
            &w.hospital_1.token,
            refpb::TransitionRequest {
                task_id: task,
                if_match: "1".to_owned(),
                status: "received".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect("Hospital 1 receives the referral");
    within_bound(
        "a referral change drops the cached referral answers",
        async || !holds(&decisions.referred, &w.hospital_2.org).await,
    )
    .await;
    assert!(
        holds(&decisions.consent, &w.hospital_2.org).await,
        "consents did not change"
    );
    // A Consent change drops the Consent decisions; the revocation applies.
    w.revoke_first_consent(&w.ngo_a)
        .await
        .expect("NGO A revokes");
    within_bound("a Consent change drops the cached decisions", async || {
        !holds(&decisions.consent, &w.hospital_2.org).await
    })
    .await;
    expect(
        w.read_clinical(&w.hospital_2, "Encounter", &e1).await,
        false,
        Code::NotFound,
        "Hospital 2 reads E1 after the revocation",
    );
}

for_each_backend!(
    decisions_are_cached_while_the_feeds_are_followed_and_dropped_when_a_consent_or_referral_changes,
    clinical_records_are_read_searched_and_changed_by_relationship_and_consent,
    referrals_and_consents_are_seen_only_by_those_they_name,
    everything_the_channel_and_break_glass_follow_the_same_rules,
);
