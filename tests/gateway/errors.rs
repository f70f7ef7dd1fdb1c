//! Bad input: each mistake gets the status FHIR gives it and an
//! OperationOutcome that names it, and nothing is stored.

use corridor_tests::rest::{RestNode, TEST_MAX_BODY, TEST_MAX_ENTRIES};
use corridor_tests::{Backend, for_each_backend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn patients_named(rest: &RestNode, family: &str) -> usize {
    rest.search_all(&format!("Patient?family={family}"))
        .await
        .0
        .len()
}

async fn raw(
    rest: &RestNode,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> corridor_tests::rest::Answer {
    let response = rest
        .http
        .request(method, rest.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the gateway answers");
    corridor_tests::rest::read(response).await
}

/// One bad request and how it must be refused.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: StatusCode,
    says: &'static str,
}

impl Case {
    fn post(what: &'static str, body: Vec<u8>) -> Self {
        Self {
            what,
            method: Method::POST,
            path: "Patient".to_owned(),
            content_type: "application/fhir+json",
            body,
            status: StatusCode::OK,
            says: "",
        }
    }

    fn put(what: &'static str, path: &str, body: Vec<u8>) -> Self {
        Self {
            method: Method::PUT,
            path: path.to_owned(),
            ..Self::post(what, body)
        }
    }

    fn refused(self, status: StatusCode, says: &'static str) -> Self {
        Self {
            status,
            says,
            ..self
        }
    }
}

fn body(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

async fn each_bad_request_is_refused_with_its_status_and_stores_nothing(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let good = json!({"resourceType": "Patient", "name": [{"family": "Corpus"}]});
    let id = rest.create(&good).await;

    let update = format!("Patient/{id}");
    let cases = [
        Case::post("malformed JSON", br#"{"resourceType": "Patient", "name": [{"family": "Corpus""#.to_vec())
            .refused(StatusCode::BAD_REQUEST, "not valid JSON"),
        Case { content_type: "text/plain", ..Case::post("a wrong content type", good.to_string().into_bytes()) }
            .refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type"),
        Case::post("a resourceType that is not the URL's", body(json!({"resourceType": "Organization", "name": "Corpus"})))
            .refused(StatusCode::BAD_REQUEST, "is a Organization but the URL is for Patient"),
        Case::put("an id that is not the URL's", &update, body(json!({"resourceType": "Patient", "id": "someone-else", "name": [{"family": "Corpus"}]})))
            .refused(StatusCode::BAD_REQUEST, "does not match the id in the URL"),
        Case::put("an update without an id", &update, body(json!({"resourceType": "Patient", "name": [{"family": "Corpus"}]})))
            .refused(StatusCode::BAD_REQUEST, "must carry the id"),
        Case::post("an oversized body", body(json!({"resourceType": "Patient", "name": [{"family": "Corpus", "text": "x".repeat(TEST_MAX_BODY)}]})))
            .refused(StatusCode::PAYLOAD_TOO_LARGE, "larger than"),
        Case::post("an invalid FHIR value", body(json!({"resourceType": "Patient", "name": [{"family": "Corpus"}], "birthDate": "1990-13-45"})))
            .refused(StatusCode::BAD_REQUEST, "birthDate"),
        Case::post("an unknown element", body(json!({"resourceType": "Patient", "name": [{"family": "Corpus"}], "favouriteColour": "blue"})))
            .refused(StatusCode::BAD_REQUEST, "favouriteColour"),
    ];
    for case in cases {
        let what = case.what;
        let answer = raw(&rest, case.method, &case.path, case.content_type, case.body).await;
        assert_eq!(answer.status, case.status, "{what}: {}", answer.body);
        assert_eq!(answer.body["resourceType"], "OperationOutcome", "{what}");
        let text = answer.body.to_string();
        assert!(
            text.contains(case.says),
            "{what}: expected '{}' in {text}",
            case.says
        );
    }
    assert_eq!(patients_named(&rest, "Corpus").await, 1);
    let unchanged = rest.get(&format!("Patient/{id}")).await;
    assert_eq!(unchanged.header("etag"), Some("W/\"1\""));
}

async fn a_bundle_with_too_many_entries_is_refused_whole(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let entries: Vec<Value> = (0..=TEST_MAX_ENTRIES)
        .map(|n| {
            json!({"resource": {"resourceType": "Patient", "name": [{"family": "Crowd", "given": [format!("C{n}")]}]},
                   "request": {"method": "POST", "url": "Patient"}})
        })
        .collect();
    for kind in ["batch", "transaction"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
        let answer = rest.post("", &bundle).await;
        answer.assert_outcome(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            answer
                .diagnostics()
                .contains(&format!("at most {TEST_MAX_ENTRIES}")),
            "{}",
            answer.body
        );
    }
    assert_eq!(patients_named(&rest, "Crowd").await, 0);
}

async fn unknown_search_parameters_are_refused_unless_the_client_asks_for_leniency(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    rest.create(&json!({"resourceType": "Patient", "name": [{"family": "Lenient"}]}))
        .await;
    let strict = rest
        .send(
            Method::GET,
            "Patient?family=Lenient&famly=x",
            None,
            &[("prefer", "handling=strict")],
        )
        .await;
    strict.assert_outcome(StatusCode::BAD_REQUEST);
    assert!(strict.diagnostics().contains("famly"), "{}", strict.body);
    // Strict is also the default: a mistyped parameter never widens a search.
    rest.get("Patient?family=Lenient&famly=x")
        .await
        .assert_outcome(StatusCode::BAD_REQUEST);
    let lenient = rest
        .send(
            Method::GET,
            "Patient?family=Lenient&famly=x",
            None,
            &[("prefer", "handling=lenient")],
        )
        .await;
    assert_eq!(lenient.status, StatusCode::OK);
    let entries = lenient.body["entry"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .count(),
        1
    );
    let warning = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .unwrap();
    assert!(
        warning["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("famly")
    );
}

async fn xml_unknown_types_and_ids_get_406_and_404(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    rest.get("Patient?_format=xml")
        .await
        .assert_outcome(StatusCode::NOT_ACCEPTABLE);
    rest.send(
        Method::GET,
        "Patient",
        None,
        &[("accept", "application/fhir+xml")],
    )
    .await
    .assert_outcome(StatusCode::NOT_ACCEPTABLE);
    let unknown_type = rest.get("Spaceship/1").await;
    unknown_type.assert_outcome(StatusCode::NOT_FOUND);
    assert!(unknown_type.diagnostics().contains("Spaceship"));
    rest.get("Patient/no-such-id")
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    rest.get("Patient/no-such-id/_history/1")
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    rest.send(Method::PATCH, "Patient/x", None, &[])
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    rest.get("Patient/$nonsense")
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
}

async fn a_request_slower_than_the_timeout_is_cut_off_with_an_outcome(backend: Backend) {
    let Some(rest) = RestNode::spawn_with(backend, std::time::Duration::from_millis(300)).await
    else {
        return;
    };
    // A body that never finishes arriving: the client sends a little, then
    // waits.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(b"{\"resourceType\":".to_vec())).await.unwrap();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let response = rest
        .http
        .post(rest.url("Patient"))
        .header("content-type", "application/fhir+json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("answered before the body ends");
    let answer = corridor_tests::rest::read(response).await;
    answer.assert_outcome(StatusCode::REQUEST_TIMEOUT);
    drop(tx);
}

for_each_backend!(
    each_bad_request_is_refused_with_its_status_and_stores_nothing,
    a_bundle_with_too_many_entries_is_refused_whole,
    unknown_search_parameters_are_refused_unless_the_client_asks_for_leniency,
    xml_unknown_types_and_ids_get_406_and_404,
    a_request_slower_than_the_timeout_is_cut_off_with_an_outcome,
);
