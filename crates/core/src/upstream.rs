//! The upstream MCP servers a session's server fronts.
//!
//! - [`spec`]: what an upstream is, as configured.
//! - [`credentials`]: per-caller environment, arguments and headers, and their secrets.
//! - [`set`]: all configured upstreams, and the shared connections.
//! - [`link`]: a live connection to a remote upstream, its supervisor, and the routing of
//!   what it sends back.
//! - `connect`: opening one connection (stdio child, Streamable HTTP, legacy SSE).
//! - `fetch`: one list fetch shared by every caller that asks meanwhile.
//! - `ordered`: delivers progress and log notifications in the order the upstream sent them.
//! - `http_client`: the pooled HTTP client every remote connection shares.
//! - `resume`: that client for Streamable HTTP, with a bound on resuming a reply stream.
//! - [`sse_client`]: the legacy HTTP+SSE client transport.
//! - [`builtin`]: the in-process tools.

pub mod builtin;
pub(crate) mod connect;
pub mod credentials;
pub(crate) mod fetch;
pub(crate) mod http_client;
pub mod link;
pub(crate) mod ordered;
pub(crate) mod resume;
pub mod set;
pub mod spec;
pub mod sse_client;
