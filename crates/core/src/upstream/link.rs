//! A live connection to one remote upstream (stdio child, Streamable HTTP or legacy SSE
//! server), kept up by a supervisor that reconnects with exponential backoff, and the
//! routing of what the upstream sends back to the right client session.
//!
//! A link serves one client session (`share = "session"`) or all of them (`"shared"`).
//! Either way it knows its audience (the sessions using it) and the calls in flight on it,
//! so that progress, sampling, elicitation and roots requests, log messages and
//! `list_changed` notifications reach the sessions they belong to.
//!
//! # Layout
//! - `supervise`: the supervisor, and one connection attempt.
//! - `inbound`: what the upstream sends: its requests and notifications.
//! - `updates`: resource subscriptions, in the upstream's era.

#![allow(deprecated)] // sampling, roots and logging are deprecated in 2026-07-28 but live in every 2025 session

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::model::{
    CancelledNotificationParam, ClientCapabilities, ClientConfig, ClientRequest, ClientResult, Implementation,
    ListRootsResult, LoggingLevel, ProgressNotification, ProgressToken, Prompt, ProtocolVersion, RequestId,
    RequestMetaObject, Resource, ResourceTemplate, ServerCapabilities, ServerRequest, ServerResult, Tool,
};
use rmcp::service::{InboundStreamOrigin, PeerRequestOptions, RequestContext};
use rmcp::{ErrorData, Peer, RoleClient, RoleServer, ServiceError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::Notifier;
use crate::error::Error;
pub use crate::upstream::count::ConnectionCount;
use crate::upstream::fetch::Collapsed;
use crate::upstream::modern;
use crate::upstream::resume::GaveUp;
use crate::upstream::spec::{Era, Share, UpstreamSpec};

mod inbound;
mod supervise;
mod updates;

use inbound::LinkClient;

/// Identifies a client session among a link's audience.
pub type SessionKey = u64;

/// Progress notifications kept for calls that have not recorded their token yet, at most.
const EARLY_PROGRESS: usize = 16;

/// Where a link stands.
#[derive(Clone)]
pub(crate) enum LinkState {
    /// Starting (or restarting) the upstream.
    Connecting,
    /// Connected: requests go to this peer.
    Up(Connection),
    /// Not connected; the supervisor retries after a backoff. The reason is for errors.
    Down(Arc<str>),
    /// Stopped for good (its session or the gateway ended).
    Closed,
}

/// A live connection: the peer to send to, and a token cancelled the moment the
/// connection is lost (the child's stdout closed), before rmcp has wound down, so calls in
/// flight fail at once rather than after rmcp's drain.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) peer: Peer<RoleClient>,
    pub(crate) lost: CancellationToken,
    /// Why reply streams were not resumed (Streamable HTTP only).
    gave_up: Option<GaveUp>,
    /// The era it was started in.
    pub(crate) era: Era,
}

/// A connection to one remote upstream.
pub struct Link {
    spec: Arc<UpstreamSpec>,
    state: watch::Sender<LinkState>,
    routes: Mutex<Routes>,
    /// Bumped whenever what the upstream lists may have changed (reconnect, list_changed).
    generation: AtomicU64,
    tools: Collapsed<Listed<Tool>>,
    prompts: Collapsed<Listed<Prompt>>,
    resources: Collapsed<Listed<Resource>>,
    templates: Collapsed<Listed<ResourceTemplate>>,
    /// What the upstream offered when it was last connected, kept while it restarts.
    offered: Mutex<Option<ServerCapabilities>>,
    client: ClientConfig,
    /// The era it speaks to an `era = "auto"` upstream that offers both: its client's.
    prefers: Era,
    cancel: CancellationToken,
    count: Arc<ConnectionCount>,
    /// Whether its first connection attempt has ended (connected or failed).
    attempted: AtomicBool,
    /// Whether a request of the upstream's that belongs to no session was logged yet.
    refused_logged: AtomicBool,
    /// The level a session's `logging/setLevel` asked for, for a modern upstream: 2026-07-28
    /// has no such method, a request names its level in `_meta` instead.
    log_level: Mutex<Option<LoggingLevel>>,
    /// Where its tasks are tracked (the supervisor's, and a modern upstream's listen
    /// streams for resource subscriptions).
    tasks: TaskTracker,
    /// A modern upstream's listen streams for resource subscriptions.
    listens: updates::Listens,
}

