//! `POST [base]` with a Bundle. A `transaction` goes whole to the service
//! that owns its entries, which applies it atomically; one whose entries
//! belong to several services is split and coordinated by
//! [`crate::spanning`]. Conditional references (`Patient?identifier=…`) are
//! resolved first. A `batch` is processed entry by entry through the same
//! routes as single requests, each entry with its own status.

use std::collections::HashMap;

use axum::body::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::backends::Owner;
use crate::reply::{HttpError, Presentation, Reply};
use crate::rest::{self, Call, Gateway};

pub async fn post(
    gateway: &Gateway,
    call: &Call,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let body = call.json_body()?;
    if body.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(HttpError::bad_request(
            "invalid",
            "POST to the base takes a Bundle of type transaction or batch",
            "resourceType",
        ));
    }
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let max = gateway.limits.max_entries;
    if entries.len() > max {
        return Err(HttpError::at(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!(
                "the Bundle has {} entries; at most {max} are taken at once; send it in several Bundles",
                entries.len()
            ),
            "Bundle.entry",
        ));
    }
    match body.get("type").and_then(Value::as_str) {
        Some("transaction") => transaction(gateway, call, entries).await,
        Some("batch") => batch(gateway, call, entries, presentation).await,
        other => Err(HttpError::bad_request(
            "invalid",
            format!(
                "Bundle.type must be transaction or batch to be posted to the base, not {}",
                other.map_or("missing".to_owned(), |t| format!("'{t}'"))
            ),
            "Bundle.type",
        )),
    }
}

/// The resource type an entry is about: from its request URL, else from
/// its resource.
fn entry_type(entry: &Value) -> Option<&str> {
    let url = entry.pointer("/request/url").and_then(Value::as_str);
    let from_url = url.and_then(|u| {
        let path = u.split('?').next().unwrap_or_default();
        let path = path.rsplit_once("/fhir/").map_or(path, |(_, p)| p);
        path.split('/').find(|s| !s.is_empty())
    });
    from_url.or_else(|| {
        entry
            .pointer("/resource/resourceType")
            .and_then(Value::as_str)
    })
}

async fn transaction(
    gateway: &Gateway,
    call: &Call,
    entries: &[Value],
) -> Result<Reply, HttpError> {
    if entries.is_empty() {
        return Err(HttpError::bad_request(
            "required",
            "the transaction has no entries",
            "Bundle.entry",
        ));
    }
    let mut owners = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("Bundle.entry[{index}].request.url");
        let Some(resource_type) = entry_type(entry) else {
            return Err(HttpError::bad_request(
                "required",
                format!(
                    "entry {index} names no resource type (request.url or resource.resourceType)"
                ),
                &at,
            ));
        };
        let Some((owner, _)) = Owner::of(resource_type) else {
            return Err(HttpError::bad_request(
                "not-supported",
                format!("entry {index}: resource type '{resource_type}' is not served here"),
                &at,
            ));
        };
        owners.push(owner);
    }
    let mut entries = entries.to_vec();
    conditional_references(gateway, call, &mut entries).await?;
    if owners.iter().any(|o| *o != owners[0]) {
        return crate::spanning::transaction(gateway, call, entries, &owners).await;
    }
    let owner = owners[0];
    let mut bundle: Value = serde_json::from_slice(&call.body).unwrap_or_default();
    bundle["entry"] = Value::Array(entries);
    let (bundle, _) = gateway
        .backends
        .transaction(
            owner,
            bundle.to_string(),
            &call.context,
            gateway.limits.timeout,
        )
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    let mut body = rest::bundle_json(&bundle.json)?;
    rest::absolutize(&mut body, call, &[]);
    Ok(Reply::json(StatusCode::OK, body))
}

/// Resolve every conditional reference (`Patient?identifier=…`) in the
/// entries: to the entry of this Bundle that creates that resource on the
/// same condition (`ifNoneExist`), else to the one resource the search
/// finds. None or several found is an error naming the entry.
async fn conditional_references(
    gateway: &Gateway,
    call: &Call,
    entries: &mut [Value],
) -> Result<(), HttpError> {
    let mut created: HashMap<(String, String), String> = HashMap::new();
    for entry in entries.iter_mut() {
        let condition = entry
            .pointer("/request/ifNoneExist")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        let is_post = entry.pointer("/request/method").and_then(Value::as_str) == Some("POST");
        if let (Some(condition), true, Some(resource_type)) =
            (condition, is_post, entry_type(entry))
        {
            let resource_type = resource_type.to_owned();
            if entry.get("fullUrl").and_then(Value::as_str).is_none() {
                entry["fullUrl"] = Value::String(format!("urn:uuid:{}", uuid::Uuid::new_v4()));
            }
            let full_url = entry["fullUrl"].as_str().unwrap_or_default().to_owned();
            created.insert((resource_type, condition), full_url);
        }
    }
    let mut found: HashMap<String, String> = HashMap::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        let mut wanted = Vec::new();
        crate::spanning::for_each_reference(entry, &mut |reference| {
            if let Some((resource_type, query)) = conditional(reference) {
                match created.get(&(resource_type.to_owned(), query.to_owned())) {
                    Some(full_url) => *reference = full_url.clone(),
                    None => wanted.push(reference.clone()),
                }
            }
        });
        for reference in wanted {
            if found.contains_key(&reference) {
                continue;
            }
            let target = search_one(gateway, call, &reference, index).await?;
            found.insert(reference, target);
        }
        crate::spanning::for_each_reference(entry, &mut |reference| {
            if let Some(target) = found.get(reference.as_str()) {
                *reference = target.clone();
            }
        });
    }
    Ok(())
}

