//! The session registry: one map of the live sessions of both transports, keyed by the
//! typed session id, and the idle reaper; and the modern hub, the one server of every
//! stateless (2026-07-28) request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use mcpgw_core::audit::Origin;
use mcpgw_core::proxy::HubServer;
use mcpgw_core::upstream::set::UpstreamStats;
use mcpgw_core::{Outbound, OutboundClosed, ServerFactory};
use mcpgw_transport::auth::Identity;
use mcpgw_transport::hub::{Direct, DirectAnswer, Hub, HubLimits, ListenerSlots};
use mcpgw_transport::routes::{Continuation, History};
use mcpgw_transport::session::SessionLimits;
use mcpgw_transport::{Error, NodeTag, Session, SessionId, SessionKind, Sessions};
use rmcp::model::{ClientRequest, JsonRpcRequest, ServerJsonRpcMessage};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterOutbound};
use crate::config::SessionCaps;
use crate::metrics::{LiveFigures, Metrics};

/// All live sessions, both kinds, in one map.
pub(crate) struct Registry {
    map: DashMap<SessionId, Arc<Session>>,
    /// Builds new sessions' servers; replaced on reload (live sessions keep theirs).
    factory: RwLock<ServerFactory>,
    /// How long a quiet session waits before its server parks, for every factory.
    park_after: Option<Duration>,
    /// Sessions whose server is parked now.
    parked: Arc<AtomicUsize>,
    /// Stateless calls parked now, waiting for their clients' input.
    waiting: Arc<AtomicUsize>,
    limits: SessionLimits,
    metrics: Arc<Metrics>,
    /// Set at shutdown: no new sessions.
    closed: AtomicBool,
    caps: SessionCaps,
    /// Live sessions plus those being created: a slot is taken here, in one step with the
    /// check against the cap, before a session exists, so concurrent creates never pass
    /// the cap together (reading the map's length and inserting later would let them).
    live: AtomicUsize,
    /// Live sessions of each caller (the `None` key: no authentication), taken the
    /// same way under the entry's lock.
    per_owner: DashMap<Option<Identity>, usize>,
    /// The modern hub of the current factory, started by the first stateless request (so
    /// a gateway that never gets one starts no upstream connection for it). A reload lets
    /// it go: the old one ends when its last request is answered, and the next stateless
    /// request starts one over the new upstreams.
    hub: RwLock<Option<Arc<Hub>>>,
    /// The cap on open listen streams, over every hub.
    listeners: Arc<ListenerSlots>,
    /// This instance's tag in a cluster: new session ids start with it, so the load balancer
    /// routes their requests here. `None`: a single node, fully random ids.
    node: Option<NodeTag>,
    /// This instance's part in a cluster with a store: sessions are recorded there, and
    /// sessions held elsewhere can be taken over. `None`: no store (a single node, or a
    /// cluster with `store = "none"`).
    cluster: Option<Arc<Cluster>>,
    me: Weak<Registry>,
}

impl Registry {
    /// An empty registry whose sessions' servers `factory` builds, parking after
    /// `park_after` of quiet; its ids tagged with `node` and its sessions shared through
    /// `cluster`, if any.
    pub(crate) fn new(
        factory: ServerFactory,
        park_after: Option<Duration>,
        limits: SessionLimits,
        caps: SessionCaps,
        metrics: Arc<Metrics>,
        node: Option<NodeTag>,
        cluster: Option<Arc<Cluster>>,
    ) -> Arc<Self> {
        let parked = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let registry = Arc::new_cyclic(|me| Self {
            map: DashMap::new(),
            factory: RwLock::new(factory.parking(park_after, parked.clone()).waiting_for_input(waiting.clone())),
            park_after,
            parked,
            waiting,
            limits,
            metrics: metrics.clone(),
            closed: AtomicBool::new(false),
            caps,
            live: AtomicUsize::new(0),
            per_owner: DashMap::new(),
            hub: RwLock::new(None),
            listeners: ListenerSlots::new(caps.listeners),
            node,
            cluster,
            me: me.clone(),
        });
        let live: Weak<dyn LiveFigures> = Arc::downgrade(&registry) as Weak<Registry>;
        metrics.watch(live);
        registry
    }

