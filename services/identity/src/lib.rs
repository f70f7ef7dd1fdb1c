//! The identity service: the registry of patients, organizations and
//! practitioners that every partner shares, so that the same migrant is
//! found again instead of registered twice. It serves Patient, Organization
//! and Practitioner over `corridor.identity.v1.IdentityService`.
//!
//! It also finds the same person across records (`Match`, see
//! [`matcher`] and the `corridor-matching` crate), keeps people's decisions
//! about pairs of records (`Link`, `Unlink`, `Merge`, `Unmerge`, see
//! [`mpi`]) and a queue of possible duplicates for them to decide
//! ([`review`]), and resolves any Patient id to its current identity for
//! the other services (`ResolvePatient`).
//!
//! Like every Corridor service it is a library: [`Application::build`]
//! connects and migrates its store and binds its port, and
//! [`Application::run_until_stopped`] serves until shutdown. The `corridor`
//! binary and the integration tests start it the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use corridor_auth::Interaction;
use corridor_matching::Rules;
use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_server::{
    IdentityService, IdentityServiceServer,
};
use corridor_runtime::resources::{Resources, to_proto};
use corridor_runtime::server::{self, ServeError};
use corridor_runtime::{ServiceConfig, Shutdown};
use corridor_store::{Store, StoreError};
use tokio::net::TcpListener;

pub mod audit;
pub mod consent;
pub mod matcher;
pub mod mpi;
mod params;
pub mod review;
pub mod tokens;
pub mod transactions;

pub use params::{PATIENT_CHANGES, RESOURCES};

/// Full gRPC name of the service, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "corridor.identity.v1.IdentityService";
/// The methods anyone may call: the token endpoint, and the keys its
/// tokens are verified against.
pub const PUBLIC_METHODS: &[&str] = &[
    "/corridor.identity.v1.IdentityService/Token",
    "/corridor.identity.v1.IdentityService/Jwks",
    // Tells only that something changed; over mutual TLS, services only.
    "/corridor.identity.v1.IdentityService/WatchDecisions",
    // Reports calls refused for their token; over mutual TLS, services only.
    "/corridor.identity.v1.IdentityService/RecordRefusal",
];
/// PostgreSQL schema of the service's tables.
pub const SCHEMA: &str = "identity";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("identity store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("signing key: {0}")]
    Key(#[from] corridor_auth::KeyError),
}

/// The identity service, built and bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    resources: Resources,
    rules: Arc<Rules>,
    tokens: tokens::TokenSettings,
    config: ServiceConfig,
    coordination: transactions::Coordination,
}

impl Application {
    /// Connect the store and run its migrations, then bind the port; match
    /// with the shipped rules.
    pub async fn build(config: ServiceConfig) -> Result<Self, BuildError> {
        Self::build_with_rules(config, Rules::default_rules()).await
    }

    /// [`Application::build`] with matching rules of the deployment's own
    /// (see `crates/matching/rules.toml`).
    pub async fn build_with_rules(config: ServiceConfig, rules: Rules) -> Result<Self, BuildError> {
        Self::build_full(config, rules, tokens::TokenSettings::ephemeral()?).await
    }

    /// [`Application::build_with_rules`] with the token endpoint's signing
    /// keys and names.
    pub async fn build_full(
        config: ServiceConfig,
        rules: Rules,
        tokens: tokens::TokenSettings,
    ) -> Result<Self, BuildError> {
        let store = Store::connect(&config.store, RESOURCES).await?;
        let listener = server::bind(config.listen).await?;
        let local_addr = server::local_addr(&listener)?;
        let store_for_audit = store.clone();
        let resources = Resources::new(store.clone(), config.limits)
            .with_guard(Arc::new(consent::ConsentGuard { store }))
            .with_policy(consent::IdentityPolicy::shared())
            .with_audit(Arc::new(corridor_runtime::audit::StoreAudit {
                store: store_for_audit,
                source: "identity",
            }));
        Ok(Self {
            listener,
            local_addr,
            resources,
            rules: Arc::new(rules),
            tokens,
            config,
            coordination: transactions::Coordination {
                participants: transactions::Participants {
                    encounters: None,
                    referrals: None,
                    deadline: std::time::Duration::from_secs(3),
                },
                timeout: transactions::DEFAULT_TIMEOUT,
            },
        })
    }

