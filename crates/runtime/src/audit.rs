//! The audit trail: a FHIR AuditEvent for every access, after IHE BALP.
//!
//! Each service reports what a caller did ([`Record`]: the action, the
//! FHIR interaction or operation, the resources and patients it touched, the
//! query, the outcome) to its [`Audit`]. The AuditEvents themselves live in
//! one place, the identity service's store, so that "who has seen this
//! person's record" is one search (`AuditEvent?patient=Patient/<id>`,
//! `agent`, `date`). Identity writes its own directly ([`StoreAudit`]); the
//! other services send theirs with the caller's token (`RecordAudit`), and
//! identity names the agent from that token, so no caller can write an
//! event in another's name.
//!
//! An access is audited before its answer is returned: when the event
//! cannot be written, a read or search returns nothing and fails
//! UNAVAILABLE. A write is recorded after it commits; if that fails, the
//! caller is told the change was stored but not audited (see the note in
//! `docs/architecture.md`).

use std::future::Future;
use std::pin::Pin;

use corridor_fhir::{Issue, Validated};
use serde_json::{Value, json};

use crate::ApiError;
use crate::auth::Caller;

/// The code system of the client id in an agent's identifier.
pub const CLIENT_SYSTEM: &str = "urn:corridor:client";
const INTERACTION_SYSTEM: &str = "http://hl7.org/fhir/restful-interaction";
pub const OPERATION_SYSTEM: &str = "urn:corridor:operation";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// How an access ended (AuditEvent.outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `0`: it succeeded.
    Success,
    /// `4`: it was refused (bad input, not allowed, not there).
    Refused,
    /// `8`: the node failed.
    Failed,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::Refused => "4",
            Self::Failed => "8",
        }
    }

    /// The outcome of an access that ended with `result`.
    pub fn of<T>(result: &Result<T, ApiError>) -> Self {
        use corridor_store::StoreError;
        match result {
            Ok(_) => Self::Success,
            Err(
                ApiError::Unavailable(_)
                | ApiError::Store(
                    StoreError::Unavailable(_)
                    | StoreError::Unwitnessed(_)
                    | StoreError::Database(_)
                    | StoreError::Migration(_),
                ),
            ) => Self::Failed,
            Err(_) => Self::Refused,
        }
    }
}

/// What a caller did, as a service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// C, R, U, D or E (AuditEvent.action).
    pub action: &'static str,
    /// The FHIR interaction (`read`, `search-type`, …) or operation
    /// (`$match`, …) it was.
    pub subtype: String,
    /// The resources it touched, as `Type/id`; Patients among them are its
    /// patients.
    pub entities: Vec<String>,
    /// A search's query, as `Type?name=value&…`.
    pub query: Option<String>,
    pub outcome: Outcome,
    /// What went wrong, for a refused or failed access.
    pub outcome_text: Option<String>,
}

impl Record {
    pub fn new(action: &'static str, subtype: impl Into<String>) -> Self {
        Self {
            action,
            subtype: subtype.into(),
            entities: Vec::new(),
            query: None,
            outcome: Outcome::Success,
            outcome_text: None,
        }
    }

    /// Add `reference` (`Type/id`) once; one without an id adds nothing.
    pub fn entity(&mut self, reference: impl Into<String>) {
        let reference = reference.into();
        let has_id = reference
            .split_once('/')
            .is_some_and(|(t, id)| !t.is_empty() && !id.trim().is_empty());
        if has_id && !self.entities.contains(&reference) {
            self.entities.push(reference);
        }
    }

    /// Add the Patient a resource (FHIR JSON) is about, if it names one in
    /// `subject`, `patient` or `for`, or is one.
    pub fn patient_of(&mut self, resource: &Value) {
        if resource["resourceType"] == "Patient"
            && let Some(id) = resource["id"].as_str()
        {
            self.entity(format!("Patient/{id}"));
        }
        for element in ["subject", "patient", "for"] {
            if let Some(reference) = resource[element]["reference"].as_str()
                && reference.starts_with("Patient/")
            {
                self.entity(reference.to_owned());
            }
        }
    }

    /// Set the outcome from how the access ended.
    pub fn ended<T>(mut self, result: &Result<T, ApiError>) -> Self {
        self.outcome = Outcome::of(result);
        if let Err(err) = result {
            self.outcome_text = Some(err.to_string());
        }
        self
    }
}

/// A future returned by [`Audit::record`].
pub type Recording<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;

/// Where a service's accesses are recorded.
pub trait Audit: Send + Sync + std::fmt::Debug {
    /// Record `record` of the current caller's access.
    fn record(&self, record: Record) -> Recording<'_>;

    /// Record `record` of a write about to commit (see
    /// [`corridor_store::witness`]): an audit kept in the writing service's
    /// own store hands the AuditEvent back, to be written in the write's
    /// transaction; one kept elsewhere records it now and hands back
    /// nothing.
    fn record_within(&self, record: Record) -> RecordingWithin<'_>;
}

/// A future returned by [`Audit::record_within`].
pub type RecordingWithin<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Validated>, ApiError>> + Send + 'a>>;

/// The AuditEvent of `caller`'s access `record`, observed by the service
/// `source`.
pub fn event(caller: &Caller, record: &Record, source: &str) -> Validated {
    event_of(
        &Agent {
            organization: &caller.organization,
            client_id: &caller.client_id,
            jurisdiction: &caller.jurisdiction,
            break_glass: caller.break_glass.as_deref(),
        },
        record,
        source,
    )
}