    fn factory(&self) -> ServerFactory {
        // Held only to clone; a panic cannot leave the factory half-written.
        self.factory.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Serves new sessions from `factory`; live sessions keep the servers they have.
    /// Stateless requests go to a new hub over the new upstreams from now on.
    pub(crate) fn set_factory(&self, factory: ServerFactory) {
        let factory = factory.parking(self.park_after, self.parked.clone()).waiting_for_input(self.waiting.clone());
        *self.factory.write().unwrap_or_else(std::sync::PoisonError::into_inner) = factory;
        // The hub it replaces ends once nothing holds it (its requests are answered): its
        // server holds it only weakly. Its listen streams end now, with their results: their
        // clients listen again, to the new upstreams.
        let replaced = self.hub.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(hub) = replaced {
            hub.complete_listeners();
        }
    }

    /// The live hub, started over the current upstreams if there is none (or it ended);
    /// `None` at shutdown.
    fn live_hub(&self) -> Option<Arc<Hub>> {
        if let Some(hub) = self.current_hub().filter(|h| !h.is_ended()) {
            return Some(hub);
        }
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let mut slot = self.hub.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hub) = slot.as_ref().filter(|h| !h.is_ended()) {
            return Some(hub.clone());
        }
        let factory = self.factory();
        // Every stateless request goes through the hub's one inbound queue: four sessions'
        // worth, at least the default.
        let limits = HubLimits {
            inbound: (self.limits.inbound * 4).max(HubLimits::default().inbound),
            stream: self.limits.stream,
            stall: self.limits.stall,
        };
        let (hub, inbound) = Hub::new(limits, factory.tasks().clone(), self.listeners.clone());
        match factory.start_hub(inbound, HubOutbound(Arc::downgrade(&hub)), hub.cancel_token()) {
            Ok(server) => {
                hub.serve_directly(Arc::new(HubDirect(server)));
                tracing::info!("modern hub started");
                *slot = Some(hub.clone());
                Some(hub)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the modern hub did not start");
                None
            }
        }
    }

    /// Refuses new sessions from now on (shutdown).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Client requests still waiting for an answer, over all sessions and the hub.
    pub(crate) fn in_flight(&self) -> usize {
        let stateless = self.current_hub().map_or(0, |hub| hub.in_flight());
        self.map.iter().map(|e| e.in_flight()).sum::<usize>() + stateless
    }

    /// Ends every listen stream with its result (the start of a drain: they would hold it
    /// to its deadline, and their clients can listen again elsewhere at once).
    pub(crate) fn complete_listeners(&self) {
        if let Some(hub) = self.current_hub() {
            hub.complete_listeners();
        }
    }

    fn current_hub(&self) -> Option<Arc<Hub>> {
        self.hub.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Tells every open event stream when to reconnect.
    pub(crate) fn hint_retry(&self, after: Duration) {
        for entry in &self.map {
            entry.hint_retry(after);
        }
    }

    /// How many sessions of each kind are live: (legacy, streamable).
    pub(crate) fn counts(&self) -> (usize, usize) {
        self.map.iter().fold((0, 0), |(l, s), e| match e.kind() {
            SessionKind::Legacy => (l + 1, s),
            SessionKind::Streamable => (l, s + 1),
        })
    }

    /// In a cluster, whether the session store answered its last check; `None`: no cluster.
    pub(crate) fn store_up(&self) -> Option<bool> {
        self.cluster.as_ref().map(|c| c.store_up())
    }

    /// Sessions whose MCP server is parked now (quiet; it restarts on their next message).
    pub(crate) fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// The current upstreams' figures.
    pub(crate) fn upstream_stats(&self) -> Vec<UpstreamStats> {
        self.factory().upstreams().stats()
    }

    /// Ends every session and the hub (at shutdown). In a cluster their records stay, for
    /// other instances to take the sessions over.
    pub(crate) fn end_all(&self) {
        if let Some(hub) = self.hub.write().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            hub.end();
        }
        let ids: Vec<SessionId> = self.map.iter().map(|e| *e.key()).collect();
        for id in ids {
            self.end_here(id);
        }
    }