#[derive(Default)]
struct Routes {
    /// Sessions using this link, and how to notify each client (running or parked).
    audience: HashMap<SessionKey, Notifier>,
    /// The server of the one session a session-owned link belongs to: what the upstream
    /// asks outside any call (sampling, roots) goes there.
    owner: Option<Peer<RoleServer>>,
    /// Calls in flight, by a serial given before the request is sent (so a request the
    /// upstream makes at once already finds its call).
    inflight: HashMap<u64, InFlight>,
    /// The serial of each call in flight, by the id the upstream knows it by.
    upstream_ids: HashMap<RequestId, u64>,
    /// Upstream progress tokens of calls in flight, to the client's own token.
    progress: HashMap<ProgressToken, (Peer<RoleServer>, ProgressToken)>,
    /// Progress that came before its call had recorded its token: the upstream may report
    /// at once, and its notification can overtake the caller between sending the request
    /// and [`Tracked::sent`]. Kept (a few, the oldest dropped) for `sent` to hand over.
    early: VecDeque<ProgressNotification>,
    /// Resource subscriptions: URI → sessions.
    subscriptions: HashMap<String, HashSet<SessionKey>>,
}

#[derive(Clone)]
struct InFlight {
    session: SessionKey,
    peer: Peer<RoleServer>,
    /// The id the client gave the request: where related messages should ride.
    client_id: RequestId,
    /// Order of arrival, to pick the latest.
    serial: u64,
    /// Where the upstream's requests to the client go instead of the client's stream: a
    /// stateless call, whose client is asked through an input-required result.
    asker: Option<Asker>,
}

/// Where a stateless call takes the upstream's requests of its client.
#[derive(Clone)]
pub(crate) struct Asker {
    pub(crate) asks: mpsc::Sender<Ask>,
    /// Cancelled once the call has ended upstream (a cancelled call: once the upstream was
    /// told). A request of the upstream's that the call drops unanswered is answered only
    /// then, so the upstream hears of the cancel before it could finish the call.
    pub(crate) over: CancellationToken,
}

/// A request the upstream made of the client during a stateless call, and where its
/// answer goes.
pub(crate) struct Ask {
    pub(crate) request: ServerRequest,
    pub(crate) reply: oneshot::Sender<Result<ClientResult, ErrorData>>,
    /// Whether the upstream tied the request to the call (it came on the call's own reply
    /// stream); otherwise the call is only the one in flight when it came, and the request
    /// may as well be the upstream's own (a `roots/list` right after `initialize`).
    pub(crate) tied: bool,
}

/// Whom a message from the upstream is for.
struct Target {
    peer: Peer<RoleServer>,
    /// The client request it belongs to, if any.
    client_id: Option<RequestId>,
    asker: Option<Asker>,
    /// Tied to that request by the upstream itself, not only the call in flight.
    tied: bool,
}

/// One of the upstream's lists, or why it could not be had.
pub type Listed<T> = Result<Arc<Vec<T>>, ErrorData>;

static SERIAL: AtomicU64 = AtomicU64::new(0);

type ListFuture<T> = std::pin::Pin<Box<dyn Future<Output = Result<Vec<T>, ServiceError>> + Send>>;

