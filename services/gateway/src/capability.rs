//! `GET /metadata`: the CapabilityStatement, made from what is wired: the
//! services' own resource definitions (types and search parameters), the
//! interactions the gateway routes, and [`OPERATIONS`].

use corridor_store::ParamKind;
use serde_json::{Value, json};

use crate::backends::Owner;
use crate::operations::OPERATIONS;

/// Types that are never written by a plain write: a referral's Task
/// changes through `$transition`, and AuditEvents are written only by the
/// node.
const READ_ONLY: [&str; 2] = ["Task", "AuditEvent"];

/// The search parameters every type takes besides its own.
const COMMON: [(&str, &str, &str); 2] = [
    ("_id", "token", "The resource's id"),
    ("_lastUpdated", "date", "When the resource was last written"),
];

pub fn statement(base: &str) -> Value {
    let mut resources = Vec::new();
    for owner in Owner::ALL {
        for def in owner.defs() {
            let writable = !READ_ONLY.contains(&def.resource_type);
            let mut interactions = vec!["read", "vread", "history-instance", "search-type"];
            if writable {
                interactions.extend(["create", "update", "delete"]);
            }
            let mut params: Vec<Value> = COMMON
                .iter()
                .map(|(name, kind, doc)| json!({"name": name, "type": kind, "documentation": doc}))
                .collect();
            for p in def.params {
                let kind = match p.kind {
                    ParamKind::String => "string",
                    ParamKind::Token | ParamKind::Phone => "token",
                    ParamKind::Date => "date",
                    ParamKind::Reference(_) => "reference",
                };
                params.push(json!({"name": p.name, "type": kind}));
            }
            let operations: Vec<Value> = OPERATIONS
                .iter()
                .filter(|o| o.resource_type == def.resource_type)
                .map(|o| {
                    json!({"name": o.name, "definition": o.definition, "documentation": o.documentation})
                })
                .collect();
            let mut resource = json!({
                "type": def.resource_type,
                "documentation": format!("Served by the {} service.", owner.name()),
                "interaction": interactions.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": false,
                "conditionalCreate": writable,
                "conditionalRead": "not-supported",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchParam": params,
            });
            if let Some(sortable) = (!def.sortable.is_empty()).then_some(def.sortable) {
                resource["documentation"] = json!(format!(
                    "Served by the {} service. _sort takes _id, _lastUpdated, {}.",
                    owner.name(),
                    sortable.join(", ")
                ));
            }
            if def
                .params
                .iter()
                .any(|p| matches!(p.kind, ParamKind::Reference(_)))
            {
                resource["searchInclude"] = json!(
                    def.params
                        .iter()
                        .filter(|p| matches!(p.kind, ParamKind::Reference(_)))
                        .map(|p| format!("{}:{}", def.resource_type, p.name))
                        .collect::<Vec<_>>()
                );
            }
            if !operations.is_empty() {
                resource["operation"] = json!(operations);
            }
            resources.push(resource);
        }
    }
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": time::OffsetDateTime::now_utc().date().to_string(),
        "publisher": "Corridor",
        "kind": "instance",
        "software": {"name": "Corridor", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Corridor node: identity, encounters and referrals behind one FHIR R4 REST API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Transactions are all or nothing whichever services own their entries (identity: Patient, Organization, Practitioner, Consent; encounters: the clinical record; referrals: ServiceRequest); conditional references and creates resolve. Batches take entries of any type. X-Idempotency-Key makes a retried write safe. Search is strict unless Prefer: handling=lenient. $import takes NDJSON in the kick-off request (Content-Type: application/fhir+ndjson, Prefer: respond-async) and runs it as a job polled at its Content-Location; input URLs are not fetched.",
            // SMART Backend Services: every request but this statement,
            // discovery and the token endpoint needs a bearer token.
            "security": {
                "cors": false,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": format!("{base}/token")}],
                }],
                "description": "Every request needs Authorization: Bearer <access token>. Partner systems get one with the client-credentials grant and a signed JWT assertion (SMART Backend Services) at the token URL; see .well-known/smart-configuration. What a token's organization may read is decided by its relationship to each record and by the patient's Consent; every access is audited.",
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "operation": [{
                "name": "import",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
                "documentation": "FHIR Bulk Data import of NDJSON sent in the request itself: 202 with the job's status URL, 200 with the manifest (written by type; errors as a Bundle of OperationOutcomes naming each line) when it ends.",
            }],
        }],
    })
}
