//! [`Routes`]: the routing table of one client's streams, and the rules that pick, for each
//! message the MCP server sends, the stream it goes on.
//!
//! Rules (Streamable HTTP): a response goes to the POST stream that carried its request,
//! which then ends; a progress notification goes to the stream of the request that owns its
//! token; a server→client request made while handling a request (rmcp marks it with
//! `OriginatingRequestId`) goes on that request's stream; everything else goes to the
//! standalone stream. Legacy HTTP+SSE has only the standalone stream. A message for a
//! stream that is not open waits in a small bounded backlog until one opens.
//!
//! The table is plain data with no lock and no session: a [`crate::Session`] keeps one
//! behind its mutex, and a request that has no session can route with a table of its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use rmcp::model::{
    ErrorCode, ErrorData, GetExtensions, JsonRpcMessage, ProgressToken, RequestId, ServerJsonRpcMessage,
    ServerNotification, ServerResult,
};
use rmcp::service::OriginatingRequestId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::event_log::{EventId, EventLog, ResumeError};
use crate::journal::{Journal, JournalEntry};
use crate::outgoing::Outgoing;
use crate::session_id::SessionId;
use crate::version::ProtocolVersion;

/// The standalone stream's number.
pub const STANDALONE: u32 = 0;

/// The open streams of one client and what is kept for those not open.
#[derive(Debug)]
pub struct Routes {
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
    /// Room in each stream's queue.
    stream_queue: usize,
    /// Room in the backlog.
    backlog_cap: usize,
    /// The session the streams belong to, if any, for logs.
    session: Option<SessionId>,
    /// In a cluster, what the store must hold before a client sees it.
    journal: Option<Arc<Journal>>,
}

#[derive(Debug)]
struct PostRoute {
    tx: mpsc::Sender<Outgoing>,
    stream: u32,
    progress: Option<ProgressToken>,
    reply: PostReply,
}

/// How a POST's answers reach its client, which decides what its messages are given ids
/// for and journaled as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostReply {
    /// An event stream from the start.
    Stream,
    /// One request, the client taking either: JSON when its answer comes first, else an
    /// event stream from the first other message on.
    Either,
    /// JSON only: what is not an answer goes to the standalone stream.
    Json,
}

/// What the client of a call that was running on an instance that was lost is told, on the
/// stream its answer would have come on. The call is never run again: tools are not
/// idempotent.
pub const LOST_CALL: &str = "the gateway instance serving this request was lost; it may or may not have run";

/// What a session taken over from another instance brings along from the store.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The events its holders journaled, oldest first.
    pub events: Vec<(EventId, Bytes)>,
    /// Requests that were still waiting for their answers, with the streams those would
    /// have come on.
    pub pending: Vec<(RequestId, u32)>,
}

/// The POST stream a message goes on.
struct Target {
    tx: mpsc::Sender<Outgoing>,
    stream: u32,
    reply: PostReply,
}

/// The request a response or error answers.
fn answered(message: &ServerJsonRpcMessage) -> Option<RequestId> {
    match message {
        JsonRpcMessage::Response(r) => Some(r.id.clone()),
        JsonRpcMessage::Error(e) => e.id.clone(),
        _ => None,
    }
}

/// Where [`Routes::route`] put a message.
#[derive(Debug)]
pub enum Routed {
    /// On its stream, or kept for the next one.
    Done,
    /// Its stream's queue is full: the caller waits for room on it (or gives up on it).
    Full(mpsc::Sender<Outgoing>, Outgoing),
    /// It answered a request whose client had left its stream; it is only in the log.
    Orphaned,
}

/// Where a session taken over from another instance starts numbering its streams and
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    /// The first stream number.
    pub stream: u32,
    /// The last sequence number taken.
    pub seq: u64,
}

impl Continuation {
    /// The start of a holder of generation `epoch`: each generation has room for 2^16
    /// streams and 2^40 events above the one before.
    pub fn after_epoch(epoch: u64) -> Self {
        let epoch16 = u32::try_from(epoch.min(u64::from(u16::MAX))).unwrap_or(u32::from(u16::MAX));
        Self { stream: epoch16 << 16, seq: epoch.min(1 << 23) << 40 }
    }
}

