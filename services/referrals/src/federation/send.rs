//! Sending the deliveries outbox to one peer.
//!
//! Each pass takes the messages that are due and first in line of their
//! referral (see [`corridor_store::deliveries`]), so that a referral's
//! messages arrive one at a time and in order, while different referrals
//! go out side by side. A message is built when it is sent, from the Task
//! version it is about: a new referral only while the patient's Consent
//! permits disclosing it to the performing Organization.
//!
//! What happens to an attempt:
//! - the peer took it: the disclosure is audited, then the message is
//!   marked delivered (if the audit cannot be written, the message is sent
//!   again later; the peer applies it once);
//! - the peer or the network failed (UNAVAILABLE, a timeout, ...): tried
//!   again after an exponential back-off, and parked once it has been
//!   undeliverable for `park_after`;
//! - the peer refused it (INVALID_ARGUMENT, PERMISSION_DENIED, ...), or the
//!   Consent no longer permits it: parked at once, with the reason, for an
//!   operator to see and retry. Nothing is ever dropped.

use std::sync::Arc;
use std::time::Duration;

use corridor_fhir::Issue;
use corridor_proto::encounters::v1 as encpb;
use corridor_proto::federation::v1 as pb;
use corridor_proto::identity::v1 as idpb;
use corridor_runtime::{ApiError, Shutdown, link};
use corridor_store::deliveries::{Delivery, now_millis};
use serde_json::{Value, json};
use tonic::Code;

use super::receive::Exchange;
use super::{CrossBorder, Federation, Peer, Side, origin_of, peer_organization, summary};

/// Why a message could not be built.
#[derive(Debug)]
enum Unbuilt {
    /// It must not go (the Consent no longer permits it): park it.
    Refused(String),
    /// Something it needs could not be read now: try again later.
    Failed(ApiError),
}

impl From<ApiError> for Unbuilt {
    fn from(err: ApiError) -> Self {
        Self::Failed(err)
    }
}

impl From<corridor_store::StoreError> for Unbuilt {
    fn from(err: corridor_store::StoreError) -> Self {
        Self::Failed(err.into())
    }
}

/// A message ready to go, and how its disclosure is audited.
struct Built {
    request: pb::DeliverRequest,
    entities: Vec<String>,
    consent: String,
    consent_of_peer: bool,
}

/// Whether a refusal by the peer will not change on a retry.
fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Unauthenticated
    )
}

/// The pause before attempt `attempts + 1`: from `min`, doubling, at most
/// `max`, with up to a fifth added at random so that retries spread out.
pub fn backoff(attempts: i64, min: Duration, max: Duration) -> Duration {
    let doubled = min.saturating_mul(1u32 << attempts.clamp(0, 20));
    let base = doubled.min(max);
    let spread = u64::try_from(base.as_millis() / 5).unwrap_or(0).max(1);
    let jitter = u64::from(uuid::Uuid::new_v4().as_u128() as u16) % spread;
    base + Duration::from_millis(jitter)
}

