//! Making a referral, moving it along the state machine, and listing a
//! patient's referrals (those of every Patient merged with them too).

use corridor_fhir::{Issue, Validated};
use corridor_proto::fhir::v1 as fhir;
use corridor_proto::referrals::v1::{PatientReferralsRequest, TransitionRequest};
use corridor_runtime::ApiError;
use corridor_runtime::identity::IdentityLink;
use corridor_runtime::merges::{Merges, patient_compartment};
use corridor_runtime::resources::{Guard, Resources};
use corridor_store::{Store, TxRequest, TxResult, WriteResult};
use serde_json::{Map, Value, json};

use crate::federation::send::may_refer;
use crate::federation::{CrossBorder, Federation, Side, peer_organization};
use crate::links::{EncountersLink, OUTCOME_TYPES};
use crate::workflow::{self, Party, Refused};

const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";
const SERVICE_REQUEST_URL: &str = "urn:uuid:00000000-0000-4000-8000-00000000005e";

/// The `reference` of `value`, when it names an Organization.
fn organization(value: Option<&Value>) -> Option<String> {
    value
        .and_then(|v| v.get("reference"))
        .and_then(Value::as_str)
        .filter(|r| {
            r.strip_prefix("Organization/")
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        })
        .map(str::to_owned)
}

/// Store a ServiceRequest and its fulfilment Task together.
pub async fn create(
    resources: &Resources,
    identity: &IdentityLink,
    federation: Option<&Federation>,
    caller: &str,
    json: &str,
    draft: bool,
    key: Option<&str>,
) -> Result<TxResult, ApiError> {
    let request = resources.validate(json)?;
    if request.resource_type != "ServiceRequest" {
        return Err(
            Issue::new("invalid", "a referral starts from a ServiceRequest")
                .at("resourceType")
                .into(),
        );
    }
    let sr = &request.object;
    let requester = organization(sr.get("requester")).ok_or_else(|| {
        Issue::new(
            "required",
            "ServiceRequest.requester must be the referring Organization (Organization/<id>)",
        )
        .at("ServiceRequest.requester")
    })?;
    let owner = organization(sr.get("performer").and_then(|p| p.get(0))).ok_or_else(|| {
        Issue::new(
            "required",
            "ServiceRequest.performer[0] must be the Organization asked to perform it (Organization/<id>)",
        )
        .at("ServiceRequest.performer")
    })?;
    if requester != caller {
        return Err(ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!("only the requester refers: the ServiceRequest's requester is {requester}, but you act for {caller}"),
            )
            .at("ServiceRequest.requester"),
        ));
    }
    let expected_status = if draft { "draft" } else { "active" };
    if sr.get("status").and_then(Value::as_str) != Some(expected_status) {
        return Err(Issue::new(
            "invalid",
            format!(
                "a {} referral's ServiceRequest.status is \"{expected_status}\"",
                if draft { "draft" } else { "new" }
            ),
        )
        .at("ServiceRequest.status")
        .into());
    }
    if sr.get("subject").is_none() {
        return Err(Issue::new(
            "required",
            "ServiceRequest.subject must name the referred Patient",
        )
        .at("ServiceRequest.subject")
        .into());
    }
    // The Patient (and nothing else) through the shared check; then both
    // Organizations must be registered.
    identity
        .check(&[&request])
        .await
        .map_err(|refusal| refusal.error)?;
    let mut performer = Value::Null;
    for (element, org) in [
        ("ServiceRequest.requester", &requester),
        ("ServiceRequest.performer", &owner),
    ] {
        let id = org.trim_start_matches("Organization/");
        let Some(found) = identity.read("Organization", id).await? else {
            return Err(Issue::new(
                "not-found",
                format!("{element} names {org}, which the identity registry does not have"),
            )
            .at(element)
            .into());
        };
        performer = serde_json::from_str(&found.json).unwrap_or_default();
    }
    // A performer from a peer's directory makes the referral cross-border:
    // it leaves this node only under the patient's Consent.
    let cross_border = match peer_organization(&performer) {
        None => None,
        Some((peer, _)) => {
            let Some(federation) = federation else {
                return Err(ApiError::Conflict(
                    Issue::new(
                        "business-rule",
                        format!("{owner} belongs to node {peer}, and this node does not federate"),
                    )
                    .at("ServiceRequest.performer"),
                ));
            };
            if performer["active"] == false {
                return Err(ApiError::Conflict(
                    Issue::new(
                        "business-rule",
                        format!("{owner} of node {peer} no longer accepts cross-border referrals"),
                    )
                    .at("ServiceRequest.performer"),
                ));
            }
            let patient_id = sr["subject"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .unwrap_or_default();
            let consent = may_refer(federation, patient_id, &owner, &peer).await?;
            Some(CrossBorder {
                peer,
                side: Side::Requesting,
                consent,
                peer_sequence: 0,
            })
        }
    };
    let now = corridor_store::now_instant();
    let task = json!({
        "resourceType": "Task",
        "status": if draft { "draft" } else { "requested" },
        "intent": "order",
        "code": { "coding": [{ "system": TASK_CODE, "code": "fulfill" }] },
        "focus": { "reference": SERVICE_REQUEST_URL },
        "for": sr.get("subject").cloned().unwrap_or(Value::Null),
        "authoredOn": now,
        "lastModified": now,
        "requester": { "reference": requester },
        "owner": { "reference": owner },
    });
    let mut task = task;
    if let Some(marker) = &cross_border {
        task["extension"] = json!([marker.extension()]);
    }
    let task = resources.validate(&task.to_string())?;
    let fingerprint = json!(["referral", draft, json]).to_string();
    Ok(resources
        .store()
        .transaction_as(
            &[
                TxRequest::Create {
                    full_url: Some(SERVICE_REQUEST_URL.to_owned()),
                    resource: request,
                    if_none_exist: None,
                    id: None,
                },
                TxRequest::Create {
                    full_url: None,
                    resource: task,
                    if_none_exist: None,
                    id: None,
                },
            ],
            key,
            Some(&fingerprint),
        )
        .await?)
}

