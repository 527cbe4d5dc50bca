//! The MCP server each client session gets: it serves the union of the configured
//! upstreams, and forwards every request to the upstream that owns its tool, prompt or
//! resource.
//!
//! # Layout
//! - `build`: a session's catalog from what its upstreams list, and its capabilities.
//! - `view`: the policy on a request's way.
//! - `modern`: the hub, which serves every stateless (2026-07-28) request.
//! - `mrtr`: input requests returned as results, and their sealed state.
//! - `listen`: what the hub honours of a `subscriptions/listen`.

#![allow(deprecated)] // logging/setLevel and resource subscriptions are deprecated in 2026-07-28 only

mod build;
mod listen;
mod modern;
mod mrtr;
mod view;

pub use modern::ModernHub;

/// The modern hub's server, called without its message loop.
pub type HubServer = crate::direct::DirectServer<ModernHub>;
pub use mrtr::{MAX_PARKED, MrtrConfig};

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::join_all;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ConstString, ErrorCode, GetPromptRequest, GetPromptRequestParams,
    GetPromptResponse, Implementation, InitializeRequestParams, InitializeResult, ListPromptsRequestMethod,
    ListPromptsResult, ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsRequestMethod, ListToolsResult, PaginatedRequestParams, PromptsCapability,
    ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse, Reference, ResourcesCapability,
    ServerCapabilities, ServerConfig, ServerResult, SetLevelRequest, SetLevelRequestMethod, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, ToolsCapability, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::CallAudit;
use crate::catalog::{Catalog, Route};
use crate::error::Error;
use crate::handshake::Handshake;
use crate::state::SessionState;
use crate::upstream::builtin::Builtin;
use crate::upstream::fetch::Collapsed;
use crate::upstream::link::{Link, SessionKey, client_config};
use crate::upstream::set::Upstreams;
use crate::upstream::spec::{CANCEL_GRACE, DEFAULT_CALL_TIMEOUT, Era, Share, UpstreamKind, UpstreamSpec};
use build::{Built, build, merged_capabilities};
use view::{Shaped, View};

/// One session's server.
pub struct Proxy {
    upstreams: Arc<Upstreams>,
    state: Arc<SessionState>,
    members: OnceLock<Vec<Member>>,
    info: OnceLock<ServerConfig>,
    catalog: Collapsed<Arc<Built>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// Set for the modern hub: the one server of every stateless request.
    modern: Option<modern::Modern>,
    /// The upstreams' names by index, for the policy.
    names: Arc<[String]>,
    /// Catalogs as the policy shapes them for its callers, latest last.
    shaped: Mutex<Vec<Shaped>>,
}

/// One upstream as a session sees it.
#[derive(Clone)]
enum Member {
    Builtin(Arc<Builtin>),
    Remote {
        spec: Arc<UpstreamSpec>,
        link: Arc<Link>,
    },
    /// An upstream this session does not get: it takes a credential from its caller, and
    /// this caller has none. It lists nothing.
    Absent,
}

impl Member {
    fn spec_name<'a>(&'a self, spec: &'a UpstreamSpec) -> &'a str {
        match self {
            Member::Builtin(_) | Member::Absent => &spec.name,
            Member::Remote { spec, .. } => &spec.name,
        }
    }

    fn generation(&self) -> u64 {
        match self {
            Member::Builtin(_) | Member::Absent => 0,
            Member::Remote { link, .. } => link.generation(),
        }
    }

    /// What the member offers: a remote upstream that is restarting counts with what it
    /// offered last; one never connected yet may come up with any list, so it counts with
    /// every list the proxy serves (its `list_changed` tells the client when it does).
    fn capabilities(&self) -> ServerCapabilities {
        match self {
            Member::Builtin(b) => b.get_info().capabilities,
            Member::Absent => ServerCapabilities::default(),
            Member::Remote { link, .. } => link.offered().unwrap_or_else(|| {
                let mut any = ServerCapabilities::default();
                any.tools = Some(ToolsCapability::default());
                any.prompts = Some(PromptsCapability::default());
                any.resources = Some(ResourcesCapability::default());
                any
            }),
        }
    }
}

