//! The directory of Organizations that accept cross-border referrals.
//!
//! A node publishes its Organizations tagged
//! `urn:corridor:federation|cross-border-referrals` ([`published`]). Every
//! `directory_every` it fetches each peer's and keeps a copy of each in
//! identity ([`mirror`]): the peer's Organization, with the identifier
//! `urn:corridor:node:<peer>|Organization/<id>` and the tags
//! `urn:corridor:peer|<peer>` and `urn:corridor:federation|directory`, so
//! that it can be a referral's performer
//! and a Consent's actor. One the peer no longer publishes is kept, marked
//! `active: false`, so that referrals to it still resolve.

use std::sync::Arc;
use std::time::Duration;

use corridor_fhir::Issue;
use corridor_proto::federation::v1 as pb;
use corridor_proto::fhir::v1::{Resource, SearchParameter};
use corridor_proto::identity::v1 as idpb;
use corridor_runtime::{ApiError, Shutdown, link};
use serde_json::{Value, json};

use super::{Federation, PEER_SYSTEM, PUBLISHED_CODE, PUBLISHED_SYSTEM, node_system};

/// Whether an Organization (FHIR JSON) is published to the peers.
pub fn is_published(organization: &Value) -> bool {
    organization["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == PUBLISHED_SYSTEM && t["code"] == PUBLISHED_CODE)
}

/// Every Organization of identity found by `tag` (system|code).
async fn tagged(federation: &Federation, tag: &str) -> Result<Vec<Resource>, ApiError> {
    let identity = &federation.identity;
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut client = identity.client();
        let request = idpb::SearchRequest {
            resource_type: "Organization".to_owned(),
            parameters: vec![
                SearchParameter {
                    name: "_tag".to_owned(),
                    value: tag.to_owned(),
                },
                SearchParameter {
                    name: "_count".to_owned(),
                    value: "500".to_owned(),
                },
            ],
            page_token: page_token.clone(),
        };
        let answer = link::ask(
            "identity",
            "for the directory's Organizations",
            identity.deadline(),
            request,
            |r| async move { client.search(r).await },
        )
        .await?;
        let bundle = answer.bundle.unwrap_or_default();
        let value: Value = serde_json::from_str(&bundle.json).unwrap_or_default();
        for entry in value["entry"].as_array().into_iter().flatten() {
            let resource = &entry["resource"];
            found.push(Resource {
                resource_type: "Organization".to_owned(),
                id: resource["id"].as_str().unwrap_or_default().to_owned(),
                version_id: resource["meta"]["versionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                last_updated: resource["meta"]["lastUpdated"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                json: resource.to_string(),
                deleted: false,
            });
        }
        if bundle.next_page_token.is_empty() {
            return Ok(found);
        }
        page_token = bundle.next_page_token;
    }
}

/// This node's Organizations that accept cross-border referrals.
pub async fn published(federation: &Federation) -> Result<Vec<Resource>, ApiError> {
    tagged(federation, &format!("{PUBLISHED_SYSTEM}|{PUBLISHED_CODE}")).await
}

/// The tag code (system [`PUBLISHED_SYSTEM`]) of a peer's Organization
/// kept because the peer publishes it, as opposed to one copied because it
/// referred a patient here.
pub const DIRECTORY_CODE: &str = "directory";

/// The local copy of `peer`'s Organization `organization` (FHIR JSON with
/// its id there): found by the peer's identifier, created if there is none.
/// With `directory` (the peer publishes it), marked so and brought up to
/// date when the peer's has changed; otherwise (a referring organization)
/// only created. Its reference here, `Organization/<id>`.
pub async fn mirror(
    federation: &Federation,
    peer: &str,
    organization: &Value,
    directory: bool,
) -> Result<String, ApiError> {
    let refresh = directory;
    let remote_id = organization["id"]
        .as_str()
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            ApiError::Invalid(Issue::new(
                "invalid",
                format!("an Organization of node {peer} came without its id"),
            ))
        })?;
    let system = node_system(peer);
    let mut copy = super::receive::foreign(organization, peer);
    let mut identifiers: Vec<Value> = copy
        .get("identifier")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    identifiers.retain(|i| i["system"] != system.as_str());
    identifiers.push(json!({"system": system, "value": format!("Organization/{remote_id}")}));
    copy.insert("identifier".into(), Value::Array(identifiers));
    copy.insert(
        "meta".into(),
        if directory {
            json!({"tag": [
                {"system": PEER_SYSTEM, "code": peer},
                {"system": PUBLISHED_SYSTEM, "code": DIRECTORY_CODE},
            ]})
        } else {
            json!({"tag": [{"system": PEER_SYSTEM, "code": peer}]})
        },
    );
    let copy = Value::Object(copy);
    let identity = &federation.identity;
    let mut client = identity.client();
    let created = link::ask(
        "identity",
        &format!("to keep node {peer}'s Organization/{remote_id}"),
        identity.deadline(),
        idpb::CreateRequest {
            resource: copy.to_string(),
            if_none_exist: format!("identifier={system}|Organization/{remote_id}"),
        },
        |r| async move { client.create(r).await },
    )
    .await?;
    let stored = created.resource.unwrap_or_default();
    if refresh && !created.created {
        let mut existing: Value = serde_json::from_str(&stored.json).unwrap_or_default();
        if let Some(object) = existing.as_object_mut() {
            object.remove("id");
            object.remove("meta");
            object.insert("meta".into(), copy["meta"].clone());
        }
        if existing != copy {
            let mut client = identity.client();
            link::ask(
                "identity",
                &format!("to update node {peer}'s Organization/{remote_id}"),
                identity.deadline(),
                idpb::UpdateRequest {
                    resource_type: "Organization".to_owned(),
                    id: stored.id.clone(),
                    resource: copy.to_string(),
                    if_match: stored.version_id.clone(),
                },
                |r| async move { client.update(r).await },
            )
            .await?;
        }
    }
    Ok(format!("Organization/{}", stored.id))
}

