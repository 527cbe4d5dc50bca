//! One session as the HTTP edge sees it: the inbound channel to its MCP server, and the
//! routing of everything that server sends to the right open stream.
//!
//! Routing rules (Streamable HTTP): a response goes to the POST stream that carried its
//! request, which then ends; a progress notification goes to the stream of the request that
//! owns its token; a server→client request made while handling a request (rmcp marks it with
//! `OriginatingRequestId`) goes on that request's stream; everything else goes to the
//! standalone GET stream. Legacy HTTP+SSE sessions have only the one stream. A message for a
//! stream that is not open waits in a small bounded backlog until one opens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, GetExtensions, JsonRpcMessage, ProgressToken, RequestId,
    ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use rmcp::service::OriginatingRequestId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Credential;
use crate::event_log::{EventId, EventLog, ResumeError};
use crate::session_id::SessionId;
use crate::sse;
use crate::version::ProtocolVersion;

/// Which transport a session was created on. The two id spaces never cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// HTTP+SSE, spec 2024-11-05.
    Legacy,
    /// Streamable HTTP, specs 2025-03-26 and later.
    Streamable,
}

impl SessionKind {
    /// A short lowercase name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Legacy => "legacy",
            SessionKind::Streamable => "streamable",
        }
    }
}

/// The session or stream is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session is closed")]
pub struct Closed;

/// What goes to a client on a stream: a message serialized once, or an SSE control frame.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A JSON-RPC message.
    Message {
        /// The JSON text.
        json: Bytes,
        /// Whether it answers a request (a response or an error with an id).
        response: bool,
        /// Its event id, for resumption.
        event: Option<EventId>,
    },
    /// Raw SSE lines with no message (a `retry:` hint), skipped in JSON replies.
    Control(Bytes),
}

impl Outgoing {
    /// A message that is not a response (a notification or a server request).
    pub fn other(json: Bytes) -> Self {
        Outgoing::Message { json, response: false, event: None }
    }

    /// The JSON text, unless it is a control frame.
    pub fn json(&self) -> Option<&Bytes> {
        match self {
            Outgoing::Message { json, .. } => Some(json),
            Outgoing::Control(_) => None,
        }
    }

    /// Whether it is a response or error answering a request.
    pub fn is_response(&self) -> bool {
        matches!(self, Outgoing::Message { response: true, .. })
    }

    /// The SSE frame that carries it; with its event id when `prefix` (the session's event
    /// id prefix) is given.
    pub fn to_sse(&self, prefix: Option<&str>) -> Bytes {
        match (self, prefix) {
            (Outgoing::Message { json, event: Some(event), .. }, Some(prefix)) => {
                let id = event.format(prefix);
                sse::Event { event: Some("message"), id: Some(&id), data: json, retry: None }.encode()
            }
            (Outgoing::Message { json, .. }, _) => sse::message(json),
            (Outgoing::Control(raw), _) => raw.clone(),
        }
    }
}

/// Sizes of a session's queues; every one is bounded.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Client messages waiting for the MCP server.
    pub inbound: usize,
    /// Messages waiting to be written to one open stream.
    pub stream: usize,
    /// Messages kept while no stream is open to take them.
    pub backlog: usize,
    /// Events kept for `Last-Event-ID` resumption.
    pub log_events: usize,
    /// Bytes of events kept for resumption.
    pub log_bytes: usize,
    /// How long a message may wait for room on a stream whose client is not reading; then
    /// the stream is closed (its messages stay in the event log, to resume from).
    pub stall: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            inbound: 64,
            stream: 64,
            backlog: 256,
            log_events: 256,
            log_bytes: 1 << 20,
            stall: Duration::from_secs(5),
        }
    }
}

/// At most this many messages of one session wait for room on full streams at once; past
/// it the stream is closed at once. Together with the bounded queues and log, this caps what
/// a client that never reads can make the gateway hold.
const MAX_WAITING: usize = 8;

