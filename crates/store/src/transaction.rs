//! FHIR transactions: several writes that commit together or not at all.
//!
//! The entries are processed in FHIR's order (deletes, then creates, then
//! updates) inside one database transaction. Each create's `fullUrl`
//! (usually `urn:uuid:…`) is given its server id, or the id of the one
//! resource its `ifNoneExist` matched, before anything is written, and every
//! reference to it in the other entries is rewritten to `Type/id`. A
//! reference to a `urn:uuid:` that no entry declares is refused. The
//! transaction's idempotency key replays every entry's result.

use std::collections::{HashMap, HashSet};

use corridor_fhir::{Issue, Validated};
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::pairs::Decision;
use crate::{
    Outcome, Store, StoreError, Stored, Tx, WriteResult, body, check_update, claim, parse_if_match,
    parse_query_string, prefix_issue, query, replayed, request_hash, retrying, valid_id, written,
};

/// One entry of a transaction.
#[derive(Debug, Clone)]
pub enum TxRequest {
    /// POST: create, or with `if_none_exist`, find the one match.
    Create {
        /// The entry's fullUrl, by which other entries refer to it.
        full_url: Option<String>,
        resource: Validated,
        if_none_exist: Option<String>,
        /// The id the resource gets, chosen by the gateway so that other
        /// services' parts of the same transaction can refer to it; None:
        /// a new server id.
        id: Option<String>,
    },
    /// PUT [type]/[id].
    Update {
        resource_type: String,
        id: String,
        resource: Validated,
        if_match: Option<String>,
    },
    /// DELETE [type]/[id].
    Delete {
        resource_type: String,
        id: String,
        if_match: Option<String>,
    },
}

/// Every entry's result, in the order of the request.
#[derive(Debug, Clone)]
pub struct TxResult {
    pub entries: Vec<WriteResult>,
    /// True when an idempotency key replayed an earlier transaction.
    pub replayed: bool,
}

/// An entry checked before the database is touched.
struct Planned<'a> {
    request: &'a TxRequest,
    condition: Option<Vec<(String, String)>>,
    expected: Option<i64>,
}

impl Store {
    /// Apply `requests` atomically. An error in entry `i` is returned as
    /// [`StoreError::Entry`] and nothing is written.
    pub async fn transaction(
        &self,
        requests: &[TxRequest],
        idempotency_key: Option<&str>,
    ) -> Result<TxResult, StoreError> {
        self.transaction_as(requests, idempotency_key, None).await
    }

    /// [`Store::transaction`] of entries the server built from the client's
    /// `request`: when given, the idempotency key is bound to it rather than
    /// to the entries (which may hold server-made values such as times).
    pub async fn transaction_as(
        &self,
        requests: &[TxRequest],
        idempotency_key: Option<&str>,
        request: Option<&str>,
    ) -> Result<TxResult, StoreError> {
        let kind = vec!["transaction".to_owned()];
        self.apply(requests, idempotency_key, kind, request, None)
            .await
    }

    /// This service's part of transaction `part`, which spans services
    /// (see [`crate::distributed`]): applied atomically like
    /// [`Store::transaction_as`], and recorded so that it can be purged if
    /// the transaction aborts. Refused when the transaction was already
    /// aborted here.
    pub async fn transaction_part(
        &self,
        requests: &[TxRequest],
        idempotency_key: Option<&str>,
        request: Option<&str>,
        part: &str,
    ) -> Result<TxResult, StoreError> {
        let kind = vec!["transaction-part".to_owned(), part.to_owned()];
        self.apply(requests, idempotency_key, kind, request, Some(part))
            .await
    }

    /// Plan `requests` and apply them, under an idempotency key bound to
    /// `kind` and `request` (or, without it, to the entries).
    async fn apply(
        &self,
        requests: &[TxRequest],
        idempotency_key: Option<&str>,
        mut kind: Vec<String>,
        request: Option<&str>,
        part: Option<&str>,
    ) -> Result<TxResult, StoreError> {
        if requests.is_empty() {
            return Err(
                Issue::new("invalid", "a transaction needs at least one entry")
                    .at("Bundle.entry")
                    .into(),
            );
        }
        let plan = self.plan(requests)?;
        match request {
            Some(request) => kind.push(request.to_owned()),
            None => {
                for entry in requests {
                    kind.extend(fingerprint(entry));
                }
            }
        }
        let hash = request_hash(&kind.iter().map(String::as_str).collect::<Vec<_>>());
        retrying(|| self.transaction_once(&plan, idempotency_key, &hash, &[], part)).await
    }

