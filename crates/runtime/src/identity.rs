//! A service's link to the identity service: the Patient check every write
//! passes, reads of identity's resources for `_include` and
//! `Patient/$everything`, and the resolution of a Patient id to everyone it
//! was merged with, which searches by Patient follow. Every call has a
//! deadline and carries the current trace context. Used by every service
//! whose records name Patients.

use std::collections::HashMap;
use std::time::Duration;

use crate::ApiError;
use crate::merges::{MergedIds, Merges};
use crate::resources::{Check, Fetch, Guard, Refusal, Resolver};
use corridor_fhir::{Issue, Validated};
use corridor_proto::fhir::v1::Resource;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::identity::v1::{ReadRequest, ResolvePatientRequest};
use serde_json::Value;
use tonic::transport::Channel;

/// The types the identity service owns.
const IDENTITY_TYPES: &[&str] = &["Patient", "Organization", "Practitioner"];

/// A lazily connected client of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityLink {
    client: IdentityServiceClient<Channel>,
    deadline: Duration,
    /// Where each of the service's types names its Patient: (type, element).
    patient_elements: &'static [(&'static str, &'static str)],
}

impl IdentityLink {
    /// A client of the identity service at `url` (e.g.
    /// `http://127.0.0.1:50051`). It connects on first use, so this service
    /// starts even while identity is down, and answers UNAVAILABLE then.
    /// `patient_elements` says where each type names its Patient, e.g.
    /// `("Observation", "subject")`; `tls` is the calling service's.
    pub fn new(
        url: &str,
        deadline: Duration,
        patient_elements: &'static [(&'static str, &'static str)],
        tls: Option<&crate::tls::Tls>,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: IdentityServiceClient::new(crate::link::channel(url, deadline, tls)?),
            deadline,
            patient_elements,
        })
    }

    /// The generated client, for calls this link has no method for.
    pub fn client(&self) -> IdentityServiceClient<Channel> {
        self.client.clone()
    }

    /// How long a call to identity may take.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The current version of `resource_type/id` in identity, or None when
    /// identity does not have it or it was deleted.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<Option<Resource>, ApiError> {
        let mut client = self.client.clone();
        let message = ReadRequest {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
        };
        let answer = crate::link::call(
            "identity",
            &format!("about {resource_type}/{id}"),
            self.deadline,
            message,
            |request| async move { client.read(request).await },
        )
        .await?;
        Ok(answer.and_then(|response| response.resource))
    }

    /// What the Consents recorded in identity decide about the caller's
    /// organization (the token's) for `purpose` (empty: TREAT).
    pub async fn consent_decision(
        &self,
        purpose: &str,
    ) -> Result<corridor_proto::identity::v1::ConsentDecisionResponse, ApiError> {
        let mut client = self.client.clone();
        const WHAT: &str = "what the patients' Consents decide";
        crate::link::call(
            "identity",
            WHAT,
            self.deadline,
            corridor_proto::identity::v1::ConsentDecisionRequest {
                purpose: purpose.to_owned(),
            },
            |request| async move { client.consent_decision(request).await },
        )
        .await?
        .ok_or_else(|| crate::link::unreachable("identity", WHAT, "it refused the request"))
    }

    /// Follow identity's feed of Consent decision changes (no token: it
    /// tells only that something changed). See [`crate::changes`].
    pub async fn watch_decisions(
        &self,
    ) -> Result<tonic::Streaming<corridor_proto::identity::v1::WatchDecisionsResponse>, tonic::Status>
    {
        let mut client = self.client.clone();
        let request = tonic::Request::new(corridor_proto::identity::v1::WatchDecisionsRequest {});
        Ok(
            tokio::time::timeout(self.deadline, client.watch_decisions(request))
                .await
                .map_err(|_| tonic::Status::unavailable("identity did not answer"))??
                .into_inner(),
        )
    }

    /// Patient `id`'s current identity: where its merges lead, and every id
    /// merged into that. None when identity has no such Patient (or it was
    /// deleted).
    pub async fn resolve(&self, id: &str) -> Result<Option<Resolved>, ApiError> {
        let mut client = self.client.clone();
        let message = ResolvePatientRequest {
            patient_id: id.to_owned(),
        };
        let answer = crate::link::call(
            "identity",
            &format!("whom Patient/{id} was merged with"),
            self.deadline,
            message,
            |request| async move { client.resolve_patient(request).await },
        )
        .await?;
        Ok(answer.map(|response| Resolved::new(id, response)))
    }
}

