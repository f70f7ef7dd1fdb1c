//! Following a store stream over a gRPC server stream: the consult channel
//! of an Encounter, the event feed of referrals.
//!
//! Each follower is a task that reads the stream from the database after
//! the last sequence it delivered and waits to be told of appends: by this
//! process directly, or by any other replica through PostgreSQL `NOTIFY`
//! (with an idle poll in case a notification was lost). Because every
//! follower reads the database itself, replicas need no other coordination,
//! and a follower that resumes after sequence N gets exactly what came
//! after N, in commit order.
//!
//! Each follower has its own bounded buffer. One that leaves it full for
//! longer than the stall limit while entries wait is cut off with
//! RESOURCE_EXHAUSTED; when the service stops, followers end with
//! UNAVAILABLE. Either way the client resumes from the last sequence it
//! received. Followers never wait on each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corridor_fhir::Issue;
use corridor_store::{ALL_STREAMS, Store, StreamEntry};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::{ApiError, Shutdown};

/// Entries read from the database per query.
const BATCH: i64 = 256;
/// How often an idle follower looks at the database even when told of
/// nothing, which covers a lost notification (e.g. while the PostgreSQL
/// listener reconnects).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How far a follower may fall behind.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Items buffered for the client.
    pub buffer: usize,
    /// How long an item may wait for room in a full buffer before the
    /// follower is cut off.
    pub stall: Duration,
}

/// What the client receives.
pub type Items<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// A future that turns one stream entry into what the client receives, or
/// None to skip it (an entry this client may not see).
pub type Mapped<T> = Pin<Box<dyn Future<Output = Result<Option<T>, ApiError>> + Send>>;

/// Follow `stream` after sequence `after`, turning each entry into a
/// client item with `map`.
pub fn follow<T, F>(
    store: &Store,
    stream: String,
    after: i64,
    limits: Limits,
    shutdown: Shutdown,
    map: F,
) -> Items<T>
where
    T: Send + 'static,
    F: Fn(StreamEntry) -> Mapped<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(limits.buffer.max(1));
    let cut_off = Arc::new(Mutex::new(None));
    let follower = Follower {
        store: store.clone(),
        stream,
        last: after,
        tx,
        cut_off: cut_off.clone(),
        limits,
        shutdown,
        map,
    };
    tokio::spawn(follower.run());
    Box::pin(Delivery {
        rx,
        cut_off,
        ended: false,
    })
}

/// One connected client: moves entries from the database into its buffer.
struct Follower<T, F> {
    store: Store,
    stream: String,
    /// The last sequence handled (delivered or skipped).
    last: i64,
    tx: mpsc::Sender<Result<T, tonic::Status>>,
    cut_off: Arc<Mutex<Option<tonic::Status>>>,
    limits: Limits,
    /// Ends the follower when the service stops, so that shutdown is not
    /// held up by open streams.
    shutdown: Shutdown,
    map: F,
}

impl<T, F> Follower<T, F>
where
    T: Send + 'static,
    F: Fn(StreamEntry) -> Mapped<T> + Send + 'static,
{
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
                let seq = entry.seq;
                match (self.map)(entry).await {
                    Ok(Some(item)) => {
                        if !self.deliver(item).await {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        self.cut(err.into());
                        return;
                    }
                }
                self.last = seq;
            }
            if full {
                continue;
            }
            tokio::select! {
                () = self.tx.closed() => return,
                () = self.shutdown.clone().wait() => {
                    let issue = Issue::new(
                        "transient",
                        "the service is stopping; open the stream again (on any replica) with after_sequence set to the last sequence you received",
                    );
                    self.cut(crate::outcome::status(tonic::Code::Unavailable, &issue));
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

    /// Put one item in the buffer, waiting up to the stall limit for room;
    /// false when the client is gone or was cut off. A client catching up on
    /// a long history is not cut off as long as it keeps reading.
    async fn deliver(&mut self, item: T) -> bool {
        match tokio::time::timeout(self.limits.stall, self.tx.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(Ok(item));
                true
            }
            Ok(Err(_closed)) => false,
            Err(_stalled) => {
                tracing::info!(stream = %self.stream, last = self.last, "stream follower fell behind; cutting it off");
                let issue = Issue::new(
                    "throttled",
                    format!(
                        "this reader left {} items unread for {} ms and was disconnected; open the stream again with after_sequence set to the last sequence you received",
                        self.limits.buffer,
                        self.limits.stall.as_millis()
                    ),
                );
                self.cut(crate::outcome::status(
                    tonic::Code::ResourceExhausted,
                    &issue,
                ));
                false
            }
        }
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

/// The response stream: the buffer, unless the follower was cut off, in
/// which case the cut-off status ends the call at once.
struct Delivery<T> {
    rx: mpsc::Receiver<Result<T, tonic::Status>>,
    cut_off: Arc<Mutex<Option<tonic::Status>>>,
    /// Set once the cut-off status has been yielded: nothing follows it.
    ended: bool,
}

impl<T> Stream for Delivery<T> {
    type Item = Result<T, tonic::Status>;

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
            // The follower may have been cut off just before it let go.
            std::task::Poll::Ready(None) => {
                let cut = self.cut_off.lock().ok().and_then(|mut cut| cut.take());
                self.ended = true;
                std::task::Poll::Ready(cut.map(Err))
            }
            other => other,
        }
    }
}
