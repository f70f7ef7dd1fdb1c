//! Merged patients: once identity merges one Patient into another, the
//! encounters service answers for the person, whichever of their ids is
//! asked (`Patient/$everything`, search by `patient` and `subject`), and an
//! unmerge separates the records again at once.

use corridor_proto::encounters::v1 as pb;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_tests::clinic::{consultation_bundle, record, register_patient};
use corridor_tests::merge::{merge, unmerge};
use corridor_tests::{Backend, Node, expression, for_each_backend};
use serde_json::Value;
use tonic::Code;

for_each_backend!(
    everything_of_the_target_includes_the_source_records_after_a_merge,
    everything_of_a_merged_away_source_answers_for_its_target,
    everything_of_a_merged_patient_pages_through_each_record_once,
    search_by_the_target_finds_the_source_records_after_a_merge_and_not_before,
    search_pages_through_merged_records_and_refuses_a_token_from_before_an_unmerge,
    unmerge_separates_everything_and_search_again,
    with_identity_stopped_every_search_of_a_partner_fails_unavailable,
);

/// Two registrations of one person, each with a recorded consultation:
/// (target id, source id, the target's records, the source's records), the
/// records as `Type/id`, sorted.
async fn registered_twice(node: &Node) -> (String, String, Vec<String>, Vec<String>) {
    let target = register_patient(node, "Tesfay").await;
    let source = register_patient(node, "Tesfaye").await;
    let target_records = consultation_records(node, &target).await;
    let source_records = consultation_records(node, &source).await;
    (target, source, target_records, source_records)
}

/// Record a consultation for `patient`; its records as `Type/id`, sorted.
async fn consultation_records(node: &Node, patient: &str) -> Vec<String> {
    let recorded = record(node, &consultation_bundle(patient))
        .await
        .expect("consultation recorded");
    let bundle: Value = serde_json::from_str(&recorded.bundle.expect("bundle").json).expect("JSON");
    let mut records: Vec<String> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["fullUrl"].as_str().expect("fullUrl").to_owned())
        .collect();
    records.sort();
    records
}

async fn everything(
    node: &Node,
    patient_id: &str,
    count: i32,
    page_token: &str,
) -> Result<Value, tonic::Status> {
    let response = node
        .encounters
        .client
        .clone()
        .everything(pb::EverythingRequest {
            patient_id: patient_id.to_owned(),
            since: String::new(),
            count,
            page_token: page_token.to_owned(),
        })
        .await?
        .into_inner();
    Ok(serde_json::from_str(&response.bundle.expect("bundle").json).expect("JSON"))
}

