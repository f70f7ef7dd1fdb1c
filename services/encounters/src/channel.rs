//! The consult channel: the messages of one Encounter between patient,
//! clinician and interpreter, live.
//!
//! A message is stored as a FHIR Communication and given the Encounter's
//! next sequence number in the same transaction ([`Store::append`]), so it
//! exists before anyone sees it and every reader sees one order. A reader is
//! a task that reads the stream from the database after the last sequence
//! it delivered and waits to be told of appends: by this process directly,
//! or by any other replica through PostgreSQL `NOTIFY`. Because every reader
//! reads the database itself, replicas need no other coordination, and a
//! reader that resumes after sequence N gets exactly N+1, N+2, … .
//!
//! Each reader has its own bounded buffer. A reader that leaves it full for
//! longer than the stall limit while messages wait is cut off with
//! RESOURCE_EXHAUSTED instead of holding resources; it resumes with the last
//! sequence it received. Readers never wait on each other.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corridor_fhir::Issue;
use corridor_proto::encounters::v1::{
    ConsultMessage, OpenChannelRequest, OpenChannelResponse, SendMessageRequest,
};
use corridor_runtime::resources::{Resources, to_proto};
use corridor_runtime::{ApiError, Shutdown};
use corridor_store::{ALL_STREAMS, Store, StreamEntry, WriteResult};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::consultation::is_language_tag;

/// Messages read from the database per query.
const BATCH: i64 = 256;
/// How often a reader looks at the database even when told of nothing,
/// which covers a lost notification (e.g. while the PostgreSQL listener
/// reconnects).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How far a reader may fall behind.
#[derive(Debug, Clone, Copy)]
pub struct ReaderLimits {
    /// Messages buffered for the client.
    pub buffer: usize,
    /// How long a message may wait for room in a full buffer before the
    /// reader is cut off.
    pub stall: Duration,
}

/// The stream of messages a client receives.
pub type Messages = Pin<Box<dyn Stream<Item = Result<OpenChannelResponse, tonic::Status>> + Send>>;

/// The stream key of an Encounter's channel.
fn stream_key(encounter_id: &str) -> String {
    format!("Encounter/{encounter_id}")
}

/// Store a message as a Communication of the Encounter, with its sequence.
pub async fn send(
    resources: &Resources,
    request: &SendMessageRequest,
    key: Option<&str>,
) -> Result<(WriteResult, ConsultMessage), ApiError> {
    let encounter = resources
        .store()
        .read("Encounter", &request.encounter_id)
        .await?;
    let encounter: Value = serde_json::from_str(&encounter.json).unwrap_or(Value::Null);
    let participants = participants(&encounter);
    let sender = request.sender.trim();
    if !participants.contains(sender) {
        return Err(Issue::new(
            "invalid",
            format!(
                "sender '{sender}' does not take part in Encounter/{}; participants are: {}",
                request.encounter_id,
                sorted(&participants).join(", ")
            ),
        )
        .at("sender")
        .into());
    }
    let recipients: Vec<String> = if request.recipients.is_empty() {
        sorted(&participants)
            .into_iter()
            .filter(|p| p != sender)
            .collect()
    } else {
        for (i, recipient) in request.recipients.iter().enumerate() {
            if !participants.contains(recipient.as_str()) {
                return Err(Issue::new(
                    "invalid",
                    format!(
                        "recipient '{recipient}' does not take part in Encounter/{}",
                        request.encounter_id
                    ),
                )
                .at(format!("recipients[{i}]"))
                .into());
            }
        }
        request.recipients.clone()
    };
    if request.text.trim().is_empty() {
        return Err(Issue::new("required", "a message needs text")
            .at("text")
            .into());
    }
    if !is_language_tag(&request.language) {
        return Err(Issue::new(
            "invalid",
            format!(
                "language must be a BCP-47 tag such as \"ar\", \"fa-AF\" or \"ti\", not '{}'",
                request.language
            ),
        )
        .at("language")
        .into());
    }
    let mut communication = json!({
        "resourceType": "Communication",
        "language": request.language,
        "status": "completed",
        "encounter": { "reference": stream_key(&request.encounter_id) },
        "sent": corridor_store::now_instant(),
        "recipient": recipients.iter().map(|r| json!({ "reference": r })).collect::<Vec<_>>(),
        "sender": { "reference": sender },
        "payload": [{ "contentString": request.text }],
    });
    if let Some(subject) = encounter.get("subject") {
        communication["subject"] = subject.clone();
    }
    let resource = resources.validate(&communication.to_string())?;
    // A retry is the same request; `sent` is the server's and differs.
    let fingerprint = serde_json::json!([
        request.sender,
        request.recipients,
        request.text,
        request.language
    ])
    .to_string();
    let (result, seq) = resources
        .store()
        .append(
            &stream_key(&request.encounter_id),
            &resource,
            key,
            &fingerprint,
        )
        .await?;
    let message = ConsultMessage {
        sequence: seq,
        communication: Some(to_proto(&result.stored)),
    };
    Ok((result, message))
}

