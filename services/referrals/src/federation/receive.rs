//! The peer-facing API: who is calling, and applying what they send.
//!
//! Every call is identified by its client certificate before anything
//! else: the certificate must be signed by the CA configured for a peer and
//! name that peer (`urn:corridor:node:<id>`), and a message must claim that
//! node and its configured jurisdiction. A refusal is PERMISSION_DENIED
//! with an OperationOutcome that says why, and is audited.
//!
//! Receiving is idempotent: every write a message causes is made under the
//! idempotency key `federation:<message id>`, and the Patient and the
//! requesting Organization are found by the peer's identifier before one
//! is created. A retried message therefore changes nothing.

use std::sync::Arc;

use base64::Engine;
use corridor_fhir::Issue;
use corridor_proto::federation::v1 as pb;
use corridor_proto::federation::v1::federation_service_server::FederationService;
use corridor_proto::identity::v1 as idpb;
use corridor_runtime::{ApiError, link};
use corridor_store::{StoreError, TxRequest};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use super::lanes::{self, Merged, Side};
use super::{CrossBorder, Federation, PeerConfig, directory, node_system};

/// The handlers of `FederationService`.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub federation: Arc<Federation>,
}

/// Where one message's receipt is audited: the peer, its Consent, what.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub direction: &'static str,
    pub peer: PeerConfig,
    pub consent: String,
    /// Whether the Consent is the peer's (this node performs the referral).
    pub consent_of_peer: bool,
    pub kind: String,
    pub message_id: String,
}

impl Exchange {
    /// Record it in identity's audit trail, with `entities` of this node,
    /// as the node's referrals service.
    pub async fn record(
        &self,
        federation: &Federation,
        entities: Vec<String>,
        outcome: Result<(), &str>,
    ) -> Result<(), ApiError> {
        corridor_runtime::auth::acting_as(
            super::acting_for_node(),
            self.record_as_node(federation, entities, outcome),
        )
        .await
    }

    async fn record_as_node(
        &self,
        federation: &Federation,
        entities: Vec<String>,
        outcome: Result<(), &str>,
    ) -> Result<(), ApiError> {
        let mut client = federation.identity.client();
        let request = idpb::RecordExchangeRequest {
            direction: self.direction.to_owned(),
            peer_node: self.peer.node_id.clone(),
            peer_jurisdiction: self.peer.jurisdiction.clone(),
            entities,
            consent: Some(self.consent.clone())
                .filter(|c| c.starts_with("Consent/"))
                .unwrap_or_default(),
            consent_of_peer: self.consent_of_peer,
            message_kind: self.kind.clone(),
            message_id: self.message_id.clone(),
            outcome: if outcome.is_ok() { "0" } else { "4" }.to_owned(),
            outcome_text: outcome.err().unwrap_or_default().to_owned(),
        };
        link::ask(
            "identity",
            "to record an exchange with a peer node",
            federation.identity.deadline(),
            request,
            |r| async move { client.record_exchange(r).await },
        )
        .await?;
        Ok(())
    }
}

/// Records each write of a receipt in identity before it commits: the
/// write fails if the receipt cannot be audited.
struct ReceiptWitness {
    federation: Arc<Federation>,
    exchange: Exchange,
}

impl corridor_store::witness::Witness for ReceiptWitness {
    fn witness<'a>(
        &'a self,
        written: &'a [corridor_store::Stored],
    ) -> corridor_store::witness::Witnessing<'a> {
        Box::pin(async move {
            let mut entities = Vec::new();
            for stored in written {
                entities.push(format!("{}/{}", stored.resource_type, stored.id));
                let value: Value = serde_json::from_str(&stored.json).unwrap_or_default();
                for element in ["subject", "for"] {
                    if let Some(patient) = value[element]["reference"].as_str()
                        && !entities.iter().any(|e| e == patient)
                    {
                        entities.push(patient.to_owned());
                    }
                }
            }
            self.exchange
                .record(&self.federation, entities, Ok(()))
                .await
                .map_err(|e| StoreError::Unwitnessed(e.to_string()))?;
            Ok(Vec::new())
        })
    }
}

