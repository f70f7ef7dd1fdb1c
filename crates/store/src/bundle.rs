//! FHIR Bundles (searchset and history) built from stored versions.

use serde_json::{Value, json};

use crate::Stored;

/// A query string from name/value pairs, percent-encoded.
pub(crate) fn query_string(params: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        ser.append_pair(name, value);
    }
    ser.finish()
}

/// Remove a Bundle's `entry` when it is empty: FHIR JSON has no empty
/// arrays, so a search that finds nothing answers a Bundle without one.
pub fn omit_empty_entry(mut bundle: Value) -> Value {
    if bundle
        .get("entry")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && let Some(object) = bundle.as_object_mut()
    {
        object.remove("entry");
    }
    bundle
}

fn link(relation: &str, url: String) -> Value {
    json!({ "relation": relation, "url": url })
}

fn resource_value(stored: &Stored) -> Value {
    serde_json::from_str(&stored.json).unwrap_or(Value::Null)
}

/// A searchset Bundle. Links are relative (`Patient?name=...`): the REST
/// gateway makes them absolute.
pub(crate) fn searchset(
    resource_type: &str,
    entries: &[Stored],
    total: i64,
    params: &[(String, String)],
    next_token: Option<&str>,
) -> Value {
    let mut links = vec![link(
        "self",
        format!("{resource_type}?{}", query_string(params)),
    )];
    if let Some(token) = next_token {
        let mut next = params.to_vec();
        next.push(("_page_token".to_owned(), token.to_owned()));
        links.push(link(
            "next",
            format!("{resource_type}?{}", query_string(&next)),
        ));
    }
    omit_empty_entry(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries.iter().map(|s| json!({
            "fullUrl": format!("{}/{}", s.resource_type, s.id),
            "resource": resource_value(s),
            "search": { "mode": "match" },
        })).collect::<Vec<_>>(),
    }))
}

/// A history Bundle of one resource's versions, newest first. Each version
/// comes with the method that wrote it: create, update or delete.
pub(crate) fn history(
    resource_type: &str,
    id: &str,
    versions: &[(Stored, String)],
    total: i64,
    next_token: Option<&str>,
) -> Value {
    let mut links = vec![link("self", format!("{resource_type}/{id}/_history"))];
    if let Some(token) = next_token {
        links.push(link(
            "next",
            format!("{resource_type}/{id}/_history?_page_token={token}"),
        ));
    }
    omit_empty_entry(json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
        "entry": versions.iter().map(|(s, method)| {
            let (method, url, status) = match method.as_str() {
                "create" => ("POST", s.resource_type.clone(), "201 Created"),
                "delete" => ("DELETE", format!("{}/{}", s.resource_type, s.id), "204 No Content"),
                _ => ("PUT", format!("{}/{}", s.resource_type, s.id), "200 OK"),
            };
            let mut entry = json!({
                "fullUrl": format!("{}/{}", s.resource_type, s.id),
                "request": { "method": method, "url": url },
                "response": {
                    "status": status,
                    "etag": format!("W/\"{}\"", s.version),
                    "lastModified": s.last_updated,
                },
            });
            if !s.deleted {
                entry["resource"] = resource_value(s);
            }
            entry
        }).collect::<Vec<_>>(),
    }))
}
