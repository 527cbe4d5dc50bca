//! Starting one session's MCP server: a fresh rmcp server for every session, so no client
//! ever meets a server another client (or its own earlier connection) already used.
//!
//! A session's server may also *park*: once the session has been quiet for a while (no
//! request unanswered either way), its transport hands the inbound channel back and rmcp's
//! serve loop ends, and with it the loop's channels and task, most of an idle session's
//! memory. The next client message starts a new server from the session's recorded
//! `initialize` handshake (no new handshake on the wire) and is handed to it first. What
//! upstreams announce meanwhile (list changes, resource updates, logs) goes straight to
//! the client through the session's [`Notifier`]. Sessions with upstream connections of
//! their own never park: those connections live in the running server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::service::{Peer, QuitReason, serve_directly_with_ct, serve_server_with_ct};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{Audit, Origin};
use crate::channel::{ChannelTransport, DirectSlot, Inbound, Notifier, Outbound, Parking, Recorder};
use crate::direct::{DirectServer, Looped};
use crate::error::Error;
use crate::handshake::Handshake;
use crate::policy::{Caller, Policies, Policy};
use crate::proxy::{HubServer, ModernHub, MrtrConfig, Proxy};
use crate::seal::Sealer;
use crate::state::SessionState;
use crate::upstream::set::Upstreams;
use crate::upstream::spec::{Share, UpstreamKind};

/// Builds and starts the MCP server of each new session.
#[derive(Clone)]
pub struct ServerFactory {
    upstreams: Arc<Upstreams>,
    tasks: TaskTracker,
    /// Quiet this long, a session's server parks; `None`: never.
    park_after: Option<Duration>,
    /// Sessions parked now.
    parked: Arc<AtomicUsize>,
    /// How the hub parks stateless calls that need their client's input.
    mrtr: Option<MrtrConfig>,
    /// Stateless calls parked now, waiting for their clients' input.
    waiting: Arc<AtomicUsize>,
    /// The policy in force (shared across reloads: it applies to live sessions too).
    policies: Arc<Policies>,
    /// How tool calls are audited.
    audit: Audit,
}

static SESSION_KEYS: AtomicU64 = AtomicU64::new(1);

impl ServerFactory {
    /// A factory serving `upstreams`, whose session tasks are tracked by `tasks`. Its
    /// servers never park unless [`ServerFactory::parking`] says when.
    pub fn new(upstreams: Arc<Upstreams>, tasks: TaskTracker) -> Self {
        Self {
            upstreams,
            tasks,
            park_after: None,
            parked: Arc::default(),
            mrtr: None,
            waiting: Arc::default(),
            policies: Policies::new(Arc::new(Policy::allow_all())),
            audit: Audit::default(),
        }
    }

    /// Serves sessions and stateless requests under the policy in `policies` (without it,
    /// everything is allowed to everyone).
    #[must_use]
    pub fn policies(mut self, policies: Arc<Policies>) -> Self {
        self.policies = policies;
        self
    }

    /// How its servers audit tool calls (without it: logged, arguments left out, no
    /// observer).
    #[must_use]
    pub fn audit(mut self, audit: Audit) -> Self {
        self.audit = audit;
        self
    }

    /// The key and lifetime of the hub's `requestState`s (without it, a key generated when
    /// the hub starts, and the upstream's call deadline).
    #[must_use]
    pub fn mrtr(mut self, config: MrtrConfig) -> Self {
        self.mrtr = Some(config);
        self
    }

    /// `waiting` counts the stateless calls parked now, waiting for their clients' input
    /// (share one counter across reloads, so it counts every hub's).
    #[must_use]
    pub fn waiting_for_input(mut self, waiting: Arc<AtomicUsize>) -> Self {
        self.waiting = waiting;
        self
    }

    /// Servers park after `after` of quiet (`None`: never); `parked` counts the sessions
    /// parked now (share one counter across reloads, so it counts every session).
    #[must_use]
    pub fn parking(mut self, after: Option<Duration>, parked: Arc<AtomicUsize>) -> Self {
        self.park_after = after.filter(|d| !d.is_zero());
        self.parked = parked;
        self
    }

