//! FHIR transaction Bundles at a service's edge: the Bundle is read and
//! every entry checked (its request, and its resource with the FHIR
//! validator) before the store sees any of it, and the store's results are
//! answered as a `transaction-response` Bundle.

use corridor_fhir::{Issue, Limits};
use corridor_store::{Outcome, TxRequest, TxResult};
use serde_json::{Map, Value, json};

use crate::ApiError;
use crate::error::in_entry;

/// The entries of transaction Bundle `json`, checked, for a service that
/// accepts `accepted` resource types. Anything wrong is refused with an
/// issue at its place in the Bundle. With `assigned_ids` (a part of a
/// transaction that spans services, from the gateway), a POST entry's
/// `resource.id` is the id the gateway chose for it.
pub fn parse(
    json: &str,
    accepted: &[&str],
    limits: &Limits,
    assigned_ids: bool,
) -> Result<Vec<TxRequest>, ApiError> {
    if json.len() > limits.max_bytes {
        return Err(Issue::new(
            "too-costly",
            format!(
                "the Bundle is {} bytes; the limit is {} bytes; send it in several transactions",
                json.len(),
                limits.max_bytes
            ),
        )
        .at("Bundle")
        .into());
    }
    let value: Value = serde_json::from_str(json).map_err(|e| {
        Issue::new("structure", format!("the Bundle is not valid JSON: {e}")).at("Bundle")
    })?;
    let bundle = value
        .as_object()
        .ok_or_else(|| Issue::new("structure", "a Bundle must be a JSON object").at("Bundle"))?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Issue::new("invalid", "resourceType must be \"Bundle\"")
            .at("Bundle.resourceType")
            .into());
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => {}
        other => {
            return Err(Issue::new(
                "invalid",
                format!(
                    "Bundle.type must be \"transaction\", not {}",
                    other.map_or("missing".to_owned(), |t| format!("\"{t}\""))
                ),
            )
            .at("Bundle.type")
            .into());
        }
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            Issue::new("required", "a transaction needs at least one entry").at("Bundle.entry")
        })?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            parse_entry(entry, accepted, limits, assigned_ids)
                .map_err(|issue| ApiError::Invalid(in_entry(index, issue)))
        })
        .collect()
}

fn parse_entry(
    entry: &Value,
    accepted: &[&str],
    limits: &Limits,
    assigned_ids: bool,
) -> Result<TxRequest, Issue> {
    let entry = entry
        .as_object()
        .ok_or_else(|| Issue::new("structure", "an entry must be a JSON object").at("entry"))?;
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Issue::new("required", "a transaction entry needs a request").at("request")
        })?;
    let text = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
    let method = text("method")
        .ok_or_else(|| Issue::new("required", "request.method is required").at("request.method"))?;
    let url = text("url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Issue::new("required", "request.url is required").at("request.url"))?;
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let resource = || -> Result<corridor_fhir::Validated, Issue> {
        let resource = entry
            .get("resource")
            .filter(|r| r.is_object())
            .ok_or_else(|| {
                Issue::new("required", format!("a {method} entry needs a resource")).at("resource")
            })?;
        corridor_fhir::validate(&resource.to_string(), accepted, limits)
    };
    match method.as_str() {
        "POST" => {
            let resource = resource()?;
            if url.trim_end_matches('/') != resource.resource_type {
                return Err(Issue::new(
                    "invalid",
                    format!(
                        "a POST of a {} goes to request.url \"{}\", not \"{url}\"",
                        resource.resource_type, resource.resource_type
                    ),
                )
                .at("request.url"));
            }
            Ok(TxRequest::Create {
                full_url,
                resource,
                if_none_exist: text("ifNoneExist"),
                id: assigned_ids
                    .then(|| entry.get("resource").and_then(|r| r.get("id")).and_then(Value::as_str))
                    .flatten()
                    .map(str::to_owned),
            })
        }
        "PUT" | "DELETE" => {
            let (resource_type, id) = instance_url(&url)?;
            if method == "DELETE" {
                return Ok(TxRequest::Delete {
                    resource_type,
                    id,
                    if_match: text("ifMatch"),
                });
            }
            let resource = resource()?;
            Ok(TxRequest::Update {
                resource_type,
                id,
                resource,
                if_match: text("ifMatch"),
            })
        }
        other => Err(Issue::new(
            "not-supported",
            format!("request.method {other} is not supported in a transaction here; use POST, PUT or DELETE"),
        )
        .at("request.method")),
    }
}

/// `Type/id` of a PUT or DELETE; conditional forms (`Type?query`) are not
/// supported.
fn instance_url(url: &str) -> Result<(String, String), Issue> {
    let parts: Vec<&str> = url.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [resource_type, id] if !url.contains('?') && !resource_type.is_empty() && !id.is_empty() => {
            Ok(((*resource_type).to_owned(), (*id).to_owned()))
        }
        _ => Err(Issue::new(
            "not-supported",
            format!("request.url must be [type]/[id] here, not \"{url}\" (conditional update and delete are not supported)"),
        )
        .at("request.url")),
    }
}

/// The `transaction-response` Bundle of `result`: one entry per request,
/// in order, with status, location, etag, lastModified and the resource.
pub fn response(result: &TxResult) -> Value {
    let entries: Vec<Value> = result
        .entries
        .iter()
        .map(|r| {
            let s = &r.stored;
            let status = match r.outcome {
                Outcome::Created => "201 Created",
                Outcome::Matched | Outcome::Updated => "200 OK",
                Outcome::Deleted => "204 No Content",
            };
            let mut response = Map::new();
            response.insert("status".into(), json!(status));
            response.insert(
                "location".into(),
                json!(format!(
                    "{}/{}/_history/{}",
                    s.resource_type, s.id, s.version
                )),
            );
            response.insert("etag".into(), json!(format!("W/\"{}\"", s.version)));
            response.insert("lastModified".into(), json!(s.last_updated));
            let mut entry = json!({
                "fullUrl": format!("{}/{}", s.resource_type, s.id),
                "response": response,
            });
            if !s.deleted
                && let Ok(resource) = serde_json::from_str::<Value>(&s.json)
            {
                entry["resource"] = resource;
            }
            entry
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": entries,
    })
}
