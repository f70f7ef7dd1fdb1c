//! The encounters service's link to the referrals service, for the
//! patient's referrals in `Patient/$everything`. Calls have a deadline and
//! carry the trace context.

use std::time::Duration;

use corridor_proto::referrals::v1::PatientReferralsRequest;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_runtime::ApiError;
use corridor_runtime::link;
use corridor_store::Stored;
use corridor_store::compartment::Slice;
use serde_json::Value;
use tonic::transport::Channel;

/// A lazily connected client of the referrals service.
#[derive(Debug, Clone)]
pub struct ReferralsLink {
    client: ReferralsServiceClient<Channel>,
    deadline: Duration,
}

impl ReferralsLink {
    pub fn new(
        url: &str,
        deadline: Duration,
        tls: Option<&corridor_runtime::tls::Tls>,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: ReferralsServiceClient::new(link::channel(url, deadline, tls)?),
            deadline,
        })
    }

    /// Follow referrals' feed of changes (no token: it tells only that
    /// something changed). See `corridor_runtime::changes`.
    pub async fn watch_participation(
        &self,
    ) -> Result<
        tonic::Streaming<corridor_proto::referrals::v1::WatchParticipationResponse>,
        tonic::Status,
    > {
        let mut client = self.client.clone();
        let request =
            tonic::Request::new(corridor_proto::referrals::v1::WatchParticipationRequest {});
        Ok(
            tokio::time::timeout(self.deadline, client.watch_participation(request))
                .await
                .map_err(|_| tonic::Status::unavailable("referrals did not answer"))??
                .into_inner(),
        )
    }

    /// The Patients of the referrals the caller's organization takes part in.
    pub async fn referred_patients(&self) -> Result<Vec<String>, ApiError> {
        let mut client = self.client.clone();
        const WHAT: &str = "for the patients of the caller's referrals";
        Ok(link::call(
            "referrals",
            WHAT,
            self.deadline,
            corridor_proto::referrals::v1::ReferredPatientsRequest {},
            |request| async move { client.referred_patients(request).await },
        )
        .await?
        .ok_or_else(|| link::unreachable("referrals", WHAT, "it refused the request"))?
        .patient_ids)
    }

    /// One page of the patient's ServiceRequests and Tasks.
    pub async fn of_patient(
        &self,
        patient_id: &str,
        since: &str,
        count: i32,
        page_token: &str,
    ) -> Result<Slice, ApiError> {
        let mut client = self.client.clone();
        let message = PatientReferralsRequest {
            patient_id: patient_id.to_owned(),
            since: since.to_owned(),
            count,
            page_token: page_token.to_owned(),
        };
        const WHAT: &str = "for the patient's referrals";
        let bundle = link::call(
            "referrals",
            WHAT,
            self.deadline,
            message,
            |request| async move { client.patient_referrals(request).await },
        )
        .await?
        // This service checked the request already; a refusal is a fault
        // of the other side, reported as before.
        .ok_or_else(|| link::unreachable("referrals", WHAT, "it refused the request"))?
        .bundle
        .unwrap_or_default();
        let value: Value = serde_json::from_str(&bundle.json).unwrap_or(Value::Null);
        let entries = value["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let resource = &e["resource"];
                Some(Stored {
                    resource_type: resource["resourceType"].as_str()?.to_owned(),
                    id: resource["id"].as_str()?.to_owned(),
                    version: resource["meta"]["versionId"].as_str()?.parse().ok()?,
                    last_updated: resource["meta"]["lastUpdated"].as_str()?.to_owned(),
                    deleted: false,
                    json: resource.to_string(),
                })
            })
            .collect();
        Ok(Slice {
            entries,
            total: bundle.total,
            next_token: Some(bundle.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}
