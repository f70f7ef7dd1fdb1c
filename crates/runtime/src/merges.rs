//! Following Patient merges, so that a merged person's history is whole.
//!
//! When identity merges Patient S into Patient T, the records filed under S
//! keep naming `Patient/S`: nothing is rewritten, so an unmerge has nothing
//! to undo here. They are found through T instead. A search by Patient
//! rewrites each Patient it names into every id of that person (a
//! comma-separated OR, which the store answers as one query), and a
//! patient's compartment (`Patient/$everything`, a patient's referrals)
//! reads the compartment of all of them at once. The ids come from identity's
//! `ResolvePatient` at every request; nothing is cached, so a merge or an
//! unmerge shows in the next answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use corridor_store::compartment::Slice;
use corridor_store::{ParamKind, ResourceDef, Store};

use crate::ApiError;

/// A future returned by [`Merges::merged_ids`].
pub type MergedIds<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, ApiError>> + Send + 'a>>;

/// Knows which Patients were merged into one person.
pub trait Merges: Send + Sync + std::fmt::Debug {
    /// Where each type names the Patient it is about: (type, element).
    fn patient_elements(&self) -> &'static [(&'static str, &'static str)];

    /// Every id of the person Patient `id` is: the id its merges lead to
    /// first, then the ids merged into that one, in an order that does not
    /// depend on which of them was asked. Just `id` when it was never
    /// merged, or is not known.
    fn merged_ids<'a>(&'a self, id: &'a str) -> MergedIds<'a>;
}

// === impl Following ===

/// A service's searches by Patient, and who to ask about merges.
#[derive(Debug, Clone)]
pub(crate) struct Following {
    merges: Arc<dyn Merges>,
    /// (type, parameter, whether a bare id means a Patient): the reference
    /// parameters that search the element where a type names its Patient,
    /// such as `Encounter?patient=` and `Encounter?subject=`.
    params: Vec<(&'static str, &'static str, bool)>,
}

impl Following {
    pub(crate) fn new(merges: Arc<dyn Merges>, defs: &[ResourceDef]) -> Self {
        let mut params = Vec::new();
        for (resource_type, element) in merges.patient_elements() {
            let Some(def) = defs.iter().find(|d| d.resource_type == *resource_type) else {
                continue;
            };
            for param in def.params {
                if let ParamKind::Reference(targets) = param.kind
                    && targets.contains(&"Patient")
                    && param.paths == [*element]
                {
                    params.push((def.resource_type, param.name, targets == ["Patient"]));
                }
            }
        }
        Self { merges, params }
    }

    /// `params` with each Patient named by a Patient parameter replaced by
    /// every id of that person. A value names a Patient as `Patient/<id>`
    /// (an absolute URL or a `_history` suffix, as the store reads them) or,
    /// where the parameter refers to Patients only, as a bare id. A Patient
    /// that was never merged is left as written, so are other values (a
    /// Group, an escaped comma), for the store to judge. The result is the
    /// same whichever id of a person was asked and however often it is
    /// expanded, so page tokens, bound to the query, keep working; after a
    /// merge or an unmerge they are refused, since the answer changed.
    pub(crate) async fn expand(
        &self,
        resource_type: &str,
        params: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let mut expanded = Vec::with_capacity(params.len());
        for (name, value) in params {
            let Some(&(_, _, bare)) = self
                .params
                .iter()
                .find(|(t, n, _)| *t == resource_type && *n == name)
            else {
                expanded.push((name, value));
                continue;
            };
            let pieces: Vec<(&str, Option<&str>)> = split_raw(&value)
                .into_iter()
                .map(|piece| (piece, patient_id(piece, bare)))
                .collect();
            let asked: Vec<&str> = pieces.iter().filter_map(|(_, id)| *id).collect();
            let people =
                futures::future::try_join_all(asked.iter().map(|id| self.merges.merged_ids(id)))
                    .await?;
            let mut seen: Vec<String> = Vec::new();
            let mut out: Vec<String> = Vec::new();
            let mut add = |key: String, written: String| {
                if !seen.contains(&key) {
                    seen.push(key);
                    out.push(written);
                }
            };
            let mut people = people.into_iter();
            for (piece, id) in pieces {
                match id {
                    None => add(piece.to_owned(), piece.to_owned()),
                    Some(id) => match people.next() {
                        Some(ids) if ids.len() > 1 || ids.first().is_some_and(|i| i != id) => {
                            for id in ids {
                                let reference = format!("Patient/{id}");
                                add(reference.clone(), reference);
                            }
                        }
                        _ => add(format!("Patient/{id}"), piece.to_owned()),
                    },
                }
            }
            let searched = out.join(",");
            if searched != value {
                tracing::debug!(
                    resource_type,
                    param = %name,
                    asked = %value,
                    %searched,
                    "search follows merges"
                );
            }
            expanded.push((name, searched));
        }
        Ok(expanded)
    }
}

/// The comma-separated pieces of a search value, as written: a backslash
/// escapes the character after it, which stays in the piece.
fn split_raw(value: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                pieces.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    pieces.push(&value[start..]);
    pieces
}

