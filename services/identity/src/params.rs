//! The identity service's resource types and their search parameters.

use corridor_store::{ParamKind, ResourceDef, SearchParam};

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
];

const ORGANIZATION: &[SearchParam] = &[
    IDENTIFIER,
    param("name", ParamKind::String, &["name", "alias"]),
    param("type", ParamKind::Token, &["type"]),
    param(
        "partof",
        ParamKind::Reference(&["Organization"]),
        &["partOf"],
    ),
];

const PRACTITIONER: &[SearchParam] = &[IDENTIFIER, NAME, FAMILY, GIVEN];

/// The types the identity service owns.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        resource_type: "Patient",
        params: PATIENT,
        sortable: &["name", "family", "given", "birthdate"],
        announce: None,
    },
    ResourceDef {
        resource_type: "Organization",
        params: ORGANIZATION,
        sortable: &["name"],
        announce: None,
    },
    ResourceDef {
        resource_type: "Practitioner",
        params: PRACTITIONER,
        sortable: &["name", "family", "given"],
        announce: None,
    },
];
