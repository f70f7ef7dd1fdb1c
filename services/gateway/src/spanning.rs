//! Transactions whose entries belong to several services, made
//! all-or-nothing as any client can observe it (see `docs/architecture.md`,
//! "Transactions that span services").
//!
//! 1. The Bundle is split by owning service, in the order identity,
//!    encounters, referrals: what is referred to comes before what refers
//!    to it (Patients and Organizations first).
//! 2. Every plain create gets its id here, before anything is written, so
//!    every `urn:uuid` reference across parts is rewritten at once. A
//!    conditional create's id is known only once its part is written, so
//!    a reference to it may come only from a later part.
//! 3. The identity service opens an attempt and keeps its decision. Each
//!    part is written, in one local transaction at its service, recorded
//!    under the attempt's id, with the idempotency key `<attempt>/<service>`.
//! 4. All parts written: the attempt is committed, the single commit point.
//!    A part that fails, or a commit that comes too late, aborts it: every
//!    part is settled as aborted, which purges what it wrote. A gateway that
//!    dies in between leaves the attempt open; the identity service presumes
//!    it aborted past its deadline and purges the parts itself.

use std::collections::HashMap;

use corridor_proto::identity::v1::TransactionState;
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backends::{CallContext, Owner};
use crate::reply::{HttpError, Reply};
use crate::rest::{self, Call, Gateway};

/// One service's part: its entries, by their index in the client's Bundle.
struct Part {
    owner: Owner,
    indexes: Vec<usize>,
}

