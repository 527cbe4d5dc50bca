//! [`Edge`]: the entry point the binary routes requests to, [`Sessions`], what it needs
//! from the session registry, and the response helpers the handlers share. `Edge::handle`
//! lives in `dispatch.rs`, above the handlers, so that they can use this module without it
//! using them back.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use tokio_util::task::TaskTracker;

use crate::auth::{Auth, Identity};
use crate::body::{Body, SseStream};
use crate::checks::HostPolicy;
use crate::error::Error;
use crate::hub::Hub;
use crate::limits::{self, RateLimits};
use crate::refusal::Refusal;
use crate::session::{Session, SessionKind};
use crate::session_id::SessionId;

/// The session registry, as the HTTP handlers see it. The binary implements it: it owns
/// the one map of sessions of both kinds and knows how to build an MCP server.
pub trait Sessions: Send + Sync + 'static {
    /// Creates a session of `kind`, owned by `owner`, with a fresh MCP server behind it, or
    /// refuses with [`Error::Unavailable`].
    fn create(&self, kind: SessionKind, owner: Option<Identity>) -> Result<Arc<Session>, Error>;
    /// The live session with this id, of either kind.
    fn get(&self, id: SessionId) -> Option<Arc<Session>>;
    /// A session this instance does not hold, which another instance of a cluster may
    /// have: taken over if it is of `kind` and `owner`'s, else [`Error::SessionNotFound`]
    /// (also what a single node answers).
    fn take_over(
        &self,
        _id: SessionId,
        _kind: SessionKind,
        _owner: Option<Identity>,
    ) -> impl Future<Output = Result<Arc<Session>, Error>> + Send {
        std::future::ready(Err(Error::SessionNotFound))
    }
    /// Ends the session and forgets it; later requests for it get 404.
    fn end(&self, id: SessionId);
    /// Sees every client message accepted, by its JSON-RPC method (for metrics).
    fn observe(&self, _kind: SessionKind, _method: &'static str) {}
    /// The modern hub that serves stateless (2026-07-28) requests; `None`: they are
    /// refused with 503.
    fn hub(&self) -> Option<Arc<Hub>> {
        None
    }
    /// Sees every stateless message accepted, by its JSON-RPC method (for metrics).
    fn observe_stateless(&self, _method: &'static str) {}
    /// Attaches the caller of a stateless request to it, as the server behind the hub
    /// reads it (a session's server gets its caller when [`Sessions::create`] builds it).
    fn identify(&self, _owner: &Identity, _extensions: &mut rmcp::model::Extensions) {}
    /// Sees every tool call refused by a rate limit, by the limit's name (for metrics).
    fn observe_rate_limited(&self, _limit: &'static str) {}
}

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// A `: keepalive` comment after this much silence on an event stream (zero: never).
    pub keepalive: Duration,
    /// How long a legacy session outlives its event stream, for a reconnect.
    pub legacy_grace: Duration,
    /// The largest POST body accepted, in bytes.
    pub max_body: usize,
    /// The path legacy clients POST to, as routed by the binary.
    pub messages_path: String,
    /// A prefix the gateway is mounted under by a reverse proxy, put in front of the
    /// `endpoint` event's path; `X-Forwarded-Prefix` overrides it per request.
    pub public_prefix: String,
    /// Which Host and Origin values are served.
    pub hosts: HostPolicy,
    /// Who may call (static tokens, JWTs); `None` turns authentication off.
    pub auth: Option<Arc<Auth>>,
    /// Whether stateless (2026-07-28) requests are served on `/mcp`; when not, they are
    /// refused as requests without a session, so their clients fall back to `initialize`.
    pub stateless: bool,
    /// Rate limits on tool calls; `None`: none.
    pub rate_limits: Option<Arc<RateLimits>>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(15),
            legacy_grace: Duration::from_secs(5),
            max_body: 4 * 1024 * 1024,
            messages_path: "/messages".to_owned(),
            public_prefix: String::new(),
            hosts: HostPolicy::default(),
            auth: None,
            stateless: true,
            rate_limits: None,
        }
    }
}

/// Which MCP endpoint a request was routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /sse`: opens a legacy session and its event stream.
    LegacyStream,
    /// `POST /messages?sessionId=`: a legacy client message.
    LegacyMessages,
    /// `/mcp`: Streamable HTTP.
    Streamable,
}

/// The HTTP edge: serves both MCP transports over a [`Sessions`] registry.
pub struct Edge<S> {
    pub(crate) sessions: Arc<S>,
    pub(crate) config: EdgeConfig,
    pub(crate) tasks: TaskTracker,
}

impl<S: Sessions> Edge<S> {
    /// An edge over `sessions`; timers it starts are tracked by `tasks`.
    pub fn new(sessions: Arc<S>, config: EdgeConfig, tasks: TaskTracker) -> Self {
        Self { sessions, config, tasks }
    }

    /// The session with this id if it is live, of this kind and the caller's: the two id
    /// spaces never cross, so a legacy id on `/mcp` is unknown, and the reverse; and another
    /// caller's session is unknown too (404, never a hint that it exists). The same caller
    /// is the same principal: a refreshed token of the same subject keeps its session.
    ///
    /// A session this instance does not hold may be taken over from another instance.
    pub(crate) async fn live_session(
        &self,
        id: SessionId,
        kind: SessionKind,
        owner: Option<&Identity>,
    ) -> Result<Arc<Session>, Error> {
        // A session that ended here is, like one never held here, one another instance of
        // a cluster may hold (or, while this one shuts down, will take over: 503, not 404).
        let session = match self.sessions.get(id).filter(|s| !s.is_ended()) {
            Some(session) => session,
            None => self.sessions.take_over(id, kind, owner.cloned()).await?,
        };
        if session.kind() != kind || session.is_ended() || session.owner() != owner {
            return Err(Error::SessionNotFound);
        }
        session.touch();
        Ok(session)
    }
}

impl<S: Sessions> Edge<S> {
    /// Admits a client request under the rate limits: a request that starts a tool call
    /// takes its tokens now, or is refused (nothing else is counted).
    pub(crate) fn admit(&self, request: &rmcp::model::ClientRequest, owner: Option<&Identity>) -> Result<(), Refusal> {
        let (Some(rates), Some(tool)) = (&self.config.rate_limits, limits::tool_call(request)) else { return Ok(()) };
        let refused = rates.check(owner.map(Identity::principal), tool, std::time::Instant::now());
        if let Err(refusal) = &refused {
            self.sessions.observe_rate_limited(refusal.limit.as_str());
            tracing::debug!(caller = ?owner, tool, limit = refusal.limit.as_str(), "a tool call over a rate limit");
        }
        refused
    }
}

/// A 200 event-stream response with the headers that keep proxies from buffering it.
pub(crate) fn sse_response(stream: SseStream) -> Response<Body> {
    let mut response = Response::new(Body::Sse(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A 200 `application/json` response of these bytes.
pub(crate) fn json_response(json: bytes::Bytes) -> Response<Body> {
    let mut response = Response::new(Body::full(json));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A response with this status and no body.
pub(crate) fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}
