//! The FHIR interactions every service offers for the types it owns
//! (create, read, vread, update, delete, history, search), written once.
//! Each service maps its own generated request and response messages onto
//! these calls. Every call is refused unless the caller's scopes cover the
//! interaction on the type (see [`crate::auth`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use corridor_fhir::Issue;
use corridor_fhir::{Limits, Validated};
use corridor_proto::fhir::v1 as pb;
use corridor_store::{
    Access, Outcome, Page, ResourceDef, Store, StoreError, Stored, TxRequest, TxResult, WriteResult,
};
use serde_json::{Value, json};

use crate::auth;
use crate::merges::{Following, Merges};
use crate::{ApiError, IDEMPOTENT_REPLAYED};
use corridor_auth::Interaction;

/// A future returned by a [`Resolver`].
pub type Fetch<'a> =
    Pin<Box<dyn Future<Output = Result<Option<pb::Resource>, ApiError>> + Send + 'a>>;

/// Reads resources of types another service owns, for `_include`.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// The current version of `resource_type/id`, or None when that
    /// service does not have it (or it was deleted).
    fn fetch<'a>(&'a self, resource_type: &'a str, id: &'a str) -> Fetch<'a>;
}

/// A future returned by a [`Guard`].
pub type Check<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// Checks that valid resources may be written, beyond what FHIR itself
/// requires (for example that the Patient they name exists in another
/// service), before any of them is stored.
pub trait Guard: Send + Sync + std::fmt::Debug {
    fn check<'a>(&'a self, resources: &'a [&'a Validated]) -> Check<'a>;

    /// Whether resources of this type may be deleted through the generic
    /// Delete; by default they may.
    fn may_delete(&self, resource_type: &str) -> Result<(), ApiError> {
        let _ = resource_type;
        Ok(())
    }

    /// Whether resources of this type may be written (created, updated,
    /// deleted) through the API at all; checked before anything else, even
    /// validation. By default they may.
    fn may_write(&self, resource_type: &str) -> Result<(), ApiError> {
        let _ = resource_type;
        Ok(())
    }
}

/// A future returned by [`Policy::readable`].
pub type Deciding<'a> = Pin<Box<dyn Future<Output = Result<Option<Access>, ApiError>> + Send + 'a>>;

/// Who may see and change which stored resources, beyond what the
/// caller's scopes allow: each service's one place for that decision. A
/// service without a policy lets every authenticated caller with the
/// scope see and change everything.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The resources of `resource_type` the caller may read and search;
    /// None: all of them.
    fn readable<'a>(&'a self, caller: &'a auth::Caller, resource_type: &'a str) -> Deciding<'a>;

    /// Those it may update or delete; None: all it may read.
    fn writable(&self, caller: &auth::Caller, resource_type: &str) -> Option<Access>;

    /// Mark a resource the caller is about to write (for example with who
    /// wrote it), after it is validated and before anything checks it.
    fn stamp(&self, caller: &auth::Caller, resource: &mut Validated) {
        let _ = (caller, resource);
    }
}

/// Why a [`Guard`] refused a write: the position of the resource among
/// those checked, and the error.
#[derive(Debug)]
pub struct Refusal {
    pub index: usize,
    pub error: ApiError,
}

/// A service's resource types, its store and its input limits.
#[derive(Debug, Clone)]
pub struct Resources {
    store: Store,
    limits: Limits,
    accepted: Vec<&'static str>,
    resolver: Option<Arc<dyn Resolver>>,
    guard: Option<Arc<dyn Guard>>,
    policy: Option<Arc<dyn Policy>>,
    audit: Option<Arc<dyn crate::audit::Audit>>,
    following: Option<Following>,
}

/// The witness of a write (see [`Resources::witnessed`]).
struct AuditWitness {
    audit: Arc<dyn crate::audit::Audit>,
    record: crate::audit::Record,
    /// Whether it recorded a write.
    seen: std::sync::atomic::AtomicBool,
}

