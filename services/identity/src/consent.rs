//! Patients' Consents, and what they decide about an organization.
//!
//! A Consent lives with the Patient it is about, here in identity. The
//! other services ask [`decide`] (the `ConsentDecision` RPC) which Patients'
//! clinical records the calling organization may read:
//!
//! - an **active** Consent whose `provision.type` is `permit` permits the
//!   organizations its `provision.actor`s name, by reference
//!   (`Organization/<id>`) or by kind: an actor whose `reference.identifier`
//!   is `http://terminology.hl7.org/CodeSystem/organization-type|<code>`
//!   names every organization whose `Organization.type` has that code. A
//!   provision with no actor applies to every organization;
//! - a provision applies only within its `period`, and, when it lists
//!   `purpose`s, only for those (v3 ActReason, TREAT when the caller says
//!   none);
//! - a Consent that **denies** always wins over any that permits.
//!
//! Only the top-level provision is read; nested provisions (exceptions) are
//! refused when the Consent is written, so that none is silently ignored.
//!
//! Who may write a Consent: the organization recording it, which must be the
//! caller's and be named in `Consent.organization`. An organization cannot
//! record a Consent that permits itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use corridor_fhir::{Issue, Validated};
use corridor_proto::identity::v1 as pb;
use corridor_runtime::ApiError;
use corridor_runtime::auth::{self, Caller};
use corridor_runtime::resources::{Check, Deciding, Guard, Policy, Refusal};
use corridor_store::{Access, Condition, Store, StoreError};
use serde_json::Value;

/// The code system of Organization.type (`prov`, `govt`, `cg`, ...).
pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
/// The code of a healthcare provider in [`ORGANIZATION_TYPE`].
pub const PROVIDER: &str = "prov";
/// The purpose of use when the caller says none.
pub const DEFAULT_PURPOSE: &str = "TREAT";