/// `Type` and query of a conditional reference.
fn conditional(reference: &str) -> Option<(&str, &str)> {
    let (resource_type, query) = reference.split_once('?')?;
    let is_type = resource_type.starts_with(|c: char| c.is_ascii_uppercase())
        && resource_type.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !query.is_empty()).then_some((resource_type, query))
}

/// The one resource conditional reference `reference` names, as `Type/id`.
async fn search_one(
    gateway: &Gateway,
    call: &Call,
    reference: &str,
    index: usize,
) -> Result<String, HttpError> {
    let at = format!("Bundle.entry[{index}]");
    let (resource_type, query) = conditional(reference).unwrap_or_default();
    let Some((owner, _)) = Owner::of(resource_type) else {
        return Err(HttpError::bad_request(
            "not-supported",
            format!(
                "entry {index}: the conditional reference '{reference}' names a type not served here"
            ),
            &at,
        ));
    };
    let mut params = rest::query_pairs(query);
    params.push(("_count".to_owned(), "2".to_owned()));
    let bundle = gateway
        .backends
        .search(owner, resource_type, &params, &call.context)
        .await
        .map_err(|s| {
            let mut err = HttpError::from_status(&s, owner.name());
            err.outcome["issue"][0]["diagnostics"] = Value::String(format!(
                "entry {index}: the conditional reference '{reference}' is not a search this server can run: {}",
                err.outcome["issue"][0]["diagnostics"].as_str().unwrap_or_default()
            ));
            err
        })?;
    let bundle = rest::bundle_json(&bundle.json)?;
    let ids: Vec<&str> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.pointer("/search/mode").and_then(Value::as_str) != Some("include"))
        .filter_map(|e| e.pointer("/resource/id").and_then(Value::as_str))
        .collect();
    match ids.as_slice() {
        [id] => Ok(format!("{resource_type}/{id}")),
        [] => Err(HttpError::at(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "entry {index}: the conditional reference '{reference}' matches no {resource_type}"
            ),
            &at,
        )),
        _ => Err(HttpError::at(
            StatusCode::PRECONDITION_FAILED,
            "multiple-matches",
            format!(
                "entry {index}: the conditional reference '{reference}' matches more than one {resource_type}; make the condition select one"
            ),
            &at,
        )),
    }
}

async fn batch(
    gateway: &Gateway,
    call: &Call,
    entries: &[Value],
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let mut answers = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let reply = match entry_call(call, entry, index) {
            Ok(entry_call) => {
                match Box::pin(rest::dispatch(gateway, &entry_call, presentation)).await {
                    Ok(reply) => reply,
                    Err(err) => crate::reply::error(err),
                }
            }
            Err(err) => crate::reply::error(err),
        };
        answers.push(entry_answer(reply));
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "batch-response", "entry": answers}),
    ))
}

/// A batch entry as a request of its own. A retried batch replays each
/// entry: the batch's idempotency key, with the entry's index, is the
/// entry's key.
fn entry_call(call: &Call, entry: &Value, index: usize) -> Result<Call, HttpError> {
    let at = |field: &str| format!("Bundle.entry[{index}].request.{field}");
    let request = entry.get("request").ok_or_else(|| {
        HttpError::bad_request(
            "required",
            format!("entry {index} has no request"),
            &format!("Bundle.entry[{index}].request"),
        )
    })?;
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .filter(|m| [Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(m))
        .ok_or_else(|| {
            HttpError::bad_request(
                "required",
                format!("entry {index}: request.method must be GET, POST, PUT or DELETE"),
                &at("method"),
            )
        })?;
    let url = request.get("url").and_then(Value::as_str).ok_or_else(|| {
        HttpError::bad_request(
            "required",
            format!("entry {index} has no request.url"),
            &at("url"),
        )
    })?;
    let url = url
        .strip_prefix(&call.base)
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments = rest::segments(path);
    if segments.is_empty() {
        return Err(HttpError::bad_request(
            "not-supported",
            format!("entry {index}: a batch entry cannot post a Bundle to the base"),
            &at("url"),
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::reply::FHIR_JSON),
    );
    for (field, name) in [
        ("ifMatch", "if-match"),
        ("ifNoneExist", "if-none-exist"),
        ("ifNoneMatch", "if-none-match"),
    ] {
        if let Some(value) = request
            .get(field)
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(name, value);
        }
    }
    let body = match entry.get("resource") {
        Some(resource) => Bytes::from(resource.to_string()),
        None => Bytes::new(),
    };
    let mut context = call.context.clone();
    context.idempotency_key = call
        .context
        .idempotency_key
        .as_ref()
        .map(|k| format!("{k}#{index}"));
    Ok(Call {
        method,
        segments,
        params: rest::query_pairs(query),
        headers,
        body,
        base: call.base.clone(),
        context,
    })
}

/// A batch-response entry from an answer.
fn entry_answer(reply: Reply) -> Value {
    let status = format!(
        "{} {}",
        reply.status.as_u16(),
        reply.status.canonical_reason().unwrap_or_default()
    );
    let mut response = json!({ "status": status });
    for (name, value) in &reply.headers {
        let field = match *name {
            header::ETAG => "etag",
            header::LAST_MODIFIED => "lastModified",
            header::LOCATION | header::CONTENT_LOCATION => "location",
            _ => continue,
        };
        let value = if field == "lastModified" {
            // FHIR wants the instant here, not the HTTP date.
            match &reply.last_updated {
                Some(instant) => instant.clone(),
                None => continue,
            }
        } else {
            value.clone()
        };
        response[field] = Value::String(value);
    }
    let mut entry = json!({});
    match reply.body {
        Some(body) if !reply.status.is_success() => response["outcome"] = body,
        Some(body) => entry["resource"] = body,
        None => {}
    }
    entry["response"] = response;
    entry
}