/// Fetch `peer`'s directory once and bring the local copies up to date;
/// how many Organizations it publishes.
pub async fn sync(federation: &Federation, peer: &super::Peer) -> Result<usize, ApiError> {
    let node = &peer.config.node_id;
    let mut client = peer.client.clone();
    let answer = link::ask(
        &format!("node {node} federation"),
        "for its directory",
        federation.config.deadline,
        pb::DirectoryRequest {},
        |r| async move { client.directory(r).await },
    )
    .await?;
    if answer.node_id != *node || answer.jurisdiction != peer.config.jurisdiction {
        return Err(ApiError::Forbidden(Issue::new(
            "forbidden",
            format!(
                "the peer at {} says it is node {} of {}, but it is configured as node {node} of {}",
                peer.config.endpoint, answer.node_id, answer.jurisdiction, peer.config.jurisdiction
            ),
        )));
    }
    let mut kept = Vec::new();
    for organization in &answer.organizations {
        let value: Value = serde_json::from_str(&organization.json).unwrap_or_default();
        if value["resourceType"] != "Organization" {
            continue;
        }
        mirror(federation, node, &value, true).await?;
        kept.push(format!("Organization/{}", organization.id));
    }
    // Those the peer no longer publishes stay, inactive.
    let system = node_system(node);
    for local in tagged(federation, &format!("{PEER_SYSTEM}|{node}")).await? {
        let mut value: Value = serde_json::from_str(&local.json).unwrap_or_default();
        let listed = value["meta"]["tag"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["system"] == PUBLISHED_SYSTEM && t["code"] == DIRECTORY_CODE);
        if !listed {
            // A referring organization, never in the directory.
            continue;
        }
        let remote = value["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["system"] == system.as_str())
            .and_then(|i| i["value"].as_str())
            .map(str::to_owned);
        let withdrawn = remote.is_some_and(|r| !kept.contains(&r));
        if withdrawn && value["active"] != false {
            value["active"] = json!(false);
            let mut client = federation.identity.client();
            link::ask(
                "identity",
                &format!("to mark Organization/{} withdrawn", local.id),
                federation.identity.deadline(),
                idpb::UpdateRequest {
                    resource_type: "Organization".to_owned(),
                    id: local.id.clone(),
                    resource: value.to_string(),
                    if_match: local.version_id.clone(),
                },
                |r| async move { client.update(r).await },
            )
            .await?;
        }
    }
    Ok(kept.len())
}

/// Keep every peer's directory current until `shutdown`.
pub async fn run(federation: Arc<Federation>, shutdown: Shutdown) {
    let every = federation.config.directory_every;
    loop {
        for peer in federation.peers() {
            let synced = corridor_runtime::auth::acting_as(
                super::acting_for_node(),
                sync(&federation, peer),
            )
            .await;
            match synced {
                Ok(count) => {
                    tracing::debug!(peer = %peer.config.node_id, count, "directory synced");
                }
                Err(err) => {
                    tracing::warn!(peer = %peer.config.node_id, error = %err, "directory not synced; will retry");
                }
            }
        }
        let pause = tokio::time::sleep(every.max(Duration::from_secs(1)));
        tokio::select! {
            () = pause => {}
            () = shutdown.clone().wait() => return,
        }
    }
}
