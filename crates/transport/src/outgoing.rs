//! [`Outgoing`]: the unit that goes to a client on a stream (a message serialized once, or
//! an SSE control frame) and its SSE encoding. Shared by the routing table, which makes
//! them, and the response body, which writes them.

use bytes::Bytes;

use crate::event_log::EventId;
use crate::sse;

/// What goes to a client on a stream: a message serialized once, or an SSE control frame.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A JSON-RPC message.
    Message {
        /// The JSON text.
        json: Bytes,
        /// Whether it answers a request (a response or an error with an id).
        response: bool,
        /// Its event id, for resumption.
        event: Option<EventId>,
    },
    /// A JSON-RPC error answering a stateless request, with the HTTP status it is
    /// answered with when it comes first (2026-07-28 maps protocol refusals to 400 and
    /// 404; a session's errors are always `Message`s).
    Failure {
        /// The JSON text.
        json: Bytes,
        /// The status of a reply that is this error alone.
        status: http::StatusCode,
    },
    /// Raw SSE lines with no message (a `retry:` hint), skipped in JSON replies.
    Control(Bytes),
}

impl Outgoing {
    /// A message that is not a response (a notification or a server request).
    pub fn other(json: Bytes) -> Self {
        Outgoing::Message { json, response: false, event: None }
    }

    /// The JSON text, unless it is a control frame.
    pub fn json(&self) -> Option<&Bytes> {
        match self {
            Outgoing::Message { json, .. } | Outgoing::Failure { json, .. } => Some(json),
            Outgoing::Control(_) => None,
        }
    }

    /// Whether it is a response or error answering a request.
    pub fn is_response(&self) -> bool {
        matches!(self, Outgoing::Message { response: true, .. } | Outgoing::Failure { .. })
    }

    /// The SSE frame that carries it; with its event id when `prefix` (the session's event
    /// id prefix) is given.
    pub fn to_sse(&self, prefix: Option<&str>) -> Bytes {
        match (self, prefix) {
            (Outgoing::Message { json, event: Some(event), .. }, Some(prefix)) => {
                let id = event.format(prefix);
                sse::Event { event: Some("message"), id: Some(&id), data: json, retry: None }.encode()
            }
            (Outgoing::Message { json, .. } | Outgoing::Failure { json, .. }, _) => sse::message(json),
            (Outgoing::Control(raw), _) => raw.clone(),
        }
    }
}
