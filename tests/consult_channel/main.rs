//! The consult channel of a teleconsultation, driven over gRPC as the
//! patient's and the clinician's apps would: one order for everyone, resume
//! after a dropped connection, fan-out across replicas, a stalled reader cut
//! off without holding the others back, idempotent retries, and refusals.
//! On SQLite and on PostgreSQL.
//!
//! Every client here has an HTTP/2 connection of its own, as separate
//! devices would. Waits are bounded only to turn a hang into a failure.

use std::collections::BTreeMap;
use std::time::Duration;

use corridor_proto::encounters::v1 as pb;
use corridor_proto::encounters::v1::encounters_service_client::EncountersServiceClient;
use corridor_proto::fhir::v1::SearchParameter;
use corridor_runtime::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use corridor_tests::clinic::{self, CLINICIAN, INTERPRETER};
use corridor_tests::{Backend, EncountersApp, Node, expression, for_each_backend, issue_code};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Streaming};

for_each_backend!(
    two_clients_exchanging_a_thousand_messages_see_the_same_order,
    a_reader_dropped_at_message_300_resumes_and_gets_all_1000_exactly_once,
    a_reader_that_never_reads_is_cut_off_without_holding_back_the_others,
    a_reader_joining_after_more_messages_than_its_buffer_holds_gets_them_all,
    a_retried_send_with_the_same_idempotency_key_stores_one_message_with_one_sequence,
    concurrent_retries_with_one_idempotency_key_store_one_message,
    a_sender_who_does_not_take_part_in_the_encounter_is_refused,
    opening_the_channel_of_an_unknown_encounter_is_not_found,
    a_message_with_a_malformed_language_tag_is_refused,
);

/// How long any single wait may take before the test counts it as a hang.
const PATIENCE: Duration = Duration::from_secs(60);

type Client = EncountersServiceClient<corridor_tests::Authed>;

/// What a message is, for comparing what was sent with what was read.
type Entry = (i64, String);

/// A client on an HTTP/2 connection of its own to `app`.
async fn connect(app: &EncountersApp) -> Client {
    connect_to(Endpoint::from_shared(format!("http://{}", app.addr)).expect("endpoint")).await
}

async fn connect_to(endpoint: Endpoint) -> Client {
    let channel = endpoint.connect().await.expect("connect");
    let token = corridor_tests::token(
        corridor_tests::TEST_ORGANIZATION,
        corridor_tests::ALL_SCOPES,
    );
    EncountersServiceClient::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        corridor_tests::Bearer(Some(corridor_tests::bearer(&token))),
    ))
    .max_decoding_message_size(64 * 1024 * 1024)
}

/// Follow `encounter_id`'s channel after `after`.
async fn try_open(
    client: &Client,
    encounter_id: &str,
    after: i64,
) -> Result<Streaming<pb::OpenChannelResponse>, tonic::Status> {
    let request = pb::OpenChannelRequest {
        encounter_id: encounter_id.to_owned(),
        after_sequence: after,
    };
    let mut client = client.clone();
    Ok(tokio::time::timeout(PATIENCE, client.open_channel(request))
        .await
        .expect("OpenChannel answers")?
        .into_inner())
}

async fn open(
    client: &Client,
    encounter_id: &str,
    after: i64,
) -> Streaming<pb::OpenChannelResponse> {
    try_open(client, encounter_id, after)
        .await
        .expect("channel opens")
}

fn entry(response: &pb::OpenChannelResponse) -> Entry {
    let message = response.message.as_ref().expect("a message");
    (message.sequence, clinic::text_of(message))
}

/// The next message of `stream`; panics if it ends, fails or hangs.
async fn next(stream: &mut Streaming<pb::OpenChannelResponse>, who: &str, got: usize) -> Entry {
    match tokio::time::timeout(PATIENCE, stream.message()).await {
        Ok(Ok(Some(message))) => entry(&message),
        Ok(Ok(None)) => panic!("{who}: the channel ended after {got} messages"),
        Ok(Err(status)) => panic!("{who}: the channel failed after {got} messages: {status:?}"),
        Err(_) => panic!("{who}: no message within {PATIENCE:?} after {got} messages"),
    }
}

/// Read exactly `n` messages.
async fn take(stream: &mut Streaming<pb::OpenChannelResponse>, n: usize, who: &str) -> Vec<Entry> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let message = next(stream, who, got.len()).await;
        got.push(message);
    }
    got
}

