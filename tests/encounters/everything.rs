//! Patient/$everything: the patient from identity and everything the
//! encounters service holds about them, paged, with `_since`.

use corridor_proto::encounters::v1 as pb;
use corridor_tests::clinic::{consultation_bundle, record, register_patient};
use corridor_tests::{Backend, Node, expression, for_each_backend};
use serde_json::Value;
use tonic::Code;

async fn everything(
    node: &Node,
    patient_id: &str,
    since: &str,
    count: i32,
    page_token: &str,
) -> Result<Value, tonic::Status> {
    let response = node
        .encounters
        .client
        .clone()
        .everything(pb::EverythingRequest {
            patient_id: patient_id.to_owned(),
            since: since.to_owned(),
            count,
            page_token: page_token.to_owned(),
        })
        .await?
        .into_inner();
    Ok(serde_json::from_str(&response.bundle.expect("bundle").json).expect("JSON"))
}

fn refs(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

async fn everything_returns_the_patient_and_only_their_records_across_pages(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    let other = register_patient(&node, "Haile").await;
    let mut expected = Vec::new();
    for _ in 0..2 {
        let recorded = record(&node, &consultation_bundle(&patient)).await.unwrap();
        let response: Value = serde_json::from_str(&recorded.bundle.unwrap().json).unwrap();
        for entry in response["entry"].as_array().unwrap() {
            expected.push(entry["fullUrl"].as_str().unwrap().to_owned());
        }
    }
    record(&node, &consultation_bundle(&other)).await.unwrap();

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = everything(&node, &patient, "", 5, &token).await.unwrap();
        assert_eq!(page["total"], 13, "the patient and their 12 resources");
        seen.extend(refs(&page));
        pages += 1;
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        match next {
            Some(url) => {
                assert!(
                    url.starts_with(&format!("Patient/{patient}/$everything?")),
                    "{url}"
                );
                token = url.split("_page_token=").nth(1).unwrap().to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen[0],
        format!("Patient/{patient}"),
        "the patient comes first"
    );
    let mut rest = seen[1..].to_vec();
    rest.sort();
    expected.sort();
    assert_eq!(
        rest, expected,
        "each of the patient's resources exactly once"
    );
}

async fn everything_since_returns_only_what_changed_after(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = register_patient(&node, "Tesfay").await;
    record(&node, &consultation_bundle(&patient)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = corridor_store::now_instant();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let later = record(&node, &consultation_bundle(&patient)).await.unwrap();
    let later: Value = serde_json::from_str(&later.bundle.unwrap().json).unwrap();
    let mut expected: Vec<String> = later["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let page = everything(&node, &patient, &cut, 100, "").await.unwrap();
    let mut got = refs(&page)[1..].to_vec();
    got.sort();
    assert_eq!(got, expected);

    let err = everything(&node, &patient, "last tuesday", 0, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "_since");
}

async fn everything_of_an_unknown_patient_is_not_found(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let err = everything(&node, "nobody", "", 0, "").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(expression(&err), "patient_id");
}

for_each_backend!(
    everything_returns_the_patient_and_only_their_records_across_pages,
    everything_since_returns_only_what_changed_after,
    everything_of_an_unknown_patient_is_not_found,
);
