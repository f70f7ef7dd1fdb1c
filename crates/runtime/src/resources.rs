//! The FHIR interactions every service offers for the types it owns
//! (create, read, vread, update, delete, history, search), written once.
//! Each service maps its own generated request and response messages onto
//! these calls.

use corridor_fhir::{Limits, Validated};
use corridor_proto::fhir::v1 as pb;
use corridor_store::{Outcome, Page, Store, Stored, WriteResult};

use crate::{ApiError, IDEMPOTENT_REPLAYED};

/// A service's resource types, its store and its input limits.
#[derive(Debug, Clone)]
pub struct Resources {
    store: Store,
    limits: Limits,
    accepted: Vec<&'static str>,
}

impl Resources {
    pub fn new(store: Store, limits: Limits) -> Self {
        let accepted = store.resource_types().collect();
        Self {
            store,
            limits,
            accepted,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Validate FHIR JSON as one of this service's types.
    pub fn validate(&self, json: &str) -> Result<Validated, ApiError> {
        Ok(corridor_fhir::validate(json, &self.accepted, &self.limits)?)
    }

    pub async fn create(
        &self,
        json: &str,
        if_none_exist: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        let resource = self.validate(json)?;
        let condition = Some(if_none_exist).filter(|c| !c.trim().is_empty());
        Ok(self.store.create(&resource, condition, key).await?)
    }

    pub async fn read(&self, resource_type: &str, id: &str) -> Result<pb::Resource, ApiError> {
        Ok(to_proto(&self.store.read(resource_type, id).await?))
    }

    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<pb::Resource, ApiError> {
        Ok(to_proto(
            &self.store.vread(resource_type, id, version).await?,
        ))
    }

    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        json: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        let resource = self.validate(json)?;
        Ok(self
            .store
            .update(resource_type, id, &resource, non_empty(if_match), key)
            .await?)
    }

    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        Ok(self
            .store
            .delete(resource_type, id, non_empty(if_match), key)
            .await?)
    }

    pub async fn history(
        &self,
        resource_type: &str,
        id: &str,
        count: i32,
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let page = self
            .store
            .history(resource_type, id, i64::from(count), non_empty(page_token))
            .await?;
        Ok(to_bundle(page))
    }

    pub async fn search(
        &self,
        resource_type: &str,
        params: &[pb::SearchParameter],
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        let page = self
            .store
            .search(resource_type, &params, non_empty(page_token))
            .await?;
        Ok(to_bundle(page))
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.trim().is_empty())
}

pub fn to_proto(stored: &Stored) -> pb::Resource {
    pb::Resource {
        resource_type: stored.resource_type.clone(),
        id: stored.id.clone(),
        version_id: stored.version.to_string(),
        last_updated: stored.last_updated.clone(),
        json: stored.json.clone(),
        deleted: stored.deleted,
    }
}

fn to_bundle(page: Page) -> pb::Bundle {
    pb::Bundle {
        json: page.bundle.to_string(),
        total: page.total,
        next_page_token: page.next_token.unwrap_or_default(),
    }
}

/// True when a write made something new (a create that did not match).
pub fn created(result: &WriteResult) -> bool {
    result.outcome == Outcome::Created
}

/// A response that says, in metadata, whether an idempotency key replayed
/// an earlier result.
pub fn respond<T>(message: T, result: &WriteResult) -> tonic::Response<T> {
    let mut response = tonic::Response::new(message);
    if result.replayed {
        response.metadata_mut().insert(
            IDEMPOTENT_REPLAYED,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    response
}
