//! The referrals service's resource types and their search parameters.
//! Every write of either type is announced on the [`EVENTS`] stream.

use corridor_store::{ParamKind, ResourceDef, SearchParam};

/// The stream every ServiceRequest and Task version is appended to, in
/// commit order: the outbox the Watch feed reads.
pub const EVENTS: &str = "referral-events";

const fn param(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> SearchParam {
    SearchParam { name, kind, paths }
}

const fn token(name: &'static str, paths: &'static [&'static str]) -> SearchParam {
    param(name, ParamKind::Token, paths)
}

const PARTIES: &[&str] = &[
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "RelatedPerson",
];

const SERVICE_REQUEST: &[SearchParam] = &[
    token("identifier", &["identifier"]),
    param("patient", ParamKind::Reference(&["Patient"]), &["subject"]),
    param(
        "subject",
        ParamKind::Reference(&["Patient", "Group"]),
        &["subject"],
    ),
    token("status", &["status"]),
    token("intent", &["intent"]),
    param("requester", ParamKind::Reference(PARTIES), &["requester"]),
    param("performer", ParamKind::Reference(PARTIES), &["performer"]),
    param("authored", ParamKind::Date, &["authoredOn"]),
    token("category", &["category"]),
    token("code", &["code"]),
];

const TASK: &[SearchParam] = &[
    token("identifier", &["identifier"]),
    token("status", &["status"]),
    token("intent", &["intent"]),
    token("code", &["code"]),
    param("owner", ParamKind::Reference(PARTIES), &["owner"]),
    param("requester", ParamKind::Reference(PARTIES), &["requester"]),
    param(
        "focus",
        ParamKind::Reference(&["ServiceRequest"]),
        &["focus"],
    ),
    param("patient", ParamKind::Reference(&["Patient"]), &["for"]),
    token("business-status", &["businessStatus"]),
    param("modified", ParamKind::Date, &["lastModified"]),
    param("authored-on", ParamKind::Date, &["authoredOn"]),
];

/// The types the referrals service owns.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        resource_type: "ServiceRequest",
        params: SERVICE_REQUEST,
        sortable: &["authored"],
        announce: Some(EVENTS),
        keys: None,
    },
    ResourceDef {
        resource_type: "Task",
        params: TASK,
        sortable: &["modified", "authored-on"],
        announce: Some(EVENTS),
        keys: None,
    },
];

/// Where each type names the Patient it is about.
pub const PATIENT_ELEMENT: &[(&str, &str)] = &[("ServiceRequest", "subject"), ("Task", "for")];