impl Link {
    /// Starts a link and its supervisor (tracked by `tasks`); it stops when `cancel` fires.
    /// `client` is what the gateway tells the upstream about its client: for a session's
    /// own link, that session's client capabilities and info.
    pub(crate) fn start(
        spec: Arc<UpstreamSpec>,
        client: ClientConfig,
        prefers: Era,
        count: Arc<ConnectionCount>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Arc<Self> {
        // `send_replace` below: `send` would drop the new state while no one is subscribed.
        let (state, _) = watch::channel(LinkState::Connecting);
        // A failed list is asked again once its deadline has passed once more: a stalled
        // upstream costs each list at most one wait per deadline, for every session together.
        let retry = spec.list_timeout;
        let link = Arc::new(Self {
            spec,
            state,
            routes: Mutex::new(Routes::default()),
            generation: AtomicU64::new(0),
            tools: Collapsed::new(Result::is_err, retry),
            prompts: Collapsed::new(Result::is_err, retry),
            resources: Collapsed::new(Result::is_err, retry),
            templates: Collapsed::new(Result::is_err, retry),
            offered: Mutex::new(None),
            client,
            prefers,
            cancel,
            count,
            attempted: AtomicBool::new(false),
            refused_logged: AtomicBool::new(false),
            log_level: Mutex::new(None),
            tasks: tasks.clone(),
            listens: updates::Listens::default(),
        });
        // In the caller's span: a session's own upstream logs carry its session id.
        tasks.spawn(tracing::Instrument::in_current_span(supervise::supervise(link.clone(), tasks.clone())));
        link
    }

    /// The upstream's configuration.
    pub fn spec(&self) -> &UpstreamSpec {
        &self.spec
    }

    /// Changes whenever what the upstream lists may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The upstream's capabilities, when connected.
    pub fn capabilities(&self) -> Option<ServerCapabilities> {
        match &*self.state.borrow() {
            LinkState::Up(conn) => conn.peer.peer_info().map(|info| info.capabilities.clone()),
            _ => None,
        }
    }

    /// What the upstream offers, or offered when it was last connected; `None` when it has
    /// never been connected.
    pub fn offered(&self) -> Option<ServerCapabilities> {
        self.capabilities().or_else(|| self.offered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// Why the link is not serving now, or `None` when it is up.
    pub fn unavailable_reason(&self) -> Option<String> {
        match &*self.state.borrow() {
            LinkState::Up(_) => None,
            LinkState::Connecting => Some("it is starting".into()),
            LinkState::Down(why) => Some(why.to_string()),
            LinkState::Closed => Some("it was stopped".into()),
        }
    }

    /// Whether its first connection attempt is still under way.
    pub fn first_attempt_pending(&self) -> bool {
        !self.attempted.load(Ordering::Acquire)
    }

    /// Waits until the link is up or has failed, for at most `limit`.
    pub async fn ready(&self, limit: Duration) {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| !matches!(s, LinkState::Connecting))).await;
    }

    /// Adds a session to the audience; `owner` is its running server, for a link that
    /// belongs to that session alone.
    pub fn attach(&self, session: SessionKey, notifier: Notifier, owner: Option<Peer<RoleServer>>) {
        let mut routes = self.routes();
        routes.audience.insert(session, notifier);
        if owner.is_some() {
            routes.owner = owner;
        }
    }

    /// Removes a session from the audience, with its subscriptions.
    pub fn detach(&self, session: SessionKey) {
        {
            let mut routes = self.routes();
            routes.audience.remove(&session);
            routes.subscriptions.retain(|_, who| {
                who.remove(&session);
                !who.is_empty()
            });
        }
        self.end_unwanted_listens();
    }

    /// Records that `session` subscribed to `uri` (or unsubscribed).
    pub fn set_subscription(&self, session: SessionKey, uri: &str, on: bool) {
        let mut routes = self.routes();
        if on {
            routes.subscriptions.entry(uri.to_owned()).or_default().insert(session);
        } else if let Some(who) = routes.subscriptions.get_mut(uri) {
            who.remove(&session);
        }
    }

    /// The connected peer, waiting while the upstream is (re)starting.
    pub async fn peer(&self) -> Result<Peer<RoleClient>, Error> {
        self.connection().await.map(|c| c.peer)
    }

    /// The live connection, waiting while the upstream is (re)starting.
    pub(crate) async fn connection(&self) -> Result<Connection, Error> {
        let mut rx = self.state.subscribe();
        let waited =
            tokio::time::timeout(self.spec.connect_timeout, rx.wait_for(|s| !matches!(s, LinkState::Connecting))).await;
        let state = match waited {
            Ok(Ok(state)) => state.clone(),
            _ => LinkState::Connecting,
        };
        match state {
            LinkState::Up(conn) => Ok(conn),
            LinkState::Connecting => Err(self.unavailable("it is still starting")),
            LinkState::Down(why) => Err(self.unavailable(&why)),
            LinkState::Closed => Err(self.unavailable("it was stopped")),
        }
    }

    fn unavailable(&self, why: &str) -> Error {
        Error::Unavailable { upstream: self.spec.name.clone(), why: why.to_owned() }
    }

    /// An rmcp client error of a request to this upstream.
    pub fn error(&self, e: ServiceError) -> Error {
        Error::Request { upstream: self.spec.name.clone(), source: Box::new(e) }
    }

    /// The upstream's tools, from the cache when it is current.
    pub async fn tools(&self) -> Listed<Tool> {
        self.cached(&self.tools, "tools/list", |p| Box::pin(async move { p.list_all_tools().await })).await
    }

    /// The upstream's prompts.
    pub async fn prompts(&self) -> Listed<Prompt> {
        self.cached(&self.prompts, "prompts/list", |p| Box::pin(async move { p.list_all_prompts().await })).await
    }

    /// The upstream's resources.
    pub async fn resources(&self) -> Listed<Resource> {
        self.cached(&self.resources, "resources/list", |p| Box::pin(async move { p.list_all_resources().await })).await
    }

    /// The upstream's resource templates.
    pub async fn templates(&self) -> Listed<ResourceTemplate> {
        self.cached(&self.templates, "resources/templates/list", |p| {
            Box::pin(async move { p.list_all_resource_templates().await })
        })
        .await
    }

    /// A list of the current generation: kept, joined while another caller fetches it, or
    /// fetched now under the list deadline. Nothing is locked across the round trip.
    async fn cached<T: Send + Sync + 'static>(
        &self,
        slot: &Collapsed<Listed<T>>,
        method: &'static str,
        fetch: impl FnOnce(Peer<RoleClient>) -> ListFuture<T>,
    ) -> Listed<T> {
        let generation = self.generation();
        // Only a connected upstream is asked: a list never waits for a (re)start.
        let peer = match &*self.state.borrow() {
            LinkState::Up(conn) => conn.peer.clone(),
            _ => return Err(self.unavailable(&self.unavailable_reason().unwrap_or_default()).into()),
        };
        let (name, limit, count) = (self.spec.name.clone(), self.spec.list_timeout, self.count.clone());
        slot.get(generation, move || {
            let request = tokio::time::timeout(limit, fetch(peer));
            async move {
                let failed = match request.await {
                    Ok(Ok(items)) => return Ok(Arc::new(items)),
                    Ok(Err(e)) => Error::Request { upstream: name.clone(), source: Box::new(e) },
                    Err(_) => Error::Timeout { upstream: name.clone(), what: method.into(), after: limit },
                };
                count.list_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %name, method, error = %failed.chain(), "listing failed; leaving it out");
                Err(failed.to_jsonrpc())
            }
        })
        .await
    }

    /// Forwards a client request and returns the upstream's result. Progress the upstream
    /// reports is mapped back to the client's token, requests the upstream makes meanwhile
    /// are tied to this call, and a client cancel is passed on.
    pub async fn forward(
        &self,
        request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
        session: SessionKey,
    ) -> Result<ServerResult, Error> {
        self.forward_asking(request, ctx, session, None).await
    }

    /// [`Link::forward`], with the requests the upstream makes of the client during the
    /// call sent to `asker` (when given) rather than to the client's stream.
    ///
    /// To a modern upstream, a call refused for headers that do not match its body (-32020)
    /// is sent once more after its tools were listed again; and for a session's client
    /// (no `asker`), an `InputRequiredResult` is answered by asking that client, and the
    /// call retried with the answers, until the upstream has its result. A stateless
    /// call gets the `InputRequiredResult` itself: the hub relays it to its client.
    pub(crate) async fn forward_asking(
        &self,
        mut request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
        session: SessionKey,
        asker: Option<Asker>,
    ) -> Result<ServerResult, Error> {
        let conn = self.connection().await?;
        let modern = conn.era == Era::Modern;
        let level = || *self.log_level.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let meta = if modern {
            if let ClientRequest::SetLevelRequest(r) = &request {
                *self.log_level.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r.params.level);
                return Ok(ServerResult::empty(()));
            }
            modern::modern_meta(&ctx.meta, level())
        } else {
            handshake_meta(&ctx.meta)
        };
        let asks_session = asker.is_none();
        let mut tracked = self.track(session, ctx, asker);
        let (mut relisted, mut rounds) = (false, 0);
        loop {
            let options = PeerRequestOptions::no_options().with_meta(meta.clone());
            match self.send_once(&conn, request.clone(), options, &mut tracked, ctx).await {
                Err(e) if modern && !relisted && modern::is_header_mismatch(&e) => {
                    relisted = true;
                    tracing::info!(upstream = %self.spec.name, "the upstream refused a call's headers (-32020); listing its tools again and retrying once");
                    self.bump();
                    let _ = self.tools().await;
                }
                Ok(ServerResult::InputRequiredResult(input)) if asks_session => {
                    rounds += 1;
                    if rounds > modern::MAX_ROUNDS {
                        let why = format!(
                            "the upstream asked for the client's input more than {} times in one call",
                            modern::MAX_ROUNDS
                        );
                        return Err(self.refused(ErrorData::internal_error(why, None)));
                    }
                    let responses = modern::ask_session(input.input_requests.unwrap_or_default(), ctx)
                        .await
                        .map_err(|e| self.refused(e))?;
                    modern::with_answers(&mut request, responses, input.request_state).map_err(|e| self.refused(e))?;
                }
                other => return other,
            }
        }
    }

    /// An error of the gateway's in relaying a call of this upstream's, as the upstream's.
    fn refused(&self, e: ErrorData) -> Error {
        self.error(ServiceError::McpError(e))
    }

    /// Sends one request of a call and waits for its answer, the client's cancel or the
    /// connection's end.
    async fn send_once(
        &self,
        conn: &Connection,
        request: ClientRequest,
        options: PeerRequestOptions,
        tracked: &mut Tracked<'_>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, Error> {
        let Connection { peer, lost, gave_up, .. } = conn;
        let handle = peer.send_request_with_option(request, options).await.map_err(|e| self.error(e))?;
        let upstream_id = handle.id.clone();
        for (n, mapped) in tracked.sent(&upstream_id, &handle.progress_token, ctx) {
            forward_progress(n, mapped).await;
        }
        // The result first: an upstream that answers and exits at once is lost as soon as
        // its answer is in, and the call has its result all the same.
        tokio::select! {
            biased;
            result = handle.await_response() => {
                // rmcp says only "Transport closed" for a reply it stopped resuming.
                let not_resumed = gave_up.as_ref().and_then(|g| g.take(&upstream_id));
                result.map_err(|e| match (e, not_resumed) {
                    (ServiceError::TransportClosed, Some(why)) => {
                        Error::NotResumed { upstream: self.spec.name.clone(), why }
                    }
                    (e, _) => self.error(e),
                })
            }
            () = ctx.ct.cancelled() => {
                let why = CancelledNotificationParam::new(Some(upstream_id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(why).await;
                Err(Error::Cancelled)
            }
            () = lost.cancelled() => {
                Err(self.unavailable("it exited during the call; it is being restarted"))
            }
        }
    }

    fn track(&self, session: SessionKey, ctx: &RequestContext<RoleServer>, asker: Option<Asker>) -> Tracked<'_> {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let call = InFlight { session, peer: ctx.peer.clone(), client_id: ctx.id.clone(), serial, asker };
        self.routes().inflight.insert(serial, call);
        Tracked { link: self, serial, id: None, token: None }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Plain maps, never locked across an await or a panicking call.
        self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session (and the client request it belongs to) that a request or notification
    /// from the upstream is for.
    fn target(&self, origin: Option<&InboundStreamOrigin>) -> Result<Target, Untied> {
        let routes = self.routes();
        let of = |call: &InFlight, tied: bool| Target {
            peer: call.peer.clone(),
            client_id: Some(call.client_id.clone()),
            asker: call.asker.clone(),
            tied,
        };
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some(call) = routes.upstream_ids.get(id).and_then(|serial| routes.inflight.get(serial))
        {
            return Ok(of(call, true));
        }
        let sessions: HashSet<SessionKey> = routes.inflight.values().map(|c| c.session).collect();
        match sessions.len() {
            1 => {
                let latest = routes.inflight.values().max_by_key(|c| c.serial);
                latest.map(|call| of(call, false)).ok_or(Untied::NoCall)
            }
            0 if self.spec.share == Share::Session => match &routes.owner {
                Some(peer) if !peer.is_transport_closed() => {
                    Ok(Target { peer: peer.clone(), client_id: None, asker: None, tied: false })
                }
                _ => Err(Untied::SessionGone),
            },
            0 => Err(Untied::NoCall),
            n => Err(Untied::Several(n)),
        }
    }

    /// The answer to a request from the upstream that is for no client session. A shared
    /// upstream asking `roots/list` outside any call gets an empty list: it serves many
    /// clients, so it gets no one client's roots. Anything else is refused; that is no fault
    /// of the gateway's, so it is logged at INFO once per upstream (then at DEBUG).
    fn unrouted(&self, request: &ServerRequest, why: Untied) -> Result<ClientResult, ErrorData> {
        let (upstream, method) = (&self.spec.name, request_method(request));
        if let (ServerRequest::ListRootsRequest(_), Untied::NoCall) = (request, &why) {
            tracing::debug!(%upstream, "roots/list outside any call; answered with no roots");
            return Ok(ClientResult::ListRootsResult(ListRootsResult::new(Vec::new())));
        }
        if self.refused_logged.swap(true, Ordering::Relaxed) {
            tracing::debug!(%upstream, method, %why, "refused a request for no client session");
        } else {
            tracing::info!(%upstream, method, %why, "refused a request for no client session (logged once per upstream)");
        }
        Err(ErrorData::internal_error(format!("upstream '{upstream}' sent {method}: {why}"), None))
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Why a message from the upstream is for no one client session.
enum Untied {
    /// A shared upstream, and no call in flight on it.
    NoCall,
    /// The one session of a session-owned upstream has ended.
    SessionGone,
    /// Calls of this many sessions are in flight: which one it is for is unknown.
    Several(usize),
}

impl fmt::Display for Untied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Untied::NoCall => f.write_str("no client session has a call in flight on this shared upstream"),
            Untied::SessionGone => f.write_str("its client session is gone"),
            Untied::Several(n) => {
                write!(f, "{n} client sessions have calls in flight on this shared upstream; it cannot be tied to one")
            }
        }
    }
}

