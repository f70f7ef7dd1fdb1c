//! The identity service's resource types and their search parameters.

use corridor_store::{ParamKind, ResourceDef, SearchParam};

const PATIENT: &[SearchParam] = &[
    SearchParam {
        name: "identifier",
        kind: ParamKind::Token,
        paths: &["identifier"],
    },
    SearchParam {
        name: "name",
        kind: ParamKind::String,
        paths: &["name"],
    },
    SearchParam {
        name: "family",
        kind: ParamKind::String,
        paths: &["name.family"],
    },
    SearchParam {
        name: "given",
        kind: ParamKind::String,
        paths: &["name.given"],
    },
    SearchParam {
        name: "birthdate",
        kind: ParamKind::Date,
        paths: &["birthDate"],
    },
    SearchParam {
        name: "gender",
        kind: ParamKind::Token,
        paths: &["gender"],
    },
    SearchParam {
        name: "address-country",
        kind: ParamKind::String,
        paths: &["address.country"],
    },
    SearchParam {
        name: "phone",
        kind: ParamKind::Phone,
        paths: &["telecom(system=phone)"],
    },
    SearchParam {
        name: "organization",
        kind: ParamKind::Reference(&["Organization"]),
        paths: &["managingOrganization"],
    },
];

const ORGANIZATION: &[SearchParam] = &[
    SearchParam {
        name: "identifier",
        kind: ParamKind::Token,
        paths: &["identifier"],
    },
    SearchParam {
        name: "name",
        kind: ParamKind::String,
        paths: &["name", "alias"],
    },
    SearchParam {
        name: "type",
        kind: ParamKind::Token,
        paths: &["type"],
    },
    SearchParam {
        name: "partof",
        kind: ParamKind::Reference(&["Organization"]),
        paths: &["partOf"],
    },
];

const PRACTITIONER: &[SearchParam] = &[
    SearchParam {
        name: "identifier",
        kind: ParamKind::Token,
        paths: &["identifier"],
    },
    SearchParam {
        name: "name",
        kind: ParamKind::String,
        paths: &["name"],
    },
    SearchParam {
        name: "family",
        kind: ParamKind::String,
        paths: &["name.family"],
    },
    SearchParam {
        name: "given",
        kind: ParamKind::String,
        paths: &["name.given"],
    },
];

/// The types the identity service owns.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        resource_type: "Patient",
        params: PATIENT,
        sortable: &["name", "family", "given", "birthdate"],
    },
    ResourceDef {
        resource_type: "Organization",
        params: ORGANIZATION,
        sortable: &["name"],
    },
    ResourceDef {
        resource_type: "Practitioner",
        params: PRACTITIONER,
        sortable: &["name", "family", "given"],
    },
];
