//! The Watch feed of referrals, followed as the NGO's and the hospital's
//! systems would: ten thousand events through a dropped connection with
//! nothing lost or repeated, resuming across a restart of the service and
//! across replicas, only the referrals the caller takes part in, and one
//! referral's whole life in commit order with its kinds and statuses. On
//! SQLite and on PostgreSQL.
//!
//! Waits are bounded only to turn a hang into a failure.

use std::collections::HashMap;
use std::time::Duration;

use corridor_proto::fhir::v1::Resource;
use corridor_proto::referrals::v1 as pb;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_runtime::auth::AUTHORIZATION;
use corridor_tests::referral::{self, Parties, acting_for};
use corridor_tests::{Backend, FullNode, ReferralsApp, expression, for_each_backend};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Code, Streaming};

for_each_backend!(
    a_watcher_dropped_after_3000_events_resumes_and_gets_all_10000_exactly_once,
    a_watcher_resumes_after_the_service_restarts_and_gets_exactly_the_later_events,
    a_watcher_sees_only_the_referrals_its_organization_takes_part_in,
    a_watch_without_a_token_is_refused_naming_the_metadata,
    one_referrals_life_arrives_in_commit_order_with_its_kinds_and_statuses,
);

/// How long any single wait may take before the test counts it as a hang.
const PATIENCE: Duration = Duration::from_secs(60);

type Client = ReferralsServiceClient<corridor_tests::Authed>;

/// One event as a watcher saw it, or as the writes that made it predict it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    sequence: i64,
    kind: String,
    /// `Type/id/_history/version` of the resource as the change left it.
    resource: String,
    /// For a Task, the status before and after the change.
    task_status: Option<(String, String)>,
}

/// `Type/id/_history/version` of a stored resource.
fn version_of(resource: &Resource) -> String {
    format!(
        "{}/{}/_history/{}",
        resource.resource_type, resource.id, resource.version_id
    )
}

/// The event a write of `resource` should be told as.
fn predicted(
    sequence: i64,
    kind: &str,
    resource: &Resource,
    task_status: Option<(&str, &str)>,
) -> Event {
    Event {
        sequence,
        kind: kind.to_owned(),
        resource: version_of(resource),
        task_status: task_status.map(|(from, to)| (from.to_owned(), to.to_owned())),
    }
}

fn event_of(response: pb::WatchResponse) -> Event {
    let event = response.event.expect("an event");
    let resource = event.resource.expect("the resource");
    let task_status = (resource.resource_type == "Task").then(|| {
        assert_eq!(
            referral::status_of(&resource),
            event.status,
            "event {}: the status is the Task's own",
            event.sequence
        );
        (event.previous_status.clone(), event.status.clone())
    });
    Event {
        sequence: event.sequence,
        kind: event.kind,
        resource: version_of(&resource),
        task_status,
    }
}

/// A client on an HTTP/2 connection of its own to `app`, as a separate
/// system would have.
async fn client_of(app: &ReferralsApp) -> Client {
    ReferralsServiceClient::new(corridor_tests::connect(app.addr).await)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// Watch on behalf of `organization` after `after`.
async fn open(client: &Client, organization: &str, after: i64) -> Streaming<pb::WatchResponse> {
    let request = acting_for(
        organization,
        pb::WatchRequest {
            after_sequence: after,
        },
    );
    tokio::time::timeout(PATIENCE, client.clone().watch(request))
        .await
        .expect("Watch answers")
        .unwrap_or_else(|status| panic!("{organization} cannot watch: {status:?}"))
        .into_inner()
}

/// The next event of `stream`; panics if it ends, fails or hangs.
async fn next(stream: &mut Streaming<pb::WatchResponse>, who: &str, got: usize) -> Event {
    match tokio::time::timeout(PATIENCE, stream.message()).await {
        Ok(Ok(Some(response))) => event_of(response),
        Ok(Ok(None)) => panic!("{who}: the watch ended after {got} events"),
        Ok(Err(status)) => panic!("{who}: the watch failed after {got} events: {status:?}"),
        Err(_) => panic!("{who}: no event within {PATIENCE:?} after {got} events"),
    }
}

/// Read exactly `n` events.
async fn take(stream: &mut Streaming<pb::WatchResponse>, n: usize, who: &str) -> Vec<Event> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let event = next(stream, who, got.len()).await;
        got.push(event);
    }
    got
}

