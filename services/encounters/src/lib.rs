//! The encounters service: the clinical record of consultations, so that
//! the next clinician who sees a migrant can read what the last one did,
//! and the real-time consult channel of a teleconsultation.
//!
//! It serves Encounter, Observation, Condition, Communication, Immunization,
//! AllergyIntolerance, MedicationStatement and DocumentReference, and the
//! rest of a hospital's record (Procedure, DiagnosticReport,
//! MedicationRequest, CarePlan, Goal, ImagingStudy, Claim and
//! ExplanationOfBenefit), over
//! `corridor.encounters.v1.EncountersService`: the FHIR interactions, FHIR
//! transactions, `RecordConsultation`, `Patient/$everything`, and the
//! consult channel (`SendMessage`, `OpenChannel`).
//!
//! Every Patient a write names is checked with the identity service first
//! ([`corridor_runtime::identity`]), with a deadline and the caller's trace context; if
//! identity cannot answer, the write fails with UNAVAILABLE and nothing is
//! stored. Searches by Patient and `Patient/$everything` follow the
//! Patient's merges, asked of identity the same way
//! ([`corridor_runtime::merges`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use corridor_auth::Interaction;
use corridor_proto::encounters::v1 as pb;
use corridor_proto::encounters::v1::encounters_service_server::{
    EncountersService, EncountersServiceServer,
};
use corridor_runtime::resources::{Resources, respond, respond_replayed};
use corridor_runtime::server::{self, ServeError};
use corridor_runtime::{ApiError, ServiceConfig, Shutdown, idempotency_key};
use corridor_store::{Store, StoreError};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub mod access;
pub mod channel;
pub mod consultation;
mod everything;
mod params;
pub mod referrals;

pub use params::RESOURCES;

use corridor_runtime::identity::IdentityLink;

/// Full gRPC name of the service, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "corridor.encounters.v1.EncountersService";
/// PostgreSQL schema of the service's tables.
pub const SCHEMA: &str = "encounters";
/// How long a call to the identity service may take, by default.
pub const DEFAULT_IDENTITY_DEADLINE: Duration = Duration::from_secs(3);
/// Messages buffered for each consult channel reader, by default.
pub const DEFAULT_CHANNEL_BUFFER: usize = 256;
/// How long a consult channel reader may leave a full buffer unread while
/// messages wait, by default, before it is cut off.
pub const DEFAULT_CHANNEL_STALL: Duration = Duration::from_secs(5);

