//! The node's audit trail is kept here: identity's own accesses are
//! written by its `Resources` (through `corridor_runtime::audit::StoreAudit`),
//! and the other services send theirs with `RecordAudit` ([`record`]).

use corridor_fhir::Issue;
use corridor_proto::identity::v1 as pb;
use corridor_runtime::ApiError;
use corridor_runtime::audit::{self, Outcome, Record};
use corridor_runtime::auth::Caller;
use corridor_store::Store;

/// The services that report accesses to identity.
const SOURCES: &[&str] = &["encounters", "referrals"];

/// The service a report names as its `source`: one of [`SOURCES`], and
/// over mutual TLS one the reporting certificate names (`proven`).
fn reporting_source(source: &str, proven: Option<&[String]>) -> Result<&'static str, ApiError> {
    let Some(source) = SOURCES.iter().copied().find(|s| *s == source) else {
        return Err(invalid(
            "source",
            format!("source is one of {}, not '{source}'", SOURCES.join(", ")),
        ));
    };
    if let Some(names) = proven
        && !names.iter().any(|name| name == source)
    {
        return Err(ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!(
                    "the reporting service's certificate names {}, not the source '{source}'",
                    names.join(", ")
                ),
            )
            .at("source"),
        ));
    }
    Ok(source)
}

/// Refuse an entity that is not `Type/id`.
fn entity_reference(entity: &str) -> Result<(), ApiError> {
    let valid = entity
        .split_once('/')
        .is_some_and(|(t, id)| !t.is_empty() && !id.is_empty() && !id.contains('/'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "entities",
            format!("an entity is Type/id, not '{entity}'"),
        ))
    }
}

fn invalid(at: &str, text: String) -> ApiError {
    ApiError::Invalid(Issue::new("invalid", text).at(at.to_owned()))
}

/// Store the AuditEvent of a call another service refused for its token;
/// its id. `proven` as for [`record`].
pub async fn record_refusal(
    store: &Store,
    jurisdiction: &str,
    proven: Option<&[String]>,
    req: pb::RecordRefusalRequest,
) -> Result<String, ApiError> {
    let source = reporting_source(&req.source, proven)?;
    let method = req.method.trim();
    let valid = method.starts_with('/')
        && method.len() <= 200
        && method[1..]
            .split_once('/')
            .is_some_and(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'));
    if !valid {
        return Err(invalid(
            "method",
            format!("method is /package.Service/Method, not '{method}'"),
        ));
    }
    let reason: String = req.reason.chars().take(500).collect();
    let claimed: Option<String> =
        Some(req.claimed_client.chars().take(64).collect::<String>()).filter(|c| !c.is_empty());
    let event = audit::refusal_event(method, &reason, claimed.as_deref(), jurisdiction, source);
    Ok(store.create(&event, None, None).await?.stored.id)
}

/// Records the calls identity itself refuses for their token, in its own
/// store.
#[derive(Debug, Clone)]
pub struct OwnRefusals {
    pub store: Store,
    pub jurisdiction: String,
}

impl corridor_runtime::auth::Refusals for OwnRefusals {
    fn record(
        &self,
        refusal: corridor_runtime::auth::Refusal,
    ) -> corridor_runtime::auth::Reporting<'_> {
        Box::pin(async move {
            let event = audit::refusal_event(
                &refusal.method,
                &refusal.reason,
                refusal.claimed_client.as_deref(),
                &self.jurisdiction,
                "identity",
            );
            self.store.create(&event, None, None).await?;
            Ok(())
        })
    }
}

/// Store the AuditEvent of `caller`'s access that another service reports;
/// its id. `proven` holds the services the reporting connection's
/// certificate names (mutual TLS); the source must be one of them.
pub async fn record(
    store: &Store,
    caller: &Caller,
    proven: Option<&[String]>,
    req: pb::RecordAuditRequest,
) -> Result<String, ApiError> {
    let action = match req.action.as_str() {
        "C" => "C",
        "R" => "R",
        "U" => "U",
        "D" => "D",
        "E" => "E",
        other => {
            return Err(invalid(
                "action",
                format!("action is C, R, U, D or E, not '{other}'"),
            ));
        }
    };
    let outcome = match req.outcome.as_str() {
        "0" => Outcome::Success,
        "4" => Outcome::Refused,
        "8" => Outcome::Failed,
        other => {
            return Err(invalid(
                "outcome",
                format!("outcome is 0, 4 or 8, not '{other}'"),
            ));
        }
    };
    let source = reporting_source(&req.source, proven)?;
    if req.subtype.trim().is_empty() {
        return Err(invalid(
            "subtype",
            "say which interaction or operation it was".to_owned(),
        ));
    }
    let mut record = Record::new(action, req.subtype.trim());
    for entity in &req.entities {
        entity_reference(entity)?;
        record.entity(entity.clone());
    }
    record.query = Some(req.query).filter(|q| !q.is_empty());
    record.outcome = outcome;
    record.outcome_text = Some(req.outcome_text).filter(|t| !t.is_empty());
    let event = audit::event(caller, &record, source);
    Ok(store.create(&event, None, None).await?.stored.id)
}

