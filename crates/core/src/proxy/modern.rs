//! The proxy as the modern hub: one server for every stateless (2026-07-28) request,
//! started without `initialize`, over the same upstreams the sessions use.
//!
//! Its members are joined once, at start. Shared upstreams are the sessions' own shared
//! connections; an upstream configured per session (`share = "session"`) gets two
//! connections for the hub, which act as shared there (see [`ModernHub`]).
//! What the hub advertises is the union of what its members offer now, recomputed only
//! when an upstream's generation moves (it connects, restarts or changes its lists): rmcp
//! asks for it several times per request.

use std::sync::{Arc, Mutex};

use std::borrow::Cow;
use std::sync::atomic::AtomicUsize;

use rmcp::model::{
    ClientCapabilities, ClientNotification, ClientRequest, Implementation, InitializeRequestParams, ProtocolVersion,
    RequestMetaObject, ServerConfig, ServerResult,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, Service};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::listen::ResourceHolds;
use super::mrtr::{MrtrConfig, Parked};
use super::{Member, Proxy, merged_capabilities};
use crate::state::SessionState;
use crate::upstream::set::Upstreams;
use crate::upstream::spec::Era;

/// What only the hub keeps.
pub(super) struct Modern {
    /// The info last computed, and the generation sum it was computed at.
    info: Mutex<Option<(u64, ServerConfig)>>,
    /// Calls waiting for their clients' input.
    pub(super) parked: Arc<Parked>,
    /// Upstream resource subscriptions held by listeners (shared by both hub proxies).
    pub(super) holds: Arc<ResourceHolds>,
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
    /// A modern hub's server over `upstreams`; the connections it starts for per-session
    /// upstreams live until `cancel` fires. `capable`: its per-session upstreams are told
    /// their client can sample, elicit and list roots (asked of the caller through
    /// input-required results); otherwise that it can do none of those.
    fn modern(
        upstreams: Arc<Upstreams>,
        state: Arc<SessionState>,
        cancel: CancellationToken,
        tasks: TaskTracker,
        parked: Arc<Parked>,
        holds: Arc<ResourceHolds>,
        capable: bool,
    ) -> Self {
        let mut proxy = Self::new(upstreams, state, cancel, tasks);
        let capabilities = if capable { mrtr_capabilities() } else { ClientCapabilities::default() };
        let client =
            InitializeRequestParams::new(capabilities, Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")))
                .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25);
        // Its own connections speak 2026-07-28 to an upstream that offers it: an input-required
        // result then reaches the caller as the upstream made it.
        let members = proxy.members_for(&client, None, Era::Modern);
        let _ = proxy.members.set(members);
        proxy.modern = Some(Modern { info: Mutex::new(None), parked, holds });
        proxy
    }
}

/// The modern hub's server: two proxies over the same upstreams, told different things
/// about their client. A handshake-era upstream learns its client's capabilities once, at
/// `initialize`, and may act on them (offer a sampling tool only to a client that can
/// sample, refuse a call with -32021 when it cannot); stateless callers each declare their
/// own. So a per-session upstream gets two connections for the hub: one that says its
/// client can sample, elicit and list roots, for the requests that declare any of those,
/// and one that says it can do none, for the rest. Shared upstreams are the same
/// connection in both. Both park their calls in one table, so a retry finds its call
/// whichever of them it reaches.
pub struct ModernHub {
    capable: Proxy,
    plain: Proxy,
}

impl ModernHub {
    pub(crate) fn new(
        upstreams: &Arc<Upstreams>,
        state: &Arc<SessionState>,
        cancel: &CancellationToken,
        tasks: &TaskTracker,
        mrtr: MrtrConfig,
        waiting: Arc<AtomicUsize>,
    ) -> Self {
        let parked = Arc::new(Parked::new(mrtr, waiting));
        // Its per-session connections serve every stateless caller alike: an upstream
        // that takes a credential from its caller cannot be one of them.
        for spec in upstreams.specs().iter().filter(|s| s.per_caller.is_some()) {
            tracing::info!(upstream = %spec.name, "upstream not offered to stateless requests: it takes credentials from its caller");
        }
        let holds = Arc::new(ResourceHolds::default());
        let proxy = |capable| {
            let (parked, holds) = (parked.clone(), holds.clone());
            Proxy::modern(upstreams.clone(), state.clone(), cancel.clone(), tasks.clone(), parked, holds, capable)
        };
        Self { capable: proxy(true), plain: proxy(false) }
    }

    /// The proxy of a request with this `_meta`.
    fn of(&self, meta: &RequestMetaObject) -> &Proxy {
        let declared = meta.client_capabilities().unwrap_or_default();
        if declared.sampling.is_some() || declared.elicitation.is_some() || declared.roots.is_some() {
            &self.capable
        } else {
            &self.plain
        }
    }
}

impl Service<RoleServer> for ModernHub {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        // rmcp has moved the request's `_meta` into the context by now.
        let proxy = self.of(&context.meta);
        // What `server/discover` advertises is what the upstreams offer: one whose first
        // connection attempt is under way (the hub's per-session connections start with the
        // hub) is waited for, as a session's `initialize` waits for its own, else its
        // capabilities would be guessed (resources without `subscribe`) and clients keep the
        // first answer.
        if let ClientRequest::DiscoverRequest(_) = &request {
            self.capable.first_connections().await;
        }
        // A listen's resource subscriptions are made upstream before rmcp acknowledges its
        // filter (the URIs honoured are read from the catalog, built first), and released
        // once the listen ends, whatever ended it.
        if let ClientRequest::SubscriptionsListenRequest(listen) = &request
            && let Some(uris) = listen.params.notifications.resource_subscriptions.clone()
        {
            let _ = proxy.built().await;
            let held = proxy.hold_resources(&uris, &context).await;
            let release = context.clone();
            let result = <Proxy as Service<RoleServer>>::handle_request(proxy, request, context).await;
            proxy.release_resources(held, &release).await;
            return result;
        }
        <Proxy as Service<RoleServer>>::handle_request(proxy, request, context).await
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        <Proxy as Service<RoleServer>>::handle_notification(&self.capable, notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        <Proxy as Service<RoleServer>>::get_info(&self.capable)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        <Proxy as Service<RoleServer>>::supported_protocol_versions(&self.capable)
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
