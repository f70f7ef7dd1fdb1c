//! Small wrappers over the generated client, so tests read as behaviour.

use corridor_proto::fhir::v1::{Resource, SearchParameter};
use corridor_proto::identity::v1 as pb;
use corridor_tests::IdentityApp;
use serde_json::Value;
use tonic::Request;

pub async fn try_create(app: &IdentityApp, json: &str) -> Result<Resource, tonic::Status> {
    let response = app
        .client
        .clone()
        .create(pb::CreateRequest {
            resource: json.to_owned(),
            if_none_exist: String::new(),
        })
        .await?;
    Ok(response.into_inner().resource.expect("created resource"))
}

pub async fn create(app: &IdentityApp, json: &Value) -> Resource {
    try_create(app, &json.to_string())
        .await
        .expect("create succeeds")
}

/// Create with an idempotency key; returns the response message and
/// whether the server said it replayed an earlier result.
pub async fn create_with_key(
    app: &IdentityApp,
    json: &Value,
    key: &str,
) -> Result<(pb::CreateResponse, bool), tonic::Status> {
    let mut request = Request::new(pb::CreateRequest {
        resource: json.to_string(),
        if_none_exist: String::new(),
    });
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().expect("ascii key"));
    let response = app.client.clone().create(request).await?;
    let replayed = response
        .metadata()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Ok((response.into_inner(), replayed))
}

pub async fn create_if_none_exist(
    app: &IdentityApp,
    json: &Value,
    condition: &str,
) -> Result<pb::CreateResponse, tonic::Status> {
    let request = pb::CreateRequest {
        resource: json.to_string(),
        if_none_exist: condition.to_owned(),
    };
    Ok(app.client.clone().create(request).await?.into_inner())
}

pub async fn read(
    app: &IdentityApp,
    resource_type: &str,
    id: &str,
) -> Result<Resource, tonic::Status> {
    let request = pb::ReadRequest {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
    };
    Ok(app
        .client
        .clone()
        .read(request)
        .await?
        .into_inner()
        .resource
        .expect("resource"))
}

pub async fn update(
    app: &IdentityApp,
    resource_type: &str,
    id: &str,
    json: &Value,
    if_match: &str,
) -> Result<Resource, tonic::Status> {
    let request = pb::UpdateRequest {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        resource: json.to_string(),
        if_match: if_match.to_owned(),
    };
    Ok(app
        .client
        .clone()
        .update(request)
        .await?
        .into_inner()
        .resource
        .expect("resource"))
}

/// The history Bundle of one resource (first page).
pub async fn history(app: &IdentityApp, resource_type: &str, id: &str) -> Value {
    let request = pb::HistoryRequest {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        count: 0,
        page_token: String::new(),
    };
    let bundle = app
        .client
        .clone()
        .history(request)
        .await
        .expect("history")
        .into_inner()
        .bundle
        .expect("bundle");
    serde_json::from_str(&bundle.json).expect("bundle is JSON")
}

/// Search and return the searchset Bundle.
pub async fn try_search(
    app: &IdentityApp,
    resource_type: &str,
    params: &[(&str, &str)],
) -> Result<Value, tonic::Status> {
    let request = pb::SearchRequest {
        resource_type: resource_type.to_owned(),
        parameters: params
            .iter()
            .map(|(n, v)| SearchParameter {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        page_token: String::new(),
    };
    let bundle = app
        .client
        .clone()
        .search(request)
        .await?
        .into_inner()
        .bundle
        .expect("bundle");
    Ok(serde_json::from_str(&bundle.json).expect("bundle is JSON"))
}

pub async fn search(app: &IdentityApp, resource_type: &str, params: &[(&str, &str)]) -> Value {
    try_search(app, resource_type, params)
        .await
        .expect("search succeeds")
}

/// The ids in a searchset Bundle, sorted.
pub fn ids(bundle: &Value) -> Vec<String> {
    let mut ids = entry_ids(bundle);
    ids.sort();
    ids
}

/// The ids in a searchset Bundle, in the server's order.
pub fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn json(resource: &Resource) -> Value {
    serde_json::from_str(&resource.json).expect("resource JSON")
}

/// A list of exactly one id, to compare search results with.
pub fn one(id: &str) -> Vec<String> {
    vec![id.to_owned()]
}

pub fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Number of Patients, Organizations and Practitioners stored.
pub async fn count_all(app: &IdentityApp) -> i64 {
    let mut total = 0;
    for t in ["Patient", "Organization", "Practitioner"] {
        total += search(app, t, &[("_count", "0")]).await["total"]
            .as_i64()
            .expect("total");
    }
    total
}