impl Proxy {
    /// A session's server over `upstreams`; its own upstream connections live until
    /// `cancel` fires.
    pub(crate) fn new(
        upstreams: Arc<Upstreams>,
        state: Arc<SessionState>,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        let names = upstreams.specs().iter().map(|s| s.name.clone()).collect();
        Self {
            upstreams,
            state,
            names,
            shaped: Mutex::new(Vec::new()),
            members: OnceLock::new(),
            info: OnceLock::new(),
            // A catalog with an upstream left out is built again on the next ask; the link
            // keeps that upstream's failure for its list deadline, so that costs no wait.
            catalog: Collapsed::new(|built: &Arc<Built>| !built.missing.is_empty(), Duration::ZERO),
            cancel,
            tasks,
            modern: None,
        }
    }

    /// The server of a parked session that a client message woke: initialized already,
    /// from the session's handshake. A session parks only when every upstream it uses is
    /// shared or built in, so this rejoins what the session used before.
    pub(crate) fn resume(
        upstreams: Arc<Upstreams>,
        state: Arc<SessionState>,
        handshake: &Handshake,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        let proxy = Self::new(upstreams, state, cancel, tasks);
        let members = proxy.members_for(&handshake.client, None, Era::Handshake);
        let _ = proxy.info.set(handshake.server.clone());
        let _ = proxy.members.set(members);
        proxy
    }

    /// The key of this session among the upstreams' audiences.
    fn key(&self) -> SessionKey {
        self.state.key
    }

    fn members(&self) -> Result<&[Member], ErrorData> {
        self.members
            .get()
            .map(Vec::as_slice)
            .ok_or_else(|| ErrorData::invalid_request("the session is not initialized", None))
    }

    /// Connects the session's upstreams: shared ones are joined, per-session ones started
    /// with this client's capabilities, so what the upstream asks of its client (sampling,
    /// elicitation, roots) matches what this client can do.
    async fn connect(&self, request: &InitializeRequestParams, ctx: &RequestContext<RoleServer>) -> Vec<Member> {
        let members = self.members_for(request, Some(&ctx.peer), Era::Handshake);
        let starting = members.iter().filter_map(|m| match m {
            Member::Remote { spec, link } => Some(link.ready(spec.connect_timeout)),
            Member::Builtin(_) | Member::Absent => None,
        });
        join_all(starting).await;
        members
    }

    /// Waits (each for at most its connect timeout) for the members whose first connection
    /// attempt is under way to come up or fail, so what they offer is known. (Only the
    /// first: one that failed is not waited for again while it retries.)
    async fn first_connections(&self) {
        let Ok(members) = self.members() else { return };
        join_all(members.iter().filter_map(|m| match m {
            Member::Remote { spec, link } if link.first_attempt_pending() => Some(link.ready(spec.connect_timeout)),
            _ => None,
        }))
        .await;
    }

    /// The session's members: shared links joined, its own links started (`peer` is the
    /// running server they may ask things of).
    /// The members of a server whose client is `request`'s; a connection of its own to an
    /// upstream of `era = "auto"` speaks the `prefers` era when the upstream offers both.
    fn members_for(
        &self,
        request: &InitializeRequestParams,
        peer: Option<&Peer<RoleServer>>,
        prefers: Era,
    ) -> Vec<Member> {
        let mut members = Vec::with_capacity(self.upstreams.specs().len());
        for spec in self.upstreams.specs() {
            let member = match (&spec.kind, spec.share) {
                (UpstreamKind::Builtin, _) => Member::Builtin(Builtin::shared()),
                (_, Share::Shared) => {
                    let link = self.upstreams.shared_link(&spec.name);
                    Member::Remote { spec: spec.clone(), link }
                }
                (_, Share::Session) => match self.own_spec(spec, peer.is_some()) {
                    Some(spec) => {
                        let client = client_config(request.capabilities.clone(), Some(request.client_info.clone()));
                        let count = self.upstreams.count(&spec.name);
                        let link =
                            Link::start(spec.clone(), client, prefers, count, self.cancel.child_token(), &self.tasks);
                        Member::Remote { spec, link }
                    }
                    None => Member::Absent,
                },
            };
            if let Member::Remote { spec, link } = &member {
                let owner = if spec.share == Share::Session { peer.cloned() } else { None };
                self.state.attach(link, owner);
            }
            members.push(member);
        }
        members
    }