/// Send `peer`'s deliveries until `shutdown`.
pub async fn run(federation: Arc<Federation>, peer: Peer, shutdown: Shutdown) {
    let store = federation.resources.store().clone();
    let node = peer.config.node_id.clone();
    loop {
        if shutdown.is_triggered() {
            return;
        }
        // Listen before looking, so that a message queued meanwhile wakes
        // this loop.
        let queued = federation.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        match store.due(&node, now_millis(), 32).await {
            Ok(due) if !due.is_empty() => {
                let mut sending = tokio::task::JoinSet::new();
                for delivery in due {
                    let federation = Arc::clone(&federation);
                    let peer = peer.clone();
                    sending.spawn(corridor_runtime::auth::acting_as(
                        super::acting_for_node(),
                        async move { attempt(&federation, &peer, delivery).await },
                    ));
                }
                while sending.join_next().await.is_some() {}
                continue;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(peer = %node, error = %err, "cannot read the deliveries; retrying")
            }
        }
        let wait = match store.next_due(&node).await {
            Ok(Some(at)) => (at - now_millis()).clamp(0, 1000),
            _ => 1000,
        };
        tokio::select! {
            () = &mut queued => {}
            () = tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(1000))) => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

/// One attempt at `delivery`, and what it leaves recorded.
async fn attempt(federation: &Federation, peer: &Peer, delivery: Delivery) {
    let store = federation.resources.store();
    let node = &peer.config.node_id;
    let exchange = |consent: String, consent_of_peer: bool| Exchange {
        direction: "disclose",
        peer: peer.config.clone(),
        consent,
        consent_of_peer,
        kind: delivery.kind.clone(),
        message_id: delivery.message_id.clone(),
    };
    let built = match build(federation, peer, &delivery).await {
        Ok(built) => built,
        Err(Unbuilt::Refused(why)) => {
            tracing::warn!(peer = %node, message = %delivery.message_id, why = %why, "not sent: parked");
            let task = format!("Task/{}", delivery.ordering_key);
            if let Err(err) = exchange(String::new(), false)
                .record(federation, vec![task], Err(&why))
                .await
            {
                tracing::error!(error = %err, "a withheld disclosure could not be audited");
            }
            count_send(&delivery.peer, "parked");
            record(store.park(delivery.id, &why).await);
            return;
        }
        Err(Unbuilt::Failed(err)) => {
            later(federation, &delivery, &format!("could not be built: {err}")).await;
            return;
        }
    };
    let mut client = peer.client.clone();
    let mut request = tonic::Request::new(built.request);
    request.set_timeout(federation.config.deadline);
    corridor_runtime::telemetry::inject_current(request.metadata_mut());
    let sent = tokio::time::timeout(federation.config.deadline, client.deliver(request)).await;
    match sent {
        Ok(Ok(answer)) => {
            let answer = answer.into_inner();
            let audited = exchange(built.consent, built.consent_of_peer)
                .record(federation, built.entities, Ok(()))
                .await;
            match audited {
                Ok(()) => {
                    tracing::info!(peer = %node, message = %delivery.message_id, their_task = %answer.task_id, applied = answer.applied, "delivered");
                    count_send(&delivery.peer, "delivered");
                    record(store.delivered(delivery.id).await);
                }
                Err(err) => {
                    later(
                        federation,
                        &delivery,
                        &format!("delivered, but the disclosure could not be audited yet: {err}"),
                    )
                    .await;
                }
            }
        }
        Ok(Err(status)) if permanent(status.code()) => {
            let why = format!(
                "node {node} refused it ({:?}): {}",
                status.code(),
                status.message()
            );
            tracing::warn!(peer = %node, message = %delivery.message_id, why = %why, "parked");
            count_send(&delivery.peer, "parked");
            record(store.park(delivery.id, &why).await);
        }
        Ok(Err(status)) => {
            let why = format!(
                "node {node} could not take it ({:?}): {}",
                status.code(),
                status.message()
            );
            later(federation, &delivery, &why).await;
        }
        Err(_) => {
            let why = format!(
                "node {node} did not answer within {} ms",
                federation.config.deadline.as_millis()
            );
            later(federation, &delivery, &why).await;
        }
    }
}

/// Try `delivery` again after its back-off, or park it once it has been
/// undeliverable for `park_after`.
async fn later(federation: &Federation, delivery: &Delivery, why: &str) {
    let store = federation.resources.store();
    let config = &federation.config;
    let now = now_millis();
    let age = Duration::from_millis(u64::try_from(now - delivery.created_at).unwrap_or(0));
    if age >= config.park_after {
        let why = format!(
            "undeliverable for {} s (CORRIDOR_FEDERATION_PARK_AFTER_SECS): {why}",
            age.as_secs()
        );
        tracing::warn!(peer = %delivery.peer, message = %delivery.message_id, why = %why, "parked");
        count_send(&delivery.peer, "parked");
        record(store.park(delivery.id, &why).await);
        return;
    }
    let pause = backoff(delivery.attempts, config.retry_min, config.retry_max);
    tracing::debug!(peer = %delivery.peer, message = %delivery.message_id, attempts = delivery.attempts + 1, ?pause, why, "will retry");
    let at = now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2);
    count_send(&delivery.peer, "retry");
    record(store.retry_later(delivery.id, why, at).await);
}