/// Read `n` events in a task of its own, so that the watcher keeps up while
/// the test does other things; the stream comes back for more.
fn reading(
    mut stream: Streaming<pb::WatchResponse>,
    n: usize,
    who: &'static str,
) -> JoinHandle<(Vec<Event>, Streaming<pb::WatchResponse>)> {
    tokio::spawn(async move {
        let got = take(&mut stream, n, who).await;
        (got, stream)
    })
}

/// Refer `service_request` through `client` on behalf of `organization`:
/// the stored ServiceRequest and Task.
async fn refer(
    client: &Client,
    organization: &str,
    service_request: &Value,
) -> (Resource, Resource) {
    let request = acting_for(
        organization,
        pb::CreateReferralRequest {
            service_request: service_request.to_string(),
            draft: false,
        },
    );
    let response = tokio::time::timeout(PATIENCE, client.clone().create_referral(request))
        .await
        .expect("CreateReferral answers")
        .unwrap_or_else(|status| panic!("{organization} cannot refer: {status:?}"))
        .into_inner();
    (
        response.service_request.expect("service request"),
        response.task.expect("task"),
    )
}

/// Move `task` (at the version it carries) to `status` through `client` on
/// behalf of `organization`: the stored Task.
async fn move_to(client: &Client, organization: &str, task: &Resource, status: &str) -> Resource {
    let request = acting_for(
        organization,
        pb::TransitionRequest {
            task_id: task.id.clone(),
            if_match: task.version_id.clone(),
            status: status.to_owned(),
            reason: String::new(),
            outputs: Vec::new(),
        },
    );
    tokio::time::timeout(PATIENCE, client.clone().transition(request))
        .await
        .expect("Transition answers")
        .unwrap_or_else(|status_| {
            panic!(
                "{organization} cannot move {} to {status}: {status_:?}",
                task.id
            )
        })
        .into_inner()
        .task
        .expect("task")
}

/// Stop the node's referrals service, then start a new one on the same
/// database (SQLite allows one process at a time, so never both at once).
async fn restart_referrals(node: FullNode) -> FullNode {
    let FullNode {
        identity,
        encounters,
        referrals,
        encounters_db,
        referrals_db,
    } = node;
    tokio::time::timeout(PATIENCE, referrals.stop())
        .await
        .expect("the referrals service stops");
    let referrals = ReferralsApp::spawn(
        &referrals_db,
        &identity.url(),
        &format!("http://{}", encounters.addr),
        |_| {},
    )
    .await;
    FullNode {
        identity,
        encounters,
        referrals,
        encounters_db,
        referrals_db,
    }
}

/// Assert that `saw` are the sequences `first`, `first + 1`, … with no gap
/// or repeat, naming the first that is not.
fn assert_consecutive(saw: &[Event], first: i64, who: &str) {
    for (i, event) in saw.iter().enumerate() {
        let expected = first + i64::try_from(i).expect("small");
        assert_eq!(
            event.sequence, expected,
            "{who}: event {i} has sequence {}, expected {expected} (a gap, a repeat or a reordering)",
            event.sequence
        );
    }
}

/// Assert that `got` is exactly `expected`, naming the first difference.
fn assert_same(got: &[Event], expected: &[Event], who: &str) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "{who}: event {i} is {:#?}, expected {:#?}",
            got[i], expected[i]
        );
    }
    assert_eq!(got, expected, "{who}: number of events");
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Make `count` referrals through `client`, one after another, counting
/// each on `made`; the ServiceRequest and Task of each.
fn referring(
    client: Client,
    parties: Parties,
    patient: String,
    count: usize,
    made: watch::Sender<usize>,
) -> JoinHandle<Vec<(Resource, Resource)>> {
    tokio::spawn(async move {
        let request = referral::service_request(&parties, &patient);
        let mut referrals = Vec::with_capacity(count);
        for _ in 0..count {
            referrals.push(refer(&client, &parties.ngo, &request).await);
            made.send_modify(|n| *n += 1);
        }
        referrals
    })
}

