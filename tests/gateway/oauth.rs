//! The token endpoint over HTTP, as a SMART Backend Services client calls
//! it, and SMART discovery.

use corridor_auth::keys::SigningKey;
use corridor_proto::identity::v1 as pb;
use corridor_tests::rest::RestNode;
use corridor_tests::{Backend, for_each_backend};
use reqwest::StatusCode;
use serde_json::json;

/// The token URL the test identity service expects as assertions'
/// audience (its ephemeral settings).
const TOKEN_URL: &str = "http://127.0.0.1:8080/fhir/token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_form(rest: &RestNode, form: &[(&str, &str)]) -> corridor_tests::rest::Answer {
    let body = form
        .iter()
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(k, v);
                s
            },
        )
        .finish();
    let response = rest
        .http
        .post(rest.url("token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    corridor_tests::rest::read(response).await
}

async fn a_client_gets_a_token_over_http_and_a_replay_is_refused(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let org = rest
        .create(&json!({"resourceType": "Organization", "name": "Ospedale San Paolo"}))
        .await;
    let key = SigningKey::generate().unwrap();
    rest.node
        .identity
        .client
        .clone()
        .register_client(corridor_tests::as_admin(pb::RegisterClientRequest {
            client_id: "hospital-ehr".to_owned(),
            organization: format!("Organization/{org}"),
            jwks: json!({"keys": [key.jwk]}).to_string(),
            scopes: "system/Patient.rs".to_owned(),
            registered_by: "Practitioner/node-admin".to_owned(),
            require_certificate: false,
        }))
        .await
        .expect("registered");
    let claims = json!({"iss": "hospital-ehr", "sub": "hospital-ehr", "aud": TOKEN_URL, "exp": now() + 240, "jti": "http-1"});
    let assertion = corridor_auth::tokens::sign_assertion(&key, &claims).unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
        ("scope", "system/Patient.rs"),
    ];
    let issued = post_form(&rest, &form).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    assert_eq!(issued.body["token_type"], "bearer");
    assert_eq!(issued.body["scope"], "system/Patient.rs");
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let token = issued.body["access_token"].as_str().unwrap();
    let kid = token.split('.').next().map(|h| {
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].clone()
    });
    let jwks = rest.get(".well-known/jwks.json").await;
    assert_eq!(jwks.body["keys"][0]["kid"], kid.unwrap());

    let replay = post_form(&rest, &form).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(replay.body["error"], "invalid_client");
    assert!(
        replay.body["error_description"]
            .as_str()
            .unwrap()
            .contains("jti")
    );
    let mut wrong = form;
    wrong[0] = ("grant_type", "password");
    let refused = post_form(&rest, &wrong).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "unsupported_grant_type");

    let discovery = rest.get(".well-known/smart-configuration").await;
    assert_eq!(discovery.body["token_endpoint"], json!(rest.url("token")));
    assert_eq!(
        discovery.body["grant_types_supported"],
        json!(["client_credentials"])
    );
}

for_each_backend!(a_client_gets_a_token_over_http_and_a_replay_is_refused);