/// Removes a call's routes when it ends, however it ends.
struct Tracked<'a> {
    link: &'a Link,
    serial: u64,
    id: Option<RequestId>,
    token: Option<ProgressToken>,
}

impl Tracked<'_> {
    /// The request went out under this id and progress token.
    /// Returns the progress of this request that came before it was recorded, to be passed
    /// on before its result.
    fn sent(
        &mut self,
        id: &RequestId,
        token: &ProgressToken,
        ctx: &RequestContext<RoleServer>,
    ) -> Vec<(ProgressNotification, (Peer<RoleServer>, ProgressToken))> {
        let mut routes = self.link.routes();
        // A retry of the call (a new JSON-RPC id) replaces the last attempt's routes.
        if let Some(old) = self.id.take() {
            routes.upstream_ids.remove(&old);
        }
        if let Some(old) = self.token.take() {
            routes.progress.remove(&old);
        }
        routes.upstream_ids.insert(id.clone(), self.serial);
        self.id = Some(id.clone());
        self.token = Some(token.clone());
        let Some(client_token) = ctx.meta.get_progress_token() else { return Vec::new() };
        let mapped = (ctx.peer.clone(), client_token);
        routes.progress.insert(token.clone(), mapped.clone());
        if routes.early.is_empty() {
            return Vec::new();
        }
        let (mine, others) =
            std::mem::take(&mut routes.early).into_iter().partition(|n| n.params.progress_token == *token);
        routes.early = others;
        mine.into_iter().map(|n: ProgressNotification| (n, mapped.clone())).collect()
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        let mut routes = self.link.routes();
        routes.inflight.remove(&self.serial);
        if let Some(id) = &self.id {
            routes.upstream_ids.remove(id);
        }
        if let Some(token) = &self.token {
            routes.progress.remove(token);
        }
    }
}

