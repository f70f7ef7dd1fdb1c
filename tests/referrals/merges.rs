//! Merged patients: once identity merges one Patient into another, the
//! referrals filed under either are the person's referrals, in a search by
//! Patient, in the patient's referral listing and in `Patient/$everything`;
//! an unmerge separates them again.

use corridor_proto::encounters::v1 as enc;
use corridor_proto::referrals::v1 as pb;
use corridor_tests::merge::{merge, unmerge};
use corridor_tests::referral::{parties, patient, refer, service_request};
use corridor_tests::{Backend, FullNode, for_each_backend};
use serde_json::Value;

for_each_backend!(
    referral_search_by_the_target_finds_the_source_referrals_after_a_merge,
    patient_referrals_of_either_id_list_the_persons_referrals_after_a_merge,
    everything_of_the_target_includes_the_source_referrals_until_an_unmerge,
);

/// A referral: its ServiceRequest's and Task's `Type/id`.
struct Referral {
    service_request: String,
    task: String,
}

/// Two registrations of one person, each referred once: (target id,
/// source id, the target's referral, the source's referral).
async fn referred_twice(node: &FullNode) -> (String, String, Referral, Referral) {
    let orgs = parties(node).await;
    let mut referrals = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let subject = patient(node).await;
        let (sr, task) = refer(node, &orgs.ngo, &service_request(&orgs, &subject))
            .await
            .expect("referral made");
        ids.push(subject.trim_start_matches("Patient/").to_owned());
        referrals.push(Referral {
            service_request: format!("ServiceRequest/{}", sr.id),
            task: format!("Task/{}", task.id),
        });
    }
    let source_referral = referrals.pop().expect("two referrals");
    let target_referral = referrals.pop().expect("two referrals");
    let source = ids.pop().expect("two patients");
    let target = ids.pop().expect("two patients");
    (target, source, target_referral, source_referral)
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

fn sorted(mut records: Vec<String>) -> Vec<String> {
    records.sort();
    records
}

/// What a search of the referrals service finds, as sorted `Type/id`.
async fn search(node: &FullNode, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    sorted(refs(
        &corridor_tests::referral::search(node, resource_type, params).await,
    ))
}

/// Every referral the listing of `patient_id` holds, as sorted `Type/id`,
/// read one record per page.
async fn patient_referrals(node: &FullNode, patient_id: &str) -> Vec<String> {
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let bundle = node
            .referrals
            .client
            .clone()
            .patient_referrals(pb::PatientReferralsRequest {
                patient_id: patient_id.to_owned(),
                since: String::new(),
                count: 1,
                page_token: token,
            })
            .await
            .unwrap_or_else(|s| panic!("referrals of Patient/{patient_id}: {s:?}"))
            .into_inner()
            .bundle
            .expect("bundle");
        records.extend(refs(&serde_json::from_str(&bundle.json).expect("JSON")));
        if bundle.next_page_token.is_empty() {
            return sorted(records);
        }
        token = bundle.next_page_token;
    }
}

/// Every record of `Patient/$everything` for `patient_id`, as sorted
/// `Type/id`, read page by page.
async fn everything(node: &FullNode, patient_id: &str) -> Vec<String> {
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let bundle = node
            .encounters
            .client
            .clone()
            .everything(enc::EverythingRequest {
                patient_id: patient_id.to_owned(),
                since: String::new(),
                count: 3,
                page_token: token,
            })
            .await
            .unwrap_or_else(|s| panic!("$everything of Patient/{patient_id}: {s:?}"))
            .into_inner()
            .bundle
            .expect("bundle");
        // The records that match; the Organizations they name come along
        // as includes.
        let page: Value = serde_json::from_str(&bundle.json).expect("JSON");
        let matches: Vec<&Value> = page["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == "match")
            .collect();
        records.extend(refs(&serde_json::json!({ "entry": matches })));
        if bundle.next_page_token.is_empty() {
            return sorted(records);
        }
        token = bundle.next_page_token;
    }
}

async fn referral_search_by_the_target_finds_the_source_referrals_after_a_merge(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let (target, source, ours, theirs) = referred_twice(&node).await;
    let target_ref = format!("Patient/{target}");
    assert_eq!(
        search(&node, "ServiceRequest", &[("patient", &target)]).await,
        std::slice::from_ref(&ours.service_request),
        "before the merge, the target's referral only"
    );
    assert_eq!(
        search(&node, "Task", &[("patient", &target)]).await,
        std::slice::from_ref(&ours.task)
    );

    merge(&node.identity, &source, &target).await;

    let both_requests = sorted(vec![
        ours.service_request.clone(),
        theirs.service_request.clone(),
    ]);
    let both_tasks = sorted(vec![ours.task.clone(), theirs.task.clone()]);
    assert_eq!(
        search(&node, "ServiceRequest", &[("patient", &target)]).await,
        both_requests
    );
    assert_eq!(
        search(&node, "ServiceRequest", &[("subject", &target_ref)]).await,
        both_requests
    );
    assert_eq!(
        search(&node, "Task", &[("patient", &target_ref)]).await,
        both_tasks
    );
    assert_eq!(
        search(&node, "Task", &[("patient", &source)]).await,
        both_tasks,
        "the merged-away id finds the person's referrals too"
    );

    unmerge(&node.identity, &source).await;
    assert_eq!(
        search(&node, "ServiceRequest", &[("patient", &target)]).await,
        [ours.service_request]
    );
    assert_eq!(
        search(&node, "Task", &[("patient", &source)]).await,
        [theirs.task]
    );
}

async fn patient_referrals_of_either_id_list_the_persons_referrals_after_a_merge(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let (target, source, ours, theirs) = referred_twice(&node).await;
    let own = sorted(vec![ours.service_request.clone(), ours.task.clone()]);
    assert_eq!(patient_referrals(&node, &target).await, own);

    merge(&node.identity, &source, &target).await;

    let all = sorted(vec![
        ours.service_request,
        ours.task,
        theirs.service_request,
        theirs.task,
    ]);
    assert_eq!(patient_referrals(&node, &target).await, all);
    assert_eq!(patient_referrals(&node, &source).await, all);
}

async fn everything_of_the_target_includes_the_source_referrals_until_an_unmerge(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let (target, source, ours, theirs) = referred_twice(&node).await;
    let target_ref = format!("Patient/{target}");
    let source_ref = format!("Patient/{source}");
    let own = sorted(vec![
        target_ref.clone(),
        ours.service_request.clone(),
        ours.task.clone(),
    ]);
    assert_eq!(everything(&node, &target).await, own);

    merge(&node.identity, &source, &target).await;
    assert_eq!(
        everything(&node, &target).await,
        sorted(vec![
            target_ref.clone(),
            source_ref.clone(),
            ours.service_request,
            ours.task,
            theirs.service_request.clone(),
            theirs.task.clone(),
        ])
    );

    unmerge(&node.identity, &source).await;
    assert_eq!(everything(&node, &target).await, own);
    assert_eq!(
        everything(&node, &source).await,
        sorted(vec![source_ref, theirs.service_request, theirs.task])
    );
}