    /// Coordinate transactions that span services with these settings: how
    /// to reach the other services to settle their parts, and how long an
    /// attempt may stay open. Without it the other services' parts are not
    /// settled by this service (the gateway still settles what it aborts).
    #[must_use]
    pub fn coordinating(mut self, coordination: transactions::Coordination) -> Self {
        self.coordination = coordination;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown`, then drain within the grace period and close
    /// the store.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let store = self.resources.store().clone();
        let matcher = matcher::Matcher::new(store.clone(), self.rules);
        let reviewer = tokio::spawn(review::run(
            matcher.clone(),
            store.clone(),
            shutdown.clone(),
        ));
        let settle = Arc::new(tokio::sync::Notify::new());
        let coordinator = tokio::spawn(transactions::run(
            store.clone(),
            self.coordination,
            self.tokens.clone(),
            settle.clone(),
            shutdown.clone(),
        ));
        let auth = corridor_runtime::auth::Auth {
            authenticator: Arc::new(corridor_runtime::auth::Authenticator::new(Arc::new(
                corridor_runtime::auth::OwnKeys(corridor_runtime::auth::Published {
                    jwks: self.tokens.jwks(),
                    issuer: self.tokens.issuer.clone(),
                }),
            ))),
            public: PUBLIC_METHODS,
            tls: self.config.tls.clone(),
            refusals: None,
        }
        .with_refusals(Arc::new(audit::OwnRefusals {
            store: store.clone(),
            jurisdiction: self.tokens.jurisdiction.clone(),
        }));
        let service = IdentityServiceServer::new(Identity {
            resources: self.resources,
            mpi: mpi::Mpi::new(store.clone()),
            matcher,
            tokens: tokens::Tokens::new(store.clone(), self.tokens),
            tls: self.config.tls.clone(),
            shutdown: shutdown.clone(),
            settle,
        })
        .max_decoding_message_size(server::max_message_size(&self.config.limits));
        let served = server::serve_with_store(
            self.listener,
            tonic::service::Routes::new(service),
            SERVICE_NAME,
            store,
            auth,
            shutdown,
            self.config.shutdown_grace,
        )
        .await;
        reviewer.abort();
        coordinator.abort();
        served
    }
}

/// The gRPC handlers.
#[derive(Debug)]
struct Identity {
    resources: Resources,
    mpi: mpi::Mpi,
    matcher: matcher::Matcher,
    tokens: tokens::Tokens,
    /// The service's mutual TLS, when it runs one.
    tls: Option<corridor_runtime::tls::Tls>,
    /// Ends the change feeds it serves.
    shutdown: Shutdown,
    /// Wakes the transaction coordinator when a decision is made.
    settle: Arc<tokio::sync::Notify>,
}

impl Identity {
    /// `result` of an operation, audited as `action` `subtype` about
    /// `entities` (see `corridor_runtime::audit`).
    async fn audited<T>(
        &self,
        action: &'static str,
        subtype: &str,
        entities: &[&str],
        result: Result<T, corridor_runtime::ApiError>,
    ) -> Result<T, corridor_runtime::ApiError> {
        let mut record = corridor_runtime::audit::Record::new(action, subtype);
        for entity in entities {
            record.entity(format!("Patient/{}", entity.trim()));
        }
        self.resources.audited(record, result).await
    }

    /// An operation that writes (`work`), audited as `action` `subtype`
    /// about `entities`: inside its own transaction when it writes (see
    /// `Resources::witnessed`), afterwards otherwise.
    async fn audited_write<T>(
        &self,
        action: &'static str,
        subtype: &str,
        entities: &[&str],
        work: impl std::future::Future<Output = Result<T, corridor_runtime::ApiError>>,
    ) -> Result<T, corridor_runtime::ApiError> {
        let mut record = corridor_runtime::audit::Record::new(action, subtype);
        for entity in entities {
            record.entity(format!("Patient/{}", entity.trim()));
        }
        let (result, witnessed) = self.resources.witnessed(&record, work).await;
        self.resources
            .audited_after(witnessed, record, result)
            .await
    }
}

fn decider(decided_by: &str, reason: &str) -> Result<mpi::Decider, tonic::Status> {
    Ok(mpi::Decider::new(decided_by, reason)?)
}

corridor_runtime::fhir_service! {
    impl IdentityService for Identity, messages pb and transaction {
        async fn begin_transaction(
            &self,
            request: tonic::Request<pb::BeginTransactionRequest>,
        ) -> Result<tonic::Response<pb::BeginTransactionResponse>, tonic::Status> {
            let key = corridor_runtime::idempotency_key(&request)?;
            let answer =
                transactions::begin(self.resources.store(), key.as_deref(), request.get_ref())
                    .await?;
            Ok(tonic::Response::new(answer))
        }

        async fn decide_transaction(
            &self,
            request: tonic::Request<pb::DecideTransactionRequest>,
        ) -> Result<tonic::Response<pb::DecideTransactionResponse>, tonic::Status> {
            let answer =
                transactions::decide(self.resources.store(), request.get_ref(), &self.settle)
                    .await?;
            Ok(tonic::Response::new(answer))
        }

        async fn register_client(
            &self,
            request: tonic::Request<pb::RegisterClientRequest>,
        ) -> Result<tonic::Response<pb::RegisterClientResponse>, tonic::Status> {
            let caller = match corridor_runtime::auth::require_admin("register clients") {
                Ok(caller) => caller,
                Err(err) => {
                    let record = corridor_runtime::audit::Record::new("C", "$register-client");
                    self.resources.audited(record, Err(err)).await?
                }
            };
            let req = request.into_inner();
            let registered = if req.require_certificate && self.tls.is_none() {
                Err(corridor_runtime::ApiError::Invalid(
                    corridor_fhir::Issue::new(
                        "invalid",
                        "this node does not run mutual TLS, so a client that requires it could \
                         never get a token; configure CORRIDOR_TLS_* first",
                    )
                    .at("require_certificate"),
                ))
            } else {
                self.tokens.register(req, &caller.client_id).await
            };
            let mut record = corridor_runtime::audit::Record::new("C", "$register-client");
            if let Ok(done) = &registered {
                record.query = Some(format!("client_id={}", done.client_id));
            }
            Ok(tonic::Response::new(self.resources.audited(record, registered).await?))
        }

        async fn token(
            &self,
            request: tonic::Request<pb::TokenRequest>,
        ) -> Result<tonic::Response<pb::TokenResponse>, tonic::Status> {
            // No caller yet: the agent is the client the assertion names.
            // What the connection proved: a certificate-bound client's
            // token is bound to the certificate it presented.
            let peer = self
                .tls
                .as_ref()
                .map_or(corridor_runtime::tls::Peer::Anonymous, |tls| tls.peer(request.extensions()));
            let req = request.into_inner();
            let client = corridor_auth::tokens::assertion_client(&req.client_assertion).unwrap_or_default();
            let issued = self.tokens.token(req, &peer).await;
            self.tokens.audit_issue(&client, &issued).await?;
            Ok(tonic::Response::new(issued?))
        }

        async fn jwks(
            &self,
            _request: tonic::Request<pb::JwksRequest>,
        ) -> Result<tonic::Response<pb::JwksResponse>, tonic::Status> {
            Ok(tonic::Response::new(pb::JwksResponse {
                jwks: self.tokens.jwks(),
                issuer: self.tokens.settings().issuer.clone(),
            }))
        }

        async fn record_audit(
            &self,
            request: tonic::Request<pb::RecordAuditRequest>,
        ) -> Result<tonic::Response<pb::RecordAuditResponse>, tonic::Status> {
            // Only the node's services report accesses; over mutual TLS
            // their certificate proves which one reports.
            let proven = corridor_runtime::auth::require_service("record audit events")?;
            let caller = corridor_runtime::auth::current()?;
            let id = audit::record(
                self.resources.store(),
                &caller,
                proven.as_deref(),
                request.into_inner(),
            )
            .await?;
            Ok(tonic::Response::new(pb::RecordAuditResponse { id }))
        }

        type WatchDecisionsStream =
            corridor_runtime::follow::Items<pb::WatchDecisionsResponse>;

        async fn watch_decisions(
            &self,
            request: tonic::Request<pb::WatchDecisionsRequest>,
        ) -> Result<tonic::Response<Self::WatchDecisionsStream>, tonic::Status> {
            corridor_runtime::auth::require_service_peer(
                self.tls.as_ref(),
                request.extensions(),
                "follow the Consent decision changes",
            )?;
            let feed = corridor_runtime::changes::feed(
                self.resources.store(),
                params::DECISION_CHANGES,
                self.shutdown.clone(),
                |sequence| pb::WatchDecisionsResponse { sequence },
            )
            .await?;
            Ok(tonic::Response::new(feed))
        }

        async fn record_refusal(
            &self,
            request: tonic::Request<pb::RecordRefusalRequest>,
        ) -> Result<tonic::Response<pb::RecordRefusalResponse>, tonic::Status> {
            let proven = corridor_runtime::auth::require_service_peer(
                self.tls.as_ref(),
                request.extensions(),
                "report refused calls",
            )?;
            let id = audit::record_refusal(
                self.resources.store(),
                &self.tokens.settings().jurisdiction,
                proven.as_deref(),
                request.into_inner(),
            )
            .await?;
            Ok(tonic::Response::new(pb::RecordRefusalResponse { id }))
        }

        async fn disclosure_decision(
            &self,
            request: tonic::Request<pb::DisclosureDecisionRequest>,
        ) -> Result<tonic::Response<pb::DisclosureDecisionResponse>, tonic::Status> {
            // The referrals service's question before a record leaves the
            // node; over mutual TLS only a node service may ask it.
            corridor_runtime::auth::require_service("ask whether a Patient's records may be disclosed")?;
            let req = request.into_inner();
            let answer = consent::disclosure(
                self.resources.store(),
                &req.patient_id,
                &req.recipient,
                &req.purpose,
            )
            .await?;
            Ok(tonic::Response::new(answer))
        }

        async fn record_exchange(
            &self,
            request: tonic::Request<pb::RecordExchangeRequest>,
        ) -> Result<tonic::Response<pb::RecordExchangeResponse>, tonic::Status> {
            let proven = corridor_runtime::auth::require_service("record exchanges with peer nodes")?;
            let id = audit::record_exchange(
                self.resources.store(),
                &self.tokens.settings().jurisdiction,
                proven.as_deref(),
                request.into_inner(),
            )
            .await?;
            Ok(tonic::Response::new(pb::RecordExchangeResponse { id }))
        }

        async fn consent_decision(
            &self,
            request: tonic::Request<pb::ConsentDecisionRequest>,
        ) -> Result<tonic::Response<pb::ConsentDecisionResponse>, tonic::Status> {
            // About the caller's own organization only: no scope beyond a
            // valid token is needed to learn what applies to oneself. It is
            // the encounters service's question, asked on a caller's
            // behalf; over mutual TLS only a node service may ask it.
            corridor_runtime::auth::require_service("ask for consent decisions")?;
            let caller = corridor_runtime::auth::current()?;
            let answer = consent::decide(
                self.resources.store(),
                &caller.organization,
                &request.get_ref().purpose,
            )
            .await?;
            Ok(tonic::Response::new(answer))
        }

        async fn r#match(
            &self,
            request: tonic::Request<pb::MatchRequest>,
        ) -> Result<tonic::Response<pb::MatchResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("E", "$match"), "Patient", Interaction::Search).await?;
            let req = request.into_inner();
            let found = async {
                let validated = self.resources.validate(&req.resource)?;
                self.matcher
                    .r#match(validated, req.count, req.only_certain_matches)
                    .await
            }
            .await;
            let candidates: Vec<String> = found
                .as_ref()
                .map(|(bundle, _)| {
                    bundle["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let (bundle, total) = self.audited("E", "$match", &candidates, found).await?;
            tracing::info!(candidates = total, "match");
            Ok(tonic::Response::new(pb::MatchResponse {
                bundle: Some(corridor_proto::fhir::v1::Bundle {
                    json: bundle.to_string(),
                    total: total as i64,
                    next_page_token: String::new(),
                }),
            }))
        }

        async fn link(
            &self,
            request: tonic::Request<pb::LinkRequest>,
        ) -> Result<tonic::Response<pb::LinkResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("U", "$link"), "Patient", Interaction::Update).await?;
            let req = request.into_inner();
            let by = decider(&req.decided_by, &req.reason)?;
            let done = self.mpi.link(req.patient_id.trim(), req.other_id.trim(), &by);
            let (a, b) = self.audited_write("U", "$link", &[&req.patient_id, &req.other_id], done).await?;
            tracing::info!(patient = %a.id, other = %b.id, decided_by = %by.decided_by, "link");
            Ok(tonic::Response::new(pb::LinkResponse {
                patient: Some(to_proto(&a)),
                other: Some(to_proto(&b)),
            }))
        }

        async fn unlink(
            &self,
            request: tonic::Request<pb::UnlinkRequest>,
        ) -> Result<tonic::Response<pb::UnlinkResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("U", "$unlink"), "Patient", Interaction::Update).await?;
            let req = request.into_inner();
            let by = decider(&req.decided_by, &req.reason)?;
            let done = self.mpi.unlink(req.patient_id.trim(), req.other_id.trim(), &by);
            let (a, b) = self.audited_write("U", "$unlink", &[&req.patient_id, &req.other_id], done).await?;
            tracing::info!(patient = %a.id, other = %b.id, decided_by = %by.decided_by, "unlink");
            Ok(tonic::Response::new(pb::UnlinkResponse {
                patient: Some(to_proto(&a)),
                other: Some(to_proto(&b)),
            }))
        }

        async fn merge(
            &self,
            request: tonic::Request<pb::MergeRequest>,
        ) -> Result<tonic::Response<pb::MergeResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("U", "$merge"), "Patient", Interaction::Update).await?;
            let req = request.into_inner();
            let by = decider(&req.decided_by, &req.reason)?;
            let done = self.mpi.merge(req.source_id.trim(), req.target_id.trim(), &by);
            let (source, target) = self.audited_write("U", "$merge", &[&req.source_id, &req.target_id], done).await?;
            tracing::info!(source = %source.id, target = %target.id, decided_by = %by.decided_by, "merge");
            Ok(tonic::Response::new(pb::MergeResponse {
                source: Some(to_proto(&source)),
                target: Some(to_proto(&target)),
            }))
        }

        async fn unmerge(
            &self,
            request: tonic::Request<pb::UnmergeRequest>,
        ) -> Result<tonic::Response<pb::UnmergeResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("U", "$unmerge"), "Patient", Interaction::Update).await?;
            let req = request.into_inner();
            let by = decider(&req.decided_by, &req.reason)?;
            let done = self.mpi.unmerge(req.source_id.trim(), &by);
            let (source, target) = self.audited_write("U", "$unmerge", &[&req.source_id], done).await?;
            tracing::info!(source = %source.id, target = %target.id, decided_by = %by.decided_by, "unmerge");
            Ok(tonic::Response::new(pb::UnmergeResponse {
                source: Some(to_proto(&source)),
                target: Some(to_proto(&target)),
            }))
        }

        async fn list_reviews(
            &self,
            request: tonic::Request<pb::ListReviewsRequest>,
        ) -> Result<tonic::Response<pb::ListReviewsResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("E", "$list-reviews"), "Patient", Interaction::Search).await?;
            let listed = review::list(self.resources.store(), request.into_inner()).await;
            let answer = self.audited("E", "$list-reviews", &[], listed).await?;
            Ok(tonic::Response::new(answer))
        }

        async fn decide_review(
            &self,
            request: tonic::Request<pb::DecideReviewRequest>,
        ) -> Result<tonic::Response<pb::DecideReviewResponse>, tonic::Status> {
            self.resources.require(&corridor_runtime::audit::Record::new("U", "$decide-review"), "Patient", Interaction::Update).await?;
            let req = request.into_inner();
            let ids = [req.patient_id.clone(), req.candidate_id.clone()];
            let decided = review::decide(self.resources.store(), &self.mpi, req);
            let answer = self
                .audited_write("U", "$decide-review", &[&ids[0], &ids[1]], decided)
                .await?;
            Ok(tonic::Response::new(answer))
        }

        async fn resolve_patient(
            &self,
            request: tonic::Request<pb::ResolvePatientRequest>,
        ) -> Result<tonic::Response<pb::ResolvePatientResponse>, tonic::Status> {
            corridor_runtime::auth::require("Patient", Interaction::Read)?;
            let id = request.into_inner().patient_id;
            if id.trim().is_empty() {
                return Err(corridor_runtime::ApiError::Invalid(
                    corridor_fhir::Issue::new("required", "patient_id is required").at("patient_id"),
                )
                .into());
            }
            let resolved = self.mpi.resolve(id.trim()).await?;
            Ok(tonic::Response::new(pb::ResolvePatientResponse {
                current_id: resolved.current,
                merged_ids: resolved.merged,
                linked_ids: resolved.linked,
            }))
        }
    }
}
