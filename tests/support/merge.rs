//! Merging and unmerging Patients through the identity service's own RPCs,
//! as a registry clerk would, for the suites that check other services
//! follow merges.

use corridor_proto::identity::v1 as pb;

use crate::IdentityApp;

/// Who the suites say decided a merge or an unmerge.
pub const CLERK: &str = "Practitioner/registry-clerk";

/// Merge Patient `source` into Patient `target` (ids).
pub async fn merge(identity: &IdentityApp, source: &str, target: &str) {
    identity
        .client
        .clone()
        .merge(pb::MergeRequest {
            source_id: source.to_owned(),
            target_id: target.to_owned(),
            decided_by: CLERK.to_owned(),
            reason: "same person registered twice".to_owned(),
        })
        .await
        .unwrap_or_else(|s| panic!("merge Patient/{source} into Patient/{target}: {s:?}"));
}

/// Undo the merge of Patient `source` (an id).
pub async fn unmerge(identity: &IdentityApp, source: &str) {
    identity
        .client
        .clone()
        .unmerge(pb::UnmergeRequest {
            source_id: source.to_owned(),
            decided_by: CLERK.to_owned(),
            reason: "two people after all".to_owned(),
        })
        .await
        .unwrap_or_else(|s| panic!("unmerge Patient/{source}: {s:?}"));
}