fn refused(text: String) -> ApiError {
    ApiError::Forbidden(Issue::new("forbidden", text).at("peer"))
}

impl Receiver {
    /// The peer whose certificate the call came with, checked against what
    /// the message claims (`claimed`: node and jurisdiction); refusals are
    /// audited.
    async fn identify(
        &self,
        extensions: &http::Extensions,
        claimed: Option<(&str, &str)>,
        message: (&str, &str),
    ) -> Result<PeerConfig, Status> {
        match self.peer_of(extensions, claimed) {
            Ok(peer) => Ok(peer),
            Err((named, why)) => {
                tracing::warn!(peer = %named, why = %why, "peer refused");
                let exchange = Exchange {
                    direction: "receive",
                    peer: PeerConfig {
                        node_id: named,
                        jurisdiction: claimed.map(|c| c.1.to_owned()).unwrap_or_default(),
                        endpoint: String::new(),
                        ca_pem: String::new(),
                    },
                    consent: String::new(),
                    consent_of_peer: false,
                    kind: message.0.to_owned(),
                    message_id: message.1.to_owned(),
                };
                if let Err(err) = exchange
                    .record(&self.federation, Vec::new(), Err(&why))
                    .await
                {
                    tracing::error!(error = %err, "a refused peer could not be audited");
                }
                Err(refused(why).into())
            }
        }
    }

    /// The configured peer a call's certificate proves, or (who it seemed
    /// to be, why it is refused).
    fn peer_of(
        &self,
        extensions: &http::Extensions,
        claimed: Option<(&str, &str)>,
    ) -> Result<PeerConfig, (String, String)> {
        let claimed_node = claimed.map_or("unknown", |c| c.0).to_owned();
        let Some(leaf) = corridor_runtime::tls::peer_certificate(extensions) else {
            return Err((
                claimed_node,
                "a peer node calls over mutual TLS with its node certificate; this call showed none".to_owned(),
            ));
        };
        let mut seen = Vec::new();
        let mut found = None;
        for peer in self.federation.peers() {
            if let Ok(names) = corridor_runtime::tls::nodes_certified_by(&leaf, &peer.config.ca_pem)
            {
                if names.contains(&peer.config.node_id) {
                    found = Some(peer.config.clone());
                    break;
                }
                seen.push(format!(
                    "the CA of peer {} signed it, but it names {}",
                    peer.config.node_id,
                    if names.is_empty() {
                        "no node".to_owned()
                    } else {
                        format!("node {}", names.join(", "))
                    }
                ));
            }
        }
        let Some(peer) = found else {
            let why = if seen.is_empty() {
                "the certificate is not one of a configured peer's CA".to_owned()
            } else {
                seen.join("; ")
            };
            return Err((
                claimed_node,
                format!(
                    "unknown peer: {why}; this node federates only with {}",
                    self.known()
                ),
            ));
        };
        if let Some((node, jurisdiction)) = claimed {
            if node != peer.node_id {
                return Err((
                    node.to_owned(),
                    format!(
                        "the message claims node '{node}', but the certificate is node {}'s",
                        peer.node_id
                    ),
                ));
            }
            if jurisdiction != peer.jurisdiction {
                return Err((
                    node.to_owned(),
                    format!(
                        "the message claims jurisdiction '{jurisdiction}', but node {} is the peer of jurisdiction {}",
                        peer.node_id, peer.jurisdiction
                    ),
                ));
            }
        }
        Ok(peer)
    }