    /// The spec of this session's own connection to `spec`'s upstream: the same, unless it
    /// takes credentials from its caller; `None` when this caller has none, which is said
    /// once per session, at its initialize (`connecting`; the hub says why at its start).
    fn own_spec(&self, spec: &Arc<UpstreamSpec>, connecting: bool) -> Option<Arc<UpstreamSpec>> {
        if spec.per_caller.is_none() {
            return Some(spec.clone());
        }
        let caller = self.state.caller.as_ref().map(crate::policy::Caller::attributes);
        match spec.for_caller(caller) {
            Ok(own) => Some(Arc::new(own)),
            Err(missing) => {
                if connecting {
                    let (upstream, caller) = (&spec.name, &self.state.origin.name);
                    tracing::info!(%upstream, %caller, "upstream left out of the session: {missing}");
                }
                None
            }
        }
    }

    /// The session's catalog, rebuilt when an upstream's listings may have changed. Callers
    /// asking meanwhile join the one build; no lock is held across it, and each upstream's
    /// lists have a deadline, past which that upstream is left out.
    async fn built(&self) -> Result<Arc<Built>, ErrorData> {
        let members = self.members()?;
        // Generations only grow, so their sum changes whenever one does.
        let generation = members.iter().map(Member::generation).sum();
        let (members, upstreams) = (members.to_vec(), self.upstreams.clone());
        // The hub has no initialize to wait for its upstreams in: a build waits for those
        // still starting, as a session's initialize does.
        let wait = self.modern.is_some();
        Ok(self.catalog.get(generation, move || build(members, upstreams, wait)).await)
    }

    /// The catalog as the caller of the request `view` is for sees it.
    async fn catalog(&self, view: Option<&View>) -> Result<Arc<Catalog>, ErrorData> {
        let built = self.built().await?;
        Ok(self.shape(built, view).catalog.clone())
    }

    /// Where a tool call goes.
    async fn tool_route(&self, name: &str, view: Option<&View>) -> Result<Route, ErrorData> {
        let (route, built) =
            self.lookup(view, |c| c.tool(name).cloned(), |r| std::slice::from_ref(&r.upstream)).await?;
        route.ok_or_else(|| {
            // The caller hears "not found" either way; the operator may want to know which.
            if view.is_some() && self.catalog.last().is_some_and(|raw| raw.catalog.tool(name).is_some()) {
                tracing::debug!(tool = name, "a tool call the policy does not allow this caller");
            }
            let mut e = self.not_found("tool", name, built.catalog.tool_hint(name));
            if !built.missing.is_empty() {
                e.message = format!("{} (not listed now: {})", e.message, built.missing.join("; ")).into();
            }
            e
        })
    }

    /// Finds what a request is routed by: in the last catalog when `find` finds it there and
    /// none of its `owners`' lists has changed since, so another upstream's list fetch (in
    /// flight, or stalled until its deadline) does not hold the request up; else in a fresh
    /// catalog. The catalog looked in comes along, for a not-found error. Both are the
    /// catalog as `view`'s caller sees it.
    async fn lookup<T>(
        &self,
        view: Option<&View>,
        find: impl Fn(&Catalog) -> Option<T>,
        owners: impl Fn(&T) -> &[usize],
    ) -> Result<(Option<T>, Arc<Built>), ErrorData> {
        let members = self.members()?;
        if let Some(built) = self.catalog.last().map(|b| self.shape(b, view))
            && let Some(found) = find(&built.catalog)
            && owners(&found)
                .iter()
                .all(|&i| members.get(i).map(Member::generation) == built.generations.get(i).copied())
        {
            return Ok((Some(found), built));
        }
        let built = self.shape(self.built().await?, view);
        Ok((find(&built.catalog), built))
    }

    /// `resources/subscribe` (or `unsubscribe`) of `uri`, passed on to the upstream that owns it.
    async fn resource_subscription(
        &self,
        uri: &str,
        ctx: RequestContext<RoleServer>,
        subscribe: bool,
    ) -> Result<(), ErrorData> {
        let owner = self.resource_remote(uri, self.view(&ctx.extensions).as_ref()).await?;
        let (link, _) = self.remote(owner)?;
        let method = if subscribe { "resources/subscribe" } else { "resources/unsubscribe" };
        self.under_deadline(owner, method, ctx, |ctx| async move {
            if subscribe {
                Ok(link.subscribe_resource(self.key(), uri, &ctx).await?)
            } else {
                Ok(link.unsubscribe_resource(self.key(), uri, &ctx).await?)
            }
        })
        .await
    }

