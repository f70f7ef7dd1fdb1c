//! Access tokens on every service.

use corridor_auth::keys::SigningKey;
use corridor_auth::{AccessClaims, NodeKeys};
use corridor_proto::encounters::v1 as enc;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1 as refpb;
use corridor_runtime::auth::AUTHORIZATION;
use corridor_tests::rest::RestNode;
use corridor_tests::{
    ALL_SCOPES, Backend, FullNode, TEST_ORGANIZATION, as_admin, claims, connect_with, expression,
    for_each_backend, sign, token, token_settings, with_token,
};
use serde_json::json;
use tonic::Code;

pub(crate) fn patient(family: &str) -> String {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Amina"]}], "birthDate": "1990-04-02"}).to_string()
}

pub(crate) fn encounter(patient_id: &str) -> String {
    json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        "subject": {"reference": format!("Patient/{patient_id}")},
    })
    .to_string()
}

/// Every flawed token a client could send, each with what is wrong.
fn flawed_tokens() -> Vec<(&'static str, Option<String>)> {
    let good = claims(TEST_ORGANIZATION, ALL_SCOPES);
    let valid = sign(&good);
    let (head, signature) = valid.rsplit_once('.').expect("a JWT");
    let mut tampered_signature: Vec<char> = signature.chars().collect();
    tampered_signature[10] = if tampered_signature[10] == 'A' {
        'B'
    } else {
        'A'
    };
    let stranger = NodeKeys::generate().expect("a key");
    vec![
        ("no token", None),
        (
            "an expired token",
            Some(sign(&AccessClaims {
                exp: good.iat - 3600,
                iat: good.iat - 3900,
                ..good.clone()
            })),
        ),
        (
            "a token for another audience",
            Some(sign(&AccessClaims {
                aud: "https://other-node.example/fhir".to_owned(),
                ..good.clone()
            })),
        ),
        (
            "a token from another issuer",
            Some(sign(&AccessClaims {
                iss: "https://other-node.example/fhir".to_owned(),
                ..good.clone()
            })),
        ),
        (
            "a tampered signature",
            Some(format!(
                "{head}.{}",
                tampered_signature.into_iter().collect::<String>()
            )),
        ),
        (
            "a token signed by a key that is not the node's",
            Some(corridor_auth::tokens::issue(&stranger, &good).expect("signed")),
        ),
        ("not a JWT", Some("not.a.jwt".to_owned())),
    ]
}

async fn total(node: &FullNode, resource_type: &str) -> i64 {
    let request = pb::SearchRequest {
        resource_type: resource_type.to_owned(),
        parameters: vec![SearchParameter {
            name: "_count".to_owned(),
            value: "1".to_owned(),
        }],
        page_token: String::new(),
    };
    if resource_type == "Encounter" {
        let request = enc::SearchRequest {
            resource_type: request.resource_type,
            parameters: request.parameters,
            page_token: String::new(),
        };
        return node
            .encounters
            .client
            .clone()
            .search(request)
            .await
            .expect("search")
            .into_inner()
            .bundle
            .expect("bundle")
            .total;
    }
    node.identity
        .client
        .clone()
        .search(request)
        .await
        .expect("search")
        .into_inner()
        .bundle
        .expect("bundle")
        .total
}