    fn known(&self) -> String {
        self.federation
            .peers()
            .iter()
            .map(|p| format!("{} ({})", p.config.node_id, p.config.jurisdiction))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[tonic::async_trait]
impl FederationService for Receiver {
    async fn directory(
        &self,
        request: Request<pb::DirectoryRequest>,
    ) -> Result<Response<pb::DirectoryResponse>, Status> {
        let peer = self
            .identify(request.extensions(), None, ("directory", ""))
            .await?;
        let organizations = corridor_runtime::auth::acting_as(
            super::acting_for_node(),
            directory::published(&self.federation),
        )
        .await?;
        tracing::debug!(peer = %peer.node_id, count = organizations.len(), "directory served");
        Ok(Response::new(pb::DirectoryResponse {
            node_id: self.federation.config.node_id.clone(),
            jurisdiction: self.federation.config.jurisdiction.clone(),
            organizations,
        }))
    }

    async fn deliver(
        &self,
        request: Request<pb::DeliverRequest>,
    ) -> Result<Response<pb::DeliverResponse>, Status> {
        let (claimed_node, claimed_jurisdiction, kind, id) = {
            let r = request.get_ref();
            (
                r.sender_node.clone(),
                r.sender_jurisdiction.clone(),
                r.kind.clone(),
                r.message_id.clone(),
            )
        };
        let peer = self
            .identify(
                request.extensions(),
                Some((&claimed_node, &claimed_jurisdiction)),
                (&kind, &id),
            )
            .await?;
        let message = request.into_inner();
        let federation = Arc::clone(&self.federation);
        let answer = corridor_runtime::auth::acting_as(
            super::acting_for_node(),
            apply(federation, peer, message),
        )
        .await?;
        Ok(Response::new(answer))
    }
}

fn invalid(at: &str, text: impl Into<String>) -> ApiError {
    ApiError::Invalid(Issue::new("invalid", text).at(at.to_owned()))
}

/// Apply one message from `peer`.
async fn apply(
    federation: Arc<Federation>,
    peer: PeerConfig,
    message: pb::DeliverRequest,
) -> Result<pb::DeliverResponse, ApiError> {
    let key_ok = !message.message_id.is_empty()
        && message.message_id.len() <= 200
        && message.message_id.bytes().all(|b| b.is_ascii_graphic());
    if !key_ok {
        return Err(invalid(
            "message_id",
            "message_id is 1-200 visible ASCII characters",
        ));
    }
    let task_ok = (1..=64).contains(&message.referral_task.len())
        && message
            .referral_task
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !task_ok {
        return Err(invalid(
            "referral_task",
            "referral_task is the requesting node's Task id (1-64 letters, digits, '-', '.')",
        ));
    }
    let body: Value = serde_json::from_str(&message.body)
        .map_err(|e| invalid("body", format!("body is not JSON: {e}")))?;
    let exchange = Exchange {
        direction: "receive",
        peer: peer.clone(),
        consent: String::new(),
        consent_of_peer: false,
        kind: message.kind.clone(),
        message_id: message.message_id.clone(),
    };
    match message.kind.as_str() {
        "referral" => {
            if message.referral_node != peer.node_id {
                return Err(invalid(
                    "referral_node",
                    format!(
                        "a new referral comes from the requesting node, {}, not from {}",
                        message.referral_node, peer.node_id
                    ),
                ));
            }
            receive_referral(&federation, &peer, &message, &body, exchange).await
        }
        "status" => receive_status(&federation, &peer, &message, &body, exchange).await,
        other => Err(invalid(
            "kind",
            format!("kind is referral or status, not '{other}'"),
        )),
    }
}

/// `value` without what its node set: id, meta, and links to its other
/// records.
/// Its references to the peer's other records (`Type/id`, which mean
/// nothing here) become logical references by identifier
/// (`urn:corridor:node:<peer>|Type/id`), keeping their display.
pub(crate) fn foreign(value: &Value, peer: &str) -> serde_json::Map<String, Value> {
    let mut object = value.as_object().cloned().unwrap_or_default();
    object.remove("id");
    object.remove("meta");
    object.remove("text");
    match logical_references(Value::Object(object), &node_system(peer)) {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    }
}

fn logical_references(value: Value, system: &str) -> Value {
    match value {
        Value::Object(mut map) => {
            let relative = map
                .get("reference")
                .and_then(Value::as_str)
                .filter(|r| {
                    r.split_once('/').is_some_and(|(kind, id)| {
                        kind.bytes().all(|b| b.is_ascii_alphabetic())
                            && !id.is_empty()
                            && !id.contains('/')
                    })
                })
                .map(str::to_owned);
            if let Some(reference) = relative {
                map.remove("reference");
                map.insert(
                    "identifier".into(),
                    json!({"system": system, "value": reference}),
                );
                return Value::Object(map);
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, logical_references(v, system)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| logical_references(v, system))
                .collect(),
        ),
        other => other,
    }
}

/// Add `identifier` to `object`'s identifiers.
fn add_identifier(object: &mut serde_json::Map<String, Value>, system: &str, value: &str) {
    let mut identifiers = object
        .get("identifier")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    identifiers.retain(|i| i["system"] != system);
    identifiers.push(json!({"system": system, "value": value}));
    object.insert("identifier".into(), Value::Array(identifiers));
}

async fn receive_referral(
    federation: &Arc<Federation>,
    peer: &PeerConfig,
    message: &pb::DeliverRequest,
    body: &Value,
    mut exchange: Exchange,
) -> Result<pb::DeliverResponse, ApiError> {
    let system = node_system(&peer.node_id);
    let consent = body["consent"].as_str().unwrap_or_default().to_owned();
    if !consent.starts_with("Consent/") {
        return Err(invalid(
            "body.consent",
            "a cross-border referral names the Consent it is shared under (Consent/<id>)",
        ));
    }
    exchange.consent = consent.clone();
    exchange.consent_of_peer = true;
    let service_request = &body["serviceRequest"];
    let sr_id = service_request["id"].as_str().unwrap_or_default();
    let patient = &body["patient"];
    let patient_id = patient["id"].as_str().unwrap_or_default();
    let requester = &body["requester"];
    let requester_id = requester["id"].as_str().unwrap_or_default();
    for (at, what, id) in [
        ("body.serviceRequest", "ServiceRequest", sr_id),
        ("body.patient", "Patient", patient_id),
        ("body.requester", "Organization", requester_id),
    ] {
        if id.is_empty() || id.contains('/') {
            return Err(invalid(
                at,
                format!("the referral carries its {what} with its id"),
            ));
        }
    }
    // The performer must be one of this node's published Organizations.
    let performer = body["performer"].as_str().unwrap_or_default();
    let performer_id = performer
        .strip_prefix("Organization/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            invalid(
                "body.performer",
                "performer is Organization/<id> of this node",
            )
        })?;
    let organization = federation
        .identity
        .read("Organization", performer_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                Issue::new(
                    "not-found",
                    format!(
                        "{performer} is not registered on node {}",
                        federation.config.node_id
                    ),
                )
                .at("body.performer"),
            )
        })?;
    let organization: Value = serde_json::from_str(&organization.json).unwrap_or_default();
    if !directory::is_published(&organization) {
        return Err(ApiError::Conflict(
            Issue::new(
                "business-rule",
                format!(
                    "{performer} does not accept cross-border referrals on node {}",
                    federation.config.node_id
                ),
            )
            .at("body.performer"),
        ));
    }
    let requester_local = directory::mirror(federation, &peer.node_id, requester, false).await?;
    let patient_local = link_patient(federation, &peer.node_id, patient).await?;

    let mut sr = foreign(service_request, &peer.node_id);
    add_identifier(&mut sr, &system, &format!("ServiceRequest/{sr_id}"));
    sr.insert(
        "subject".into(),
        json!({"reference": format!("Patient/{patient_local}")}),
    );
    sr.insert("requester".into(), json!({"reference": requester_local}));
    sr.insert("performer".into(), json!([{"reference": performer}]));
    sr.insert("status".into(), json!("active"));
    sr.insert("meta".into(), json!({"source": system}));
    let resources = &federation.resources;
    let sr = resources.validate(&Value::Object(sr).to_string())?;
    let now = corridor_store::now_instant();
    let marker = CrossBorder {
        peer: peer.node_id.clone(),
        side: Side::Performing,
        consent: consent.clone(),
        peer_sequence: message.sequence,
    };
    let mut task = json!({
        "resourceType": "Task",
        "meta": {"source": system},
        "extension": [marker.extension()],
        "identifier": [{"system": system, "value": format!("Task/{}", message.referral_task)}],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": "urn:uuid:00000000-0000-4000-8000-00000000005f"},
        "for": {"reference": format!("Patient/{patient_local}")},
        "authoredOn": body["task"]["authoredOn"].as_str().unwrap_or(&now),
        "lastModified": now,
        "requester": {"reference": requester_local},
        "owner": {"reference": performer},
    });
    if body["summary"].is_object() {
        let summary = body["summary"].to_string();
        task["input"] = json!([{
            "type": {"text": "patient-summary"},
            "valueAttachment": {
                "contentType": "application/fhir+json",
                "data": base64::engine::general_purpose::STANDARD.encode(summary.as_bytes()),
                "title": format!("Patient summary from node {} ({}), under {consent}", peer.node_id, peer.jurisdiction),
            },
        }]);
    }
    let task = resources.validate(&task.to_string())?;
    let key = format!("federation:{}", message.message_id);
    let witness = Arc::new(ReceiptWitness {
        federation: Arc::clone(federation),
        exchange: exchange.clone(),
    });
    let result = corridor_store::witness::witnessed(
        witness,
        resources.store().transaction_as(
            &[
                TxRequest::Create {
                    full_url: Some("urn:uuid:00000000-0000-4000-8000-00000000005f".to_owned()),
                    resource: sr,
                    if_none_exist: None,
                    id: None,
                },
                TxRequest::Create {
                    full_url: None,
                    resource: task,
                    if_none_exist: None,
                    id: None,
                },
            ],
            Some(&key),
            Some(&key),
        ),
    )
    .await?;
    let task_id = result
        .entries
        .get(1)
        .map(|e| e.stored.id.clone())
        .unwrap_or_default();
    tracing::info!(peer = %peer.node_id, task = %task_id, replayed = result.replayed, "cross-border referral received");
    Ok(pb::DeliverResponse {
        task_id,
        applied: !result.replayed,
    })
}

