//! The coordinator of FHIR transactions that span services.
//!
//! The gateway splits such a Bundle by owning service. Before writing any
//! part it opens an attempt here (`BeginTransaction`); after every part is
//! written it commits the attempt (`DecideTransaction`). This service keeps
//! the decision, so there is exactly one: the gateway's commit, or an abort
//! (the gateway's, when a part failed, or this service's own once the
//! attempt has stayed open past its deadline: presumed abort, which covers
//! a gateway that crashed mid-transaction).
//!
//! [`run`] then settles every decided attempt at each participant:
//! committed parts are forgotten, aborted ones purged (see
//! `corridor_store::distributed`). It settles this service's own parts in
//! its store, and the other services' over gRPC with a short-lived token it
//! signs with the node's key, the only credential every node service
//! accepts in development as in production.

use std::sync::Arc;
use std::time::Duration;

use corridor_proto::encounters::v1 as enc;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::identity::v1 as pb;
use corridor_proto::referrals::v1 as refs;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_runtime::{ApiError, Shutdown};
use corridor_store::distributed::{Begun, TxState, Unsettled};
use corridor_store::{Store, StoreError};
use tonic::transport::Channel;

use crate::tokens::TokenSettings;

/// How long an attempt may stay open by default: longer than the gateway
/// lets one request take (60 s by default), so that a transaction still
/// being written is never presumed aborted.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// The services a transaction may have parts at.
pub const PARTICIPANTS: [&str; 3] = ["identity", "encounters", "referrals"];

/// How the coordinator reaches the other services to settle their parts.
#[derive(Debug, Clone)]
pub struct Participants {
    pub encounters: Option<Channel>,
    pub referrals: Option<Channel>,
    /// How long one settle call may take.
    pub deadline: Duration,
}

/// The coordinator's settings.
#[derive(Debug, Clone)]
pub struct Coordination {
    pub participants: Participants,
    /// An attempt open longer than this is presumed aborted.
    pub timeout: Duration,
}

/// Open an attempt (`BeginTransaction`).
pub async fn begin(
    store: &Store,
    key: Option<&str>,
    request: &pb::BeginTransactionRequest,
) -> Result<pb::BeginTransactionResponse, ApiError> {
    corridor_runtime::auth::current()?;
    let mut participants: Vec<&str> = Vec::new();
    for name in &request.participants {
        if !PARTICIPANTS.contains(&name.as_str()) {
            return Err(invalid(
                format!(
                    "participants: '{name}' is not a service; use {}",
                    PARTICIPANTS.join(", ")
                ),
                "participants",
            ));
        }
        if !participants.contains(&name.as_str()) {
            participants.push(name);
        }
    }
    if participants.is_empty() {
        return Err(invalid(
            "participants: name the services with a part".to_owned(),
            "participants",
        ));
    }
    if request.request_hash.is_empty() || request.request_hash.len() > 128 {
        return Err(invalid(
            "request_hash: 1-128 characters that tell the request apart".to_owned(),
            "request_hash",
        ));
    }
    // An earlier attempt of the key aborted between our insert and read:
    // the next try opens a new one.
    let mut tries = 0;
    let begun = loop {
        tries += 1;
        match store
            .begin_distributed(key, &request.request_hash, &participants)
            .await
        {
            Err(StoreError::Contention) if tries < 3 => {}
            other => break other?,
        }
    };
    let (transaction_id, state, replay) = match begun {
        Begun::New(id) => (id, pb::TransactionState::Open, false),
        Begun::InProgress(id) => (id, pb::TransactionState::Open, true),
        Begun::Committed(id) => (id, pb::TransactionState::Committed, true),
    };
    tracing::info!(transaction = %transaction_id, replay, participants = ?participants, "transaction begun");
    Ok(pb::BeginTransactionResponse {
        transaction_id,
        state: state.into(),
        replay,
    })
}

/// Decide an attempt (`DecideTransaction`); the decision that stands.
pub async fn decide(
    store: &Store,
    request: &pb::DecideTransactionRequest,
    wake: &tokio::sync::Notify,
) -> Result<pb::DecideTransactionResponse, ApiError> {
    corridor_runtime::auth::current()?;
    let Some(state) = store
        .decide_distributed(&request.transaction_id, request.commit)
        .await?
    else {
        return Err(ApiError::NotFound(
            corridor_fhir::Issue::new(
                "not-found",
                format!("no transaction '{}' was begun here", request.transaction_id),
            )
            .at("transaction_id"),
        ));
    };
    tracing::info!(transaction = %request.transaction_id, state = state.as_str(), "transaction decided");
    // Settle it now rather than at the next round.
    wake.notify_one();
    Ok(pb::DecideTransactionResponse {
        state: proto_state(state).into(),
    })
}

fn proto_state(state: TxState) -> pb::TransactionState {
    match state {
        TxState::Open => pb::TransactionState::Open,
        TxState::Committed => pb::TransactionState::Committed,
        TxState::Aborted => pb::TransactionState::Aborted,
    }
}

fn invalid(text: String, at: &str) -> ApiError {
    ApiError::Invalid(corridor_fhir::Issue::new("invalid", text).at(at))
}

