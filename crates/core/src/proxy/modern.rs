//! The proxy as the modern hub: one server for every stateless (2026-07-28) request,
//! started without `initialize`, over the same upstreams the sessions use.
//!
//! Its members are joined once, at start. Shared upstreams are the sessions' own shared
//! connections; an upstream configured per session (`share = "session"`) gets one
//! connection for the hub, which acts as shared there: every stateless request uses it.
//! What the hub advertises is the union of what its members offer now, recomputed only
//! when an upstream's generation moves (it connects, restarts or changes its lists): rmcp
//! asks for it several times per request.

use std::sync::{Arc, Mutex};

use rmcp::model::{ClientCapabilities, Implementation, InitializeRequestParams, ServerConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::mrtr::{MrtrConfig, Parked};
use super::{Member, Proxy, merged_capabilities};
use crate::state::SessionState;
use crate::upstream::set::Upstreams;

/// What only the hub keeps.
pub(super) struct Modern {
    /// The info last computed, and the generation sum it was computed at.
    info: Mutex<Option<(u64, ServerConfig)>>,
    /// Calls waiting for their clients' input.
    pub(super) parked: Arc<Parked>,
}

impl Modern {
    /// The server's info: the members' merged capabilities, from the cache while no
    /// member's generation moved.
    pub(super) fn info(&self, members: &[Member]) -> ServerConfig {
        // Generations only grow, so their sum changes whenever one does.
        let generation: u64 = members.iter().map(Member::generation).sum();
        let mut cached = self.info.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, info)) = cached.as_ref()
            && *at == generation
        {
            return info.clone();
        }
        let info = ServerConfig::new(merged_capabilities(members))
            .with_server_info(Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")));
        *cached = Some((generation, info.clone()));
        info
    }
}

impl Proxy {
    /// The modern hub's server over `upstreams`; the connections it starts for per-session
    /// upstreams live until `cancel` fires.
    pub(crate) fn modern(
        upstreams: Arc<Upstreams>,
        state: Arc<SessionState>,
        cancel: CancellationToken,
        tasks: TaskTracker,
        mrtr: MrtrConfig,
    ) -> Self {
        let mut proxy = Self::new(upstreams, state, cancel, tasks);
        // What a per-session upstream is told about its client: the gateway, which asks a
        // stateless client for sampling, elicitation and roots through input-required results.
        let client =
            InitializeRequestParams::new(mrtr_capabilities(), Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")))
                .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25);
        let members = proxy.members_for(&client, None);
        let _ = proxy.members.set(members);
        proxy.modern = Some(Modern { info: Mutex::new(None), parked: Arc::new(Parked::new(mrtr)) });
        proxy
    }
}

/// The client capabilities the hub can relay: each is asked of the stateless caller, and a
/// caller that did not declare one gets -32021.
fn mrtr_capabilities() -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    capabilities.sampling = Some(Default::default());
    capabilities.elicitation = Some(Default::default());
    capabilities.roots = Some(Default::default());
    capabilities
}