/// The local Patient of a peer's Patient: the one made for it before
/// (found by the peer's identifier), or a new one, linked to the same
/// person already registered here when `$match` is certain of one.
async fn link_patient(
    federation: &Arc<Federation>,
    peer: &str,
    patient: &Value,
) -> Result<String, ApiError> {
    let system = node_system(peer);
    let remote_id = patient["id"].as_str().unwrap_or_default();
    let mut object = foreign(patient, peer);
    object.remove("link");
    add_identifier(&mut object, &system, &format!("Patient/{remote_id}"));
    object.insert(
        "meta".into(),
        json!({"tag": [{"system": super::PEER_SYSTEM, "code": peer}]}),
    );
    let identity = &federation.identity;
    let mut client = identity.client();
    let created = link::ask(
        "identity",
        "to register the referred Patient",
        identity.deadline(),
        idpb::CreateRequest {
            resource: Value::Object(object).to_string(),
            if_none_exist: format!("identifier={system}|Patient/{remote_id}"),
        },
        |r| async move { client.create(r).await },
    )
    .await?;
    let stored = created.resource.unwrap_or_default();
    let local: Value = serde_json::from_str(&stored.json).unwrap_or_default();
    if local["link"].as_array().is_some_and(|l| !l.is_empty()) {
        return Ok(stored.id);
    }
    // Not yet linked: is the same person registered here already?
    let mut client = identity.client();
    let matched = link::ask(
        "identity",
        "to match the referred Patient",
        identity.deadline(),
        idpb::MatchRequest {
            resource: stored.json.clone(),
            count: 3,
            only_certain_matches: true,
        },
        |r| async move { client.r#match(r).await },
    )
    .await?;
    let bundle: Value = matched
        .bundle
        .map(|b| serde_json::from_str(&b.json).unwrap_or_default())
        .unwrap_or_default();
    let candidate = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str())
        .find(|id| *id != stored.id);
    if let Some(other) = candidate {
        let mut client = identity.client();
        link::ask(
            "identity",
            "to link the referred Patient to the same person here",
            identity.deadline(),
            idpb::LinkRequest {
                patient_id: stored.id.clone(),
                other_id: other.to_owned(),
                decided_by: format!("corridor federation (node {peer})"),
                reason: "a cross-border referral's Patient that $match is certain of".to_owned(),
            },
            |r| async move { client.link(r).await },
        )
        .await?;
        tracing::info!(patient = %stored.id, other, "referred patient linked");
    }
    Ok(stored.id)
}

