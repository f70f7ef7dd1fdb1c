//! Extraction of index rows from a resource's JSON.

use serde_json::Value;

use super::{ParamKind, ResourceDef, SearchParam};
use crate::{date, text};

/// One value of one search parameter, as stored in `search_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IndexRow {
    pub param: &'static str,
    pub text_norm: Option<String>,
    pub text_exact: Option<String>,
    pub token_system: Option<String>,
    pub token_code: Option<String>,
    pub date_lo: Option<i64>,
    pub date_hi: Option<i64>,
    pub reference: Option<String>,
}

/// Every index row of `resource` under `def`'s parameters, without
/// duplicates.
pub(crate) fn rows(def: &ResourceDef, resource: &Value) -> Vec<IndexRow> {
    let mut out: Vec<IndexRow> = Vec::new();
    for param in def.params {
        for path in param.paths {
            let mut found = Vec::new();
            walk(resource, path, &mut found);
            for value in found {
                for row in values(param.name, param.kind, value) {
                    if !out.contains(&row) {
                        out.push(row);
                    }
                }
            }
        }
    }
    out
}

/// The references (`Type/id`) a resource makes through a reference
/// parameter.
pub(crate) fn references(param: &SearchParam, resource: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for path in param.paths {
        let mut found = Vec::new();
        walk(resource, path, &mut found);
        for row in found
            .into_iter()
            .flat_map(|v| values(param.name, param.kind, v))
        {
            if let Some(reference) = row.reference
                && !out.contains(&reference)
            {
                out.push(reference);
            }
        }
    }
    out
}

/// Collect the values at `path`, flattening arrays at every step.
fn walk<'a>(value: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    if let Value::Array(items) = value {
        for item in items {
            walk(item, path, out);
        }
        return;
    }
    if path.is_empty() {
        out.push(value);
        return;
    }
    let (segment, rest) = path.split_once('.').unwrap_or((path, ""));
    let (name, filter) = match segment.split_once('(') {
        Some((name, f)) => (name, f.strip_suffix(')').and_then(|f| f.split_once('='))),
        None => (segment, None),
    };
    let Some(child) = value.get(name) else { return };
    let children: Vec<&Value> = match child {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in children {
        if let Some((key, want)) = filter
            && item.get(key).and_then(Value::as_str) != Some(want)
        {
            continue;
        }
        walk(item, rest, out);
    }
}

fn values(param: &'static str, kind: ParamKind, value: &Value) -> Vec<IndexRow> {
    match kind {
        ParamKind::String => string_parts(value)
            .into_iter()
            .flat_map(|s| string_rows(param, s))
            .collect(),
        ParamKind::Token => tokens(value)
            .into_iter()
            .map(|(system, code)| IndexRow {
                param,
                token_system: system,
                token_code: Some(code),
                ..IndexRow::default()
            })
            .collect(),
        ParamKind::Phone => tokens(value)
            .into_iter()
            .map(|(_, code)| text::phone(&code))
            .filter(|code| !code.is_empty())
            .map(|code| IndexRow {
                param,
                token_code: Some(code),
                ..IndexRow::default()
            })
            .collect(),
        ParamKind::Date => date_range(value)
            .map(|(lo, hi)| IndexRow {
                param,
                date_lo: Some(lo),
                date_hi: Some(hi),
                ..IndexRow::default()
            })
            .into_iter()
            .collect(),
        ParamKind::Reference(_) => value
            .get("reference")
            .and_then(Value::as_str)
            .and_then(normalize_reference)
            .map(|r| IndexRow {
                param,
                reference: Some(r),
                ..IndexRow::default()
            })
            .into_iter()
            .collect(),
    }
}

/// A row for the whole value (matched by prefix, `:exact` and `:contains`),
/// and one per word of a multi-word value (matched by prefix only).
fn string_rows(param: &'static str, s: &str) -> Vec<IndexRow> {
    let mut rows = vec![IndexRow {
        param,
        text_norm: Some(text::fold(s)),
        text_exact: Some(s.to_owned()),
        ..IndexRow::default()
    }];
    let words: Vec<&str> = text::words(s).collect();
    if words.len() > 1 {
        for word in words {
            rows.push(IndexRow {
                param,
                text_norm: Some(text::fold(word)),
                ..IndexRow::default()
            });
        }
    }
    rows
}

