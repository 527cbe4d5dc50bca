//! The crate's one error enum, and the one place it becomes a JSON-RPC error.
//!
//! What goes wrong with an upstream is kept typed, with its source, until it reaches the
//! client: [`Error::to_jsonrpc`] decides what the client sees. An upstream's own JSON-RPC
//! error passes through unchanged; everything else names the upstream and says why.

use std::time::Duration;

use rmcp::model::ErrorCode;
use rmcp::{ErrorData, ServiceError};

/// A boxed error, kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a session's server, or a request to an upstream, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime is shutting down; no new sessions start.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// Starting an upstream (its child, its connection) or its `initialize` failed.
    #[error("{what}")]
    Connect {
        /// The upstream.
        upstream: String,
        /// What failed, for example `cannot start npx`.
        what: String,
        /// Why, when something else said so.
        #[source]
        source: Option<BoxError>,
    },
    /// A request to a connected upstream failed (the upstream's own error included).
    #[error("upstream '{upstream}': {source}")]
    Request {
        /// The upstream.
        upstream: String,
        /// rmcp's client error (boxed: it is large, and rare).
        #[source]
        source: Box<ServiceError>,
    },
    /// A request to an upstream passed its deadline.
    #[error("upstream '{upstream}': {what} timed out after {after:?}")]
    Timeout {
        /// The upstream.
        upstream: String,
        /// What timed out, for example `tools/list`.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// A reply stream closed before its result, and resuming it was given up.
    #[error("upstream '{upstream}': its event stream closed and could not be resumed {why}")]
    NotResumed {
        /// The upstream.
        upstream: String,
        /// After how many attempts, and why, for example `after 5 attempts (…)`.
        why: String,
    },
    /// The upstream cannot serve now: starting, restarting, at its cap, or stopped.
    #[error("upstream '{upstream}' is unavailable: {why}")]
    Unavailable {
        /// The upstream.
        upstream: String,
        /// Why.
        why: String,
    },
    /// The upstream answered with something that is not an answer to the request.
    #[error("upstream '{upstream}' answered {method} with an unexpected result")]
    Protocol {
        /// The upstream.
        upstream: String,
        /// The request's method.
        method: &'static str,
    },
    /// A resource subscription the upstream cannot give.
    #[error("upstream '{upstream}' cannot send updates of {uri}: {why}")]
    NotSubscribable {
        /// The upstream that owns the resource.
        upstream: String,
        /// The resource.
        uri: String,
        /// Why, for example `it offers no resource subscriptions`.
        why: String,
    },
    /// The client cancelled the request.
    #[error("request cancelled")]
    Cancelled,
    /// A setting that cannot be used (the request state key).
    #[error("{0}")]
    Config(String),
    /// A recorded handshake that does not read as one.
    #[error("the recorded handshake does not read: {0}")]
    BadHandshake(String),
}

impl Error {
    /// The JSON-RPC error the client gets for this one.
    pub fn to_jsonrpc(&self) -> ErrorData {
        if let Error::Request { source, .. } = self
            && let ServiceError::McpError(e) = &**source
        {
            return e.clone();
        }
        match self {
            Error::Cancelled => ErrorData::new(ErrorCode(-32800), "request cancelled", None),
            // The method is served (another upstream offers subscriptions): it is the URI
            // that cannot be subscribed to.
            Error::NotSubscribable { .. } => ErrorData::invalid_params(chain(self), None),
            Error::Connect { upstream, .. } => {
                ErrorData::internal_error(format!("upstream '{upstream}' could not be started: {}", chain(self)), None)
            }
            other => ErrorData::internal_error(chain(other), None),
        }
    }

    /// This error and its sources, joined with `: `.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

impl From<Error> for ErrorData {
    fn from(e: Error) -> Self {
        e.to_jsonrpc()
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // rmcp's errors often repeat their source in their own message.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstreams_own_error_passes_through_and_the_rest_name_the_upstream() {
        let own = ErrorData::invalid_params("no such tool", None);
        let e = Error::Request { upstream: "files".into(), source: Box::new(ServiceError::McpError(own.clone())) };
        assert_eq!(e.to_jsonrpc(), own);

        let e = Error::Timeout { upstream: "files".into(), what: "tools/list".into(), after: Duration::from_secs(2) };
        let data = e.to_jsonrpc();
        assert_eq!(data.code, ErrorCode::INTERNAL_ERROR);
        assert_eq!(data.message, "upstream 'files': tools/list timed out after 2s");

        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = Error::Connect { upstream: "files".into(), what: "cannot start npx".into(), source: Some(io.into()) };
        assert_eq!(
            e.to_jsonrpc().message,
            "upstream 'files' could not be started: cannot start npx: No such file or directory"
        );
        assert!(std::error::Error::source(&e).is_some(), "the source is kept");

        let e = Error::NotResumed { upstream: "files".into(), why: "after 5 attempts (HTTP 503)".into() };
        assert_eq!(
            e.to_jsonrpc().message,
            "upstream 'files': its event stream closed and could not be resumed after 5 attempts (HTTP 503)"
        );

        assert_eq!(Error::Cancelled.to_jsonrpc().code, ErrorCode(-32800));
    }
}