async fn receive_status(
    federation: &Arc<Federation>,
    peer: &PeerConfig,
    message: &pb::DeliverRequest,
    body: &Value,
    exchange: Exchange,
) -> Result<pb::DeliverResponse, ApiError> {
    let store = federation.resources.store();
    let own = &federation.config.node_id;
    // Which local Task: ours, when we requested it; else the one made
    // from the requesting node's.
    let task_id = if message.referral_node == *own {
        message.referral_task.clone()
    } else if message.referral_node == peer.node_id {
        let system = node_system(&peer.node_id);
        let params = vec![(
            "identifier".to_owned(),
            format!("{system}|Task/{}", message.referral_task),
        )];
        let page = store.search("Task", &params, None).await?;
        page.bundle["entry"][0]["resource"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::NotFound(
                    Issue::new(
                        "not-found",
                        format!(
                            "node {own} has no referral Task/{} of node {}; its referral message comes first",
                            message.referral_task, peer.node_id
                        ),
                    )
                    .at("referral_task"),
                )
            })?
    } else {
        return Err(invalid(
            "referral_node",
            format!(
                "the referral is either this node's ({own}) or the sender's ({}), not {}'s",
                peer.node_id, message.referral_node
            ),
        ));
    };
    // A local transition may commit between reading the Task and writing
    // it: then the merge is made again against what it wrote.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match merge_status(federation, peer, message, body, &exchange, &task_id).await {
            Err(ApiError::Store(StoreError::VersionConflict { .. })) if attempts < 5 => {
                tracing::debug!(task = %task_id, attempts, "a local transition came first; merging again");
            }
            result => return result,
        }
    }
}