/// Read `n` messages in a task of its own, so that the reader keeps up
/// while the test does other things; the stream comes back for more.
fn reading(
    mut stream: Streaming<pb::OpenChannelResponse>,
    n: usize,
    who: &'static str,
) -> JoinHandle<(Vec<Entry>, Streaming<pb::OpenChannelResponse>)> {
    tokio::spawn(async move {
        let got = take(&mut stream, n, who).await;
        (got, stream)
    })
}

/// Send `texts` as `sender`, one after another, as one person typing; what
/// each send was answered. `progress` hears each sequence assigned.
fn sending(
    client: Client,
    encounter_id: &str,
    sender: &str,
    texts: Vec<String>,
    progress: Option<watch::Sender<i64>>,
) -> JoinHandle<Vec<Entry>> {
    let encounter_id = encounter_id.to_owned();
    let sender = sender.to_owned();
    tokio::spawn(async move {
        let mut client = client;
        let mut sent = Vec::with_capacity(texts.len());
        for text in texts {
            let message = tokio::time::timeout(
                PATIENCE,
                clinic::send(&mut client, &encounter_id, &sender, &text),
            )
            .await
            .expect("SendMessage answers")
            .unwrap_or_else(|status| panic!("{sender} could not send '{text}': {status:?}"));
            assert_eq!(
                clinic::text_of(&message),
                text,
                "the stored text is the sent one"
            );
            if let Some(progress) = &progress {
                progress.send_modify(|highest| *highest = (*highest).max(message.sequence));
            }
            sent.push((message.sequence, text));
        }
        sent
    })
}

/// `count` distinct short messages from `who`.
fn texts(who: &str, count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("{who} #{i}")).collect()
}

/// `count` distinct messages from `who` of about 1 KB each (Tigrinya, so
/// mostly three-byte characters).
fn long_texts(who: &str, count: usize) -> Vec<String> {
    (1..=count)
        .map(|i| format!("{who} #{i}: {}", "ደሓን ዲኻ? ".repeat(56)))
        .collect()
}

/// The channel as the senders were told it: every send's sequence and
/// text, in sequence order. Asserts that each sender's messages got rising
/// sequences and that together they are `first`, `first + 1`, … with no
/// gap or repeat.
async fn log_of(first: i64, senders: Vec<JoinHandle<Vec<Entry>>>) -> Vec<Entry> {
    let mut log = BTreeMap::new();
    for sender in senders {
        let sent = sender.await.expect("sender task");
        assert!(
            sent.windows(2).all(|w| w[0].0 < w[1].0),
            "one sender's messages are sequenced in the order sent"
        );
        for (seq, text) in sent {
            if let Some(earlier) = log.insert(seq, text.clone()) {
                panic!("sequence {seq} was given to both '{earlier}' and '{text}'");
            }
        }
    }
    let log: Vec<Entry> = log.into_iter().collect();
    let sequences: Vec<i64> = log.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<i64> = (first..).take(log.len()).collect();
    assert_eq!(
        sequences, expected,
        "the senders were given consecutive sequences"
    );
    log
}

/// Assert that `got` is exactly `expected`, naming the first difference.
fn assert_same(got: &[Entry], expected: &[Entry], who: &str) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "{who}: message {i} is {:?}, expected {:?}",
            got[i], expected[i]
        );
    }
    assert_eq!(got.len(), expected.len(), "{who}: number of messages");
}

/// How many Communications the service holds for `encounter_id`.
async fn communications(node: &Node, encounter_id: &str) -> i64 {
    let parameter = |name: &str, value: &str| SearchParameter {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let bundle = node
        .encounters
        .client
        .clone()
        .search(pb::SearchRequest {
            resource_type: "Communication".to_owned(),
            parameters: vec![
                parameter("encounter", &format!("Encounter/{encounter_id}")),
                parameter("_count", "0"),
            ],
            page_token: String::new(),
        })
        .await
        .expect("search")
        .into_inner()
        .bundle
        .expect("bundle");
    let bundle: serde_json::Value = serde_json::from_str(&bundle.json).expect("bundle JSON");
    bundle["total"].as_i64().expect("total")
}

fn message_request(encounter_id: &str, sender: &str, text: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        encounter_id: encounter_id.to_owned(),
        sender: sender.to_owned(),
        recipients: Vec::new(),
        text: text.to_owned(),
        language: "ti".to_owned(),
    }
}

/// Send with an idempotency key; the message and whether it was replayed.
async fn send_with_key(
    client: &Client,
    request: pb::SendMessageRequest,
    key: &str,
) -> Result<(pb::ConsultMessage, bool), tonic::Status> {
    let mut request = Request::new(request);
    request
        .metadata_mut()
        .insert(IDEMPOTENCY_KEY, key.parse().expect("ASCII key"));
    let response = client.clone().send_message(request).await?;
    let replayed = response
        .metadata()
        .get(IDEMPOTENT_REPLAYED)
        .is_some_and(|v| v == "true");
    Ok((response.into_inner().message.expect("message"), replayed))
}

