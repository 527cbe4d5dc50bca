//! One session as the HTTP edge sees it: the inbound channel to its MCP server, its
//! [`Routes`] (which stream each message the server sends goes on, see [`crate::routes`])
//! behind a mutex, its activity, and the back-pressure on streams whose client stops
//! reading.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, JsonRpcMessage, ProgressToken, RequestId, ServerJsonRpcMessage,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Identity;
use crate::event_log::{EventId, EventLog, ResumeError};
use crate::journal::{Gate, Journal};
use crate::outgoing::Outgoing;
use crate::routes::{Continuation, History, PostReply, Routed, Routes};
use crate::session_id::SessionId;
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
    /// The caller that created it; only that caller may use it.
    owner: Option<Identity>,
    /// Messages waiting for room on a full stream.
    waiting: AtomicUsize,
    /// In a cluster, what the store must hold before a client sees it (see
    /// [`crate::journal`]); a single node has none.
    journal: OnceLock<Arc<Journal>>,
    me: Weak<Session>,
}

impl Session {
    /// A new session, and the receiving end of its inbound channel for the MCP server.
    pub fn new(
        id: SessionId,
        kind: SessionKind,
        owner: Option<Identity>,
        limits: SessionLimits,
    ) -> (Arc<Self>, mpsc::Receiver<Box<ClientJsonRpcMessage>>) {
        let (inbound, rx) = mpsc::channel(limits.inbound.max(1));
        let session = Arc::new_cyclic(|me| Self {
            id,
            kind,
            inbound,
            routes: Mutex::new(Routes::new(
                Some(id),
                limits.stream,
                limits.backlog,
                EventLog::new(limits.log_events, limits.log_bytes),
            )),
            ended: CancellationToken::new(),
            limits,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            event_prefix: event_prefix(id, kind),
            owner,
            waiting: AtomicUsize::new(0),
            journal: OnceLock::new(),
            me: me.clone(),
        });
        (session, rx)
    }

    /// Journals everything this session sends with an event id from now on, and every
    /// request answered on an event stream (cluster mode); set before the session's server
    /// starts, once.
    pub fn journal_to(&self, journal: Arc<Journal>) {
        if self.journal.set(journal.clone()).is_ok() {
            self.routes().journal_to(journal);
        }
    }

    /// Carries on a session another instance held, with what the store kept of it (see
    /// [`Routes::continue_from`]).
    pub fn continue_from(&self, version: Option<ProtocolVersion>, base: Continuation, history: History) {
        self.routes().continue_from(version, base, history);
    }