/// A live session: created by the registry, shared by the handlers and the MCP server.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    kind: SessionKind,
    inbound: mpsc::Sender<Box<ClientJsonRpcMessage>>,
    routes: Mutex<Routes>,
    ended: CancellationToken,
    limits: SessionLimits,
    /// When the session was created; activity is measured from here.
    created: Instant,
    /// Milliseconds after `created` of the last client request.
    last_active_ms: AtomicU64,
    /// What its event ids start with (see [`crate::event_log`]).
    event_prefix: Arc<str>,
    /// The credential that created it; only that credential may use it.
    owner: Option<Credential>,
    /// Messages waiting for room on a full stream.
    waiting: AtomicUsize,
    me: Weak<Session>,
}

#[derive(Debug)]
struct Routes {
    /// Open POST streams by the id of the request they wait on.
    posts: HashMap<RequestId, PostRoute>,
    /// Progress tokens of in-flight requests, to the request that owns them.
    progress: HashMap<ProgressToken, RequestId>,
    /// The standalone stream (GET on /mcp, or the legacy event stream).
    standalone: Option<mpsc::Sender<Outgoing>>,
    /// Messages for the standalone stream while none is open.
    backlog: VecDeque<Outgoing>,
    /// The protocol version negotiated at initialize, once known.
    version: Option<ProtocolVersion>,
    /// Client requests not answered yet, whichever transport carried them.
    pending: HashSet<RequestId>,
    /// The next POST stream's number (0 is the standalone stream).
    next_stream: u32,
    /// The last event number given out.
    last_seq: u64,
    /// The last events sent, for resumption.
    log: EventLog,
}

#[derive(Debug)]
struct PostRoute {
    tx: mpsc::Sender<Outgoing>,
    stream: u32,
    progress: Option<ProgressToken>,
}

/// The standalone stream's number.
const STANDALONE: u32 = 0;

