//! Who may see and change which clinical records: the encounters service's
//! one place for that decision (its [`Policy`]).
//!
//! Every record is stamped, when written, with the organization that wrote
//! it: a `meta.tag` of [`AUTHOR_SYSTEM`] whose code is `Organization/<id>`,
//! searchable as `_tag`. A client cannot forge it; whatever tag of that
//! system it sends is replaced.
//!
//! An organization may **read** a record when:
//! - it wrote it; or
//! - it takes part (requester or owner) in a referral for the record's
//!   Patient that is not cancelled (asked of the referrals service); or
//! - an active Consent of the Patient permits it, or its kind, for the
//!   purpose (asked of identity);
//! - and in every case no active Consent of the Patient denies it: a
//!   denial always wins.
//!
//! An emergency read (**break-glass**, the call states a reason) lifts the
//! relationship requirement for a healthcare provider's organization, but
//! not a denial. It is refused to anyone else.
//!
//! Only the organization that wrote a record may **change** (update,
//! delete) it. Searches apply the same rule inside their SQL, so a search
//! never counts, pages or returns what the caller may not read.
//!
//! Identity's and referrals' answers are cached per organization while
//! their change feeds are followed ([`Decisions`], see
//! `corridor_runtime::changes`): a Consent, Organization or referral change
//! drops them within the feed's delivery time.

use corridor_fhir::{Issue, Validated};
use corridor_proto::identity::v1::ConsentDecisionResponse;
use corridor_runtime::ApiError;
use corridor_runtime::auth::Caller;
use corridor_runtime::changes::Cached;
use corridor_runtime::identity::IdentityLink;
use corridor_runtime::resources::{Deciding, Policy};
use corridor_store::{Access, Condition};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::referrals::ReferralsLink;

/// The code system of the tag that says which organization wrote a record.
pub const AUTHOR_SYSTEM: &str = "urn:corridor:author-organization";
/// The search parameter over `meta.tag` on every type of the service.
pub const TAG_PARAM: &str = "_tag";
/// The parameter of every type that names the record's Patient.
pub const PATIENT_PARAM: &str = "patient";

/// How long a cached decision may be used at most, even while its feed is
/// followed (a backstop should a notice be lost).
pub const DECISION_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Identity's Consent decisions and referrals' referred patients, cached
/// by organization while their change feeds are followed.
#[derive(Debug)]
pub struct Decisions {
    pub consent: Arc<Cached<ConsentDecisionResponse>>,
    pub referred: Arc<Cached<Vec<String>>>,
}

impl Default for Decisions {
    fn default() -> Self {
        Self {
            consent: Arc::new(Cached::new(DECISION_TTL)),
            referred: Arc::new(Cached::new(DECISION_TTL)),
        }
    }
}

/// The encounters service's policy.
#[derive(Debug, Clone)]
pub struct EncountersPolicy {
    pub identity: IdentityLink,
    pub referrals: Option<ReferralsLink>,
    pub decisions: Arc<Decisions>,
}

fn written_by(organization: &str) -> Condition {
    Condition::Token {
        param: TAG_PARAM,
        system: AUTHOR_SYSTEM.to_owned(),
        code: organization.to_owned(),
    }
}

fn patients(ids: &[String]) -> Condition {
    Condition::Refers {
        param: PATIENT_PARAM,
        references: ids.iter().map(|id| format!("Patient/{id}")).collect(),
    }
}

impl EncountersPolicy {
    /// What `caller` may read, of any of the service's types.
    pub async fn access(&self, caller: &Caller) -> Result<Access, ApiError> {
        let decision = self
            .decisions
            .consent
            .get_or_fetch(&caller.organization, || self.identity.consent_decision(""))
            .await?;
        let denied = patients(&decision.denied_patient_ids);
        if let Some(reason) = &caller.break_glass {
            if !decision.provider {
                return Err(ApiError::Forbidden(Issue::new(
                    "forbidden",
                    format!(
                        "break-glass is for healthcare providers' organizations (Organization.type prov); {} is not one",
                        caller.organization
                    ),
                )
                .at(corridor_runtime::auth::BREAK_GLASS)));
            }
            tracing::warn!(client = %caller.client_id, organization = %caller.organization, %reason, "break-glass read");
            return Ok(Access {
                any_of: vec![Condition::All],
                none_of: vec![denied],
            });
        }
        let mut permitted = decision.permitted_patient_ids.clone();
        if let Some(referrals) = &self.referrals {
            let referred = self
                .decisions
                .referred
                .get_or_fetch(&caller.organization, || referrals.referred_patients())
                .await?;
            permitted.extend(referred.iter().cloned());
        }
        permitted.sort();
        permitted.dedup();
        Ok(Access {
            any_of: vec![written_by(&caller.organization), patients(&permitted)],
            none_of: vec![denied],
        })
    }
}

impl Policy for EncountersPolicy {
    fn readable<'a>(&'a self, caller: &'a Caller, _resource_type: &'a str) -> Deciding<'a> {
        Box::pin(async move { Ok(Some(self.access(caller).await?)) })
    }

    fn writable(&self, caller: &Caller, _resource_type: &str) -> Option<Access> {
        Some(Access {
            any_of: vec![written_by(&caller.organization)],
            none_of: Vec::new(),
        })
    }

    fn stamp(&self, caller: &Caller, resource: &mut Validated) {
        let meta = resource.object.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let Some(meta) = meta.as_object_mut() else {
            return;
        };
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if !tags.is_array() {
            *tags = json!([]);
        }
        if let Some(tags) = tags.as_array_mut() {
            tags.retain(|t| t.get("system").and_then(Value::as_str) != Some(AUTHOR_SYSTEM));
            tags.push(json!({
                "system": AUTHOR_SYSTEM,
                "code": caller.organization,
                "display": "written by",
            }));
        }
    }
}