/// Follow an Encounter's channel from after `after_sequence`.
pub async fn open(
    store: &Store,
    request: &OpenChannelRequest,
    limits: ReaderLimits,
    shutdown: Shutdown,
) -> Result<Messages, ApiError> {
    store.read("Encounter", &request.encounter_id).await?;
    if request.after_sequence < 0 {
        return Err(Issue::new(
            "invalid",
            "after_sequence is the last sequence received, 0 or more",
        )
        .at("after_sequence")
        .into());
    }
    let (tx, rx) = mpsc::channel(limits.buffer.max(1));
    let cut_off = Arc::new(Mutex::new(None));
    let reader = Reader {
        store: store.clone(),
        stream: stream_key(&request.encounter_id),
        last: request.after_sequence,
        tx,
        cut_off: cut_off.clone(),
        limits,
        shutdown,
    };
    tokio::spawn(reader.run());
    Ok(Box::pin(Delivery {
        rx,
        cut_off,
        ended: false,
    }))
}

/// One connected reader: moves messages from the database into its buffer.
struct Reader {
    store: Store,
    stream: String,
    /// The last sequence put in the buffer.
    last: i64,
    tx: mpsc::Sender<Result<OpenChannelResponse, tonic::Status>>,
    cut_off: Arc<Mutex<Option<tonic::Status>>>,
    limits: ReaderLimits,
    /// Ends the reader when the service stops, so that shutdown is not held
    /// up by open channels.
    shutdown: Shutdown,
}

impl Reader {
    async fn run(mut self) {
        // Subscribe before the first read, so that no append falls between.
        let mut watch = self.store.watch();
        loop {
            let batch = match self
                .store
                .stream_after(&self.stream, self.last, BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    self.cut(ApiError::from(err).into());
                    return;
                }
            };
            let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) == BATCH;
            for entry in batch {
                if !self.deliver(entry).await {
                    return;
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = self.tx.closed() => return,
                () = self.shutdown.clone().wait() => {
                    let issue = Issue::new(
                        "transient",
                        "the service is stopping; open the channel again (on any replica) with after_sequence set to the last sequence you received",
                    );
                    self.cut(corridor_runtime::outcome::status(tonic::Code::Unavailable, &issue));
                    return;
                }
                () = tokio::time::sleep(IDLE_POLL) => {}
                woke = wait_for(&mut watch, &self.stream) => {
                    if woke.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Put one message in the buffer, waiting up to the stall limit for
    /// room; false when the reader is gone or was cut off. A reader catching
    /// up on a long history is not cut off as long as it keeps reading.
    async fn deliver(&mut self, entry: StreamEntry) -> bool {
        let permit = match tokio::time::timeout(self.limits.stall, self.tx.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return false,
            Err(_stalled) => {
                tracing::info!(stream = %self.stream, last = self.last, "consult channel reader fell behind; cutting it off");
                let issue = Issue::new(
                    "throttled",
                    format!(
                        "this reader left {} messages unread for {} ms and was disconnected; open the channel again with after_sequence set to the last sequence you received",
                        self.limits.buffer,
                        self.limits.stall.as_millis()
                    ),
                );
                self.cut(corridor_runtime::outcome::status(
                    tonic::Code::ResourceExhausted,
                    &issue,
                ));
                return false;
            }
        };
        self.last = entry.seq;
        permit.send(Ok(OpenChannelResponse {
            message: Some(ConsultMessage {
                sequence: entry.seq,
                communication: Some(to_proto(&entry.stored)),
            }),
        }));
        true
    }

    /// End the client's stream with `status` at its next read, whatever is
    /// still buffered. The caller then returns, and dropping the sender
    /// wakes a client waiting on an empty buffer.
    fn cut(&self, status: tonic::Status) {
        if let Ok(mut cut) = self.cut_off.lock() {
            *cut = Some(status);
        }
    }
}

/// Wait until `stream` (or every stream) may have new entries. Err when the
/// store is gone.
async fn wait_for(
    watch: &mut tokio::sync::broadcast::Receiver<Arc<str>>,
    stream: &str,
) -> Result<(), ()> {
    loop {
        match watch.recv().await {
            Ok(name) if &*name == stream || &*name == ALL_STREAMS => return Ok(()),
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return Ok(()),
            Err(RecvError::Closed) => return Err(()),
        }
    }
}

/// The response stream: the buffer, unless the reader was cut off, in
/// which case the cut-off status ends the call at once.
struct Delivery {
    rx: mpsc::Receiver<Result<OpenChannelResponse, tonic::Status>>,
    cut_off: Arc<Mutex<Option<tonic::Status>>>,
    /// Set once the cut-off status has been yielded: nothing follows it.
    ended: bool,
}

impl Stream for Delivery {
    type Item = Result<OpenChannelResponse, tonic::Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        let cut = self.cut_off.lock().ok().and_then(|mut cut| cut.take());
        if let Some(status) = cut {
            self.ended = true;
            self.rx.close();
            return std::task::Poll::Ready(Some(Err(status)));
        }
        match self.rx.poll_recv(cx) {
            // The reader may have been cut off just before it let go.
            std::task::Poll::Ready(None) => {
                let cut = self.cut_off.lock().ok().and_then(|mut cut| cut.take());
                self.ended = true;
                std::task::Poll::Ready(cut.map(Err))
            }
            other => other,
        }
    }
}

/// The Encounter's subject and participants, as references.
fn participants(encounter: &Value) -> HashSet<String> {
    let mut out = HashSet::new();
    if let Some(subject) = encounter
        .get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
    {
        out.insert(subject.to_owned());
    }
    for participant in encounter
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(individual) = participant
            .get("individual")
            .and_then(|i| i.get("reference"))
            .and_then(Value::as_str)
        {
            out.insert(individual.to_owned());
        }
    }
    out
}

fn sorted(set: &HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().cloned().collect();
    v.sort();
    v
}
