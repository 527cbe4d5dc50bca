//! One fetch shared by everyone who asks at once.
//!
//! An upstream's lists are fetched for whichever session asks first; the sessions asking
//! meanwhile join that fetch instead of waiting on a lock held across the round trip, so a
//! slow or stalled upstream holds up only the callers that need its answer, and only until
//! the fetch's own deadline. The answer is kept for its generation (a reconnect or a
//! `list_changed` starts a new one); an answer the caller marks as worth retrying (a failure,
//! a catalog with an upstream left out) is kept only for `retry_after`.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

/// What a fetch gave, and when.
#[derive(Clone)]
struct Outcome<V> {
    value: V,
    at: Instant,
}

type Pending<V> = Shared<BoxFuture<'static, Outcome<V>>>;

/// The latest fetch of a value that changes by generation.
pub(crate) struct Collapsed<V> {
    slot: Mutex<Option<(u64, Pending<V>)>>,
    /// The value of the last fetch that finished, whatever its generation.
    last: Arc<Mutex<Option<V>>>,
    retry: fn(&V) -> bool,
    retry_after: Duration,
}

impl<V: Clone + Send + Sync + 'static> Collapsed<V> {
    /// Nothing fetched yet. A value for which `retry` says so is fetched again once it is
    /// `retry_after` old.
    pub(crate) fn new(retry: fn(&V) -> bool, retry_after: Duration) -> Self {
        Self { slot: Mutex::new(None), last: Arc::new(Mutex::new(None)), retry, retry_after }
    }

    /// The value for `generation` (or a newer one): kept, in flight, or fetched now by
    /// `fetch`. No lock is held while it is awaited.
    pub(crate) async fn get<F>(&self, generation: u64, fetch: impl FnOnce() -> F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let pending = {
            let mut slot = lock(&self.slot);
            match &*slot {
                Some((seen, pending)) if *seen >= generation && !self.stale(pending) => pending.clone(),
                _ => {
                    let fut = fetch();
                    let last = self.last.clone();
                    let pending = async move {
                        let value = fut.await;
                        *lock(&last) = Some(value.clone());
                        Outcome { value, at: Instant::now() }
                    }
                    .boxed()
                    .shared();
                    *slot = Some((generation, pending.clone()));
                    pending
                }
            }
        };
        pending.await.value
    }

    /// The value of the last fetch that finished, without waiting.
    pub(crate) fn last(&self) -> Option<V> {
        lock(&self.last).clone()
    }

    fn stale(&self, pending: &Pending<V>) -> bool {
        pending.peek().is_some_and(|done| (self.retry)(&done.value) && done.at.elapsed() >= self.retry_after)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Short sections with no await and nothing that panics.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    type Fetched = Result<u32, String>;

    fn collapsed() -> Arc<Collapsed<Fetched>> {
        Arc::new(Collapsed::new(Result::is_err, Duration::from_secs(5)))
    }

    /// A fetch that counts itself and answers `value` once `gate` opens.
    fn fetch(
        count: &Arc<AtomicUsize>,
        gate: &Arc<Notify>,
        value: Fetched,
    ) -> impl FnOnce() -> BoxFuture<'static, Fetched> + use<> {
        let (count, gate) = (count.clone(), gate.clone());
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            async move {
                gate.notified().await;
                value
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_its_answer() {
        let c = collapsed();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let entered = Arc::new(AtomicUsize::new(0));
        let askers: Vec<_> = (0..16)
            .map(|_| {
                let (c, f, entered) = (c.clone(), fetch(&count, &gate, Ok(7)), entered.clone());
                tokio::spawn(async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    c.get(1, f).await
                })
            })
            .collect();
        // On this one-thread runtime an asker runs until it waits on the fetch, so once all
        // have entered, all are waiting on it together (and none holds a lock meanwhile).
        while entered.load(Ordering::SeqCst) < 16 {
            tokio::task::yield_now().await;
        }
        assert_eq!(c.last(), None);
        gate.notify_one();
        for asker in askers {
            assert_eq!(asker.await.expect("asker"), Ok(7));
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "one fetch for all");
        assert_eq!(c.get(1, fetch(&count, &gate, Ok(8))).await, Ok(7), "kept for its generation");
        assert_eq!(c.last(), Some(Ok(7)));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_new_generation_fetches_again() {
        let c = collapsed();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        gate.notify_one();
        assert_eq!(c.get(1, fetch(&count, &gate, Ok(1))).await, Ok(1));
        gate.notify_one();
        assert_eq!(c.get(2, fetch(&count, &gate, Ok(2))).await, Ok(2));
        assert_eq!(c.get(1, fetch(&count, &gate, Ok(3))).await, Ok(2), "an older generation takes the newer value");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_kept_until_retry_after_then_fetched_again() {
        let c = collapsed();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        gate.notify_one();
        assert_eq!(c.get(1, fetch(&count, &gate, Err("down".into()))).await, Err("down".into()));
        assert_eq!(c.get(1, fetch(&count, &gate, Ok(1))).await, Err("down".into()), "not retried at once");
        tokio::time::advance(Duration::from_secs(5)).await;
        gate.notify_one();
        assert_eq!(c.get(1, fetch(&count, &gate, Ok(1))).await, Ok(1));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
