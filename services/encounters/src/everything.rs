//! `Patient/$everything`: the Patient, from the identity service, every
//! resource this service holds about them, then their referrals, from the
//! referrals service; paged.

use corridor_fhir::Issue;
use corridor_proto::encounters::v1::EverythingRequest;
use corridor_proto::fhir::v1 as pb;
use corridor_runtime::ApiError;
use corridor_store::Store;
use serde_json::{Value, json};

use corridor_runtime::identity::IdentityLink;

use crate::referrals::ReferralsLink;

/// The search parameter every type of this service names its Patient by.
const COMPARTMENT_PARAM: &str = "patient";

/// `referrals`, when the node has a referrals service, adds the patient's
/// ServiceRequests and Tasks after this service's records.
pub async fn everything(
    store: &Store,
    identity: &IdentityLink,
    referrals: Option<&ReferralsLink>,
    request: &EverythingRequest,
) -> Result<pb::Bundle, ApiError> {
    let id = request.patient_id.trim();
    if id.is_empty() {
        return Err(Issue::new("required", "patient_id is required")
            .at("patient_id")
            .into());
    }
    let patient = identity.read("Patient", id).await?.ok_or_else(|| {
        ApiError::NotFound(
            Issue::new(
                "not-found",
                format!("Patient/{id} is not in the identity registry"),
            )
            .at("patient_id"),
        )
    })?;
    let since = Some(request.since.as_str()).filter(|s| !s.trim().is_empty());
    // The page token says which part is being paged: this service's records
    // ("e.<token>") or, after them, the patient's referrals ("r.<token>").
    let token = Some(request.page_token.as_str()).filter(|s| !s.is_empty());
    let (phase, inner) = match token.map(|t| t.split_once('.').unwrap_or(("?", t))) {
        None => ("e", ""),
        Some(("e", inner)) => ("e", inner),
        Some(("r", inner)) if referrals.is_some() => ("r", inner),
        Some(_) => {
            return Err(Issue::new(
                "invalid",
                "this page token does not belong to this $everything",
            )
            .at("page_token")
            .into());
        }
    };
    let reference = format!("Patient/{id}");
    let since_text = since.unwrap_or_default();
    let own = store
        .compartment(
            COMPARTMENT_PARAM,
            &reference,
            since,
            i64::from(request.count),
            Some(inner).filter(|t| phase == "e" && !t.is_empty()),
        )
        .await?;
    let theirs = match referrals {
        Some(link) => {
            let count = if phase == "r" { request.count } else { 1 };
            let page = link
                .of_patient(id, since_text, count, if phase == "r" { inner } else { "" })
                .await?;
            Some(page)
        }
        None => None,
    };
    let (shown, next_token) = match (phase, &theirs) {
        ("e", _) => {
            let next = match (&own.next_token, &theirs) {
                (Some(next), _) => Some(format!("e.{next}")),
                (None, Some(r)) if r.total > 0 => Some("r.".to_owned()),
                (None, _) => None,
            };
            (&own.entries, next)
        }
        (_, Some(r)) => (&r.entries, r.next_token.as_ref().map(|t| format!("r.{t}"))),
        (_, None) => (&own.entries, None),
    };
    let mut entries = Vec::with_capacity(shown.len() + 1);
    if token.is_none() {
        entries.push(entry(
            "Patient",
            id,
            serde_json::from_str(&patient.json).unwrap_or(Value::Null),
        ));
    }
    for stored in shown {
        entries.push(entry(
            &stored.resource_type,
            &stored.id,
            serde_json::from_str(&stored.json).unwrap_or(Value::Null),
        ));
    }
    let mut query = Vec::new();
    if let Some(since) = since {
        query.push(("_since", since.to_owned()));
    }
    if request.count > 0 {
        query.push(("_count", request.count.to_string()));
    }
    let link = |extra: Option<&str>| {
        let mut ser = form_query(&query);
        if let Some(token) = extra {
            if !ser.is_empty() {
                ser.push('&');
            }
            ser.push_str("_page_token=");
            ser.push_str(token);
        }
        let base = format!("Patient/{id}/$everything");
        if ser.is_empty() {
            base
        } else {
            format!("{base}?{ser}")
        }
    };
    let mut links = vec![json!({ "relation": "self", "url": link(token) })];
    if let Some(next) = &next_token {
        links.push(json!({ "relation": "next", "url": link(Some(next)) }));
    }
    let total = 1 + own.total + theirs.as_ref().map_or(0, |r| r.total);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    });
    Ok(pb::Bundle {
        json: bundle.to_string(),
        total,
        next_page_token: next_token.unwrap_or_default(),
    })
}

fn entry(resource_type: &str, id: &str, resource: Value) -> Value {
    json!({
        "fullUrl": format!("{resource_type}/{id}"),
        "resource": resource,
        "search": { "mode": "match" },
    })
}

fn form_query(pairs: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        ser.append_pair(name, value);
    }
    ser.finish()
}
