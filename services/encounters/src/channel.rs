//! The consult channel: the messages of one Encounter between patient,
//! clinician and interpreter, live.
//!
//! A message is stored as a FHIR Communication and given the Encounter's
//! next sequence number in the same transaction ([`Store::append`]), so it
//! exists before anyone sees it and every reader sees one order. Readers
//! follow the stream with [`corridor_runtime::follow`]: from the database,
//! across replicas, resuming after the last sequence they saw, each with a
//! bounded buffer and cut off (RESOURCE_EXHAUSTED) when it stalls.

use std::collections::HashSet;

use corridor_fhir::Issue;
use corridor_proto::encounters::v1::{
    ConsultMessage, OpenChannelRequest, OpenChannelResponse, SendMessageRequest,
};
use corridor_runtime::follow;
use corridor_runtime::resources::{Resources, to_proto};
use corridor_runtime::{ApiError, Shutdown};
use corridor_store::WriteResult;
use serde_json::{Value, json};

use crate::consultation::is_language_tag;

/// The stream of messages a client receives.
pub type Messages = follow::Items<OpenChannelResponse>;

/// The stream key of an Encounter's channel.
fn stream_key(encounter_id: &str) -> String {
    format!("Encounter/{encounter_id}")
}

/// Store a message as a Communication of the Encounter, with its sequence.
pub async fn send(
    resources: &Resources,
    request: &SendMessageRequest,
    key: Option<&str>,
) -> Result<(WriteResult, ConsultMessage), ApiError> {
    resources
        .require_readable("Encounter", &request.encounter_id)
        .await?;
    let encounter = resources
        .store()
        .read("Encounter", &request.encounter_id)
        .await?;
    let encounter: Value = serde_json::from_str(&encounter.json).unwrap_or(Value::Null);
    let participants = participants(&encounter);
    let sender = request.sender.trim();
    if !participants.contains(sender) {
        return Err(Issue::new(
            "invalid",
            format!(
                "sender '{sender}' does not take part in Encounter/{}; participants are: {}",
                request.encounter_id,
                sorted(&participants).join(", ")
            ),
        )
        .at("sender")
        .into());
    }
    let recipients: Vec<String> = if request.recipients.is_empty() {
        sorted(&participants)
            .into_iter()
            .filter(|p| p != sender)
            .collect()
    } else {
        for (i, recipient) in request.recipients.iter().enumerate() {
            if !participants.contains(recipient.as_str()) {
                return Err(Issue::new(
                    "invalid",
                    format!(
                        "recipient '{recipient}' does not take part in Encounter/{}",
                        request.encounter_id
                    ),
                )
                .at(format!("recipients[{i}]"))
                .into());
            }
        }
        request.recipients.clone()
    };
    if request.text.trim().is_empty() {
        return Err(Issue::new("required", "a message needs text")
            .at("text")
            .into());
    }
    if !is_language_tag(&request.language) {
        return Err(Issue::new(
            "invalid",
            format!(
                "language must be a BCP-47 tag such as \"ar\", \"fa-AF\" or \"ti\", not '{}'",
                request.language
            ),
        )
        .at("language")
        .into());
    }
    let mut communication = json!({
        "resourceType": "Communication",
        "language": request.language,
        "status": "completed",
        "encounter": { "reference": stream_key(&request.encounter_id) },
        "sent": corridor_store::now_instant(),
        "recipient": recipients.iter().map(|r| json!({ "reference": r })).collect::<Vec<_>>(),
        "sender": { "reference": sender },
        "payload": [{ "contentString": request.text }],
    });
    if let Some(subject) = encounter.get("subject") {
        communication["subject"] = subject.clone();
    }
    let mut resource = resources.validate(&communication.to_string())?;
    resources.stamp_current(&mut resource)?;
    // A retry is the same request; `sent` is the server's and differs.
    let fingerprint = serde_json::json!([
        request.sender,
        request.recipients,
        request.text,
        request.language
    ])
    .to_string();
    let (result, seq) = resources
        .store()
        .append(
            &stream_key(&request.encounter_id),
            &resource,
            key,
            &fingerprint,
        )
        .await?;
    let message = ConsultMessage {
        sequence: seq,
        communication: Some(to_proto(&result.stored)),
    };
    Ok((result, message))
}

/// Follow an Encounter's channel from after `after_sequence`.
pub async fn open(
    resources: &Resources,
    request: &OpenChannelRequest,
    limits: follow::Limits,
    shutdown: Shutdown,
) -> Result<Messages, ApiError> {
    // Whoever may read the Encounter may follow its channel.
    resources
        .require_readable("Encounter", &request.encounter_id)
        .await?;
    let store = resources.store();
    store.read("Encounter", &request.encounter_id).await?;
    if request.after_sequence < 0 {
        return Err(Issue::new(
            "invalid",
            "after_sequence is the last sequence received, 0 or more",
        )
        .at("after_sequence")
        .into());
    }
    Ok(follow::follow(
        store,
        stream_key(&request.encounter_id),
        request.after_sequence,
        limits,
        shutdown,
        |entry| {
            Box::pin(async move {
                Ok(Some(OpenChannelResponse {
                    message: Some(ConsultMessage {
                        sequence: entry.seq,
                        communication: Some(to_proto(&entry.stored)),
                    }),
                }))
            })
        },
    ))
}

/// The Encounter's subject and participants, as references.
fn participants(encounter: &Value) -> HashSet<String> {
    let mut out = HashSet::new();
    if let Some(subject) = encounter
        .get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
    {
        out.insert(subject.to_owned());
    }
    for participant in encounter
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(individual) = participant
            .get("individual")
            .and_then(|i| i.get("reference"))
            .and_then(Value::as_str)
        {
            out.insert(individual.to_owned());
        }
    }
    out
}

fn sorted(set: &HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().cloned().collect();
    v.sort();
    v
}