impl Routes {
    /// An empty table (of `session`'s streams, if any): streams of `stream_queue` messages,
    /// a backlog of `backlog_cap`, and `log` for resumption.
    pub fn new(session: Option<SessionId>, stream_queue: usize, backlog_cap: usize, log: EventLog) -> Self {
        Self {
            posts: HashMap::new(),
            progress: HashMap::new(),
            standalone: None,
            backlog: VecDeque::new(),
            version: None,
            pending: HashSet::new(),
            next_stream: 1,
            last_seq: 0,
            log,
            stream_queue: stream_queue.max(1),
            backlog_cap,
            session,
            journal: None,
        }
    }

    /// Journals what goes to clients from now on (cluster mode).
    pub fn journal_to(&mut self, journal: Arc<Journal>) {
        self.journal = Some(journal);
    }

    /// Carries on a session another instance held: the version it agreed on, and stream
    /// numbers and event sequence numbers from `base` up (`base` is above any the earlier
    /// holders used), so event ids stay unique and increasing and the client's last ids
    /// are ids of this session's past.
    ///
    /// The events of `history` go in the log, for clients to resume from; each request of
    /// `history` still waiting for its answer gets the error [`LOST_CALL`] on the stream
    /// its answer would have come on (journaled too, so another takeover does not answer it
    /// twice).
    pub fn continue_from(&mut self, version: Option<ProtocolVersion>, base: Continuation, history: History) {
        self.version = version;
        self.next_stream = base.stream.max(1);
        self.last_seq = base.seq;
        for (id, json) in history.events {
            self.log.push(id, json);
        }
        for (request, stream) in history.pending {
            let error = ErrorData::new(ErrorCode::INTERNAL_ERROR, LOST_CALL, None);
            let message = ServerJsonRpcMessage::error(error, Some(request.clone()));
            let Ok(json) = serde_json::to_vec(&message) else { continue };
            let json = Bytes::from(json);
            self.last_seq += 1;
            let event = EventId { stream, seq: self.last_seq };
            self.log.push(event, json.clone());
            if let Some(journal) = &self.journal {
                let entry = JournalEntry::Event { id: event, json: json.clone(), answers: Some(request) };
                journal.push(entry, event.seq);
            }
            if stream == STANDALONE {
                self.keep(Outgoing::Message { json, response: true, event: Some(event) });
            }
        }
    }

    /// The protocol version negotiated at initialize, once the server has answered it.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Whether a stream is open (so the client is listening) or a POST is waiting.
    pub fn is_busy(&self) -> bool {
        self.standalone.as_ref().is_some_and(|tx| !tx.is_closed()) || !self.posts.is_empty()
    }

    /// How many client requests are still waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Notes a client request on its way to the server.
    pub fn request_sent(&mut self, id: RequestId) {
        self.pending.insert(id);
    }

    /// Notes a client's cancellation of request `id`: no answer will come to it.
    pub fn request_cancelled(&mut self, id: &RequestId) {
        self.pending.remove(id);
        self.journal_forgotten(id);
    }

    /// In a cluster, notes that the answer to request `id` will come on the standalone
    /// stream (a legacy session's requests); returns the number the store must reach before
    /// the request counts as accepted.
    pub fn pending_on_standalone(&mut self, id: &RequestId) -> Option<u64> {
        let journal = self.journal.as_ref()?;
        self.last_seq += 1;
        journal.push(JournalEntry::Pending { stream: STANDALONE, requests: vec![id.clone()] }, self.last_seq);
        Some(self.last_seq)
    }

    fn journal_forgotten(&self, id: &RequestId) {
        if let Some(journal) = &self.journal {
            journal.push(JournalEntry::Forgotten(id.clone()), self.last_seq);
        }
    }

    /// Every open stream.
    pub fn streams(&self) -> impl Iterator<Item = &mpsc::Sender<Outgoing>> {
        self.standalone.iter().chain(self.posts.values().map(|p| &p.tx))
    }

    /// Forgets everything: every stream closes.
    pub fn clear(&mut self) {
        self.posts.clear();
        self.progress.clear();
        self.standalone = None;
        self.backlog.clear();
        self.pending.clear();
        self.log.clear();
    }

