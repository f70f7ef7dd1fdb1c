//! Only configured peers, proven by their certificates, are heard: an
//! unknown node, a certificate from another peer's CA, and a message that
//! claims another node or jurisdiction are refused and audited; a
//! certificate no trusted CA signed does not even connect.

use corridor_proto::federation::v1 as pb;
use corridor_proto::federation::v1::federation_service_client::FederationServiceClient;
use corridor_runtime::tls::{Authority, Issued};
use corridor_tests::{Backend, for_each_backend};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::node::Node;
use crate::world;

for_each_backend!(unknown_miscertified_and_misclaiming_peers_are_refused_and_audited);

/// A client of `node`'s federation API that presents `certificate`.
async fn as_peer(
    node: &Node,
    certificate: &Issued,
) -> Result<FederationServiceClient<Channel>, tonic::transport::Error> {
    let ca = std::fs::read_to_string(node.dir().join("tls/ca.pem")).expect("CA");
    let channel = Channel::from_shared(node.endpoint())
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(
                    &certificate.cert_pem,
                    &certificate.key_pem,
                )),
        )?
        .connect()
        .await?;
    Ok(FederationServiceClient::new(channel))
}

fn message(sender: &str, jurisdiction: &str) -> pb::DeliverRequest {
    pb::DeliverRequest {
        message_id: format!("{sender}/t-unknown/2"),
        sender_node: sender.to_owned(),
        sender_jurisdiction: jurisdiction.to_owned(),
        referral_node: sender.to_owned(),
        referral_task: "t-unknown".to_owned(),
        sequence: 2,
        kind: "status".to_owned(),
        body: r#"{"status":"cancelled","reason":"test"}"#.to_owned(),
    }
}

async fn unknown_miscertified_and_misclaiming_peers_are_refused_and_audited(backend: Backend) {
    let _turn = crate::node::turn().await;
    let Some(mut b) = Node::prepare("fr-1", "FR", backend).await else {
        return;
    };
    // B's peers: it-1 (Italy) and c-1 (Germany), each with its own CA.
    let italy = Authority::generate("CA of node it-1").expect("CA");
    let germany = Authority::generate("CA of node c-1").expect("CA");
    for (name, ca) in [("it-1-ca.pem", &italy), ("c-1-ca.pem", &germany)] {
        std::fs::write(b.dir().join(name), &ca.certificate().cert_pem).expect("CA file");
    }
    b.peer_raw(
        "it-1",
        "IT",
        "https://127.0.0.1:9",
        &b.dir().join("it-1-ca.pem"),
    );
    b.peer_raw(
        "c-1",
        "DE",
        "https://127.0.0.1:9",
        &b.dir().join("c-1-ca.pem"),
    );
    b.start().await;
    let hosts = ["127.0.0.1"];

    // The real it-1, saying who it is: heard (the referral is unknown).
    let it_1 = italy.node(Some("it-1"), &hosts).expect("certificate");
    let mut client = as_peer(&b, &it_1).await.expect("it-1 connects");
    let heard = client
        .deliver(message("it-1", "IT"))
        .await
        .expect_err("no such referral");
    assert_eq!(heard.code(), Code::NotFound, "{heard:?}");

    let mut refusals = Vec::new();
    // A node the CA of it-1 certified, which B does not know.
    let unknown = italy.node(Some("x-9"), &hosts).expect("certificate");
    let refused = as_peer(&b, &unknown)
        .await
        .expect("the CA is trusted")
        .deliver(message("x-9", "IT"))
        .await
        .expect_err("an unknown peer");
    assert!(refused.message().contains("unknown peer"), "{refused:?}");
    refusals.push(refused);
    // it-1's name on a certificate of c-1's CA.
    let impostor = germany.node(Some("it-1"), &hosts).expect("certificate");
    let refused = as_peer(&b, &impostor)
        .await
        .expect("the CA is trusted")
        .deliver(message("it-1", "IT"))
        .await
        .expect_err("a certificate from the wrong CA");
    assert!(
        refused
            .message()
            .contains("the CA of peer c-1 signed it, but it names node it-1"),
        "{refused:?}"
    );
    refusals.push(refused);
    // The real it-1, claiming another jurisdiction, or another node.
    let refused = client
        .deliver(message("it-1", "DE"))
        .await
        .expect_err("another jurisdiction");
    assert!(
        refused.message().contains("claims jurisdiction 'DE'"),
        "{refused:?}"
    );
    refusals.push(refused);
    let refused = client
        .deliver(message("c-1", "DE"))
        .await
        .expect_err("another node");
    assert!(
        refused.message().contains("claims node 'c-1'"),
        "{refused:?}"
    );
    refusals.push(refused);
    for refused in &refusals {
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let outcome = corridor_tests::outcome(refused);
        assert_eq!(outcome["issue"][0]["code"], "forbidden", "{outcome}");
    }
    // A certificate no trusted CA signed, or none: no connection at all.
    let (_, stranger) =
        corridor_runtime::tls::development_certificates(Some("it-1"), &[]).expect("certificates");
    let stranger = match as_peer(&b, &stranger).await {
        Err(_) => None,
        Ok(mut client) => Some(client.deliver(message("it-1", "IT")).await),
    };
    // TLS 1.3 refuses the client's certificate after the client's side of
    // the handshake: the call then fails on the closed connection (which
    // hyper reports in several ways), and no handler hears it: a heard
    // caller gets NotFound or PermissionDenied, as above.
    assert!(
        stranger
            .as_ref()
            .is_none_or(|answer| answer.as_ref().is_err_and(|s| matches!(
                s.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown
            ))),
        "a stranger's certificate does not get through: {stranger:?}"
    );

    let audited = world::search(
        &b,
        "AuditEvent",
        &[("subtype", "$federation-receive"), ("outcome", "4")],
    )
    .await;
    assert_eq!(
        audited["total"], 4,
        "every refusal of a connected caller is audited: {audited}"
    );
    let text = audited.to_string();
    for why in [
        "unknown peer",
        "names node it-1",
        "claims jurisdiction",
        "claims node",
    ] {
        assert!(text.contains(why), "the trail says why ({why}): {text}");
    }
}
