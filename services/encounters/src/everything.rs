//! `Patient/$everything`: the Patient, from the identity service, every
//! resource this service holds about them, then their referrals, from the
//! referrals service; paged. Each page also carries the Organizations and
//! Practitioners its records name (search mode `include`).
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
    // The Organizations and Practitioners the page's records name, so that
    // every reference in it resolves within the Bundle.
    let supporting = supporting(identity, &entries).await?;
    entries.extend(supporting);
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

/// The identity service's types that records refer to for support (who
/// provided the care, and where), returned with the records that name them.
const SUPPORTING: [&str; 2] = ["Organization", "Practitioner"];

/// The resources of [`SUPPORTING`] types referred to by `entries` and not
/// among them, read from the identity service, as `include` entries; one
/// the caller may not read, or that is gone, is left out.
async fn supporting(identity: &IdentityLink, entries: &[Value]) -> Result<Vec<Value>, ApiError> {
    let listed: std::collections::HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.get("fullUrl").and_then(Value::as_str))
        .collect();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for entry in entries {
        collect_references(&entry["resource"], &mut |reference| {
            let Some((resource_type, id)) = reference.split_once('/') else {
                return;
            };
            if SUPPORTING.contains(&resource_type)
                && !id.is_empty()
                && !id.contains('/')
                && !listed.contains(reference)
                && !wanted.iter().any(|(t, i)| t == resource_type && i == id)
            {
                wanted.push((resource_type.to_owned(), id.to_owned()));
            }
        });
    }
    let read = futures::future::join_all(
        wanted
            .iter()
            .map(|(resource_type, id)| identity.read(resource_type, id)),
    )
    .await;
    let mut found = Vec::new();
    for result in read {
        match result {
            Ok(Some(resource)) => {
                let mut included = entry(
                    &resource.resource_type,
                    &resource.id,
                    serde_json::from_str(&resource.json).unwrap_or(Value::Null),
                );
                included["search"]["mode"] = json!("include");
                found.push(included);
            }
            Ok(None) | Err(ApiError::Forbidden(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(found)
}

fn collect_references(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match child {
                    Value::String(reference) if key == "reference" => visit(reference),
                    _ => collect_references(child, visit),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_references(item, visit)),
        _ => {}
    }
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
