//! The identity service's resource types and their search parameters.

use corridor_store::{Keys, ParamKind, ResourceDef, SearchParam};

/// The stream every Patient write is appended to, in commit order; the
/// review queue follows it (see `review.rs`).
pub const PATIENT_CHANGES: &str = "patient-changes";
/// The stream every Consent and Organization change is announced on: what
/// a Consent decision is made from (`WatchDecisions` follows it).
pub const DECISION_CHANGES: &str = "decision-changes";

const fn param(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> SearchParam {
    SearchParam { name, kind, paths }
}

const IDENTIFIER: SearchParam = param("identifier", ParamKind::Token, &["identifier"]);
// HumanName parameters, shared by Patient and Practitioner.
const NAME: SearchParam = param("name", ParamKind::String, &["name"]);
const FAMILY: SearchParam = param("family", ParamKind::String, &["name.family"]);
const GIVEN: SearchParam = param("given", ParamKind::String, &["name.given"]);

const PATIENT: &[SearchParam] = &[
    IDENTIFIER,
    NAME,
    FAMILY,
    GIVEN,
    param("birthdate", ParamKind::Date, &["birthDate"]),
    param("gender", ParamKind::Token, &["gender"]),
    param("address-country", ParamKind::String, &["address.country"]),
    param("phone", ParamKind::Phone, &["telecom(system=phone)"]),
    param(
        "organization",
        ParamKind::Reference(&["Organization"]),
        &["managingOrganization"],
    ),
    // Patient.link.other: the Patients a Patient is linked to, as replaced
    // by, replacing or the same person; merges are followed through it.
    param("link", ParamKind::Reference(&["Patient"]), &["link.other"]),
];

const ORGANIZATION: &[SearchParam] = &[
    IDENTIFIER,
    // meta.tag: urn:corridor:federation|cross-border-referrals marks the
    // Organizations a node publishes to its peers; urn:corridor:peer|<node>
    // the peers' Organizations it keeps in its directory.
    param("_tag", ParamKind::Token, &["meta.tag"]),
    param("name", ParamKind::String, &["name", "alias"]),
    param("type", ParamKind::Token, &["type"]),
    param(
        "partof",
        ParamKind::Reference(&["Organization"]),
        &["partOf"],
    ),
];

const PRACTITIONER: &[SearchParam] = &[IDENTIFIER, NAME, FAMILY, GIVEN];

// Consent: whose decision, in force or not, recorded by whom, about whom.
const CONSENT: &[SearchParam] = &[
    param("patient", ParamKind::Reference(&["Patient"]), &["patient"]),
    param("status", ParamKind::Token, &["status"]),
    param(
        "organization",
        ParamKind::Reference(&["Organization"]),
        &["organization"],
    ),
    param(
        "actor",
        ParamKind::Reference(&["Organization", "Practitioner", "Patient"]),
        &["provision.actor.reference"],
    ),
    // An actor named by kind: reference.identifier of the
    // organization-type system (see consent.rs).
    param(
        "actor-type",
        ParamKind::Token,
        &["provision.actor.reference.identifier"],
    ),
    param("purpose", ParamKind::Token, &["provision.purpose"]),
    param("category", ParamKind::Token, &["category"]),
    param("date", ParamKind::Date, &["dateTime"]),
];

// AuditEvent: every access on the node, kept here (see corridor_runtime::audit).
const AUDIT_EVENT: &[SearchParam] = &[
    param(
        "entity",
        ParamKind::Reference(&[
            "Patient",
            "Encounter",
            "Observation",
            "Condition",
            "Communication",
            "Immunization",
            "AllergyIntolerance",
            "MedicationStatement",
            "DocumentReference",
            "Procedure",
            "DiagnosticReport",
            "MedicationRequest",
            "CarePlan",
            "Goal",
            "ImagingStudy",
            "Claim",
            "ExplanationOfBenefit",
            "ServiceRequest",
            "Task",
            "Organization",
            "Practitioner",
            "Consent",
        ]),
        &["entity.what"],
    ),
    param(
        "patient",
        ParamKind::Reference(&["Patient"]),
        &["entity.what"],
    ),
    param(
        "agent",
        ParamKind::Reference(&["Organization"]),
        &["agent.who"],
    ),
    param("altid", ParamKind::Token, &["agent.altId"]),
    param("date", ParamKind::Date, &["recorded"]),
    param("action", ParamKind::Token, &["action"]),
    param("outcome", ParamKind::Token, &["outcome"]),
    param("subtype", ParamKind::Token, &["subtype"]),
    param("type", ParamKind::Token, &["type"]),
];

/// The types the identity service owns.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        resource_type: "Patient",
        params: PATIENT,
        sortable: &["name", "family", "given", "birthdate"],
        announce: Some(PATIENT_CHANGES),
        keys: Some(Keys {
            extract: crate::matcher::index_keys,
        }),
    },
    ResourceDef {
        resource_type: "Organization",
        params: ORGANIZATION,
        sortable: &["name"],
        announce: Some(DECISION_CHANGES),
        keys: None,
    },
    ResourceDef {
        resource_type: "Practitioner",
        params: PRACTITIONER,
        sortable: &["name", "family", "given"],
        announce: None,
        keys: None,
    },
    ResourceDef {
        resource_type: "Consent",
        params: CONSENT,
        sortable: &["date"],
        announce: Some(DECISION_CHANGES),
        keys: None,
    },
    ResourceDef {
        resource_type: "AuditEvent",
        params: AUDIT_EVENT,
        sortable: &["date"],
        announce: None,
        keys: None,
    },
];