impl corridor_store::witness::Witness for AuditWitness {
    fn witness<'a>(
        &'a self,
        written: &'a [corridor_store::Stored],
    ) -> corridor_store::witness::Witnessing<'a> {
        Box::pin(async move {
            let mut record = self.record.clone();
            for stored in written {
                record.entity(format!("{}/{}", stored.resource_type, stored.id));
                if !stored.json.is_empty() {
                    record.patient_of(&json_of(&stored.json));
                }
            }
            let recorded = self
                .audit
                .record_within(record)
                .await
                .map_err(|e| StoreError::Unwitnessed(e.to_string()))?;
            self.seen.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(recorded.into_iter().collect())
        })
    }
}

impl Resources {
    pub fn new(store: Store, limits: Limits) -> Self {
        let accepted = store.resource_types().collect();
        Self {
            store,
            limits,
            accepted,
            resolver: None,
            guard: None,
            policy: None,
            audit: None,
            following: None,
        }
    }

    /// Record every access in `audit` (see [`crate::audit`]).
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn crate::audit::Audit>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Record `record`, ended as `result` says, before `result` is
    /// answered: a successful access whose record cannot be written fails.
    pub async fn audited<T>(
        &self,
        record: crate::audit::Record,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let Some(audit) = &self.audit else {
            return result;
        };
        let record = record.ended(&result);
        match (audit.record(record).await, result) {
            (Ok(()), result) => result,
            (Err(err), Ok(_)) => Err(crate::audit::unaudited(&err)),
            (Err(err), Err(original)) => {
                tracing::error!(error = %err, "a refused access could not be audited");
                Err(original)
            }
        }
    }