    /// The tracker of the tasks its servers run on.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// The upstreams new sessions are served.
    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }

    /// Starts a session's server on its own task. It reads `inbound`, writes to
    /// `outbound`, stops when `cancel` fires, and calls `on_end` once it has stopped, for
    /// whatever reason (cancelled, failed handshake, transport closed). `origin` names the
    /// session (its id) and its caller, for logs and the audit; `caller` opened the session
    /// (`None`: authentication is off): the policy serves the session as theirs.
    pub fn start<O: Outbound>(
        &self,
        origin: Origin,
        caller: Option<Caller>,
        inbound: Inbound,
        outbound: O,
        cancel: CancellationToken,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        self.start_from(origin, caller, inbound, outbound, cancel, on_end, None)
    }

    /// Starts the server of a session another instance held, from its recorded
    /// `handshake`: initialized already, as a parked session wakes (no handshake on the
    /// wire). `run` numbers its first run: above every run of the instances that held it
    /// before, so the ids of its requests to the client never repeat theirs. Per-session
    /// upstreams start anew; a child process cannot move.
    #[allow(clippy::too_many_arguments)] // the arguments of `start`, and what the store kept
    pub fn start_taken_over<O: Outbound>(
        &self,
        origin: Origin,
        caller: Option<Caller>,
        inbound: Inbound,
        outbound: O,
        cancel: CancellationToken,
        on_end: impl FnOnce() + Send + 'static,
        handshake: Handshake,
        run: u32,
    ) -> Result<(), Error> {
        self.start_from(origin, caller, inbound, outbound, cancel, on_end, Some((handshake, run)))
    }

    /// Whether every upstream is built in or shared: then a session may park.
    fn all_shared(&self) -> bool {
        self.upstreams.specs().iter().all(|s| s.kind == UpstreamKind::Builtin || s.share == Share::Shared)
    }

    /// The two starts: a new session, or one taken over with its handshake and first run.
    #[allow(clippy::too_many_arguments)] // the arguments of `start`, and what a takeover adds
    fn start_from<O: Outbound>(
        &self,
        origin: Origin,
        caller: Option<Caller>,
        inbound: Inbound,
        outbound: O,
        cancel: CancellationToken,
        on_end: impl FnOnce() + Send + 'static,
        taken_over: Option<(Handshake, u32)>,
    ) -> Result<(), Error> {
        let span = tracing::info_span!("session", session = %origin.session);
        let (outbound, state) = self.open(outbound, caller, origin)?;
        self.policies.watch(state.key, state.caller.clone(), state.notifier.clone());
        let taken_over = taken_over.map(|(handshake, run)| {
            state.initialized(handshake, self.all_shared());
            run
        });
        let factory = self.clone();
        self.tasks.spawn(tracing::Instrument::instrument(
            async move {
                factory.serve(inbound, outbound, &state, &cancel, taken_over).await;
                state.detach_all();
                on_end();
            },
            span,
        ));
        Ok(())
    }

    /// Starts the modern hub's server on its own task: one server for every stateless
    /// (2026-07-28) request, with no `initialize` (rmcp's `serve_directly`). It reads
    /// `inbound`, writes to `outbound`, and stops when `cancel` fires or every sender of
    /// `inbound` is gone. Returns the same server to call without its message loop.
    pub fn start_hub<O: Outbound>(
        &self,
        inbound: Inbound,
        outbound: O,
        cancel: CancellationToken,
    ) -> Result<HubServer, Error> {
        let (outbound, state) = self.open(outbound, None, Origin::stateless())?;
        let mrtr = match &self.mrtr {
            Some(config) => config.clone(),
            None => MrtrConfig { sealer: Arc::new(Sealer::generate()?), ttl: None },
        };
        let hub = Arc::new(ModernHub::new(
            &self.upstreams,
            &state,
            &cancel.child_token(),
            &self.tasks,
            mrtr,
            self.waiting.clone(),
        ));
        let span = tracing::info_span!("hub");
        let transport = ChannelTransport::new(inbound, outbound);
        let running = {
            let _entered = span.enter();
            serve_directly_with_ct(Looped(hub.clone()), transport, None, cancel.child_token())
        };
        let server = DirectServer::new(hub, running.peer().clone(), span.clone());
        self.tasks.spawn(tracing::Instrument::instrument(
            async move {
                stopped(running.waiting().await);
                // Its own upstream connections end with it.
                cancel.cancel();
                state.detach_all();
            },
            span,
        ));
        Ok(server)
    }

    /// What a session and the hub start from: their outbound side shared, and a fresh state
    /// under a key of its own; refused once the gateway is shutting down.
    fn open<O: Outbound>(
        &self,
        outbound: O,
        caller: Option<Caller>,
        origin: Origin,
    ) -> Result<(Arc<O>, Arc<SessionState>), Error> {
        if self.tasks.is_closed() {
            return Err(Error::ShuttingDown);
        }
        let outbound = Arc::new(outbound);
        let key = SESSION_KEYS.fetch_add(1, Ordering::Relaxed);
        let recorder = O::RECORDS_HANDSHAKE.then(|| Recorder::new(outbound.clone()));
        let notifier = Notifier::new(outbound.clone());
        let state = Arc::new(SessionState::new(
            key,
            notifier,
            caller,
            self.policies.clone(),
            self.audit.clone(),
            origin,
            recorder,
        ));
        Ok((outbound, state))
    }

    /// Runs the session's servers, one after another, until the session ends. The first
    /// runs the handshake, unless the session was `taken_over` (at that run number) with
    /// its handshake recorded.
    async fn serve<O: Outbound>(
        &self,
        inbound: Inbound,
        outbound: Arc<O>,
        state: &Arc<SessionState>,
        cancel: &CancellationToken,
        taken_over: Option<u32>,
    ) {
        let mut run = taken_over.unwrap_or(0);
        let slot = DirectSlot::default();
        let (mut parked, transport) = self.transport(inbound, &outbound, state, run, &slot, cancel);
        if taken_over.is_some() {
            let Some(handshake) = state.handshake().cloned() else { return };
            let proxy = Arc::new(Proxy::resume(
                self.upstreams.clone(),
                state.clone(),
                &handshake,
                cancel.child_token(),
                self.tasks.clone(),
            ));
            let running =
                serve_directly_with_ct(Looped(proxy.clone()), transport, Some(handshake.client), cancel.child_token());
            direct_through(slot, proxy, running.peer());
            stopped(running.waiting().await);
        } else {
            let proxy =
                Arc::new(Proxy::new(self.upstreams.clone(), state.clone(), cancel.child_token(), self.tasks.clone()));
            // Each run gets a child token: rmcp cancels its token when the run ends, and a
            // parked session must live on. The handshake's future is boxed: it is tens of
            // KiB, and this task's own future stays as large as its largest state, parked
            // or not.
            match Box::pin(serve_server_with_ct(Looped(proxy.clone()), transport, cancel.child_token())).await {
                Ok(running) => {
                    direct_through(slot, proxy, running.peer());
                    stopped(running.waiting().await);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "session ended before initialize completed");
                    return;
                }
            }
        }
        // The transport sent its inbound channel back: it parked. Otherwise it was dropped.
        while let Ok(mut inbound) = parked.await {
            let Some(handshake) = state.handshake().cloned() else { return };
            self.parked.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("session parked");
            let woken = tokio::select! {
                message = inbound.recv() => message,
                () = cancel.cancelled() => None,
            };
            self.parked.fetch_sub(1, Ordering::Relaxed);
            let Some(first) = woken else { return };
            run += 1;
            let slot = DirectSlot::default();
            let (next, transport) = self.transport(inbound, &outbound, state, run, &slot, cancel);
            parked = next;
            let proxy = Arc::new(Proxy::resume(
                self.upstreams.clone(),
                state.clone(),
                &handshake,
                cancel.child_token(),
                self.tasks.clone(),
            ));
            let running = serve_directly_with_ct(
                Looped(proxy.clone()),
                transport.starting_with(*first),
                Some(handshake.client),
                cancel.child_token(),
            );
            direct_through(slot, proxy, running.peer());
            stopped(running.waiting().await);
        }
    }

    /// The transport of run number `run`, and where it sends its channel when it parks.
    /// Its requests that only their answer can come for go to the server in `slot` once it
    /// is there (`crate::direct`), and end when the session does (`cancel`).
    fn transport<O: Outbound>(
        &self,
        inbound: Inbound,
        outbound: &Arc<O>,
        state: &SessionState,
        run: u32,
        slot: &DirectSlot,
        cancel: &CancellationToken,
    ) -> (oneshot::Receiver<Inbound>, ChannelTransport<O>) {
        let (to, parked) = oneshot::channel();
        let transport =
            ChannelTransport::new(inbound, outbound.clone()).direct(slot.clone(), cancel.clone(), self.tasks.clone());
        let transport = match self.park_after {
            Some(after) => transport.parking(Parking { after, allowed: state.may_park(), to }, run),
            None => transport,
        };
        (parked, transport)
    }
}

