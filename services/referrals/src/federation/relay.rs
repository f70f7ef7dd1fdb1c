//! The relay: from the referral event stream to the deliveries outbox.
//!
//! Every ServiceRequest and Task version is appended to the service's event
//! stream in the write's own transaction. The relay reads that stream from
//! its cursor and, for each local change to a cross-border referral's
//! Task, queues one message for the peer; the messages and the cursor's
//! new position are written in one transaction ([`Store::enqueue`]), so
//! each change is queued exactly once, in stream order, across restarts.
//! The message holds only which Task version it is about: what is sent is
//! built when it is sent, under the Consent in force then.
//!
//! On PostgreSQL one replica relays and sends at a time (an advisory lock);
//! the others wait to take over.

use std::sync::Arc;
use std::time::Duration;

use corridor_runtime::Shutdown;
use corridor_store::deliveries::NewDelivery;
use corridor_store::{StoreError, StreamEntry};
use serde_json::{Value, json};

use super::lanes::{OWNER_MOVES, Side};
use super::{CrossBorder, Federation, from_peer};
use crate::EVENTS;

/// The relay's cursor in the event stream.
pub const CURSOR: &str = "federation-relay";

/// The message a stream entry makes, if any: a local change to a
/// cross-border referral's Task that its peer must hear of.
pub fn message_of(node: &str, entry: &StreamEntry) -> Option<NewDelivery> {
    let stored = &entry.stored;
    if stored.resource_type != "Task" || stored.deleted {
        return None;
    }
    let task: Value = serde_json::from_str(&stored.json).ok()?;
    let marker = CrossBorder::of(&task)?;
    if from_peer(&task).is_some() {
        // Written because of the peer's message: never sent back.
        return None;
    }
    let status = task["status"].as_str()?;
    let kind = match (marker.side, status) {
        (Side::Requesting, "requested") => "referral",
        (Side::Requesting, "cancelled") => "status",
        (Side::Performing, s) if OWNER_MOVES.contains(&s) => "status",
        _ => return None,
    };
    Some(NewDelivery {
        peer: marker.peer,
        message_id: format!("{node}/{}/{}", stored.id, stored.version),
        ordering_key: stored.id.clone(),
        kind: kind.to_owned(),
        body: json!({"task": stored.id, "version": stored.version}).to_string(),
    })
}

/// Queue what the stream holds after the cursor, in batches; how many
/// messages were queued.
pub async fn relay_once(federation: &Federation) -> Result<usize, StoreError> {
    let store = federation.resources.store();
    let mut queued = 0;
    loop {
        let from = store.cursor(CURSOR).await?;
        let entries = store.stream_after(EVENTS, from, 500).await?;
        let Some(last) = entries.last() else {
            return Ok(queued);
        };
        let messages: Vec<NewDelivery> = entries
            .iter()
            .filter_map(|e| message_of(&federation.config.node_id, e))
            .collect();
        store.enqueue(CURSOR, from, last.seq, &messages).await?;
        queued += messages.len();
        if !messages.is_empty() {
            federation.queued.notify_waiters();
        }
    }
}

/// Take the federation lead (waiting while another replica has it), start
/// the peers' senders and the directory sync, and relay until `shutdown`:
/// whenever the stream grows, and every second in case a notice was missed.
pub async fn run(federation: Arc<Federation>, shutdown: Shutdown) {
    let store = federation.resources.store().clone();
    let mut grown = store.watch();
    let _leading = loop {
        match store.try_lead("federation").await {
            Ok(Some(lead)) => break lead,
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot take the federation lead; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = shutdown.clone().wait() => return,
        }
    };
    tracing::info!("leading federation: relaying, sending and syncing directories");
    for peer in federation.peers() {
        tokio::spawn(super::send::run(
            Arc::clone(&federation),
            peer.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(super::directory::run(
        Arc::clone(&federation),
        shutdown.clone(),
    ));
    loop {
        match relay_once(&federation).await {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "queued for peers"),
            Err(StoreError::Contention) => {}
            Err(err) => tracing::warn!(error = %err, "relay failed; retrying"),
        }
        tokio::select! {
            _ = grown.recv() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_store::Stored;

    fn entry(version: i64, task: Value) -> StreamEntry {
        StreamEntry {
            seq: version,
            stored: Stored {
                resource_type: "Task".into(),
                id: "t1".into(),
                version,
                last_updated: String::new(),
                deleted: false,
                json: task.to_string(),
            },
        }
    }

    fn task(side: Side, status: &str, source: Option<&str>) -> Value {
        let marker = CrossBorder {
            peer: "fr".into(),
            side,
            consent: "Consent/c".into(),
            peer_sequence: 0,
        };
        let mut task =
            json!({"resourceType": "Task", "status": status, "extension": [marker.extension()]});
        if let Some(source) = source {
            task["meta"] = json!({"source": source});
        }
        task
    }

    #[test]
    fn local_moves_of_each_side_are_sent_and_a_peers_are_not_sent_back() {
        let referral =
            message_of("it", &entry(1, task(Side::Requesting, "requested", None))).unwrap();
        assert_eq!(referral.kind, "referral");
        assert_eq!(referral.peer, "fr");
        assert_eq!(referral.message_id, "it/t1/1");
        assert_eq!(referral.ordering_key, "t1");
        let cancel =
            message_of("it", &entry(2, task(Side::Requesting, "cancelled", None))).unwrap();
        assert_eq!(cancel.kind, "status");
        let accepted =
            message_of("fr", &entry(3, task(Side::Performing, "accepted", None))).unwrap();
        assert_eq!(accepted.kind, "status");
        assert!(message_of("it", &entry(1, task(Side::Requesting, "draft", None))).is_none());
        assert!(
            message_of(
                "it",
                &entry(
                    4,
                    task(Side::Requesting, "accepted", Some("urn:corridor:node:fr"))
                )
            )
            .is_none()
        );
        assert!(
            message_of(
                "it",
                &entry(1, json!({"resourceType": "Task", "status": "requested"}))
            )
            .is_none()
        );
    }
}