/// Merge a peer's status into the local Task `task_id` once.
async fn merge_status(
    federation: &Arc<Federation>,
    peer: &PeerConfig,
    message: &pb::DeliverRequest,
    body: &Value,
    exchange: &Exchange,
    task_id: &str,
) -> Result<pb::DeliverResponse, ApiError> {
    let store = federation.resources.store();
    let own = &federation.config.node_id;
    let current = store.read("Task", task_id).await.map_err(|e| match e {
        StoreError::NotFound { .. } | StoreError::Deleted { .. } => ApiError::NotFound(
            Issue::new("not-found", format!("node {own} has no Task/{task_id}"))
                .at("referral_task"),
        ),
        other => other.into(),
    })?;
    let task: Value = serde_json::from_str(&current.json).unwrap_or_default();
    let mut marker = CrossBorder::of(&task)
        .filter(|m| m.peer == peer.node_id)
        .ok_or_else(|| {
            ApiError::Forbidden(
                Issue::new(
                    "forbidden",
                    format!(
                        "Task/{task_id} is not a cross-border referral shared with node {}",
                        peer.node_id
                    ),
                )
                .at("referral_task"),
            )
        })?;
    let mut exchange = exchange.clone();
    exchange.consent = marker.consent.clone();
    exchange.consent_of_peer = marker.side == Side::Performing;
    let answer = |applied| pb::DeliverResponse {
        task_id: task_id.to_owned(),
        applied,
    };
    if message.sequence <= marker.peer_sequence {
        // A retry of a message applied before.
        return Ok(answer(false));
    }
    let remote = body["status"].as_str().unwrap_or_default();
    let local = task["status"].as_str().unwrap_or_default();
    let merged = lanes::merge(marker.side, local, remote).ok_or_else(|| {
        ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!(
                    "node {} is the {} side of Task/{task_id}; moving it to '{remote}' is not one of its moves",
                    peer.node_id,
                    match marker.side {
                        Side::Requesting => "performing",
                        Side::Performing => "requesting",
                    }
                ),
            )
            .at("body.status"),
        )
    })?;
    let mut next = task.as_object().cloned().unwrap_or_default();
    marker.peer_sequence = message.sequence;
    marker.mark(&mut next);
    next.insert("meta".into(), json!({"source": node_system(&peer.node_id)}));
    let to = match merged {
        // Nothing changes but the sequence seen (a cancellation crossed a
        // move): the version records that the message was applied.
        Merged::Keep => local.to_owned(),
        Merged::Move(to) => {
            next.insert("status".into(), json!(to));
            next.insert("lastModified".into(), json!(corridor_store::now_instant()));
            let reason = body["reason"].as_str().unwrap_or_default();
            if to == remote && !reason.is_empty() {
                next.insert("statusReason".into(), json!({"text": reason}));
            } else {
                next.remove("statusReason");
            }
            if to == "completed" {
                let mut outputs = next
                    .get("output")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                outputs.extend(outcome_outputs(peer, body));
                next.insert("output".into(), Value::Array(outputs));
            }
            to.to_owned()
        }
    };
    let validated = federation
        .resources
        .validate(&Value::Object(next).to_string())?;
    let key = format!("federation:{}", message.message_id);
    let witness = Arc::new(ReceiptWitness {
        federation: Arc::clone(federation),
        exchange,
    });
    corridor_store::witness::witnessed(
        witness,
        store.update_as(
            "Task",
            task_id,
            &validated,
            Some(&current.version.to_string()),
            Some(&key),
            &key,
        ),
    )
    .await?;
    tracing::info!(task = %task_id, local, remote, to, "peer status merged");
    Ok(answer(true))
}