/// The encounters service's configuration.
#[derive(Debug, Clone)]
pub struct EncountersConfig {
    pub service: ServiceConfig,
    /// The identity service, e.g. `http://127.0.0.1:50051`.
    pub identity_url: String,
    pub identity_deadline: Duration,
    /// The referrals service, e.g. `http://127.0.0.1:50053`, whose
    /// referrals `Patient/$everything` includes; None when the node has none.
    pub referrals_url: Option<String>,
    /// Per-reader buffer of the consult channel, in messages.
    pub channel_buffer: usize,
    /// How long a full reader buffer may stay unread while messages wait.
    pub channel_stall: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("encounters store: {0}")]
    Store(#[from] StoreError),
    #[error("identity or referrals service URL: {0}")]
    IdentityUrl(#[from] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The encounters service, built and bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    resources: Resources,
    identity: IdentityLink,
    referrals: Option<referrals::ReferralsLink>,
    auth: corridor_runtime::auth::Auth,
    config: EncountersConfig,
    /// Identity's and referrals' decisions, cached while followed.
    decisions: Arc<access::Decisions>,
}

impl Application {
    /// Connect the store and run its migrations, prepare the (lazy) identity
    /// client, then bind the port.
    pub async fn build(config: EncountersConfig) -> Result<Self, BuildError> {
        let identity = IdentityLink::new(
            &config.identity_url,
            config.identity_deadline,
            params::PATIENT_ELEMENT,
            config.service.tls.as_ref(),
        )?;
        let referrals = match &config.referrals_url {
            Some(url) => Some(referrals::ReferralsLink::new(
                url,
                config.identity_deadline,
                config.service.tls.as_ref(),
            )?),
            None => None,
        };
        let store = Store::connect(&config.service.store, RESOURCES).await?;
        let listener = server::bind(config.service.listen).await?;
        let local_addr = server::local_addr(&listener)?;
        let auth = corridor_runtime::auth::Auth::from_identity(identity.clone())
            .with_tls(config.service.tls.clone())
            .with_refusals(Arc::new(corridor_runtime::identity::IdentityRefusals {
                link: identity.clone(),
                source: "encounters",
            }));
        let link = Arc::new(identity.clone());
        let decisions = Arc::new(access::Decisions::default());
        let policy = Arc::new(access::EncountersPolicy {
            identity: identity.clone(),
            referrals: referrals.clone(),
            decisions: Arc::clone(&decisions),
        });
        let resources = Resources::new(store, config.service.limits)
            .with_policy(policy)
            .with_audit(Arc::new(corridor_runtime::identity::IdentityAudit {
                link: identity.clone(),
                source: "encounters",
            }))
            .with_guard(link.clone())
            .with_resolver(link.clone())
            .with_merges(link, RESOURCES);
        Ok(Self {
            listener,
            local_addr,
            resources,
            identity,
            referrals,
            auth,
            config,
            decisions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The access decisions it caches (see [`access::Decisions`]).
    pub fn decisions(&self) -> Arc<access::Decisions> {
        Arc::clone(&self.decisions)
    }

    /// Include the referrals of the service at `url` in
    /// `Patient/$everything` (for when it starts after this one is built).
    pub fn link_referrals(&mut self, url: &str) -> Result<(), BuildError> {
        let link = referrals::ReferralsLink::new(
            url,
            self.config.identity_deadline,
            self.config.service.tls.as_ref(),
        )?;
        self.referrals = Some(link.clone());
        // Referrals now also say whose records an organization may read.
        self.resources = self
            .resources
            .clone()
            .with_policy(Arc::new(access::EncountersPolicy {
                identity: self.identity.clone(),
                referrals: Some(link),
                decisions: Arc::clone(&self.decisions),
            }));
        Ok(())
    }

    /// Serve until `shutdown`, then drain within the grace period and close
    /// the store.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let store = self.resources.store().clone();
        // Follow what the access decisions are made from, so that they can
        // be cached (see `access::Decisions`).
        let mut followers = vec![tokio::spawn({
            let identity = self.identity.clone();
            corridor_runtime::changes::follow_changes(
                Arc::clone(&self.decisions.consent),
                "identity decision changes",
                move || {
                    let identity = identity.clone();
                    async move { identity.watch_decisions().await }
                },
                shutdown.clone(),
            )
        })];
        if let Some(referrals) = self.referrals.clone() {
            followers.push(tokio::spawn(corridor_runtime::changes::follow_changes(
                Arc::clone(&self.decisions.referred),
                "referral changes",
                move || {
                    let referrals = referrals.clone();
                    async move { referrals.watch_participation().await }
                },
                shutdown.clone(),
            )));
        }
        let handler = Encounters {
            resources: self.resources,
            identity: self.identity,
            referrals: self.referrals,
            reader_limits: corridor_runtime::follow::Limits {
                buffer: self.config.channel_buffer,
                stall: self.config.channel_stall,
            },
            shutdown: shutdown.clone(),
        };
        // A transaction Bundle is held to the resource limit as a whole.
        let service = EncountersServiceServer::new(handler)
            .max_decoding_message_size(server::max_message_size(&self.config.service.limits));
        let served = server::serve_with_store(
            self.listener,
            tonic::service::Routes::new(service),
            SERVICE_NAME,
            store,
            self.auth,
            shutdown,
            self.config.service.shutdown_grace,
        )
        .await;
        for follower in followers {
            follower.abort();
        }
        served
    }
}

/// The gRPC handlers.
#[derive(Debug)]
struct Encounters {
    resources: Resources,
    identity: IdentityLink,
    referrals: Option<referrals::ReferralsLink>,
    reader_limits: corridor_runtime::follow::Limits,
    /// Ends open consult channels when the service stops.
    shutdown: Shutdown,
}

impl Encounters {
    async fn transaction(
        &self,
        bundle: &str,
        key: Option<&str>,
        consultation: bool,
        part: Option<&str>,
    ) -> Result<
        (
            corridor_store::TxResult,
            corridor_proto::fhir::v1::Bundle,
            usize,
        ),
        ApiError,
    > {
        let requests = self.resources.parse_transaction(bundle, part.is_some())?;
        let encounter = if consultation {
            consultation::check(&requests)?
        } else {
            0
        };
        let (result, bundle) = self.resources.transaction(&requests, key, part).await?;
        tracing::info!(
            entries = result.entries.len(),
            replayed = result.replayed,
            consultation,
            "transaction"
        );
        Ok((result, bundle, encounter))
    }
}

corridor_runtime::fhir_service! {
    impl EncountersService for Encounters, messages pb {
        async fn transaction(
            &self,
            request: Request<pb::TransactionRequest>,
        ) -> Result<Response<pb::TransactionResponse>, Status> {
            let key = idempotency_key(&request)?;
            let message = request.get_ref();
            let part = Some(message.distributed_transaction.as_str()).filter(|p| !p.is_empty());
            let (result, bundle, _) = self
                .transaction(&message.bundle, key.as_deref(), false, part)
                .await?;
            Ok(respond_replayed(
                pb::TransactionResponse {
                    bundle: Some(bundle),
                },
                result.replayed,
            ))
        }

        async fn record_consultation(
            &self,
            request: Request<pb::RecordConsultationRequest>,
        ) -> Result<Response<pb::RecordConsultationResponse>, Status> {
            let key = idempotency_key(&request)?;
            let (result, bundle, encounter) = self
                .transaction(&request.get_ref().bundle, key.as_deref(), true, None)
                .await?;
            let encounter_id = result
                .entries
                .get(encounter)
                .map(|e| e.stored.id.clone())
                .unwrap_or_default();
            Ok(respond_replayed(
                pb::RecordConsultationResponse {
                    bundle: Some(bundle),
                    encounter_id,
                },
                result.replayed,
            ))
        }

        async fn everything(
            &self,
            request: Request<pb::EverythingRequest>,
        ) -> Result<Response<pb::EverythingResponse>, Status> {
            let everything = corridor_runtime::audit::Record::new("R", "$everything");
            self.resources.require(&everything, "Patient", Interaction::Read).await?;
            self.resources.require(&everything, "Encounter", Interaction::Read).await?;
            let found = everything::everything(
                &self.resources,
                &self.identity,
                self.referrals.as_ref(),
                request.get_ref(),
            )
            .await;
            let mut record = corridor_runtime::audit::Record::new("R", "$everything");
            record.entity(format!("Patient/{}", request.get_ref().patient_id.trim()));
            let bundle = self.resources.audited(record, found).await?;
            Ok(Response::new(pb::EverythingResponse {
                bundle: Some(bundle),
            }))
        }

        async fn send_message(
            &self,
            request: Request<pb::SendMessageRequest>,
        ) -> Result<Response<pb::SendMessageResponse>, Status> {
            self.resources
                .require(
                    &corridor_runtime::audit::Record::new("C", "$send-message"),
                    "Communication",
                    Interaction::Create,
                )
                .await?;
            let key = idempotency_key(&request)?;
            let mut record = corridor_runtime::audit::Record::new("C", "$send-message");
            record.entity(format!("Encounter/{}", request.get_ref().encounter_id));
            let (sent, witnessed) = self
                .resources
                .witnessed(
                    &record,
                    channel::send(&self.resources, request.get_ref(), key.as_deref()),
                )
                .await;
            record.entity(format!("Encounter/{}", request.get_ref().encounter_id));
            if let Ok((result, _)) = &sent {
                record.entity(format!("Communication/{}", result.stored.id));
                record.patient_of(&serde_json::from_str(&result.stored.json).unwrap_or_default());
            }
            let (result, message) = self.resources.audited_after(witnessed, record, sent).await?;
            tracing::info!(encounter = %request.get_ref().encounter_id, sequence = message.sequence, replayed = result.replayed, "message");
            Ok(respond(
                pb::SendMessageResponse {
                    message: Some(message),
                },
                &result,
            ))
        }

        type OpenChannelStream = channel::Messages;

        async fn open_channel(
            &self,
            request: Request<pb::OpenChannelRequest>,
        ) -> Result<Response<Self::OpenChannelStream>, Status> {
            self.resources
                .require(
                    &corridor_runtime::audit::Record::new("R", "$open-channel"),
                    "Communication",
                    Interaction::Read,
                )
                .await?;
            let opened = channel::open(
                &self.resources,
                request.get_ref(),
                self.reader_limits,
                self.shutdown.clone(),
            )
            .await;
            let mut record = corridor_runtime::audit::Record::new("R", "$open-channel");
            record.entity(format!("Encounter/{}", request.get_ref().encounter_id));
            let stream = self.resources.audited(record, opened).await?;
            Ok(Response::new(stream))
        }
    }
}
