//! The master patient index: people's decisions that two Patients are or
//! are not the same person, kept as FHIR Patient.link on the records and as
//! decided pairs in the store, always written together.
//!
//! - Link: both records get `seealso` to each other.
//! - Unlink: those links go, and the pair is remembered as not a match.
//! - Merge (FHIR `$merge`): the source becomes inactive with `replaced-by`
//!   the target, and the target records `replaces` the source.
//! - Unmerge: the source is active again as it was before the merge, and
//!   the target no longer records `replaces`.
//! - Resolve: any id to the identity its merges lead to, every id merged
//!   into that one, and the ids linked to it.

use corridor_fhir::{Issue, Validated};
use corridor_runtime::ApiError;
use corridor_store::pairs::{Decision, PairStatus};
use corridor_store::{Store, StoreError, Stored, TxRequest};
use serde_json::{Map, Value, json};

/// How many merges a chain may have before it is taken for a loop.
const MAX_CHAIN: usize = 32;
/// How often a decision is retried when a record changed under it.
const ATTEMPTS: usize = 3;

/// The id a merged Patient was replaced by.
pub fn replaced_by(patient: &Value) -> Option<String> {
    links(patient)
        .into_iter()
        .find(|(kind, _)| kind == "replaced-by")
        .map(|(_, id)| id)
}

/// Every Patient id a Patient links to, whatever the link's type.
pub fn all_links(patient: &Value) -> Vec<String> {
    links(patient).into_iter().map(|(_, id)| id).collect()
}

/// A Patient's links as (type, Patient id).
fn links(patient: &Value) -> Vec<(String, String)> {
    patient
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let kind = l.get("type")?.as_str()?;
            let id = l
                .pointer("/other/reference")?
                .as_str()?
                .strip_prefix("Patient/")?;
            Some((kind.to_owned(), id.to_owned()))
        })
        .collect()
}

fn has_link(object: &Map<String, Value>, kind: &str, other: &str) -> bool {
    links(&Value::Object(object.clone()))
        .iter()
        .any(|(k, id)| k == kind && id == other)
}

fn add_link(object: &mut Map<String, Value>, kind: &str, other: &str) {
    if has_link(object, kind, other) {
        return;
    }
    let list = object
        .entry("link")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        items.push(json!({"other": {"reference": format!("Patient/{other}")}, "type": kind}));
    }
}

/// Remove the links to `other` whose type is in `kinds`.
fn remove_links(object: &mut Map<String, Value>, kinds: &[&str], other: &str) {
    let reference = format!("Patient/{other}");
    if let Some(Value::Array(items)) = object.get_mut("link") {
        items.retain(|l| {
            let kind = l.get("type").and_then(Value::as_str).unwrap_or_default();
            let to = l.pointer("/other/reference").and_then(Value::as_str);
            !(kinds.contains(&kind) && to == Some(reference.as_str()))
        });
        if items.is_empty() {
            object.remove("link");
        }
    }
}

/// A person's decision: who and why.
#[derive(Debug, Clone)]
pub struct Decider {
    pub decided_by: String,
    pub reason: String,
}

impl Decider {
    /// Refuse a decision nobody signed.
    pub fn new(decided_by: &str, reason: &str) -> Result<Self, ApiError> {
        let decided_by = decided_by.trim();
        if decided_by.is_empty() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "say who decided: decided_by, e.g. \"Practitioner/123\" or a user name",
                )
                .at("decided_by"),
            ));
        }
        Ok(Self {
            decided_by: decided_by.to_owned(),
            reason: reason.trim().to_owned(),
        })
    }
}

/// The current identity of a Patient id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub current: String,
    pub merged: Vec<String>,
    pub linked: Vec<String>,
}

/// The MPI operations over one store.
#[derive(Debug, Clone)]
pub struct Mpi {
    store: Store,
}

fn object(stored: &Stored) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_str(&stored.json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::Store(StoreError::Contention)),
    }
}

fn two_ids(a: &str, b: &str, first: &str, second: &str) -> Result<(), ApiError> {
    for (id, field) in [(a, first), (b, second)] {
        if id.trim().is_empty() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    format!("{field} is required: the id of a Patient"),
                )
                .at(field),
            ));
        }
    }
    if a == b {
        return Err(ApiError::Invalid(
            Issue::new(
                "invalid",
                format!("{first} and {second} are both Patient/{a}; a decision needs two Patients"),
            )
            .at(second),
        ));
    }
    Ok(())
}

