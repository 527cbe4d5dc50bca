//! mcpgw's HTTP edge: the two MCP transports, hand-written on hyper 1.
//!
//! This crate turns HTTP requests into parsed JSON-RPC messages for a session, and the
//! session's outgoing messages into JSON or SSE responses. It knows nothing of upstreams
//! or of how the per-session MCP server is built: the binary plugs that in through
//! [`Sessions`].
//!
//! # Layout
//! - [`auth`]: bearer tokens (static ones as SHA-256 digests; JWT access tokens from
//!   trusted issuers), the protected resource metadata, and the [`Identity`](auth::Identity)
//!   a session belongs to.
//! - [`session_id`]: the typed [`SessionId`] (128 random bits, 32 hex digits; a cluster
//!   node's start with its [`NodeTag`]).
//! - [`version`]: the typed, ordered [`ProtocolVersion`], parsed once.
//! - [`error`]: the crate's one error enum and its mapping to HTTP status + JSON-RPC error.
//! - [`event_log`]: event ids and the bounded per-session log that resumption replays.
//! - [`journal`]: in a cluster, what a session must have in the shared store before a
//!   client sees it, queued for the binary to write, and the gate that waits for it.
//! - [`sse`]: SSE event encoding and a tolerant decoder.
//! - [`body`]: the response body type (empty, full, or a live SSE stream with keepalives).
//! - [`checks`]: Accept, Content-Type, MCP-Protocol-Version, Host/Origin and CORS.
//! - [`message`]: parsing a POST body, once, into one message or a batch.
//! - [`outgoing`]: [`Outgoing`](outgoing::Outgoing), the unit written to a stream, and its SSE encoding.
//! - [`routes`]: [`Routes`](routes::Routes), the routing table of a client's streams: which
//!   stream each server message goes on.
//! - [`session`]: a live session: its inbound channel, its routes behind a lock, activity.
//! - [`legacy`]: `GET /sse` and `POST /messages?sessionId=` (spec 2024-11-05).
//! - [`streamable`]: `POST/GET/DELETE /mcp` (specs 2025-03-26 to 2025-11-25).
//! - [`modern`]: stateless requests (spec 2026-07-28) on the same `/mcp`: which POSTs are
//!   stateless, the checks they pass first, and their answers.
//! - [`hub`]: [`Hub`](hub::Hub), the one server that answers stateless requests, as the
//!   edge sees it: its inbound channel and the table that routes each answer to its POST.
//! - [`refusal`]: [`Refusal`](refusal::Refusal), a tool call over a rate limit, and its answer.
//! - [`limits`]: [`RateLimits`](limits::RateLimits), the token buckets on tool calls.
//! - [`edge`]: [`Edge`], the entry point that ties the handlers to a [`Sessions`] store.
//! - [`dispatch`]: [`Edge::handle`]: checks, authentication, the body read once, the
//!   handler of the route, and refusals turned into responses.
//!
//! # Cancel safety
//! Every handler may be dropped at any await point (the client went away). Dropping a
//! handler never ends a session: a Streamable session ends on `DELETE`, on idle expiry or at
//! shutdown; a legacy session ends when its event stream has been gone for the grace period.

pub mod auth;
pub mod body;
pub mod checks;
pub mod dispatch;
pub mod edge;
pub mod error;
pub mod event_log;
pub mod hub;
pub mod journal;
pub mod legacy;
pub mod limits;
pub mod message;
pub mod modern;
pub mod outgoing;
pub mod refusal;
pub mod routes;
pub mod session;
pub mod session_id;
pub mod sse;
pub mod streamable;
pub mod version;

pub use body::Body;
pub use edge::{Edge, EdgeConfig, Sessions};
pub use error::Error;
pub use session::{Closed, Session, SessionKind};
pub use session_id::{NodeTag, SessionId};
pub use version::ProtocolVersion;
