//! Stopping the encounters service ends open consult channels at once,
//! with a status that tells the reader to resume elsewhere, instead of
//! holding the shutdown for its whole grace period.

use std::time::Duration;

use corridor_proto::encounters::v1 as pb;
use corridor_tests::clinic::{self, CLINICIAN};
use corridor_tests::{Backend, Node, for_each_backend};
use tonic::Code;

async fn an_open_channel_ends_unavailable_when_the_service_stops(backend: Backend) {
    let Some(node) = Node::spawn_with(backend, |config| {
        config.service.shutdown_grace = Duration::from_secs(120);
    })
    .await
    else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let mut client = node.encounters.client.clone();
    let mut stream = client
        .open_channel(pb::OpenChannelRequest {
            encounter_id: encounter.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    clinic::send(&mut client, &encounter, CLINICIAN, "still there?")
        .await
        .unwrap();
    let first = stream.message().await.unwrap().expect("a message");
    assert_eq!(first.message.expect("a message").sequence, 1);

    let Node {
        identity: _identity,
        encounters,
        encounters_db: _db,
    } = node;
    // Well inside the 120 s grace period: the open channel does not hold
    // the shutdown up.
    tokio::time::timeout(Duration::from_secs(60), encounters.stop())
        .await
        .expect("the service stops without waiting out the grace period");
    let end = stream
        .message()
        .await
        .expect_err("the channel ends with a status");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert!(
        end.message().contains("after_sequence"),
        "{}",
        end.message()
    );
}

for_each_backend!(an_open_channel_ends_unavailable_when_the_service_stops);