    /// Apply `requests` and record `decisions` (people's decisions about
    /// pairs of resources, see [`crate::pairs`]) in one transaction, so
    /// that a link or merge and the decision behind it are never apart.
    pub async fn transaction_deciding(
        &self,
        requests: &[TxRequest],
        decisions: &[Decision],
    ) -> Result<TxResult, StoreError> {
        let plan = self.plan(requests)?;
        let mut parts = vec!["decision".to_owned()];
        for entry in requests {
            parts.extend(fingerprint(entry));
        }
        let hash = request_hash(&parts.iter().map(String::as_str).collect::<Vec<_>>());
        retrying(|| self.transaction_once(&plan, None, &hash, decisions, None)).await
    }

    /// Check every entry that can be checked without the database: its type
    /// is served here, ids, If-Match and ifNoneExist are well formed, and no
    /// two entries declare one fullUrl or write one resource.
    fn plan<'a>(&self, requests: &'a [TxRequest]) -> Result<Vec<Planned<'a>>, StoreError> {
        let mut full_urls = HashSet::new();
        let mut targets = HashSet::new();
        let mut plan = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let in_entry = |e| entry_error(index, e);
            let planned = match request {
                TxRequest::Create {
                    full_url,
                    resource,
                    if_none_exist,
                    id,
                } => {
                    let def = self.def(&resource.resource_type).map_err(in_entry)?;
                    if let Some(id) = id {
                        valid_id(id).map_err(in_entry)?;
                        once(&mut targets, &resource.resource_type, id).map_err(in_entry)?;
                    }
                    if let Some(url) = full_url
                        && !full_urls.insert(url.as_str())
                    {
                        return Err(in_entry(
                            Issue::new(
                                "invalid",
                                format!("fullUrl '{url}' is declared by two entries"),
                            )
                            .at("fullUrl")
                            .into(),
                        ));
                    }
                    let condition = match if_none_exist.as_deref().filter(|q| !q.trim().is_empty())
                    {
                        Some(q) => {
                            let params = parse_query_string(q).map_err(in_entry)?;
                            query::parse(def, &params, None)
                                .map_err(|issue| in_entry(prefix_issue(issue, "If-None-Exist")))?;
                            Some(params)
                        }
                        None => None,
                    };
                    Planned {
                        request,
                        condition,
                        expected: None,
                    }
                }
                TxRequest::Update {
                    resource_type,
                    id,
                    resource,
                    if_match,
                } => {
                    let def = self.def(resource_type).map_err(in_entry)?;
                    check_update(def, id, resource).map_err(in_entry)?;
                    once(&mut targets, resource_type, id).map_err(in_entry)?;
                    Planned {
                        request,
                        condition: None,
                        expected: parse_if_match(if_match.as_deref()).map_err(in_entry)?,
                    }
                }
                TxRequest::Delete {
                    resource_type,
                    id,
                    if_match,
                } => {
                    self.def(resource_type).map_err(in_entry)?;
                    valid_id(id).map_err(in_entry)?;
                    once(&mut targets, resource_type, id).map_err(in_entry)?;
                    Planned {
                        request,
                        condition: None,
                        expected: parse_if_match(if_match.as_deref()).map_err(in_entry)?,
                    }
                }
            };
            plan.push(planned);
        }
        Ok(plan)
    }

    async fn transaction_once(
        &self,
        plan: &[Planned<'_>],
        key: Option<&str>,
        hash: &str,
        decisions: &[Decision],
        part: Option<&str>,
    ) -> Result<TxResult, StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        if let Some(row) = claim(&mut tx, key, hash).await? {
            let entries = replay_all(&mut tx, row.try_get("results")?).await?;
            tx.commit().await?;
            return Ok(TxResult {
                entries,
                replayed: true,
            });
        }
        if let Some(part) = part {
            self.claim_part(&mut tx, part, key).await?;
        }
        let mut results: Vec<Option<WriteResult>> = vec![None; plan.len()];

        // 1. Deletes.
        for (index, step) in plan.iter().enumerate() {
            if let TxRequest::Delete {
                resource_type, id, ..
            } = step.request
            {
                let result = self
                    .write_existing(&mut tx, resource_type, id, None, step.expected)
                    .await
                    .map_err(|e| entry_error(index, e))?;
                results[index] = Some(result);
            }
        }

        // 2. Creates: settle every fullUrl to an id before writing anything,
        //    so that entries may refer to each other in any order.
        let mut resolved: HashMap<&str, String> = HashMap::new();
        let mut new_ids: Vec<Option<String>> = vec![None; plan.len()];
        for (index, step) in plan.iter().enumerate() {
            let TxRequest::Create {
                full_url,
                resource,
                id: assigned,
                ..
            } = step.request
            else {
                continue;
            };
            let def = self.def(&resource.resource_type)?;
            let matched = match &step.condition {
                Some(params) => self
                    .find_match(&mut tx, def, params)
                    .await
                    .map_err(|e| entry_error(index, e))?,
                None => None,
            };
            let id = match matched {
                Some(stored) => {
                    let id = stored.id.clone();
                    results[index] = Some(written(stored, Outcome::Matched));
                    id
                }
                None => {
                    let id = assigned
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                    new_ids[index] = Some(id.clone());
                    id
                }
            };
            if let Some(url) = full_url {
                resolved.insert(url.as_str(), format!("{}/{id}", def.resource_type));
            }
        }
        let mut created = Vec::new();
        let mut slots = Vec::new();
        for (index, step) in plan.iter().enumerate() {
            if let (TxRequest::Create { resource, .. }, Some(id)) = (step.request, &new_ids[index])
            {
                let def = self.def(&resource.resource_type)?;
                let object = resolve_references(&resource.object, &resolved)
                    .map_err(|e| entry_error(index, e))?;
                created.push((def, id.clone(), object));
                slots.push(index);
            }
        }
        for (index, stored) in slots
            .into_iter()
            .zip(self.write_created(&mut tx, &created).await?)
        {
            results[index] = Some(written(stored, Outcome::Created));
        }

        // 3. Updates.
        for (index, step) in plan.iter().enumerate() {
            if let TxRequest::Update {
                resource_type,
                id,
                resource,
                ..
            } = step.request
            {
                let object = resolve_references(&resource.object, &resolved)
                    .map_err(|e| entry_error(index, e))?;
                let result = self
                    .write_existing(&mut tx, resource_type, id, Some(&object), step.expected)
                    .await
                    .map_err(|e| entry_error(index, e))?;
                results[index] = Some(result);
            }
        }

        let entries: Vec<WriteResult> = results
            .into_iter()
            .map(|r| r.ok_or(StoreError::Contention))
            .collect::<Result<_, _>>()?;
        for decision in decisions {
            crate::pairs::decide_in(&mut tx, decision).await?;
        }
        // The witness before announcing: announcing takes the stream's
        // lock, held until commit, and the witness may call another service.
        let written: Vec<Stored> = entries
            .iter()
            .filter(|e| e.outcome != Outcome::Matched)
            .map(|e| e.stored.clone())
            .collect();
        self.witness_in(&mut tx, &written).await?;
        // Announce last, in entry order, to hold the stream lock briefly.
        for entry in entries.iter().filter(|e| e.outcome != Outcome::Matched) {
            self.announce_in(&mut tx, &entry.stored).await?;
        }
        if let Some(part) = part {
            let writes: Vec<(String, String, i64, String)> = entries
                .iter()
                .map(|r| {
                    (
                        r.stored.resource_type.clone(),
                        r.stored.id.clone(),
                        r.stored.version,
                        r.outcome.as_str().to_owned(),
                    )
                })
                .collect();
            self.record_part(&mut tx, part, &writes).await?;
        }
        if let Some(key) = key {
            let recorded: Vec<Value> = entries
                .iter()
                .map(|r| {
                    json!([
                        r.stored.resource_type,
                        r.stored.id,
                        r.stored.version,
                        r.outcome.as_str()
                    ])
                })
                .collect();
            sqlx::query("UPDATE idempotency_keys SET results = $2 WHERE idempotency_key = $1")
                .bind(key)
                .bind(Value::Array(recorded).to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        for entry in &entries {
            if let Ok(def) = self.def(&entry.stored.resource_type)
                && let Some(stream) = def.announce
            {
                self.announced(stream);
            }
        }
        Ok(TxResult {
            entries,
            replayed: false,
        })
    }
}

/// Errors a client can act on are tied to their entry; transient ones stay
/// as they are, so that the whole transaction is retried.
fn entry_error(index: usize, err: StoreError) -> StoreError {
    match err {
        StoreError::Contention
        | StoreError::Unavailable(_)
        | StoreError::Database(_)
        | StoreError::Migration(_)
        | StoreError::Entry { .. } => err,
        other => StoreError::Entry {
            index,
            source: Box::new(other),
        },
    }
}

fn once<'a>(
    targets: &mut HashSet<(&'a str, &'a str)>,
    resource_type: &'a str,
    id: &'a str,
) -> Result<(), StoreError> {
    if targets.insert((resource_type, id)) {
        Ok(())
    } else {
        Err(Issue::new(
            "invalid",
            format!("{resource_type}/{id} is written by two entries of one transaction"),
        )
        .at("request.url")
        .into())
    }
}

