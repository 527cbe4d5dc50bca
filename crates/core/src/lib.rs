//! mcpgw's MCP side: builds a fresh rmcp server for every client session and connects it
//! to the upstreams. It knows nothing of HTTP: a session is a bounded channel of client
//! messages in, and an [`Outbound`] sink for what the server sends.
//!
//! # Layout
//! - [`channel`]: the rmcp `Transport` over a bounded inbound channel and an [`Outbound`].
//! - [`direct`]: a server called without rmcp's message loop, for requests only their
//!   answer can come for.
//! - [`session`]: [`ServerFactory`], which starts one session's server as a tracked task,
//!   and parks it while the session is quiet.
//! - `state`: what a session keeps across runs of its server.
//! - `handshake`: a session's `initialize` as it ended, to start its next server from.
//! - [`proxy`]: [`Proxy`], the per-session server over every upstream.
//! - [`seal`]: the sealed `requestState` of input-required results (2026-07-28 MRTR).
//! - [`policy`]: who may see and call what, per caller; [`Policies`] holds the one in force.
//! - [`caller`]: a caller's [`Attributes`](caller::Attributes), behind a [`Caller`].
//! - [`catalog`]: merging the upstreams' tools, prompts and resources, and their names.
//! - [`audit`]: the audit line of every tool call, and the [`CallObserver`](audit::CallObserver)
//!   the binary counts them with.
//! - [`upstream`]: the upstreams: built-in tools, stdio children, remote HTTP and SSE
//!   servers, and the connections to them.
//! - [`error`]: the crate's error enum.
//! - `unfinished`: work a transport's `receive` must finish even when rmcp drops it.

pub mod audit;
pub mod caller;
pub mod catalog;
pub mod channel;
pub mod direct;
pub mod error;
mod handshake;
pub mod policy;
pub mod proxy;
pub mod seal;
pub mod session;
mod state;
mod unfinished;
pub mod upstream;

pub use channel::{Inbound, Notifier, Outbound, OutboundClosed, Recorder};
pub use error::Error;
pub use handshake::Handshake;
pub use policy::{Caller, Policies, Policy, PolicySpec};
pub use proxy::{MrtrConfig, Proxy};
pub use seal::Sealer;
pub use session::ServerFactory;
pub use upstream::set::Upstreams;
pub use upstream::spec::{DEFAULT_CALL_TIMEOUT, Era, Share, ToolFilter, UpstreamKind, UpstreamSpec};
