//! The gRPC services behind the gateway: which one owns each resource
//! type, and the FHIR interactions on any of them.
//!
//! The three services declare the same interaction messages in their own
//! packages (buf wants one request and response per RPC), so each call is
//! written once in [`on_owner!`] and expanded for the service that owns
//! the type.

use std::time::Duration;

use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::fhir::v1 as fhir;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A service that owns resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Identity,
    Encounters,
    Referrals,
}

impl Owner {
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Encounters => "encounters",
            Self::Referrals => "referrals",
        }
    }

    /// Each service's resource types and their search parameters, as the
    /// service itself declares them.
    pub fn defs(self) -> &'static [corridor_store::ResourceDef] {
        match self {
            Self::Identity => corridor_identity::RESOURCES,
            Self::Encounters => corridor_encounters::RESOURCES,
            Self::Referrals => corridor_referrals::RESOURCES,
        }
    }

    pub const ALL: [Owner; 3] = [Owner::Identity, Owner::Encounters, Owner::Referrals];

    /// The service that owns `resource_type`, and its definition.
    pub fn of(resource_type: &str) -> Option<(Owner, &'static corridor_store::ResourceDef)> {
        Self::ALL.into_iter().find_map(|owner| {
            owner
                .defs()
                .iter()
                .find(|d| d.resource_type == resource_type)
                .map(|d| (owner, d))
        })
    }
}

/// What travels with every call: the idempotency key, the caller's access
/// token (the services verify it; the gateway holds no keys) and the trace
/// context.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub idempotency_key: Option<String>,
    /// The `Authorization` header as sent: `Bearer <token>`.
    pub authorization: Option<String>,
    /// `X-Break-Glass`: the stated reason of an emergency read.
    pub break_glass: Option<String>,
}

/// A resource as a service answered it, and whether the write created it
/// and whether an idempotency key replayed it.
#[derive(Debug, Clone)]
pub struct Written {
    pub resource: fhir::Resource,
    pub created: bool,
    pub replayed: bool,
}

/// Clients of the three services.
#[derive(Debug, Clone)]
pub struct Backends {
    identity: IdentityServiceClient<Channel>,
    encounters: EncountersServiceClient<Channel>,
    referrals: ReferralsServiceClient<Channel>,
    deadline: Duration,
}

/// Expand `$body` with `$client` bound to the client of `$owner` and `$pb`
/// to its message module.
macro_rules! on_owner {
    ($self:ident, $owner:expr, |$client:ident, $pb:ident| $body:expr) => {
        match $owner {
            Owner::Identity => {
                let mut $client = $self.identity.clone();
                use corridor_proto::identity::v1 as $pb;
                $body
            }
            Owner::Encounters => {
                let mut $client = $self.encounters.clone();
                use corridor_proto::encounters::v1 as $pb;
                $body
            }
            Owner::Referrals => {
                let mut $client = $self.referrals.clone();
                use corridor_proto::referrals::v1 as $pb;
                $body
            }
        }
    };
}

/// The largest message a service answers (a page of resources).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

