//! Change feeds between services, and the decisions cached while one is
//! followed.
//!
//! Deciding who may read a clinical record takes identity's Consent
//! decision and referrals' list of referred patients. Asking both on every
//! call is exact but slow, so the encounters service caches their answers
//! per organization ([`Cached`]), and drops them whenever what they were
//! made from changes. Identity and referrals tell it so through a change
//! feed ([`feed`]): their own store's outbox stream (the one written in
//! the same transaction as each change), served as bare notices that
//! something changed, never what.
//!
//! The feeds need no token (their follower is a background task); over
//! mutual TLS only node services may follow them
//! (`auth::require_service_peer`).
//!
//! A cache is used only while its feed is followed ([`follow_changes`]):
//! before the first notice, after the feed breaks and until it is back,
//! every decision is asked afresh. A change is therefore seen within the
//! feed's delivery time (milliseconds on one node), and an entry lives at
//! most its time-to-live even if a notice were lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corridor_store::Store;
use futures::StreamExt;

use crate::{ApiError, Shutdown, follow};

/// How far a follower of a change feed may fall behind before it is cut
/// off (it then reconnects, dropping its cache).
const FEED_LIMITS: follow::Limits = follow::Limits {
    buffer: 64,
    stall: Duration::from_secs(30),
};
/// Entries one cache holds at most; beyond, it starts again empty.
const MAX_ENTRIES: usize = 10_000;
/// The longest wait between attempts to follow a feed again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `stream` of `store` as a change feed: a first notice at the stream's
/// current position (the follower is live from then on), then one notice
/// per entry appended after it; `notice` makes one from a sequence.
pub async fn feed<T>(
    store: &Store,
    stream: &str,
    shutdown: Shutdown,
    notice: fn(i64) -> T,
) -> Result<follow::Items<T>, ApiError>
where
    T: Send + 'static,
{
    let last = store.stream_last(stream).await?;
    let first = futures::stream::once(async move { Ok(notice(last)) });
    let rest = follow::follow(
        store,
        stream.to_owned(),
        last,
        FEED_LIMITS,
        shutdown,
        move |entry| Box::pin(async move { Ok(Some(notice(entry.seq))) }),
    );
    Ok(Box::pin(first.chain(rest)))
}

/// Values cached by key (an organization) while a change feed is
/// followed; see the module docs.
#[derive(Debug)]
pub struct Cached<V> {
    entries: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    /// Bumped on every change: an answer asked before a change is not
    /// kept after it.
    generation: AtomicU64,
    /// Whether the feed is followed now.
    live: AtomicBool,
    ttl: Duration,
}

impl<V> Cached<V> {
    /// An empty cache whose entries live at most `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            ttl,
        }
    }

    /// The value of `key`: cached, or made by `fetch` (and kept when the
    /// feed is followed and nothing changed meanwhile).
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> Result<Arc<V>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ApiError>>,
    {
        if self.live.load(Ordering::SeqCst)
            && let Some((at, value)) = lock(&self.entries).get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(value));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = Arc::new(fetch().await?);
        let mut entries = lock(&self.entries);
        if self.live.load(Ordering::SeqCst) && self.generation.load(Ordering::SeqCst) == generation
        {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.to_owned(), (Instant::now(), Arc::clone(&value)));
        }
        Ok(value)
    }

    /// Something the values were made from changed: drop them all.
    pub fn changed(&self) {
        let mut entries = lock(&self.entries);
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// Whether the cache is in use (its feed is followed).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    fn set_live(&self, live: bool) {
        self.changed();
        self.live.store(live, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Follow the change feed that `open` subscribes to (`what`, for the logs)
/// until `shutdown`, dropping `cache` on every notice, and keep it in use
/// only while the feed is followed; a broken feed is followed again after
/// a growing pause.
pub async fn follow_changes<V, N, Open, Fut>(
    cache: Arc<Cached<V>>,
    what: &'static str,
    open: Open,
    shutdown: Shutdown,
) where
    Open: Fn() -> Fut,
    Fut: Future<Output = Result<tonic::Streaming<N>, tonic::Status>>,
{
    let mut pause = Duration::from_millis(100);
    while !shutdown.is_triggered() {
        let opened = tokio::select! {
            () = shutdown.clone().wait() => break,
            opened = open() => opened,
        };
        match opened {
            Ok(mut notices) => loop {
                let notice = tokio::select! {
                    () = shutdown.clone().wait() => break,
                    notice = notices.message() => notice,
                };
                match notice {
                    Ok(Some(_)) if cache.is_live() => cache.changed(),
                    Ok(Some(_)) => {
                        tracing::info!(feed = what, "following changes; caching decisions");
                        cache.set_live(true);
                        pause = Duration::from_millis(100);
                    }
                    Ok(None) | Err(_) => {
                        if cache.is_live() {
                            tracing::warn!(
                                feed = what,
                                "change feed broke; deciding afresh until it is back"
                            );
                        }
                        cache.set_live(false);
                        break;
                    }
                }
            },
            Err(status) => {
                cache.set_live(false);
                tracing::debug!(feed = what, code = ?status.code(), "cannot follow changes yet");
            }
        }
        tokio::select! {
            () = shutdown.clone().wait() => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_BACKOFF);
    }
    cache.set_live(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cache_is_used_only_while_live_and_a_change_drops_what_was_asked_before_it() {
        let cache: Cached<u32> = Cached::new(Duration::from_secs(60));
        let asked = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async { Ok::<_, ApiError>(asked.fetch_add(1, Ordering::SeqCst) + 1) };
        // Not live: every call asks.
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 1);
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 2);
        // Live: the second call is answered from the cache.
        cache.set_live(true);
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 3);
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 3);
        // A change drops it.
        cache.changed();
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 4);
        // An answer asked before a change is not kept after it.
        let racing = cache
            .get_or_fetch("other", || async {
                cache.changed();
                Ok::<_, ApiError>(40)
            })
            .await
            .unwrap();
        assert_eq!(*racing, 40);
        assert_eq!(*cache.get_or_fetch("other", fetch).await.unwrap(), 5);
        // The feed broke: asked afresh again.
        cache.set_live(false);
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 6);
    }

    #[tokio::test]
    async fn an_entry_lives_at_most_its_time_to_live() {
        let cache: Cached<u32> = Cached::new(Duration::from_millis(20));
        cache.set_live(true);
        let asked = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async { Ok::<_, ApiError>(asked.fetch_add(1, Ordering::SeqCst) + 1) };
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 1);
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(*cache.get_or_fetch("org", fetch).await.unwrap(), 2);
    }
}