    /// A gate that holds a stream's frames back until the journal holds them; `None`
    /// without a journal.
    pub(crate) fn gate(&self) -> Option<Gate> {
        self.journal.get().map(|j| j.gate())
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The transport it was created on.
    pub fn kind(&self) -> SessionKind {
        self.kind
    }

    /// The caller that created it, when authentication is on.
    pub fn owner(&self) -> Option<&Identity> {
        self.owner.as_ref()
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
        self.routes().version()
    }

    /// Records client activity now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last client request, or zero while a stream is open or a request
    /// is in flight: a session a client is still listening to is never idle.
    pub fn idle_for(&self) -> Duration {
        if self.routes().is_busy() {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Whether an open stream or a request waiting for its answer keeps the session busy.
    #[cfg(test)]
    pub(crate) fn is_busy(&self) -> bool {
        self.routes().is_busy()
    }

    /// How many client requests are still waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.routes().in_flight()
    }

    /// Tells every open event stream how long to wait before reconnecting (sent at
    /// shutdown, so clients come back to the next instance promptly, not in a tight loop).
    pub fn hint_retry(&self, after: Duration) {
        let frame = Outgoing::Control(Bytes::from(format!(": shutting down\nretry: {}\n\n", after.as_millis())));
        let routes = self.routes();
        for tx in routes.streams() {
            let _ = tx.try_send(frame.clone());
        }
    }

    /// Ends the session: the MCP server stops and every open stream closes.
    pub fn end(&self) {
        self.ended.cancel();
        self.routes().clear();
    }

    /// Hands a client message to the session's MCP server, waiting while its queue is full.
    /// The message is booked (a request as unanswered, in a cluster as pending) only once
    /// there is room, in the same step as it is queued: dropped while it waits (its client
    /// went away), nothing is left booked that no answer would ever clear.
    pub async fn send(&self, message: ClientJsonRpcMessage) -> Result<(), Closed> {
        if self.is_ended() {
            return Err(Closed);
        }
        let room = tokio::select! {
            room = self.inbound.reserve() => room.map_err(|_| Closed)?,
            () = self.ended.cancelled() => return Err(Closed),
        };
        let mut accepted = None;
        match &message {
            JsonRpcMessage::Request(r) => {
                let mut routes = self.routes();
                routes.request_sent(r.id.clone());
                // A legacy request's answer comes on the event stream: in a cluster it is
                // pending in the store before the POST is acknowledged.
                if self.kind == SessionKind::Legacy {
                    accepted = routes.pending_on_standalone(&r.id);
                }
            }
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                {
                    self.routes().request_cancelled(id);
                }
            }
            _ => {}
        }
        room.send(Box::new(message));
        if let Some(seq) = accepted
            && let Some(mut gate) = self.gate()
        {
            // Stored, or not storable (the store is down, or the session was lost): either
            // way the request was handed on, and its answer goes where the session's go.
            std::future::poll_fn(|cx| gate.poll_written(seq, cx)).await;
        }
        Ok(())
    }

    /// The prefix of this session's event ids.
    pub fn event_prefix(&self) -> &Arc<str> {
        &self.event_prefix
    }

    /// Opens the standalone stream, replacing (and so closing) any earlier one, and moves
    /// the backlog onto it. Also returns the id to prime it with: resuming from it replays
    /// what is sent from now on.
    pub fn open_standalone(&self) -> (mpsc::Receiver<Outgoing>, EventId) {
        self.routes().open_standalone(!self.is_ended())
    }

    /// Resumes a stream after the event `last_event_id` (a `Last-Event-ID` header): replays
    /// the logged events of that stream that came after it, then carries on with what is
    /// still to come on it (the standalone stream's messages, or the answers to a POST's
    /// requests). An id of another session or of a stream this session never had is
    /// refused, and nothing is replayed. Also returns the id, parsed: the stream's priming
    /// event repeats it.
    pub fn resume(&self, last_event_id: &str) -> Result<(mpsc::Receiver<Outgoing>, EventId), ResumeError> {
        let (prefix, last) = EventId::parse(last_event_id)?;
        if prefix != &*self.event_prefix {
            return Err(ResumeError::Foreign);
        }
        Ok((self.routes().resume(last, !self.is_ended())?, last))
    }

    /// Forgets the standalone stream if `rx` belongs to it (its body was dropped).
    pub fn close_standalone_if_current(&self, closed: &mpsc::WeakSender<Outgoing>) {
        self.routes().close_standalone_if_current(closed);
    }

    /// Whether a standalone stream is open.
    pub fn has_standalone(&self) -> bool {
        self.routes().has_standalone()
    }

    /// A weak handle on the current standalone stream, to recognise it when it closes.
    pub fn standalone_handle(&self) -> Option<mpsc::WeakSender<Outgoing>> {
        self.routes().standalone_handle()
    }

    /// Opens a stream for the responses to these requests (one POST). The stream ends once
    /// every one of them has been answered. Also returns the id to prime it with: resuming
    /// from it replays the whole stream.
    pub fn open_post(
        &self,
        requests: impl IntoIterator<Item = (RequestId, Option<ProgressToken>)>,
        reply: PostReply,
    ) -> (mpsc::Receiver<Outgoing>, EventId) {
        self.routes().open_post(requests, reply, !self.is_ended())
    }

    /// Puts a message on the standalone stream, or in the backlog while none is open.
    pub fn to_standalone(&self, out: Outgoing) {
        self.routes().to_standalone(out);
    }

    /// Forgets a request the client cancelled: no response will come, so its stream ends.
    pub fn forget_request(&self, id: &RequestId) {
        self.routes().forget_request(id);
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
            let sent = tokio::time::timeout(stall, async {
                // In a cluster, the frames held for the store before this one go first.
                if let (Outgoing::Message { event: Some(event), .. }, Some(mut gate)) = (&out, session.gate()) {
                    std::future::poll_fn(|cx| gate.poll_written(event.seq, cx)).await;
                }
                tx.send(out).await
            })
            .await;
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
        let post = self.routes().close_stalled(stalled);
        tracing::warn!(session = %self.id, post, "a client is not reading its event stream; closed it (it can resume with Last-Event-ID)");
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
        match self.routes().route(&message, json) {
            Routed::Done => None,
            Routed::Full(tx, out) => Some((tx, out)),
            Routed::Orphaned => {
                tracing::debug!(session = %self.id, "the client left before its response was ready");
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

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, NumberOrString, ProgressNotificationParam, ServerNotification, ServerResult};

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
        let mut rx = s.open_post([(RequestId::Number(1), None)], PostReply::Either).0;
        s.deliver(response(1)).await.expect("delivered");
        let out = rx.recv().await.expect("a message");
        assert!(out.is_response());
        assert!(rx.recv().await.is_none(), "the stream ends after its response");
    }

    #[tokio::test]
    async fn a_legacy_request_whose_post_is_dropped_while_the_queue_is_full_is_not_booked() {
        let limits = SessionLimits { inbound: 1, ..SessionLimits::default() };
        // The server reads nothing: the first request fills its queue.
        let (s, _inbound) = Session::new(SessionId::random(), SessionKind::Legacy, None, limits);
        let ping = |id: i64| {
            ClientJsonRpcMessage::request(
                rmcp::model::ClientRequest::PingRequest(Default::default()),
                RequestId::Number(id),
            )
        };
        s.send(ping(1)).await.expect("queued");
        {
            let mut second = Box::pin(s.send(ping(2)));
            let polled = second.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            assert!(polled.is_pending(), "request 2 waits for room");
        }
        assert_eq!(s.in_flight(), 1, "request 2 never reached the server: nothing waits for its answer");
    }

    #[tokio::test]
    async fn progress_follows_its_token_and_the_rest_goes_standalone() {
        let s = new_session();
        let token = ProgressToken(NumberOrString::String("t".into()));
        let mut post = s.open_post([(RequestId::Number(7), Some(token))], PostReply::Either).0;
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
        let mut post = s.open_post([(RequestId::Number(1), None)], PostReply::Either).0;
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
        // The server side reads nothing: only the bookkeeping is under test.
        let (s, _inbound) = Session::new(SessionId::random(), SessionKind::Streamable, None, SessionLimits::default());
        let _rx = s.open_post([(RequestId::Number(1), None), (RequestId::Number(2), None)], PostReply::Either).0;
        for id in [1, 2] {
            let ping =
                JsonRpcMessage::request(ClientRequest::PingRequest(PingRequest::default()), RequestId::Number(id));
            s.send(ping).await.expect("queued");
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
        let mut post = s.open_post([(RequestId::Number(1), None)], PostReply::Either).0;
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
        let (post, priming) = s.open_post([(RequestId::Number(5), Some(token))], PostReply::Either);
        let prefix = s.event_prefix().clone();
        s.deliver(progress("t")).await.expect("delivered");
        drop(post);
        s.deliver(progress("t")).await.expect("logged while no one listens");
        let (mut resumed, _) = s.resume(&priming.format(&prefix)).expect("resumable");
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
        let (_post, priming) = other.open_post([(RequestId::Number(1), None)], PostReply::Either);
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
        let (mut again, _) = s.resume(&seen.format(&prefix)).expect("resumable");
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
        let (backlog, log) = s.routes().held();
        assert!(backlog <= 8 && log <= 16);
        drop(never_read);
    }

    #[tokio::test]
    async fn forgotten_request_ends_its_stream() {
        let s = new_session();
        let mut post = s.open_post([(RequestId::Number(3), None)], PostReply::Either).0;
        s.forget_request(&RequestId::Number(3));
        assert!(post.recv().await.is_none());
    }

    fn journaled() -> (Arc<Session>, Arc<Journal>) {
        let s = new_session();
        let journal = Arc::new(Journal::new(0));
        s.journal_to(journal.clone());
        (s, journal)
    }

    #[tokio::test]
    async fn a_json_answer_is_not_journaled_and_an_event_stream_is_pending_then_answered() {
        use crate::journal::JournalEntry;
        let (s, journal) = journaled();
        let mut json = s.open_post([(RequestId::Number(1), None)], PostReply::Either).0;
        s.deliver(response(1)).await.expect("delivered");
        let Some(Outgoing::Message { event: None, .. }) = json.recv().await else { panic!("an answer without an id") };

        let token = ProgressToken(NumberOrString::String("t".into()));
        let (mut stream, _) = s.open_post([(RequestId::Number(2), Some(token))], PostReply::Either);
        s.deliver(progress("t")).await.expect("delivered");
        s.deliver(response(2)).await.expect("delivered");
        let (batch, through) = journal.next_batch().await;
        let [
            JournalEntry::Pending { stream: pending_on, requests },
            JournalEntry::Event { id: first, answers: None, .. },
            JournalEntry::Event { id: last, answers: Some(answered), .. },
        ] = &batch[..]
        else {
            panic!("a pending note, the progress, the answer: {batch:?}")
        };
        assert_eq!((requests.as_slice(), answered), (&[RequestId::Number(2)][..], &RequestId::Number(2)));
        assert!(first.stream == *pending_on && last.stream == *pending_on && first.seq < last.seq);
        assert_eq!(through, last.seq);
        assert!(stream.try_recv().is_err(), "nothing on the stream before the store holds it");
        journal.written_through(through);
        for _ in 0..2 {
            assert!(matches!(stream.recv().await, Some(Outgoing::Message { event: Some(_), .. })));
        }
    }

    #[tokio::test]
    async fn a_frame_goes_to_its_stream_once_the_store_holds_it_in_order_and_never_once_lost() {
        let (s, journal) = journaled();
        let token = ProgressToken(NumberOrString::String("t".into()));
        let (mut stream, _) = s.open_post([(RequestId::Number(1), Some(token))], PostReply::Stream);
        for _ in 0..3 {
            s.deliver(progress("t")).await.expect("delivered");
        }
        let (batch, through) = journal.next_batch().await;
        let seqs: Vec<u64> = batch
            .iter()
            .filter_map(|e| match e {
                crate::journal::JournalEntry::Event { id, .. } => Some(id.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs.len(), 3);
        assert!(stream.try_recv().is_err(), "held until stored");
        journal.written_through(seqs[1]);
        let got = |o: Option<Outgoing>| match o {
            Some(Outgoing::Message { event: Some(e), .. }) => e.seq,
            other => panic!("a message with an event id: {other:?}"),
        };
        assert_eq!(got(stream.recv().await), seqs[0]);
        assert_eq!(got(stream.recv().await), seqs[1]);
        assert!(stream.try_recv().is_err(), "the third is not stored yet");
        journal.written_through(through);
        assert_eq!(got(stream.recv().await), seqs[2]);

        // Lost to another instance: what was held is never sent.
        s.deliver(progress("t")).await.expect("delivered");
        journal.lose();
        assert!(stream.try_recv().is_err(), "nothing of a lost session reaches its client");
    }

    #[tokio::test]
    async fn a_session_taken_over_answers_the_calls_left_pending_on_their_streams() {
        use crate::journal::JournalEntry;
        use crate::routes::{Continuation, History, LOST_CALL};
        let (s, journal) = journaled();
        let old = EventId { stream: 3, seq: 7 };
        let history = History {
            events: vec![
                (old, Bytes::from_static(b"{\"old\":1}")),
                (EventId { stream: 3, seq: 8 }, Bytes::from_static(b"{}")),
            ],
            pending: vec![(RequestId::Number(9), 3)],
        };
        s.continue_from(None, Continuation::after_epoch(1), history);
        let (mut resumed, _) = s.resume(&old.format(s.event_prefix())).expect("an old id resumes");
        let replayed = resumed.recv().await.expect("the event after it");
        assert_eq!(replayed.json().map(|j| &j[..]), Some(&b"{}"[..]));
        let error: serde_json::Value =
            serde_json::from_slice(resumed.recv().await.expect("the lost call's answer").json().expect("json"))
                .expect("JSON");
        assert_eq!((error["id"].as_i64(), error["error"]["code"].as_i64()), (Some(9), Some(-32603)));
        assert_eq!(error["error"]["message"], LOST_CALL);
        assert!(resumed.recv().await.is_none(), "nothing else will come on that stream");
        let (batch, _) = journal.next_batch().await;
        assert!(
            matches!(&batch[..], [JournalEntry::Event { id, answers: Some(RequestId::Number(9)), .. }] if id.stream == 3),
            "the answer is journaled, so no later holder answers it again: {batch:?}"
        );
    }
}
