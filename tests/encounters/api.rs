//! Small wrappers over the generated client, so tests read as behaviour.

use corridor_proto::encounters::v1 as pb;
use corridor_proto::fhir::v1::{Resource, SearchParameter};
use corridor_tests::Node;
use serde_json::Value;

pub async fn try_create(node: &Node, json: &Value) -> Result<Resource, tonic::Status> {
    let response = node
        .encounters
        .client
        .clone()
        .create(pb::CreateRequest {
            resource: json.to_string(),
            if_none_exist: String::new(),
        })
        .await?;
    Ok(response.into_inner().resource.expect("created resource"))
}

pub async fn create(node: &Node, json: &Value) -> Resource {
    try_create(node, json).await.expect("create succeeds")
}

pub async fn read(node: &Node, resource_type: &str, id: &str) -> Result<Resource, tonic::Status> {
    Ok(node
        .encounters
        .client
        .clone()
        .read(pb::ReadRequest {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
        })
        .await?
        .into_inner()
        .resource
        .expect("resource"))
}

pub async fn try_update(
    node: &Node,
    resource_type: &str,
    id: &str,
    json: &Value,
) -> Result<Resource, tonic::Status> {
    Ok(node
        .encounters
        .client
        .clone()
        .update(pb::UpdateRequest {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            resource: json.to_string(),
            if_match: String::new(),
        })
        .await?
        .into_inner()
        .resource
        .expect("resource"))
}

/// Search; the searchset Bundle as JSON.
pub async fn try_search(
    node: &Node,
    resource_type: &str,
    params: &[(&str, &str)],
) -> Result<Value, tonic::Status> {
    let request = pb::SearchRequest {
        resource_type: resource_type.to_owned(),
        parameters: params
            .iter()
            .map(|(name, value)| SearchParameter {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            })
            .collect(),
        page_token: String::new(),
    };
    let bundle = node
        .encounters
        .client
        .clone()
        .search(request)
        .await?
        .into_inner()
        .bundle
        .expect("bundle");
    Ok(serde_json::from_str(&bundle.json).expect("bundle JSON"))
}

pub async fn search(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Value {
    try_search(node, resource_type, params)
        .await
        .expect("search succeeds")
}

/// `Type/id` of every entry of a Bundle with search mode `mode`.
pub fn entries(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or_default(),
                e["resource"]["id"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

pub async fn transaction(node: &Node, bundle: &Value) -> Result<Value, tonic::Status> {
    let response = node
        .encounters
        .client
        .clone()
        .transaction(pb::TransactionRequest {
            bundle: bundle.to_string(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(serde_json::from_str(&response.bundle.expect("bundle").json).expect("bundle JSON"))
}

/// How many resources of `resource_type` the encounters service holds,
/// counted in its own database: no call, so no access decision or audit
/// record, and it works while identity is down.
pub async fn count(node: &Node, resource_type: &str) -> i64 {
    let config = corridor_tests::service_config(&node.encounters_db, corridor_encounters::SCHEMA);
    let store = corridor_store::Store::connect(&config.store, corridor_encounters::RESOURCES)
        .await
        .expect("the encounters database opens");
    let total = store
        .search(
            resource_type,
            &[("_count".to_owned(), "0".to_owned())],
            None,
        )
        .await
        .expect("count")
        .total;
    store.close().await;
    total
}

/// The total number of resources of every type the service owns.
pub async fn count_all(node: &Node) -> i64 {
    let mut total = 0;
    for def in corridor_encounters::RESOURCES {
        total += count(node, def.resource_type).await;
    }
    total
}