/// A Patient id resolved to its current identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The id the merges from the asked id lead to (the asked id itself
    /// when it was never merged).
    pub current_id: String,
    /// `current_id` first, then every id merged into it, directly or
    /// through others, sorted: one order whichever of them was asked, so a
    /// query built from it is the same query.
    pub merged_ids: Vec<String>,
    /// Patients linked to `current_id` as possibly the same person
    /// (`seealso`), sorted. Searches do not follow links, only merges.
    pub linked_ids: Vec<String>,
}

impl Resolved {
    fn new(asked: &str, answer: corridor_proto::identity::v1::ResolvePatientResponse) -> Self {
        let current_id = Some(answer.current_id)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| asked.to_owned());
        let mut merged: Vec<String> = answer
            .merged_ids
            .into_iter()
            .filter(|m| !m.is_empty() && *m != current_id)
            .collect();
        merged.sort();
        merged.dedup();
        merged.insert(0, current_id.clone());
        let mut linked_ids = answer.linked_ids;
        linked_ids.sort();
        linked_ids.dedup();
        Self {
            current_id,
            merged_ids: merged,
            linked_ids,
        }
    }
}

/// Searches by Patient and a patient's compartment look under every id
/// merged with the one asked; an id identity does not know stands alone.
impl Merges for IdentityLink {
    fn patient_elements(&self) -> &'static [(&'static str, &'static str)] {
        self.patient_elements
    }

    fn merged_ids<'a>(&'a self, id: &'a str) -> MergedIds<'a> {
        Box::pin(async move {
            Ok(match self.resolve(id).await? {
                Some(resolved) => resolved.merged_ids,
                None => vec![id.to_owned()],
            })
        })
    }
}

impl Resolver for IdentityLink {
    fn fetch<'a>(&'a self, resource_type: &'a str, id: &'a str) -> Fetch<'a> {
        Box::pin(async move {
            if IDENTITY_TYPES.contains(&resource_type) {
                self.read(resource_type, id).await
            } else {
                Ok(None)
            }
        })
    }
}

/// Every write that names a Patient must name one the identity registry
/// has. Each distinct Patient is asked about once per request.
impl Guard for IdentityLink {
    fn check<'a>(&'a self, resources: &'a [&'a Validated]) -> Check<'a> {
        Box::pin(async move {
            // Patient id -> (index of the first resource naming it, element).
            let mut wanted: HashMap<String, (usize, String)> = HashMap::new();
            let mut order = Vec::new();
            for (index, resource) in resources.iter().enumerate() {
                let Some(patient) = patient_reference(self.patient_elements, resource)
                    .map_err(|issue| refuse(index, ApiError::Invalid(issue)))?
                else {
                    continue;
                };
                let (id, element) = patient;
                if let std::collections::hash_map::Entry::Vacant(slot) = wanted.entry(id) {
                    order.push(slot.key().clone());
                    slot.insert((index, element));
                }
            }
            // Resolving says whether identity has the Patient without reading
            // (and auditing a read of) its demographics.
            let answers = futures::future::join_all(order.iter().map(|id| self.resolve(id))).await;
            for (id, answer) in order.iter().zip(answers) {
                let (index, element) = &wanted[id];
                match answer {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(refuse(
                            *index,
                            ApiError::Invalid(
                                Issue::new(
                                    "not-found",
                                    format!(
                                        "{element} refers to Patient/{id}, which the identity registry does not have; register the patient first, or correct the reference"
                                    ),
                                )
                                .at(element.clone()),
                            ),
                        ));
                    }
                    Err(err) => return Err(refuse(*index, err)),
                }
            }
            Ok(())
        })
    }
}

fn refuse(index: usize, error: ApiError) -> Refusal {
    Refusal { index, error }
}