impl Mpi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn patient(&self, id: &str) -> Result<(Stored, Map<String, Value>), ApiError> {
        let stored = self.store.read("Patient", id).await?;
        let object = object(&stored)?;
        Ok((stored, object))
    }

    /// Refuse a decision about a record that a merge replaced.
    fn not_merged(id: &str, object: &Map<String, Value>, field: &str) -> Result<(), ApiError> {
        match replaced_by(&Value::Object(object.clone())) {
            Some(target) => Err(ApiError::Conflict(
                Issue::new(
                    "business-rule",
                    format!("Patient/{id} was merged into Patient/{target}; decide about Patient/{target} instead"),
                )
                .at(field),
            )),
            None => Ok(()),
        }
    }

    /// Write the changed Patients and the decision in one transaction, each
    /// Patient only if it is still at the version it was read at. A record
    /// that changed meanwhile makes the whole step run again.
    async fn write(
        &self,
        changed: Vec<(Stored, Map<String, Value>)>,
        decision: Decision,
    ) -> Result<Vec<Stored>, StoreError> {
        let requests: Vec<TxRequest> = changed
            .into_iter()
            .map(|(stored, object)| TxRequest::Update {
                resource_type: "Patient".to_owned(),
                id: stored.id.clone(),
                resource: Validated {
                    resource_type: "Patient".to_owned(),
                    object,
                },
                if_match: Some(stored.version.to_string()),
            })
            .collect();
        let result = self
            .store
            .transaction_deciding(&requests, &[decision])
            .await?;
        Ok(result.entries.into_iter().map(|e| e.stored).collect())
    }

    /// Run `step` again when a record changed between its read and its write.
    async fn retried<F, Fut, T>(&self, mut step: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match step().await {
                Err(ApiError::Store(StoreError::Entry { source, .. }))
                    if matches!(*source, StoreError::VersionConflict { .. })
                        && tries < ATTEMPTS => {}
                Err(ApiError::Store(StoreError::Entry { source, .. })) => {
                    return Err(ApiError::Store(*source));
                }
                other => return other,
            }
        }
    }

    fn decision(a: &str, b: &str, status: PairStatus, by: &Decider) -> Decision {
        Decision {
            resource_type: "Patient".to_owned(),
            a: a.to_owned(),
            b: b.to_owned(),
            status,
            decided_by: by.decided_by.clone(),
            reason: by.reason.clone(),
        }
    }

    /// Link two Patients as the same person.
    pub async fn link(&self, a: &str, b: &str, by: &Decider) -> Result<(Stored, Stored), ApiError> {
        two_ids(a, b, "patient_id", "other_id")?;
        self.retried(|| async {
            let (sa, mut oa) = self.patient(a).await?;
            let (sb, mut ob) = self.patient(b).await?;
            Self::not_merged(a, &oa, "patient_id")?;
            Self::not_merged(b, &ob, "other_id")?;
            add_link(&mut oa, "seealso", b);
            add_link(&mut ob, "seealso", a);
            let written = self
                .write(
                    vec![(sa, oa), (sb, ob)],
                    Self::decision(a, b, PairStatus::Match, by),
                )
                .await?;
            Ok(pair_of(written))
        })
        .await
    }

    /// Record that two Patients are different people.
    pub async fn unlink(
        &self,
        a: &str,
        b: &str,
        by: &Decider,
    ) -> Result<(Stored, Stored), ApiError> {
        two_ids(a, b, "patient_id", "other_id")?;
        self.retried(|| async {
            let (sa, mut oa) = self.patient(a).await?;
            let (sb, mut ob) = self.patient(b).await?;
            let merged = replaced_by(&Value::Object(oa.clone())).as_deref() == Some(b)
                || replaced_by(&Value::Object(ob.clone())).as_deref() == Some(a);
            if merged {
                return Err(ApiError::Conflict(
                    Issue::new(
                        "business-rule",
                        format!("Patient/{a} and Patient/{b} are merged; unmerge them rather than unlink"),
                    )
                    .at("other_id"),
                ));
            }
            remove_links(&mut oa, &["seealso"], b);
            remove_links(&mut ob, &["seealso"], a);
            let written = self
                .write(vec![(sa, oa), (sb, ob)], Self::decision(a, b, PairStatus::NotMatch, by))
                .await?;
            Ok(pair_of(written))
        })
        .await
    }

    /// FHIR $merge of `source` into `target`. Merging again what is already
    /// merged into the same target changes nothing and answers the same.
    pub async fn merge(
        &self,
        source: &str,
        target: &str,
        by: &Decider,
    ) -> Result<(Stored, Stored), ApiError> {
        two_ids(source, target, "source_id", "target_id")?;
        self.retried(|| async {
            let (ss, mut os) = self.patient(source).await?;
            let (st, mut ot) = self.patient(target).await?;
            Self::not_merged(target, &ot, "target_id")?;
            match replaced_by(&Value::Object(os.clone())) {
                Some(already) if already == target => return Ok((ss, st)),
                Some(other) => {
                    return Err(ApiError::Conflict(
                        Issue::new(
                            "business-rule",
                            format!("Patient/{source} is already merged into Patient/{other}; unmerge it first"),
                        )
                        .at("source_id"),
                    ));
                }
                None => {}
            }
            remove_links(&mut os, &["seealso"], target);
            remove_links(&mut ot, &["seealso"], source);
            os.insert("active".to_owned(), Value::Bool(false));
            add_link(&mut os, "replaced-by", target);
            add_link(&mut ot, "replaces", source);
            let written = self
                .write(vec![(ss, os), (st, ot)], Self::decision(source, target, PairStatus::Match, by))
                .await?;
            Ok(pair_of(written))
        })
        .await
    }

    /// Undo the merge of `source`: it is active again as it was before, and
    /// its target no longer records `replaces`. The pair is then recorded
    /// as not a match, so that matching does not propose it again.
    pub async fn unmerge(&self, source: &str, by: &Decider) -> Result<(Stored, Stored), ApiError> {
        if source.trim().is_empty() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "source_id is required: the id of a merged Patient",
                )
                .at("source_id"),
            ));
        }
        self.retried(|| async {
            let (ss, mut os) = self.patient(source).await?;
            let Some(target) = replaced_by(&Value::Object(os.clone())) else {
                return Err(ApiError::Conflict(
                    Issue::new(
                        "business-rule",
                        format!("Patient/{source} is not merged into another Patient"),
                    )
                    .at("source_id"),
                ));
            };
            let (st, mut ot) = self.patient(&target).await?;
            match self.active_before_merge(&ss).await? {
                Some(active) => os.insert("active".to_owned(), active),
                None => os.remove("active"),
            };
            remove_links(&mut os, &["replaced-by"], &target);
            remove_links(&mut ot, &["replaces"], source);
            let written = self
                .write(
                    vec![(ss, os), (st, ot)],
                    Self::decision(source, &target, PairStatus::NotMatch, by),
                )
                .await?;
            Ok(pair_of(written))
        })
        .await
    }

    /// `active` as the newest version before the merge had it.
    async fn active_before_merge(&self, merged: &Stored) -> Result<Option<Value>, ApiError> {
        let mut version = merged.version - 1;
        while version >= 1 {
            let old = self
                .store
                .vread("Patient", &merged.id, &version.to_string())
                .await?;
            if !old.deleted {
                let value: Value = serde_json::from_str(&old.json).unwrap_or(Value::Null);
                if replaced_by(&value).is_none() {
                    return Ok(value.get("active").cloned());
                }
            }
            version -= 1;
        }
        Ok(None)
    }

    /// Any Patient id to its current identity.
    pub async fn resolve(&self, id: &str) -> Result<Resolved, ApiError> {
        let mut current = id.to_owned();
        let mut seen = vec![current.clone()];
        let mut record = self.patient(&current).await?.1;
        while let Some(next) = replaced_by(&Value::Object(record.clone())) {
            if seen.contains(&next) || seen.len() > MAX_CHAIN {
                return Err(ApiError::Conflict(
                    Issue::new(
                        "business-rule",
                        format!("the merges from Patient/{id} form a loop"),
                    )
                    .at("patient_id"),
                ));
            }
            seen.push(next.clone());
            record = self.patient(&next).await?.1;
            current = next;
        }
        let linked = links(&Value::Object(record))
            .into_iter()
            .filter(|(kind, _)| kind == "seealso")
            .map(|(_, id)| id)
            .collect();
        // Every record whose replaced-by chain ends here.
        let mut merged = vec![current.clone()];
        let mut next = 0;
        while next < merged.len() && merged.len() <= MAX_CHAIN * 8 {
            let into = merged[next].clone();
            next += 1;
            let page = self
                .store
                .search(
                    "Patient",
                    &[
                        ("link".to_owned(), format!("Patient/{into}")),
                        ("_count".to_owned(), corridor_store::MAX_COUNT.to_string()),
                    ],
                    None,
                )
                .await?;
            for entry in page.bundle["entry"].as_array().into_iter().flatten() {
                let resource = &entry["resource"];
                if replaced_by(resource).as_deref() == Some(into.as_str())
                    && let Some(from) = resource.get("id").and_then(Value::as_str)
                    && !merged.iter().any(|m| m == from)
                {
                    merged.push(from.to_owned());
                }
            }
        }
        Ok(Resolved {
            current,
            merged,
            linked,
        })
    }
}

fn pair_of(mut written: Vec<Stored>) -> (Stored, Stored) {
    let second = written.pop().expect("two Patients written");
    let first = written.pop().expect("two Patients written");
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_added_once_and_removed_by_type() {
        let mut p = Map::new();
        add_link(&mut p, "seealso", "b");
        add_link(&mut p, "seealso", "b");
        add_link(&mut p, "replaced-by", "c");
        assert_eq!(p["link"].as_array().unwrap().len(), 2);
        assert_eq!(replaced_by(&Value::Object(p.clone())).as_deref(), Some("c"));
        remove_links(&mut p, &["seealso"], "b");
        remove_links(&mut p, &["replaced-by"], "c");
        assert!(!p.contains_key("link"));
    }
}
