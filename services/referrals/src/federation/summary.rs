//! The patient summary a cross-border referral carries: a FHIR document
//! Bundle that follows the International Patient Summary's composition
//! where the data exists (problems, allergies, medications, immunizations
//! and the most recent encounters), limited to what the patient's Consent
//! permits.
//!
//! A section whose type the Consent leaves out says so (`emptyReason`
//! withheld); one with nothing recorded says that (`unavailable`). Every
//! reference between the document's resources is rewritten to the entry's
//! `urn:uuid:` fullUrl, so that the document stands on its own.

use std::collections::HashMap;

use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const EMPTY_REASON: &str = "http://terminology.hl7.org/CodeSystem/list-empty-reason";
/// How many of the most recent encounters the summary keeps.
pub const RECENT_ENCOUNTERS: usize = 10;

/// The sections: (resource type, LOINC code, title).
pub const SECTIONS: &[(&str, &str, &str)] = &[
    ("Condition", "11450-4", "Problem list"),
    (
        "AllergyIntolerance",
        "48765-2",
        "Allergies and intolerances",
    ),
    ("MedicationStatement", "10160-0", "Medication summary"),
    ("Immunization", "11369-6", "Immunizations"),
    ("Encounter", "46240-8", "History of encounters"),
];

/// Whether a Consent that limits disclosure to `classes` (resource types;
/// empty means all) lets `resource_type` out.
pub fn permitted(classes: &[String], resource_type: &str) -> bool {
    classes.is_empty() || classes.iter().any(|c| c == resource_type)
}

/// The document for `patient` from `resources` (their FHIR JSON, any
/// types), keeping only the sections' types that `classes` permits.
/// `author` names who made it, e.g. "Corridor node it (IT)".
pub fn document(patient: &Value, resources: &[Value], classes: &[String], author: &str) -> Value {
    let uuid = || format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let mut urls: HashMap<String, String> = HashMap::new();
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        )
    };
    let patient_url = uuid();
    urls.insert(key(patient), patient_url.clone());
    let mut chosen: Vec<(&'static str, Vec<&Value>)> = Vec::new();
    for (resource_type, _, _) in SECTIONS {
        let mut of_type: Vec<&Value> = resources
            .iter()
            .filter(|r| r["resourceType"] == *resource_type)
            .collect();
        if !permitted(classes, resource_type) {
            of_type.clear();
        }
        if *resource_type == "Encounter" {
            // Most recent first, by when they started.
            of_type.sort_by(|a, b| {
                b["period"]["start"]
                    .as_str()
                    .unwrap_or_default()
                    .cmp(a["period"]["start"].as_str().unwrap_or_default())
            });
            of_type.truncate(RECENT_ENCOUNTERS);
        }
        for resource in &of_type {
            urls.insert(key(resource), uuid());
        }
        chosen.push((resource_type, of_type));
    }
    let mut entries = Vec::new();
    let mut sections = Vec::new();
    for ((resource_type, code, title), (_, of_type)) in SECTIONS.iter().zip(&chosen) {
        let mut section = json!({
            "title": title,
            "code": {"coding": [{"system": LOINC, "code": code}]},
        });
        if of_type.is_empty() {
            let (reason, text) = if permitted(classes, resource_type) {
                ("unavailable", "Nothing is recorded.")
            } else {
                (
                    "withheld",
                    "Withheld: the patient's Consent does not permit sharing it.",
                )
            };
            section["emptyReason"] = json!({"coding": [{"system": EMPTY_REASON, "code": reason}]});
            section["text"] = narrative(text);
        } else {
            section["text"] = narrative(&format!("{} entries.", of_type.len()));
            section["entry"] = Value::Array(
                of_type
                    .iter()
                    .map(|r| json!({"reference": urls[&key(r)]}))
                    .collect(),
            );
            for resource in of_type {
                entries.push(json!({
                    "fullUrl": urls[&key(resource)],
                    "resource": rewritten(resource, &urls),
                }));
            }
        }
        sections.push(section);
    }
    let now = corridor_store::now_instant();
    let composition_url = uuid();
    let composition = json!({
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": {"reference": patient_url},
        "date": now,
        "author": [{"display": author}],
        "title": "International Patient Summary",
        "section": sections,
    });
    let mut all = vec![
        json!({"fullUrl": composition_url, "resource": composition}),
        json!({"fullUrl": patient_url, "resource": rewritten(patient, &urls)}),
    ];
    all.extend(entries);
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": uuid()},
        "type": "document",
        "timestamp": now,
        "entry": all,
    })
}