/// What makes a request this request, for its idempotency key.
fn fingerprint(request: &TxRequest) -> Vec<String> {
    match request {
        TxRequest::Create {
            full_url,
            resource,
            if_none_exist,
            id,
        } => {
            let mut parts = vec![
                "POST".to_owned(),
                full_url.clone().unwrap_or_default(),
                if_none_exist.clone().unwrap_or_default(),
                body(&resource.object),
            ];
            parts.extend(id.iter().map(|id| format!("id={id}")));
            parts
        }
        TxRequest::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => vec![
            "PUT".to_owned(),
            format!("{resource_type}/{id}"),
            if_match.clone().unwrap_or_default(),
            body(&resource.object),
        ],
        TxRequest::Delete {
            resource_type,
            id,
            if_match,
        } => vec![
            "DELETE".to_owned(),
            format!("{resource_type}/{id}"),
            if_match.clone().unwrap_or_default(),
        ],
    }
}

async fn replay_all(tx: &mut Tx, results: Option<String>) -> Result<Vec<WriteResult>, StoreError> {
    let recorded: Vec<(String, String, i64, String)> = results
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        // A key claimed by a single write, now sent with a transaction.
        .ok_or(StoreError::IdempotencyKeyReused)?;
    let mut entries = Vec::with_capacity(recorded.len());
    for (resource_type, id, version, outcome) in recorded {
        let outcome = Outcome::parse(&outcome).ok_or(StoreError::Contention)?;
        entries.push(replayed(tx, &resource_type, &id, version, outcome).await?);
    }
    Ok(entries)
}

