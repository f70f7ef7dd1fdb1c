//! Figures of the referrals service over gRPC, on SQLite and (when
//! CORRIDOR_TEST_POSTGRES_URL is set) PostgreSQL: transitions per second
//! with one client and with several concurrent clients, each moving its
//! referrals requested → received → accepted → in-progress while the
//! hospital watches, and the latency from the start of a Transition call to
//! the moment another client's Watch stream yields its event. Prints
//! figures.
//!
//! `cargo bench -p corridor-tests --bench referrals` (release profile).
//! CORRIDOR_BENCH_REFERRALS sets how many referrals each throughput run
//! moves (default 200, three transitions each);
//! CORRIDOR_BENCH_LATENCY_SAMPLES how many transitions are timed one at a
//! time (default 300).

use std::time::Instant;

use corridor_proto::fhir::v1::Resource;
use corridor_proto::referrals::v1 as pb;
use corridor_proto::referrals::v1::referrals_service_client::ReferralsServiceClient;
use corridor_tests::referral::{self, Parties, acting_for};
use corridor_tests::{Backend, FullNode, ReferralsApp, bench};
use tokio::sync::mpsc;
use tonic::Code;

const CONCURRENT_CLIENTS: usize = 8;
/// The moves each referral makes, all by its hospital.
const PATH: [&str; 3] = ["received", "accepted", "in-progress"];

type Client = ReferralsServiceClient<corridor_tests::Authed>;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let referrals = bench::setting("CORRIDOR_BENCH_REFERRALS", 200);
    let samples = bench::setting("CORRIDOR_BENCH_LATENCY_SAMPLES", 300);
    for backend in bench::backends() {
        let node = FullNode::spawn(backend).await.expect("services start");
        let mut bench = Bench::new(node, backend).await;
        bench.throughput(1, referrals).await;
        bench.throughput(CONCURRENT_CLIENTS, referrals).await;
        bench.latency(samples).await;
        bench.stop().await;
    }
}

/// A client on an HTTP/2 connection of its own, as a separate system.
async fn connect(app: &ReferralsApp) -> Client {
    ReferralsServiceClient::new(corridor_tests::connect(app.addr).await)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// One node, its two organizations and patient, and how many events its
/// feed holds so far.
struct Bench {
    node: FullNode,
    backend: Backend,
    parties: Parties,
    patient: String,
    /// The last sequence of the event feed.
    events: i64,
}

impl Bench {
    async fn new(node: FullNode, backend: Backend) -> Self {
        let parties = referral::parties(&node).await;
        let patient = referral::patient(&node).await;
        Self {
            node,
            backend,
            parties,
            patient,
            events: 0,
        }
    }

    async fn stop(self) {
        let FullNode {
            identity,
            encounters,
            referrals,
            encounters_db,
            referrals_db,
        } = self.node;
        referrals.stop().await;
        encounters.stop().await;
        identity.stop().await;
        drop((encounters_db, referrals_db));
    }

    /// `count` new referral Tasks, made by the NGO (not timed).
    async fn refer(&mut self, count: usize) -> Vec<Resource> {
        let client = connect(&self.node.referrals).await;
        let request = referral::service_request(&self.parties, &self.patient);
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let response = client
                .clone()
                .create_referral(acting_for(
                    &self.parties.ngo,
                    pb::CreateReferralRequest {
                        service_request: request.to_string(),
                        draft: false,
                    },
                ))
                .await
                .expect("refer")
                .into_inner();
            tasks.push(response.task.expect("task"));
        }
        self.events += 2 * i64::try_from(count).expect("count");
        tasks
    }

    /// `clients` hospital systems move `referrals` referrals in all, each
    /// its own share one after another, while the hospital watches; rate
    /// until the watcher has every event.
    async fn throughput(&mut self, clients: usize, referrals: usize) {
        let per_client = referrals / clients;
        let tasks = self.refer(per_client * clients).await;
        let transitions = tasks.len() * PATH.len();
        let watcher = tokio::spawn(follow(
            connect(&self.node.referrals).await,
            self.parties.hospital.clone(),
            self.events,
            transitions,
            None,
        ));
        let mut systems = Vec::with_capacity(clients);
        for _ in 0..clients {
            systems.push(connect(&self.node.referrals).await);
        }

        let start = Instant::now();
        let movers: Vec<_> = systems
            .into_iter()
            .zip(tasks.chunks(per_client))
            .map(|(client, share)| {
                let share = share.to_vec();
                let hospital = self.parties.hospital.clone();
                tokio::spawn(async move {
                    for task in share {
                        let mut task = task;
                        for status in PATH {
                            task = transition(&client, &hospital, &task, status).await;
                        }
                    }
                })
            })
            .collect();
        for mover in movers {
            mover.await.expect("mover");
        }
        let moved = start.elapsed();
        let cut_offs = watcher.await.expect("watcher");
        let delivered = start.elapsed();
        self.events += i64::try_from(transitions).expect("count");
        let total = transitions as f64;
        let plural = if clients == 1 { "" } else { "s" };
        println!(
            "referrals on {:?}: {clients} client{plural}: {:.0} transitions/s made, {:.0} events/s delivered to the hospital's watcher ({transitions} transitions of {} referrals{})",
            self.backend,
            total / moved.as_secs_f64(),
            total / delivered.as_secs_f64(),
            tasks.len(),
            if cut_offs == 0 {
                String::new()
            } else {
                format!(", {cut_offs} watcher cut-offs resumed")
            }
        );
    }

    /// One transition at a time, so that no event waits behind another:
    /// from the start of the hospital's Transition to the NGO's Watch stream
    /// yielding its event.
    async fn latency(&mut self, samples: usize) {
        let tasks = self.refer(samples.div_ceil(PATH.len())).await;
        let (arrivals, mut arrived) = mpsc::unbounded_channel();
        let watcher = tokio::spawn(follow(
            connect(&self.node.referrals).await,
            self.parties.ngo.clone(),
            self.events,
            samples,
            Some(arrivals),
        ));
        let hospital_system = connect(&self.node.referrals).await;
        let mut latencies = Vec::with_capacity(samples);
        let mut timed = 0;
        'referrals: for task in tasks {
            let mut task = task;
            for status in PATH {
                if timed == samples {
                    break 'referrals;
                }
                let start = Instant::now();
                task = transition(&hospital_system, &self.parties.hospital, &task, status).await;
                let (sequence, at) = arrived.recv().await.expect("the watcher follows");
                assert_eq!(sequence, self.events + 1, "the event of this transition");
                self.events = sequence;
                if timed > 0 {
                    // The first one also times the watcher's stream opening.
                    latencies.push(at.saturating_duration_since(start));
                }
                timed += 1;
            }
        }
        watcher.await.expect("watcher");
        latencies.sort();
        println!(
            "referrals on {:?}: Transition to another client's Watch stream: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} transitions, one at a time)",
            self.backend,
            bench::ms(bench::percentile(&latencies, 50)),
            bench::ms(bench::percentile(&latencies, 99)),
            bench::ms(latencies.last().copied().unwrap_or_default()),
            latencies.len()
        );
    }
}

