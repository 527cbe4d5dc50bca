//! Streamable HTTP (specs 2025-03-26, 2025-06-18, 2025-11-25) on one endpoint:
//! `POST` carries client messages, `GET` opens the standalone stream, `DELETE` ends the
//! session. A POST without a session that is a stateless 2026-07-28 request goes to
//! [`crate::modern`] instead.
//!
//! The reply to a POST is chosen from the client's `Accept`. When both JSON and SSE are
//! allowed the choice waits for the first message: a response that comes alone is sent as
//! `application/json` (the cheapest), and anything sent before it (progress, a sampling
//! request) opens an event stream instead. In a cluster, where every event waits for the
//! store before it is written, a POST's event stream holds its head back (briefly) until its
//! first event is stored, so the head does not go out alone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, JsonRpcMessage, ProgressToken, RequestId,
};
use tokio::sync::mpsc;

use crate::auth::Identity;
use crate::body::{Body, SseStream};
use crate::checks::{self, Accepts, LAST_EVENT_ID, MCP_SESSION_ID};
use crate::edge::{Edge, Sessions, json_response, sse_response, status_only};
use crate::error::Error;
use crate::event_log::{EventId, ResumeError};
use crate::journal::Gate;
use crate::legacy;
use crate::message::{self, Posted};
use crate::modern;
use crate::outgoing::Outgoing;
use crate::routes::PostReply;
use crate::session::{Session, SessionKind};
use crate::version::ProtocolVersion;

pub(crate) async fn handle<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    body: &[u8],
    owner: Option<Identity>,
) -> Result<Response<Body>, Error> {
    match parts.method {
        Method::POST => post(edge, parts, body, owner).await,
        Method::GET => get(edge, parts, owner).await,
        Method::DELETE => delete(edge, parts, owner).await,
        _ => Err(Error::MethodNotAllowed("GET, POST, DELETE, OPTIONS")),
    }
}

/// The session named by `Mcp-Session-Id`: `None` when the header is absent; an id that is
/// malformed, unknown, ended or of the legacy kind is 404.
async fn session_header<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    owner: Option<&Identity>,
) -> Result<Option<Arc<Session>>, Error> {
    let Some(value) = parts.headers.get(&MCP_SESSION_ID) else { return Ok(None) };
    let id = value.to_str().ok().and_then(|v| v.trim().parse().ok()).ok_or(Error::SessionNotFound)?;
    edge.live_session(id, SessionKind::Streamable, owner).await.map(Some)
}

async fn post<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    body: &[u8],
    owner: Option<Identity>,
) -> Result<Response<Body>, Error> {
    let accepts = checks::accepts(&parts.headers);
    if !accepts.json && !accepts.sse {
        return Err(Error::NotAcceptable("Accept must allow application/json or text/event-stream"));
    }
    checks::require_json_content_type(&parts.headers)?;
    // An unknown session is answered before the body is parsed: whatever it holds, the
    // client must start over.
    let session = session_header(edge, parts, owner.as_ref()).await?;
    let posted = match message::parse(body) {
        Err(Error::InvalidParams { method, .. })
            if session.is_none()
                && edge.config.stateless
                && let Some(refusal) = modern::removed_method(&parts.headers, &method) =>
        {
            return Err(refusal);
        }
        parsed => parsed?,
    };
    // Without a session, the body (or the header) tells a stateless 2026-07-28 request
    // from the start of a session, before the header is held to the session versions.
    if session.is_none() && edge.config.stateless && modern::claims(&parts.headers, &posted) {
        return modern::post(edge, parts, posted, accepts, owner).await;
    }
    let version = checks::protocol_version(&parts.headers)?;
    match &posted {
        Posted::Single(m) => edge.sessions.observe(SessionKind::Streamable, message::method_label(m)),
        Posted::Batch(b) => {
            b.iter().for_each(|m| edge.sessions.observe(SessionKind::Streamable, message::method_label(m)))
        }
    }
    if session.is_some() {
        let requests: Vec<&ClientJsonRpcMessage> = match &posted {
            Posted::Single(m) => vec![m],
            Posted::Batch(b) => b.iter().collect(),
        };
        // Nothing is handed on before every call passed: the answer is still one 429.
        for m in requests {
            if let JsonRpcMessage::Request(r) = m {
                edge.admit(&r.request, owner.as_ref()).map_err(Error::RateLimited)?;
            }
        }
    }
    match (session, posted) {
        (None, Posted::Single(m)) if message::is_initialize(&m) => {
            let session = edge.sessions.create(SessionKind::Streamable, owner)?;
            tracing::info!(session = %session.id(), "streamable session opened");
            let mut response = dispatch(&session, vec![m], accepts, false, edge.config.keepalive, false).await?;
            let id = HeaderValue::from_str(&session.id().to_string()).map_err(|_| Error::Unavailable("session id"))?;
            response.headers_mut().insert(MCP_SESSION_ID.clone(), id);
            Ok(response)
        }
        // A request without a session, initialize and stateless requests aside.
        (None, _) => Err(Error::MissingSessionId),
        (Some(_), Posted::Single(m)) if message::is_initialize(&m) => {
            Err(Error::InvalidRequest("the session is already initialized"))
        }
        (Some(session), Posted::Single(m)) => {
            let prime = primes(&session, version);
            dispatch(&session, vec![m], accepts, false, edge.config.keepalive, prime).await
        }
        (Some(session), Posted::Batch(batch)) => {
            if !session.negotiated_version().is_some_and(ProtocolVersion::allows_batches) {
                return Err(Error::InvalidRequest("batches are only accepted in sessions at protocol 2025-03-26"));
            }
            if batch.iter().any(message::is_initialize) {
                return Err(Error::InvalidRequest("initialize must not be in a batch"));
            }
            dispatch(&session, batch, accepts, true, edge.config.keepalive, false).await
        }
    }
}