impl Session {
    /// A new session, and the receiving end of its inbound channel for the MCP server.
    pub fn new(
        id: SessionId,
        kind: SessionKind,
        owner: Option<Credential>,
        limits: SessionLimits,
    ) -> (Arc<Self>, mpsc::Receiver<Box<ClientJsonRpcMessage>>) {
        let (inbound, rx) = mpsc::channel(limits.inbound.max(1));
        let session = Arc::new_cyclic(|me| Self {
            id,
            kind,
            inbound,
            routes: Mutex::new(Routes {
                posts: HashMap::new(),
                progress: HashMap::new(),
                standalone: None,
                backlog: VecDeque::new(),
                version: None,
                pending: HashSet::new(),
                next_stream: 1,
                last_seq: 0,
                log: EventLog::new(limits.log_events, limits.log_bytes),
            }),
            ended: CancellationToken::new(),
            limits,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            event_prefix: event_prefix(id, kind),
            owner,
            waiting: AtomicUsize::new(0),
            me: me.clone(),
        });
        (session, rx)
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The transport it was created on.
    pub fn kind(&self) -> SessionKind {
        self.kind
    }

    /// The credential that created it, when authentication is on.
    pub fn owner(&self) -> Option<Credential> {
        self.owner
    }

    /// Cancelled when the session ends; the MCP server runs under it.
    pub fn cancel_token(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// The protocol version negotiated at initialize, once the server has answered it.
    pub fn negotiated_version(&self) -> Option<ProtocolVersion> {
        self.routes().version
    }

    /// Records client activity now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last client request, or zero while a stream is open or a request
    /// is in flight: a session a client is still listening to is never idle.
    pub fn idle_for(&self) -> Duration {
        {
            let routes = self.routes();
            let streaming = routes.standalone.as_ref().is_some_and(|tx| !tx.is_closed());
            if streaming || !routes.posts.is_empty() {
                return Duration::ZERO;
            }
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// How many client requests are still waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.routes().pending.len()
    }

    /// Tells every open event stream how long to wait before reconnecting (sent at
    /// shutdown, so clients come back to the next instance promptly, not in a tight loop).
    pub fn hint_retry(&self, after: Duration) {
        let frame = Outgoing::Control(Bytes::from(format!(": shutting down\nretry: {}\n\n", after.as_millis())));
        let routes = self.routes();
        let streams = routes.standalone.iter().chain(routes.posts.values().map(|p| &p.tx));
        for tx in streams {
            let _ = tx.try_send(frame.clone());
        }
    }

    /// Ends the session: the MCP server stops and every open stream closes.
    pub fn end(&self) {
        self.ended.cancel();
        let mut routes = self.routes();
        routes.posts.clear();
        routes.progress.clear();
        routes.standalone = None;
        routes.backlog.clear();
        routes.pending.clear();
        routes.log.clear();
    }

    /// Hands a client message to the session's MCP server, waiting while its queue is full.
    pub async fn send(&self, message: ClientJsonRpcMessage) -> Result<(), Closed> {
        if self.is_ended() {
            return Err(Closed);
        }
        match &message {
            JsonRpcMessage::Request(r) => {
                self.routes().pending.insert(r.id.clone());
            }
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                {
                    self.routes().pending.remove(id);
                }
            }
            _ => {}
        }
        tokio::select! {
            sent = self.inbound.send(Box::new(message)) => sent.map_err(|_| Closed),
            () = self.ended.cancelled() => Err(Closed),
        }
    }

    /// The prefix of this session's event ids.
    pub fn event_prefix(&self) -> &Arc<str> {
        &self.event_prefix
    }

    /// Opens the standalone stream, replacing (and so closing) any earlier one, and moves
    /// the backlog onto it. Also returns the id to prime it with: resuming from it replays
    /// what is sent from now on.
    pub fn open_standalone(&self) -> (mpsc::Receiver<Outgoing>, EventId) {
        let (tx, rx) = mpsc::channel(self.limits.stream.max(1));
        let mut routes = self.routes();
        let priming = EventId { stream: STANDALONE, seq: routes.last_seq };
        while let Some(out) = routes.backlog.pop_front() {
            if let Err(e) = tx.try_send(out) {
                routes.backlog.push_front(e.into_inner());
                break;
            }
        }
        if !self.is_ended() {
            routes.standalone = Some(tx);
        }
        (rx, priming)
    }

    /// Resumes a stream after the event `last_event_id` (a `Last-Event-ID` header): replays
    /// the logged events of that stream that came after it, then carries on with what is
    /// still to come on it (the standalone stream's messages, or the answers to a POST's
    /// requests). An id of another session or of a stream this session never had is
    /// refused, and nothing is replayed.
    pub fn resume(&self, last_event_id: &str) -> Result<mpsc::Receiver<Outgoing>, ResumeError> {
        let (prefix, last) = EventId::parse(last_event_id)?;
        if prefix != &*self.event_prefix {
            return Err(ResumeError::Foreign);
        }
        let mut routes = self.routes();
        if last.stream >= routes.next_stream || last.seq > routes.last_seq {
            return Err(ResumeError::Foreign);
        }
        let replay = routes.log.after(last.stream, last.seq);
        let (tx, rx) = mpsc::channel(self.limits.stream.max(replay.len() + 1));
        for (event, json) in replay {
            // Room for every replayed event was made above.
            let _ = tx.try_send(Outgoing::Message { json, response: false, event: Some(event) });
        }
        if self.is_ended() {
            return Ok(rx);
        }
        if last.stream == STANDALONE {
            // Everything the backlog held is in the log too, and was just replayed.
            routes.backlog.clear();
            routes.standalone = Some(tx);
        } else {
            for route in routes.posts.values_mut().filter(|r| r.stream == last.stream) {
                route.tx = tx.clone();
            }
        }
        Ok(rx)
    }

    /// Forgets the standalone stream if `rx` belongs to it (its body was dropped).
    pub fn close_standalone_if_current(&self, closed: &mpsc::WeakSender<Outgoing>) {
        let mut routes = self.routes();
        let current = routes.standalone.as_ref().is_some_and(|tx| closed.upgrade().is_some_and(|c| c.same_channel(tx)));
        if current {
            routes.standalone = None;
        }
    }

    /// Whether a standalone stream is open.
    pub fn has_standalone(&self) -> bool {
        self.routes().standalone.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// A weak handle on the current standalone stream, to recognise it when it closes.
    pub fn standalone_handle(&self) -> Option<mpsc::WeakSender<Outgoing>> {
        self.routes().standalone.as_ref().map(mpsc::Sender::downgrade)
    }

    /// Opens a stream for the responses to these requests (one POST). The stream ends once
    /// every one of them has been answered. Also returns the id to prime it with: resuming
    /// from it replays the whole stream.
    pub fn open_post(
        &self,
        requests: impl IntoIterator<Item = (RequestId, Option<ProgressToken>)>,
    ) -> (mpsc::Receiver<Outgoing>, EventId) {
        let (tx, rx) = mpsc::channel(self.limits.stream.max(1));
        let mut routes = self.routes();
        let stream = routes.next_stream;
        routes.next_stream = routes.next_stream.wrapping_add(1).max(1);
        let priming = EventId { stream, seq: routes.last_seq };
        if self.is_ended() {
            return (rx, priming);
        }
        for (id, progress) in requests {
            if let Some(token) = &progress {
                routes.progress.insert(token.clone(), id.clone());
            }
            routes.posts.insert(id, PostRoute { tx: tx.clone(), stream, progress });
        }
        (rx, priming)
    }

    /// Puts a message on the standalone stream, or in the backlog while none is open.
    pub fn to_standalone(&self, out: Outgoing) {
        let mut routes = self.routes();
        let out = match &routes.standalone {
            Some(tx) => match tx.try_send(out) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => out,
        };
        routes.keep(out, self.limits.backlog, self.id);
    }

    /// Forgets a request the client cancelled: no response will come, so its stream ends.
    pub fn forget_request(&self, id: &RequestId) {
        let mut routes = self.routes();
        routes.pending.remove(id);
        if let Some(route) = routes.posts.remove(id)
            && let Some(token) = route.progress
        {
            routes.progress.remove(&token);
        }
    }

    /// Routes one message from the MCP server. The routing decision and, when there is
    /// room, the enqueueing happen before this returns, so messages keep the order in which
    /// the server sent them; the future only waits when the stream's queue is full.
    pub fn deliver(&self, message: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Closed>> + Send + 'static {
        let waiting = self.route(message);
        let me = self.me.clone();
        let stall = self.limits.stall;
        async move {
            let Some((tx, out)) = waiting else { return Ok(()) };
            let Some(session) = me.upgrade() else { return Err(Closed) };
            if session.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
                session.waiting.fetch_sub(1, Ordering::AcqRel);
                session.close_stalled(&tx);
                return Ok(());
            }
            let sent = tokio::time::timeout(stall, tx.send(out)).await;
            session.waiting.fetch_sub(1, Ordering::AcqRel);
            if sent.is_err() {
                session.close_stalled(&tx);
            }
            // Whatever was not delivered is in the event log, to resume from.
            Ok(())
        }
    }

    /// Closes a stream whose client stopped reading. Its messages stay in the event log;
    /// later ones for it go to the log (and, for the standalone stream, the backlog) until
    /// the client resumes.
    fn close_stalled(&self, stalled: &mpsc::Sender<Outgoing>) {
        let mut routes = self.routes();
        if routes.standalone.as_ref().is_some_and(|tx| tx.same_channel(stalled)) {
            routes.standalone = None;
        }
        let mut closed = false;
        for route in routes.posts.values_mut().filter(|r| r.tx.same_channel(stalled)) {
            // A sender whose receiver is gone: sends to it fail at once.
            route.tx = mpsc::channel(1).0;
            closed = true;
        }
        drop(routes);
        tracing::warn!(session = %self.id, post = closed, "a client is not reading its event stream; closed it (it can resume with Last-Event-ID)");
    }

    /// Enqueues the message where it belongs; returns it with its stream when that stream's
    /// queue is full, for the caller to wait on.
    fn route(&self, message: ServerJsonRpcMessage) -> Option<(mpsc::Sender<Outgoing>, Outgoing)> {
        let json = match serde_json::to_vec(&message) {
            Ok(json) => Bytes::from(json),
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "dropping a server message that cannot be serialized");
                return None;
            }
        };
        let mut routes = self.routes();
        let (target, response) = match &message {
            JsonRpcMessage::Response(r) => {
                if let ServerResult::InitializeResult(init) = &r.result {
                    // Parsed once, here; a version the server chose is one rmcp knows, and
                    // one mcpgw does not know yet gets neither batches nor priming.
                    routes.version = init.protocol_version.as_str().parse().ok();
                }
                routes.pending.remove(&r.id);
                (routes.take_post(&r.id), true)
            }
            JsonRpcMessage::Error(e) => {
                if let Some(id) = &e.id {
                    routes.pending.remove(id);
                }
                (e.id.as_ref().and_then(|id| routes.take_post(id)), true)
            }
            JsonRpcMessage::Notification(n) => {
                let owner = match &n.notification {
                    ServerNotification::ProgressNotification(p) => {
                        routes.progress.get(&p.params.progress_token).cloned()
                    }
                    // A notification tied to a request (an upstream's log line during a call)
                    // rides that request's stream.
                    other => other.extensions().get::<OriginatingRequestId>().map(|o| o.0.clone()),
                };
                (owner.and_then(|id| routes.posts.get(&id).map(|p| (p.tx.clone(), p.stream))), false)
            }
            JsonRpcMessage::Request(r) => {
                let origin = r.request.extensions().get::<OriginatingRequestId>().map(|o| o.0.clone());
                (origin.and_then(|id| routes.posts.get(&id).map(|p| (p.tx.clone(), p.stream))), false)
            }
        };
        let (target, stream) = match target {
            Some((tx, stream)) => (Some(tx), stream),
            None => (routes.standalone.clone(), STANDALONE),
        };
        routes.last_seq += 1;
        let event = EventId { stream, seq: routes.last_seq };
        routes.log.push(event, json.clone());
        let out = Outgoing::Message { json, response, event: Some(event) };
        match target {
            Some(tx) => match tx.try_send(out) {
                Ok(()) => None,
                Err(TrySendError::Full(out)) => Some((tx, out)),
                Err(TrySendError::Closed(out)) => {
                    // The client went away from this stream. Keep what belongs to no
                    // request for the next stream; a response whose POST is gone is lost
                    // until resumption keeps an event log.
                    if out.is_response() {
                        tracing::debug!(session = %self.id, "the client left before its response was ready");
                    } else {
                        routes.standalone = None;
                        routes.keep(out, self.limits.backlog, self.id);
                    }
                    None
                }
            },
            None => {
                routes.keep(out, self.limits.backlog, self.id);
                None
            }
        }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // The lock guards plain data and is never held across an await or a call that could
        // panic while the data is half-updated, so a poisoned lock still holds a valid value.
        self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A legacy session's event ids carry its id, so a reconnect (which has nothing else)
/// finds it; a Streamable session's carry a random salt.
fn event_prefix(id: SessionId, kind: SessionKind) -> Arc<str> {
    match kind {
        SessionKind::Legacy => id.to_string().into(),
        SessionKind::Streamable => {
            let salt = id.to_string();
            // The id is random; a slice of its other half serves as a salt that tells
            // sessions apart without repeating the id.
            salt[24..].into()
        }
    }
}

impl Routes {
    /// Removes the route of an answered request, and its progress token.
    fn take_post(&mut self, id: &RequestId) -> Option<(mpsc::Sender<Outgoing>, u32)> {
        let route = self.posts.remove(id)?;
        if let Some(token) = route.progress {
            self.progress.remove(&token);
        }
        Some((route.tx, route.stream))
    }

    fn keep(&mut self, out: Outgoing, cap: usize, id: SessionId) {
        if self.backlog.len() >= cap {
            self.backlog.pop_front();
            tracing::warn!(session = %id, "backlog full: dropped the oldest message for a stream that is not open");
        }
        self.backlog.push_back(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, NumberOrString, ProgressNotificationParam};

    fn new_session() -> Arc<Session> {
        Session::new(SessionId::random(), SessionKind::Streamable, None, SessionLimits::default()).0
    }

    fn response(id: i64) -> ServerJsonRpcMessage {
        JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), RequestId::Number(id))
    }

    fn progress(token: &str) -> ServerJsonRpcMessage {
        let param = ProgressNotificationParam::new(ProgressToken(NumberOrString::String(token.into())), 1.0);
        JsonRpcMessage::notification(ServerNotification::ProgressNotification(rmcp::model::ProgressNotification::new(
            param,
        )))
    }

    #[tokio::test]
    async fn response_goes_to_its_post_stream_which_then_ends() {
        let s = new_session();
        let mut rx = s.open_post([(RequestId::Number(1), None)]).0;
        s.deliver(response(1)).await.expect("delivered");
        let out = rx.recv().await.expect("a message");
        assert!(out.is_response());
        assert!(rx.recv().await.is_none(), "the stream ends after its response");
    }

    #[tokio::test]
    async fn progress_follows_its_token_and_the_rest_goes_standalone() {
        let s = new_session();
        let token = ProgressToken(NumberOrString::String("t".into()));
        let mut post = s.open_post([(RequestId::Number(7), Some(token))]).0;
        s.deliver(progress("other")).await.expect("kept");
        s.deliver(progress("t")).await.expect("delivered");
        let got = post.recv().await.expect("progress");
        assert!(!got.is_response());
        assert!(std::str::from_utf8(got.json().expect("json")).expect("utf8").contains("\"t\""));
        let mut get = s.open_standalone().0;
        let backlog = get.recv().await.expect("backlog replayed");
        assert!(std::str::from_utf8(backlog.json().expect("json")).expect("utf8").contains("other"));
    }

    #[tokio::test]
    async fn a_new_standalone_stream_replaces_the_old() {
        let s = new_session();
        let mut first = s.open_standalone().0;
        let _second = s.open_standalone().0;
        assert!(first.recv().await.is_none(), "the replaced stream ends");
    }

    #[tokio::test]
    async fn end_closes_everything() {
        let s = new_session();
        let mut post = s.open_post([(RequestId::Number(1), None)]).0;
        let mut get = s.open_standalone().0;
        s.end();
        assert!(post.recv().await.is_none());
        assert!(get.recv().await.is_none());
        assert!(
            s.send(JsonRpcMessage::notification(rmcp::model::ClientNotification::InitializedNotification(
                Default::default()
            )))
            .await
            .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_counts_only_when_nothing_is_open() {
        let s = new_session();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(s.idle_for(), Duration::from_secs(10));
        let stream = s.open_standalone().0;
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(s.idle_for(), Duration::ZERO, "an open stream is not idle");
        drop(stream);
        s.touch();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(s.idle_for(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn requests_are_in_flight_until_answered_or_cancelled() {
        use rmcp::model::{ClientRequest, PingRequest};
        let s = new_session();
        let _rx = s.open_post([(RequestId::Number(1), None), (RequestId::Number(2), None)]).0;
        for id in [1, 2] {
            let ping =
                JsonRpcMessage::request(ClientRequest::PingRequest(PingRequest::default()), RequestId::Number(id));
            // The server side is not running: only the bookkeeping is under test.
            let _ = tokio::time::timeout(Duration::from_millis(1), s.send(ping)).await;
        }
        assert_eq!(s.in_flight(), 2);
        s.deliver(response(1)).await.expect("delivered");
        assert_eq!(s.in_flight(), 1);
        s.forget_request(&RequestId::Number(2));
        assert_eq!(s.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_retry_hint_reaches_every_open_stream() {
        let s = new_session();
        let mut get = s.open_standalone().0;
        let mut post = s.open_post([(RequestId::Number(1), None)]).0;
        s.hint_retry(Duration::from_secs(2));
        for rx in [&mut get, &mut post] {
            let frame = rx.recv().await.expect("a frame").to_sse(None);
            assert!(frame.windows(11).any(|w| w == b"retry: 2000"), "{frame:?}");
        }
    }

    #[tokio::test]
    async fn a_cut_post_stream_resumes_with_what_it_missed_then_the_rest() {
        let s = new_session();
        let token = ProgressToken(NumberOrString::String("t".into()));
        let (post, priming) = s.open_post([(RequestId::Number(5), Some(token))]);
        let prefix = s.event_prefix().clone();
        s.deliver(progress("t")).await.expect("delivered");
        drop(post);
        s.deliver(progress("t")).await.expect("logged while no one listens");
        let mut resumed = s.resume(&priming.format(&prefix)).expect("resumable");
        for _ in 0..2 {
            let frame = resumed.recv().await.expect("a replayed event").to_sse(Some(&prefix));
            assert!(frame.starts_with(b"event: message\nid: "), "{frame:?}");
        }
        s.deliver(response(5)).await.expect("delivered to the resumed stream");
        resumed.recv().await.expect("the response");
        assert!(resumed.recv().await.is_none(), "the resumed stream ends after the response");
    }

    #[tokio::test]
    async fn resumption_refuses_foreign_and_garbage_ids() {
        let s = new_session();
        let other = new_session();
        let (_post, priming) = other.open_post([(RequestId::Number(1), None)]);
        assert_eq!(s.resume(&priming.format(other.event_prefix())).err(), Some(ResumeError::Foreign));
        assert_eq!(s.resume("garbage").err(), Some(ResumeError::Malformed));
        let unknown_stream = EventId { stream: 99, seq: 0 }.format(s.event_prefix());
        assert_eq!(s.resume(&unknown_stream).err(), Some(ResumeError::Foreign));
    }

    #[tokio::test]
    async fn the_standalone_stream_resumes_after_the_last_event_seen() {
        let s = new_session();
        let (mut get, _) = s.open_standalone();
        let prefix = s.event_prefix().clone();
        s.deliver(progress("a")).await.expect("delivered");
        s.deliver(progress("b")).await.expect("delivered");
        let first = get.recv().await.expect("first");
        let Outgoing::Message { event: Some(seen), .. } = first else { panic!("an event with an id") };
        drop(get);
        let mut again = s.resume(&seen.format(&prefix)).expect("resumable");
        let replayed = again.recv().await.expect("the missed event");
        assert!(std::str::from_utf8(replayed.json().expect("json")).expect("utf8").contains("\"b\""));
        s.deliver(progress("c")).await.expect("live again");
        assert!(
            std::str::from_utf8(again.recv().await.expect("live").json().expect("json"))
                .expect("utf8")
                .contains("\"c\"")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_cannot_make_the_session_hold_more_than_its_bounds() {
        let limits = SessionLimits { stream: 4, backlog: 8, log_events: 16, ..SessionLimits::default() };
        let s = Session::new(SessionId::random(), SessionKind::Legacy, None, limits).0;
        let (never_read, _) = s.open_standalone();
        let deliveries: Vec<_> = (0..1000).map(|i| tokio::spawn(s.deliver(progress(&i.to_string())))).collect();
        for delivery in deliveries {
            delivery.await.expect("task").expect("delivered or dropped, never stuck");
        }
        assert!(!s.has_standalone(), "the stalled stream was closed");
        let routes = s.routes();
        assert!(routes.backlog.len() <= 8 && routes.log.len() <= 16);
        drop(routes);
        drop(never_read);
    }

    #[tokio::test]
    async fn forgotten_request_ends_its_stream() {
        let s = new_session();
        let mut post = s.open_post([(RequestId::Number(3), None)]).0;
        s.forget_request(&RequestId::Number(3));
        assert!(post.recv().await.is_none());
    }
}