/// How often the coordinator looks for attempts to presume aborted and
/// parts to settle when nothing wakes it.
const ROUND: Duration = Duration::from_millis(500);

/// Presume overdue attempts aborted and settle decided ones, until
/// `shutdown`.
pub async fn run(
    store: Store,
    coordination: Coordination,
    tokens: TokenSettings,
    wake: Arc<tokio::sync::Notify>,
    shutdown: Shutdown,
) {
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    let settler = Settler {
        store: store.clone(),
        participants: coordination.participants,
        tokens,
    };
    // Waits longer while parts cannot be settled (a service down).
    let mut pause = ROUND;
    loop {
        match round(&store, &settler, coordination.timeout).await {
            Ok(true) => pause = ROUND,
            Ok(false) => pause = (pause * 2).min(MAX_PAUSE),
            Err(err) => {
                if shutdown.is_triggered() {
                    return;
                }
                pause = (pause * 2).min(MAX_PAUSE);
                tracing::warn!(error = %err, "transactions: settling decided transactions failed; retrying");
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The longest wait between rounds while a part cannot be settled.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// One round; whether every decided transaction could be settled.
async fn round(store: &Store, settler: &Settler, timeout: Duration) -> Result<bool, StoreError> {
    let now = corridor_store::deliveries::now_millis();
    let cutoff = now - i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    let presumed = store.presume_aborted(cutoff).await?;
    if presumed > 0 {
        tracing::warn!(
            count = presumed,
            "transactions still open past their deadline presumed aborted; their parts are purged"
        );
    }
    let unsettled = store.unsettled_distributed(64).await?;
    if unsettled.is_empty() {
        return Ok(true);
    }
    // One token for the round's calls: signing is the costly part.
    let token = settler.token();
    let mut all = true;
    for unsettled in unsettled {
        if settler.settle(&unsettled, &token).await {
            store.distributed_settled(&unsettled.id).await?;
        } else {
            all = false;
        }
    }
    Ok(all)
}

struct Settler {
    store: Store,
    participants: Participants,
    tokens: TokenSettings,
}

impl Settler {
    /// Tell every participant of `transaction` its decision; whether all
    /// of them took it.
    async fn settle(&self, transaction: &Unsettled, token: &Result<String, String>) -> bool {
        let commit = transaction.state == TxState::Committed;
        let mut all = true;
        for participant in &transaction.participants {
            let settled = match participant.as_str() {
                "identity" => self
                    .store
                    .settle_part(&transaction.id, commit)
                    .await
                    .map_err(|e| e.to_string()),
                "encounters" | "referrals" => {
                    self.remote(participant, &transaction.id, commit, token)
                        .await
                }
                other => Err(format!("unknown participant '{other}'")),
            };
            if let Err(error) = settled {
                all = false;
                tracing::warn!(transaction = %transaction.id, participant, error, commit, "could not settle a transaction part yet; retrying");
            }
        }
        all
    }

    async fn remote(
        &self,
        participant: &str,
        id: &str,
        commit: bool,
        token: &Result<String, String>,
    ) -> Result<(), String> {
        let token = token.clone()?;
        let deadline = self.participants.deadline;
        let transaction_id = id.to_owned();
        let answer = match participant {
            "encounters" => {
                let channel = self.participants.encounters.clone().ok_or(
                    "identity does not know the encounters service's address (CORRIDOR_ENCOUNTERS_URL)",
                )?;
                EncountersServiceClient::new(channel)
                    .settle_transaction(signed(
                        enc::SettleTransactionRequest {
                            transaction_id,
                            commit,
                        },
                        &token,
                        deadline,
                    ))
                    .await
                    .map(|_| ())
            }
            _ => {
                let channel = self.participants.referrals.clone().ok_or(
                    "identity does not know the referrals service's address (CORRIDOR_REFERRALS_URL)",
                )?;
                ReferralsServiceClient::new(channel)
                    .settle_transaction(signed(
                        refs::SettleTransactionRequest {
                            transaction_id,
                            commit,
                        },
                        &token,
                        deadline,
                    ))
                    .await
                    .map(|_| ())
            }
        };
        answer.map_err(|status| format!("{:?}: {}", status.code(), status.message()))
    }

    /// A token for the coordinator itself, signed with the node's key.
    fn token(&self) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = corridor_auth::AccessClaims {
            iss: self.tokens.issuer.clone(),
            sub: "service:identity".to_owned(),
            aud: self.tokens.issuer.clone(),
            exp: now + 60,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            organization: "Organization/corridor-node".to_owned(),
            jurisdiction: self.tokens.jurisdiction.clone(),
            scope: "system/*.cud".to_owned(),
            admin: false,
            cnf: None,
        };
        corridor_auth::tokens::issue(&self.tokens.keys, &claims).map_err(|e| e.to_string())
    }
}

/// `message` as a call with `token`, within `deadline`.
fn signed<M>(message: M, token: &str, deadline: Duration) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request
            .metadata_mut()
            .insert(corridor_runtime::auth::AUTHORIZATION, value);
    }
    request
}
