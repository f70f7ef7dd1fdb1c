//! The encounters service's resource types and their search parameters.
//! The types are the consultation record and what else a hospital's record
//! of a patient holds (every clinical type of a Synthea bundle: procedures,
//! reports, prescriptions, care plans and goals, imaging studies, claims and
//! their explanations of benefit). Parameters have FHIR R4's names, plus the
//! common names (`patient`, `encounter`, `code`, `date`) where FHIR names
//! them differently.

use corridor_store::{ParamKind, ResourceDef, SearchParam};

const fn param(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> SearchParam {
    SearchParam { name, kind, paths }
}

const fn token(name: &'static str, paths: &'static [&'static str]) -> SearchParam {
    param(name, ParamKind::Token, paths)
}

const fn date(name: &'static str, paths: &'static [&'static str]) -> SearchParam {
    param(name, ParamKind::Date, paths)
}

const PATIENT_ONLY: &[&str] = &["Patient"];
const SUBJECTS: &[&str] = &["Patient", "Group"];
const ENCOUNTER_ONLY: &[&str] = &["Encounter"];
const PEOPLE: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Patient",
    "Organization",
];

/// `patient` (the subject when it is a Patient) and `subject`.
const fn patient(path: &'static [&'static str]) -> SearchParam {
    param("patient", ParamKind::Reference(PATIENT_ONLY), path)
}

const fn subject(path: &'static [&'static str]) -> SearchParam {
    param("subject", ParamKind::Reference(SUBJECTS), path)
}

const fn encounter(path: &'static [&'static str]) -> SearchParam {
    param("encounter", ParamKind::Reference(ENCOUNTER_ONLY), path)
}

const IDENTIFIER: SearchParam = token("identifier", &["identifier"]);
/// `_tag`: among others, the organization that wrote the record (see
/// `access.rs`).
const TAG: SearchParam = token(crate::access::TAG_PARAM, &["meta.tag"]);
const STATUS: SearchParam = token("status", &["status"]);
const CATEGORY: SearchParam = token("category", &["category"]);

const ENCOUNTER: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    date("date", &["period"]),
    STATUS,
    token("class", &["class"]),
    token("type", &["type"]),
    param(
        "participant",
        ParamKind::Reference(&["Practitioner", "PractitionerRole", "RelatedPerson"]),
        &["participant.individual"],
    ),
    token("participant-type", &["participant.type"]),
    param(
        "service-provider",
        ParamKind::Reference(&["Organization"]),
        &["serviceProvider"],
    ),
    token("reason-code", &["reasonCode"]),
];

const OBSERVATION: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    token("code", &["code"]),
    date(
        "date",
        &["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
    ),
    STATUS,
    CATEGORY,
];

const CONDITION: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    token("code", &["code"]),
    date("onset-date", &["onsetDateTime", "onsetPeriod"]),
    date("recorded-date", &["recordedDate"]),
    token("clinical-status", &["clinicalStatus"]),
    token("verification-status", &["verificationStatus"]),
    CATEGORY,
];

const COMMUNICATION: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    date("sent", &["sent"]),
    date("received", &["received"]),
    param("sender", ParamKind::Reference(PEOPLE), &["sender"]),
    param("recipient", ParamKind::Reference(PEOPLE), &["recipient"]),
    STATUS,
    CATEGORY,
];

const IMMUNIZATION: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["patient"]),
    encounter(&["encounter"]),
    token("vaccine-code", &["vaccineCode"]),
    token("code", &["vaccineCode"]),
    date("date", &["occurrenceDateTime"]),
    STATUS,
];

const ALLERGY_INTOLERANCE: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["patient"]),
    encounter(&["encounter"]),
    token("code", &["code", "reaction.substance"]),
    date("date", &["recordedDate"]),
    date("onset-date", &["onsetDateTime", "onsetPeriod"]),
    token("clinical-status", &["clinicalStatus"]),
    token("verification-status", &["verificationStatus"]),
    token("criticality", &["criticality"]),
    CATEGORY,
];

const MEDICATION_STATEMENT: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["context"]),
    param(
        "context",
        ParamKind::Reference(&["Encounter", "EpisodeOfCare"]),
        &["context"],
    ),
    token("code", &["medicationCodeableConcept"]),
    date("effective", &["effectiveDateTime", "effectivePeriod"]),
    date("date", &["effectiveDateTime", "effectivePeriod"]),
    STATUS,
    CATEGORY,
];

const DOCUMENT_REFERENCE: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["context.encounter"]),
    token("type", &["type"]),
    token("code", &["type"]),
    date("date", &["date"]),
    date("period", &["context.period"]),
    STATUS,
    CATEGORY,
];