/// Move `task` (at the version it carries) to `status` for `organization`.
async fn transition(
    client: &Client,
    organization: &str,
    task: &Resource,
    status: &str,
) -> Resource {
    client
        .clone()
        .transition(acting_for(
            organization,
            pb::TransitionRequest {
                task_id: task.id.clone(),
                if_match: task.version_id.clone(),
                status: status.to_owned(),
                reason: String::new(),
                outputs: Vec::new(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("move {} to {status}: {e:?}", task.id))
        .into_inner()
        .task
        .expect("task")
}

/// Watch for `organization` after `after` until `count` events have
/// arrived, reporting each sequence and when it arrived on `arrivals`. A
/// cut-off watcher resumes, as a real client would; the number of
/// cut-offs comes back.
async fn follow(
    client: Client,
    organization: String,
    after: i64,
    count: usize,
    arrivals: Option<mpsc::UnboundedSender<(i64, Instant)>>,
) -> usize {
    let mut last = after;
    let mut received = 0;
    let mut cut_offs = 0;
    while received < count {
        let mut stream = client
            .clone()
            .watch(acting_for(
                &organization,
                pb::WatchRequest {
                    after_sequence: last,
                },
            ))
            .await
            .expect("watch opens")
            .into_inner();
        while received < count {
            match stream.message().await {
                Ok(Some(response)) => {
                    let at = Instant::now();
                    let event = response.event.expect("an event");
                    assert_eq!(event.sequence, last + 1, "events arrive in order");
                    assert_eq!(event.kind, "status-changed");
                    last = event.sequence;
                    received += 1;
                    if let Some(arrivals) = &arrivals {
                        let _ = arrivals.send((event.sequence, at));
                    }
                }
                Ok(None) => panic!("the watch ended after {received} events"),
                Err(status) if status.code() == Code::ResourceExhausted => {
                    cut_offs += 1;
                    break;
                }
                Err(status) => panic!("the watch failed: {status:?}"),
            }
        }
    }
    cut_offs
}