/// Count an attempt's outcome (corridor_federation_sends_total).
fn count_send(peer: &str, outcome: &'static str) {
    corridor_runtime::metrics::metrics()
        .federation_sends
        .get_or_create(&corridor_runtime::metrics::PeerOutcome {
            peer: peer.to_owned(),
            outcome,
        })
        .inc();
}

fn record(result: Result<(), corridor_store::StoreError>) {
    if let Err(err) = result {
        // The attempt stays pending and is made again: the peer applies a
        // message once however often it comes.
        tracing::error!(error = %err, "could not record a delivery attempt");
    }
}

fn reference_id(value: &Value, kind: &str) -> Result<String, Unbuilt> {
    value["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix(kind))
        .and_then(|r| r.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_owned)
        .ok_or_else(|| {
            Unbuilt::Refused(format!(
                "the Task names no {kind} where one is needed ({value})"
            ))
        })
}

/// Read `resource_type/id` from identity, as the node.
async fn identity_read(
    federation: &Federation,
    resource_type: &str,
    id: &str,
) -> Result<Value, Unbuilt> {
    let found = federation.identity.read(resource_type, id).await?;
    let found = found.ok_or_else(|| {
        Unbuilt::Refused(format!(
            "{resource_type}/{id} is not in the identity registry"
        ))
    })?;
    Ok(serde_json::from_str(&found.json).unwrap_or_default())
}

/// Build the message `delivery` is about.
async fn build(
    federation: &Federation,
    peer: &Peer,
    delivery: &Delivery,
) -> Result<Built, Unbuilt> {
    let body: Value = serde_json::from_str(&delivery.body).unwrap_or_default();
    let task_id = body["task"].as_str().unwrap_or_default();
    let version = body["version"].as_i64().unwrap_or_default();
    let stored = federation
        .resources
        .store()
        .vread("Task", task_id, &version.to_string())
        .await?;
    let task: Value = serde_json::from_str(&stored.json).unwrap_or_default();
    let marker = CrossBorder::of(&task)
        .ok_or_else(|| Unbuilt::Refused(format!("Task/{task_id} is not cross-border")))?;
    let (referral_node, referral_task) = match marker.side {
        Side::Requesting => (federation.config.node_id.clone(), task_id.to_owned()),
        Side::Performing => origin_of(&task).ok_or_else(|| {
            Unbuilt::Refused(format!(
                "Task/{task_id} does not name the requesting node's Task"
            ))
        })?,
    };
    let patient_id = reference_id(&task["for"], "Patient")?;
    let mut entities = vec![format!("Task/{task_id}"), format!("Patient/{patient_id}")];
    let (message, consent) = match delivery.kind.as_str() {
        "referral" => {
            let (message, consent, service_request) =
                referral(federation, peer, &task, &patient_id).await?;
            entities.push(service_request);
            (message, consent)
        }
        _ => (
            status(federation, &task, marker.side).await?,
            marker.consent.clone(),
        ),
    };
    Ok(Built {
        request: pb::DeliverRequest {
            message_id: delivery.message_id.clone(),
            sender_node: federation.config.node_id.clone(),
            sender_jurisdiction: federation.config.jurisdiction.clone(),
            referral_node,
            referral_task,
            sequence: version,
            kind: delivery.kind.clone(),
            body: message.to_string(),
        },
        entities,
        consent,
        consent_of_peer: marker.side == Side::Performing,
    })
}

/// A new referral's message: the ServiceRequest, the Patient, the
/// requesting Organization and the patient summary, if the Consent permits
/// them to leave. Also the Consent and the ServiceRequest's reference.
async fn referral(
    federation: &Federation,
    peer: &Peer,
    task: &Value,
    patient_id: &str,
) -> Result<(Value, String, String), Unbuilt> {
    let owner_id = reference_id(&task["owner"], "Organization")?;
    let owner = identity_read(federation, "Organization", &owner_id).await?;
    let (owner_peer, performer) = peer_organization(&owner).ok_or_else(|| {
        Unbuilt::Refused(format!(
            "Organization/{owner_id} is not in a peer's directory"
        ))
    })?;
    if owner_peer != peer.config.node_id {
        return Err(Unbuilt::Refused(format!(
            "Organization/{owner_id} is node {owner_peer}'s, not node {}'s",
            peer.config.node_id
        )));
    }
    // The Consent in force now decides, not the one at referral time.
    let decision = disclosure(federation, patient_id, &format!("Organization/{owner_id}")).await?;
    if !decision.permitted {
        return Err(Unbuilt::Refused(format!(
            "not disclosed: {}",
            decision.reason
        )));
    }
    let patient = identity_read(federation, "Patient", patient_id).await?;
    let requester_id = reference_id(&task["requester"], "Organization")?;
    let requester = identity_read(federation, "Organization", &requester_id).await?;
    let sr_id = reference_id(&task["focus"], "ServiceRequest")?;
    let service_request = federation
        .resources
        .store()
        .read("ServiceRequest", &sr_id)
        .await?;
    let service_request: Value = serde_json::from_str(&service_request.json).unwrap_or_default();
    let records = everything(federation, patient_id).await?;
    let author = format!(
        "Corridor node {} ({})",
        federation.config.node_id, federation.config.jurisdiction
    );
    let document = summary::document(&patient, &records, &decision.classes, &author);
    Ok((
        json!({
            "serviceRequest": service_request,
            "task": {"authoredOn": task["authoredOn"]},
            "patient": patient,
            "requester": requester,
            "performer": performer,
            "consent": decision.consent,
            "summary": document,
        }),
        decision.consent,
        format!("ServiceRequest/{sr_id}"),
    ))
}

/// Every record of the patient in the encounters service, as the node.
async fn everything(federation: &Federation, patient_id: &str) -> Result<Vec<Value>, Unbuilt> {
    let encounters = &federation.encounters;
    let mut records = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut client = encounters.client();
        let answer = link::ask(
            "encounters",
            &format!("for Patient/{patient_id}'s records"),
            encounters.deadline(),
            encpb::EverythingRequest {
                patient_id: patient_id.to_owned(),
                since: String::new(),
                count: 500,
                page_token: page_token.clone(),
            },
            |r| async move { client.everything(r).await },
        )
        .await?;
        let bundle = answer.bundle.unwrap_or_default();
        let value: Value = serde_json::from_str(&bundle.json).unwrap_or_default();
        // The records themselves; the Organizations and Practitioners they
        // name come along as includes, which the summary does not hold.
        for entry in value["entry"].as_array().into_iter().flatten() {
            if entry["resource"]["resourceType"] != "Patient" && entry["search"]["mode"] == "match"
            {
                records.push(entry["resource"].clone());
            }
        }
        if bundle.next_page_token.is_empty() {
            return Ok(records);
        }
        page_token = bundle.next_page_token;
    }
}