/// Apply `entries` (already checked: each names a type that `owners`
/// gives a service) as one transaction across the services.
pub async fn transaction(
    gateway: &Gateway,
    call: &Call,
    mut entries: Vec<Value>,
    owners: &[Owner],
) -> Result<Reply, HttpError> {
    let mut parts: Vec<Part> = Owner::ALL
        .into_iter()
        .map(|owner| Part {
            owner,
            indexes: Vec::new(),
        })
        .collect();
    for (index, owner) in owners.iter().enumerate() {
        if let Some(part) = parts.iter_mut().find(|p| p.owner == *owner) {
            part.indexes.push(index);
        }
    }
    parts.retain(|p| !p.indexes.is_empty());
    let participants: Vec<Owner> = parts.iter().map(|p| p.owner).collect();
    let hash = format!("{:x}", Sha256::digest(&call.body));
    let begun = gateway
        .backends
        .begin_transaction(&participants, hash, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, "identity"))?;
    let id = begun.transaction_id.clone();
    match (begun.replay, begun.state()) {
        (true, TransactionState::Open) => {
            return Err(HttpError::at(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "a transaction with this idempotency key ({id}) is still being written; retry shortly: it either commits or is undone"
                ),
                "Bundle",
            ));
        }
        (true, TransactionState::Committed) | (false, _) => {}
        (true, other) => {
            return Err(HttpError::new(
                StatusCode::BAD_GATEWAY,
                "exception",
                format!("the identity service answered the attempt {id} as {other:?}"),
            ));
        }
    }

    assign_ids(&id, &mut entries);
    let mut resolved: HashMap<String, String> = HashMap::new();
    for entry in &entries {
        if let (Some(full_url), Some(reference)) = (full_url(entry), assigned_reference(entry)) {
            resolved.insert(full_url.to_owned(), reference);
        }
    }
    // Conditional creates, by fullUrl: their part's position.
    let mut conditional: HashMap<String, usize> = HashMap::new();
    for (position, part) in parts.iter().enumerate() {
        for &index in &part.indexes {
            if is_conditional_create(&entries[index])
                && let Some(url) = full_url(&entries[index])
            {
                conditional.insert(url.to_owned(), position);
            }
        }
    }

    let mut answers: Vec<Option<Value>> = vec![None; entries.len()];
    let context = |owner: Owner| CallContext {
        idempotency_key: Some(format!("{id}/{}", owner.name())),
        ..call.context.clone()
    };
    for (position, part) in parts.iter().enumerate() {
        let mut part_entries = Vec::with_capacity(part.indexes.len());
        for &index in &part.indexes {
            let mut entry = entries[index].clone();
            let mut refused = None;
            for_each_reference(&mut entry, &mut |reference| {
                if let Some(target) = resolved.get(reference.as_str()) {
                    *reference = target.clone();
                } else if let Some(&at) = conditional.get(reference.as_str())
                    && at > position
                    && refused.is_none()
                {
                    refused = Some(reference.clone());
                }
            });
            if let Some(reference) = refused {
                abort(gateway, &id, &participants, call).await;
                return Err(HttpError::bad_request(
                    "not-supported",
                    format!(
                        "entry {index} refers to '{reference}', a conditional create of a service whose part is written after this entry's ({}); make that entry a plain create, or refer to the resource by identifier",
                        part.owner.name()
                    ),
                    &format!("Bundle.entry[{index}]"),
                ));
            }
            part_entries.push(entry);
        }
        let bundle =
            json!({"resourceType": "Bundle", "type": "transaction", "entry": part_entries});
        let written = gateway
            .backends
            .transaction_part(
                part.owner,
                bundle.to_string(),
                id.clone(),
                &context(part.owner),
                gateway.limits.timeout,
            )
            .await;
        let answer = match written {
            Ok((bundle, _)) => rest::bundle_json(&bundle.json),
            Err(status) => Err(in_client_numbering(
                HttpError::from_status(&status, part.owner.name()),
                &part.indexes,
            )),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                abort(gateway, &id, &participants, call).await;
                return Err(err);
            }
        };
        let results = answer
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (slot, result) in part.indexes.iter().zip(results) {
            // A conditional create's target is known now, for later parts.
            if let (Some(url), Some(location)) = (
                full_url(&entries[*slot]),
                result.get("fullUrl").and_then(Value::as_str),
            ) && conditional.contains_key(url)
            {
                resolved.insert(url.to_owned(), location.to_owned());
            }
            answers[*slot] = Some(result);
        }
    }

    let decided = gateway
        .backends
        .decide_transaction(&id, true, &call.context)
        .await;
    match decided {
        Ok(TransactionState::Committed) => {}
        Ok(state) => {
            abort(gateway, &id, &participants, call).await;
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "the transaction took longer than the node allows and was {}; nothing of it was kept; send it again",
                    if state == TransactionState::Aborted {
                        "abandoned"
                    } else {
                        "not decided"
                    }
                ),
            ));
        }
        Err(status) => {
            // Undecided: the identity service will presume it aborted and
            // purge the parts, unless the commit did reach it.
            return Err(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                format!(
                    "the transaction was written but its commit could not be confirmed ({}); it is kept only if the commit arrived, else undone within the node's transaction timeout; retry with the same X-Idempotency-Key to learn which",
                    status.message()
                ),
            ));
        }
    }
    let entries: Vec<Value> = answers.into_iter().map(Option::unwrap_or_default).collect();
    let mut body =
        json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries});
    rest::absolutize(&mut body, call, &[]);
    Ok(Reply::json(StatusCode::OK, body))
}

/// Abort attempt `id` and settle every part as aborted now, so that
/// nothing of it is visible once the client has the error. A settle that
/// fails here is retried by the identity service.
async fn abort(gateway: &Gateway, id: &str, participants: &[Owner], call: &Call) {
    match gateway
        .backends
        .decide_transaction(id, false, &call.context)
        .await
    {
        Ok(TransactionState::Aborted) => {}
        Ok(state) => {
            tracing::error!(
                transaction = id,
                ?state,
                "an attempt to abort found another decision"
            );
            return;
        }
        Err(status) => {
            tracing::warn!(transaction = id, error = %status.message(), "could not record the abort; the identity service presumes it");
            return;
        }
    }
    for owner in participants {
        if let Err(status) = gateway
            .backends
            .settle(*owner, id, false, &call.context)
            .await
        {
            tracing::warn!(transaction = id, service = owner.name(), error = %status.message(), "could not purge an aborted part yet; the identity service retries");
        }
    }
}