async fn two_clients_exchanging_a_thousand_messages_see_the_same_order(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, patient) = clinic::consultation(&node).await;
    let patient = format!("Patient/{patient}");
    let clinician_app = connect(&node.encounters).await;
    let patient_app = connect(&node.encounters).await;
    let clinician_view = reading(open(&clinician_app, &encounter, 0).await, 1000, "clinician");
    let patient_view = reading(open(&patient_app, &encounter, 0).await, 1000, "patient");

    let log = log_of(
        1,
        vec![
            sending(
                clinician_app.clone(),
                &encounter,
                CLINICIAN,
                texts("clinician", 500),
                None,
            ),
            sending(
                patient_app.clone(),
                &encounter,
                &patient,
                texts("patient", 500),
                None,
            ),
        ],
    )
    .await;
    assert_eq!(log.len(), 1000);

    let (clinician_saw, _) = clinician_view.await.expect("clinician reader");
    let (patient_saw, _) = patient_view.await.expect("patient reader");
    assert_same(&clinician_saw, &log, "clinician");
    assert_same(&patient_saw, &log, "patient");
    assert_eq!(communications(&node, &encounter).await, 1000);
}

async fn a_reader_dropped_at_message_300_resumes_and_gets_all_1000_exactly_once(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, patient) = clinic::consultation(&node).await;
    let patient = format!("Patient/{patient}");
    let phone = connect(&node.encounters).await;
    let mut first = open(&phone, &encounter, 0).await;

    let (progress, mut highest) = watch::channel(0);
    let senders = vec![
        sending(
            connect(&node.encounters).await,
            &encounter,
            CLINICIAN,
            texts("clinician", 500),
            Some(progress.clone()),
        ),
        sending(
            connect(&node.encounters).await,
            &encounter,
            &patient,
            texts("patient", 500),
            Some(progress),
        ),
    ];

    let before = take(&mut first, 300, "phone before the drop").await;
    drop(first);
    // The conversation goes on while the phone is away; it comes back
    // mid-conversation, with a backlog to catch up on.
    tokio::time::timeout(PATIENCE, highest.wait_for(|&seq| seq >= 600))
        .await
        .expect("the senders get on")
        .expect("progress");
    let mut resumed = open(&phone, &encounter, before.last().expect("300 read").0).await;
    let after = take(&mut resumed, 700, "phone after resuming").await;

    let log = log_of(1, senders).await;
    let mut saw = before;
    saw.extend(after);
    assert_same(&saw, &log, "phone");

    // Nothing else was pending on the resumed stream: the next message it
    // yields is the next one sent.
    let mut clinician = connect(&node.encounters).await;
    let next_one = clinic::send(&mut clinician, &encounter, CLINICIAN, "one more")
        .await
        .expect("send");
    assert_eq!(next_one.sequence, 1001);
    assert_eq!(
        next(&mut resumed, "phone", 1000).await,
        (1001, "one more".to_owned())
    );
}

