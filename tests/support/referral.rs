//! Referral scenarios shared by the referrals suites and benchmarks: an NGO
//! and a hospital registered in identity, a referred patient, transitions
//! made on behalf of one organization, and the event feed.

use corridor_proto::fhir::v1::Resource;
use corridor_proto::referrals::v1 as pb;
use serde_json::{Value, json};
use tonic::Request;

use crate::{FullNode, clinic};

/// The two organizations of a referral, as `Organization/<id>`.
#[derive(Debug, Clone)]
pub struct Parties {
    /// The referring NGO.
    pub ngo: String,
    /// The performing hospital.
    pub hospital: String,
}

async fn register_organization(node: &FullNode, name: &str) -> String {
    let organization = json!({ "resourceType": "Organization", "name": name, "active": true });
    format!(
        "Organization/{}",
        node.identity.register(&organization).await
    )
}

/// Register an NGO and a hospital.
pub async fn parties(node: &FullNode) -> Parties {
    Parties {
        ngo: register_organization(node, "Frontier Care NGO").await,
        hospital: register_organization(node, "Ospedale San Paolo").await,
    }
}

/// Register a patient; `Patient/<id>`.
pub async fn patient(node: &FullNode) -> String {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Haile", "given": ["Meron"] }],
        "birthDate": "1988",
    });
    format!("Patient/{}", node.identity.register(&patient).await)
}

/// A ServiceRequest from the NGO to the hospital for `patient`: a
/// teleconsultation for hypertension follow-up.
pub fn service_request(parties: &Parties, patient: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral" }] }],
        "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "11797002", "display": "Telemedicine consultation with patient" }] },
        "subject": { "reference": patient },
        "authoredOn": "2026-11-21T09:00:00Z",
        "requester": { "reference": parties.ngo },
        "performer": [{ "reference": parties.hospital }],
        "reasonCode": [{ "text": "Blood pressure 152/96 at the field clinic" }],
    })
}

/// `message` sent with a token that acts for `organization`.
pub fn acting_for<T>(organization: &str, message: T) -> Request<T> {
    crate::with_token(&crate::token(organization, crate::ALL_SCOPES), message)
}

/// Refer `service_request` on behalf of `organization`.
pub async fn refer(
    node: &FullNode,
    organization: &str,
    service_request: &Value,
) -> Result<(Resource, Resource), tonic::Status> {
    let response = node
        .referrals
        .client
        .clone()
        .create_referral(acting_for(
            organization,
            pb::CreateReferralRequest {
                service_request: service_request.to_string(),
                draft: false,
            },
        ))
        .await?
        .into_inner();
    Ok((
        response.service_request.expect("service request"),
        response.task.expect("task"),
    ))
}

/// Move `task` (at the version it carries) to `status`.
pub async fn transition(
    node: &FullNode,
    organization: &str,
    task: &Resource,
    status: &str,
    reason: &str,
    outputs: &[&str],
) -> Result<Resource, tonic::Status> {
    Ok(node
        .referrals
        .client
        .clone()
        .transition(acting_for(
            organization,
            pb::TransitionRequest {
                task_id: task.id.clone(),
                if_match: task.version_id.clone(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                outputs: outputs.iter().map(|o| (*o).to_owned()).collect(),
            },
        ))
        .await?
        .into_inner()
        .task
        .expect("task"))
}

/// The status of a stored Task.
pub fn status_of(task: &Resource) -> String {
    let value: Value = serde_json::from_str(&task.json).expect("JSON");
    value["status"].as_str().unwrap_or_default().to_owned()
}

/// Record a teleconsultation for `patient` in encounters; the Encounter's
/// and the note's references.
pub async fn consultation(node: &FullNode, patient: &str) -> (String, String) {
    let patient_id = patient.trim_start_matches("Patient/");
    let response = node
        .encounters
        .client
        .clone()
        .record_consultation(corridor_proto::encounters::v1::RecordConsultationRequest {
            bundle: clinic::consultation_bundle(patient_id).to_string(),
        })
        .await
        .expect("consultation recorded")
        .into_inner();
    let bundle: Value = serde_json::from_str(&response.bundle.expect("bundle").json).expect("JSON");
    let note = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["resourceType"] == "DocumentReference")
        .and_then(|e| e["fullUrl"].as_str())
        .expect("note")
        .to_owned();
    (format!("Encounter/{}", response.encounter_id), note)
}

/// Open the event feed for `organization` after `after`.
pub async fn watch(
    node: &FullNode,
    organization: &str,
    after: i64,
) -> tonic::Streaming<pb::WatchResponse> {
    node.referrals
        .client
        .clone()
        .watch(acting_for(
            organization,
            pb::WatchRequest {
                after_sequence: after,
            },
        ))
        .await
        .expect("watch opens")
        .into_inner()
}

/// The searchset Bundle a search of the referrals service answers.
pub async fn search(node: &FullNode, resource_type: &str, params: &[(&str, &str)]) -> Value {
    let bundle = node
        .referrals
        .client
        .clone()
        .search(pb::SearchRequest {
            resource_type: resource_type.to_owned(),
            parameters: params
                .iter()
                .map(|(name, value)| corridor_proto::fhir::v1::SearchParameter {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            page_token: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("{resource_type}?{params:?}: {s:?}"))
        .into_inner()
        .bundle
        .expect("bundle");
    serde_json::from_str(&bundle.json).expect("Bundle JSON")
}