/// Give every plain create (a POST without ifNoneExist) its id, in the
/// resource, and a fullUrl if it has none. The ids derive from the attempt
/// and the entry's place, so that a replay of a committed attempt sends
/// the parts it sent the first time.
fn assign_ids(attempt: &str, entries: &mut [Value]) {
    for (index, entry) in entries.iter_mut().enumerate() {
        let plain_create = entry.pointer("/request/method").and_then(Value::as_str) == Some("POST")
            && !is_conditional_create(entry);
        if plain_create
            && let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut)
        {
            let digest = Sha256::digest(format!("{attempt}#{index}"));
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
            resource.insert("id".to_owned(), json!(id.to_string()));
        }
        if entry.get("fullUrl").is_none() && entry.is_object() {
            entry["fullUrl"] = json!(format!("urn:uuid:{}", uuid::Uuid::new_v4()));
        }
    }
}

fn is_conditional_create(entry: &Value) -> bool {
    entry.pointer("/request/method").and_then(Value::as_str) == Some("POST")
        && entry
            .pointer("/request/ifNoneExist")
            .and_then(Value::as_str)
            .is_some_and(|q| !q.trim().is_empty())
}

fn full_url(entry: &Value) -> Option<&str> {
    entry.get("fullUrl").and_then(Value::as_str)
}

/// `Type/id` of a plain create given its id by [`assign_ids`].
fn assigned_reference(entry: &Value) -> Option<String> {
    if entry.pointer("/request/method").and_then(Value::as_str) != Some("POST")
        || is_conditional_create(entry)
    {
        return None;
    }
    let resource = entry.get("resource")?;
    Some(format!(
        "{}/{}",
        resource.get("resourceType")?.as_str()?,
        resource.get("id")?.as_str()?
    ))
}

/// Call `visit` on every `reference` string inside `value`.
pub fn for_each_reference(value: &mut Value, visit: &mut impl FnMut(&mut String)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(reference) if key == "reference" => visit(reference),
                    _ => for_each_reference(child, visit),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                for_each_reference(item, visit);
            }
        }
        _ => {}
    }
}

/// `err` of a part, with its `Bundle.entry[k]` renumbered as the client's
/// Bundle numbers the entry.
fn in_client_numbering(mut err: HttpError, indexes: &[usize]) -> HttpError {
    renumber(&mut err.outcome, indexes);
    err
}

fn renumber(value: &mut Value, indexes: &[usize]) {
    match value {
        Value::String(text) => {
            const MARK: &str = "Bundle.entry[";
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find(MARK) {
                out.push_str(&rest[..at + MARK.len()]);
                rest = &rest[at + MARK.len()..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                match rest[..digits]
                    .parse::<usize>()
                    .ok()
                    .and_then(|k| indexes.get(k))
                {
                    Some(original) => out.push_str(&original.to_string()),
                    None => out.push_str(&rest[..digits]),
                }
                rest = &rest[digits..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Object(map) => map.values_mut().for_each(|v| renumber(v, indexes)),
        Value::Array(items) => items.iter_mut().for_each(|v| renumber(v, indexes)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parts_entry_numbers_become_the_clients() {
        let mut outcome = json!({"issue": [{
            "diagnostics": "Bundle.entry[1]: gender 'robot' is not a code",
            "expression": ["Bundle.entry[1].resource.gender", "Bundle.entry[9]"]
        }]});
        renumber(&mut outcome, &[3, 7]);
        assert_eq!(
            outcome["issue"][0]["diagnostics"],
            "Bundle.entry[7]: gender 'robot' is not a code"
        );
        assert_eq!(
            outcome["issue"][0]["expression"],
            json!(["Bundle.entry[7].resource.gender", "Bundle.entry[9]"])
        );
    }

    #[test]
    fn plain_creates_get_ids_and_conditional_creates_do_not() {
        let mut entries = vec![
            json!({"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Organization"}, "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=x|1"}}),
        ];
        assign_ids("attempt", &mut entries);
        let reference = assigned_reference(&entries[0]).expect("assigned");
        assert!(reference.starts_with("Patient/"), "{reference}");
        assert!(assigned_reference(&entries[1]).is_none());
        assert!(entries[1]["resource"].get("id").is_none());
        assert!(full_url(&entries[1]).is_some_and(|u| u.starts_with("urn:uuid:")));
    }
}
