//! Mutual TLS: a node whose services serve and call each other over TLS
//! with certificates of its own CA, made here at test time. Without a
//! certificate of a CA the node trusts nobody connects when the node
//! requires one; the methods only services call refuse partners; and a
//! client registered to require mutual TLS gets tokens bound to its
//! certificate, good on no other connection.

use std::time::Duration;

use crate::tokens::{encounter, patient};
use base64::Engine;
use corridor_auth::keys::SigningKey;
use corridor_proto::encounters::v1 as enc;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_proto::referrals::v1 as refpb;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_runtime::tls::{Authority, Issued, Tls, development_certificates};
use corridor_tests::{
    ALL_SCOPES, Backend, Running, TestDatabase, admin_token, expression, for_each_backend,
    init_logs, service_config, token, token_settings, with_token,
};
use serde_json::json;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const PARTNER: &str = "Organization/clinic-mtls";

/// A whole node (identity, encounters, referrals) over mutual TLS, each
/// service on its own fresh database, and the CA that issued its
/// certificates.
struct TlsNode {
    ca: Authority,
    identity: std::net::SocketAddr,
    encounters: std::net::SocketAddr,
    referrals: std::net::SocketAddr,
    _running: Vec<Running>,
    _dbs: Vec<TestDatabase>,
}

impl TlsNode {
    /// Start it; `partner_ca` is a further CA whose client certificates
    /// the node accepts; `require` refuses connections without one.
    async fn spawn(
        backend: Backend,
        partner_ca: Option<&Authority>,
        require: bool,
    ) -> Option<Self> {
        init_logs();
        let (ca, node_cert) = development_certificates(None, &[]).expect("certificates");
        let tls = Tls::from_pem(
            &node_cert.cert_pem,
            &node_cert.key_pem,
            &ca.certificate().cert_pem,
            partner_ca.map(|p| p.certificate().cert_pem.as_str()),
            require,
        )
        .expect("the node's TLS");
        let identity_db = TestDatabase::new(backend).await?;
        let encounters_db = TestDatabase::new(backend).await?;
        let referrals_db = TestDatabase::new(backend).await?;

        let mut config = service_config(&identity_db, corridor_identity::SCHEMA);
        config.tls = Some(tls.clone());
        let identity = corridor_identity::Application::build_full(
            config,
            corridor_matching::Rules::default_rules(),
            token_settings().clone(),
        )
        .await
        .expect("identity builds");
        let identity_addr = identity.local_addr();
        let identity_url = format!("https://{identity_addr}");
        let mut running = vec![Running::start("identity", |s| {
            identity.run_until_stopped(s)
        })];

        let mut config = corridor_tests::encounters_config(&encounters_db, &identity_url);
        config.service.tls = Some(tls.clone());
        let mut encounters = corridor_encounters::Application::build(config)
            .await
            .expect("encounters builds");
        let encounters_addr = encounters.local_addr();
        let referrals =
            corridor_referrals::Application::build(corridor_referrals::ReferralsConfig {
                service: corridor_runtime::ServiceConfig {
                    tls: Some(tls.clone()),
                    ..service_config(&referrals_db, corridor_referrals::SCHEMA)
                },
                identity_url: identity_url.clone(),
                encounters_url: format!("https://{encounters_addr}"),
                deadline: Duration::from_secs(5),
                watch: corridor_runtime::follow::Limits {
                    buffer: corridor_encounters::DEFAULT_CHANNEL_BUFFER,
                    stall: corridor_encounters::DEFAULT_CHANNEL_STALL,
                },
                federation: None,
            })
            .await
            .expect("referrals builds");
        let referrals_addr = referrals.local_addr();
        encounters
            .link_referrals(&format!("https://{referrals_addr}"))
            .expect("referrals URL");
        running.push(Running::start("encounters", |s| {
            encounters.run_until_stopped(s)
        }));
        running.push(Running::start("referrals", |s| {
            referrals.run_until_stopped(s)
        }));
        Some(Self {
            ca,
            identity: identity_addr,
            encounters: encounters_addr,
            referrals: referrals_addr,
            _running: running,
            _dbs: vec![identity_db, encounters_db, referrals_db],
        })
    }