    /// Runs a request to upstream `index` under that upstream's deadline (its
    /// `call_timeout_secs`). The request runs under a token of its own, so the deadline
    /// cancels it the same way a client's notifications/cancelled does: the upstream is told,
    /// a builtin stops; then the client hears why.
    async fn under_deadline<T, F>(
        &self,
        index: usize,
        what: &str,
        mut ctx: RequestContext<RoleServer>,
        request: impl FnOnce(RequestContext<RoleServer>) -> F,
    ) -> Result<T, ErrorData>
    where
        F: Future<Output = Result<T, ErrorData>>,
    {
        let spec = self.upstreams.specs().get(index);
        let limit = spec.and_then(|s| s.call_timeout).unwrap_or(DEFAULT_CALL_TIMEOUT);
        let deadline_ct = ctx.ct.child_token();
        ctx.ct = deadline_ct.clone();
        let mut request = std::pin::pin!(request(ctx));
        tokio::select! {
            result = &mut request => result,
            () = tokio::time::sleep(limit) => {
                deadline_ct.cancel();
                // Let the cancelled request finish (it tells the upstream), for a while, then
                // report why.
                let _ = tokio::time::timeout(CANCEL_GRACE, request).await;
                let upstream = spec.map(|s| s.name.clone()).unwrap_or_default();
                let mut e: ErrorData = Error::Timeout { upstream, what: what.into(), after: limit }.into();
                e.message = format!("{} and was cancelled (its call_timeout_secs sets the limit)", e.message).into();
                Err(e)
            }
        }
    }

    fn remote(&self, index: usize) -> Result<(&Arc<Link>, bool), ErrorData> {
        match self.members()?.get(index) {
            Some(Member::Remote { link, .. }) => Ok((link, false)),
            _ => Err(ErrorData::internal_error("no such upstream", None)),
        }
    }

    async fn forward(
        &self,
        index: usize,
        request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let (link, _) = self.remote(index)?;
        if let Some(modern) = &self.modern {
            let limit = self.upstreams.specs().get(index).and_then(|s| s.call_timeout).unwrap_or(DEFAULT_CALL_TIMEOUT);
            let link = link.clone();
            return mrtr::round(&modern.parked, link, request, ctx, self.key(), limit, &self.cancel, &self.tasks).await;
        }
        Ok(link.forward(request, ctx, self.key()).await?)
    }

    /// A tool call: routed to the upstream that has the tool, and run there under its
    /// deadline; `audit` hears where it went, and whether the deadline ended it.
    async fn call_routed(
        &self,
        mut params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
        audit: &mut CallAudit<'_>,
    ) -> Result<CallToolResponse, ErrorData> {
        let view = self.view(&ctx.extensions);
        let route = self.tool_route(&params.name, view.as_ref()).await?;
        let spec = self.upstreams.specs().get(route.upstream);
        if let Some(spec) = spec {
            audit.routed(&spec.name, &route.name);
        }
        if let Some(pins) = &route.pins {
            view::pin(&mut params, pins)?;
        }
        params.name = route.name.into();
        let (started, limit) = (tokio::time::Instant::now(), spec.and_then(|s| s.call_timeout));
        let result = self
            .under_deadline(route.upstream, "the tool call", ctx, |ctx| async move {
                match self.members()?.get(route.upstream) {
                    Some(Member::Builtin(b)) => b.call_tool(params, ctx).await,
                    _ => match self
                        .forward(route.upstream, ClientRequest::CallToolRequest(CallToolRequest::new(params)), &ctx)
                        .await?
                    {
                        ServerResult::CallToolResult(r) => Ok(r.into()),
                        ServerResult::InputRequiredResult(r) => Ok(r.into()),
                        other => Err(self.unexpected(route.upstream, "tools/call", &other)),
                    },
                }
            })
            .await;
        // Only the deadline ends a call in error at or past it (the client's cancel aside).
        if result.is_err() && started.elapsed() >= limit.unwrap_or(DEFAULT_CALL_TIMEOUT) {
            audit.timed_out();
        }
        result
    }