/// Hands the messages to the session and answers: 202 when none is a request, otherwise
/// the responses, as JSON or SSE.
async fn dispatch(
    session: &Session,
    messages: Vec<rmcp::model::ClientJsonRpcMessage>,
    accepts: Accepts,
    batch: bool,
    keepalive: Duration,
    prime: bool,
) -> Result<Response<Body>, Error> {
    let requests: Vec<(RequestId, Option<ProgressToken>)> = messages
        .iter()
        .filter_map(|m| match m {
            JsonRpcMessage::Request(r) => Some((r.id.clone(), progress_token(&r.request))),
            _ => None,
        })
        .collect();
    let expected = requests.len();
    let reply = if !accepts.json || (accepts.sse && batch) {
        PostReply::Stream
    } else if !accepts.sse {
        PostReply::Json
    } else {
        PostReply::Either
    };
    let opened = (expected > 0).then(|| session.open_post(requests.iter().cloned(), reply));
    let mut unsent = Unsent { session, requests: &requests, sent: 0 };
    for m in messages {
        let request = matches!(m, JsonRpcMessage::Request(_));
        let cancelled = match &m {
            JsonRpcMessage::Notification(n) => match &n.notification {
                ClientNotification::CancelledNotification(c) => c.params.request_id.clone(),
                _ => None,
            },
            _ => None,
        };
        session.send(m).await.map_err(|_| Error::SessionNotFound)?;
        unsent.sent += usize::from(request);
        if let Some(id) = cancelled {
            session.forget_request(&id);
        }
    }
    let Some((rx, priming)) = opened else { return Ok(status_only(StatusCode::ACCEPTED)) };
    let stream = SseSetup {
        prefix: session.event_prefix().clone(),
        keepalive,
        priming: prime.then_some(priming),
        gate: session.gate(),
    };
    answer(session, rx, accepts, expected, batch, stream).await
}

/// The requests of a POST not handed to the session's server yet. hyper drops the handler
/// when its client goes away, which here means while the session's queue is full: the
/// requests not sent by then are forgotten, as nothing will ever answer them, and their
/// open route would keep the session busy (never reaped) and a drain waiting for it.
struct Unsent<'a> {
    session: &'a Session,
    requests: &'a [(RequestId, Option<ProgressToken>)],
    sent: usize,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        for (id, _) in self.requests.iter().skip(self.sent) {
            self.session.forget_request(id);
        }
    }
}

fn progress_token(request: &ClientRequest) -> Option<ProgressToken> {
    request.get_meta().get_progress_token()
}

