//! `[cluster]`: this instance as one of several behind a load balancer, sharing sessions
//! through a Redis-protocol store.
//!
//! Each session has one holder. The instance that creates a session records it in the
//! store before the client gets its id; a request for a session this instance does not
//! hold (its holder is gone, so the load balancer sent it here) claims the record, which
//! raises its epoch, and rebuilds the session from the recorded handshake, as a parked
//! session wakes. Instances never forward requests to each other. An instance checks every
//! second that it still holds its sessions at the epoch it claimed (fencing): one that was
//! paused while another took its sessions over ends its copies, and never deletes a record
//! it no longer owns.
//!
//! Every event a session sends with an id, and every request answered on an event stream,
//! goes to the session's journal in the store before its client sees it (see
//! [`mcpgw_transport::journal`]): one writer per instance sends what the sessions held here
//! queued up in one script call per round (each session in it fenced on its own). An instance taking a session over loads the journal, so
//! a client resuming with `Last-Event-ID` gets what it missed, and answers each request its
//! predecessor left unanswered with a definite error, never running it again.
//!
//! # Layout
//! - `store`: the records and the atomic steps on them.
//! - `append`: the script that writes a round of journal batches, and its arguments.
//! - `writer`: the task that writes every session's journal.

mod append;
mod store;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use mcpgw_core::{Handshake, Outbound, OutboundClosed};
use mcpgw_transport::{NodeTag, Session, SessionId, SessionKind};
use rmcp::model::ServerJsonRpcMessage;
use tokio::sync::oneshot;

use store::NewRecord;
pub(crate) use store::{Claimed, Lost, Store, StoreError};

use crate::metrics::Metrics;

/// How often the sessions held here are checked against the store (and their records'
/// lifetimes renewed).
pub(crate) const FENCE_PERIOD: Duration = Duration::from_secs(1);

/// This instance's part in the cluster.
pub(crate) struct Cluster {
    store: Store,
    /// The epoch at which this instance holds each of its sessions.
    epochs: DashMap<SessionId, u64>,
    /// A takeover in progress per session: concurrent requests for one session wait for
    /// the one takeover rather than racing to claim it.
    gates: DashMap<SessionId, Arc<tokio::sync::Mutex<()>>>,
    /// Whether the store answered the last check.
    store_up: AtomicBool,
    /// Whether another instance was found using this node tag (logged once).
    duplicate: AtomicBool,
    /// The journals of the sessions held here, and their writer.
    writer: Arc<writer::Writer>,
    metrics: Arc<Metrics>,
}