/// Store the AuditEvent of an exchange with a peer node that the referrals
/// service reports (`proven` as for [`record`]): a disclosure (DICOM
/// "Export") or a receipt ("Import"), naming the peer node as an agent, the
/// resources, and the Consent it was made under.
pub async fn record_exchange(
    store: &Store,
    jurisdiction: &str,
    proven: Option<&[String]>,
    req: pb::RecordExchangeRequest,
) -> Result<String, ApiError> {
    reporting_source("referrals", proven)?;
    let (code, display, action, role) = match req.direction.as_str() {
        "disclose" => ("110106", "Export", "R", "DST"),
        "receive" => ("110107", "Import", "C", "ORG"),
        other => {
            return Err(invalid(
                "direction",
                format!("direction is disclose or receive, not '{other}'"),
            ));
        }
    };
    let outcome = match req.outcome.as_str() {
        "0" => "0",
        "4" => "4",
        "8" => "8",
        other => {
            return Err(invalid(
                "outcome",
                format!("outcome is 0, 4 or 8, not '{other}'"),
            ));
        }
    };
    // What a refused caller claimed is kept, within reason.
    let peer: String = req.peer_node.trim().chars().take(64).collect();
    let peer = peer.as_str();
    if peer.is_empty() {
        return Err(invalid("peer_node", "name the peer node".to_owned()));
    }
    let mut entities = Vec::new();
    for entity in req
        .entities
        .iter()
        .chain(Some(&req.consent).filter(|c| !c.is_empty()))
    {
        entity_reference(entity)?;
        let is_patient = entity.starts_with("Patient/");
        let is_consent = *entity == req.consent;
        let mut value = serde_json::json!({
            "what": if is_consent && req.consent_of_peer {
                // The Consent is the peer's: named by identifier.
                serde_json::json!({"identifier": {"system": format!("urn:corridor:node:{peer}"), "value": entity}})
            } else {
                serde_json::json!({"reference": entity})
            },
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": if is_patient { "1" } else { "2" }},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": if is_patient { "1" } else { "4" }},
        });
        if is_consent {
            value["description"] = serde_json::json!("the Consent the exchange was made under");
        }
        entities.push(value);
    }
    let message: String = req.message_kind.chars().take(32).collect();
    let message_id: String = req.message_id.chars().take(200).collect();
    entities.push(serde_json::json!({
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
        "name": message_id,
        "description": format!("federation message: {message}"),
    }));
    let peer_jurisdiction: String = req.peer_jurisdiction.chars().take(16).collect();
    let mut event = serde_json::json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": code, "display": display},
        "subtype": [{"system": audit::OPERATION_SYSTEM, "code": format!("$federation-{}", req.direction)}],
        "action": action,
        "recorded": corridor_store::now_instant(),
        "outcome": outcome,
        "agent": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV"}]},
                "name": "corridor referrals",
                "requestor": req.direction == "disclose",
            },
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": role}]},
                "who": {"identifier": {"system": "urn:corridor:node", "value": peer}},
                "name": format!("node {peer} ({peer_jurisdiction})"),
                "requestor": req.direction == "receive",
            },
        ],
        "source": {
            "site": jurisdiction,
            "observer": {"display": "corridor referrals"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    });
    if !req.outcome_text.is_empty() {
        event["outcomeDesc"] =
            serde_json::json!(req.outcome_text.chars().take(1000).collect::<String>());
    }
    // Built here, as every AuditEvent is: fhir-sdk's R4B models hold no
    // AuditEvent to check it against.
    let event = corridor_fhir::Validated {
        resource_type: "AuditEvent".to_owned(),
        object: match event {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        },
    };
    Ok(store.create(&event, None, None).await?.stored.id)
}