/// Move a referral's Task to `request.status`.
pub async fn transition(
    resources: &Resources,
    encounters: &EncountersLink,
    caller: &str,
    request: &TransitionRequest,
    key: Option<&str>,
) -> Result<WriteResult, ApiError> {
    let store = resources.store();
    if request.if_match.trim().is_empty() {
        return Err(Issue::new(
            "required",
            "if_match is required: the Task version you last saw, so that a transition never overwrites someone else's",
        )
        .at("if_match")
        .into());
    }
    let fingerprint = json!([
        "transition",
        request.status.trim(),
        request.reason.trim(),
        request.outputs
    ])
    .to_string();
    if let Some(key) = key
        && let Some(replay) = store
            .recorded_update(
                "Task",
                &request.task_id,
                Some(&request.if_match),
                key,
                &fingerprint,
            )
            .await?
    {
        return Ok(replay);
    }
    let current = store.read("Task", &request.task_id).await?;
    // A stale version is refused before anything else is judged, so the
    // caller learns first that the referral moved on without them.
    let raw = request.if_match.trim();
    let seen = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    match seen.parse::<i64>() {
        Ok(seen) if seen == current.version => {}
        Ok(seen) => {
            return Err(corridor_store::StoreError::VersionConflict {
                resource_type: "Task".to_owned(),
                id: current.id.clone(),
                expected: seen,
                current: current.version,
            }
            .into());
        }
        Err(_) => {
            return Err(Issue::new(
                "invalid",
                format!("if_match must be a version such as 3 or W/\"3\", not '{raw}'"),
            )
            .at("if_match")
            .into());
        }
    }
    let task: Map<String, Value> = serde_json::from_str(&current.json).unwrap_or_default();
    let from = task
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let to = request.status.trim();
    let party = if organization(task.get("owner")).as_deref() == Some(caller) {
        Party::Owner
    } else if organization(task.get("requester")).as_deref() == Some(caller) {
        Party::Requester
    } else {
        return Err(ApiError::Forbidden(
            Issue::new(
                "forbidden",
                format!(
                    "{caller} is neither the requester nor the owner of Task/{}",
                    current.id
                ),
            )
            .at(corridor_runtime::auth::AUTHORIZATION),
        ));
    };
    if let Some(marker) = CrossBorder::of(&Value::Object(task.clone())) {
        if to == "on-hold" {
            return Err(ApiError::Conflict(
                Issue::new(
                    "business-rule",
                    format!(
                        "Task/{} is a cross-border referral shared with node {}; on-hold is a local pause that is not shared, so it cannot be put on hold",
                        current.id, marker.peer
                    ),
                )
                .at("status"),
            ));
        }
        let theirs = match marker.side {
            Side::Requesting => Party::Owner,
            Side::Performing => Party::Requester,
        };
        if party == theirs {
            return Err(ApiError::Forbidden(
                Issue::new(
                    "forbidden",
                    format!(
                        "Task/{}'s {} is on node {}: it moves the referral there, and the move reaches this node",
                        current.id,
                        party.as_str(),
                        marker.peer
                    ),
                )
                .at("status"),
            ));
        }
    }
    let before_hold = if from == "on-hold" && current.version > 1 {
        store
            .vread("Task", &current.id, &(current.version - 1).to_string())
            .await
            .ok()
            .and_then(|v| serde_json::from_str::<Value>(&v.json).ok())
            .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned))
    } else {
        None
    };
    match workflow::check(&from, to, party, before_hold.as_deref()) {
        Ok(()) => {}
        Err(Refused::NotAllowed { allowed }) => {
            let next = if allowed.is_empty() {
                "nothing: it is final for you".to_owned()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::Conflict(
                Issue::new(
                    "business-rule",
                    format!(
                        "Task/{} is {from}; as its {} you may move it to {next}, not to '{to}'",
                        current.id,
                        party.as_str()
                    ),
                )
                .at("status"),
            ));
        }
        Err(Refused::WrongParty { needs }) => {
            let who: Vec<&str> = needs.iter().map(|p| p.as_str()).collect();
            return Err(ApiError::Forbidden(
                Issue::new(
                    "forbidden",
                    format!(
                        "moving Task/{} from {from} to {to} is for its {}; you are its {}",
                        current.id,
                        who.join(" or "),
                        party.as_str()
                    ),
                )
                .at("status"),
            ));
        }
    }
    let reason = request.reason.trim();
    if workflow::needs_reason(to) && reason.is_empty() {
        return Err(
            Issue::new("required", format!("a referral is {to} only with a reason"))
                .at("reason")
                .into(),
        );
    }
    if to == "completed" && request.outputs.is_empty() {
        return Err(Issue::new(
            "required",
            "a referral is completed with its outcome: outputs such as Encounter/<id> and DocumentReference/<id>",
        )
        .at("outputs")
        .into());
    }
    if to != "completed" && !request.outputs.is_empty() {
        return Err(Issue::new(
            "invalid",
            "outputs are given when the referral is completed",
        )
        .at("outputs")
        .into());
    }
    for (i, output) in request.outputs.iter().enumerate() {
        let at = format!("outputs[{i}]");
        let (kind, id) = output
            .split_once('/')
            .filter(|(kind, id)| {
                OUTCOME_TYPES.contains(kind) && !id.is_empty() && !id.contains('/')
            })
            .ok_or_else(|| {
                Issue::new(
                    "invalid",
                    format!(
                        "'{output}' is not a reference to the encounters service's records ({})",
                        OUTCOME_TYPES.join(", ")
                    ),
                )
                .at(at.clone())
            })?;
        if !encounters.exists(kind, id).await? {
            return Err(Issue::new(
                "not-found",
                format!("{output} does not exist in the encounters service"),
            )
            .at(at)
            .into());
        }
    }
    let mut next = task.clone();
    next.insert("status".into(), json!(to));
    next.insert("lastModified".into(), json!(corridor_store::now_instant()));
    if workflow::needs_reason(to) {
        next.insert("statusReason".into(), json!({ "text": reason }));
    } else {
        next.remove("statusReason");
    }
    if !request.outputs.is_empty() {
        let mut outputs = next
            .get("output")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for output in &request.outputs {
            outputs.push(json!({
                "type": { "text": "outcome" },
                "valueReference": { "reference": output },
            }));
        }
        next.insert("output".into(), Value::Array(outputs));
    }
    next.remove("meta");
    let validated: Validated = resources.validate(&Value::Object(next).to_string())?;
    Ok(store
        .update_as(
            "Task",
            &current.id,
            &validated,
            Some(&request.if_match),
            key,
            &fingerprint,
        )
        .await?)
}