    /// A client certificate of the node's own CA.
    fn client_certificate(&self, client_id: &str) -> Issued {
        self.ca.client(client_id).expect("a client certificate")
    }
}

/// A TLS channel to `addr` that trusts the node CA `ca` and presents
/// `certificate`, if any. Connection errors surface on the first call.
async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Authority,
    certificate: Option<&Issued>,
) -> Channel {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.certificate().cert_pem));
    if let Some(certificate) = certificate {
        tls = tls.identity(Identity::from_pem(
            &certificate.cert_pem,
            &certificate.key_pem,
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("TLS settings")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}

fn identity(channel: Channel) -> IdentityServiceClient<Channel> {
    IdentityServiceClient::new(channel)
}

fn patient_search() -> pb::SearchRequest {
    pb::SearchRequest {
        resource_type: "Patient".to_owned(),
        ..Default::default()
    }
}

/// The status of a call that could not be made, or None when it succeeded.
async fn search_fails(channel: Channel, token: &str) -> Option<tonic::Status> {
    identity(channel)
        .search(with_token(token, patient_search()))
        .await
        .err()
}

/// `status` is a connection the server refused in the TLS handshake: a
/// transport failure, not an answer of the service (which would carry an
/// OperationOutcome). In TLS 1.3 the client may learn it from the
/// server's `alert`, or only see the connection closed, depending on
/// timing; an alert seen must be the expected one.
fn assert_refused_in_handshake(status: &tonic::Status, alert: &str) {
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{status:?}"
    );
    assert!(
        status.details().is_empty(),
        "the service answered: {status:?}"
    );
    let seen = format!("{status:?}");
    assert!(
        seen.contains("transport error") || seen.contains("connection closed"),
        "a transport failure: {seen}"
    );
    if seen.contains("fatal alert") {
        assert!(
            seen.contains(&format!("received fatal alert: {alert}")),
            "the server's TLS alert {alert}: {seen}"
        );
    }
}

async fn with_mtls_required_a_client_without_a_certificate_or_with_another_cas_cannot_connect(
    backend: Backend,
) {
    let Some(node) = TlsNode::spawn(backend, None, true).await else {
        return;
    };
    let partner = token(PARTNER, ALL_SCOPES);

    // Plaintext gRPC to a TLS service: no answer.
    let plain = Endpoint::from_shared(format!("http://{}", node.identity))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let refused = search_fails(plain, &partner).await;
    assert!(refused.is_some(), "plaintext must not reach a TLS service");

    // TLS, but no client certificate: the handshake is refused (in TLS 1.3
    // the client learns it from the server's alert on its first request).
    let refused = search_fails(tls_channel(node.identity, &node.ca, None).await, &partner)
        .await
        .expect("no certificate, no connection");
    assert_refused_in_handshake(&refused, "CertificateRequired");

    // A certificate of another CA, even one naming a service: refused.
    let stranger = Authority::generate("another CA").expect("a CA");
    for presented in [
        stranger.client("clinic-ehr").expect("cert"),
        stranger
            .service(&["encounters"], &["127.0.0.1"])
            .expect("cert"),
    ] {
        let refused = search_fails(
            tls_channel(node.identity, &node.ca, Some(&presented)).await,
            &partner,
        )
        .await
        .expect("another CA's certificate, no connection");
        assert_refused_in_handshake(&refused, "UnknownCA");
    }

    // A client certificate of the node's CA connects, and the services
    // call each other over mutual TLS on the partner's behalf: the
    // encounter's patient is checked with identity, its consent decision
    // asked, and its audit event recorded there by encounters.
    let certificate = node.client_certificate("clinic-ehr");
    let mut identity = identity(tls_channel(node.identity, &node.ca, Some(&certificate)).await);
    let patient_id = identity
        .create(with_token(
            &partner,
            pb::CreateRequest {
                resource: patient("Haddad"),
                ..Default::default()
            },
        ))
        .await
        .expect("a partner with a node certificate creates a Patient")
        .into_inner()
        .resource
        .expect("resource")
        .id;
    let mut encounters = EncountersServiceClient::new(
        tls_channel(node.encounters, &node.ca, Some(&certificate)).await,
    );
    let created = encounters
        .create(with_token(
            &partner,
            enc::CreateRequest {
                resource: encounter(&patient_id),
                ..Default::default()
            },
        ))
        .await
        .expect("encounters asks identity over mutual TLS")
        .into_inner()
        .resource
        .expect("resource");
    encounters
        .read(with_token(
            &partner,
            enc::ReadRequest {
                resource_type: "Encounter".to_owned(),
                id: created.id.clone(),
            },
        ))
        .await
        .expect("the author reads it back: consent and referrals asked over mutual TLS");
    let audit = identity
        .search(with_token(
            &admin_token(),
            pb::SearchRequest {
                resource_type: "AuditEvent".to_owned(),
                parameters: vec![
                    SearchParameter {
                        name: "entity".to_owned(),
                        value: format!("Encounter/{}", created.id),
                    },
                    SearchParameter {
                        name: "action".to_owned(),
                        value: "R".to_owned(),
                    },
                ],
                ..Default::default()
            },
        ))
        .await
        .expect("audit search")
        .into_inner()
        .bundle
        .expect("bundle")
        .json;
    assert!(
        audit.contains("corridor encounters"),
        "the read was audited by encounters, proved by its certificate: {audit}"
    );
}

async fn only_the_nodes_services_may_ask_what_only_services_ask(backend: Backend) {
    let partner_ca = Authority::generate("a partner's CA").expect("a CA");
    let Some(node) = TlsNode::spawn(backend, Some(&partner_ca), false).await else {
        return;
    };
    let partner = token(PARTNER, ALL_SCOPES);
    // A partner's own client certificate, and one its CA made to look like
    // a node service: neither is a node service.
    for presented in [
        node.client_certificate("clinic-ehr"),
        partner_ca
            .service(&["encounters", "referrals"], &["127.0.0.1"])
            .expect("cert"),
    ] {
        let mut identity = identity(tls_channel(node.identity, &node.ca, Some(&presented)).await);
        identity
            .search(with_token(&partner, patient_search()))
            .await
            .expect("a trusted client certificate connects");
        let denied = identity
            .consent_decision(with_token(&partner, pb::ConsentDecisionRequest::default()))
            .await
            .expect_err("consent decisions are for the node's services");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        assert!(expression(&denied).contains("authorization"));
        let denied = identity
            .record_audit(with_token(
                &partner,
                pb::RecordAuditRequest {
                    action: "R".to_owned(),
                    outcome: "0".to_owned(),
                    source: "encounters".to_owned(),
                    subtype: "read".to_owned(),
                    entities: vec!["Encounter/forged".to_owned()],
                    ..Default::default()
                },
            ))
            .await
            .expect_err("a partner cannot write audit events as a service");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        let denied = ReferralsServiceClient::new(
            tls_channel(node.referrals, &node.ca, Some(&presented)).await,
        )
        .referred_patients(with_token(&partner, refpb::ReferredPatientsRequest {}))
        .await
        .expect_err("whose referrals is the encounters service's question");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    }
    // Without a certificate (optional here) a partner still connects.
    identity(tls_channel(node.identity, &node.ca, None).await)
        .search(with_token(&partner, patient_search()))
        .await
        .expect("client certificates are optional unless required");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_request(key: &SigningKey, client_id: &str) -> pb::TokenRequest {
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": token_settings().token_url,
        "exp": now() + 240, "jti": uuid::Uuid::new_v4().to_string(),
    });
    pb::TokenRequest {
        grant_type: "client_credentials".to_owned(),
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        client_assertion: corridor_auth::tokens::sign_assertion(key, &claims).expect("signed"),
        scope: String::new(),
    }
}