/// The id of the Patient `resource` is about, with the element naming it
/// (e.g. `Observation.subject`), or None when it names none. A reference
/// that names a Patient in a way this node cannot check (another server's
/// URL, a contained resource, an identifier alone) is refused.
fn patient_reference(
    patient_elements: &[(&str, &str)],
    resource: &Validated,
) -> Result<Option<(String, String)>, Issue> {
    let Some((_, name)) = patient_elements
        .iter()
        .find(|(t, _)| *t == resource.resource_type)
    else {
        return Ok(None);
    };
    let element = format!("{}.{name}", resource.resource_type);
    let Some(value) = resource.object.get(*name) else {
        return Ok(None);
    };
    let unusable = |why: &str| {
        Issue::new(
            "invalid",
            format!("{element} {why}; refer to a registered Patient as Patient/[id]"),
        )
        .at(element.clone())
    };
    let Some(reference) = value.get("reference").and_then(Value::as_str) else {
        let names_patient = value
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "Patient");
        return if names_patient {
            Err(unusable("has no reference this node can check"))
        } else {
            Ok(None)
        };
    };
    let mut parts = reference.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("Patient"), Some(id), rest)
            if !id.is_empty() && rest.is_none_or(|r| r == "_history") =>
        {
            Ok(Some((id.to_owned(), element)))
        }
        _ if reference.starts_with('#') => Err(unusable("refers to a contained Patient")),
        _ if reference.contains("://") || reference.starts_with("urn:") => Err(unusable(&format!(
            "refers to '{reference}', which is not in this node's registry"
        ))),
        // Another subject type (Group, Device, Location…) is not a Patient.
        _ => Ok(None),
    }
}

/// The keys identity publishes (its `Jwks` RPC), against which the other
/// services verify access tokens.
impl crate::auth::KeySource for IdentityLink {
    fn fetch(&self) -> crate::auth::Fetching<'_> {
        Box::pin(async move {
            let mut client = self.client.clone();
            const WHAT: &str = "for the node's token signing keys";
            let answer = crate::link::call(
                "identity",
                WHAT,
                self.deadline,
                corridor_proto::identity::v1::JwksRequest {},
                |request| async move { client.jwks(request).await },
            )
            .await?
            .ok_or_else(|| crate::link::unreachable("identity", WHAT, "it has none"))?;
            Ok(crate::auth::Published {
                jwks: answer.jwks,
                issuer: answer.issuer,
            })
        })
    }
}

/// Records the calls a service refuses for their token in identity's audit
/// trail (`RecordRefusal`, no token).
#[derive(Debug, Clone)]
pub struct IdentityRefusals {
    pub link: IdentityLink,
    /// The service that refused the calls.
    pub source: &'static str,
}

impl crate::auth::Refusals for IdentityRefusals {
    fn record(&self, refusal: crate::auth::Refusal) -> crate::auth::Reporting<'_> {
        Box::pin(async move {
            // Sent with no token: there is no caller (the call was refused).
            let mut client = self.link.client.clone();
            const WHAT: &str = "to record a refused call";
            let message = corridor_proto::identity::v1::RecordRefusalRequest {
                method: refusal.method,
                reason: refusal.reason,
                claimed_client: refusal.claimed_client.unwrap_or_default(),
                source: self.source.to_owned(),
            };
            crate::link::call(
                "identity",
                WHAT,
                self.link.deadline,
                message,
                |request| async move { client.record_refusal(request).await },
            )
            .await?
            .map(|_| ())
            .ok_or_else(|| crate::link::unreachable("identity", WHAT, "it refused the record"))
        })
    }
}

/// Records a service's accesses in identity's audit trail (`RecordAudit`),
/// as the caller: identity names the agent from the caller's token.
#[derive(Debug, Clone)]
pub struct IdentityAudit {
    pub link: IdentityLink,
    /// The service that observed the accesses.
    pub source: &'static str,
}

impl crate::audit::Audit for IdentityAudit {
    fn record(&self, record: crate::audit::Record) -> crate::audit::Recording<'_> {
        Box::pin(async move {
            let mut client = self.link.client.clone();
            const WHAT: &str = "to record the access in the audit trail";
            let message = corridor_proto::identity::v1::RecordAuditRequest {
                action: record.action.to_owned(),
                subtype: record.subtype,
                entities: record.entities,
                query: record.query.unwrap_or_default(),
                outcome: record.outcome.code().to_owned(),
                outcome_text: record.outcome_text.unwrap_or_default(),
                source: self.source.to_owned(),
            };
            crate::link::call(
                "identity",
                WHAT,
                self.link.deadline,
                message,
                |request| async move { client.record_audit(request).await },
            )
            .await?
            .map(|_| ())
            .ok_or_else(|| crate::link::unreachable("identity", WHAT, "it refused the record"))
        })
    }

    fn record_within(&self, record: crate::audit::Record) -> crate::audit::RecordingWithin<'_> {
        // Kept in identity: recorded before the write commits here, so a
        // write whose record identity cannot take is rolled back.
        Box::pin(async move {
            self.record(record).await?;
            Ok(None)
        })
    }
}