    /// The upstream answered `method` with another request's result.
    fn unexpected(&self, index: usize, method: &'static str, result: &ServerResult) -> ErrorData {
        tracing::warn!(method, ?result, "an upstream answered with the wrong result type");
        let upstream = self.upstreams.specs().get(index).map(|s| s.name.clone()).unwrap_or_default();
        Error::Protocol { upstream, method }.into()
    }
}

/// `-32601` for a method whose capability the session does not advertise, as rmcp's own
/// default handlers answer: what no upstream offers is not served.
fn offered<M: ConstString>(advertised: bool) -> Result<(), ErrorData> {
    if advertised { Ok(()) } else { Err(ErrorData::method_not_found::<M>()) }
}

fn is_not_found(e: &ErrorData) -> bool {
    e.code == ErrorCode::RESOURCE_NOT_FOUND
        || e.code == ErrorCode::INVALID_PARAMS
        || e.code == ErrorCode::METHOD_NOT_FOUND
}

/// Every request handler's body is boxed: rmcp runs each request on a task of its own whose
/// future holds the state of the largest handler inline (an enum over all of them), and
/// tokio copies that future when the task is made and again when it finishes. Unboxed, the
/// forwarding handlers (deadline, nested upstream round trip, request context) made those
/// copies a visible share of a `tools/call` (docs/performance.md); a box costs one small
/// allocation instead.
impl ServerHandler for Proxy {
    /// Only the versions with an `initialize` handshake: a session's upstreams may ask its
    /// client for sampling or elicitation, which 2026-07-28 forbids, so 2026 clients are
    /// steered to a 2025 session (on legacy SSE too, where a `server/discover` probe reaches
    /// the server).
    /// The hub serves 2026-07-28 too: its requests reach it one by one, never through a
    /// session, and the versions of the handshake era are listed for `server/discover`.
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [rmcp::model::ProtocolVersion]> {
        let newest = match self.modern {
            Some(_) => &rmcp::model::ProtocolVersion::V_2026_07_28,
            None => &rmcp::model::ProtocolVersion::V_2025_11_25,
        };
        std::borrow::Cow::Borrowed(rmcp::model::ProtocolVersion::known_up_to(newest))
    }

    fn get_info(&self) -> ServerConfig {
        if let Some(modern) = &self.modern {
            return modern.info(self.members.get().map(Vec::as_slice).unwrap_or_default());
        }
        self.info.get().cloned().unwrap_or_else(|| {
            ServerConfig::new(ServerCapabilities::default())
                .with_server_info(Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")))
        })
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        Box::pin(async move {
            if ctx.peer.peer_info().is_none() {
                ctx.peer.set_peer_info(request.clone());
            }
            if self.members.get().is_none() {
                let members = self.connect(&request, &ctx).await;
                let capabilities = merged_capabilities(&members);
                let _ = self.info.set(
                    ServerConfig::new(capabilities)
                        .with_server_info(Implementation::new("mcpgw", env!("CARGO_PKG_VERSION"))),
                );
                let _ = self.members.set(members);
            }
            let result = self.negotiate_initialize(&request)?;
            // Its own upstream connections live in this server; a session without them may
            // park when quiet and come back from this handshake.
            let may_park = self.members()?.iter().all(|m| match m {
                Member::Builtin(_) | Member::Absent => true,
                Member::Remote { spec, .. } => spec.share == Share::Shared,
            });
            let mut client = request;
            client.protocol_version = result.protocol_version.clone();
            let handshake = Handshake { client, server: self.get_info() };
            // Recorded before the answer leaves: a client that has the session id can
            // always have its session taken over.
            if let Some(recorder) = &self.state.recorder {
                recorder.record(&handshake).await;
            }
            self.state.initialized(handshake, may_park);
            Ok(result)
        })
        .await
    }

    async fn ping(&self, _ctx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Box::pin(async move {
            offered::<ListToolsRequestMethod>(self.get_info().capabilities.tools.is_some())?;
            let view = self.view(&ctx.extensions);
            Ok(ListToolsResult::with_all_items(self.catalog(view.as_ref()).await?.tools.clone()))
        })
        .await
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Box::pin(async move {
            let origin = self.state.origin.of(&ctx, self.modern.is_some());
            let mut audit = CallAudit::start(&self.state.audit, origin, &params.name, params.arguments.as_ref());
            let client = ctx.ct.clone();
            let result = self.call_routed(params, ctx, &mut audit).await;
            audit.finish(&result, client.is_cancelled());
            result
        })
        .await
    }

    async fn list_prompts(
        &self,
        _r: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Box::pin(async move {
            offered::<ListPromptsRequestMethod>(self.get_info().capabilities.prompts.is_some())?;
            let view = self.view(&ctx.extensions);
            Ok(ListPromptsResult::with_all_items(self.catalog(view.as_ref()).await?.prompts.clone()))
        })
        .await
    }

    async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Box::pin(async move {
            let view = self.view(&ctx.extensions);
            let (route, built) = self
                .lookup(view.as_ref(), |c| c.prompt(&params.name).cloned(), |r| std::slice::from_ref(&r.upstream))
                .await?;
            let route =
                route.ok_or_else(|| self.not_found("prompt", &params.name, built.catalog.prompt_hint(&params.name)))?;
            params.name = route.name;
            self.under_deadline(route.upstream, "prompts/get", ctx, |ctx| async move {
                match self.members()?.get(route.upstream) {
                    Some(Member::Builtin(b)) => b.get_prompt(params, ctx).await,
                    _ => match self
                        .forward(route.upstream, ClientRequest::GetPromptRequest(GetPromptRequest::new(params)), &ctx)
                        .await?
                    {
                        ServerResult::GetPromptResult(r) => Ok(r.into()),
                        ServerResult::InputRequiredResult(r) => Ok(r.into()),
                        other => Err(self.unexpected(route.upstream, "prompts/get", &other)),
                    },
                }
            })
            .await
        })
        .await
    }