async fn a_watcher_dropped_after_3000_events_resumes_and_gets_all_10000_exactly_once(
    backend: Backend,
) {
    const REFERRALS: usize = 5_000;
    const EVENTS: usize = 2 * REFERRALS;
    const PRODUCERS: usize = 8;
    const BEFORE_DROP: usize = 3_000;
    const _: () = assert!(REFERRALS.is_multiple_of(PRODUCERS), "equal shares");
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let parties = referral::parties(&node).await;
    let patient = referral::patient(&node).await;
    let ngo_system = client_of(&node.referrals).await;
    let mut first = open(&ngo_system, &parties.ngo, 0).await;

    let (made, mut referred) = watch::channel(0);
    let mut producers = Vec::with_capacity(PRODUCERS);
    for _ in 0..PRODUCERS {
        producers.push(referring(
            client_of(&node.referrals).await,
            parties.clone(),
            patient.clone(),
            REFERRALS / PRODUCERS,
            made.clone(),
        ));
    }
    drop(made);

    let before = take(&mut first, BEFORE_DROP, "NGO before the drop").await;
    drop(first);
    // The referrals go on while the NGO's system is away; it comes back
    // mid-stream, with a backlog to catch up on.
    let last_seen = before.last().expect("events read").sequence;
    let backlog = usize::try_from(last_seen).expect("positive") / 2 + 1_000;
    // Thousands of referrals, each audited in identity before it commits,
    // while the rest of the suite runs on two cores: a bound on progress,
    // not a speed test.
    tokio::time::timeout(
        PATIENCE * 8,
        referred.wait_for(|&n| n >= backlog.min(REFERRALS)),
    )
    .await
    .expect("the referrals get on")
    .expect("progress");
    let mut resumed = open(&ngo_system, &parties.ngo, last_seen).await;
    let after = take(&mut resumed, EVENTS - BEFORE_DROP, "NGO after resuming").await;

    let mut referrals = Vec::with_capacity(REFERRALS);
    for producer in producers {
        referrals.extend(producer.await.expect("producer"));
    }
    assert_eq!(referrals.len(), REFERRALS);
    let mut saw = before;
    saw.extend(after);
    assert_consecutive(&saw, 1, "NGO");
    assert_eq!(saw.len(), EVENTS);

    // Each event is one of the versions the referrals stored, told once,
    // with its kind; a referral's ServiceRequest and Task were committed
    // together, so their events are adjacent.
    let mut unseen: HashMap<String, Event> = referrals
        .iter()
        .flat_map(|(sr, task)| {
            [
                predicted(0, "service-request-created", sr, None),
                predicted(0, "created", task, Some(("", "requested"))),
            ]
        })
        .map(|e| (e.resource.clone(), e))
        .collect();
    assert_eq!(unseen.len(), EVENTS, "every referral stored new resources");
    let mut sequence_of = HashMap::with_capacity(EVENTS);
    for event in &saw {
        let told = unseen.remove(&event.resource).unwrap_or_else(|| {
            panic!(
                "event {} is of {}, which is not a version the referrals made, or was told before",
                event.sequence, event.resource
            )
        });
        assert_eq!(
            *event,
            Event {
                sequence: event.sequence,
                ..told
            }
        );
        sequence_of.insert(event.resource.clone(), event.sequence);
    }
    assert!(unseen.is_empty(), "{} versions never told", unseen.len());
    for (sr, task) in &referrals {
        assert_eq!(
            sequence_of[&version_of(task)],
            sequence_of[&version_of(sr)] + 1,
            "the Task of {} directly follows its ServiceRequest",
            sr.id
        );
    }

    // Nothing else was pending on the resumed stream: the next event it
    // yields is the next change made.
    let (_, task) = &referrals[0];
    let received = move_to(&ngo_system, &parties.hospital, task, "received").await;
    assert_eq!(
        next(&mut resumed, "NGO", EVENTS).await,
        predicted(
            10_001,
            "status-changed",
            &received,
            Some(("requested", "received"))
        )
    );
}