async fn search(
    node: &Node,
    resource_type: &str,
    params: &[(&str, &str)],
    page_token: &str,
) -> Result<pb::SearchResponse, tonic::Status> {
    Ok(node
        .encounters
        .client
        .clone()
        .search(pb::SearchRequest {
            resource_type: resource_type.to_owned(),
            parameters: params
                .iter()
                .map(|(name, value)| SearchParameter {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            page_token: page_token.to_owned(),
        })
        .await?
        .into_inner())
}

/// `Type/id` of every entry of a search response's Bundle, in order.
fn found(response: &pb::SearchResponse) -> Vec<String> {
    let bundle: Value =
        serde_json::from_str(&response.bundle.as_ref().expect("bundle").json).expect("JSON");
    refs(&bundle)
}

/// The ids of every `resource_type` a search by `params` finds, sorted.
async fn ids(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    let response = search(node, resource_type, params, "")
        .await
        .unwrap_or_else(|s| panic!("{resource_type}?{params:?}: {s:?}"));
    let mut ids = found(&response);
    ids.sort();
    ids
}

/// `Type/id` of every entry of a Bundle, in order.
fn refs(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or_default(),
                e["resource"]["id"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn of_type(records: &[String], resource_type: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.split('/').next() == Some(resource_type))
        .cloned()
        .collect()
}

fn sorted(mut records: Vec<String>) -> Vec<String> {
    records.sort();
    records
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    sorted(a.iter().chain(b).cloned().collect())
}

/// Every record of `$everything` for `patient_id` (the Patients apart),
/// sorted, read page by page with `count`.
async fn everything_records(node: &Node, patient_id: &str, count: i32) -> Vec<String> {
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let page = everything(node, patient_id, count, &token)
            .await
            .unwrap_or_else(|s| panic!("$everything of Patient/{patient_id}: {s:?}"));
        records.extend(
            refs(&page)
                .into_iter()
                .filter(|r| !r.starts_with("Patient/")),
        );
        match page["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => {
                token = next["url"]
                    .as_str()
                    .and_then(|u| u.split("_page_token=").nth(1))
                    .expect("next link carries a page token")
                    .to_owned();
            }
            None => return records,
        }
    }
}

async fn everything_of_the_target_includes_the_source_records_after_a_merge(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    assert_eq!(
        sorted(everything_records(&node, &target, 100).await),
        target_records,
        "before the merge, only the target's own records"
    );

    merge(&node.identity, &source, &target).await;

    let page = everything(&node, &target, 100, "").await.unwrap();
    let got = refs(&page);
    assert_eq!(
        got[..2],
        [format!("Patient/{target}"), format!("Patient/{source}")],
        "the current Patient first, then the one merged into it"
    );
    assert_eq!(page["total"], 2 + 12);
    assert_eq!(
        sorted(everything_records(&node, &target, 100).await),
        union(&target_records, &source_records),
        "the source's encounter, observation, condition, immunization, medication and note too"
    );
    let merged_patient = &page["entry"][1]["resource"];
    assert_eq!(merged_patient["active"], false);
    assert_eq!(merged_patient["link"][0]["type"], "replaced-by");
}

async fn everything_of_a_merged_away_source_answers_for_its_target(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    merge(&node.identity, &source, &target).await;

    let page = everything(&node, &source, 100, "").await.unwrap();
    let got = refs(&page);
    assert_eq!(
        got[0],
        format!("Patient/{target}"),
        "the Patient the source was merged into comes first"
    );
    assert_eq!(got[1], format!("Patient/{source}"));
    assert_eq!(
        sorted(everything_records(&node, &source, 100).await),
        union(&target_records, &source_records)
    );
    assert_eq!(
        page["link"][0]["url"],
        format!("Patient/{source}/$everything?_count=100"),
        "the self link is what was asked"
    );
}

async fn everything_of_a_merged_patient_pages_through_each_record_once(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    merge(&node.identity, &source, &target).await;
    // 5 does not divide 6: a page ends inside each Patient's records.
    let records = everything_records(&node, &target, 5).await;
    assert_eq!(records.len(), 12, "no record twice: {records:?}");
    assert_eq!(sorted(records), union(&target_records, &source_records));
}

async fn search_by_the_target_finds_the_source_records_after_a_merge_and_not_before(
    backend: Backend,
) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    let target_ref = format!("Patient/{target}");
    let encounters = |records: &[String]| of_type(records, "Encounter");

    assert_eq!(
        ids(&node, "Encounter", &[("patient", &target)]).await,
        encounters(&target_records),
        "before the merge, the target's encounter only"
    );

    merge(&node.identity, &source, &target).await;

    let both = union(&target_records, &source_records);
    assert_eq!(
        ids(&node, "Encounter", &[("patient", &target)]).await,
        encounters(&both)
    );
    assert_eq!(
        ids(&node, "Encounter", &[("subject", &target_ref)]).await,
        encounters(&both)
    );
    assert_eq!(
        ids(&node, "Encounter", &[("patient", &source)]).await,
        encounters(&both),
        "the merged-away id finds the person's records too"
    );
    // Types that name their Patient as `subject` and as `patient`.
    for resource_type in ["Observation", "Immunization", "DocumentReference"] {
        assert_eq!(
            ids(&node, resource_type, &[("patient", &target_ref)]).await,
            of_type(&both, resource_type),
            "{resource_type}?patient"
        );
    }
    // Other parameters still narrow the search.
    let source_encounter = encounters(&source_records).remove(0);
    assert_eq!(
        ids(
            &node,
            "Encounter",
            &[
                ("patient", &target),
                ("_id", source_encounter.trim_start_matches("Encounter/")),
            ]
        )
        .await,
        vec![source_encounter]
    );
}

