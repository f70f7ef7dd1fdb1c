//! `Patient/$everything`: the Patient, from the identity service, and every
//! resource this service holds about them, paged.

use corridor_fhir::Issue;
use corridor_proto::encounters::v1::EverythingRequest;
use corridor_proto::fhir::v1 as pb;
use corridor_runtime::ApiError;
use corridor_store::Store;
use serde_json::{Value, json};

use crate::identity::IdentityLink;

/// The search parameter every type of this service names its Patient by.
const COMPARTMENT_PARAM: &str = "patient";

pub async fn everything(
    store: &Store,
    identity: &IdentityLink,
    request: &EverythingRequest,
) -> Result<pb::Bundle, ApiError> {
    let id = request.patient_id.trim();
    if id.is_empty() {
        return Err(Issue::new("required", "patient_id is required")
            .at("patient_id")
            .into());
    }
    let patient = identity.read("Patient", id).await?.ok_or_else(|| {
        ApiError::NotFound(
            Issue::new(
                "not-found",
                format!("Patient/{id} is not in the identity registry"),
            )
            .at("patient_id"),
        )
    })?;
    let since = Some(request.since.as_str()).filter(|s| !s.trim().is_empty());
    let token = Some(request.page_token.as_str()).filter(|s| !s.is_empty());
    let slice = store
        .compartment(
            COMPARTMENT_PARAM,
            &format!("Patient/{id}"),
            since,
            i64::from(request.count),
            token,
        )
        .await?;
    let mut entries = Vec::with_capacity(slice.entries.len() + 1);
    if token.is_none() {
        entries.push(entry(
            "Patient",
            id,
            serde_json::from_str(&patient.json).unwrap_or(Value::Null),
        ));
    }
    for stored in &slice.entries {
        entries.push(entry(
            &stored.resource_type,
            &stored.id,
            serde_json::from_str(&stored.json).unwrap_or(Value::Null),
        ));
    }
    let mut query = Vec::new();
    if let Some(since) = since {
        query.push(("_since", since.to_owned()));
    }
    if request.count > 0 {
        query.push(("_count", request.count.to_string()));
    }
    let link = |extra: Option<&str>| {
        let mut ser = form_query(&query);
        if let Some(token) = extra {
            if !ser.is_empty() {
                ser.push('&');
            }
            ser.push_str("_page_token=");
            ser.push_str(token);
        }
        let base = format!("Patient/{id}/$everything");
        if ser.is_empty() {
            base
        } else {
            format!("{base}?{ser}")
        }
    };
    let mut links = vec![json!({ "relation": "self", "url": link(token) })];
    if let Some(next) = &slice.next_token {
        links.push(json!({ "relation": "next", "url": link(Some(next)) }));
    }
    let total = slice.total + 1;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    });
    Ok(pb::Bundle {
        json: bundle.to_string(),
        total,
        next_page_token: slice.next_token.unwrap_or_default(),
    })
}

fn entry(resource_type: &str, id: &str, resource: Value) -> Value {
    json!({
        "fullUrl": format!("{resource_type}/{id}"),
        "resource": resource,
        "search": { "mode": "match" },
    })
}

fn form_query(pairs: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        ser.append_pair(name, value);
    }
    ser.finish()
}
