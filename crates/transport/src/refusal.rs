//! [`Refusal`]: a tool call over a rate limit, which limit refused it and when to retry, and
//! how it is answered (HTTP 429 with `Retry-After`, JSON-RPC [`RATE_LIMITED`]). Apart from
//! the buckets (`limits`) so that the crate's error type can carry one without depending on
//! them.

use std::time::Duration;

use rmcp::model::ErrorCode;
use serde_json::json;

/// The limit that refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The global bucket.
    Global,
    /// The caller's bucket.
    Identity,
    /// The caller's bucket for this tool.
    Tool,
}

impl Limit {
    /// Its name, as errors and logs give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Global => "global",
            Limit::Identity => "per-identity",
            Limit::Tool => "per-tool",
        }
    }
}

/// A call over a limit: which one, and when a call would pass it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// The limit (of those refusing, the one that frees up last).
    pub limit: Limit,
    /// How long until a token is back.
    pub retry_after: Duration,
}

/// The JSON-RPC error code of a call over a limit (an implementation-defined server error).
pub const RATE_LIMITED: i32 = -32029;

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs_f64().ceil() as u64).max(1)
    }

    /// The JSON-RPC error it is answered with: the limit named, and when to retry.
    pub fn to_jsonrpc(&self) -> rmcp::ErrorData {
        rmcp::ErrorData::new(
            ErrorCode(RATE_LIMITED),
            self.to_string(),
            Some(json!({ "limit": self.limit.as_str(), "retryAfter": self.retry_after_secs() })),
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rate limit exceeded ({}): retry after {} s", self.limit.as_str(), self.retry_after_secs())
    }
}