/// The Task.output entries of an outcome a performing node returned: its
/// summary, the outcome Bundle, and a reference to each output there.
fn outcome_outputs(peer: &PeerConfig, body: &Value) -> Vec<Value> {
    let mut outputs = Vec::new();
    if let Some(summary) = body["summary"].as_str().filter(|s| !s.is_empty()) {
        outputs.push(json!({"type": {"text": "outcome-summary"}, "valueString": summary}));
    }
    if body["outcome"].is_object() {
        outputs.push(json!({
            "type": {"text": "outcome"},
            "valueAttachment": {
                "contentType": "application/fhir+json",
                "data": base64::engine::general_purpose::STANDARD.encode(body["outcome"].to_string().as_bytes()),
                "title": format!("The referral's outcome, from node {} ({})", peer.node_id, peer.jurisdiction),
            },
        }));
    }
    let system = node_system(&peer.node_id);
    for output in body["outputs"].as_array().into_iter().flatten() {
        if let Some(reference) = output.as_str() {
            outputs.push(json!({
                "type": {"text": "outcome"},
                "valueReference": {
                    "identifier": {"system": system, "value": reference},
                    "display": format!("{reference} on node {}", peer.node_id),
                },
            }));
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_resource_loses_what_its_node_set_and_names_the_peers_records_by_identifier() {
        let mut object = foreign(
            &json!({
                "resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"},
                "identifier": [{"system": "urn:corridor:node:it", "value": "old"}],
                "managingOrganization": {"reference": "Organization/o1", "display": "NGO"},
                "contact": [{"organization": {"reference": "https://x.example/Organization/9"}}],
            }),
            "it",
        );
        add_identifier(&mut object, "urn:corridor:node:it", "Patient/p1");
        assert_eq!(object.get("id"), None);
        assert_eq!(object.get("meta"), None);
        assert_eq!(
            object["identifier"],
            json!([{"system": "urn:corridor:node:it", "value": "Patient/p1"}])
        );
        assert_eq!(
            object["managingOrganization"],
            json!({"display": "NGO", "identifier": {"system": "urn:corridor:node:it", "value": "Organization/o1"}}),
            "a reference to the peer's record becomes one by identifier"
        );
        assert_eq!(
            object["contact"][0]["organization"]["reference"], "https://x.example/Organization/9",
            "an absolute reference stays"
        );
    }

    #[test]
    fn a_returned_outcome_becomes_task_outputs_naming_the_peer() {
        let peer = PeerConfig {
            node_id: "fr".into(),
            jurisdiction: "FR".into(),
            endpoint: String::new(),
            ca_pem: String::new(),
        };
        let outputs = outcome_outputs(
            &peer,
            &json!({"summary": "seen", "outcome": {"resourceType": "Bundle"}, "outputs": ["Encounter/e1"]}),
        );
        assert_eq!(outputs.len(), 3);
        assert_eq!(outputs[0]["valueString"], "seen");
        assert_eq!(
            outputs[1]["valueAttachment"]["contentType"],
            "application/fhir+json"
        );
        assert_eq!(
            outputs[2]["valueReference"]["identifier"],
            json!({"system": "urn:corridor:node:fr", "value": "Encounter/e1"})
        );
    }
}