    async fn list_resources(
        &self,
        _r: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Box::pin(async move {
            offered::<ListResourcesRequestMethod>(self.get_info().capabilities.resources.is_some())?;
            let view = self.view(&ctx.extensions);
            Ok(ListResourcesResult::with_all_items(self.catalog(view.as_ref()).await?.resources.clone()))
        })
        .await
    }

    async fn list_resource_templates(
        &self,
        _r: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Box::pin(async move {
            offered::<ListResourceTemplatesRequestMethod>(self.get_info().capabilities.resources.is_some())?;
            let view = self.view(&ctx.extensions);
            Ok(ListResourceTemplatesResult::with_all_items(self.catalog(view.as_ref()).await?.templates.clone()))
        })
        .await
    }

    async fn read_resource(
        &self,
        params: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Box::pin(async move {
            // The owners are tried in turn; the first, which listed the URI or has a template
            // for it, decides whether the last catalog is current enough.
            let view = self.view(&ctx.extensions);
            let find = |c: &Catalog| Some(c.resource_owners(&params.uri)).filter(|o| !o.is_empty());
            let (owners, _) = self.lookup(view.as_ref(), find, |o| &o[..1]).await?;
            // The uri in `data` too, so a client can tell which read failed (2026-07-28 asks it).
            let mut last = ErrorData::resource_not_found(
                format!("resource not found: {}", params.uri),
                Some(serde_json::json!({ "uri": params.uri })),
            );
            for owner in owners.unwrap_or_default() {
                let result = self
                    .under_deadline(owner, "resources/read", ctx.clone(), |ctx| {
                        let params = params.clone();
                        async move {
                            match self.members()?.get(owner) {
                                Some(Member::Builtin(b)) => b.read_resource(params, ctx).await,
                                _ => {
                                    let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params));
                                    match self.forward(owner, request, &ctx).await? {
                                        ServerResult::ReadResourceResult(r) => Ok(r.into()),
                                        ServerResult::InputRequiredResult(r) => Ok(r.into()),
                                        other => Err(self.unexpected(owner, "resources/read", &other)),
                                    }
                                }
                            }
                        }
                    })
                    .await;
                match result {
                    Err(e) if is_not_found(&e) => last = e,
                    done => return done,
                }
            }
            Err(last)
        })
        .await
    }

    async fn subscribe(
        &self,
        params: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Box::pin(self.resource_subscription(&params.uri, ctx, true)).await
    }

    async fn unsubscribe(
        &self,
        params: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Box::pin(self.resource_subscription(&params.uri, ctx, false)).await
    }

    async fn complete(
        &self,
        mut params: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Box::pin(async move {
            offered::<CompleteRequestMethod>(self.get_info().capabilities.completions.is_some())?;
            let find = |c: &Catalog| match &params.r#ref {
                Reference::Prompt(prompt) => {
                    c.prompt(&prompt.name).map(|route| (route.upstream, Some(route.name.clone())))
                }
                Reference::Resource(resource) => c.template_owner(&resource.uri).map(|owner| (owner, None)),
                _ => None,
            };
            let view = self.view(&ctx.extensions);
            let (found, _) = self.lookup(view.as_ref(), find, |(owner, _)| std::slice::from_ref(owner)).await?;
            let Some((owner, name)) = found else { return Ok(CompleteResult::default()) };
            if let (Reference::Prompt(prompt), Some(name)) = (&mut params.r#ref, name) {
                prompt.name = name;
            }
            match self.members()?.get(owner) {
                // The built-in prompts complete nothing (and rmcp answers -32601 for them).
                Some(Member::Builtin(_)) => Ok(CompleteResult::default()),
                _ => {
                    let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
                    self.under_deadline(owner, "completion/complete", ctx, |ctx| async move {
                        match self.forward(owner, request, &ctx).await? {
                            ServerResult::CompleteResult(r) => Ok(r),
                            other => Err(self.unexpected(owner, "completion/complete", &other)),
                        }
                    })
                    .await
                }
            }
        })
        .await
    }

    async fn set_level(&self, params: SetLevelRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        Box::pin(async move {
            offered::<SetLevelRequestMethod>(self.get_info().capabilities.logging.is_some())?;
            let mut sent = false;
            for (index, member) in self.members()?.iter().enumerate() {
                if let Member::Remote { link, .. } = member
                    && link.capabilities().is_some_and(|c| c.logging.is_some())
                {
                    let request = ClientRequest::SetLevelRequest(SetLevelRequest::new(params.clone()));
                    self.under_deadline(index, "logging/setLevel", ctx.clone(), |ctx| async move {
                        Ok(link.forward(request, &ctx, self.key()).await?)
                    })
                    .await?;
                    sent = true;
                }
            }
            if !sent {
                tracing::debug!("logging/setLevel: no upstream logs");
            }
            Ok(())
        })
        .await
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        self.accepted_filter(requested)
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        Box::pin(self.run_listener(subscription)).await
    }

    async fn on_roots_list_changed(&self, _ctx: NotificationContext<RoleServer>) {
        let Ok(members) = self.members() else { return };
        for member in members {
            if let Member::Remote { spec, link } = member
                && spec.share == Share::Session
                && let Ok(peer) = link.peer().await
            {
                let _ = peer.notify_roots_list_changed().await;
            }
        }
    }
}

