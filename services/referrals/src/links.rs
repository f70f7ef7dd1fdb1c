//! What the referrals service asks other services: identity for the
//! Patient and Organizations of a referral (through the shared
//! [`IdentityLink`]), and encounters for the outcome a completed referral
//! points at. Every call has a deadline and carries the trace context.

use std::time::Duration;

use corridor_fhir::{Issue, Validated};
use corridor_proto::encounters::v1::ReadRequest;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_runtime::ApiError;
use corridor_runtime::identity::IdentityLink;
use corridor_runtime::link;
use corridor_runtime::resources::{Check, Guard};
use tonic::transport::Channel;

/// The types the encounters service owns: what a referral's outcome may be.
pub const OUTCOME_TYPES: &[&str] = &[
    "Encounter",
    "Observation",
    "Condition",
    "Communication",
    "Immunization",
    "AllergyIntolerance",
    "MedicationStatement",
    "DocumentReference",
    "Procedure",
    "DiagnosticReport",
    "MedicationRequest",
    "CarePlan",
    "Goal",
    "ImagingStudy",
    "Claim",
    "ExplanationOfBenefit",
];

/// A lazily connected client of the encounters service.
#[derive(Debug, Clone)]
pub struct EncountersLink {
    client: EncountersServiceClient<Channel>,
    deadline: Duration,
}

impl EncountersLink {
    pub fn new(
        url: &str,
        deadline: Duration,
        tls: Option<&corridor_runtime::tls::Tls>,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: EncountersServiceClient::new(link::channel(url, deadline, tls)?),
            deadline,
        })
    }

    /// The generated client, for calls this link has no method for.
    pub fn client(&self) -> EncountersServiceClient<Channel> {
        self.client.clone()
    }

    /// How long a call to encounters may take.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Whether encounters holds `resource_type/id` (current, not deleted).
    pub async fn exists(&self, resource_type: &str, id: &str) -> Result<bool, ApiError> {
        let mut client = self.client.clone();
        let message = ReadRequest {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
        };
        let answer = link::call(
            "encounters",
            &format!("about {resource_type}/{id}"),
            self.deadline,
            message,
            |request| async move { client.read(request).await },
        )
        .await?;
        Ok(answer.is_some())
    }
}

/// The generic writes: Patients checked with identity, and Tasks refused,
/// because a Task's status moves only through the state machine.
#[derive(Debug)]
pub struct ReferralsGuard {
    pub identity: IdentityLink,
}

fn task_refused() -> ApiError {
    ApiError::Invalid(
        Issue::new(
            "business-rule",
            "a referral Task is made by CreateReferral and changed by Transition, which enforce the referral state machine",
        )
        .at("Task"),
    )
}

impl Guard for ReferralsGuard {
    fn check<'a>(&'a self, resources: &'a [&'a Validated]) -> Check<'a> {
        Box::pin(async move {
            if let Some(index) = resources.iter().position(|r| r.resource_type == "Task") {
                return Err(corridor_runtime::resources::Refusal {
                    index,
                    error: task_refused(),
                });
            }
            // A partner writes only referrals it takes part in, so that none
            // is made in another organization's name (the operator may).
            let caller = corridor_runtime::auth::current()
                .map_err(|error| corridor_runtime::resources::Refusal { index: 0, error })?;
            if !caller.admin {
                for (index, resource) in resources.iter().enumerate() {
                    if !takes_part(resource, &caller.organization) {
                        return Err(corridor_runtime::resources::Refusal {
                            index,
                            error: ApiError::Forbidden(
                                Issue::new(
                                    "forbidden",
                                    format!(
                                        "a ServiceRequest written by {} must name it as requester or performer",
                                        caller.organization
                                    ),
                                )
                                .at("ServiceRequest.requester"),
                            ),
                        });
                    }
                }
            }
            self.identity.check(resources).await
        })
    }

    fn may_delete(&self, resource_type: &str) -> Result<(), ApiError> {
        if resource_type == "Task" {
            Err(task_refused())
        } else {
            Ok(())
        }
    }
}

/// Whether `resource` names `organization` as requester or performer.
fn takes_part(resource: &Validated, organization: &str) -> bool {
    let named = |value: Option<&serde_json::Value>| {
        value.is_some_and(|v| {
            v["reference"] == organization
                || v.as_array()
                    .is_some_and(|a| a.iter().any(|p| p["reference"] == organization))
        })
    };
    named(resource.object.get("requester")) || named(resource.object.get("performer"))
}

/// Who may see and change referrals: only the organizations that take part
/// in them (requester, performer, owner). Everyone else's searches do not
/// find them, and reads answer as if they did not exist.
#[derive(Debug, Clone, Default)]
pub struct ReferralsPolicy;

/// The referrals `organization` takes part in, of either type.
pub fn parties_of(organization: &str) -> corridor_store::Access {
    let refers = |param: &'static str| corridor_store::Condition::Refers {
        param,
        references: vec![organization.to_owned()],
    };
    corridor_store::Access {
        any_of: vec![refers("requester"), refers("performer"), refers("owner")],
        none_of: Vec::new(),
    }
}

impl corridor_runtime::resources::Policy for ReferralsPolicy {
    fn readable<'a>(
        &'a self,
        caller: &'a corridor_runtime::auth::Caller,
        _resource_type: &'a str,
    ) -> corridor_runtime::resources::Deciding<'a> {
        Box::pin(async move { Ok(Some(parties_of(&caller.organization))) })
    }

    fn writable(
        &self,
        caller: &corridor_runtime::auth::Caller,
        _resource_type: &str,
    ) -> Option<corridor_store::Access> {
        Some(parties_of(&caller.organization))
    }
}
