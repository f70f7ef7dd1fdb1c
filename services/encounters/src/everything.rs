//! `Patient/$everything`: the Patient, from the identity service, every
//! resource this service holds about them, then their referrals, from the
//! referrals service; paged.
//!
//! It answers for the person, not for one record of them: the Patient's
//! merges are followed ([`corridor_runtime::merges`]). Asked for a Patient
//! that others were merged into, it returns the records filed under each of
//! them too; asked for one that was merged away, it answers for the Patient
//! it was merged into, exactly as if that one had been asked. The Bundle
//! starts with the current Patient, followed by each merged one (inactive,
//! with its `replaced-by` link), so that every record's Patient reference
//! resolves within the Bundle.

use corridor_fhir::Issue;
use corridor_proto::encounters::v1::EverythingRequest;
use corridor_proto::fhir::v1 as pb;
use corridor_runtime::ApiError;
use corridor_runtime::merges::patient_compartment;
use serde_json::{Value, json};

use corridor_runtime::identity::IdentityLink;

use crate::referrals::ReferralsLink;

/// The search parameter every type of this service names its Patient by.
const COMPARTMENT_PARAM: &str = "patient";

/// `referrals`, when the node has a referrals service, adds the patient's
/// ServiceRequests and Tasks after this service's records.
pub async fn everything(
    resources: &corridor_runtime::resources::Resources,
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
    let not_found = || {
        ApiError::NotFound(
            Issue::new(
                "not-found",
                format!("Patient/{id} is not in the identity registry"),
            )
            .at("patient_id"),
        )
    };
    let person = identity.resolve(id).await?.ok_or_else(not_found)?;
    // The current Patient first; a merged one deleted meanwhile is left out.
    let patients: Vec<_> = futures::future::try_join_all(
        person
            .merged_ids
            .iter()
            .map(|merged| identity.read("Patient", merged)),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();
    if patients.first().is_none_or(|p| p.id != person.current_id) {
        return Err(not_found());
    }
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
    let since_text = since.unwrap_or_default();
    // Only the records the caller may read, counted and paged as such.
    let caller = corridor_runtime::auth::current()?;
    let access = resources.readable(&caller, "Encounter").await?;
    let own = patient_compartment(
        resources.store(),
        COMPARTMENT_PARAM,
        &person.merged_ids,
        since,
        i64::from(request.count),
        Some(inner).filter(|t| phase == "e" && !t.is_empty()),
        access.as_ref(),
    )
    .await?;
    let theirs = match referrals {
        Some(link) => {
            // The referrals service follows the merges of the Patient it is
            // asked about itself.
            let count = if phase == "r" { request.count } else { 1 };
            let page = link
                .of_patient(
                    &person.current_id,
                    since_text,
                    count,
                    if phase == "r" { inner } else { "" },
                )
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
    let mut entries = Vec::with_capacity(shown.len() + patients.len());
    if token.is_none() {
        for patient in &patients {
            entries.push(entry(
                "Patient",
                &patient.id,
                serde_json::from_str(&patient.json).unwrap_or(Value::Null),
            ));
        }
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
    let total = i64::try_from(patients.len()).unwrap_or(i64::MAX)
        + own.total
        + theirs.as_ref().map_or(0, |r| r.total);
    let bundle = corridor_store::omit_empty_entry(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    }));
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