/// `object` with every `reference` that names a transaction entry's fullUrl
/// rewritten to that entry's `Type/id`.
fn resolve_references(
    object: &Map<String, Value>,
    resolved: &HashMap<&str, String>,
) -> Result<Map<String, Value>, StoreError> {
    let mut out = object.clone();
    for value in out.values_mut() {
        resolve_in(value, resolved)?;
    }
    Ok(out)
}

fn resolve_in(value: &mut Value, resolved: &HashMap<&str, String>) -> Result<(), StoreError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                {
                    if let Some(target) = resolved.get(reference.as_str()) {
                        *reference = target.clone();
                    } else if reference.starts_with("urn:uuid:")
                        || reference.starts_with("urn:oid:")
                    {
                        return Err(Issue::new(
                            "not-found",
                            format!("reference '{reference}' names no entry of this transaction"),
                        )
                        .at("reference")
                        .into());
                    }
                } else {
                    resolve_in(child, resolved)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_in(item, resolved)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_to_entries_are_rewritten_and_unknown_urns_refused() {
        let mut resolved = HashMap::new();
        resolved.insert("urn:uuid:e1", "Encounter/42".to_owned());
        let object = json!({
            "resourceType": "Observation",
            "encounter": { "reference": "urn:uuid:e1" },
            "subject": { "reference": "Patient/7" },
            "hasMember": [{ "reference": "urn:uuid:e1" }],
        });
        let out = resolve_references(object.as_object().unwrap(), &resolved).unwrap();
        assert_eq!(out["encounter"]["reference"], "Encounter/42");
        assert_eq!(out["hasMember"][0]["reference"], "Encounter/42");
        assert_eq!(out["subject"]["reference"], "Patient/7");

        let dangling =
            json!({ "resourceType": "Observation", "encounter": { "reference": "urn:uuid:nope" } });
        let err = resolve_references(dangling.as_object().unwrap(), &resolved).unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(ref issue) if issue.diagnostics.contains("urn:uuid:nope")),
            "{err:?}"
        );
    }
}
