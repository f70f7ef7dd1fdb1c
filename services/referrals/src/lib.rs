//! The referrals service: closed-loop referrals between migrant-support
//! organizations and health systems, whose status is never lost.
//!
//! A referral is a ServiceRequest (what is asked) and a Task (intent order,
//! code fulfill, focus the ServiceRequest) whose requester is the referring
//! organization and owner the performing one, made together by
//! `CreateReferral`. The Task's status moves only through `Transition`,
//! which enforces the state machine of [`workflow`], who may make each
//! move, reasons, outcome references and the caller's last-seen version.
//!
//! Every ServiceRequest and Task version is appended, in its own
//! transaction, to the service's event stream (an outbox with gap-free,
//! commit-ordered sequence numbers). `Watch` follows it for the referrals
//! the caller's organization takes part in, resumable from any sequence,
//! across replicas and restarts.
//!
//! Searches by Patient and a patient's referrals follow the Patient's
//! merges, asked of identity ([`corridor_runtime::merges`]).

use std::net::SocketAddr;
use std::time::Duration;

use corridor_auth::Interaction;
use corridor_fhir::Issue;
use corridor_proto::federation::v1::federation_operator_service_server::FederationOperatorServiceServer;
use corridor_proto::federation::v1::federation_service_server::FederationServiceServer;
use corridor_proto::referrals::v1 as pb;
use corridor_proto::referrals::v1::referrals_service_server::{
    ReferralsService, ReferralsServiceServer,
};
use corridor_runtime::auth::require;
use corridor_runtime::follow;
use corridor_runtime::identity::IdentityLink;
use corridor_runtime::resources::{Resources, respond, respond_replayed, to_proto};
use corridor_runtime::server::{self, ServeError};
use corridor_runtime::{ApiError, ServiceConfig, Shutdown, caller_organization, idempotency_key};
use corridor_store::{Store, StoreError};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

mod events;
pub mod federation;
pub mod links;
mod params;
mod referral;
pub mod workflow;

pub use params::{EVENTS, RESOURCES};

use links::{EncountersLink, ReferralsGuard};

/// Full gRPC name of the service, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "corridor.referrals.v1.ReferralsService";
/// PostgreSQL schema of the service's tables.
pub const SCHEMA: &str = "referrals";

/// The referrals service's configuration.
#[derive(Debug, Clone)]
pub struct ReferralsConfig {
    pub service: ServiceConfig,
    /// The identity service, e.g. `http://127.0.0.1:50051`.
    pub identity_url: String,
    /// The encounters service, e.g. `http://127.0.0.1:50052`.
    pub encounters_url: String,
    /// How long a call to another service may take.
    pub deadline: Duration,
    /// Buffer and stall limit of each Watch stream.
    pub watch: follow::Limits,
    /// Cross-border referrals with peer nodes, when this node federates
    /// (it then needs the service's mutual TLS).
    pub federation: Option<federation::FederationConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("referrals store: {0}")]
    Store(#[from] StoreError),
    #[error("service URL: {0}")]
    Url(#[from] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("federation: {0}")]
    Federation(String),
}

/// The peer-facing port of a federating node.
#[derive(Debug)]
struct FederationPort {
    federation: std::sync::Arc<federation::Federation>,
    listener: TcpListener,
    local_addr: SocketAddr,
    auth: corridor_runtime::auth::Auth,
}

/// The referrals service, built and bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    resources: Resources,
    identity: IdentityLink,
    encounters: EncountersLink,
    auth: corridor_runtime::auth::Auth,
    config: ReferralsConfig,
    federation: Option<FederationPort>,
}

