//! The Watch feed: every ServiceRequest and Task version, in commit order,
//! told as a referral event to the organizations that take part in it.

use corridor_proto::referrals::v1::{ReferralEvent, WatchResponse};
use corridor_runtime::resources::to_proto;
use corridor_runtime::{Shutdown, follow};
use corridor_store::{Store, Stored, StreamEntry};
use serde_json::Value;

use crate::EVENTS;

/// Follow the event stream after `after` for `caller`'s referrals.
pub fn watch(
    store: &Store,
    caller: String,
    after: i64,
    limits: follow::Limits,
    shutdown: Shutdown,
) -> follow::Items<WatchResponse> {
    let reader = store.clone();
    follow::follow(
        store,
        EVENTS.to_owned(),
        after,
        limits,
        shutdown,
        move |entry| {
            let store = reader.clone();
            let caller = caller.clone();
            Box::pin(async move { Ok(event(&store, &caller, entry).await) })
        },
    )
}

/// The event `entry` is for `caller`, or None when `caller` takes no part.
async fn event(store: &Store, caller: &str, entry: StreamEntry) -> Option<WatchResponse> {
    let stored = &entry.stored;
    let previous = if stored.version > 1 {
        store
            .vread(
                &stored.resource_type,
                &stored.id,
                &(stored.version - 1).to_string(),
            )
            .await
            .ok()
            .and_then(|p| content(&p))
    } else {
        None
    };
    let current = content(stored);
    // A deletion has no content; who took part is in the version before.
    let parties_of = current.as_ref().or(previous.as_ref())?;
    if !parties(&stored.resource_type, parties_of)
        .iter()
        .any(|p| p == caller)
    {
        return None;
    }
    let status = |v: Option<&Value>| {
        v.and_then(|v| v.get("status"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let outputs = |v: Option<&Value>| {
        v.and_then(|v| v.get("output"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    let (kind, previous_status) = match stored.resource_type.as_str() {
        "Task" if stored.version == 1 => ("created", String::new()),
        "Task" => {
            let before = status(previous.as_ref());
            let kind = if before != status(current.as_ref()) {
                "status-changed"
            } else if outputs(current.as_ref()) > outputs(previous.as_ref()) {
                "output-added"
            } else {
                "changed"
            };
            (kind, before)
        }
        _ if stored.deleted => ("service-request-deleted", String::new()),
        _ if stored.version == 1 => ("service-request-created", String::new()),
        _ => ("service-request-changed", String::new()),
    };
    Some(WatchResponse {
        event: Some(ReferralEvent {
            sequence: entry.seq,
            kind: kind.to_owned(),
            previous_status,
            status: status(current.as_ref()),
            resource: Some(to_proto(stored)),
        }),
    })
}

fn content(stored: &Stored) -> Option<Value> {
    (!stored.deleted)
        .then(|| serde_json::from_str(&stored.json).ok())
        .flatten()
}

/// The organizations (and others) that take part: a Task's requester and
/// owner, a ServiceRequest's requester and performers.
fn parties(resource_type: &str, resource: &Value) -> Vec<String> {
    let reference = |v: &Value| {
        v.get("reference")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    out.extend(resource.get("requester").and_then(reference));
    match resource_type {
        "Task" => out.extend(resource.get("owner").and_then(reference)),
        _ => out.extend(
            resource
                .get("performer")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(reference),
        ),
    }
    out
}
