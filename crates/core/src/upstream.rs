//! The upstream MCP servers a session's server fronts.
//!
//! - [`spec`]: what an upstream is, as configured.
//! - [`credentials`]: per-caller environment, arguments and headers, and their secrets.
//! - [`set`]: all configured upstreams, and the shared connections.
//! - [`link`]: a live connection to a remote upstream, its supervisor, and the routing of
//!   what it sends back.
//! - `changes`: a modern upstream's list changes, heard on a `subscriptions/listen` stream.
//! - `connect`: opening one connection (stdio child, Streamable HTTP, legacy SSE), in the
//!   era the upstream is spoken to in.
//! - `count`: what is counted per upstream across its connections, the era found included.
//! - `modern`: what a request to a modern (2026-07-28) upstream needs beyond the handshake
//!   era's: its `_meta`, the retry after -32020, a session client's input it asks for.
//! - `fetch`: one list fetch shared by every caller that asks meanwhile.
//! - `ordered`: delivers progress and log notifications in the order the upstream sent them.
//! - `http_client`: the pooled HTTP client every remote connection shares.
//! - `resume`: that client for Streamable HTTP, with a bound on resuming a reply stream.
//! - [`sse_client`]: the legacy HTTP+SSE client transport.
//! - [`builtin`]: the in-process tools.

pub mod builtin;
pub(crate) mod changes;
pub(crate) mod connect;
pub(crate) mod count;
pub mod credentials;
pub(crate) mod fetch;
pub(crate) mod http_client;
pub mod link;
pub(crate) mod modern;
pub(crate) mod ordered;
pub(crate) mod resume;
pub mod set;
pub mod spec;
pub mod sse_client;
