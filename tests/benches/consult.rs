//! Figures of the consult channel over gRPC, on SQLite and (when
//! CORRIDOR_TEST_POSTGRES_URL is set) PostgreSQL: messages per second with
//! one sender and with several concurrent senders, each time with two
//! readers following the channel, and the end-to-end latency from the start
//! of one client's SendMessage to the moment another client's OpenChannel
//! stream yields that message. Prints figures.
//!
//! `cargo bench -p corridor-tests --bench consult` (release profile).
//! CORRIDOR_BENCH_MESSAGES sets how many messages each throughput run sends
//! (default 1000); CORRIDOR_BENCH_LATENCY_SAMPLES how many messages are
//! timed one at a time (default 500).

use std::time::Instant;

use corridor_proto::encounters::v1 as pb;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_tests::clinic::{self, CLINICIAN, INTERPRETER};
use corridor_tests::{Backend, EncountersApp, Node, bench};
use tokio::sync::mpsc;
use tonic::Code;

const READERS: usize = 2;
const CONCURRENT_SENDERS: usize = 4;

type Client = EncountersServiceClient<corridor_tests::Authed>;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let messages = bench::setting("CORRIDOR_BENCH_MESSAGES", 1000);
    let samples = bench::setting("CORRIDOR_BENCH_LATENCY_SAMPLES", 500);
    for backend in bench::backends() {
        let node = Node::spawn(backend).await.expect("services start");
        throughput(&node, backend, 1, messages).await;
        throughput(&node, backend, CONCURRENT_SENDERS, messages).await;
        latency(&node, backend, samples).await;
        node.stop().await;
    }
}

/// A client on an HTTP/2 connection of its own, as a separate device.
async fn connect(app: &EncountersApp) -> Client {
    EncountersServiceClient::new(corridor_tests::connect(app.addr).await)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// Follow `encounter_id`'s channel from the start until `count` messages
/// have arrived, reporting each sequence and when it arrived on `arrivals`.
/// A cut-off reader resumes, as a real client would; the number of
/// cut-offs comes back.
async fn follow(
    client: Client,
    encounter_id: String,
    count: usize,
    arrivals: Option<mpsc::UnboundedSender<(i64, Instant)>>,
) -> usize {
    let mut last = 0;
    let mut received = 0;
    let mut cut_offs = 0;
    while received < count {
        let mut stream = client
            .clone()
            .open_channel(pb::OpenChannelRequest {
                encounter_id: encounter_id.clone(),
                after_sequence: last,
            })
            .await
            .expect("channel opens")
            .into_inner();
        while received < count {
            match stream.message().await {
                Ok(Some(response)) => {
                    let at = Instant::now();
                    let message = response.message.expect("a message");
                    assert_eq!(message.sequence, last + 1, "messages arrive in order");
                    last = message.sequence;
                    received += 1;
                    if let Some(arrivals) = &arrivals {
                        let _ = arrivals.send((message.sequence, at));
                    }
                }
                Ok(None) => panic!("the channel ended after {received} messages"),
                Err(status) if status.code() == Code::ResourceExhausted => {
                    cut_offs += 1;
                    break;
                }
                Err(status) => panic!("the channel failed: {status:?}"),
            }
        }
    }
    cut_offs
}

/// `senders` clients send `messages` in all, each one after another, while
/// two readers follow; rate until both readers have everything.
async fn throughput(node: &Node, backend: Backend, senders: usize, messages: usize) {
    let (encounter, patient) = clinic::consultation(node).await;
    let people = [
        CLINICIAN.to_owned(),
        format!("Patient/{patient}"),
        INTERPRETER.to_owned(),
    ];
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let client = connect(&node.encounters).await;
        readers.push(tokio::spawn(follow(
            client,
            encounter.clone(),
            messages / senders * senders,
            None,
        )));
    }
    let mut clients = Vec::new();
    for _ in 0..senders {
        clients.push(connect(&node.encounters).await);
    }

    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(s, mut client)| {
            let encounter = encounter.clone();
            let sender = people[s % people.len()].clone();
            tokio::spawn(async move {
                for i in 0..messages / senders {
                    clinic::send(
                        &mut client,
                        &encounter,
                        &sender,
                        &format!("sender {s}, message {i}: ብኸመይ ኣለኺ ሎሚ?"),
                    )
                    .await
                    .expect("send");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sender");
    }
    let sent = start.elapsed();
    let mut cut_offs = 0;
    for reader in readers {
        cut_offs += reader.await.expect("reader");
    }
    let delivered = start.elapsed();
    let total = (messages / senders * senders) as f64;
    let plural = if senders == 1 { "" } else { "s" };
    println!(
        "consult on {backend:?}: {senders} sender{plural}, {READERS} readers: {:.0} messages/s sent, {:.0} messages/s delivered to every reader ({total} messages{})",
        total / sent.as_secs_f64(),
        total / delivered.as_secs_f64(),
        if cut_offs == 0 {
            String::new()
        } else {
            format!(", {cut_offs} reader cut-offs resumed")
        }
    );
}

/// One message at a time, so that no message waits behind another: from
/// the start of the clinician's SendMessage to the patient's stream
/// yielding it.
async fn latency(node: &Node, backend: Backend, samples: usize) {
    let (encounter, _) = clinic::consultation(node).await;
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let reader = tokio::spawn(follow(
        connect(&node.encounters).await,
        encounter.clone(),
        samples,
        Some(arrivals),
    ));
    let mut sender = connect(&node.encounters).await;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        let message = clinic::send(&mut sender, &encounter, CLINICIAN, &format!("ping {i}"))
            .await
            .expect("send");
        let (sequence, at) = arrived.recv().await.expect("the reader follows");
        assert_eq!(sequence, message.sequence);
        if i > 0 {
            // The first one also times the reader's stream opening.
            latencies.push(at.saturating_duration_since(start));
        }
    }
    reader.await.expect("reader");
    latencies.sort();
    println!(
        "consult on {backend:?}: SendMessage to another client's stream: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} messages, one at a time)",
        bench::ms(bench::percentile(&latencies, 50)),
        bench::ms(bench::percentile(&latencies, 99)),
        bench::ms(latencies.last().copied().unwrap_or_default()),
        latencies.len()
    );
}