/// Passes an upstream progress notification to the client, under the client's own token.
async fn forward_progress(n: ProgressNotification, (peer, token): (Peer<RoleServer>, ProgressToken)) {
    let mut params = n.params;
    params.progress_token = token;
    let _ = peer.notify_progress(params).await;
}

fn request_method(request: &ServerRequest) -> &str {
    match request {
        ServerRequest::PingRequest(_) => "ping",
        ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
        ServerRequest::ListRootsRequest(_) => "roots/list",
        ServerRequest::ElicitRequest(_) => "elicitation/create",
        ServerRequest::CustomRequest(r) => r.method.as_str(),
        _ => "a request",
    }
}

/// The keys of the 2026-07-28 `_meta` envelope: a stateless client's version, identity,
/// capabilities and log level. They describe the client's request to mcpgw, not mcpgw's to
/// the upstream, and an upstream of the handshake era that knows them (rmcp 3 does) would
/// refuse the version it was not initialized at.
const ENVELOPE: [&str; 4] = [
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/logLevel",
];

/// A request's `_meta` as it goes to a handshake-era upstream: without the envelope.
fn handshake_meta(meta: &RequestMetaObject) -> RequestMetaObject {
    let mut meta = meta.clone();
    for key in ENVELOPE {
        meta.0.0.remove(key);
    }
    meta
}

/// What the gateway tells an upstream about its client: a session's own link carries that
/// client's capabilities and info; a shared link declares what the gateway can forward.
pub(crate) fn client_config(capabilities: ClientCapabilities, client: Option<Implementation>) -> ClientConfig {
    let info = client.unwrap_or_else(|| Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")));
    ClientConfig::new(capabilities, info).with_protocol_version(ProtocolVersion::V_2025_11_25)
}
