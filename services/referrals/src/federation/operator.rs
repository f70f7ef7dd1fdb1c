//! What a node's operator sees and does about deliveries to peers
//! (`FederationOperatorService`, on the referrals service's own port; an
//! operator's token, or the node's own certificate, as `corridor
//! federation` uses).

use corridor_fhir::Issue;
use corridor_proto::federation::v1 as pb;
use corridor_proto::federation::v1::federation_operator_service_server::FederationOperatorService;
use corridor_runtime::ApiError;
use corridor_store::Store;
use corridor_store::deliveries::{DELIVERED, Delivery, PARKED, PENDING};
use tonic::{Request, Response, Status};

/// The handlers of `FederationOperatorService`.
#[derive(Debug, Clone)]
pub struct Operator {
    pub store: Store,
    /// Woken when messages are put back.
    pub federation: Option<std::sync::Arc<super::Federation>>,
}

fn instant(millis: i64) -> String {
    corridor_store::instant_of_millis(millis)
}

fn to_proto(d: Delivery) -> pb::Delivery {
    let next = if d.state == PENDING {
        instant(d.next_attempt_at)
    } else {
        String::new()
    };
    pb::Delivery {
        id: d.id,
        peer: d.peer,
        message_id: d.message_id,
        kind: d.kind,
        task_id: d.ordering_key,
        state: d.state,
        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
        last_error: d.last_error.unwrap_or_default(),
        created_at: instant(d.created_at),
        next_attempt_at: next,
        delivered_at: d.delivered_at.map(instant).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl FederationOperatorService for Operator {
    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        corridor_runtime::auth::require_admin("list deliveries to peer nodes")?;
        let req = request.into_inner();
        let states: Vec<&str> = match req.state.as_str() {
            "" => vec![PENDING, PARKED],
            "pending" => vec![PENDING],
            "parked" => vec![PARKED],
            "delivered" => vec![DELIVERED],
            other => {
                return Err(ApiError::Invalid(
                    Issue::new(
                        "invalid",
                        format!("state is pending, parked or delivered, not '{other}'"),
                    )
                    .at("state"),
                )
                .into());
            }
        };
        let limit = match req.limit {
            0 => 100,
            n if (1..=10_000).contains(&n) => i64::from(n),
            n => {
                return Err(ApiError::Invalid(
                    Issue::new("invalid", format!("limit is 1 to 10000, not {n}")).at("limit"),
                )
                .into());
            }
        };
        let peer = Some(req.peer.as_str()).filter(|p| !p.is_empty());
        let found = self
            .store
            .deliveries(&states, peer, limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: found.into_iter().map(to_proto).collect(),
        }))
    }

    async fn retry_deliveries(
        &self,
        request: Request<pb::RetryDeliveriesRequest>,
    ) -> Result<Response<pb::RetryDeliveriesResponse>, Status> {
        corridor_runtime::auth::require_admin("retry deliveries to peer nodes")?;
        let req = request.into_inner();
        if req.ids.is_empty() && !req.all_parked {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "name the deliveries to retry (ids), or retry every parked one (all_parked)",
                )
                .at("ids"),
            )
            .into());
        }
        if !req.ids.is_empty() && req.all_parked {
            return Err(ApiError::Invalid(
                Issue::new("invalid", "give ids or all_parked, not both").at("all_parked"),
            )
            .into());
        }
        let peer = Some(req.peer.as_str()).filter(|p| !p.is_empty());
        let retried = self
            .store
            .unpark(&req.ids, peer)
            .await
            .map_err(ApiError::from)?;
        if let Some(federation) = &self.federation {
            federation.queued.notify_waiters();
        }
        tracing::info!(retried, "parked deliveries put back");
        Ok(Response::new(pb::RetryDeliveriesResponse {
            retried: i64::try_from(retried).unwrap_or(i64::MAX),
        }))
    }
}
