//! The configured upstreams: their specs in order, the shared connections (started once,
//! for every session), and the per-upstream connection counts that enforce caps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ElicitationCapability, RootsCapabilities, SamplingCapability};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::upstream::link::{ConnectionCount, Link, client_config};
use crate::upstream::spec::{Era, Share, UpstreamKind, UpstreamSpec};

/// Every configured upstream.
pub struct Upstreams {
    specs: Vec<Arc<UpstreamSpec>>,
    shared: HashMap<String, Arc<Link>>,
    counts: HashMap<String, Arc<ConnectionCount>>,
    cancel: CancellationToken,
}

impl Upstreams {
    /// Starts the shared connections of `specs`; they stop when `cancel` fires.
    pub fn start(specs: Vec<UpstreamSpec>, cancel: CancellationToken, tasks: &TaskTracker) -> Arc<Self> {
        let specs: Vec<Arc<UpstreamSpec>> = specs.into_iter().map(Arc::new).collect();
        let counts: HashMap<String, Arc<ConnectionCount>> =
            specs.iter().map(|s| (s.name.clone(), Arc::new(ConnectionCount::default()))).collect();
        let mut shared = HashMap::new();
        for spec in &specs {
            if spec.share == Share::Shared && spec.kind != UpstreamKind::Builtin {
                // A shared connection serves whichever session asks, so it declares every
                // client capability the gateway can forward.
                let mut caps = ClientCapabilities::default();
                caps.sampling = Some(SamplingCapability::default());
                caps.elicitation = Some(ElicitationCapability::default());
                caps.roots = Some(RootsCapabilities::default());
                // It serves the sessions in their era when the upstream offers both (the
                // modern hub bridges its stateless callers to it).
                let link = Link::start(
                    spec.clone(),
                    client_config(caps, None),
                    Era::Handshake,
                    counts[&spec.name].clone(),
                    cancel.child_token(),
                    tasks,
                );
                shared.insert(spec.name.clone(), link);
            }
        }
        Arc::new(Self { specs, shared, counts, cancel })
    }

    /// Only the built-in tools.
    pub fn builtin(tasks: &TaskTracker) -> Arc<Self> {
        Self::start(vec![UpstreamSpec::new("builtin", UpstreamKind::Builtin)], CancellationToken::new(), tasks)
    }

    /// The specs, in configuration order.
    pub fn specs(&self) -> &[Arc<UpstreamSpec>] {
        &self.specs
    }

    /// The shared connection of the upstream with this name.
    ///
    /// # Panics
    /// When no shared upstream has that name: callers take names from [`Self::specs`].
    pub(crate) fn shared_link(&self, name: &str) -> Arc<Link> {
        self.shared[name].clone()
    }

    /// The live-connection count of the upstream with this name.
    pub(crate) fn count(&self, name: &str) -> Arc<ConnectionCount> {
        self.counts[name].clone()
    }

    /// For each remote upstream: its name, kind, live connections (children, for stdio)
    /// and restarts so far, for metrics.
    pub fn stats(&self) -> Vec<UpstreamStats> {
        self.specs
            .iter()
            .filter(|s| s.kind != UpstreamKind::Builtin)
            .map(|s| UpstreamStats {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                live: self.counts[&s.name].get(),
                restarts: self.counts[&s.name].restarts(),
                list_failures: self.counts[&s.name].list_failures(),
            })
            .collect()
    }

    /// Waits until every shared connection is up or has failed once, for at most `limit`.
    pub async fn ready(&self, limit: Duration) {
        futures::future::join_all(self.shared.values().map(|l| l.ready(limit))).await;
    }

    /// Stops the shared connections.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Upstreams {
    /// The last session using a replaced configuration has ended: its shared connections
    /// go with it.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One upstream's figures, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Its name.
    pub name: String,
    /// Its kind (`stdio`, `http`, `sse`).
    pub kind: &'static str,
    /// Live connections (children, for stdio).
    pub live: usize,
    /// Connections that ended on their own and were restarted.
    pub restarts: u64,
    /// List requests that failed or passed their deadline.
    pub list_failures: u64,
}
