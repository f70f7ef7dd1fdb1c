//! What makes a transaction Bundle a recorded teleconsultation: one new
//! virtual Encounter that says the patient's language and whether an
//! interpreter took part, and new clinical resources that belong to it.

use corridor_fhir::Issue;
use corridor_runtime::error::in_entry;
use corridor_store::TxRequest;
use serde_json::Value;

/// Extension on Encounter: the language the consultation was held in, as a
/// BCP-47 tag (`valueCode`), i.e. the patient's language.
pub const LANGUAGE_EXTENSION: &str =
    "https://corridor.health/fhir/StructureDefinition/consultation-language";
/// Extension on Encounter: whether an interpreter took part
/// (`valueBoolean`). When true, a participant of type INTRP names them.
pub const INTERPRETER_EXTENSION: &str =
    "https://corridor.health/fhir/StructureDefinition/consultation-interpreter";

const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// Where each type refers to the Encounter it belongs to.
const ENCOUNTER_ELEMENT: &[(&str, &[&str])] = &[
    ("Observation", &["encounter"]),
    ("Condition", &["encounter"]),
    ("Communication", &["encounter"]),
    ("Immunization", &["encounter"]),
    ("AllergyIntolerance", &["encounter"]),
    ("MedicationStatement", &["context"]),
    ("DocumentReference", &["context", "encounter"]),
];

/// Check that `requests` record one teleconsultation; the index of its
/// Encounter entry.
pub fn check(requests: &[TxRequest]) -> Result<usize, Issue> {
    let mut encounter = None;
    for (index, request) in requests.iter().enumerate() {
        let TxRequest::Create {
            resource, full_url, ..
        } = request
        else {
            return Err(in_entry(
                index,
                Issue::new(
                    "invalid",
                    "a consultation is recorded with POST entries only; change existing resources with Update or Transaction",
                )
                .at("request.method"),
            ));
        };
        if resource.resource_type == "Encounter" {
            if encounter.is_some() {
                return Err(in_entry(
                    index,
                    Issue::new(
                        "invalid",
                        "a consultation has exactly one Encounter; this is a second",
                    )
                    .at("Encounter"),
                ));
            }
            check_encounter(&resource.object).map_err(|issue| in_entry(index, issue))?;
            encounter = Some((index, full_url.as_deref()));
        }
    }
    let Some((encounter_index, encounter_url)) = encounter else {
        return Err(Issue::new(
            "required",
            "a consultation Bundle needs one Encounter entry (class VR)",
        )
        .at("Bundle.entry"));
    };
    for (index, request) in requests.iter().enumerate() {
        let TxRequest::Create { resource, .. } = request else {
            continue;
        };
        let Some((_, path)) = ENCOUNTER_ELEMENT
            .iter()
            .find(|(t, _)| *t == resource.resource_type)
        else {
            continue;
        };
        let refers = references_at(&Value::Object(resource.object.clone()), path)
            .iter()
            .any(|r| Some(r.as_str()) == encounter_url);
        if !refers {
            let element = format!("{}.{}", resource.resource_type, path.join("."));
            return Err(in_entry(
                index,
                Issue::new(
                    "invalid",
                    format!(
                        "{element} must refer to the consultation's Encounter by its fullUrl ({})",
                        encounter_url
                            .unwrap_or("give the Encounter entry a fullUrl such as urn:uuid:…")
                    ),
                )
                .at(element),
            ));
        }
    }
    Ok(encounter_index)
}

fn check_encounter(encounter: &serde_json::Map<String, Value>) -> Result<(), Issue> {
    let class = encounter.get("class");
    let virtual_class = class.and_then(|c| c.get("code")).and_then(Value::as_str) == Some("VR")
        && class.and_then(|c| c.get("system")).and_then(Value::as_str) == Some(ACT_CODE);
    if !virtual_class {
        return Err(Issue::new(
            "invalid",
            format!("a teleconsultation's Encounter.class is {ACT_CODE}|VR (virtual)"),
        )
        .at("Encounter.class"));
    }
    let extension = |url: &str| {
        encounter
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|e| e.get("url").and_then(Value::as_str) == Some(url))
    };
    let language = extension(LANGUAGE_EXTENSION)
        .and_then(|e| e.get("valueCode"))
        .and_then(Value::as_str);
    if !language.is_some_and(is_language_tag) {
        return Err(Issue::new(
            "required",
            format!(
                "the patient's language is required: an extension {LANGUAGE_EXTENSION} with a BCP-47 valueCode such as \"ar\" or \"fa-AF\""
            ),
        )
        .at("Encounter.extension"));
    }
    let interpreter = extension(INTERPRETER_EXTENSION)
        .and_then(|e| e.get("valueBoolean"))
        .and_then(Value::as_bool);
    let Some(interpreter) = interpreter else {
        return Err(Issue::new(
            "required",
            format!("whether an interpreter took part is required: an extension {INTERPRETER_EXTENSION} with valueBoolean"),
        )
        .at("Encounter.extension"));
    };
    let has_interpreter = encounter
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p.get("type")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .flat_map(|t| {
            t.get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|c| {
            c.get("code").and_then(Value::as_str) == Some("INTRP")
                && c.get("system").and_then(Value::as_str) == Some(PARTICIPATION_TYPE)
        });
    if interpreter && !has_interpreter {
        return Err(Issue::new(
            "invalid",
            format!("the interpreter extension says an interpreter took part, but no participant has type {PARTICIPATION_TYPE}|INTRP"),
        )
        .at("Encounter.participant"));
    }
    Ok(())
}

/// A BCP-47 tag's shape: a 2-3 letter language, then subtags of 1-8
/// letters or digits.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The `reference` strings at `path` (arrays flattened at each step).
fn references_at(value: &Value, path: &[&str]) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(|i| references_at(i, path)).collect(),
        _ => match path.split_first() {
            None => value
                .get("reference")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            Some((head, rest)) => value
                .get(*head)
                .map(|child| references_at(child, rest))
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_told_from_other_text() {
        for good in ["ar", "fa-AF", "ti", "prs", "zh-Hant-TW", "sr-Latn"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in ["", "a", "arabic", "ar_SY", "fa-", "ar-toolongsubtag", "1a"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