async fn search_pages_through_merged_records_and_refuses_a_token_from_before_an_unmerge(
    backend: Backend,
) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    merge(&node.identity, &source, &target).await;
    let params = [("patient", target.as_str()), ("_count", "1")];
    let first = search(&node, "Encounter", &params, "").await.unwrap();
    assert_eq!(first.bundle.as_ref().unwrap().total, 2);
    let token = first.bundle.as_ref().unwrap().next_page_token.clone();
    assert!(!token.is_empty(), "two encounters, one per page");
    let second = search(&node, "Encounter", &params, &token).await.unwrap();
    assert_eq!(
        sorted(found(&first).into_iter().chain(found(&second)).collect()),
        of_type(&union(&target_records, &source_records), "Encounter"),
        "each encounter on one page"
    );

    unmerge(&node.identity, &source).await;
    let err = search(&node, "Encounter", &params, &token)
        .await
        .expect_err("the answer changed with the unmerge");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "_page_token");
}

async fn unmerge_separates_everything_and_search_again(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (target, source, target_records, source_records) = registered_twice(&node).await;
    merge(&node.identity, &source, &target).await;
    assert_eq!(
        sorted(everything_records(&node, &target, 100).await),
        union(&target_records, &source_records)
    );

    unmerge(&node.identity, &source).await;

    let page = everything(&node, &target, 100, "").await.unwrap();
    assert_eq!(refs(&page)[0], format!("Patient/{target}"));
    assert_eq!(page["total"], 1 + 6, "the target and its own records");
    assert_eq!(
        sorted(everything_records(&node, &target, 100).await),
        target_records,
        "the target's $everything no longer has the source's records"
    );
    let page = everything(&node, &source, 100, "").await.unwrap();
    assert_eq!(refs(&page)[0], format!("Patient/{source}"));
    assert_eq!(
        sorted(everything_records(&node, &source, 100).await),
        source_records,
        "the source's $everything has its records again"
    );
    assert_eq!(
        ids(&node, "Encounter", &[("patient", &target)]).await,
        of_type(&target_records, "Encounter")
    );
    assert_eq!(
        ids(&node, "Encounter", &[("patient", &source)]).await,
        of_type(&source_records, "Encounter")
    );
}

async fn with_identity_stopped_every_search_of_a_partner_fails_unavailable(backend: Backend) {
    let Some(mut node) = Node::spawn(backend).await else {
        return;
    };
    let (target, _, _, _) = registered_twice(&node).await;
    node.identity.halt().await;
    let err = search(&node, "Encounter", &[("patient", &target)], "")
        .await
        .expect_err("merges cannot be followed without identity");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("identity"), "{}", err.message());
    corridor_tests::outcome(&err);
    // Nor can a partner's search that names no Patient: whose records it
    // may read is identity's to say, and nothing is shown undecided.
    let partner = corridor_tests::token(
        corridor_tests::TEST_ORGANIZATION,
        corridor_tests::ALL_SCOPES,
    );
    let err = node
        .encounters
        .client
        .clone()
        .search(corridor_tests::with_token(
            &partner,
            pb::SearchRequest {
                resource_type: "Encounter".to_owned(),
                parameters: vec![SearchParameter {
                    name: "status".to_owned(),
                    value: "finished".to_owned(),
                }],
                page_token: String::new(),
            },
        ))
        .await
        .expect_err("who may read what cannot be decided without identity");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("identity"), "{}", err.message());
    // Nor the node's operator's, who may read everything: no access goes
    // unaudited, and the audit trail is identity's.
    let err = search(&node, "Encounter", &[("status", "finished")], "")
        .await
        .expect_err("no access without its audit record");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}
