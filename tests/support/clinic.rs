//! Clinical scenarios shared by the encounters suites and benchmarks: a
//! registered patient, a recorded teleconsultation, a consult channel.

use corridor_proto::encounters::v1 as enc;
use serde_json::{Value, json};
use tonic::Request;

use crate::Node;

pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const LANGUAGE_EXTENSION: &str = corridor_encounters::consultation::LANGUAGE_EXTENSION;
pub const INTERPRETER_EXTENSION: &str = corridor_encounters::consultation::INTERPRETER_EXTENSION;
/// The clinician and interpreter of [`consultation_bundle`].
pub const CLINICIAN: &str = "Practitioner/dr-amani";
pub const INTERPRETER: &str = "RelatedPerson/interpreter-tigrinya";

/// Register a Patient in identity; its id.
pub async fn register_patient(node: &Node, family: &str) -> String {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{ "family": family, "given": ["Selam"] }],
        "gender": "female",
        "birthDate": "1994-07-01",
    });
    node.identity.register(&patient).await
}

/// A virtual Encounter of `patient_id`, held in Tigrinya with an
/// interpreter, as it goes into a consultation Bundle.
pub fn virtual_encounter(patient_id: &str) -> Value {
    json!({
        "resourceType": "Encounter",
        "extension": [
            { "url": LANGUAGE_EXTENSION, "valueCode": "ti" },
            { "url": INTERPRETER_EXTENSION, "valueBoolean": true },
        ],
        "status": "finished",
        "class": { "system": ACT_CODE, "code": "VR", "display": "virtual" },
        "type": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "185317003", "display": "Telephone encounter" }] }],
        "subject": { "reference": format!("Patient/{patient_id}") },
        "participant": [
            { "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF" }] }],
              "individual": { "reference": CLINICIAN } },
            { "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "INTRP" }] }],
              "individual": { "reference": INTERPRETER } },
        ],
        "period": { "start": "2026-11-20T21:30:00Z", "end": "2026-11-20T21:55:00Z" },
        "reasonCode": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension" }] }],
        "serviceProvider": { "reference": "Organization/ngo-clinic" },
    })
}

/// A teleconsultation as a transaction Bundle: the Encounter, a blood
/// pressure Observation, a Condition, an Immunization, a
/// MedicationStatement and the clinician's note (a DocumentReference), all
/// pointing at the Encounter by its urn:uuid.
pub fn consultation_bundle(patient_id: &str) -> Value {
    let patient = json!({ "reference": format!("Patient/{patient_id}") });
    let encounter = json!({ "reference": "urn:uuid:5f1c3b9e-0000-4000-8000-000000000001" });
    let entry = |n: u32, resource: Value| {
        let kind = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        json!({
            "fullUrl": format!("urn:uuid:5f1c3b9e-0000-4000-8000-00000000000{n}"),
            "resource": resource,
            "request": { "method": "POST", "url": kind },
        })
    };
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry(1, virtual_encounter(patient_id)),
            entry(2, json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel" }] },
                "subject": patient,
                "encounter": encounter,
                "effectiveDateTime": "2026-11-20T21:40:00Z",
                "component": [
                    { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
                      "valueQuantity": { "value": 152, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
                    { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] },
                      "valueQuantity": { "value": 96, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
                ],
            })),
            entry(3, json!({
                "resourceType": "Condition",
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis" }] }],
                "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension" }] },
                "subject": patient,
                "encounter": encounter,
                "onsetDateTime": "2026-09",
            })),
            entry(4, json!({
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "115", "display": "Tdap" }] },
                "patient": patient,
                "encounter": encounter,
                "occurrenceDateTime": "2026-11-02",
            })),
            entry(5, json!({
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": { "coding": [{ "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361", "display": "Amlodipine 5 MG Oral Tablet" }] },
                "subject": patient,
                "context": encounter,
                "effectiveDateTime": "2026-11-20",
            })),
            entry(6, json!({
                "resourceType": "DocumentReference",
                "status": "current",
                "type": { "coding": [{ "system": "http://loinc.org", "code": "11506-3", "display": "Progress note" }] },
                "subject": patient,
                "date": "2026-11-20T21:56:00Z",
                "content": [{ "attachment": { "contentType": "text/plain", "language": "en",
                    "data": "QlAgMTUyLzk2LiBTdGFydCBhbWxvZGlwaW5lIDVtZy4gUmV2aWV3IGluIDIgd2Vla3Mu" } }],
                "context": { "encounter": [encounter] },
            })),
        ],
    })
}

/// Record `bundle` with RecordConsultation.
pub async fn record(
    node: &Node,
    bundle: &Value,
) -> Result<enc::RecordConsultationResponse, tonic::Status> {
    Ok(node
        .encounters
        .client
        .clone()
        .record_consultation(enc::RecordConsultationRequest {
            bundle: bundle.to_string(),
        })
        .await?
        .into_inner())
}

/// A registered patient with a recorded teleconsultation; the Encounter's
/// id and the patient's id.
pub async fn consultation(node: &Node) -> (String, String) {
    let patient = register_patient(node, "Tesfay").await;
    let recorded = record(node, &consultation_bundle(&patient))
        .await
        .expect("consultation recorded");
    (recorded.encounter_id, patient)
}

/// Send one message to an Encounter's consult channel.
pub async fn send(
    client: &mut enc::encounters_service_client::EncountersServiceClient<crate::Authed>,
    encounter_id: &str,
    sender: &str,
    text: &str,
) -> Result<enc::ConsultMessage, tonic::Status> {
    let request = Request::new(enc::SendMessageRequest {
        encounter_id: encounter_id.to_owned(),
        sender: sender.to_owned(),
        recipients: Vec::new(),
        text: text.to_owned(),
        language: "ti".to_owned(),
    });
    Ok(client
        .send_message(request)
        .await?
        .into_inner()
        .message
        .expect("message"))
}

/// The text of a consult message.
pub fn text_of(message: &enc::ConsultMessage) -> String {
    let communication: Value =
        serde_json::from_str(&message.communication.as_ref().expect("communication").json)
            .expect("JSON");
    communication["payload"][0]["contentString"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A valid Claim or ExplanationOfBenefit (`resource_type`) of `patient`
/// (`Patient/<id>`), made on `created` by `provider` (a reference), paid in
/// cash: what a hospital's record holds for each encounter.
pub fn claim_like(resource_type: &str, patient: &str, created: &str, provider: &str) -> Value {
    let claim = resource_type == "Claim";
    let mut resource = json!({
        "resourceType": resource_type,
        "status": "active",
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional" }] },
        "use": "claim",
        "patient": { "reference": patient },
        "created": created,
        "provider": { "reference": provider },
    });
    if claim {
        resource["priority"] = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal" }] });
        resource["insurance"] =
            json!([{ "sequence": 1, "focal": true, "coverage": { "display": "Cash" } }]);
    } else {
        resource["insurer"] = json!({ "display": "Cash" });
        resource["outcome"] = json!("complete");
        resource["insurance"] = json!([{ "focal": true, "coverage": { "display": "Cash" } }]);
    }
    resource
}