async fn a_certificate_bound_clients_token_is_good_only_with_its_certificate(backend: Backend) {
    let Some(node) = TlsNode::spawn(backend, None, false).await else {
        return;
    };
    let certificate = node.client_certificate("hospital-ehr");
    let other = node.client_certificate("another-ehr");
    let with_cert = tls_channel(node.identity, &node.ca, Some(&certificate)).await;
    let mut identity_as_client = identity(with_cert.clone());
    let org = identity_as_client
        .create(with_token(
            &admin_token(),
            pb::CreateRequest {
                resource: json!({"resourceType": "Organization", "name": "Ospedale San Paolo"})
                    .to_string(),
                ..Default::default()
            },
        ))
        .await
        .expect("organization")
        .into_inner()
        .resource
        .expect("resource")
        .id;
    let key = SigningKey::generate().expect("key");
    let registered = identity_as_client
        .register_client(with_token(
            &admin_token(),
            pb::RegisterClientRequest {
                client_id: "hospital-ehr".to_owned(),
                organization: format!("Organization/{org}"),
                jwks: json!({"keys": [key.jwk]}).to_string(),
                scopes: "system/Patient.rs system/Encounter.rs".to_owned(),
                registered_by: "Practitioner/node-admin".to_owned(),
                require_certificate: true,
            },
        ))
        .await
        .expect("registered")
        .into_inner();
    assert!(registered.require_certificate);

    // No certificate on the token request: refused, naming why.
    let refused = identity(tls_channel(node.identity, &node.ca, None).await)
        .token(token_request(&key, "hospital-ehr"))
        .await
        .expect_err("a certificate-bound client asks over mutual TLS");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("mutual TLS"), "{refused:?}");

    let issued = identity_as_client
        .token(token_request(&key, "hospital-ehr"))
        .await
        .expect("a token over mutual TLS")
        .into_inner()
        .access_token;
    let payload = issued.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    let thumbprint = certificate.thumbprint().expect("a thumbprint");
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());

    // Good with its certificate, here and through a service that relays it.
    identity_as_client
        .search(with_token(&issued, patient_search()))
        .await
        .expect("the bound token on its own certificate's connection");
    EncountersServiceClient::new(tls_channel(node.encounters, &node.ca, Some(&certificate)).await)
        .search(with_token(
            &issued,
            enc::SearchRequest {
                resource_type: "Encounter".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect("encounters relays the bound token to identity as a node service");

    // Refused without it, and with another certificate.
    for channel in [
        tls_channel(node.identity, &node.ca, None).await,
        tls_channel(node.identity, &node.ca, Some(&other)).await,
    ] {
        let refused = search_fails(channel, &issued)
            .await
            .expect("a bound token on another connection");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("bound"), "{refused:?}");
    }
}

async fn a_node_without_tls_refuses_to_register_a_client_that_requires_it(backend: Backend) {
    let Some(app) = corridor_tests::IdentityApp::spawn(backend).await else {
        return;
    };
    let key = SigningKey::generate().expect("key");
    let refused = app
        .client
        .clone()
        .register_client(with_token(
            &admin_token(),
            pb::RegisterClientRequest {
                client_id: "hospital-ehr".to_owned(),
                organization: "Organization/anything".to_owned(),
                jwks: json!({"keys": [key.jwk]}).to_string(),
                scopes: "system/Patient.rs".to_owned(),
                registered_by: "Practitioner/node-admin".to_owned(),
                require_certificate: true,
            },
        ))
        .await
        .expect_err("no TLS, no certificate-bound client");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(expression(&refused), "require_certificate");
}

for_each_backend!(
    with_mtls_required_a_client_without_a_certificate_or_with_another_cas_cannot_connect,
    only_the_nodes_services_may_ask_what_only_services_ask,
    a_certificate_bound_clients_token_is_good_only_with_its_certificate,
    a_node_without_tls_refuses_to_register_a_client_that_requires_it,
);