async fn a_watcher_resumes_after_the_service_restarts_and_gets_exactly_the_later_events(
    backend: Backend,
) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let parties = referral::parties(&node).await;
    let patient = referral::patient(&node).await;
    let request = referral::service_request(&parties, &patient);
    let hospital_system = client_of(&node.referrals).await;
    let mut stream = open(&hospital_system, &parties.hospital, 0).await;
    let (sr, task) = referral::refer(&node, &parties.ngo, &request)
        .await
        .expect("refer");
    let received = referral::transition(&node, &parties.hospital, &task, "received", "", &[])
        .await
        .expect("received");
    let before = take(&mut stream, 3, "hospital before the restart").await;
    assert_same(
        &before,
        &[
            predicted(1, "service-request-created", &sr, None),
            predicted(2, "created", &task, Some(("", "requested"))),
            predicted(
                3,
                "status-changed",
                &received,
                Some(("requested", "received")),
            ),
        ],
        "hospital before the restart",
    );

    let node = restart_referrals(node).await;
    let end = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the watch ends when the service stops")
        .expect_err("the watch ends with a status");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert!(
        end.message().contains("after_sequence"),
        "the status says how to resume: {}",
        end.message()
    );

    // The new instance, on the same database, goes on from where the old
    // one stopped; the hospital's system reconnects after what it saw,
    // while two changes wait for it and one comes later.
    let hospital_system = client_of(&node.referrals).await;
    let accepted = referral::transition(&node, &parties.hospital, &received, "accepted", "", &[])
        .await
        .expect("accepted by the new instance");
    let (second_sr, second_task) = referral::refer(&node, &parties.ngo, &request)
        .await
        .expect("refer through the new instance");
    let mut resumed = open(&hospital_system, &parties.hospital, before[2].sequence).await;
    let backlog = take(&mut resumed, 3, "hospital after the restart").await;
    let in_progress =
        referral::transition(&node, &parties.hospital, &accepted, "in-progress", "", &[])
            .await
            .expect("in progress");
    let live = next(&mut resumed, "hospital after the restart", 3).await;
    let mut after = backlog;
    after.push(live);
    assert_same(
        &after,
        &[
            predicted(
                4,
                "status-changed",
                &accepted,
                Some(("received", "accepted")),
            ),
            predicted(5, "service-request-created", &second_sr, None),
            predicted(6, "created", &second_task, Some(("", "requested"))),
            predicted(
                7,
                "status-changed",
                &in_progress,
                Some(("accepted", "in-progress")),
            ),
        ],
        "hospital after the restart",
    );
}

/// Two referrals instances on one PostgreSQL database: what is committed
/// through one reaches watchers on the other, in the one commit order.
/// PostgreSQL only: replicas share a database server, which SQLite is not.
mod a_watcher_on_one_replica_sees_events_committed_through_another_in_order {
    use super::*;

    const WRITERS: usize = 4;
    const REFERRALS_EACH: usize = 10;
    /// A referral's two events and three transitions.
    const EVENTS_EACH: usize = 5;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(node) = FullNode::spawn(Backend::Postgres).await else {
            return;
        };
        let second = node.another_referrals().await;
        let parties = referral::parties(&node).await;
        let patient = referral::patient(&node).await;
        let request = referral::service_request(&parties, &patient);
        let on_a = client_of(&node.referrals).await;
        let on_b = client_of(&second).await;

        let mut watcher_b = open(&on_b, &parties.hospital, 0).await;
        let (sr, task) = refer(&on_a, &parties.ngo, &request).await;
        assert_same(
            &take(&mut watcher_b, 2, "hospital on B").await,
            &[
                predicted(1, "service-request-created", &sr, None),
                predicted(2, "created", &task, Some(("", "requested"))),
            ],
            "hospital on B",
        );

        // Then several systems refer and move referrals through A at once,
        // with a watcher on each replica.
        let total = WRITERS * REFERRALS_EACH * EVENTS_EACH;
        let watcher_a = reading(
            open(&on_a, &parties.hospital, 2).await,
            total,
            "hospital on A",
        );
        let watcher_b = reading(watcher_b, total, "hospital on B");
        let writers: Vec<JoinHandle<Vec<Vec<Resource>>>> = (0..WRITERS)
            .map(|_| {
                let client = on_a.clone();
                let parties = parties.clone();
                let request = request.clone();
                tokio::spawn(async move {
                    let mut made = Vec::with_capacity(REFERRALS_EACH);
                    for _ in 0..REFERRALS_EACH {
                        let (sr, task) = refer(&client, &parties.ngo, &request).await;
                        let mut versions = vec![sr, task];
                        for status in ["received", "accepted", "in-progress"] {
                            let current = versions.last().expect("task");
                            let moved = move_to(&client, &parties.hospital, current, status).await;
                            versions.push(moved);
                        }
                        made.push(versions);
                    }
                    made
                })
            })
            .collect();
        let mut referrals = Vec::new();
        for writer in writers {
            referrals.extend(writer.await.expect("writer"));
        }
        let (a_saw, _) = watcher_a.await.expect("watcher on A");
        let (b_saw, _) = watcher_b.await.expect("watcher on B");
        assert_consecutive(&b_saw, 3, "hospital on B");
        assert_same(&b_saw, &a_saw, "hospital on B, against A");