/// The searchable strings of a string, HumanName or Address value.
fn string_parts(value: &Value) -> Vec<&str> {
    const PARTS: &[&str] = &[
        "text",
        "family",
        "given",
        "prefix",
        "suffix",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
    ];
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Object(o) => PARTS
            .iter()
            .filter_map(|k| o.get(*k))
            .flat_map(|v| match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `(system, code)` pairs of a token value.
fn tokens(value: &Value) -> Vec<(Option<String>, String)> {
    let system = |v: &Value| v.get("system").and_then(Value::as_str).map(str::to_owned);
    match value {
        Value::String(code) => vec![(None, code.clone())],
        Value::Bool(b) => vec![(None, b.to_string())],
        Value::Object(o) => {
            if let Some(Value::Array(codings)) = o.get("coding") {
                codings
                    .iter()
                    .filter_map(|c| Some((system(c), c.get("code")?.as_str()?.to_owned())))
                    .collect()
            } else if let Some(code) = o.get("code").and_then(Value::as_str) {
                vec![(system(value), code.to_owned())]
            } else if let Some(v) = o.get("value").and_then(Value::as_str) {
                // Identifier or ContactPoint; a ContactPoint's `system` is a
                // kind of contact ("phone"), not a code system.
                let sys = if is_contact_kind(o.get("system")) {
                    None
                } else {
                    system(value)
                };
                vec![(sys, v.to_owned())]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

fn is_contact_kind(system: Option<&Value>) -> bool {
    matches!(
        system.and_then(Value::as_str),
        Some("phone" | "fax" | "email" | "pager" | "url" | "sms" | "other")
    )
}

fn date_range(value: &Value) -> Option<(i64, i64)> {
    match value {
        Value::String(s) => date::parse(s).map(|r| (r.lo, r.hi)),
        Value::Object(o) => {
            let start = o.get("start").and_then(Value::as_str).and_then(date::parse);
            let end = o.get("end").and_then(Value::as_str).and_then(date::parse);
            if start.is_none() && end.is_none() {
                return None;
            }
            Some((
                start.map_or(date::MIN_MS, |r| r.lo),
                end.map_or(date::MAX_MS, |r| r.hi),
            ))
        }
        _ => None,
    }
}

/// "Type/id" from a relative or absolute literal reference, without any
/// `_history` suffix. Contained (`#x`) and other forms are not indexed.
pub(crate) fn normalize_reference(reference: &str) -> Option<String> {
    let path = reference.split("/_history/").next()?;
    let mut segments = path.rsplit('/');
    let id = segments.next()?;
    let kind = segments.next()?;
    let is_type = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !id.is_empty()).then(|| format!("{kind}/{id}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::search::SearchParam;

    const PARAMS: &[SearchParam] = &[
        SearchParam {
            name: "name",
            kind: ParamKind::String,
            paths: &["name"],
        },
        SearchParam {
            name: "identifier",
            kind: ParamKind::Token,
            paths: &["identifier"],
        },
        SearchParam {
            name: "phone",
            kind: ParamKind::Phone,
            paths: &["telecom(system=phone)"],
        },
        SearchParam {
            name: "birthdate",
            kind: ParamKind::Date,
            paths: &["birthDate"],
        },
        SearchParam {
            name: "organization",
            kind: ParamKind::Reference(&["Organization"]),
            paths: &["managingOrganization"],
        },
    ];
    const DEF: ResourceDef = ResourceDef {
        resource_type: "Patient",
        params: PARAMS,
        sortable: &[],
        announce: None,
        keys: None,
    };

    #[test]
    fn human_name_parts_and_their_words_are_indexed_folded() {
        let rows = rows(
            &DEF,
            &json!({"name": [{"family": "Al-Hassan", "given": ["Zoë"]}]}),
        );
        let norms: Vec<_> = rows.iter().filter_map(|r| r.text_norm.as_deref()).collect();
        assert_eq!(norms, ["al-hassan", "al", "hassan", "zoe"]);
        let exact: Vec<_> = rows
            .iter()
            .filter_map(|r| r.text_exact.as_deref())
            .collect();
        assert_eq!(exact, ["Al-Hassan", "Zoë"]);
    }

    #[test]
    fn identifiers_keep_their_system_and_phones_are_normalized() {
        let rows = rows(
            &DEF,
            &json!({
                "identifier": [{"system": "urn:x", "value": "42"}],
                "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "+44 (20) 7946"}]
            }),
        );
        assert!(
            rows.iter()
                .any(|r| r.token_system.as_deref() == Some("urn:x")
                    && r.token_code.as_deref() == Some("42"))
        );
        let phones: Vec<_> = rows
            .iter()
            .filter(|r| r.param == "phone")
            .filter_map(|r| r.token_code.as_deref())
            .collect();
        assert_eq!(phones, ["+44207946"]);
    }

    #[test]
    fn references_are_reduced_to_type_and_id() {
        assert_eq!(
            normalize_reference("Organization/1").as_deref(),
            Some("Organization/1")
        );
        assert_eq!(
            normalize_reference("https://x.org/fhir/Organization/1/_history/2").as_deref(),
            Some("Organization/1")
        );
        assert_eq!(normalize_reference("#contained"), None);
        let rows = rows(
            &DEF,
            &json!({"managingOrganization": {"reference": "Organization/7"}}),
        );
        assert_eq!(rows[0].reference.as_deref(), Some("Organization/7"));
    }
}