/// The Patients of the referrals `organization` takes part in, cancelled
/// ones excepted, sorted.
pub async fn referred_patients(store: &Store, organization: &str) -> Result<Vec<String>, ApiError> {
    let access = crate::links::parties_of(organization);
    let params = vec![("_count".to_owned(), "1000".to_owned())];
    let mut patients = std::collections::BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .search_visible("Task", &params, token.as_deref(), Some(&access))
            .await?;
        for entry in page.bundle["entry"].as_array().into_iter().flatten() {
            let task = &entry["resource"];
            if task["status"] == "cancelled" {
                continue;
            }
            if let Some(id) = task["for"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
            {
                patients.insert(id.to_owned());
            }
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(patients.into_iter().collect()),
        }
    }
}

/// The ServiceRequests and Tasks of one Patient, as a searchset Bundle:
/// those filed under any id of the person, as identity resolves it (see
/// [`corridor_runtime::merges`]); a Patient identity does not know stands
/// alone. Only the referrals the caller's organization takes part in.
pub async fn of_patient(
    store: &Store,
    identity: &IdentityLink,
    request: &PatientReferralsRequest,
    access: Option<&corridor_store::Access>,
) -> Result<fhir::Bundle, ApiError> {
    let id = request.patient_id.trim();
    if id.is_empty() {
        return Err(Issue::new("required", "patient_id is required")
            .at("patient_id")
            .into());
    }
    let person = identity.merged_ids(id).await?;
    let slice = patient_compartment(
        store,
        "patient",
        &person,
        Some(request.since.as_str()).filter(|s| !s.trim().is_empty()),
        i64::from(request.count),
        Some(request.page_token.as_str()).filter(|s| !s.is_empty()),
        access,
    )
    .await?;
    let entries: Vec<Value> = slice
        .entries
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("{}/{}", s.resource_type, s.id),
                "resource": serde_json::from_str::<Value>(&s.json).unwrap_or(Value::Null),
                "search": { "mode": "match" },
            })
        })
        .collect();
    let bundle = corridor_store::omit_empty_entry(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": slice.total,
        "entry": entries,
    }));
    Ok(fhir::Bundle {
        json: bundle.to_string(),
        total: slice.total,
        next_page_token: slice.next_token.unwrap_or_default(),
    })
}