/// The organization's `Organization.type` codes of [`ORGANIZATION_TYPE`];
/// none when it is not registered here.
async fn organization_types(store: &Store, organization: &str) -> Result<Vec<String>, ApiError> {
    let Some(id) = organization.strip_prefix("Organization/") else {
        return Ok(Vec::new());
    };
    let stored = match store.read("Organization", id).await {
        Ok(stored) => stored,
        Err(StoreError::NotFound { .. } | StoreError::Deleted { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let value: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
    Ok(value["type"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["coding"].as_array())
        .flatten()
        .filter(|c| c["system"] == ORGANIZATION_TYPE)
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect())
}

/// Every active Consent found by `params`, read to the last page.
async fn active_consents(
    store: &Store,
    mut params: Vec<(String, String)>,
    into: &mut Vec<Value>,
) -> Result<(), ApiError> {
    params.push(("status".to_owned(), "active".to_owned()));
    params.push(("_count".to_owned(), "1000".to_owned()));
    let mut token: Option<String> = None;
    loop {
        let page = store.search("Consent", &params, token.as_deref()).await?;
        for entry in page.bundle["entry"].as_array().into_iter().flatten() {
            into.push(entry["resource"].clone());
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(()),
        }
    }
}

/// Whether `provision` is in force now and covers `purpose`.
fn applies(provision: &Value, purpose: &str, now: &str) -> bool {
    let period = &provision["period"];
    // FHIR dateTimes of one form compare as text; a date-only start or end
    // is compared by its day.
    if let Some(start) = period["start"].as_str()
        && now < start
    {
        return false;
    }
    if let Some(end) = period["end"].as_str()
        && now[..end.len().min(now.len())] > *end
    {
        return false;
    }
    let purposes: Vec<&str> = provision["purpose"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["code"].as_str())
        .collect();
    purposes.is_empty() || purposes.contains(&purpose)
}

/// Whether `provision` is about `organization` (of kinds `types`): one of
/// its actors names it or its kind, or it names no actor at all.
fn names(provision: &Value, organization: &str, types: &[String]) -> bool {
    let actors: Vec<&Value> = provision["actor"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    actors.is_empty()
        || actors.iter().any(|actor| {
            let reference = &actor["reference"];
            reference["reference"] == organization
                || (reference["identifier"]["system"] == ORGANIZATION_TYPE
                    && reference["identifier"]["value"]
                        .as_str()
                        .is_some_and(|code| types.iter().any(|t| t == code)))
        })
}

/// What the active Consents say about `organization`, for `purpose`.
pub async fn decide(
    store: &Store,
    organization: &str,
    purpose: &str,
) -> Result<pb::ConsentDecisionResponse, ApiError> {
    let purpose = if purpose.trim().is_empty() {
        DEFAULT_PURPOSE
    } else {
        purpose.trim()
    };
    let types = organization_types(store, organization).await?;
    let mut consents = Vec::new();
    active_consents(
        store,
        vec![("actor".to_owned(), organization.to_owned())],
        &mut consents,
    )
    .await?;
    for code in &types {
        active_consents(
            store,
            vec![(
                "actor-type".to_owned(),
                format!("{ORGANIZATION_TYPE}|{code}"),
            )],
            &mut consents,
        )
        .await?;
    }
    active_consents(
        store,
        vec![("actor:missing".to_owned(), "true".to_owned())],
        &mut consents,
    )
    .await?;
    let now = corridor_store::now_instant();
    let mut permitted = BTreeSet::new();
    let mut denied = BTreeSet::new();
    for consent in &consents {
        let provision = &consent["provision"];
        if !names(provision, organization, &types) || !applies(provision, purpose, &now) {
            continue;
        }
        let Some(patient) = consent["patient"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
        else {
            continue;
        };
        match provision["type"].as_str() {
            Some("deny") => {
                denied.insert(patient.to_owned());
            }
            Some("permit") => {
                permitted.insert(patient.to_owned());
            }
            _ => {}
        }
    }
    let permitted = permitted.difference(&denied).cloned().collect();
    Ok(pb::ConsentDecisionResponse {
        permitted_patient_ids: permitted,
        denied_patient_ids: denied.into_iter().collect(),
        provider: types.iter().any(|t| t == PROVIDER),
    })
}

/// The code system of a provision's `class` that names resource types.
pub const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";

/// Whether `patient_id`'s active Consents permit disclosing their records to
/// `recipient` (`Organization/<id>`) for `purpose`: a denying Consent that
/// applies wins; otherwise the first permitting one decides, with the
/// resource types its provision's `class` limits disclosure to.
pub async fn disclosure(
    store: &Store,
    patient_id: &str,
    recipient: &str,
    purpose: &str,
) -> Result<pb::DisclosureDecisionResponse, ApiError> {
    let patient_id = patient_id.trim();
    if patient_id.is_empty() || patient_id.contains('/') {
        return Err(ApiError::Invalid(
            Issue::new("required", "patient_id is the Patient's id").at("patient_id"),
        ));
    }
    if recipient
        .strip_prefix("Organization/")
        .is_none_or(|id| id.is_empty() || id.contains('/'))
    {
        return Err(ApiError::Invalid(
            Issue::new(
                "invalid",
                format!("recipient is Organization/<id>, not '{recipient}'"),
            )
            .at("recipient"),
        ));
    }
    let purpose = if purpose.trim().is_empty() {
        DEFAULT_PURPOSE
    } else {
        purpose.trim()
    };
    let types = organization_types(store, recipient).await?;
    let mut consents = Vec::new();
    active_consents(
        store,
        vec![("patient".to_owned(), format!("Patient/{patient_id}"))],
        &mut consents,
    )
    .await?;
    let now = corridor_store::now_instant();
    let reference =
        |consent: &Value| format!("Consent/{}", consent["id"].as_str().unwrap_or_default());
    let applying: Vec<&Value> = consents
        .iter()
        .filter(|c| {
            names(&c["provision"], recipient, &types) && applies(&c["provision"], purpose, &now)
        })
        .collect();
    if let Some(denying) = applying.iter().find(|c| c["provision"]["type"] == "deny") {
        let consent = reference(denying);
        return Ok(pb::DisclosureDecisionResponse {
            permitted: false,
            reason: format!(
                "{consent} denies disclosing Patient/{patient_id}'s records to {recipient}"
            ),
            consent,
            classes: Vec::new(),
        });
    }
    let Some(permitting) = applying.iter().find(|c| c["provision"]["type"] == "permit") else {
        return Ok(pb::DisclosureDecisionResponse {
            permitted: false,
            consent: String::new(),
            reason: format!(
                "no active Consent of Patient/{patient_id} permits disclosing their records to {recipient} for {purpose}: record one whose provision permits that Organization (provision.actor) first"
            ),
            classes: Vec::new(),
        });
    };
    let classes = permitting["provision"]["class"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["system"] == RESOURCE_TYPES)
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect();
    Ok(pb::DisclosureDecisionResponse {
        permitted: true,
        consent: reference(permitting),
        reason: String::new(),
        classes,
    })
}

/// Checks every Consent written: who records it, about whom, and that it
/// says something this service reads.
#[derive(Debug, Clone)]
pub struct ConsentGuard {
    pub store: Store,
}

fn refuse(index: usize, at: &str, text: String) -> Refusal {
    Refusal {
        index,
        error: ApiError::Invalid(Issue::new("business-rule", text).at(at.to_owned())),
    }
}

impl ConsentGuard {
    async fn check_one(&self, index: usize, consent: &Validated) -> Result<(), Refusal> {
        let caller = auth::current().map_err(|error| Refusal { index, error })?;
        let object = &consent.object;
        let recorders: Vec<&str> = object
            .get("organization")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o["reference"].as_str())
            .collect();
        if !recorders.contains(&caller.organization.as_str()) {
            return Err(refuse(
                index,
                "Consent.organization",
                format!(
                    "Consent.organization must name the organization that records the patient's decision, which is yours: {}",
                    caller.organization
                ),
            ));
        }
        let provision = object.get("provision").unwrap_or(&Value::Null);
        match provision["type"].as_str() {
            Some("permit" | "deny") => {}
            _ => {
                return Err(refuse(
                    index,
                    "Consent.provision.type",
                    "Consent.provision.type must say permit or deny".to_owned(),
                ));
            }
        }
        if provision.get("provision").is_some() {
            return Err(refuse(
                index,
                "Consent.provision.provision",
                "nested provisions are not supported: record each decision as its own Consent"
                    .to_owned(),
            ));
        }
        if provision["type"] == "permit" {
            let names_self = provision["actor"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["reference"]["reference"] == caller.organization.as_str());
            if names_self {
                return Err(refuse(
                    index,
                    "Consent.provision.actor",
                    format!(
                        "{} cannot record a Consent that permits itself; another organization the patient trusts records it",
                        caller.organization
                    ),
                ));
            }
        }
        let patient = object
            .get("patient")
            .and_then(|p| p["reference"].as_str())
            .and_then(|r| r.strip_prefix("Patient/"));
        let Some(patient) = patient else {
            return Err(refuse(
                index,
                "Consent.patient",
                "Consent.patient must name the Patient (Patient/<id>)".to_owned(),
            ));
        };
        match self.store.read("Patient", patient).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. } | StoreError::Deleted { .. }) => Err(refuse(
                index,
                "Consent.patient",
                format!("Patient/{patient} is not in the identity registry"),
            )),
            Err(err) => Err(Refusal {
                index,
                error: err.into(),
            }),
        }
    }
}

impl Guard for ConsentGuard {
    fn check<'a>(&'a self, resources: &'a [&'a Validated]) -> Check<'a> {
        Box::pin(async move {
            for (index, resource) in resources.iter().enumerate() {
                if resource.resource_type == "AuditEvent" {
                    return Err(Refusal {
                        index,
                        error: audit_events_are_the_nodes(),
                    });
                }
                if resource.resource_type == "Consent" {
                    self.check_one(index, resource).await?;
                }
            }
            Ok(())
        })
    }

    fn may_delete(&self, resource_type: &str) -> Result<(), ApiError> {
        self.may_write(resource_type)
    }

    fn may_write(&self, resource_type: &str) -> Result<(), ApiError> {
        if resource_type == "AuditEvent" {
            return Err(audit_events_are_the_nodes());
        }
        Ok(())
    }
}