/// A collection Bundle of `resources`, references between them rewritten
/// as in [`document`]: a referral's outcome as the performing node returns
/// it.
pub fn collection(resources: &[Value]) -> Value {
    let mut urls = HashMap::new();
    for resource in resources {
        urls.insert(
            format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            ),
            format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        );
    }
    let entries: Vec<Value> = resources
        .iter()
        .map(|resource| {
            let key = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": urls[&key], "resource": rewritten(resource, &urls)})
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": corridor_store::now_instant(),
        "entry": entries,
    })
}

fn narrative(text: &str) -> Value {
    json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{text}</div>"),
    })
}

/// `resource` with every reference to another of the document's resources
/// pointing at its fullUrl.
fn rewritten(resource: &Value, urls: &HashMap<String, String>) -> Value {
    match resource {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("reference", Value::String(r)) => urls
                            .get(r)
                            .map_or_else(|| v.clone(), |url| Value::String(url.clone())),
                        _ => rewritten(v, urls),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| rewritten(v, urls)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> (Value, Vec<Value>) {
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        let resources = vec![
            json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Immunization", "id": "i1", "patient": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
        ];
        (patient, resources)
    }

    #[test]
    fn the_summary_is_an_ips_shaped_document_whose_references_resolve_inside_it() {
        let (patient, resources) = records();
        let doc = document(&patient, &resources, &[], "node it");
        assert_eq!(doc["type"], "document");
        let entries = doc["entry"].as_array().unwrap();
        assert_eq!(entries[0]["resource"]["resourceType"], "Composition");
        assert_eq!(
            entries[0]["resource"]["type"]["coding"][0]["code"],
            "60591-5"
        );
        assert_eq!(entries[1]["resource"]["resourceType"], "Patient");
        let urls: Vec<&str> = entries
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        // The Observation is not one of the summary's sections.
        assert_eq!(entries.len(), 4);
        for entry in &entries[2..] {
            let subject = entry["resource"]["subject"]["reference"]
                .as_str()
                .or(entry["resource"]["patient"]["reference"].as_str())
                .unwrap();
            assert!(
                urls.contains(&subject),
                "{subject} resolves in the document"
            );
        }
        let sections = entries[0]["resource"]["section"].as_array().unwrap();
        assert_eq!(sections.len(), SECTIONS.len());
        assert_eq!(
            sections[1]["emptyReason"]["coding"][0]["code"],
            "unavailable"
        );
    }

    #[test]
    fn a_consent_limited_to_some_types_withholds_the_other_sections() {
        let (patient, resources) = records();
        let doc = document(
            &patient,
            &resources,
            &["Immunization".to_owned()],
            "node it",
        );
        let types: Vec<&str> = doc["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Composition", "Patient", "Immunization"]);
        let problems = &doc["entry"][0]["resource"]["section"][0];
        assert_eq!(problems["emptyReason"]["coding"][0]["code"], "withheld");
    }

    #[test]
    fn only_the_most_recent_encounters_are_kept_newest_first() {
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        let encounters: Vec<Value> = (0..15)
            .map(|i| json!({"resourceType": "Encounter", "id": format!("e{i}"), "period": {"start": format!("2026-01-{:02}", i + 1)}}))
            .collect();
        let doc = document(&patient, &encounters, &[], "node it");
        let kept: Vec<&str> = doc["entry"].as_array().unwrap()[2..]
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(kept.len(), RECENT_ENCOUNTERS);
        assert_eq!(kept[0], "e14");
    }
}