impl Cluster {
    /// Joins the cluster through `store`.
    pub(crate) fn new(store: Store, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            store,
            epochs: DashMap::new(),
            gates: DashMap::new(),
            store_up: AtomicBool::new(true),
            duplicate: AtomicBool::new(false),
            writer: Arc::default(),
            metrics,
        })
    }

    /// This instance's tag.
    pub(crate) fn node(&self) -> NodeTag {
        self.store.node()
    }

    /// The store.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The gate of a takeover of `id`: hold its lock while taking the session over.
    pub(crate) fn gate(&self, id: SessionId) -> Arc<tokio::sync::Mutex<()>> {
        self.gates.entry(id).or_default().clone()
    }

    /// The takeover of `id` is over (done or refused).
    pub(crate) fn ungate(&self, id: SessionId) {
        self.gates.remove(&id);
    }

    /// This instance holds `id` from now on, at `epoch`.
    pub(crate) fn hold(&self, id: SessionId, epoch: u64) {
        self.epochs.insert(id, epoch);
    }

    /// Counts a takeover, by where the session was: on an earlier run of this instance
    /// (restarted in place) or on another one.
    pub(crate) fn taken_over(&self, id: SessionId, claimed: &Claimed) {
        let previous = claimed.previous.split(':').next().unwrap_or_default();
        let reason = if previous == self.node().to_string() { "restarted" } else { "moved" };
        self.metrics.takeover(reason);
        tracing::info!(session = %id, from = %claimed.previous, epoch = claimed.epoch, reason, "session taken over");
    }

    /// The session ended here (held at `epoch`): its record goes too, unless another
    /// instance holds it now.
    pub(crate) async fn release(&self, id: SessionId, epoch: u64) {
        if let Err(e) = self.store.release(id, epoch).await {
            self.metrics.store_error("release");
            tracing::warn!(session = %id, error = %e, "could not delete the session's record; it expires by itself");
        }
    }

    /// Forgets a session this instance lets go, and returns the epoch it held it at. The
    /// record is left as it is (lost to another instance, or left for another to take).
    pub(crate) fn forget(&self, id: SessionId) -> Option<u64> {
        self.epochs.remove(&id).map(|(_, epoch)| epoch)
    }

    /// The sessions held here that another instance has claimed since; renews this
    /// instance's node key on the way. Also tells whether the store answers
    /// ([`Cluster::store_up`]).
    pub(crate) async fn lost(&self) -> Result<Vec<Lost>, StoreError> {
        let held: Vec<(SessionId, u64)> = self.epochs.iter().map(|e| (*e.key(), *e.value())).collect();
        let lost = async {
            if !self.store.renew_node().await? && !self.duplicate.swap(true, Ordering::Relaxed) {
                tracing::error!(node = %self.node(), "another instance runs with this node tag; give each its own");
            }
            self.store.lost(&held).await
        }
        .await;
        if lost.is_err() {
            self.metrics.store_error("check");
        }
        self.store_up.store(lost.is_ok(), Ordering::Relaxed);
        lost
    }

    /// Leaves the cluster (at shutdown): gives the node key back, so this instance can
    /// start again at once. Its sessions' records stay, for other instances to take over.
    pub(crate) async fn leave(&self) {
        if let Err(e) = self.store.leave().await {
            tracing::warn!(error = %e, "could not give the node key back; it expires by itself");
        }
    }

    /// Whether the store answered the last check.
    pub(crate) fn store_up(&self) -> bool {
        self.store_up.load(Ordering::Relaxed)
    }
}

/// A session's outbound side in a cluster: delivers as a single node does, and records the
/// handshake in the store before the answer to `initialize` reaches the client.
pub(crate) struct ClusterOutbound {
    session: Arc<Session>,
    cluster: Arc<Cluster>,
    /// A legacy session's record, from its handshake until its next message is delivered.
    record: std::sync::Mutex<Option<NewRecord>>,
}

impl ClusterOutbound {
    pub(crate) fn new(session: Arc<Session>, cluster: Arc<Cluster>) -> Self {
        Self { session, cluster, record: std::sync::Mutex::default() }
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Option<NewRecord>> {
        // Plain data, never left half-written by a panic.
        self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Outbound for ClusterOutbound {
    fn deliver(
        &self,
        message: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
        // Routed, and so journaled, before this returns.
        let delivered = self.session.deliver(message);
        if let Some(record) = self.record().take() {
            // The `initialize` answer is journaled: its round carries the record too.
            self.cluster.create(self.session.id(), record, None);
        }
        async move { delivered.await.map_err(|_| OutboundClosed) }
    }

    const RECORDS_HANDSHAKE: bool = true;

    /// The record goes to the journal's writer, which writes it with the session's next
    /// batch. A Streamable HTTP client learns the session's id from this `initialize`
    /// answer, which is not journaled when it is JSON: it leaves once the record is written.
    /// A legacy client has its id already, and the answer goes on its event stream, which
    /// the journal holds back until the round it is written in: the record is handed over
    /// once the answer is journaled, so that both go in one round trip.
    fn initialized(&self, handshake: &Handshake) -> impl Future<Output = ()> + Send + 'static {
        let session = &self.session;
        let record = NewRecord::new(session.kind(), session.owner(), handshake.to_json());
        let recorded = if session.kind() == SessionKind::Legacy {
            *self.record() = Some(record);
            None
        } else {
            let (written, recorded) = oneshot::channel();
            self.cluster.create(session.id(), record, Some(written));
            Some(recorded)
        };
        async move {
            if let Some(recorded) = recorded {
                // Not recorded (the store failed): the session still works here.
                let _ = recorded.await;
            }
        }
    }
}

/// The first run number of a session's server at `epoch`: above every run of the holders
/// before, which park and wake at most 2^16 times each.
pub(crate) fn first_run(epoch: u64) -> u32 {
    u32::try_from(epoch.min(u64::from(u16::MAX))).unwrap_or(u32::from(u16::MAX)) << 16
}