/// Puts a run's server, called without its loop, where its transport looks for it. The
/// slot is taken: from then on only the transport holds it, so the server goes with the
/// run (a parked session keeps no server, and no peer of a loop that ended).
fn direct_through(slot: DirectSlot, proxy: Arc<Proxy>, peer: &Peer<RoleServer>) {
    let server = DirectServer::new(proxy, peer.clone(), tracing::Span::current());
    let _ = slot.set(Box::new(move |request, cancel| server.handle(request, cancel)));
}

fn stopped(result: Result<QuitReason, tokio::task::JoinError>) {
    match result {
        Ok(reason) => tracing::debug!(?reason, "session server stopped"),
        Err(e) => tracing::warn!(error = %e, "session server task failed"),
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ServerJsonRpcMessage;

    use super::*;
    use crate::OutboundClosed;

    struct Nowhere;

    impl Outbound for Nowhere {
        #[allow(clippy::manual_async_fn)] // the trait wants a 'static future, not one borrowing self
        fn deliver(
            &self,
            _message: ServerJsonRpcMessage,
        ) -> impl std::future::Future<Output = Result<(), OutboundClosed>> + Send + 'static {
            async { Ok(()) }
        }
    }

    /// A parked session is its supervisor's future and little else; unboxed, rmcp's
    /// handshake state made that future about 25 KiB for every session's whole life.
    #[tokio::test]
    async fn the_supervisor_of_a_parked_session_stays_small() {
        let tasks = TaskTracker::new();
        let factory = ServerFactory::new(Upstreams::builtin(&tasks), tasks.clone());
        let (_tx, inbound) = tokio::sync::mpsc::channel(4);
        let outbound = Arc::new(Nowhere);
        let state = Arc::new(SessionState::new(
            1,
            Notifier::new(outbound.clone()),
            None,
            Policies::new(Arc::new(Policy::allow_all())),
            Audit::default(),
            Origin::stateless(),
            None,
        ));
        let cancel = CancellationToken::new();
        let supervisor = factory.serve(inbound, outbound, &state, &cancel, None);
        let size = std::mem::size_of_val(&supervisor);
        assert!(size <= 4096, "the supervisor future is {size} bytes");
    }

    /// A parked session's server is gone: nothing but the supervisor holds the upstreams
    /// (a server kept for its direct calls once kept the whole proxy of every parked
    /// session alive, a third more memory per idle session).
    #[tokio::test(start_paused = true)]
    async fn a_parked_session_keeps_no_server() {
        use rmcp::model::{
            ClientCapabilities, ClientJsonRpcMessage, ClientNotification, ClientRequest, Implementation,
            InitializeRequest, InitializeRequestParams, RequestId,
        };

        let tasks = TaskTracker::new();
        let parked = Arc::new(AtomicUsize::new(0));
        let factory = ServerFactory::new(Upstreams::builtin(&tasks), tasks.clone())
            .parking(Some(Duration::from_millis(20)), parked.clone());
        let before = Arc::strong_count(factory.upstreams());
        let (tx, inbound) = tokio::sync::mpsc::channel(4);
        factory.start(Origin::stateless(), None, inbound, Nowhere, CancellationToken::new(), || {}).expect("started");
        let params = InitializeRequestParams::new(ClientCapabilities::default(), Implementation::new("test", "1"));
        let initialize = ClientRequest::InitializeRequest(InitializeRequest::new(params));
        tx.send(Box::new(ClientJsonRpcMessage::request(initialize, RequestId::Number(1)))).await.expect("open");
        let initialized = ClientNotification::InitializedNotification(Default::default());
        tx.send(Box::new(ClientJsonRpcMessage::notification(initialized))).await.expect("open");
        tokio::time::timeout(Duration::from_secs(10), async {
            while parked.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the session parked");
        // The supervisor's factory holds one; no server does.
        assert_eq!(Arc::strong_count(factory.upstreams()), before + 1);
    }
}