impl Backends {
    /// Lazily connected clients: the gateway starts while a service is
    /// down, and a request to it then gets 503.
    pub fn new(
        identity_url: &str,
        encounters_url: &str,
        referrals_url: &str,
        deadline: Duration,
        tls: Option<&corridor_runtime::tls::Tls>,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = |url: &str| corridor_runtime::link::channel(url, deadline, tls);
        Ok(Self {
            identity: IdentityServiceClient::new(channel(identity_url)?)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            encounters: EncountersServiceClient::new(channel(encounters_url)?)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            referrals: ReferralsServiceClient::new(channel(referrals_url)?)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            deadline,
        })
    }

    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        self.identity.clone()
    }

    pub fn encounters(&self) -> EncountersServiceClient<Channel> {
        self.encounters.clone()
    }

    pub fn referrals(&self) -> ReferralsServiceClient<Channel> {
        self.referrals.clone()
    }

    /// `message` as a request with the context's metadata, the current
    /// trace context and the deadline.
    pub fn request<T>(&self, message: T, cx: &CallContext) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.deadline);
        let metadata = request.metadata_mut();
        if let Some(key) = cx
            .idempotency_key
            .as_deref()
            .and_then(|k| MetadataValue::try_from(k).ok())
        {
            metadata.insert(corridor_runtime::IDEMPOTENCY_KEY, key);
        }
        if let Some(token) = cx
            .authorization
            .as_deref()
            .and_then(|o| MetadataValue::try_from(o).ok())
        {
            metadata.insert(corridor_runtime::auth::AUTHORIZATION, token);
        }
        if let Some(reason) = cx
            .break_glass
            .as_deref()
            .and_then(|o| MetadataValue::try_from(o).ok())
        {
            metadata.insert(corridor_runtime::auth::BREAK_GLASS, reason);
        }
        corridor_runtime::telemetry::inject_current(metadata);
        request
    }

    pub async fn create(
        &self,
        owner: Owner,
        resource: String,
        if_none_exist: String,
        cx: &CallContext,
    ) -> Result<Written, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let response = client
                .create(self.request(
                    pb::CreateRequest {
                        resource,
                        if_none_exist,
                    },
                    cx,
                ))
                .await?;
            let replayed = replayed(response.metadata());
            let message = response.into_inner();
            Ok(Written {
                resource: message.resource.unwrap_or_default(),
                created: message.created,
                replayed,
            })
        })
    }

    pub async fn read(
        &self,
        owner: Owner,
        resource_type: &str,
        id: &str,
        cx: &CallContext,
    ) -> Result<fhir::Resource, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::ReadRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
            };
            Ok(client
                .read(self.request(message, cx))
                .await?
                .into_inner()
                .resource
                .unwrap_or_default())
        })
    }

    pub async fn vread(
        &self,
        owner: Owner,
        resource_type: &str,
        id: &str,
        version_id: &str,
        cx: &CallContext,
    ) -> Result<fhir::Resource, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::VreadRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version_id: version_id.to_owned(),
            };
            Ok(client
                .vread(self.request(message, cx))
                .await?
                .into_inner()
                .resource
                .unwrap_or_default())
        })
    }

    pub async fn update(
        &self,
        owner: Owner,
        resource_type: &str,
        id: &str,
        resource: String,
        if_match: String,
        cx: &CallContext,
    ) -> Result<Written, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::UpdateRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                resource,
                if_match,
            };
            let response = client.update(self.request(message, cx)).await?;
            let replayed = replayed(response.metadata());
            let resource = response.into_inner().resource.unwrap_or_default();
            Ok(Written {
                created: resource.version_id == "1",
                resource,
                replayed,
            })
        })
    }

    pub async fn delete(
        &self,
        owner: Owner,
        resource_type: &str,
        id: &str,
        if_match: String,
        cx: &CallContext,
    ) -> Result<fhir::Resource, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::DeleteRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                if_match,
            };
            Ok(client
                .delete(self.request(message, cx))
                .await?
                .into_inner()
                .resource
                .unwrap_or_default())
        })
    }

    pub async fn history(
        &self,
        owner: Owner,
        resource_type: &str,
        id: &str,
        count: i32,
        page_token: String,
        cx: &CallContext,
    ) -> Result<fhir::Bundle, tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::HistoryRequest {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                count,
                page_token,
            };
            Ok(client
                .history(self.request(message, cx))
                .await?
                .into_inner()
                .bundle
                .unwrap_or_default())
        })
    }

    pub async fn search(
        &self,
        owner: Owner,
        resource_type: &str,
        params: &[(String, String)],
        cx: &CallContext,
    ) -> Result<fhir::Bundle, tonic::Status> {
        let parameters: Vec<fhir::SearchParameter> = params
            .iter()
            .map(|(name, value)| fhir::SearchParameter {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        on_owner!(self, owner, |client, pb| {
            let message = pb::SearchRequest {
                resource_type: resource_type.to_owned(),
                parameters,
                page_token: String::new(),
            };
            Ok(client
                .search(self.request(message, cx))
                .await?
                .into_inner()
                .bundle
                .unwrap_or_default())
        })
    }

    /// A transaction Bundle, applied atomically by the service that owns
    /// its entries; the answer and whether an idempotency key replayed it.
    /// A transaction Bundle may hold thousands of entries: it may take up to
    /// `deadline` (the gateway's request timeout), not the deadline of a
    /// single call.
    pub async fn transaction(
        &self,
        owner: Owner,
        bundle: String,
        cx: &CallContext,
        deadline: Duration,
    ) -> Result<(fhir::Bundle, bool), tonic::Status> {
        self.transaction_part(owner, bundle, String::new(), cx, deadline)
            .await
    }

    /// [`Backends::transaction`] of `owner`'s part of transaction
    /// `distributed_transaction`, which spans services (empty: a whole
    /// transaction).
    pub async fn transaction_part(
        &self,
        owner: Owner,
        bundle: String,
        distributed_transaction: String,
        cx: &CallContext,
        deadline: Duration,
    ) -> Result<(fhir::Bundle, bool), tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::TransactionRequest {
                bundle,
                distributed_transaction,
            };
            let mut request = self.request(message, cx);
            request.set_timeout(deadline.max(self.deadline));
            let response = client.transaction(request).await?;
            let replayed = replayed(response.metadata());
            Ok((response.into_inner().bundle.unwrap_or_default(), replayed))
        })
    }

    /// Settle `owner`'s part of a decided transaction that spans services.
    pub async fn settle(
        &self,
        owner: Owner,
        transaction_id: &str,
        commit: bool,
        cx: &CallContext,
    ) -> Result<(), tonic::Status> {
        on_owner!(self, owner, |client, pb| {
            let message = pb::SettleTransactionRequest {
                transaction_id: transaction_id.to_owned(),
                commit,
            };
            client.settle_transaction(self.request(message, cx)).await?;
            Ok(())
        })
    }

    /// Open an attempt of a transaction with parts at `participants`, at
    /// the identity service (the coordinator), under the context's
    /// idempotency key.
    pub async fn begin_transaction(
        &self,
        participants: &[Owner],
        request_hash: String,
        cx: &CallContext,
    ) -> Result<corridor_proto::identity::v1::BeginTransactionResponse, tonic::Status> {
        let message = corridor_proto::identity::v1::BeginTransactionRequest {
            participants: participants.iter().map(|p| p.name().to_owned()).collect(),
            request_hash,
        };
        Ok(self
            .identity
            .clone()
            .begin_transaction(self.request(message, cx))
            .await?
            .into_inner())
    }

    /// Commit or abort an open attempt; the decision that stands.
    pub async fn decide_transaction(
        &self,
        transaction_id: &str,
        commit: bool,
        cx: &CallContext,
    ) -> Result<corridor_proto::identity::v1::TransactionState, tonic::Status> {
        let message = corridor_proto::identity::v1::DecideTransactionRequest {
            transaction_id: transaction_id.to_owned(),
            commit,
        };
        let answer = self
            .identity
            .clone()
            .decide_transaction(self.request(message, cx))
            .await?
            .into_inner();
        Ok(answer.state())
    }
}

fn replayed(metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get(corridor_runtime::IDEMPOTENT_REPLAYED)
        .and_then(|v| v.to_str().ok())
        == Some("true")
}