/// The answer to a POST that carried requests.
async fn answer(
    session: &Session,
    mut rx: mpsc::Receiver<Outgoing>,
    accepts: Accepts,
    expected: usize,
    batch: bool,
    stream: SseSetup,
) -> Result<Response<Body>, Error> {
    if !accepts.json || (accepts.sse && batch) {
        let first = first_message(session, &mut rx, stream.priming).await;
        return Ok(sse_response(stream.build(rx, first)));
    }
    if !accepts.sse {
        return json_only(session, rx, expected, batch).await;
    }
    // Both allowed, one request: let the first message decide.
    match rx.recv().await {
        Some(Outgoing::Message { json, response: true, .. }) => Ok(json_response(json)),
        Some(first) => {
            if stream.gate.is_some() {
                let seq = prelude_seq(stream.priming, Some(&first));
                stored(session, seq, tokio::time::Instant::now() + HEAD_WAIT).await;
            }
            Ok(sse_response(stream.build(rx, Some(first))))
        }
        None if session.is_ended() => Err(Error::SessionNotFound),
        // The client cancelled the request: no response will come.
        None => Ok(sse_response(stream.build(rx, None))),
    }
}

/// How long a POST's event stream holds its head back for its first event (in a cluster, for
/// that event to be in the store too), so that the head, the priming event and the first event
/// leave in one write rather than two (and wake a load balancer in front once).
const HEAD_WAIT: Duration = Duration::from_millis(20);

/// The stream's first message, if it comes within [`HEAD_WAIT`] (in a cluster, once the store
/// holds it and the priming note, if that is also within the wait). `None` when no message
/// comes in time: the head goes out alone, and the events as they come. A message taken is
/// always returned, stored or not.
async fn first_message(
    session: &Session,
    rx: &mut mpsc::Receiver<Outgoing>,
    priming: Option<EventId>,
) -> Option<Outgoing> {
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    let first = tokio::time::timeout_at(deadline, rx.recv()).await.ok().flatten()?;
    stored(session, prelude_seq(priming, Some(&first)), deadline).await;
    Some(first)
}

/// Waits until the session's journal holds every entry up to `seq`, or `deadline`, or the
/// session is lost to another instance (the stream's own gate then writes nothing).
async fn stored(session: &Session, seq: u64, deadline: tokio::time::Instant) {
    if let Some(mut gate) = session.gate() {
        let written = std::future::poll_fn(|cx| gate.poll_written(seq, cx));
        drop(tokio::time::timeout_at(deadline, written).await);
    }
}