async fn a_reader_that_never_reads_is_cut_off_without_holding_back_the_others(backend: Backend) {
    const BUFFER: usize = 16;
    let Some(node) = Node::spawn_with(backend, |config| {
        config.channel_buffer = BUFFER;
        // Cut off while the others are still talking.
        config.channel_stall = Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    let (encounter, patient) = clinic::consultation(&node).await;
    let patient = format!("Patient/{patient}");

    // The interpreter's phone opens the channel and then never reads. Its
    // connection advertises HTTP/2's own default windows (64 KiB), so that
    // what the transport can absorb (those windows plus the server's send
    // buffer) is well below the ~1.5 MB sent.
    let interpreter_app = connect_to(
        Endpoint::from_shared(format!("http://{}", node.encounters.addr))
            .expect("endpoint")
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535),
    )
    .await;
    let mut stalled = open(&interpreter_app, &encounter, 0).await;

    let clinician_app = connect(&node.encounters).await;
    let patient_app = connect(&node.encounters).await;
    let clinician_view = reading(open(&clinician_app, &encounter, 0).await, 1000, "clinician");
    let patient_view = reading(open(&patient_app, &encounter, 0).await, 1000, "patient");
    let log = log_of(
        1,
        vec![
            sending(
                clinician_app.clone(),
                &encounter,
                CLINICIAN,
                long_texts("clinician", 500),
                None,
            ),
            sending(
                patient_app.clone(),
                &encounter,
                &patient,
                long_texts("patient", 500),
                None,
            ),
        ],
    )
    .await;
    let (clinician_saw, _) = clinician_view.await.expect("clinician reader");
    let (patient_saw, _) = patient_view.await.expect("patient reader");
    assert_same(&clinician_saw, &log, "clinician");
    assert_same(&patient_saw, &log, "patient");

    // The stalled reader gets what was already on its way, in order, and
    // then the status that cut it off.
    let mut prefix = Vec::new();
    let status = loop {
        match tokio::time::timeout(PATIENCE, stalled.message()).await {
            Ok(Ok(Some(message))) => prefix.push(entry(&message)),
            Ok(Ok(None)) => panic!(
                "the stalled reader's channel ended without a status after {} messages",
                prefix.len()
            ),
            Ok(Err(status)) => break status,
            Err(_) => panic!(
                "the stalled reader was never cut off: it received {} of {} messages and then waited for more",
                prefix.len(),
                log.len()
            ),
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(issue_code(&status), "throttled");
    assert!(
        prefix.len() < log.len(),
        "cut off only after everything was delivered"
    );
    assert_same(
        &prefix,
        &log[..prefix.len()],
        "interpreter before the cut-off",
    );

    // Opening again with the last sequence received yields the rest once.
    let last = prefix.last().map_or(0, |(seq, _)| *seq);
    let mut resumed = open(&interpreter_app, &encounter, last).await;
    let rest = take(
        &mut resumed,
        log.len() - prefix.len(),
        "interpreter resuming",
    )
    .await;
    assert_same(&rest, &log[prefix.len()..], "interpreter after resuming");
    let mut clinician = clinician_app.clone();
    let next_one = clinic::send(&mut clinician, &encounter, CLINICIAN, "one more")
        .await
        .expect("send");
    assert_eq!(next_one.sequence, 1001);
    assert_eq!(
        next(&mut resumed, "interpreter", 1000).await,
        (1001, "one more".to_owned())
    );
}

/// The history a reader catches up on comes from the database, so its size
/// is not limited by the live buffer: a reader that reads promptly gets it
/// all, whether it joins late or resumes after a cut-off.
async fn a_reader_joining_after_more_messages_than_its_buffer_holds_gets_them_all(
    backend: Backend,
) {
    const BUFFER: usize = 16;
    let Some(node) = Node::spawn_with(backend, |config| config.channel_buffer = BUFFER).await
    else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let clinician = connect(&node.encounters).await;
    let log = log_of(
        1,
        vec![sending(
            clinician.clone(),
            &encounter,
            CLINICIAN,
            texts("clinician", 10 * BUFFER),
            None,
        )],
    )
    .await;

    let interpreter = connect(&node.encounters).await;
    let mut late = open(&interpreter, &encounter, 0).await;
    let history = take(&mut late, log.len(), "interpreter joining late").await;
    assert_same(&history, &log, "interpreter joining late");
    let mut resumed = open(&interpreter, &encounter, 3).await;
    let rest = take(&mut resumed, log.len() - 3, "interpreter resuming").await;
    assert_same(&rest, &log[3..], "interpreter resuming");
}

async fn a_retried_send_with_the_same_idempotency_key_stores_one_message_with_one_sequence(
    backend: Backend,
) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let client = connect(&node.encounters).await;
    let request = message_request(&encounter, CLINICIAN, "Take one amlodipine each morning.");

    let (first, replayed) = send_with_key(&client, request.clone(), "bp-advice-1")
        .await
        .expect("first send");
    assert!(!replayed, "the first send is not a replay");
    assert_eq!(first.sequence, 1);
    // The answer was lost on a bad connection; the app sends again.
    let (retry, replayed) = send_with_key(&client, request, "bp-advice-1")
        .await
        .expect("retry");
    assert!(replayed, "the retry says it replayed the first send");
    assert_eq!(retry.sequence, first.sequence);
    assert_eq!(
        retry.communication.as_ref().expect("communication").id,
        first.communication.as_ref().expect("communication").id,
        "the retry returns the stored Communication"
    );

    let mut interpreter = client.clone();
    let next_one = clinic::send(&mut interpreter, &encounter, INTERPRETER, "Understood.")
        .await
        .expect("send");
    assert_eq!(next_one.sequence, 2, "the retry used up no sequence");
    let mut stream = open(&client, &encounter, 0).await;
    assert_eq!(
        take(&mut stream, 2, "reader").await,
        vec![
            (1, "Take one amlodipine each morning.".to_owned()),
            (2, "Understood.".to_owned()),
        ]
    );
    assert_eq!(communications(&node, &encounter).await, 2);
}

async fn concurrent_retries_with_one_idempotency_key_store_one_message(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let client = connect(&node.encounters).await;
    let request = message_request(&encounter, CLINICIAN, "Are you feeling dizzy?");
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move { send_with_key(&client, request, "dizzy-question").await })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in tries {
        let (message, replayed) = attempt.await.expect("task").expect("send");
        answers.push((
            message.sequence,
            message.communication.expect("communication").id,
            replayed,
        ));
    }
    assert!(
        answers.iter().all(|a| a.0 == 1 && a.1 == answers[0].1),
        "every retry got the one message: {answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| !a.2).count(),
        1,
        "exactly one send was not a replay: {answers:?}"
    );
    assert_eq!(communications(&node, &encounter).await, 1);
}

async fn a_sender_who_does_not_take_part_in_the_encounter_is_refused(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let mut client = connect(&node.encounters).await;
    let other_patient = clinic::register_patient(&node, "Haile").await;
    for outsider in [
        "Practitioner/dr-someone-else".to_owned(),
        format!("Patient/{other_patient}"),
        String::new(),
    ] {
        let err = clinic::send(&mut client, &encounter, &outsider, "hello")
            .await
            .expect_err("an outsider cannot post");
        assert_eq!(err.code(), Code::InvalidArgument, "{outsider}: {err:?}");
        assert_eq!(expression(&err), "sender", "{outsider}");
    }
    assert_eq!(communications(&node, &encounter).await, 0);
    let first = clinic::send(&mut client, &encounter, CLINICIAN, "hello")
        .await
        .expect("a participant can post");
    assert_eq!(first.sequence, 1, "the refusals used up no sequence");
}

async fn opening_the_channel_of_an_unknown_encounter_is_not_found(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let client = connect(&node.encounters).await;
    let err = try_open(&client, "no-such-encounter", 0)
        .await
        .expect_err("an unknown Encounter has no channel");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(issue_code(&err), "not-found");
}

async fn a_message_with_a_malformed_language_tag_is_refused(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (encounter, _) = clinic::consultation(&node).await;
    let client = connect(&node.encounters).await;
    for language in ["Tigrinya!", "t", "", "ti_ER"] {
        let mut request = message_request(&encounter, CLINICIAN, "ሰላም");
        request.language = language.to_owned();
        let err = client
            .clone()
            .send_message(request)
            .await
            .expect_err("a malformed language tag is refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{language:?}: {err:?}");
        assert_eq!(expression(&err), "language", "{language:?}");
    }
    assert_eq!(communications(&node, &encounter).await, 0);
}

/// Two encounters instances on one PostgreSQL database: what is sent to
/// one reaches readers on the other, in the one order. PostgreSQL only:
/// replicas share a database server, which SQLite is not.
mod a_message_sent_to_one_instance_reaches_a_reader_on_another_in_order {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(node) = Node::spawn(Backend::Postgres).await else {
            return;
        };
        let second = node.second_encounters().await;
        let (encounter, patient) = clinic::consultation(&node).await;
        let patient = format!("Patient/{patient}");
        let on_a = connect(&node.encounters).await;
        let on_b = connect(&second).await;

        let mut reader_b = open(&on_b, &encounter, 0).await;
        let mut sender_a = on_a.clone();
        let sent = clinic::send(&mut sender_a, &encounter, CLINICIAN, "Can you hear me?")
            .await
            .expect("send to A");
        assert_eq!(
            next(&mut reader_b, "reader on B", 0).await,
            (sent.sequence, "Can you hear me?".to_owned())
        );

        // Then a conversation with one side on each instance and a reader
        // on each.
        let reader_a = reading(open(&on_a, &encounter, 1).await, 400, "reader on A");
        let reader_b = reading(reader_b, 400, "reader on B");
        let conversation = log_of(
            2,
            vec![
                sending(
                    on_a.clone(),
                    &encounter,
                    CLINICIAN,
                    texts("clinician via A", 200),
                    None,
                ),
                sending(
                    on_b.clone(),
                    &encounter,
                    &patient,
                    texts("patient via B", 200),
                    None,
                ),
            ],
        )
        .await;
        let (a_saw, _) = reader_a.await.expect("reader on A");
        let (b_saw, _) = reader_b.await.expect("reader on B");
        assert_same(&a_saw, &conversation, "reader on A");
        assert_same(&b_saw, &conversation, "reader on B");
        second.stop().await;
    }
}
