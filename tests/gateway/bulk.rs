//! FHIR Bulk Data `$import` at the gateway: NDJSON pushed in the kick-off
//! request, a job polled at its status URL, a manifest that counts what was
//! written and names every bad line, and a request sent again (to the same
//! gateway, or to another after a restart) writing nothing twice.

use std::time::{Duration, Instant};

use corridor_tests::rest::{Answer, RestNode};
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SYSTEM: &str = "urn:corridor:test:bulk";

/// `patients` Patients and two Organizations as NDJSON, with a Patient of
/// an unknown gender on line 3 and a line that is not JSON on line 6.
fn ndjson(patients: usize, tag: &str) -> String {
    let mut lines = vec![
        json!({"resourceType": "Organization", "name": format!("Bulk {tag} clinic")}).to_string(),
        json!({"resourceType": "Organization", "name": format!("Bulk {tag} shelter")}).to_string(),
        json!({"resourceType": "Patient", "gender": "robot", "name": [{"family": format!("Bad{tag}")}]})
            .to_string(),
    ];
    for n in 0..patients {
        if n == 2 {
            lines.push("{\"resourceType\": \"Patient\", ".to_owned());
        }
        lines.push(
            json!({"resourceType": "Patient",
                   "identifier": [{"system": SYSTEM, "value": format!("{tag}-{n}")}],
                   "name": [{"family": format!("Bulk{tag}"), "given": [format!("N{n}")]}]})
            .to_string(),
        );
    }
    lines.join("\n") + "\n"
}

/// `POST [base]/$import` of `body`, to the gateway at `base`.
async fn kick_off(base: &str, body: &str, key: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/$import"))
        .header(
            "authorization",
            RestNode::acting_for(corridor_tests::TEST_ORGANIZATION),
        )
        .header("content-type", "application/fhir+ndjson")
        .header("prefer", "respond-async")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("x-idempotency-key", key);
    }
    corridor_tests::rest::read(request.send().await.expect("the gateway answers")).await
}

/// Poll `status` until the job ends; its manifest.
async fn manifest(rest: &RestNode, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = rest.get(status).await;
        match answer.status {
            StatusCode::OK => return answer.body,
            StatusCode::ACCEPTED => {
                assert!(
                    answer
                        .header("x-progress")
                        .is_some_and(|p| p.contains(" of ")),
                    "a running job says how far it is"
                );
            }
            other => panic!("{status}: {other} {}", answer.body),
        }
        assert!(
            Instant::now() < deadline,
            "the job did not end within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count_of(manifest: &Value, resource_type: &str) -> u64 {
    manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == resource_type)
        .and_then(|o| o["count"].as_u64())
        .unwrap_or(0)
}

async fn an_ndjson_import_runs_as_a_job_whose_manifest_counts_the_writes_and_names_each_bad_line(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let accepted = kick_off(&rest.base, &ndjson(450, "A"), None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let status = accepted
        .header("content-location")
        .expect("the status URL")
        .to_owned();
    assert!(status.starts_with(&rest.base), "{status}");
    let manifest = manifest(&rest, &status).await;
    assert_eq!(count_of(&manifest, "Patient"), 450, "{manifest}");
    assert_eq!(count_of(&manifest, "Organization"), 2, "{manifest}");
    assert_eq!(manifest["error"][0]["count"], 2, "{manifest}");
    assert_eq!(manifest["requiresAccessToken"], true);

    let errors = rest
        .get(manifest["error"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(errors.status, StatusCode::OK, "{}", errors.body);
    let said: Vec<String> = errors.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        said.iter()
            .any(|d| d.starts_with("line 3:") && d.contains("robot")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|d| d.starts_with("line 6:") && d.contains("not JSON")),
        "{said:?}"
    );
    let (patients, _) = rest.search_all("Patient?family=BulkA&_count=500").await;
    assert_eq!(patients.len(), 450);
    assert!(rest.search_all("Patient?family=BadA").await.0.is_empty());
}

async fn an_import_sent_again_with_its_key_writes_nothing_twice_even_after_a_gateway_restart(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let body = ndjson(120, "B");
    let first = kick_off(&rest.base, &body, Some("partner-export-2026-11-30")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let again = kick_off(&rest.base, &body, Some("partner-export-2026-11-30")).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(
        again.header("content-location"),
        first.header("content-location"),
        "the same request finds the same job"
    );
    manifest(&rest, first.header("content-location").unwrap()).await;
    let other = kick_off(
        &rest.base,
        &ndjson(3, "C"),
        Some("partner-export-2026-11-30"),
    )
    .await;
    other.assert_outcome(StatusCode::BAD_REQUEST);

    // Another gateway (as after a restart) knows no job: the request sent
    // to it again replays every write.
    let (restarted, _gateway) = rest.another_gateway().await;
    let resent = kick_off(&restarted, &body, Some("partner-export-2026-11-30")).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.body);
    let status = resent.header("content-location").unwrap();
    assert!(status.starts_with(&restarted), "{status}");
    let manifest = manifest(&rest, status).await;
    assert_eq!(count_of(&manifest, "Patient"), 120, "{manifest}");
    let (patients, _) = rest.search_all("Patient?family=BulkB&_count=500").await;
    assert_eq!(patients.len(), 120, "nothing was written twice");
    let (organizations, _) = rest.search_all("Organization?name=Bulk B").await;
    assert_eq!(organizations.len(), 2);
}

async fn an_import_that_is_not_ndjson_or_not_asynchronous_is_refused_saying_what_to_send(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
        {"name": "input", "part": [{"name": "url", "valueUri": "https://partner.example.org/Patient.ndjson"}]}]});
    let by_url = rest.post("$import", &parameters).await;
    by_url.assert_outcome(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        by_url.diagnostics().contains("does not fetch input URLs"),
        "{}",
        by_url.body
    );

    let synchronous = rest
        .send(
            Method::POST,
            "$import",
            None,
            &[("content-type", "application/fhir+ndjson")],
        )
        .await;
    synchronous.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(
        synchronous.diagnostics().contains("respond-async"),
        "{}",
        synchronous.body
    );

    let unknown = rest.get("$import-poll-status/0123456789abcdef").await;
    unknown.assert_outcome(StatusCode::NOT_FOUND);
    assert!(
        unknown.diagnostics().contains("X-Idempotency-Key"),
        "{}",
        unknown.body
    );
}

for_each_backend!(
    an_ndjson_import_runs_as_a_job_whose_manifest_counts_the_writes_and_names_each_bad_line,
    an_import_sent_again_with_its_key_writes_nothing_twice_even_after_a_gateway_restart,
    an_import_that_is_not_ndjson_or_not_asynchronous_is_refused_saying_what_to_send,
);