/// A status message: the new status and its reason; on completion, the
/// outcome (the outputs, read from encounters) and a line saying what it
/// is.
async fn status(federation: &Federation, task: &Value, side: Side) -> Result<Value, Unbuilt> {
    let status = task["status"].as_str().unwrap_or_default();
    let mut message = json!({"status": status});
    if let Some(reason) = task["statusReason"]["text"].as_str() {
        message["reason"] = json!(reason);
    }
    if side == Side::Performing && status == "completed" {
        let outputs: Vec<String> = task["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["valueReference"]["reference"].as_str())
            .map(str::to_owned)
            .collect();
        let mut resources = Vec::new();
        for output in &outputs {
            let Some((kind, id)) = output.split_once('/') else {
                continue;
            };
            let mut client = federation.encounters.client();
            let answer = link::ask(
                "encounters",
                &format!("for the outcome {output}"),
                federation.encounters.deadline(),
                encpb::ReadRequest {
                    resource_type: kind.to_owned(),
                    id: id.to_owned(),
                },
                |r| async move { client.read(r).await },
            )
            .await
            .map_err(|e| match e {
                ApiError::NotFound(_) => Unbuilt::Refused(format!("the outcome {output} is gone")),
                other => Unbuilt::Failed(other),
            })?;
            if let Some(resource) = answer.resource {
                resources.push(serde_json::from_str::<Value>(&resource.json).unwrap_or_default());
            }
        }
        let owner_ref = task["owner"]["reference"].as_str().unwrap_or_default();
        let owner = match owner_ref.strip_prefix("Organization/") {
            Some(id) => identity_read(federation, "Organization", id)
                .await
                .ok()
                .and_then(|o| o["name"].as_str().map(str::to_owned))
                .unwrap_or_else(|| owner_ref.to_owned()),
            None => "the performer".to_owned(),
        };
        let types: Vec<&str> = resources
            .iter()
            .filter_map(|r| r["resourceType"].as_str())
            .collect();
        message["summary"] = json!(format!(
            "Completed by {owner} on node {} ({}) on {}: {}",
            federation.config.node_id,
            federation.config.jurisdiction,
            task["lastModified"].as_str().unwrap_or_default(),
            types.join(", ")
        ));
        message["outputs"] = json!(outputs);
        message["outcome"] = summary::collection(&resources);
    }
    Ok(message)
}

/// What the patient's Consents say about disclosing their records to
/// `recipient` (`Organization/<id>`) now, for treatment.
async fn disclosure(
    federation: &Federation,
    patient_id: &str,
    recipient: &str,
) -> Result<idpb::DisclosureDecisionResponse, ApiError> {
    let mut client = federation.identity.client();
    link::ask(
        "identity",
        "whether the patient's Consent permits the disclosure",
        federation.identity.deadline(),
        idpb::DisclosureDecisionRequest {
            patient_id: patient_id.to_owned(),
            recipient: recipient.to_owned(),
            purpose: String::new(),
        },
        |r| async move { client.disclosure_decision(r).await },
    )
    .await
}

/// Why a Task cannot be referred across the border, checked when the
/// referral is made: the peer must be configured, and the Consent must
/// permit the disclosure now (it is asked again when the referral is sent).
pub async fn may_refer(
    federation: &Federation,
    patient_id: &str,
    performer: &str,
    peer: &str,
) -> Result<String, ApiError> {
    if federation.peer(peer).is_none() {
        return Err(ApiError::Conflict(
            Issue::new(
                "business-rule",
                format!(
                    "{performer} belongs to node {peer}, which is not one of this node's peers"
                ),
            )
            .at("ServiceRequest.performer"),
        ));
    }
    let decision = disclosure(federation, patient_id, performer).await?;
    if !decision.permitted {
        return Err(ApiError::Conflict(
            Issue::new(
                "business-rule",
                format!(
                    "a cross-border referral to {performer} (node {peer}) needs the patient's Consent, and {}",
                    decision.reason
                ),
            )
            .at("ServiceRequest.subject"),
        ));
    }
    Ok(decision.consent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_the_minimum_up_to_the_maximum() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for (attempts, base) in [(0, 100), (1, 200), (3, 800), (10, 10_000), (60, 10_000)] {
            let pause = backoff(attempts, min, max).as_millis();
            assert!(
                (base..=base + base / 5).contains(&pause),
                "attempt {attempts}: {pause} ms, expected {base} ms plus up to a fifth"
            );
        }
    }

    #[test]
    fn only_refusals_that_a_retry_cannot_change_park_a_message_at_once() {
        assert!(permanent(Code::InvalidArgument));
        assert!(permanent(Code::PermissionDenied));
        assert!(!permanent(Code::Unavailable));
        assert!(!permanent(Code::DeadlineExceeded));
        assert!(!permanent(Code::Aborted));
        assert!(!permanent(Code::Internal));
    }
}