async fn every_service_refuses_a_call_without_a_valid_token_and_stores_nothing(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let patient_id = node
        .identity
        .register(&serde_json::from_str(&patient("Haddad")).unwrap())
        .await;
    for (what, bad) in flawed_tokens() {
        let mut identity =
            IdentityServiceClient::new(connect_with(node.identity.addr, bad.as_deref()).await);
        let mut encounters =
            EncountersServiceClient::new(connect_with(node.encounters.addr, bad.as_deref()).await);
        let mut referrals =
            corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient::new(
                connect_with(node.referrals.addr, bad.as_deref()).await,
            );
        let refusals = [
            (
                "identity Create",
                identity
                    .create(pb::CreateRequest {
                        resource: patient("Intruder"),
                        if_none_exist: String::new(),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "identity Read",
                identity
                    .read(pb::ReadRequest {
                        resource_type: "Patient".to_owned(),
                        id: patient_id.clone(),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "encounters Create",
                encounters
                    .create(enc::CreateRequest {
                        resource: encounter(&patient_id),
                        if_none_exist: String::new(),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "referrals Search",
                referrals
                    .search(refpb::SearchRequest {
                        resource_type: "Task".to_owned(),
                        parameters: vec![],
                        page_token: String::new(),
                    })
                    .await
                    .map(|_| ()),
            ),
        ];
        for (call, result) in refusals {
            let err = result.expect_err(&format!("{call} with {what} is refused"));
            assert_eq!(
                err.code(),
                Code::Unauthenticated,
                "{call} with {what}: {err:?}"
            );
            assert_eq!(expression(&err), AUTHORIZATION, "{call} with {what}");
        }
    }
    assert_eq!(
        total(&node, "Patient").await,
        1,
        "only the registered Patient"
    );
    assert_eq!(
        total(&node, "Encounter").await,
        0,
        "no Encounter was stored"
    );
}

async fn a_scope_that_does_not_cover_the_interaction_is_permission_denied_and_stores_nothing(
    backend: Backend,
) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let patient_id = node
        .identity
        .register(&serde_json::from_str(&patient("Haddad")).unwrap())
        .await;
    let reader = token(TEST_ORGANIZATION, "system/Patient.rs");
    let mut identity = node.identity.client.clone();
    // Reading and searching Patients is granted.
    identity
        .read(with_token(
            &reader,
            pb::ReadRequest {
                resource_type: "Patient".to_owned(),
                id: patient_id.clone(),
            },
        ))
        .await
        .expect("a Patient reader reads");
    // Writing is not, nor any Encounter.
    let err = identity
        .create(with_token(
            &reader,
            pb::CreateRequest {
                resource: patient("Intruder"),
                if_none_exist: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("system/Patient.c"),
        "{}",
        err.message()
    );
    let err = node
        .encounters
        .client
        .clone()
        .create(with_token(
            &reader,
            enc::CreateRequest {
                resource: encounter(&patient_id),
                if_none_exist: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A transaction is refused whole when one entry is not covered.
    let writer = token(TEST_ORGANIZATION, "system/Patient.cru");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": serde_json::from_str::<serde_json::Value>(&patient("Okafor")).unwrap(),
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": format!("Patient/{patient_id}")}},
        ],
    });
    let err = identity
        .transaction(with_token(
            &writer,
            pb::TransactionRequest {
                bundle: bundle.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("Bundle.entry[1]"),
        "{}",
        err.message()
    );
    // An operation is gated by the scope of what it does.
    let err = identity
        .merge(with_token(
            &reader,
            pb::MergeRequest {
                source_id: patient_id.clone(),
                target_id: patient_id.clone(),
                decided_by: "Practitioner/x".to_owned(),
                reason: "test".to_owned(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(total(&node, "Patient").await, 1, "nothing was written");
    assert_eq!(total(&node, "Encounter").await, 0);
}

async fn health_reflection_and_the_token_endpoint_need_no_token(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let anonymous = connect_with(node.identity.addr, None).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(anonymous.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token")
        .into_inner();
    assert_eq!(status.status, 1, "SERVING");
    let keys = IdentityServiceClient::new(anonymous)
        .jwks(pb::JwksRequest {})
        .await
        .expect("the keys need no token")
        .into_inner();
    assert_eq!(keys.issuer, token_settings().issuer);
    assert!(keys.jwks.contains(&token_settings().keys.current().kid));
}

async fn registering_a_client_takes_a_node_operators_token(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let org = node
        .identity
        .register(&json!({"resourceType": "Organization", "name": "Ospedale San Paolo"}))
        .await;
    let key = SigningKey::generate().unwrap();
    let request = pb::RegisterClientRequest {
        client_id: "hospital-ehr".to_owned(),
        organization: format!("Organization/{org}"),
        jwks: json!({"keys": [key.jwk]}).to_string(),
        scopes: "system/*.cruds".to_owned(),
        registered_by: "Practitioner/node-admin".to_owned(),
        require_certificate: false,
    };
    // A partner, even one with every scope, may not register clients.
    let err = node
        .identity
        .client
        .clone()
        .register_client(with_token(
            &token(TEST_ORGANIZATION, ALL_SCOPES),
            request.clone(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("corridor token --admin"),
        "{}",
        err.message()
    );
    node.identity
        .client
        .clone()
        .register_client(as_admin(request))
        .await
        .expect("the operator registers it");
}

/// A partner system's whole path: registered by the operator, it signs an
/// assertion, gets a token at the token endpoint, and uses it on identity
/// and on encounters (which verifies against the keys identity publishes).
async fn a_token_from_the_token_endpoint_is_accepted_by_every_service(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let org = node
        .identity
        .register(&json!({"resourceType": "Organization", "name": "Frontier Care NGO"}))
        .await;
    let key = SigningKey::generate().unwrap();
    node.identity
        .client
        .clone()
        .register_client(as_admin(pb::RegisterClientRequest {
            client_id: "ngo-app".to_owned(),
            organization: format!("Organization/{org}"),
            jwks: json!({"keys": [key.jwk]}).to_string(),
            scopes: "system/Patient.cruds system/Encounter.cruds".to_owned(),
            registered_by: "Practitioner/node-admin".to_owned(),
            require_certificate: false,
        }))
        .await
        .expect("registered");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = corridor_auth::tokens::sign_assertion(
        &key,
        &json!({"iss": "ngo-app", "sub": "ngo-app", "aud": token_settings().token_url,
                "exp": now + 240, "jti": uuid::Uuid::new_v4().to_string()}),
    )
    .unwrap();
    let anonymous = connect_with(node.identity.addr, None).await;
    let granted = IdentityServiceClient::new(anonymous)
        .token(pb::TokenRequest {
            grant_type: "client_credentials".to_owned(),
            client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                .to_owned(),
            client_assertion: assertion,
            scope: String::new(),
        })
        .await
        .expect("a token")
        .into_inner();
    let mut identity = IdentityServiceClient::new(
        connect_with(node.identity.addr, Some(&granted.access_token)).await,
    );
    let patient_id = identity
        .create(pb::CreateRequest {
            resource: patient("Haddad"),
            if_none_exist: String::new(),
        })
        .await
        .expect("the NGO registers a Patient")
        .into_inner()
        .resource
        .expect("resource")
        .id;
    let mut encounters = EncountersServiceClient::new(
        connect_with(node.encounters.addr, Some(&granted.access_token)).await,
    );
    encounters
        .create(enc::CreateRequest {
            resource: encounter(&patient_id),
            if_none_exist: String::new(),
        })
        .await
        .expect("the NGO records an Encounter");
    // Scopes it was not registered with are not in the token.
    let err = corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient::new(
        connect_with(node.referrals.addr, Some(&granted.access_token)).await,
    )
    .search(refpb::SearchRequest {
        resource_type: "Task".to_owned(),
        parameters: vec![],
        page_token: String::new(),
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}

async fn an_idempotency_key_replays_only_for_the_client_that_sent_it(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let create = |token: String, family: &'static str| {
        let mut client = node.identity.client.clone();
        async move {
            let mut request = with_token(
                &token,
                pb::CreateRequest {
                    resource: patient(family),
                    if_none_exist: String::new(),
                },
            );
            request
                .metadata_mut()
                .insert("idempotency-key", "visit-2026-11-29".parse().unwrap());
            client
                .create(request)
                .await
                .expect("created")
                .into_inner()
                .resource
                .expect("resource")
        }
    };
    let first = create(token(TEST_ORGANIZATION, ALL_SCOPES), "Haddad").await;
    let other = sign(&AccessClaims {
        sub: "another-client".to_owned(),
        ..claims("Organization/another", ALL_SCOPES)
    });
    let second = create(other, "Okafor").await;
    assert_ne!(first.id, second.id, "another client's key is its own");
    assert!(second.json.contains("Okafor"));
}

async fn the_rest_gateway_answers_401_with_an_operation_outcome_without_a_token(backend: Backend) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let answer = rest
        .send(
            reqwest::Method::GET,
            "Patient",
            None,
            &[("authorization", "Bearer not.a.jwt")],
        )
        .await;
    answer.assert_outcome(reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"corridor\"")
    );
    let bare = corridor_tests::rest::read(
        reqwest::Client::new()
            .get(rest.url("Patient"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    bare.assert_outcome(reqwest::StatusCode::UNAUTHORIZED);
    assert!(
        bare.diagnostics().contains("Bearer"),
        "{}",
        bare.diagnostics()
    );
    // The capability statement and discovery stay public.
    let metadata = corridor_tests::rest::read(
        reqwest::Client::new()
            .get(rest.url("metadata"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(metadata.status, reqwest::StatusCode::OK);
    // ... and says how to get a token.
    let security = &metadata.body["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        security["extension"][0]["extension"][0]["valueUri"],
        rest.url("token")
    );
    let denied = rest
        .send(
            reqwest::Method::POST,
            "Patient",
            Some(&serde_json::from_str(&patient("Haddad")).unwrap()),
            &[(
                "authorization",
                &format!("Bearer {}", token(TEST_ORGANIZATION, "system/Patient.rs")),
            )],
        )
        .await;
    denied.assert_outcome(reqwest::StatusCode::FORBIDDEN);
}

/// Over REST too: a partner's read of a record it has no relationship with
/// is 404, as for a missing one; a provider's `X-Break-Glass` read
/// succeeds; anyone else's is 403.
async fn over_rest_an_unrelated_record_is_not_found_unless_a_provider_breaks_the_glass(
    backend: Backend,
) {
    let Some(rest) = RestNode::spawn(backend).await else {
        return;
    };
    let org_type = "http://terminology.hl7.org/CodeSystem/organization-type";
    let clinic = rest
        .create(
            &json!({"resourceType": "Organization", "name": "Field clinic",
            "type": [{"coding": [{"system": org_type, "code": "cg"}]}]}),
        )
        .await;
    let hospital = rest
        .create(
            &json!({"resourceType": "Organization", "name": "Border hospital",
            "type": [{"coding": [{"system": org_type, "code": "prov"}]}]}),
        )
        .await;
    let as_clinic = RestNode::acting_for(&format!("Organization/{clinic}"));
    let as_hospital = RestNode::acting_for(&format!("Organization/{hospital}"));
    let patient = rest
        .create(&serde_json::from_str(&patient("Haddad")).unwrap())
        .await;
    let written = rest
        .send(
            reqwest::Method::POST,
            "Encounter",
            Some(&serde_json::from_str(&encounter(&patient)).unwrap()),
            &[("authorization", &as_clinic)],
        )
        .await;
    assert_eq!(
        written.status,
        reqwest::StatusCode::CREATED,
        "{}",
        written.body
    );
    let path = format!("Encounter/{}", written.body["id"].as_str().unwrap());
    assert_eq!(
        written.body["meta"]["tag"][0]["code"],
        format!("Organization/{clinic}"),
        "the record says who wrote it"
    );
    rest.send(
        reqwest::Method::GET,
        &path,
        None,
        &[("authorization", &as_hospital)],
    )
    .await
    .assert_outcome(reqwest::StatusCode::NOT_FOUND);
    let emergency = rest
        .send(
            reqwest::Method::GET,
            &path,
            None,
            &[
                ("authorization", &as_hospital),
                ("x-break-glass", "unconscious on arrival"),
            ],
        )
        .await;
    assert_eq!(
        emergency.status,
        reqwest::StatusCode::OK,
        "{}",
        emergency.body
    );
    let other_clinic = rest
        .create(
            &json!({"resourceType": "Organization", "name": "Another NGO",
            "type": [{"coding": [{"system": org_type, "code": "cg"}]}]}),
        )
        .await;
    rest.send(
        reqwest::Method::GET,
        &path,
        None,
        &[
            (
                "authorization",
                &RestNode::acting_for(&format!("Organization/{other_clinic}")),
            ),
            ("x-break-glass", "curious"),
        ],
    )
    .await
    .assert_outcome(reqwest::StatusCode::FORBIDDEN);
}

for_each_backend!(
    over_rest_an_unrelated_record_is_not_found_unless_a_provider_breaks_the_glass,
    every_service_refuses_a_call_without_a_valid_token_and_stores_nothing,
    a_scope_that_does_not_cover_the_interaction_is_permission_denied_and_stores_nothing,
    health_reflection_and_the_token_endpoint_need_no_token,
    registering_a_client_takes_a_node_operators_token,
    a_token_from_the_token_endpoint_is_accepted_by_every_service,
    an_idempotency_key_replays_only_for_the_client_that_sent_it,
    the_rest_gateway_answers_401_with_an_operation_outcome_without_a_token,
);