/// The code system of a call refused before it reached any FHIR
/// interaction: its gRPC method, `package.Service/Method`.
pub const GRPC_METHOD_SYSTEM: &str = "urn:corridor:grpc-method";

/// The agent name of a call refused for its token: nobody proven.
pub const UNAUTHENTICATED_AGENT: &str = "unauthenticated";

/// The AuditEvent of a call to `method` refused for its token (`why`),
/// observed by `source` of the node in `jurisdiction`. The client the
/// token claimed (unverified) is only told in the description: the agent
/// is [`UNAUTHENTICATED_AGENT`], never a client that was not proven.
pub fn refusal_event(
    method: &str,
    why: &str,
    claimed_client: Option<&str>,
    jurisdiction: &str,
    source: &str,
) -> Validated {
    let mut record = Record::new("E", method.trim_start_matches('/'));
    record.outcome = Outcome::Refused;
    record.outcome_text = Some(match claimed_client {
        Some(client) => format!("{why} (the token claimed client '{client}', unverified)"),
        None => why.to_owned(),
    });
    event_of(
        &Agent {
            organization: "",
            client_id: UNAUTHENTICATED_AGENT,
            jurisdiction,
            break_glass: None,
        },
        &record,
        source,
    )
}

/// Who made an access.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    /// `Organization/<id>`, or empty when not known (a refused client).
    pub organization: &'a str,
    pub client_id: &'a str,
    pub jurisdiction: &'a str,
    pub break_glass: Option<&'a str>,
}

/// The AuditEvent of `agent`'s access `record`, observed by `source`.
pub fn event_of(agent: &Agent<'_>, record: &Record, source: &str) -> Validated {
    let subtype_system = if record.subtype.starts_with('$') {
        OPERATION_SYSTEM
    } else if record.subtype.contains('/') {
        GRPC_METHOD_SYSTEM
    } else {
        INTERACTION_SYSTEM
    };
    let mut entities: Vec<Value> = record
        .entities
        .iter()
        .map(|reference| {
            let is_patient = reference.starts_with("Patient/");
            json!({
                "what": {"reference": reference},
                // audit-entity-type: 1 person, 2 system object.
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                         "code": if is_patient { "1" } else { "2" }},
                // object-role: 1 patient, 4 domain resource.
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                         "code": if is_patient { "1" } else { "4" }},
            })
        })
        .collect();
    if let Some(query) = &record.query {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
            "query": base64(query.as_bytes()),
            "description": query,
        }));
    }
    let purpose = match agent.break_glass {
        Some(reason) => json!([{
            "coding": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}],
            "text": reason,
        }]),
        None => json!([{"coding": [{"system": ACT_REASON, "code": "TREAT"}]}]),
    };
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": subtype_system, "code": record.subtype}],
        "action": record.action,
        "recorded": corridor_store::now_instant(),
        "outcome": record.outcome.code(),
        "purposeOfEvent": purpose,
        "agent": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "IRCP", "display": "information recipient"}]},
            "name": agent.client_id,
            "altId": agent.client_id,
            "requestor": true,
        }],
        "source": {
            "site": agent.jurisdiction,
            "observer": {"display": format!("corridor {source}")},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
    });
    if !agent.organization.is_empty() {
        event["agent"][0]["who"] = json!({"reference": agent.organization});
    }
    if let Some(text) = &record.outcome_text {
        event["outcomeDesc"] = json!(text);
    }
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    let object = match event {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Validated {
        resource_type: "AuditEvent".to_owned(),
        object,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The error of an access whose audit record could not be written.
pub fn unaudited(err: &ApiError) -> ApiError {
    tracing::error!(error = %err, "an audit record could not be written");
    ApiError::Unavailable(Issue::new(
        "transient",
        format!("the access could not be audited, so it was refused ({err}); retry later"),
    ))
}

/// Writes AuditEvents into a store (the identity service's own).
#[derive(Debug, Clone)]
pub struct StoreAudit {
    pub store: corridor_store::Store,
    pub source: &'static str,
}

impl Audit for StoreAudit {
    fn record(&self, record: Record) -> Recording<'_> {
        Box::pin(async move {
            let caller = crate::auth::current()?;
            let event = event(&caller, &record, self.source);
            self.store.create(&event, None, None).await?;
            Ok(())
        })
    }

    fn record_within(&self, record: Record) -> RecordingWithin<'_> {
        Box::pin(async move {
            let caller = crate::auth::current()?;
            Ok(Some(event(&caller, &record, self.source)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_rfc_4648_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Encounter?patient=Patient/1"),
            "RW5jb3VudGVyP3BhdGllbnQ9UGF0aWVudC8x"
        );
    }

    #[test]
    fn an_entity_is_recorded_once_and_only_with_an_id() {
        let mut record = Record::new("R", "read");
        record.entity("Patient/p1");
        record.entity("Patient/p1");
        record.entity("Patient/");
        record.entity("");
        assert_eq!(record.entities, ["Patient/p1"]);
    }

    #[test]
    fn a_refused_access_says_why_and_counts_as_minor_failure() {
        let err: Result<(), ApiError> = Err(ApiError::Forbidden(Issue::new("forbidden", "no")));
        let record = Record::new("R", "read").ended(&err);
        assert_eq!(record.outcome, Outcome::Refused);
        assert!(record.outcome_text.unwrap().contains("no"));
    }
}