    /// Opens the standalone stream, replacing (and so closing) any earlier one, and moves
    /// the backlog onto it; when `keep` is false (the session has ended) the stream is
    /// returned but not kept. Also returns the id to prime it with.
    pub fn open_standalone(&mut self, keep: bool) -> (mpsc::Receiver<Outgoing>, EventId) {
        let (tx, rx) = mpsc::channel(self.stream_queue);
        let priming = EventId { stream: STANDALONE, seq: self.last_seq };
        while let Some(out) = self.backlog.pop_front() {
            if let Err(e) = tx.try_send(out) {
                self.backlog.push_front(e.into_inner());
                break;
            }
        }
        if keep {
            self.standalone = Some(tx);
        }
        (rx, priming)
    }

    /// Opens a stream for the answers to these requests (one POST); when `keep` is false
    /// nothing is recorded. Also returns the id to prime it with.
    ///
    /// In a cluster, the requests of a POST answered on an event stream from the start are
    /// journaled as pending now, and the priming id is that note's number, so a stream
    /// primed with it waits until the store holds the note.
    pub fn open_post(
        &mut self,
        requests: impl IntoIterator<Item = (RequestId, Option<ProgressToken>)>,
        reply: PostReply,
        keep: bool,
    ) -> (mpsc::Receiver<Outgoing>, EventId) {
        let (tx, rx) = mpsc::channel(self.stream_queue);
        let stream = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(1).max(1);
        if !keep {
            return (rx, EventId { stream, seq: self.last_seq });
        }
        let mut ids = Vec::new();
        for (id, progress) in requests {
            if let Some(token) = &progress {
                self.progress.insert(token.clone(), id.clone());
            }
            if self.journal.is_some() {
                ids.push(id.clone());
            }
            self.posts.insert(id, PostRoute { tx: tx.clone(), stream, progress, reply });
        }
        if let Some(journal) = &self.journal
            && reply == PostReply::Stream
        {
            self.last_seq += 1;
            journal.push(JournalEntry::Pending { stream, requests: ids }, self.last_seq);
        }
        (rx, EventId { stream, seq: self.last_seq })
    }

    /// Replays the logged events of `last`'s stream that came after it and, when `keep`,
    /// makes the returned stream take over what is still to come on that stream. An event
    /// of a stream never opened, or from the future, is refused.
    pub fn resume(&mut self, last: EventId, keep: bool) -> Result<mpsc::Receiver<Outgoing>, ResumeError> {
        if last.stream >= self.next_stream || last.seq > self.last_seq {
            return Err(ResumeError::Foreign);
        }
        let replay = self.log.after(last.stream, last.seq);
        let (tx, rx) = mpsc::channel(self.stream_queue.max(replay.len() + 1));
        for (event, json) in replay {
            // Room for every replayed event was made above.
            let _ = tx.try_send(Outgoing::Message { json, response: false, event: Some(event) });
        }
        if !keep {
            return Ok(rx);
        }
        if last.stream == STANDALONE {
            // Everything the backlog held is in the log too, and was just replayed.
            self.backlog.clear();
            self.standalone = Some(tx);
        } else {
            for route in self.posts.values_mut().filter(|r| r.stream == last.stream) {
                route.tx = tx.clone();
            }
        }
        Ok(rx)
    }

    /// Forgets the standalone stream if `closed` is it.
    pub fn close_standalone_if_current(&mut self, closed: &mpsc::WeakSender<Outgoing>) {
        let current = self.standalone.as_ref().is_some_and(|tx| closed.upgrade().is_some_and(|c| c.same_channel(tx)));
        if current {
            self.standalone = None;
        }
    }