    /// Run `work`, a write, so that what it stores is audited as `record`
    /// (plus the resources written and their Patients) inside the write's
    /// own transaction: if the record cannot be written, neither is the
    /// change (see [`corridor_store::witness`]). Also answers whether that
    /// happened; when it did not (the write was refused or failed, was a
    /// replay, or stored nothing new), finish with
    /// [`Resources::audited_after`].
    pub async fn witnessed<T, F>(
        &self,
        record: &crate::audit::Record,
        work: F,
    ) -> (Result<T, ApiError>, bool)
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        let Some(audit) = &self.audit else {
            return (work.await, false);
        };
        let witness = Arc::new(AuditWitness {
            audit: Arc::clone(audit),
            record: record.clone(),
            seen: std::sync::atomic::AtomicBool::new(false),
        });
        let result = corridor_store::witness::witnessed(witness.clone(), work).await;
        let seen = witness.seen.load(std::sync::atomic::Ordering::SeqCst);
        (result, seen)
    }

    /// `result` of a write run by [`Resources::witnessed`]: audited as
    /// `record` unless its witness already recorded it and it succeeded. A
    /// write whose commit failed after its witness recorded it is recorded
    /// again, as failed, so the trail may show an attempt twice but never
    /// misses a stored change.
    pub async fn audited_after<T>(
        &self,
        witnessed: bool,
        record: crate::audit::Record,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if witnessed && result.is_ok() {
            return result;
        }
        self.audited(record, result).await
    }

    /// The caller, refused unless its scopes cover `interaction` on
    /// `resource_type`; a refusal is audited as `record` (a denied attempt
    /// of an operation leaves its AuditEvent like any other).
    pub async fn require(
        &self,
        record: &crate::audit::Record,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Arc<auth::Caller>, ApiError> {
        match auth::require(resource_type, interaction) {
            Ok(caller) => Ok(caller),
            Err(err) => self.audited(record.clone(), Err(err)).await,
        }
    }

    /// Decide who may see and change what with `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// What the caller may read of `resource_type` (None: everything). A
    /// node operator's token reads (and changes) everything: the operator
    /// runs the node.
    pub async fn readable(
        &self,
        caller: &auth::Caller,
        resource_type: &str,
    ) -> Result<Option<Access>, ApiError> {
        match &self.policy {
            // The node's operator sees everything (to run the node); a
            // partner only what the policy lets it.
            Some(_) if caller.admin => Ok(None),
            Some(policy) => policy.readable(caller, resource_type).await,
            None => Ok(None),
        }
    }

    /// Refuse, as if it did not exist, a resource the caller may not read.
    async fn check_readable(
        &self,
        caller: &auth::Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        self.check_readable_with(&mut Decisions::default(), caller, resource_type, id)
            .await
    }

    /// [`Resources::check_readable`], asking the policy at most once per
    /// type for all the checks that share `decisions` (one request's).
    async fn check_readable_with(
        &self,
        decisions: &mut Decisions,
        caller: &auth::Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        if let Some(access) = decisions.readable(self, caller, resource_type).await?
            && !self.store.is_visible(resource_type, id, access).await?
        {
            return Err(hidden(resource_type, id));
        }
        Ok(())
    }

    /// Refuse a change to a resource the caller may not change: as if it
    /// did not exist when it may not even read it. A resource that does
    /// not exist is left to the store to refuse.
    async fn check_writable(
        &self,
        decisions: &mut Decisions,
        caller: &auth::Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        let Some(policy) = self.policy.as_ref().filter(|_| !caller.admin) else {
            return Ok(());
        };
        let exists = match self.store.read(resource_type, id).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. } | StoreError::Deleted { .. }) => false,
            Err(err) => return Err(err.into()),
        };
        self.check_readable_with(decisions, caller, resource_type, id)
            .await?;
        if !exists {
            return Ok(());
        }
        if let Some(access) = policy.writable(caller, resource_type)
            && !self.store.is_visible(resource_type, id, &access).await?
        {
            return Err(ApiError::Forbidden(Issue::new(
                "forbidden",
                format!(
                    "{resource_type}/{id} may be changed only by the organization that wrote it; {} did not",
                    caller.organization
                ),
            )));
        }
        Ok(())
    }

    /// Refuse, as if it did not exist, a resource the current caller may
    /// not read: for a service's own operations on one resource.
    pub async fn require_readable(&self, resource_type: &str, id: &str) -> Result<(), ApiError> {
        let caller = auth::current()?;
        self.check_readable(&caller, resource_type, id).await
    }

    /// Mark a resource the current caller writes outside the interactions
    /// here (for example a consult message), as the policy says.
    pub fn stamp_current(&self, resource: &mut Validated) -> Result<(), ApiError> {
        let caller = auth::current()?;
        self.stamp(&caller, resource);
        Ok(())
    }

    /// Refuse at once a write of a type that is never written through the
    /// API (see [`Guard::may_write`]).
    fn may_write(&self, resource_type: &str) -> Result<(), ApiError> {
        match &self.guard {
            Some(guard) => guard.may_write(resource_type),
            None => Ok(()),
        }
    }

    fn stamp(&self, caller: &auth::Caller, resource: &mut Validated) {
        if let Some(policy) = &self.policy {
            policy.stamp(caller, resource);
        }
    }

    /// Make searches by Patient find the records of every Patient merged
    /// with the one named, as `merges` tells (see [`crate::merges`]).
    /// `defs` are the store's types, whose parameters on the element where
    /// a type names its Patient are followed.
    #[must_use]
    pub fn with_merges(mut self, merges: Arc<dyn Merges>, defs: &[ResourceDef]) -> Self {
        self.following = Some(Following::new(merges, defs));
        self
    }

    /// Check every write with `guard` before it is stored.
    #[must_use]
    pub fn with_guard(mut self, guard: Arc<dyn Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Run the guard, if any, over the resources of one request. In a
    /// Bundle, `entries` gives each resource's entry index, and a refusal
    /// names that entry.
    async fn guard(
        &self,
        resources: &[&Validated],
        entries: Option<&[usize]>,
    ) -> Result<(), ApiError> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        guard.check(resources).await.map_err(|refusal| {
            match (refusal.error, entries.and_then(|e| e.get(refusal.index))) {
                (ApiError::Invalid(issue), Some(&entry)) => {
                    ApiError::Invalid(crate::error::in_entry(entry, issue))
                }
                (other, _) => other,
            }
        })
    }

    /// Include resources of other services' types through `resolver`.
    #[must_use]
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The entries of a transaction Bundle, each checked and validated;
    /// `part`: the Bundle is a part of a transaction that spans services,
    /// whose creates carry the ids the gateway chose.
    pub fn parse_transaction(&self, json: &str, part: bool) -> Result<Vec<TxRequest>, ApiError> {
        let bundle = json_of(json);
        for (index, entry) in bundle["entry"].as_array().into_iter().flatten().enumerate() {
            let named = entry["resource"]["resourceType"].as_str().or_else(|| {
                entry["request"]["url"]
                    .as_str()
                    .and_then(|u| u.split(['/', '?']).next())
            });
            if let Some(resource_type) = named {
                self.may_write(resource_type)
                    .map_err(|e| in_entry_error(index, e))?;
            }
        }
        let mut requests = crate::transaction::parse(json, &self.accepted, &self.limits, part)?;
        if self.policy.is_some() {
            let caller = auth::current()?;
            for request in &mut requests {
                match request {
                    TxRequest::Create { resource, .. } | TxRequest::Update { resource, .. } => {
                        self.stamp(&caller, resource);
                    }
                    TxRequest::Delete { .. } => {}
                }
            }
        }
        Ok(requests)
    }

    async fn transaction_unaudited(
        &self,
        requests: &[TxRequest],
        key: Option<&str>,
        part: Option<&str>,
    ) -> Result<(TxResult, pb::Bundle), ApiError> {
        let caller = auth::current()?;
        let mut decisions = Decisions::default();
        let mut written = Vec::new();
        let mut positions = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let (resource_type, interaction) = match request {
                TxRequest::Create { resource, .. } => {
                    (&resource.resource_type, Interaction::Create)
                }
                TxRequest::Update { resource, .. } => {
                    (&resource.resource_type, Interaction::Update)
                }
                TxRequest::Delete { resource_type, .. } => (resource_type, Interaction::Delete),
            };
            caller
                .require(resource_type, interaction)
                .map_err(|e| in_entry_error(index, e))?;
            match request {
                TxRequest::Update { id, .. } | TxRequest::Delete { id, .. } => {
                    self.check_writable(&mut decisions, &caller, resource_type, id)
                        .await
                        .map_err(|e| in_entry_error(index, e))?;
                }
                TxRequest::Create { .. } => {}
            }
            match request {
                TxRequest::Create { resource, .. } | TxRequest::Update { resource, .. } => {
                    written.push(resource);
                    positions.push(index);
                }
                TxRequest::Delete { .. } => {}
            }
        }
        self.guard(&written, Some(&positions)).await?;
        let result = match part {
            Some(part) => {
                // The gateway's key for a part (`<attempt>/<service>`) is
                // bound to the attempt alone: a replay of a committed
                // attempt gets its recorded results whatever ids the
                // gateway chose this time.
                self.store
                    .transaction_part(requests, key, Some(part), part)
                    .await?
            }
            None => self.store.transaction(requests, key).await?,
        };
        let bundle = pb::Bundle {
            json: crate::transaction::response(&result).to_string(),
            total: 0,
            next_page_token: String::new(),
        };
        Ok((result, bundle))
    }

    /// Settle this service's part of transaction `id`, which spans services
    /// (see [`corridor_store::distributed`]). The transaction's id is
    /// unguessable and known only to those who wrote its parts and to the
    /// identity service, so any authenticated caller holding it may settle.
    pub async fn settle_part(&self, id: &str, commit: bool) -> Result<(), ApiError> {
        auth::current()?;
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "invalid",
                    format!("transaction_id must be a transaction's UUID, not '{id}'"),
                )
                .at("transaction_id"),
            ));
        }
        self.store.settle_part(id, commit).await?;
        Ok(())
    }

    /// Apply checked transaction entries atomically; the result and its
    /// `transaction-response` Bundle. Audited: every entry's resource.
    /// `part`: the id of the transaction spanning services that these
    /// entries are this service's part of (see
    /// [`corridor_store::distributed`]).
    pub async fn transaction(
        &self,
        requests: &[TxRequest],
        key: Option<&str>,
        part: Option<&str>,
    ) -> Result<(TxResult, pb::Bundle), ApiError> {
        let mut record = crate::audit::Record::new("E", "transaction");
        let (result, witnessed) = self
            .witnessed(&record, self.transaction_unaudited(requests, key, part))
            .await;
        match &result {
            Ok((done, _)) => {
                for entry in &done.entries {
                    record.entity(format!(
                        "{}/{}",
                        entry.stored.resource_type, entry.stored.id
                    ));
                    record.patient_of(&json_of(&entry.stored.json));
                }
            }
            Err(_) => {
                for request in requests {
                    if let TxRequest::Create { resource, .. } | TxRequest::Update { resource, .. } =
                        request
                    {
                        record.patient_of(&Value::Object(resource.object.clone()));
                    }
                }
            }
        }
        self.audited_after(witnessed, record, result).await
    }

    pub async fn create(
        &self,
        json: &str,
        if_none_exist: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        let mut record = crate::audit::Record::new("C", "create");
        let (result, witnessed) = self
            .witnessed(&record, self.create_unaudited(json, if_none_exist, key))
            .await;
        match &result {
            Ok(done) => {
                record.entity(format!("{}/{}", done.stored.resource_type, done.stored.id));
                record.patient_of(&json_of(&done.stored.json));
            }
            Err(_) => record.patient_of(&json_of(json)),
        }
        self.audited_after(witnessed, record, result).await
    }

    pub async fn read(&self, resource_type: &str, id: &str) -> Result<pb::Resource, ApiError> {
        let result = self.read_unaudited(resource_type, id).await;
        let mut record = crate::audit::Record::new("R", "read");
        record.entity(format!("{resource_type}/{id}"));
        if let Ok(resource) = &result {
            record.patient_of(&json_of(&resource.json));
        }
        self.audited(record, result).await
    }

    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<pb::Resource, ApiError> {
        let result = self.vread_unaudited(resource_type, id, version).await;
        let mut record = crate::audit::Record::new("R", "vread");
        record.entity(format!("{resource_type}/{id}"));
        if let Ok(resource) = &result {
            record.patient_of(&json_of(&resource.json));
        }
        self.audited(record, result).await
    }

    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        json: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        let mut record = crate::audit::Record::new("U", "update");
        let (result, witnessed) = self
            .witnessed(
                &record,
                self.update_unaudited(resource_type, id, json, if_match, key),
            )
            .await;
        record.entity(format!("{resource_type}/{id}"));
        record.patient_of(&json_of(json));
        self.audited_after(witnessed, record, result).await
    }

    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        let mut record = crate::audit::Record::new("D", "delete");
        let (result, witnessed) = self
            .witnessed(
                &record,
                self.delete_unaudited(resource_type, id, if_match, key),
            )
            .await;
        record.entity(format!("{resource_type}/{id}"));
        self.audited_after(witnessed, record, result).await
    }

    pub async fn history(
        &self,
        resource_type: &str,
        id: &str,
        count: i32,
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let result = self
            .history_unaudited(resource_type, id, count, page_token)
            .await;
        let mut record = crate::audit::Record::new("R", "history-instance");
        record.entity(format!("{resource_type}/{id}"));
        if let Ok(bundle) = &result {
            record_patients(&mut record, &bundle.json);
        }
        self.audited(record, result).await
    }

    pub async fn search(
        &self,
        resource_type: &str,
        params: &[pb::SearchParameter],
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let result = self
            .search_unaudited(resource_type, params, page_token)
            .await;
        let mut record = crate::audit::Record::new("E", "search-type");
        let query: Vec<String> = params
            .iter()
            .map(|p| format!("{}={}", p.name, p.value))
            .collect();
        record.query = Some(format!("{resource_type}?{}", query.join("&")));
        for p in params {
            if p.value.starts_with("Patient/") {
                for value in p.value.split(',') {
                    record.entity(value.to_owned());
                }
            }
        }
        if let Ok(bundle) = &result {
            record_patients(&mut record, &bundle.json);
        }
        self.audited(record, result).await
    }

    /// Validate FHIR JSON as one of this service's types.
    pub fn validate(&self, json: &str) -> Result<Validated, ApiError> {
        Ok(corridor_fhir::validate(json, &self.accepted, &self.limits)?)
    }

    async fn create_unaudited(
        &self,
        json: &str,
        if_none_exist: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        if let Some(resource_type) = json_of(json)["resourceType"].as_str() {
            self.may_write(resource_type)?;
        }
        let mut resource = self.validate(json)?;
        let caller = auth::require(&resource.resource_type, Interaction::Create)?;
        self.stamp(&caller, &mut resource);
        self.guard(&[&resource], None).await?;
        let condition = Some(if_none_exist).filter(|c| !c.trim().is_empty());
        let result = self.store.create(&resource, condition, key).await?;
        if result.outcome != Outcome::Created {
            // A conditional create that found a match answers it only to a
            // caller who may see it.
            self.check_readable(&caller, &result.stored.resource_type, &result.stored.id)
                .await?;
        }
        Ok(result)
    }

    async fn read_unaudited(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<pb::Resource, ApiError> {
        let caller = auth::require(resource_type, Interaction::Read)?;
        self.check_readable_or_gone(&caller, resource_type, id)
            .await?;
        Ok(to_proto(&self.store.read(resource_type, id).await?))
    }

    async fn vread_unaudited(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<pb::Resource, ApiError> {
        let caller = auth::require(resource_type, Interaction::Read)?;
        self.check_readable_or_gone(&caller, resource_type, id)
            .await?;
        Ok(to_proto(
            &self.store.vread(resource_type, id, version).await?,
        ))
    }

    async fn update_unaudited(
        &self,
        resource_type: &str,
        id: &str,
        json: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        self.may_write(resource_type)?;
        let mut resource = self.validate(json)?;
        let caller = auth::require(resource_type, Interaction::Update)?;
        caller.require(&resource.resource_type, Interaction::Update)?;
        self.check_writable(&mut Decisions::default(), &caller, resource_type, id)
            .await?;
        self.stamp(&caller, &mut resource);
        self.guard(&[&resource], None).await?;
        Ok(self
            .store
            .update(resource_type, id, &resource, non_empty(if_match), key)
            .await?)
    }

    async fn delete_unaudited(
        &self,
        resource_type: &str,
        id: &str,
        if_match: &str,
        key: Option<&str>,
    ) -> Result<WriteResult, ApiError> {
        self.may_write(resource_type)?;
        let caller = auth::require(resource_type, Interaction::Delete)?;
        self.check_writable(&mut Decisions::default(), &caller, resource_type, id)
            .await?;
        if let Some(guard) = &self.guard {
            guard.may_delete(resource_type)?;
        }
        Ok(self
            .store
            .delete(resource_type, id, non_empty(if_match), key)
            .await?)
    }

    async fn history_unaudited(
        &self,
        resource_type: &str,
        id: &str,
        count: i32,
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let caller = auth::require(resource_type, Interaction::Read)?;
        self.check_readable_or_gone(&caller, resource_type, id)
            .await?;
        let page = self
            .store
            .history(resource_type, id, i64::from(count), non_empty(page_token))
            .await?;
        Ok(to_bundle(page))
    }

    async fn search_unaudited(
        &self,
        resource_type: &str,
        params: &[pb::SearchParameter],
        page_token: &str,
    ) -> Result<pb::Bundle, ApiError> {
        let caller = auth::require(resource_type, Interaction::Search)?;
        let mut params: Vec<(String, String)> = params
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        if let Some(following) = &self.following {
            params = following.expand(resource_type, params).await?;
        }
        let mut decisions = Decisions::default();
        let access = decisions
            .readable(self, &caller, resource_type)
            .await?
            .cloned();
        let mut page = self
            .store
            .search_visible(
                resource_type,
                &params,
                non_empty(page_token),
                access.as_ref(),
            )
            .await?;
        self.include(&mut page, &caller, &mut decisions).await?;
        Ok(to_bundle(page))
    }

    /// Add the resources `_include` asked for to the page, with search mode
    /// `include`: this store's own types from the store, others through the
    /// resolver. A reference to nothing (or to a deleted resource) adds
    /// nothing, as FHIR allows, and neither does one the caller may not
    /// read.
    async fn include(
        &self,
        page: &mut Page,
        caller: &auth::Caller,
        decisions: &mut Decisions,
    ) -> Result<(), ApiError> {
        let mut included = Vec::new();
        for reference in std::mem::take(&mut page.includes) {
            let Some((resource_type, id)) = reference.split_once('/') else {
                continue;
            };
            if caller.require(resource_type, Interaction::Read).is_err() {
                continue;
            }
            let found = if self.accepted.contains(&resource_type) {
                if self
                    .check_readable_with(decisions, caller, resource_type, id)
                    .await
                    .is_err()
                {
                    continue;
                }
                match self.store.read(resource_type, id).await {
                    Ok(stored) => Some(to_proto(&stored)),
                    Err(StoreError::NotFound { .. } | StoreError::Deleted { .. }) => None,
                    Err(err) => return Err(err.into()),
                }
            } else if let Some(resolver) = &self.resolver {
                match resolver.fetch(resource_type, id).await {
                    Ok(found) => found,
                    Err(ApiError::Forbidden(_)) => None,
                    Err(err) => return Err(err),
                }
            } else {
                None
            };
            if let Some(resource) = found
                && let Ok(content) = serde_json::from_str::<Value>(&resource.json)
            {
                included.push(json!({
                    "fullUrl": format!("{}/{}", resource.resource_type, resource.id),
                    "resource": content,
                    "search": { "mode": "include" },
                }));
            }
        }
        if !included.is_empty()
            && let Some(entries) = page.bundle.get_mut("entry").and_then(Value::as_array_mut)
        {
            entries.extend(included);
        }
        Ok(())
    }
}

impl Resources {
    /// [`Resources::check_readable`], except that a deleted resource the
    /// caller could not tell apart from a missing one is left to the store
    /// (which answers that it was deleted): the index of a deleted
    /// resource is gone, so its visibility cannot be decided from it.
    async fn check_readable_or_gone(
        &self,
        caller: &auth::Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        match self.check_readable(caller, resource_type, id).await {
            Err(hidden_err) => match self.store.read(resource_type, id).await {
                Err(StoreError::Deleted { .. }) => Ok(()),
                _ => Err(hidden_err),
            },
            ok => ok,
        }
    }
}

/// What the policy said a caller may read, by type, for the checks of one
/// request: each type is decided once, not once per resource.
#[derive(Debug, Default)]
struct Decisions(std::collections::HashMap<String, Option<Access>>);

impl Decisions {
    async fn readable(
        &mut self,
        resources: &Resources,
        caller: &auth::Caller,
        resource_type: &str,
    ) -> Result<Option<&Access>, ApiError> {
        if !self.0.contains_key(resource_type) {
            let access = resources.readable(caller, resource_type).await?;
            self.0.insert(resource_type.to_owned(), access);
        }
        Ok(self.0.get(resource_type).and_then(Option::as_ref))
    }
}

/// The answer for a resource the caller may not see: the same as for one
/// that does not exist, so that nothing says it does.
fn hidden(resource_type: &str, id: &str) -> ApiError {
    StoreError::NotFound {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
    }
    .into()
}

/// An error about entry `index` of a Bundle, said so.
fn in_entry_error(index: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::Forbidden(issue) => ApiError::Forbidden(crate::error::in_entry(index, issue)),
        ApiError::NotFound(issue) => ApiError::NotFound(crate::error::in_entry(index, issue)),
        other => other,
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Add the Patients of every resource of a Bundle (FHIR JSON) to `record`.
fn record_patients(record: &mut crate::audit::Record, bundle: &str) {
    let bundle = json_of(bundle);
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        record.patient_of(&entry["resource"]);
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
    respond_replayed(message, result.replayed)
}

/// A response carrying `idempotent-replayed: true` when `replayed`.
pub fn respond_replayed<T>(message: T, replayed: bool) -> tonic::Response<T> {
    let mut response = tonic::Response::new(message);
    if replayed {
        response.metadata_mut().insert(
            IDEMPOTENT_REPLAYED,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    response
}