        // Every version A stored is there once, and each referral's events
        // come in the order they were made.
        let position: HashMap<&str, usize> = b_saw
            .iter()
            .enumerate()
            .map(|(i, e)| (e.resource.as_str(), i))
            .collect();
        assert_eq!(position.len(), total, "no version is told twice");
        let statuses = [
            ("", "requested"),
            ("requested", "received"),
            ("received", "accepted"),
            ("accepted", "in-progress"),
        ];
        for versions in &referrals {
            let places: Vec<usize> = versions
                .iter()
                .map(|v| {
                    *position
                        .get(version_of(v).as_str())
                        .unwrap_or_else(|| panic!("{} was not told on B", version_of(v)))
                })
                .collect();
            assert!(
                places.windows(2).all(|w| w[0] < w[1]),
                "the changes of Task {} are told in the order made: {places:?}",
                versions[1].id
            );
            let told: Vec<Event> = places.iter().map(|&i| b_saw[i].clone()).collect();
            assert_eq!(told[0].kind, "service-request-created");
            assert_eq!(told[1].kind, "created");
            for (event, (from, to)) in told[1..].iter().zip(statuses) {
                assert_eq!(
                    event.task_status,
                    Some((from.to_owned(), to.to_owned())),
                    "{}",
                    event.resource
                );
            }
            assert!(told[2..].iter().all(|e| e.kind == "status-changed"));
        }
        second.stop().await;
    }
}

async fn a_watcher_sees_only_the_referrals_its_organization_takes_part_in(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let ours = referral::parties(&node).await;
    let others = referral::parties(&node).await;
    let patient = referral::patient(&node).await;
    let client = client_of(&node.referrals).await;
    let ngo_view = open(&client, &ours.ngo, 0).await;
    let hospital_view = open(&client, &ours.hospital, 0).await;

    // B is between two other organizations; C is from our NGO to another
    // hospital; A is between our NGO and our hospital. A's last change is
    // made last, so each watcher has been told everything before it.
    let to_other_hospital = Parties {
        ngo: ours.ngo.clone(),
        hospital: others.hospital.clone(),
    };
    let (b_sr, b_task) = refer(
        &client,
        &others.ngo,
        &referral::service_request(&others, &patient),
    )
    .await;
    let (c_sr, c_task) = refer(
        &client,
        &ours.ngo,
        &referral::service_request(&to_other_hospital, &patient),
    )
    .await;
    let b_received = move_to(&client, &others.hospital, &b_task, "received").await;
    let (a_sr, a_task) = refer(
        &client,
        &ours.ngo,
        &referral::service_request(&ours, &patient),
    )
    .await;
    let c_received = move_to(&client, &others.hospital, &c_task, "received").await;
    let a_received = move_to(&client, &ours.hospital, &a_task, "received").await;
    let a_events = [
        predicted(6, "service-request-created", &a_sr, None),
        predicted(7, "created", &a_task, Some(("", "requested"))),
        predicted(
            9,
            "status-changed",
            &a_received,
            Some(("requested", "received")),
        ),
    ];
    let c_events = [
        predicted(3, "service-request-created", &c_sr, None),
        predicted(4, "created", &c_task, Some(("", "requested"))),
        predicted(
            8,
            "status-changed",
            &c_received,
            Some(("requested", "received")),
        ),
    ];

    let (hospital_saw, _) = reading(hospital_view, a_events.len(), "our hospital")
        .await
        .expect("our hospital's watcher");
    assert_same(&hospital_saw, &a_events, "our hospital");

    let mut ngo_expected = c_events.to_vec();
    ngo_expected.extend(a_events.iter().cloned());
    ngo_expected.sort_by_key(|e| e.sequence);
    let (ngo_saw, _) = reading(ngo_view, ngo_expected.len(), "our NGO")
        .await
        .expect("our NGO's watcher");
    assert_same(&ngo_saw, &ngo_expected, "our NGO");

    // The referral between the others was there to be told: their NGO,
    // watching from the start, gets its events, and nothing of C's, which
    // came in between.
    let mut theirs = open(&client, &others.ngo, 0).await;
    assert_same(
        &take(&mut theirs, 3, "their NGO").await,
        &[
            predicted(1, "service-request-created", &b_sr, None),
            predicted(2, "created", &b_task, Some(("", "requested"))),
            predicted(
                5,
                "status-changed",
                &b_received,
                Some(("requested", "received")),
            ),
        ],
        "their NGO",
    );
}

