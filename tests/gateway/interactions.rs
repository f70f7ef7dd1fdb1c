//! The RESTful interactions and HTTP conventions: status codes, ETag,
//! Last-Modified, Location, conditional headers, Prefer, paging links,
//! presentation parameters and gzip.

use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn patient(family: &str, given: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "birthDate": "1991-03-04"})
}

async fn create_read_update_history_and_delete_carry_fhir_headers(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let created = rest.post("Patient", &patient("Tesfaye", "Selam")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert!(created.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(
        created.header("location"),
        Some(rest.url(&format!("Patient/{id}/_history/1")).as_str())
    );
    assert!(
        created
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );

    let read = rest.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["name"][0]["family"], "Tesfaye");
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    let unchanged = rest
        .send(
            Method::GET,
            &format!("Patient/{id}"),
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);

    let mut changed = read.body.clone();
    changed["gender"] = json!("female");
    let updated = rest
        .send(
            Method::PUT,
            &format!("Patient/{id}"),
            Some(&changed),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    assert_eq!(updated.body["gender"], "female");

    let first = rest.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.get("gender").is_none());
    let history = rest.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["entry"].as_array().unwrap().len(), 2);
    assert_eq!(
        history.body["entry"][0]["fullUrl"],
        json!(rest.url(&format!("Patient/{id}")))
    );

    let deleted = rest
        .send(Method::DELETE, &format!("Patient/{id}"), None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    rest.get(&format!("Patient/{id}"))
        .await
        .assert_outcome(StatusCode::GONE);
    rest.get(&format!("Patient/{id}/_history/3"))
        .await
        .assert_outcome(StatusCode::GONE);
    assert_eq!(
        rest.get(&format!("Patient/{id}/_history/2")).await.status,
        StatusCode::OK
    );
}

async fn a_stale_if_match_gets_412_and_changes_nothing(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let id = rest.create(&patient("Mehari", "Yonas")).await;
    let mut body = rest.get(&format!("Patient/{id}")).await.body;
    body["gender"] = json!("male");
    let first = rest
        .send(
            Method::PUT,
            &format!("Patient/{id}"),
            Some(&body),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    body["gender"] = json!("other");
    let stale = rest
        .send(
            Method::PUT,
            &format!("Patient/{id}"),
            Some(&body),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    stale.assert_outcome(StatusCode::PRECONDITION_FAILED);
    assert!(stale.diagnostics().contains("version 2"), "{}", stale.body);
    let now = rest.get(&format!("Patient/{id}")).await;
    assert_eq!(now.body["gender"], "male");
    let delete = rest
        .send(
            Method::DELETE,
            &format!("Patient/{id}"),
            None,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    delete.assert_outcome(StatusCode::PRECONDITION_FAILED);
}

async fn if_none_exist_returns_the_existing_resource_instead_of_a_second(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let mut p = patient("Okafor", "Chidi");
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "MRN-77"}]);
    let condition = [("if-none-exist", "identifier=urn:test:mrn|MRN-77")];
    let first = rest
        .send(Method::POST, "Patient", Some(&p), &condition)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = rest
        .send(Method::POST, "Patient", Some(&p), &condition)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    let (found, _) = rest
        .search_all("Patient?identifier=urn:test:mrn|MRN-77")
        .await;
    assert_eq!(found.len(), 1);
}

async fn a_retried_post_with_the_same_idempotency_key_creates_one_resource(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let p = patient("Rahimi", "Zahra");
    let key = [("x-idempotency-key", "case-manager-7f3a-1")];
    let first = rest.send(Method::POST, "Patient", Some(&p), &key).await;
    let retry = rest.send(Method::POST, "Patient", Some(&p), &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.body["id"], first.body["id"]);
    let (found, _) = rest.search_all("Patient?family=Rahimi").await;
    assert_eq!(found.len(), 1);
    let mut other = p.clone();
    other["gender"] = json!("female");
    let reused = rest.send(Method::POST, "Patient", Some(&other), &key).await;
    reused.assert_outcome(StatusCode::BAD_REQUEST);
}

async fn search_pages_carry_absolute_next_links_that_reach_every_match_once(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(rest.create(&patient("Paging", &format!("P{n}"))).await);
    }
    rest.create(&patient("Elsewhere", "X")).await;
    let (found, pages) = rest.search_all("Patient?family=Paging&_count=3").await;
    assert_eq!(pages, 3);
    let mut found: Vec<String> = found
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);
    let first = rest.get("Patient?family=Paging&_count=3").await;
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(next.starts_with(&rest.base), "{next}");
    assert_eq!(first.body["total"], 7);
    assert!(
        first.body["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with(&rest.base)
    );

    let posted = rest
        .http
        .post(rest.url("Patient/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=Paging&_count=100")
        .send()
        .await
        .unwrap();
    let posted = corridor_tests::rest::read(posted).await;
    assert_eq!(posted.status, StatusCode::OK);
    assert_eq!(posted.body["entry"].as_array().unwrap().len(), 7);
}

async fn summary_count_elements_and_pretty_shape_the_answer(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let id = rest.create(&patient("Shape", "Amina")).await;
    rest.create(&patient("Shape", "Bilal")).await;
    let count = rest.get("Patient?family=Shape&_summary=count").await;
    assert_eq!(count.body["total"], 2);
    assert!(count.body.get("entry").is_none(), "{}", count.body);

    let subset = rest.get(&format!("Patient/{id}?_elements=birthDate")).await;
    assert_eq!(subset.body["birthDate"], "1991-03-04");
    assert!(subset.body.get("name").is_none());
    assert_eq!(subset.body["meta"]["tag"][0]["code"], "SUBSETTED");
    let searched = rest
        .get("Patient?family=Shape&_elements=name&_count=1")
        .await;
    assert!(
        searched.body["entry"][0]["resource"]
            .get("birthDate")
            .is_none()
    );
    let next = searched.body["link"][1]["url"].as_str().unwrap();
    assert!(next.contains("_elements=name"), "{next}");

    let pretty = rest.get(&format!("Patient/{id}?_pretty=true")).await;
    assert!(String::from_utf8_lossy(&pretty.raw).contains("\n  \"resourceType\""));
    let plain = rest.get(&format!("Patient/{id}")).await;
    assert!(!String::from_utf8_lossy(&plain.raw).contains('\n'));
}

async fn prefer_return_chooses_what_a_write_answers(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let minimal = rest
        .send(
            Method::POST,
            "Patient",
            Some(&patient("Prefer", "A")),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(minimal.status, StatusCode::CREATED);
    assert!(minimal.raw.is_empty());
    assert!(minimal.header("location").is_some());
    let outcome = rest
        .send(
            Method::POST,
            "Patient",
            Some(&patient("Prefer", "B")),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(outcome.status, StatusCode::CREATED);
    assert_eq!(outcome.body["resourceType"], "OperationOutcome");
    assert_eq!(outcome.body["issue"][0]["severity"], "information");
    let full = rest
        .send(
            Method::POST,
            "Patient",
            Some(&patient("Prefer", "C")),
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(full.body["resourceType"], "Patient");
}

async fn answers_are_gzipped_when_the_client_asks(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    for n in 0..5 {
        rest.create(&patient("Gzip", &format!("G{n}"))).await;
    }
    let zipped = rest
        .send(
            Method::GET,
            "Patient?family=Gzip",
            None,
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.body["total"], 5);
    let plain = rest.get("Patient?family=Gzip").await;
    assert_eq!(plain.header("content-encoding"), None);
}

async fn each_type_reaches_the_service_that_owns_it(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let pid = rest.create(&patient("Routed", "R")).await;
    let encounter = json!({
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "subject": {"reference": format!("Patient/{pid}")}
    });
    let eid = rest.create(&encounter).await;
    let org = rest
        .create(&json!({"resourceType": "Organization", "name": "Frontier Care NGO"}))
        .await;
    let sr = json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"reference": format!("Patient/{pid}")},
        "requester": {"reference": format!("Organization/{org}")}
    });
    let sid = rest.create(&sr).await;
    let (encounters, _) = rest
        .search_all(&format!("Encounter?subject=Patient/{pid}"))
        .await;
    assert_eq!(encounters.len(), 1);
    assert_eq!(encounters[0]["id"], json!(eid));
    let (requests, _) = rest
        .search_all(&format!("ServiceRequest?subject=Patient/{pid}"))
        .await;
    assert_eq!(requests[0]["id"], json!(sid));
    // Encounters checks the Patient with identity: an unknown one is refused.
    let mut orphan = encounter.clone();
    orphan["subject"]["reference"] = json!("Patient/does-not-exist");
    let refused = rest.post("Encounter", &orphan).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    assert_eq!(refused.body["resourceType"], "OperationOutcome");
}

for_each_backend!(
    create_read_update_history_and_delete_carry_fhir_headers,
    a_stale_if_match_gets_412_and_changes_nothing,
    if_none_exist_returns_the_existing_resource_instead_of_a_second,
    a_retried_post_with_the_same_idempotency_key_creates_one_resource,
    search_pages_carry_absolute_next_links_that_reach_every_match_once,
    summary_count_elements_and_pretty_shape_the_answer,
    prefer_return_chooses_what_a_write_answers,
    answers_are_gzipped_when_the_client_asks,
    each_type_reaches_the_service_that_owns_it,
);
