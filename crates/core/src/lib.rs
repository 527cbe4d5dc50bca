//! mcpgw's MCP side: builds a fresh rmcp server for every client session and connects it
//! to the upstreams. It knows nothing of HTTP: a session is a bounded channel of client
//! messages in, and an [`Outbound`] sink for what the server sends.
//!
//! # Layout
//! - [`channel`]: the rmcp `Transport` over a bounded inbound channel and an [`Outbound`].
//! - [`session`]: [`ServerFactory`], which starts one session's server as a tracked task.
//! - [`upstream`]: what a session's server serves; for now the built-in tools.
//! - [`error`]: the crate's error enum.

pub mod channel;
pub mod error;
pub mod session;
pub mod upstream;

pub use channel::{Outbound, OutboundClosed};
pub use error::Error;
pub use session::ServerFactory;