impl Proxy {
    /// "Not found", with the catalog's `hint` when it knows why (a collision, a prefix or a
    /// filter); else naming the upstreams that are unavailable right now (restarting, or at
    /// their connection cap): the item may well be theirs.
    fn not_found(&self, what: &str, name: &str, hint: Option<&str>) -> ErrorData {
        let mut message = format!("{what} not found: {name}");
        if let Some(hint) = hint {
            message.push_str(&format!(" ({hint})"));
            return ErrorData::invalid_params(message, None);
        }
        let down: Vec<String> = self
            .members()
            .unwrap_or_default()
            .iter()
            .filter_map(|m| match m {
                Member::Remote { spec, link } => {
                    link.unavailable_reason().map(|why| format!("upstream '{}': {why}", spec.name))
                }
                Member::Builtin(_) | Member::Absent => None,
            })
            .collect();
        if !down.is_empty() {
            message.push_str(&format!(" (unavailable now: {})", down.join("; ")));
        }
        ErrorData::invalid_params(message, None)
    }

    async fn resource_remote(&self, uri: &str, view: Option<&View>) -> Result<usize, ErrorData> {
        let members = self.members()?;
        let remote = |c: &Catalog| {
            c.resource_owners(uri).into_iter().find(|o| matches!(members.get(*o), Some(Member::Remote { .. })))
        };
        let (owner, _) = self.lookup(view, remote, std::slice::from_ref).await?;
        owner.ok_or_else(|| ErrorData::resource_not_found(format!("resource not found: {uri}"), None))
    }
}