/// The Patient id a search value names, if it names one this node can
/// follow.
fn patient_id(piece: &str, bare: bool) -> Option<&str> {
    if piece.contains('\\') {
        return None;
    }
    let path = piece.split("/_history/").next()?;
    let id = match path.rsplit_once('/') {
        None if bare => path,
        None => return None,
        Some((before, id)) => {
            let kind = before.rsplit('/').next()?;
            (kind == "Patient").then_some(id)?
        }
    };
    let is_fhir_id = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    is_fhir_id.then_some(id)
}

// === patient compartments ===

/// One page of the records filed under any of `patient_ids` (the ids of
/// one person, as [`Merges::merged_ids`] gives them) whose parameter
/// `param` names the Patient. The page token is bound to the list of ids:
/// after a merge or an unmerge it is refused, rather than skipping or
/// repeating records. With `access`, only the records it lets the caller
/// see, counted and paged as such.
pub async fn patient_compartment(
    store: &Store,
    param: &str,
    patient_ids: &[String],
    since: Option<&str>,
    count: i64,
    page_token: Option<&str>,
    access: Option<&corridor_store::Access>,
) -> Result<Slice, ApiError> {
    let references: Vec<String> = patient_ids
        .iter()
        .map(|id| format!("Patient/{id}"))
        .collect();
    Ok(store
        .compartment(param, &references, since, count, page_token, access)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_values_are_read_as_the_store_reads_references() {
        assert_eq!(patient_id("Patient/a-1", false), Some("a-1"));
        assert_eq!(
            patient_id("https://node.example/fhir/Patient/a.1/_history/3", false),
            Some("a.1")
        );
        assert_eq!(patient_id("a1", true), Some("a1"));
        assert_eq!(patient_id("a1", false), None, "ambiguous without a type");
        assert_eq!(patient_id("Group/g1", false), None);
        assert_eq!(patient_id("Patient/", false), None);
        assert_eq!(patient_id(r"Patient/a\,b", false), None);
    }

    #[test]
    fn escaped_commas_do_not_split_values() {
        assert_eq!(split_raw(r"a\,b,c"), [r"a\,b", "c"]);
        assert_eq!(split_raw("a"), ["a"]);
        assert_eq!(split_raw("a,,b"), ["a", "", "b"]);
    }

    #[derive(Debug)]
    struct OnePerson;

    /// `t` and `s` are one person (s merged into t); everyone else stands
    /// alone.
    impl Merges for OnePerson {
        fn patient_elements(&self) -> &'static [(&'static str, &'static str)] {
            &[("Encounter", "subject")]
        }

        fn merged_ids<'a>(&'a self, id: &'a str) -> MergedIds<'a> {
            Box::pin(async move {
                Ok(match id {
                    "t" | "s" => vec!["t".to_owned(), "s".to_owned()],
                    other => vec![other.to_owned()],
                })
            })
        }
    }

    const ENCOUNTER: &[ResourceDef] = &[ResourceDef {
        resource_type: "Encounter",
        params: &[
            corridor_store::SearchParam {
                name: "patient",
                kind: ParamKind::Reference(&["Patient"]),
                paths: &["subject"],
            },
            corridor_store::SearchParam {
                name: "subject",
                kind: ParamKind::Reference(&["Patient", "Group"]),
                paths: &["subject"],
            },
            corridor_store::SearchParam {
                name: "participant",
                kind: ParamKind::Reference(&["Practitioner", "Patient"]),
                paths: &["participant.individual"],
            },
        ],
        sortable: &[],
        announce: None,
        keys: None,
    }];

    async fn expanded(name: &str, value: &str) -> String {
        let following = Following::new(Arc::new(OnePerson), ENCOUNTER);
        let params = vec![(name.to_owned(), value.to_owned())];
        let mut out = following.expand("Encounter", params).await.unwrap();
        out.pop().unwrap().1
    }

    #[tokio::test]
    async fn a_merged_patient_is_searched_under_every_id_whichever_was_asked() {
        assert_eq!(expanded("patient", "t").await, "Patient/t,Patient/s");
        assert_eq!(
            expanded("patient", "Patient/s").await,
            "Patient/t,Patient/s"
        );
        assert_eq!(
            expanded("subject", "Patient/t,Group/g").await,
            "Patient/t,Patient/s,Group/g"
        );
        assert_eq!(
            expanded("patient", "Patient/t,Patient/s").await,
            "Patient/t,Patient/s",
            "expanding twice changes nothing, so next links keep working"
        );
    }

    #[tokio::test]
    async fn values_that_are_not_merged_patients_are_left_as_written() {
        assert_eq!(expanded("patient", "alone").await, "alone");
        assert_eq!(
            expanded("subject", "t").await,
            "t",
            "ambiguous: the store says so"
        );
        assert_eq!(
            expanded("participant", "Patient/t").await,
            "Patient/t",
            "only the element naming the record's Patient is followed"
        );
    }
}