    /// Whether a standalone stream is open.
    pub fn has_standalone(&self) -> bool {
        self.standalone.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// A weak handle on the current standalone stream, to recognise it when it closes.
    pub fn standalone_handle(&self) -> Option<mpsc::WeakSender<Outgoing>> {
        self.standalone.as_ref().map(mpsc::Sender::downgrade)
    }

    /// Puts a message on the standalone stream, or in the backlog while none is open.
    pub fn to_standalone(&mut self, out: Outgoing) {
        let out = match &self.standalone {
            Some(tx) => match tx.try_send(out) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => out,
        };
        self.keep(out);
    }

    /// Forgets a request: no answer will come (the client cancelled it), so its stream
    /// ends once it carries nothing else.
    pub fn forget_request(&mut self, id: &RequestId) {
        self.pending.remove(id);
        self.journal_forgotten(id);
        if let Some(route) = self.posts.remove(id)
            && let Some(token) = route.progress
        {
            self.progress.remove(&token);
        }
    }

    /// Closes `stalled` (a stream whose client stopped reading); returns whether it was a
    /// POST stream. Later messages for it go to the log (and, for the standalone stream,
    /// the backlog) until the client resumes.
    pub fn close_stalled(&mut self, stalled: &mpsc::Sender<Outgoing>) -> bool {
        if self.standalone.as_ref().is_some_and(|tx| tx.same_channel(stalled)) {
            self.standalone = None;
        }
        let mut post = false;
        for route in self.posts.values_mut().filter(|r| r.tx.same_channel(stalled)) {
            // A sender whose receiver is gone: sends to it fail at once.
            route.tx = mpsc::channel(1).0;
            post = true;
        }
        post
    }

    /// Logs `message` (serialized as `json`) and enqueues it where it belongs.
    ///
    /// In a cluster it is journaled too, unless it is a response that goes back as JSON:
    /// such a response gets no event id (none is ever sent) and is not logged.
    pub fn route(&mut self, message: &ServerJsonRpcMessage, json: Bytes) -> Routed {
        let (target, response) = match message {
            JsonRpcMessage::Response(r) => {
                if let ServerResult::InitializeResult(init) = &r.result {
                    // Parsed once, here; a version the server chose is one rmcp knows, and
                    // one mcpgw does not know yet gets neither batches nor priming.
                    self.version = init.protocol_version.as_str().parse().ok();
                }
                self.pending.remove(&r.id);
                (self.take_post(&r.id), true)
            }
            JsonRpcMessage::Error(e) => {
                if let Some(id) = &e.id {
                    self.pending.remove(id);
                }
                (e.id.as_ref().and_then(|id| self.take_post(id)), true)
            }
            JsonRpcMessage::Notification(n) => {
                let owner = match &n.notification {
                    ServerNotification::ProgressNotification(p) => self.progress.get(&p.params.progress_token).cloned(),
                    // A notification tied to a request (an upstream's log line during a call)
                    // rides that request's stream.
                    other => other.extensions().get::<OriginatingRequestId>().map(|o| o.0.clone()),
                };
                (owner.and_then(|id| self.post_of(&id)), false)
            }
            JsonRpcMessage::Request(r) => {
                let origin = r.request.extensions().get::<OriginatingRequestId>().map(|o| o.0.clone());
                (origin.and_then(|id| self.post_of(&id)), false)
            }
        };
        let (target, stream) = match target {
            // A client that takes only JSON gets the rest on its standalone stream, with
            // that stream's ids.
            Some(post) if post.reply == PostReply::Json && !response => (self.standalone.clone(), STANDALONE),
            Some(post) => {
                if let Some(journal) = &self.journal {
                    match (post.reply, response) {
                        // The answer alone, as JSON: nothing to resume, nothing to journal.
                        (PostReply::Json | PostReply::Either, true) => {
                            let out = Outgoing::Message { json, response, event: None };
                            return self.send(Some(post.tx), out);
                        }
                        // The first message before the answer: the reply becomes an event
                        // stream, and its request is pending from now on.
                        (PostReply::Either, false) => {
                            self.last_seq += 1;
                            let requests: Vec<RequestId> = self
                                .posts
                                .iter_mut()
                                .filter(|(_, r)| r.stream == post.stream)
                                .map(|(id, r)| {
                                    r.reply = PostReply::Stream;
                                    id.clone()
                                })
                                .collect();
                            journal.push(JournalEntry::Pending { stream: post.stream, requests }, self.last_seq);
                        }
                        _ => {}
                    }
                }
                (Some(post.tx), post.stream)
            }
            None => (self.standalone.clone(), STANDALONE),
        };
        self.last_seq += 1;
        let event = EventId { stream, seq: self.last_seq };
        self.log.push(event, json.clone());
        let out = Outgoing::Message { json: json.clone(), response, event: Some(event) };
        let Some(journal) = self.journal.clone() else {
            return self.send(target, out);
        };
        let answers = if response { answered(message) } else { None };
        journal.push(JournalEntry::Event { id: event, json, answers }, event.seq);
        // Room is taken on the stream now, so the order of its frames is kept; the frame
        // goes in once the store holds its event.
        match target.map(mpsc::Sender::try_reserve_owned) {
            Some(Ok(room)) => {
                journal.hold(event.seq, room, out);
                Routed::Done
            }
            Some(Err(TrySendError::Full(tx))) => Routed::Full(tx, out),
            Some(Err(TrySendError::Closed(tx))) => self.send(Some(tx), out),
            None => self.send(None, out),
        }
    }

    /// Enqueues `out` on `target` (the standalone stream's backlog when there is none).
    fn send(&mut self, target: Option<mpsc::Sender<Outgoing>>, out: Outgoing) -> Routed {
        let Some(tx) = target else {
            self.keep(out);
            return Routed::Done;
        };
        match tx.try_send(out) {
            Ok(()) => Routed::Done,
            Err(TrySendError::Full(out)) => Routed::Full(tx, out),
            // The client went away from this stream. A response is in the log, to resume
            // from; what belongs to no request is kept for the next standalone stream.
            Err(TrySendError::Closed(out)) if out.is_response() => Routed::Orphaned,
            Err(TrySendError::Closed(out)) => {
                self.standalone = None;
                self.keep(out);
                Routed::Done
            }
        }
    }

    /// The stream of the POST waiting on request `id`.
    fn post_of(&self, id: &RequestId) -> Option<Target> {
        self.posts.get(id).map(|p| Target { tx: p.tx.clone(), stream: p.stream, reply: p.reply })
    }

    /// Removes the route of an answered request, and its progress token.
    fn take_post(&mut self, id: &RequestId) -> Option<Target> {
        let route = self.posts.remove(id)?;
        if let Some(token) = route.progress {
            self.progress.remove(&token);
        }
        Some(Target { tx: route.tx, stream: route.stream, reply: route.reply })
    }

    fn keep(&mut self, out: Outgoing) {
        if self.backlog.len() >= self.backlog_cap {
            self.backlog.pop_front();
            tracing::warn!(session = ?self.session, "backlog full: dropped the oldest message for a stream that is not open");
        }
        self.backlog.push_back(out);
    }

    /// How much is held for streams that are not open: (backlog, log) entries.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.backlog.len(), self.log.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, InitializeResult, ServerCapabilities};

    fn routes() -> Routes {
        Routes::new(None, 4, 4, EventLog::new(16, 1 << 16))
    }

    fn routed(routes: &mut Routes, message: ServerJsonRpcMessage) -> Routed {
        let json = Bytes::from(serde_json::to_vec(&message).expect("serializable"));
        routes.route(&message, json)
    }

    #[tokio::test]
    async fn a_table_with_no_session_routes_answers_to_their_post_and_the_rest_aside() {
        let mut routes = routes();
        let (mut post, _) = routes.open_post([(RequestId::Number(1), None)], PostReply::Either, true);
        let init = InitializeResult::new(ServerCapabilities::default())
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_03_26);
        let answer = JsonRpcMessage::response(ServerResult::InitializeResult(init), RequestId::Number(1));
        assert!(matches!(routed(&mut routes, answer), Routed::Done));
        assert!(post.recv().await.expect("the answer").is_response());
        assert!(post.recv().await.is_none(), "the POST stream ends after its answer");
        assert_eq!(routes.version(), Some(ProtocolVersion::V2025_03_26), "parsed once, typed");
        let stray = JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), RequestId::Number(9));
        assert!(matches!(routed(&mut routes, stray), Routed::Done));
        let (mut standalone, _) = routes.open_standalone(true);
        assert!(standalone.recv().await.expect("kept in the backlog").is_response());
    }
}