const CARE_PLAN: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    date("date", &["period"]),
    STATUS,
    token("intent", &["intent"]),
    CATEGORY,
    token("activity-code", &["activity.detail.code"]),
];

/// Who provided what a claim is about (identity's records).
const PROVIDERS: &[&str] = &["Practitioner", "PractitionerRole", "Organization"];

const CLAIM: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["patient"]),
    encounter(&["item.encounter"]),
    date("created", &["created"]),
    date("date", &["created"]),
    STATUS,
    token("use", &["use"]),
    param("provider", ParamKind::Reference(PROVIDERS), &["provider"]),
];

const DIAGNOSTIC_REPORT: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    token("code", &["code"]),
    date("date", &["effectiveDateTime", "effectivePeriod"]),
    date("issued", &["issued"]),
    STATUS,
    CATEGORY,
    param(
        "result",
        ParamKind::Reference(&["Observation"]),
        &["result"],
    ),
];

const EXPLANATION_OF_BENEFIT: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["patient"]),
    encounter(&["item.encounter"]),
    date("created", &["created"]),
    date("date", &["created"]),
    STATUS,
    param("claim", ParamKind::Reference(&["Claim"]), &["claim"]),
    param("provider", ParamKind::Reference(PROVIDERS), &["provider"]),
];

const GOAL: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    token("lifecycle-status", &["lifecycleStatus"]),
    date("start-date", &["startDate"]),
    date("target-date", &["target.dueDate"]),
    CATEGORY,
];

const IMAGING_STUDY: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    date("started", &["started"]),
    date("date", &["started"]),
    STATUS,
    token("modality", &["series.modality"]),
];

const MEDICATION_REQUEST: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    token("code", &["medicationCodeableConcept"]),
    date("authoredon", &["authoredOn"]),
    date("date", &["authoredOn"]),
    STATUS,
    token("intent", &["intent"]),
    CATEGORY,
];

const PROCEDURE: &[SearchParam] = &[
    TAG,
    IDENTIFIER,
    patient(&["subject"]),
    subject(&["subject"]),
    encounter(&["encounter"]),
    token("code", &["code"]),
    date("date", &["performedDateTime", "performedPeriod"]),
    STATUS,
    CATEGORY,
];

/// The types the encounters service owns.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        resource_type: "Encounter",
        params: ENCOUNTER,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Observation",
        params: OBSERVATION,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Condition",
        params: CONDITION,
        sortable: &["onset-date", "recorded-date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Communication",
        params: COMMUNICATION,
        sortable: &["sent", "received"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Immunization",
        params: IMMUNIZATION,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "AllergyIntolerance",
        params: ALLERGY_INTOLERANCE,
        sortable: &["date", "onset-date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "MedicationStatement",
        params: MEDICATION_STATEMENT,
        sortable: &["effective", "date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "DocumentReference",
        params: DOCUMENT_REFERENCE,
        sortable: &["date", "period"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Procedure",
        params: PROCEDURE,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "DiagnosticReport",
        params: DIAGNOSTIC_REPORT,
        sortable: &["date", "issued"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "MedicationRequest",
        params: MEDICATION_REQUEST,
        sortable: &["authoredon", "date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "CarePlan",
        params: CARE_PLAN,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Goal",
        params: GOAL,
        sortable: &["start-date", "target-date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "ImagingStudy",
        params: IMAGING_STUDY,
        sortable: &["started", "date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Claim",
        params: CLAIM,
        sortable: &["created", "date"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "ExplanationOfBenefit",
        params: EXPLANATION_OF_BENEFIT,
        sortable: &["created", "date"],
        announce: None,
        keys: None,
    },
];

/// Where each type names the Patient it is about: the element a write is
/// checked at, and the search parameter of the patient compartment.
pub const PATIENT_ELEMENT: &[(&str, &str)] = &[
    ("Encounter", "subject"),
    ("Observation", "subject"),
    ("Condition", "subject"),
    ("Communication", "subject"),
    ("Immunization", "patient"),
    ("AllergyIntolerance", "patient"),
    ("MedicationStatement", "subject"),
    ("DocumentReference", "subject"),
    ("Procedure", "subject"),
    ("DiagnosticReport", "subject"),
    ("MedicationRequest", "subject"),
    ("CarePlan", "subject"),
    ("Goal", "subject"),
    ("ImagingStudy", "subject"),
    ("Claim", "patient"),
    ("ExplanationOfBenefit", "patient"),
];