impl Application {
    /// Connect the store and run its migrations, prepare the (lazy) clients
    /// of identity and encounters, then bind the port.
    pub async fn build(config: ReferralsConfig) -> Result<Self, BuildError> {
        let identity = IdentityLink::new(
            &config.identity_url,
            config.deadline,
            params::PATIENT_ELEMENT,
            config.service.tls.as_ref(),
        )?;
        let encounters = EncountersLink::new(
            &config.encounters_url,
            config.deadline,
            config.service.tls.as_ref(),
        )?;
        let store = Store::connect(&config.service.store, RESOURCES).await?;
        let listener = server::bind(config.service.listen).await?;
        let local_addr = server::local_addr(&listener)?;
        let auth = corridor_runtime::auth::Auth {
            // Tells only that something changed; over mutual TLS, services
            // only.
            public: &["/corridor.referrals.v1.ReferralsService/WatchParticipation"],
            ..corridor_runtime::auth::Auth::from_identity(identity.clone())
        }
        .with_tls(config.service.tls.clone())
        .with_refusals(std::sync::Arc::new(
            corridor_runtime::identity::IdentityRefusals {
                link: identity.clone(),
                source: "referrals",
            },
        ));
        let resources = Resources::new(store, config.service.limits)
            .with_guard(std::sync::Arc::new(ReferralsGuard {
                identity: identity.clone(),
            }))
            .with_policy(std::sync::Arc::new(links::ReferralsPolicy))
            .with_audit(std::sync::Arc::new(
                corridor_runtime::identity::IdentityAudit {
                    link: identity.clone(),
                    source: "referrals",
                },
            ))
            .with_resolver(std::sync::Arc::new(identity.clone()))
            .with_merges(std::sync::Arc::new(identity.clone()), RESOURCES);
        let federation = match &config.federation {
            None => None,
            Some(settings) => {
                Some(federation_port(settings, &config, &resources, &identity, &encounters).await?)
            }
        };
        Ok(Self {
            listener,
            local_addr,
            resources,
            identity,
            encounters,
            auth,
            config,
            federation,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where peers reach this node's federation API, when it federates.
    pub fn federation_addr(&self) -> Option<SocketAddr> {
        self.federation.as_ref().map(|f| f.local_addr)
    }

    /// Serve until `shutdown`, then drain within the grace period and close
    /// the store.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let store = self.resources.store().clone();
        let federation = self
            .federation
            .as_ref()
            .map(|f| std::sync::Arc::clone(&f.federation));
        let handler = Referrals {
            resources: self.resources,
            identity: self.identity,
            encounters: self.encounters,
            watch: self.config.watch,
            shutdown: shutdown.clone(),
            tls: self.config.service.tls.clone(),
            federation: federation.clone(),
        };
        let limits = self.config.service.limits;
        let grace = self.config.service.shutdown_grace;
        let service = ReferralsServiceServer::new(handler)
            .max_decoding_message_size(server::max_message_size(&limits));
        let operator = FederationOperatorServiceServer::new(federation::operator::Operator {
            store: store.clone(),
            federation: federation.clone(),
        });
        let main = server::serve_with_store(
            self.listener,
            tonic::service::Routes::new(service).add_service(operator),
            SERVICE_NAME,
            store,
            self.auth,
            shutdown.clone(),
            grace,
        );
        let Some(port) = self.federation else {
            return main.await;
        };
        port.federation.start(&shutdown);
        let receiver = FederationServiceServer::new(federation::receive::Receiver {
            federation: std::sync::Arc::clone(&port.federation),
        })
        .max_decoding_message_size(server::max_message_size(&limits));
        let peers = server::serve(
            port.listener,
            tonic::service::Routes::new(receiver),
            FEDERATION_SERVICE_NAME,
            async { true },
            port.auth,
            shutdown,
            grace,
        );
        let (main, peers) = tokio::join!(main, peers);
        main.and(peers)
    }
}

/// Full gRPC name of the peer-facing service.
pub const FEDERATION_SERVICE_NAME: &str = "corridor.federation.v1.FederationService";

/// Check the federation settings against the service's TLS, prepare the
/// peers' clients and bind the peer-facing port.
async fn federation_port(
    settings: &federation::FederationConfig,
    config: &ReferralsConfig,
    resources: &Resources,
    identity: &IdentityLink,
    encounters: &EncountersLink,
) -> Result<FederationPort, BuildError> {
    let tls = config.service.tls.as_ref().ok_or_else(|| {
        BuildError::Federation(
            "node-to-node traffic is mutual TLS only: set the services' TLS (CORRIDOR_TLS_CERT_FILE, CORRIDOR_TLS_KEY_FILE, CORRIDOR_TLS_CA_FILE)".to_owned(),
        )
    })?;
    let named = tls
        .own_nodes()
        .map_err(|e| BuildError::Federation(e.to_string()))?;
    if !named.contains(&settings.node_id) {
        return Err(BuildError::Federation(format!(
            "the node certificate must name node '{}' as the SAN URI urn:corridor:node:{} (its peers check it), but it names {}; `corridor certs --node {}` makes a development one",
            settings.node_id,
            settings.node_id,
            if named.is_empty() {
                "no node".to_owned()
            } else {
                named.join(", ")
            },
            settings.node_id
        )));
    }
    if settings.peers.is_empty() {
        return Err(BuildError::Federation(
            "a federating node needs at least one peer in its peers file".to_owned(),
        ));
    }
    let peer_cas: Vec<&str> = settings.peers.iter().map(|p| p.ca_pem.trim()).collect();
    let peer_tls = tls
        .for_peers(&format!("{}\n", peer_cas.join("\n")))
        .map_err(|e| BuildError::Federation(e.to_string()))?;
    let listener = server::bind(settings.listen).await?;
    let local_addr = server::local_addr(&listener)?;
    let federation = federation::Federation::new(
        settings.clone(),
        tls,
        resources.clone(),
        identity.clone(),
        encounters.clone(),
    )?;
    let auth = corridor_runtime::auth::Auth {
        // Peers carry no token: their certificate is checked by each call.
        public: &["/corridor.federation.v1.FederationService/"],
        ..corridor_runtime::auth::Auth::from_identity(identity.clone())
    }
    .with_tls(Some(peer_tls));
    Ok(FederationPort {
        federation: std::sync::Arc::new(federation),
        listener,
        local_addr,
        auth,
    })
}

/// The gRPC handlers.
#[derive(Debug)]
struct Referrals {
    resources: Resources,
    identity: IdentityLink,
    encounters: EncountersLink,
    watch: follow::Limits,
    /// Ends open Watch streams when the service stops.
    shutdown: Shutdown,
    /// The service's mutual TLS, when it runs one.
    tls: Option<corridor_runtime::tls::Tls>,
    /// Cross-border referrals, when the node federates.
    federation: Option<std::sync::Arc<federation::Federation>>,
}

corridor_runtime::fhir_service! {
    impl ReferralsService for Referrals, messages pb and transaction {
        async fn create_referral(
            &self,
            request: Request<pb::CreateReferralRequest>,
        ) -> Result<Response<pb::CreateReferralResponse>, Status> {
            let refer = corridor_runtime::audit::Record::new("C", "$refer");
            self.resources.require(&refer, "ServiceRequest", Interaction::Create).await?;
            self.resources.require(&refer, "Task", Interaction::Create).await?;
            let key = idempotency_key(&request)?;
            let caller = caller_organization(&request)?;
            let req = request.get_ref();
            let mut record = corridor_runtime::audit::Record::new("C", "$refer");
            let (made, witnessed) = self
                .resources
                .witnessed(
                    &record,
                    referral::create(
                        &self.resources,
                        &self.identity,
                        self.federation.as_deref(),
                        &caller,
                        &req.service_request,
                        req.draft,
                        key.as_deref(),
                    ),
                )
                .await;
            if let Ok(done) = &made {
                for entry in &done.entries {
                    record.entity(format!("{}/{}", entry.stored.resource_type, entry.stored.id));
                    record.patient_of(&serde_json::from_str(&entry.stored.json).unwrap_or_default());
                }
            }
            let result = self.resources.audited_after(witnessed, record, made).await?;
            let (service_request, task) = match result.entries.as_slice() {
                [sr, task] => (to_proto(&sr.stored), to_proto(&task.stored)),
                _ => return Err(ApiError::Invalid(Issue::new("exception", "a referral is two resources")).into()),
            };
            tracing::info!(task = %task.id, service_request = %service_request.id, replayed = result.replayed, "referral");
            Ok(respond_replayed(
                pb::CreateReferralResponse {
                    service_request: Some(service_request),
                    task: Some(task),
                },
                result.replayed,
            ))
        }

        async fn transition(
            &self,
            request: Request<pb::TransitionRequest>,
        ) -> Result<Response<pb::TransitionResponse>, Status> {
            self.resources
                .require(
                    &corridor_runtime::audit::Record::new("U", "$transition"),
                    "Task",
                    Interaction::Update,
                )
                .await?;
            let key = idempotency_key(&request)?;
            let caller = caller_organization(&request)?;
            let mut record = corridor_runtime::audit::Record::new("U", "$transition");
            let (moved, witnessed) = self
                .resources
                .witnessed(
                    &record,
                    referral::transition(
                        &self.resources,
                        &self.encounters,
                        &caller,
                        request.get_ref(),
                        key.as_deref(),
                    ),
                )
                .await;
            record.entity(format!("Task/{}", request.get_ref().task_id));
            if let Ok(done) = &moved {
                record.patient_of(&serde_json::from_str(&done.stored.json).unwrap_or_default());
            }
            let result = self.resources.audited_after(witnessed, record, moved).await?;
            tracing::info!(task = %result.stored.id, version = result.stored.version, status = %request.get_ref().status, replayed = result.replayed, "transition");
            Ok(respond(
                pb::TransitionResponse {
                    task: Some(to_proto(&result.stored)),
                },
                &result,
            ))
        }

        type WatchStream = follow::Items<pb::WatchResponse>;

        async fn watch(
            &self,
            request: Request<pb::WatchRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            // Opening the feed is the access audited: what it shows is
            // what the caller's organization takes part in.
            let record = corridor_runtime::audit::Record::new("R", "$watch");
            self.resources.require(&record, "Task", Interaction::Read).await?;
            let caller = caller_organization(&request)?;
            let after = request.get_ref().after_sequence;
            let opened = if after < 0 {
                Err(ApiError::Invalid(
                    Issue::new("invalid", "after_sequence is the last sequence received, 0 or more")
                        .at("after_sequence"),
                ))
            } else {
                Ok(events::watch(
                    self.resources.store(),
                    caller,
                    after,
                    self.watch,
                    self.shutdown.clone(),
                ))
            };
            Ok(Response::new(self.resources.audited(record, opened).await?))
        }

        type WatchParticipationStream =
            follow::Items<pb::WatchParticipationResponse>;

        async fn watch_participation(
            &self,
            request: Request<pb::WatchParticipationRequest>,
        ) -> Result<Response<Self::WatchParticipationStream>, Status> {
            corridor_runtime::auth::require_service_peer(
                self.tls.as_ref(),
                request.extensions(),
                "follow the referral changes",
            )?;
            let feed = corridor_runtime::changes::feed(
                self.resources.store(),
                EVENTS,
                self.shutdown.clone(),
                |sequence| pb::WatchParticipationResponse { sequence },
            )
            .await?;
            Ok(Response::new(feed))
        }

        async fn referred_patients(
            &self,
            _request: Request<pb::ReferredPatientsRequest>,
        ) -> Result<Response<pb::ReferredPatientsResponse>, Status> {
            // The caller's own referrals only: a valid token is enough. It
            // is the encounters service's question, asked on a caller's
            // behalf; over mutual TLS only a node service may ask it.
            corridor_runtime::auth::require_service("ask whose referrals an organization takes part in")?;
            let caller = corridor_runtime::auth::current()?;
            let patient_ids =
                referral::referred_patients(self.resources.store(), &caller.organization).await?;
            Ok(Response::new(pb::ReferredPatientsResponse { patient_ids }))
        }

        async fn patient_referrals(
            &self,
            request: Request<pb::PatientReferralsRequest>,
        ) -> Result<Response<pb::PatientReferralsResponse>, Status> {
            require("ServiceRequest", Interaction::Search)?;
            require("Task", Interaction::Search)?;
            let caller = corridor_runtime::auth::current()?;
            let access = self.resources.readable(&caller, "Task").await?;
            let bundle = referral::of_patient(
                self.resources.store(),
                &self.identity,
                request.get_ref(),
                access.as_ref(),
            )
            .await?;
            Ok(Response::new(pb::PatientReferralsResponse {
                bundle: Some(bundle),
            }))
        }
    }
}