    /// Leaves the cluster, if any (at shutdown, after [`Registry::end_all`]).
    pub(crate) async fn leave_cluster(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
    }

    /// Ends the session on this instance if it is live here; in a cluster, returns the
    /// epoch it was held at and leaves its record as it is. Only the caller that takes the
    /// session out of the map gets the epoch, so a session ended twice at once (a drain,
    /// and its server stopping) is released at most once.
    fn end_here(&self, id: SessionId) -> Option<u64> {
        let (_, session) = self.map.remove(&id)?;
        let epoch = self.cluster.as_ref().and_then(|cluster| cluster.forget(id));
        session.end();
        self.free_slot(session.owner().cloned());
        self.metrics.session_ended(session.kind().as_str());
        tracing::info!(session = %id, kind = session.kind().as_str(), "session ended");
        epoch
    }

    /// Checks, every [`crate::cluster::FENCE_PERIOD`] until `shutdown`, that the sessions
    /// held here are still held here, and ends those another instance took over meanwhile
    /// (this one was paused, or cut off). Nothing without a cluster.
    pub(crate) async fn run_fence(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(cluster) = self.cluster.clone() else { return };
        let mut tick = tokio::time::interval(crate::cluster::FENCE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match cluster.lost().await {
                Ok(lost) => {
                    if failing {
                        tracing::info!("the session store answers again");
                        failing = false;
                    }
                    for lost in lost {
                        let id = lost.id;
                        // Expected in a rolling restart: the sessions of an instance that stops
                        // move on, and those it held for an instance that was away go home.
                        if self.closed.load(Ordering::SeqCst) {
                            tracing::info!(session = %id, cause = "this instance is stopping", "another instance holds this session now; ending it here");
                        } else if id.node() != cluster.node() && lost.taker == Some(id.node()) {
                            tracing::info!(session = %id, cause = "its home instance took it back", "another instance holds this session now; ending it here");
                        } else {
                            tracing::warn!(session = %id, cause = "this instance was paused or cut off", "another instance holds this session now; ending it here");
                        }
                        self.metrics.session_lost();
                        self.end_here(id);
                    }
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot check the sessions held here against the store");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// Ends the sessions idle longer than `ttl`. Returns how many it ended.
    pub(crate) fn reap_idle(&self, ttl: Duration) -> usize {
        let idle: Vec<SessionId> = self.map.iter().filter(|e| e.idle_for() > ttl).map(|e| *e.key()).collect();
        for id in &idle {
            tracing::info!(session = %id, "session idle past its timeout; ending it");
            self.end(*id);
        }
        idle.len()
    }

    /// Runs the idle reaper until `shutdown`.
    pub(crate) async fn run_reaper(self: Arc<Self>, ttl: Duration, shutdown: CancellationToken) {
        if ttl.is_zero() {
            return;
        }
        let every = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => { self.reap_idle(ttl); }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

impl Registry {
    /// Takes a session slot under both caps, or refuses with 503. Each cap is checked and
    /// taken in one atomic step; a slot taken under the global cap is given back when the
    /// credential's cap refuses.
    fn take_slot(&self, owner: Option<Identity>) -> Result<(), Error> {
        let total = self.caps.total;
        if self.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < total).then_some(n + 1)).is_err() {
            return Err(Error::Unavailable("the gateway is at its session limit"));
        }
        // A refused credential has live sessions (a cap is at least 1), so its entry exists
        // already and none is left behind empty.
        let mut count = self.per_owner.entry(owner).or_insert(0);
        if self.caps.per_credential.is_some_and(|cap| *count >= cap) {
            drop(count);
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Unavailable("this credential is at its session limit"));
        }
        *count += 1;
        Ok(())
    }

    /// Gives back the slot of a session that ended.
    fn free_slot(&self, owner: Option<Identity>) {
        self.per_owner.remove_if_mut(&owner, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sessions for Registry {
    fn create(&self, kind: SessionKind, owner: Option<Identity>) -> Result<Arc<Session>, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the gateway is shutting down"));
        }
        self.take_slot(owner.clone())?;
        let id = self.node.map_or_else(SessionId::random, SessionId::random_on);
        let caller = owner.as_ref().map_or_else(|| "anonymous".to_owned(), Identity::name);
        let (session, inbound) = Session::new(id, kind, owner, self.limits);
        if let Some(cluster) = &self.cluster {
            self.journal(cluster, &session, 0, 0);
        }
        self.map.insert(id, session.clone());
        let origin = Origin { name: caller.into(), session: id.to_string().into() };
        let policy_caller = session.owner().map(crate::caller::of);
        let (factory, cancel, on_end) = (self.factory(), session.cancel_token(), self.on_server_end(id));
        let started = match &self.cluster {
            None => factory.start(origin, policy_caller, inbound, SessionOutbound(session.clone()), cancel, on_end),
            Some(cluster) => {
                let outbound = ClusterOutbound::new(session.clone(), cluster.clone());
                factory.start(origin, policy_caller, inbound, outbound, cancel, on_end)
            }
        };
        if let Err(e) = started {
            self.end(id);
            tracing::warn!(error = %e, "refused a new session");
            return Err(Error::Unavailable("the gateway is shutting down"));
        }
        self.metrics.session_created(kind.as_str());
        Ok(session)
    }

    fn get(&self, id: SessionId) -> Option<Arc<Session>> {
        self.map.get(&id).map(|e| e.value().clone())
    }

    async fn take_over(
        &self,
        id: SessionId,
        kind: SessionKind,
        owner: Option<Identity>,
    ) -> Result<Arc<Session>, Error> {
        let Some(cluster) = self.cluster.clone() else { return Err(Error::SessionNotFound) };
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the gateway is shutting down"));
        }
        let gate = cluster.gate(id);
        let taken = {
            let _one_at_a_time = gate.lock().await;
            match self.get(id) {
                // Another request for it took it over while this one waited.
                Some(session) => Ok(session),
                None => self.claim(&cluster, id, kind, owner).await,
            }
        };
        cluster.ungate(id);
        taken
    }

    fn observe(&self, kind: SessionKind, method: &'static str) {
        self.metrics.message(kind.as_str(), method);
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.live_hub()
    }

    fn observe_stateless(&self, method: &'static str) {
        self.metrics.message("stateless", method);
    }

    fn identify(&self, owner: &Identity, extensions: &mut rmcp::model::Extensions) {
        extensions.insert(crate::caller::of(owner));
    }

    fn observe_rate_limited(&self, limit: &'static str) {
        self.metrics.rate_limited(limit);
    }

    fn end(&self, id: SessionId) {
        // In a cluster the record goes too, at the epoch held here: deleted only if no
        // other instance claimed the session since.
        if let Some(epoch) = self.end_here(id)
            && let Some(cluster) = self.cluster.clone()
        {
            self.factory().tasks().spawn(async move { cluster.release(id, epoch).await });
        }
    }
}

impl Registry {
    /// What a session's server calls once it has stopped, whatever the reason.
    fn on_server_end(&self, id: SessionId) -> impl FnOnce() + Send + 'static {
        let me = self.me.clone();
        move || {
            if let Some(registry) = me.upgrade() {
                registry.end(id);
            }
        }
    }

    /// Journals `session`, held here at `epoch` with its events up to `written` stored, to
    /// the store from now on.
    fn journal(&self, cluster: &Arc<Cluster>, session: &Arc<Session>, epoch: u64, written: u64) {
        let journal = cluster.journal(session.id(), epoch, written, session.cancel_token(), self.factory().tasks());
        session.journal_to(journal);
    }

    /// Claims a session held elsewhere and rebuilds it here from its record.
    async fn claim(
        &self,
        cluster: &Arc<Cluster>,
        id: SessionId,
        kind: SessionKind,
        owner: Option<Identity>,
    ) -> Result<Arc<Session>, Error> {
        // The slot first: a claim this instance then could not honour would leave the
        // session held by no one.
        self.take_slot(owner.clone())?;
        let handshake = match cluster.store().claim(id, kind, owner.as_ref()).await {
            Ok(Some(claimed)) => mcpgw_core::Handshake::from_json(&claimed.handshake).map(|h| (claimed, h)),
            Ok(None) => {
                self.free_slot(owner);
                return Err(Error::SessionNotFound);
            }
            Err(e) => {
                self.free_slot(owner);
                self.metrics.store_error("claim");
                tracing::warn!(session = %id, error = %e, "cannot take the session over: the store does not answer");
                return Err(Error::Unavailable("the session store is unreachable"));
            }
        };
        let (claimed, handshake) = match handshake {
            Ok(both) => both,
            Err(e) => {
                self.free_slot(owner);
                tracing::warn!(session = %id, error = %e, "cannot take the session over");
                return Err(Error::SessionNotFound);
            }
        };
        let history = match cluster.store().history(id).await {
            Ok(history) => history,
            Err(e) => {
                // The session still carries on; only what its clients missed is lost.
                self.metrics.store_error("history");
                tracing::warn!(session = %id, error = %e, "cannot read the session's journal; nothing to replay");
                History::default()
            }
        };
        let (session, inbound) = Session::new(id, kind, owner, self.limits);
        let version = handshake.protocol_version().parse().ok();
        let base = Continuation::after_epoch(claimed.epoch);
        let lost = history.pending.len();
        self.journal(cluster, &session, claimed.epoch, base.seq);
        session.continue_from(version, base, history);
        if lost > 0 {
            tracing::info!(session = %id, calls = lost, "answered the calls the previous holder left running with an error");
        }
        // Held before it is in the map: whoever takes it out of the map finds its epoch.
        cluster.hold(id, claimed.epoch);
        self.map.insert(id, session.clone());
        let outbound = ClusterOutbound::new(session.clone(), cluster.clone());
        let caller = session.owner().map_or_else(|| "anonymous".to_owned(), Identity::name);
        let origin = Origin { name: caller.into(), session: id.to_string().into() };
        let started = self.factory().start_taken_over(
            origin,
            session.owner().map(crate::caller::of),
            inbound,
            outbound,
            session.cancel_token(),
            self.on_server_end(id),
            handshake,
            crate::cluster::first_run(claimed.epoch),
        );
        if let Err(e) = started {
            self.end_here(id);
            tracing::warn!(error = %e, "refused a session taken over");
            return Err(Error::Unavailable("the gateway is shutting down"));
        }
        cluster.taken_over(id, &claimed);
        Ok(session)
    }
}

impl LiveFigures for Registry {
    fn counts(&self) -> (usize, usize) {
        Registry::counts(self)
    }

    fn parked(&self) -> usize {
        Registry::parked(self)
    }

    fn waiting_for_input(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn listeners(&self) -> (usize, u64) {
        (self.listeners.open(), self.listeners.ended_slow())
    }

    fn upstream_stats(&self) -> Vec<UpstreamStats> {
        Registry::upstream_stats(self)
    }

    fn store_up(&self) -> Option<bool> {
        Registry::store_up(self)
    }
}

/// A session's outbound side, as the core crate's sink.
struct SessionOutbound(Arc<Session>);

impl Outbound for SessionOutbound {
    fn deliver(
        &self,
        message: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
        let delivered = self.0.deliver(message);
        async move { delivered.await.map_err(|_| OutboundClosed) }
    }
}

/// The hub's outbound side, as the core crate's sink. Weak: the hub's server must not keep
/// the hub alive, so a replaced hub ends once its last request is answered.
struct HubOutbound(Weak<Hub>);

impl Outbound for HubOutbound {
    fn deliver(
        &self,
        message: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
        let delivered = self.0.upgrade().map(|hub| hub.deliver(message));
        async move {
            match delivered {
                Some(delivered) => delivered.await.map_err(|_| OutboundClosed),
                None => Err(OutboundClosed),
            }
        }
    }
}

/// The hub's server as the transport calls it for the requests that skip its message loop.
struct HubDirect(HubServer);

impl Direct for HubDirect {
    fn handle(&self, request: JsonRpcRequest<ClientRequest>, cancel: CancellationToken) -> DirectAnswer {
        self.0.handle(request, cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::task::TaskTracker;

    fn test_registry() -> Arc<Registry> {
        let tasks = TaskTracker::new();
        let factory = ServerFactory::new(mcpgw_core::Upstreams::builtin(&tasks), tasks);
        Registry::new(
            factory,
            None,
            SessionLimits::default(),
            SessionCaps { total: 3, per_credential: Some(2), listeners: 8 },
            Metrics::new(),
            None,
            None,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_are_reaped_and_busy_ones_kept() {
        let registry = test_registry();
        let idle = registry.create(SessionKind::Streamable, None).expect("created");
        let listening = registry.create(SessionKind::Legacy, None).expect("created");
        let _stream = listening.open_standalone().0;
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(registry.reap_idle(Duration::from_secs(60)), 1);
        assert!(registry.get(idle.id()).is_none());
        assert!(idle.is_ended());
        assert!(registry.get(listening.id()).is_some());
        assert_eq!(registry.counts(), (1, 0));
    }

    #[tokio::test]
    async fn a_closed_registry_refuses_new_sessions() {
        let registry = test_registry();
        registry.close();
        assert!(matches!(registry.create(SessionKind::Streamable, None), Err(Error::Unavailable(_))));
    }

    #[tokio::test]
    async fn caps_refuse_new_sessions_and_free_up_when_sessions_end() {
        let registry = test_registry();
        let first = registry.create(SessionKind::Streamable, None).expect("created");
        registry.create(SessionKind::Streamable, None).expect("created");
        assert!(matches!(registry.create(SessionKind::Legacy, None), Err(Error::Unavailable(_))), "per-credential cap");
        let other = Identity::token([7; 32]);
        registry.create(SessionKind::Streamable, Some(other.clone())).expect("another credential has room");
        assert!(
            matches!(registry.create(SessionKind::Streamable, Some(other)), Err(Error::Unavailable(_))),
            "global cap"
        );
        registry.end(first.id());
        registry.create(SessionKind::Streamable, None).expect("room again");
        assert_eq!(registry.counts(), (0, 3));
    }

    /// Many creates at once, one slot left under the cap: exactly one gets it.
    fn race_for_the_last_slot(caps: SessionCaps, owner: Option<Identity>) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _entered = runtime.enter();
        let tasks = TaskTracker::new();
        let factory = ServerFactory::new(mcpgw_core::Upstreams::builtin(&tasks), tasks);
        let registry = Registry::new(factory, None, SessionLimits::default(), caps, Metrics::new(), None, None);
        let room = caps.per_credential.unwrap_or(caps.total);
        for _ in 0..room - 1 {
            registry.create(SessionKind::Streamable, owner.clone()).expect("room");
        }
        let start = Arc::new(std::sync::Barrier::new(64));
        let created = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..64)
                .map(|_| {
                    let (registry, start, handle) = (&registry, start.clone(), runtime.handle().clone());
                    let owner = owner.clone();
                    scope.spawn(move || {
                        let _entered = handle.enter();
                        start.wait();
                        registry.create(SessionKind::Streamable, owner)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().expect("racer")).filter(Result::is_ok).count()
        });
        assert_eq!(created, 1, "{caps:?}");
        assert_eq!(registry.counts(), (0, room));
        registry.end_all();
        assert_eq!(registry.live.load(Ordering::SeqCst), 0, "every slot given back");
    }

    #[test]
    fn concurrent_creates_never_pass_the_global_cap() {
        race_for_the_last_slot(SessionCaps { total: 8, per_credential: None, listeners: 8 }, None);
    }

    #[test]
    fn concurrent_creates_never_pass_a_credentials_cap() {
        race_for_the_last_slot(SessionCaps { total: 1000, per_credential: Some(8), listeners: 8 }, None);
    }

    #[tokio::test]
    async fn ended_sessions_leave_the_map() {
        let registry = test_registry();
        let ids: Vec<_> =
            (0..2).map(|_| registry.create(SessionKind::Streamable, None).expect("created").id()).collect();
        assert_eq!(registry.counts(), (0, 2));
        for id in ids {
            registry.end(id);
        }
        assert_eq!(registry.counts(), (0, 0));
    }
}
