//! When the last client request came: a cluster instance that is shutting down waits until
//! they stop coming (the load balancer has seen `/readyz` 503) before it closes its
//! listener, so no request already sent waits in its queue when it closes (the kernel would
//! reset it, and the load balancer cannot safely retry a request it sent).
//!
//! Every request counts but `/healthz`, `/readyz` and `/metrics`. The load balancer's health
//! checks go on after it has stopped sending requests (HAProxy's every second, on a
//! connection of their own), and counting them kept a draining instance waiting its whole
//! `drain_timeout_secs` whenever they came at least once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When the last client request came.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), last_ms: AtomicU64::new(0) })
    }

    /// A client request came.
    pub(crate) fn requested(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Returns once no client request has come for `quiet`, or at `deadline`.
    pub(crate) async fn quiet_for(&self, quiet: Duration, deadline: Duration) {
        let give_up = Instant::now() + deadline;
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let until = (last + quiet).min(give_up);
            if until <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    }
}