/// The refusal of any write of an AuditEvent through the API, even the
/// node operator's: the audit trail is written only by the node, and never
/// changed.
fn audit_events_are_the_nodes() -> ApiError {
    ApiError::Forbidden(
        Issue::new(
            "forbidden",
            "AuditEvents are written by the node itself and can never be created, changed or deleted through the API",
        )
        .at("AuditEvent"),
    )
}

/// Who may see and change Consents: the organization that recorded one, and
/// those it names. AuditEvents: the organization that made the access.
/// Patients, Organizations and Practitioners are the shared registry: every
/// partner with the scope sees them.
#[derive(Debug, Clone, Default)]
pub struct IdentityPolicy;

impl IdentityPolicy {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self)
    }
}

impl Policy for IdentityPolicy {
    fn readable<'a>(&'a self, caller: &'a Caller, resource_type: &'a str) -> Deciding<'a> {
        Box::pin(async move {
            if resource_type == "AuditEvent" {
                // A partner sees the record of its own accesses; the node's
                // operator sees every one.
                return Ok(Some(Access {
                    any_of: vec![Condition::Refers {
                        param: "agent",
                        references: vec![caller.organization.clone()],
                    }],
                    none_of: Vec::new(),
                }));
            }
            Ok((resource_type == "Consent").then(|| Access {
                any_of: vec![
                    Condition::Refers {
                        param: "organization",
                        references: vec![caller.organization.clone()],
                    },
                    Condition::Refers {
                        param: "actor",
                        references: vec![caller.organization.clone()],
                    },
                ],
                none_of: Vec::new(),
            }))
        })
    }

    fn writable(&self, caller: &Caller, resource_type: &str) -> Option<Access> {
        (resource_type == "Consent").then(|| Access {
            any_of: vec![Condition::Refers {
                param: "organization",
                references: vec![caller.organization.clone()],
            }],
            none_of: Vec::new(),
        })
    }
}