/// A client that takes only JSON gets the responses in one body; anything else the server
/// sends meanwhile goes to the standalone stream.
async fn json_only(
    session: &Session,
    mut rx: mpsc::Receiver<Outgoing>,
    expected: usize,
    batch: bool,
) -> Result<Response<Body>, Error> {
    let mut responses = Vec::with_capacity(expected);
    while responses.len() < expected {
        match rx.recv().await {
            Some(Outgoing::Message { json, response: true, .. }) => responses.push(json),
            Some(Outgoing::Control(_)) => {}
            Some(out) => session.to_standalone(out),
            None => break,
        }
    }
    if responses.is_empty() {
        if session.is_ended() {
            return Err(Error::SessionNotFound);
        }
        return Ok(status_only(StatusCode::ACCEPTED));
    }
    if !batch {
        return Ok(json_response(responses.swap_remove(0)));
    }
    let mut body = Vec::with_capacity(responses.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.push(b']');
    Ok(json_response(Bytes::from(body)))
}

/// How long a client waits before it reconnects a dropped stream, sent with the priming event.
const RETRY_MS: u64 = 1000;

/// Whether this request's streams start with a priming event: by the version the request
/// names, else the session's.
fn primes(session: &Session, header: Option<ProtocolVersion>) -> bool {
    header.or_else(|| session.negotiated_version()).is_some_and(ProtocolVersion::primes_streams)
}

/// How to build a Streamable event stream: event ids with the session's prefix, the
/// keepalive, the priming event when the client expects one, and in a cluster the gate that
/// holds events back until the store has them.
struct SseSetup {
    prefix: Arc<str>,
    keepalive: Duration,
    priming: Option<EventId>,
    gate: Option<Gate>,
}

/// The number the store must hold up to before a stream's first frames (its priming event,
/// and `first`) may be written.
fn prelude_seq(priming: Option<EventId>, first: Option<&Outgoing>) -> u64 {
    let first_seq = match first {
        Some(Outgoing::Message { event: Some(event), .. }) => event.seq,
        _ => 0,
    };
    priming.map_or(0, |p| p.seq).max(first_seq)
}

impl SseSetup {
    fn build(self, rx: mpsc::Receiver<Outgoing>, first: Option<Outgoing>) -> SseStream {
        let prelude_seq = prelude_seq(self.priming, first.as_ref());
        let mut stream =
            SseStream::new(rx, self.keepalive).with_event_ids(self.prefix.clone()).with_gate(self.gate, prelude_seq);
        if let Some(priming) = self.priming {
            let id = priming.format(&self.prefix);
            stream = stream.with_prelude(
                crate::sse::Event { id: Some(&id), retry: Some(RETRY_MS), ..Default::default() }.encode(),
            );
        }
        if let Some(first) = first {
            stream = stream.with_prelude(first.to_sse(Some(&self.prefix)));
        }
        stream
    }
}

/// `GET`: the standalone stream of a session; without a session id, the legacy handshake,
/// for clients that fall back to HTTP+SSE on the URL they were given.
async fn get<S: Sessions>(edge: &Edge<S>, parts: &Parts, owner: Option<Identity>) -> Result<Response<Body>, Error> {
    if !checks::accepts(&parts.headers).sse {
        return Err(Error::NotAcceptable("Accept must allow text/event-stream"));
    }
    let Some(session) = session_header(edge, parts, owner.as_ref()).await? else {
        return legacy::connect(edge, parts, owner).await;
    };
    let version = checks::protocol_version(&parts.headers)?;
    let stream = match parts.headers.get(&LAST_EVENT_ID) {
        Some(last) => {
            let last = last.to_str().map_err(|_| Error::Resume(ResumeError::Malformed))?;
            let (rx, resumed) = session.resume(last)?;
            tracing::info!(session = %session.id(), "stream resumed after event {last}");
            // Primed with the id it resumed from: a client that takes the ids to resume
            // from only from the events of this response (the TypeScript SDK, whose
            // issue #2499) would otherwise open it again, once it breaks before any event
            // came, without `Last-Event-ID`, as a new stream, and miss what was sent
            // meanwhile. The client has that id already: the priming event repeats no
            // message, and what is replayed after it has higher numbers.
            SseSetup {
                prefix: session.event_prefix().clone(),
                keepalive: edge.config.keepalive,
                priming: primes(&session, version).then_some(resumed),
                gate: session.gate(),
            }
            .build(rx, None)
        }
        None => {
            let (rx, priming) = session.open_standalone();
            let prime = primes(&session, version);
            SseSetup {
                prefix: session.event_prefix().clone(),
                keepalive: edge.config.keepalive,
                priming: prime.then_some(priming),
                gate: session.gate(),
            }
            .build(rx, None)
        }
    };
    let weak = session.standalone_handle();
    let stream = stream.on_close(Box::new(move || {
        if let Some(weak) = &weak {
            session.close_standalone_if_current(weak);
        }
    }));
    Ok(sse_response(stream))
}

/// `DELETE`: ends the session.
async fn delete<S: Sessions>(edge: &Edge<S>, parts: &Parts, owner: Option<Identity>) -> Result<Response<Body>, Error> {
    let session = session_header(edge, parts, owner.as_ref()).await?.ok_or(Error::MissingSessionId)?;
    tracing::info!(session = %session.id(), "streamable session deleted by the client");
    edge.sessions.end(session.id());
    Ok(status_only(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use http_body::Body as _;
    use rmcp::model::{EmptyResult, ServerResult};

    use super::*;
    use crate::journal::Journal;
    use crate::session::SessionLimits;
    use crate::session_id::SessionId;

    /// What a body has ready now: its frames until the first that is not.
    fn ready_now(body: &mut Body) -> String {
        let mut cx = Context::from_waker(Waker::noop());
        let mut ready = String::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut *body).poll_frame(&mut cx) {
            ready.push_str(std::str::from_utf8(&frame.into_data().unwrap_or_default()).unwrap_or_default());
        }
        ready
    }

    /// A server that answers the session's first request at once.
    fn answer_first(
        session: &Arc<Session>,
        mut inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
    ) -> tokio::task::JoinHandle<()> {
        let server = session.clone();
        tokio::spawn(async move {
            let Some(request) = inbound.recv().await else { return };
            if let JsonRpcMessage::Request(request) = *request {
                let answer = JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), request.id);
                server.deliver(answer).await.expect("delivered");
            }
        })
    }

    #[tokio::test]
    async fn in_a_cluster_a_post_stream_goes_out_with_its_first_event_once_the_store_has_it() {
        let (session, inbound) =
            Session::new(SessionId::random(), SessionKind::Streamable, None, SessionLimits::default());
        let journal = Arc::new(Journal::new(0));
        session.journal_to(journal.clone());
        let answering = answer_first(&session, inbound);
        let store = journal.clone();
        let storing = tokio::spawn(async move {
            loop {
                let (_, through) = store.next_batch().await;
                store.written_through(through);
            }
        });
        let ping = serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .expect("a client request");
        let sse_only = Accepts { json: false, sse: true };
        let response = dispatch(&session, vec![ping], sse_only, false, Duration::from_secs(15), true)
            .await
            .expect("an event stream");
        let mut body = response.into_body();
        let ready = ready_now(&mut body);
        assert!(ready.contains("retry: 1000"), "the priming event: {ready:?}");
        assert!(ready.contains("\"id\":1"), "the answer, ready with the head (one write): {ready:?}");
        answering.abort();
        storing.abort();
    }

    #[tokio::test]
    async fn a_post_stream_goes_out_with_its_first_event_when_it_comes_at_once() {
        let (session, inbound) =
            Session::new(SessionId::random(), SessionKind::Streamable, None, SessionLimits::default());
        let answering = answer_first(&session, inbound);
        let sse_only = Accepts { json: false, sse: true };
        let response = dispatch(&session, vec![ping(1)], sse_only, false, Duration::from_secs(15), true)
            .await
            .expect("an event stream");
        let ready = ready_now(&mut response.into_body());
        assert!(ready.contains("retry: 1000"), "the priming event: {ready:?}");
        assert!(ready.contains("\"id\":1"), "the answer, ready with the head (one write): {ready:?}");
        answering.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_stream_whose_first_event_is_slow_goes_out_without_it() {
        // Nobody answers: the head goes once the wait is over, with the priming event alone.
        let (session, _inbound) =
            Session::new(SessionId::random(), SessionKind::Streamable, None, SessionLimits::default());
        let sse_only = Accepts { json: false, sse: true };
        let started = tokio::time::Instant::now();
        let response = dispatch(&session, vec![ping(1)], sse_only, false, Duration::from_secs(15), true)
            .await
            .expect("an event stream");
        assert_eq!(started.elapsed(), HEAD_WAIT, "held back no longer than the wait");
        let ready = ready_now(&mut response.into_body());
        assert!(ready.contains("retry: 1000") && !ready.contains("\"id\":1"), "{ready:?}");
    }

    fn ping(id: i64) -> ClientJsonRpcMessage {
        serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "ping"})).expect("a request")
    }

    #[tokio::test]
    async fn a_post_whose_client_leaves_while_the_queue_is_full_leaves_no_request_behind() {
        let limits = SessionLimits { inbound: 1, ..SessionLimits::default() };
        // The server reads nothing: the first request fills its queue.
        let (session, _inbound) = Session::new(SessionId::random(), SessionKind::Streamable, None, limits);
        let either = Accepts { json: true, sse: true };
        let keepalive = Duration::from_secs(15);
        let mut first = Box::pin(dispatch(&session, vec![ping(1)], either, false, keepalive, false));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(first.as_mut().poll(&mut cx).is_pending(), "request 1 is queued; its POST waits for the answer");
        {
            // Its client goes away while request 2 waits for room: hyper drops the handler.
            let mut second = Box::pin(dispatch(&session, vec![ping(2), ping(3)], either, true, keepalive, false));
            assert!(second.as_mut().poll(&mut cx).is_pending(), "request 2 waits for room");
        }
        assert_eq!(session.in_flight(), 1, "only request 1 is unanswered");
        drop(first);
        // Request 1 was handed on: its route stays until its answer, then nothing is open.
        session
            .deliver(JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), RequestId::Number(1)))
            .await
            .expect("routed");
        assert_eq!(session.in_flight(), 0);
        assert!(!session.is_busy(), "no route is left open for requests 2 and 3");
    }
}