async fn a_watch_without_a_token_is_refused_naming_the_metadata(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let client = client_of(&node.referrals).await;
    let anonymous =
        ReferralsServiceClient::new(corridor_tests::connect_with(node.referrals.addr, None).await);
    let err = anonymous
        .clone()
        .watch(pb::WatchRequest { after_sequence: 0 })
        .await
        .expect_err("a watch by nobody is refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(expression(&err), AUTHORIZATION);
    assert!(
        err.message().contains(AUTHORIZATION),
        "the refusal names the metadata: {}",
        err.message()
    );
    let parties = referral::parties(&node).await;
    let err = client
        .clone()
        .watch(acting_for(
            &parties.ngo,
            pb::WatchRequest { after_sequence: -1 },
        ))
        .await
        .expect_err("a negative sequence is refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(expression(&err), "after_sequence");
}

async fn one_referrals_life_arrives_in_commit_order_with_its_kinds_and_statuses(backend: Backend) {
    let Some(node) = FullNode::spawn(backend).await else {
        return;
    };
    let parties = referral::parties(&node).await;
    let patient = referral::patient(&node).await;
    let (encounter, note) = referral::consultation(&node, &patient).await;
    let ngo_view = referral::watch(&node, &parties.ngo, 0).await;
    let live = reading(ngo_view, 10, "NGO, live");

    let (ngo, hospital) = (parties.ngo.as_str(), parties.hospital.as_str());
    let request = referral::service_request(&parties, &patient);
    let (sr, task) = referral::refer(&node, ngo, &request).await.expect("refer");
    let mut versions = vec![task];
    for (who, status) in [
        (hospital, "received"),
        (hospital, "accepted"),
        // The NGO pauses it (the patient moved on), the hospital resumes.
        (ngo, "on-hold"),
        (hospital, "accepted"),
        (hospital, "in-progress"),
    ] {
        let current = versions.last().expect("task");
        let moved = referral::transition(&node, who, current, status, "", &[])
            .await
            .unwrap_or_else(|e| panic!("{who} moves it to {status}: {e:?}"));
        versions.push(moved);
    }
    let completed = referral::transition(
        &node,
        hospital,
        versions.last().expect("task"),
        "completed",
        "",
        &[&encounter, &note],
    )
    .await
    .expect("completed with its outcome");
    versions.push(completed);

    // The ServiceRequest is then marked fulfilled, and withdrawn.
    let mut fulfilled: Value = serde_json::from_str(&sr.json).expect("JSON");
    fulfilled["status"] = "completed".into();
    let changed_sr = node
        .referrals
        .client
        .clone()
        .update(pb::UpdateRequest {
            resource_type: "ServiceRequest".to_owned(),
            id: sr.id.clone(),
            resource: fulfilled.to_string(),
            if_match: sr.version_id.clone(),
        })
        .await
        .expect("update the ServiceRequest")
        .into_inner()
        .resource
        .expect("resource");
    let deleted_sr = node
        .referrals
        .client
        .clone()
        .delete(pb::DeleteRequest {
            resource_type: "ServiceRequest".to_owned(),
            id: sr.id.clone(),
            if_match: changed_sr.version_id.clone(),
        })
        .await
        .expect("delete the ServiceRequest")
        .into_inner()
        .resource
        .expect("resource");

    let moves = [
        ("requested", "received"),
        ("received", "accepted"),
        ("accepted", "on-hold"),
        ("on-hold", "accepted"),
        ("accepted", "in-progress"),
        ("in-progress", "completed"),
    ];
    let mut expected = vec![
        predicted(1, "service-request-created", &sr, None),
        predicted(2, "created", &versions[0], Some(("", "requested"))),
    ];
    for (i, (version, (from, to))) in versions[1..].iter().zip(moves).enumerate() {
        let sequence = 3 + i64::try_from(i).expect("small");
        expected.push(predicted(
            sequence,
            "status-changed",
            version,
            Some((from, to)),
        ));
    }
    expected.push(predicted(9, "service-request-changed", &changed_sr, None));
    expected.push(predicted(10, "service-request-deleted", &deleted_sr, None));
    assert_eq!(
        kinds(&expected),
        [
            "service-request-created",
            "created",
            "status-changed",
            "status-changed",
            "status-changed",
            "status-changed",
            "status-changed",
            "status-changed",
            "service-request-changed",
            "service-request-deleted",
        ]
    );

    let (live_saw, _) = live.await.expect("NGO's watcher");
    assert_same(&live_saw, &expected, "NGO, live");
    // The hospital, watching only now, is told the same life from the log.
    let mut replay = referral::watch(&node, hospital, 0).await;
    let replay_saw = take(&mut replay, expected.len(), "hospital, from the start").await;
    assert_same(&replay_saw, &expected, "hospital, from the start");
}
