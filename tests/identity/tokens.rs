//! The token endpoint: a registered partner system exchanges a signed
//! client assertion for an access token that verifies against the node's
//! published keys; every flawed assertion is refused UNAUTHENTICATED and
//! issues nothing.

use corridor_auth::keys::SigningKey;
use corridor_auth::tokens::Verifier;
use corridor_auth::{Interaction, Scopes};
use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, expression, for_each_backend};
use serde_json::{Value, json};
use tonic::Code;

/// What the identity service of the tests calls itself (its ephemeral
/// token settings).
const ISSUER: &str = "http://127.0.0.1:8080/fhir";
const TOKEN_URL: &str = "http://127.0.0.1:8080/fhir/token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A client assertion signed with `key`.
fn assertion(key: &SigningKey, client_id: &str, aud: &str, jti: &str) -> String {
    let claims =
        json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now() + 240, "jti": jti});
    corridor_auth::tokens::sign_assertion(key, &claims).expect("signed")
}

async fn register(app: &IdentityApp, client_id: &str, key: &SigningKey, scopes: &str) -> String {
    let org = app
        .register(&json!({"resourceType": "Organization", "name": "Ospedale San Paolo"}))
        .await;
    app.client
        .clone()
        .register_client(corridor_tests::as_admin(pb::RegisterClientRequest {
            client_id: client_id.to_owned(),
            organization: format!("Organization/{org}"),
            jwks: json!({"keys": [key.jwk]}).to_string(),
            scopes: scopes.to_owned(),
            registered_by: "Practitioner/node-admin".to_owned(),
            require_certificate: false,
        }))
        .await
        .expect("registered");
    format!("Organization/{org}")
}

fn token_request(assertion: String, scope: &str) -> pb::TokenRequest {
    pb::TokenRequest {
        grant_type: "client_credentials".to_owned(),
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        client_assertion: assertion,
        scope: scope.to_owned(),
    }
}

async fn a_registered_client_gets_a_token_that_verifies_with_the_published_keys(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let key = SigningKey::generate().unwrap();
    let org = register(
        &app,
        "hospital-ehr",
        &key,
        "system/Patient.rs system/Encounter.cruds",
    )
    .await;
    let answer = app
        .client
        .clone()
        .token(token_request(
            assertion(&key, "hospital-ehr", TOKEN_URL, "j-1"),
            "system/Patient.cruds system/Observation.rs",
        ))
        .await
        .expect("a token")
        .into_inner();
    assert_eq!(answer.token_type, "bearer");
    // Asked for more than granted: cut down to what the client may have.
    assert_eq!(answer.scope, "system/Patient.rs");
    let jwks = app
        .client
        .clone()
        .jwks(pb::JwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks;
    let verifier = Verifier {
        jwks: serde_json::from_str(&jwks).unwrap(),
        issuer: ISSUER.to_owned(),
        audience: ISSUER.to_owned(),
    };
    let claims = verifier.verify(&answer.access_token).expect("verifies");
    assert_eq!(claims.sub, "hospital-ehr");
    assert_eq!(claims.organization, org);
    let scopes = Scopes::parse(&claims.scope).unwrap();
    assert!(scopes.allows("Patient", Interaction::Read));
    assert!(!scopes.allows("Patient", Interaction::Create));
    app.stop().await;
}

async fn flawed_assertions_are_refused_unauthenticated(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let key = SigningKey::generate().unwrap();
    register(&app, "ngo-app", &key, "system/Patient.rs").await;
    let token = |assertion: String| {
        let mut client = app.client.clone();
        async move { client.token(token_request(assertion, "")).await }
    };
    let once = assertion(&key, "ngo-app", TOKEN_URL, "j-once");
    token(once.clone()).await.expect("first use");
    let stranger = SigningKey::generate().unwrap();
    for (what, signed) in [
        ("a replayed jti", once),
        (
            "another audience",
            assertion(&key, "ngo-app", "https://elsewhere/token", "j-2"),
        ),
        (
            "an unregistered key",
            assertion(&stranger, "ngo-app", TOKEN_URL, "j-3"),
        ),
        (
            "an unknown client",
            assertion(&key, "nobody", TOKEN_URL, "j-4"),
        ),
        ("not a JWT", "not.a.jwt".to_owned()),
    ] {
        let err = token(signed).await.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        assert_eq!(expression(&err), "client_assertion", "{what}");
    }
    let mut wrong_grant = token_request(assertion(&key, "ngo-app", TOKEN_URL, "j-5"), "");
    wrong_grant.grant_type = "password".to_owned();
    let err = app.client.clone().token(wrong_grant).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "grant_type");
    let err = app
        .client
        .clone()
        .token(token_request(
            assertion(&key, "ngo-app", TOKEN_URL, "j-6"),
            "system/Encounter.rs",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    app.stop().await;
}

async fn a_client_is_registered_only_with_public_keys_scopes_and_a_known_organization(
    backend: Backend,
) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let key = SigningKey::generate().unwrap();
    let org = app
        .register(&json!({"resourceType": "Organization", "name": "Frontier Care NGO"}))
        .await;
    // A JWK with its private part ("d") must never be stored.
    let mut private_value: Value = serde_json::to_value(&key.jwk).unwrap();
    private_value["d"] = json!("c2VjcmV0");
    let good = pb::RegisterClientRequest {
        client_id: "ngo-app".to_owned(),
        organization: format!("Organization/{org}"),
        jwks: json!({"keys": [key.jwk]}).to_string(),
        scopes: "system/Patient.rs".to_owned(),
        registered_by: "Practitioner/node-admin".to_owned(),
        require_certificate: false,
    };
    let cases = [
        (
            "client_id",
            pb::RegisterClientRequest {
                client_id: "has space".to_owned(),
                ..good.clone()
            },
        ),
        (
            "organization",
            pb::RegisterClientRequest {
                organization: "Organization/unknown".to_owned(),
                ..good.clone()
            },
        ),
        (
            "jwks",
            pb::RegisterClientRequest {
                jwks: json!({"keys": [private_value]}).to_string(),
                ..good.clone()
            },
        ),
        (
            "jwks",
            pb::RegisterClientRequest {
                jwks: "{}".to_owned(),
                ..good.clone()
            },
        ),
        (
            "scopes",
            pb::RegisterClientRequest {
                scopes: "user/Patient.rs".to_owned(),
                ..good.clone()
            },
        ),
        (
            "registered_by",
            pb::RegisterClientRequest {
                registered_by: " ".to_owned(),
                ..good.clone()
            },
        ),
    ];
    for (at, request) in cases {
        let err = app
            .client
            .clone()
            .register_client(corridor_tests::as_admin(request))
            .await
            .unwrap_err();
        assert_eq!(expression(&err), at, "{err:?}");
    }
    app.client
        .clone()
        .register_client(corridor_tests::as_admin(good.clone()))
        .await
        .expect("registered");
    let err = app
        .client
        .clone()
        .register_client(corridor_tests::as_admin(good))
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "client_id");
    app.stop().await;
}

for_each_backend!(
    a_registered_client_gets_a_token_that_verifies_with_the_published_keys,
    flawed_assertions_are_refused_unauthenticated,
    a_client_is_registered_only_with_public_keys_scopes_and_a_known_organization,
);
