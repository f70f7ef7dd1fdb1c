//! `POST [base]` with a Bundle: a `transaction` goes whole to the service
//! that owns its entries, which applies it atomically; a `batch` is
//! processed entry by entry through the same routes as single requests,
//! each entry with its own status.

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
    let mut owner: Option<(Owner, &str)> = None;
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
        let Some((this, _)) = Owner::of(resource_type) else {
            return Err(HttpError::bad_request(
                "not-supported",
                format!("entry {index}: resource type '{resource_type}' is not served here"),
                &at,
            ));
        };
        match owner {
            None => owner = Some((this, resource_type)),
            Some((first, first_type)) if first != this => {
                return Err(HttpError::bad_request(
                    "not-supported",
                    format!(
                        "a transaction's entries must all belong to one service for now: {first_type} belongs to {} and {resource_type} (entry {index}) to {}; send them as separate transactions, or as a batch",
                        first.name(),
                        this.name()
                    ),
                    &at,
                ));
            }
            Some(_) => {}
        }
    }
    let Some((owner, _)) = owner else {
        return Err(HttpError::bad_request(
            "required",
            "the transaction has no entries",
            "Bundle.entry",
        ));
    };
    let text = String::from_utf8_lossy(&call.body).into_owned();
    let (bundle, _) = gateway
        .backends
        .transaction(owner, text, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    let mut body = rest::bundle_json(&bundle.json)?;
    rest::absolutize(&mut body, call, &[]);
    Ok(Reply::json(StatusCode::OK, body))
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
