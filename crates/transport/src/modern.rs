//! Stateless requests (MCP 2026-07-28) on `/mcp`, beside the sessions of the handshake era.
//!
//! A POST without `Mcp-Session-Id` is stateless when its body carries the 2026 `_meta`
//! envelope (`io.modelcontextprotocol/protocolVersion`) or its `MCP-Protocol-Version` names
//! 2026-07-28 or later; an `initialize` without the envelope still opens a session. A
//! stateless request is checked here, all of it before anything is served (the error
//! ladder of 2026-07-28: header and body disagree, 400 -32020; a version not served, 400
//! -32022; a bad `_meta`, 400 -32602; a method 2026-07-28 removed, 404 -32601), then handed
//! to the [`Hub`](crate::hub::Hub), whose one server answers it. The answer goes back as
//! JSON, or as an event stream when something comes before it; closing that stream (or
//! the connection) cancels the request. A `subscriptions/listen` is answered with an event
//! stream only; it stays open until the client closes it or the gateway ends it.

#![allow(deprecated)] // LoggingLevel is deprecated in 2026-07-28, and still how a request names one

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Response, StatusCode};
use rmcp::model::{
    ClientRequest, GetExtensions, GetMeta, JsonRpcMessage, JsonRpcRequest, LoggingLevel, RequestMetaObject,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::auth::{Identity, Principal};
use crate::body::{Body, SseStream};
use crate::checks::{Accepts, MCP_PROTOCOL_VERSION};
use crate::edge::{Edge, Sessions, json_response, sse_response, status_only};
use crate::error::Error;
use crate::hub::{Declared, NotTaken, Ticket};
use crate::message::{self, Posted};
use crate::outgoing::Outgoing;
use crate::version::ProtocolVersion;

/// `Mcp-Method`.
pub static MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`.
pub static MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The versions served statelessly.
const STATELESS_VERSIONS: [ProtocolVersion; 1] = [ProtocolVersion::V2026_07_28];

/// Methods of the handshake era that 2026-07-28 removed: unknown to a stateless request.
const REMOVED: [&str; 5] = ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

/// Whether a POST without a session id is a stateless request: the body's `_meta` names a
/// protocol version, or the header names 2026-07-28 or later (an `initialize` without the
/// envelope excepted: it opens a session, whatever the header says).
pub(crate) fn claims(headers: &HeaderMap, posted: &Posted) -> bool {
    let request = match posted {
        Posted::Single(JsonRpcMessage::Request(r)) => Some(r),
        _ => None,
    };
    if request.is_some_and(|r| r.request.get_meta().contains_key(META_PROTOCOL_VERSION)) {
        return true;
    }
    if request.is_some_and(|r| matches!(r.request, ClientRequest::InitializeRequest(_))) {
        return false;
    }
    header_claims(headers)
}

/// Whether the `MCP-Protocol-Version` header names 2026-07-28 or later. Versions are dates;
/// any later one (known or not) sorts after 2026-07-28, and is refused with the versions
/// that are served rather than taken for the handshake era.
fn header_claims(headers: &HeaderMap) -> bool {
    header_text(headers, &MCP_PROTOCOL_VERSION)
        .ok()
        .flatten()
        .is_some_and(|v| v >= ProtocolVersion::V2026_07_28.as_str())
}

/// The refusal of a POST without a session whose body did not parse because its params do
/// not read as `method`'s, when the header makes it a stateless request of a method
/// 2026-07-28 removed: that method is unknown there (404 -32601), whatever its params.
pub(crate) fn removed_method(headers: &HeaderMap, method: &str) -> Option<Error> {
    (REMOVED.contains(&method) && header_claims(headers))
        .then(|| Error::MethodNotFound(format!("{} is not a 2026-07-28 method", printable(method))))
}

/// Serves one stateless POST.
pub(crate) async fn post<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    posted: Posted,
    accepts: Accepts,
    owner: Option<Identity>,
) -> Result<Response<Body>, Error> {
    let message = match posted {
        Posted::Single(message) => message,
        Posted::Batch(_) => return Err(Error::InvalidRequest("a 2026-07-28 request is one message, not a batch")),
    };
    edge.sessions.observe_stateless(message::method_label(&message));
    let request = match message {
        JsonRpcMessage::Request(request) => request,
        // 2026-07-28 defines no client notification over HTTP; one is accepted and dropped.
        JsonRpcMessage::Notification(_) => return Ok(status_only(StatusCode::ACCEPTED)),
        _ => return Err(Error::InvalidRequest("a 2026-07-28 client sends no responses")),
    };
    let log = check(&parts.headers, &request)?;
    edge.admit(&request.request, owner.as_ref()).map_err(Error::RateLimited)?;
    let mut request = request;
    if let Some(owner) = &owner {
        caller(&mut request, owner);
        edge.sessions.identify(owner, request.request.extensions_mut());
    }
    let declared = Declared::from_capabilities(request.request.get_meta().get(META_CLIENT_CAPABILITIES));
    if matches!(request.request, ClientRequest::SubscriptionsListenRequest(_)) && !accepts.sse {
        return Err(Error::NotAcceptable("subscriptions/listen is answered with an event stream"));
    }
    let hub = edge.sessions.hub().ok_or(Error::Unavailable("stateless requests are not served now"))?;
    let (rx, ticket) = hub.submit(request, log, declared).await.map_err(|e| match e {
        NotTaken::Ended => Error::Unavailable("the gateway is shutting down"),
        NotTaken::TooManyListeners => Error::Unavailable("too many listen streams are open"),
    })?;
    reply(rx, ticket, accepts, edge.config.keepalive).await
}

/// The header of the request parts a stateless request carries into the server that names
/// its caller (a digest of the caller's identity, or none).
pub const PRINCIPAL_HEADER: HeaderName = HeaderName::from_static("mcpgw-principal");

/// Hands the server who the caller is: a digest of the principal, for the input-required
/// results it binds to their caller (the same caller as a session's, so a refreshed token
/// of the same subject is still that caller), and its name, for the audit log; as headers
/// of request parts like those rmcp's own HTTP server attaches. Nothing of the client's own
/// headers is in them, so a client cannot name a caller itself. The parts are made once per
/// identity (a client sends the same token on every request) and cloned for each request.
fn caller(request: &mut JsonRpcRequest<ClientRequest>, owner: &Identity) {
    let parts = owner.parts(stamp).clone();
    request.request.extensions_mut().insert(parts);
}

/// The parts that name `owner` (see [`caller`]).
fn stamp(owner: &Identity) -> Parts {
    let mut hash = Sha256::new();
    match owner.principal() {
        Principal::Token(digest) => {
            hash.update(b"token\0");
            hash.update(digest);
        }
        Principal::Subject { issuer, subject } => {
            hash.update(b"subject\0");
            hash.update(issuer.as_bytes());
            hash.update(b"\0");
            hash.update(subject.as_bytes());
        }
    }
    let mut hex = String::with_capacity(64);
    for byte in hash.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    let mut only = http::Request::new(());
    if let Ok(value) = http::HeaderValue::from_str(&hex) {
        only.headers_mut().insert(PRINCIPAL_HEADER, value);
    }
    if let Ok(value) = http::HeaderValue::from_str(&escape(&owner.name())) {
        only.headers_mut().insert(CALLER_HEADER, value);
    }
    only.into_parts().0
}

/// The header of the same parts that names the caller for the audit log
/// ([`Identity::name`], percent-encoded outside visible ASCII); absent: anonymous.
pub const CALLER_HEADER: HeaderName = HeaderName::from_static("mcpgw-caller");

/// `text` with `%` and every byte outside visible ASCII as `%XX`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' || byte == b' ' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The error ladder: everything about a stateless request that can be refused without
/// serving it. Returns the log level the request asked for.
fn check(headers: &HeaderMap, request: &JsonRpcRequest<ClientRequest>) -> Result<Option<LoggingLevel>, Error> {
    let meta = request.request.get_meta();
    let header = header_text(headers, &MCP_PROTOCOL_VERSION)?;
    let claimed = match meta.get(META_PROTOCOL_VERSION) {
        None => return Err(Error::InvalidMeta(format!("_meta must name {META_PROTOCOL_VERSION}"))),
        Some(Value::String(v)) => v.as_str(),
        Some(_) => return Err(Error::InvalidMeta(format!("_meta {META_PROTOCOL_VERSION} must be a string"))),
    };
    match header {
        None => {
            return Err(Error::HeaderMismatch("MCP-Protocol-Version is required with a _meta protocol version".into()));
        }
        Some(h) if h != claimed => {
            return Err(Error::HeaderMismatch(format!(
                "MCP-Protocol-Version ({}) differs from the _meta protocol version ({})",
                printable(h),
                printable(claimed)
            )));
        }
        Some(_) => {}
    }
    let missing = meta.missing_required_keys(&rmcp::model::ProtocolVersion::V_2026_07_28);
    if !missing.is_empty() {
        return Err(Error::InvalidMeta(format!("_meta lacks or has malformed: {}", missing.join(", "))));
    }
    if !claimed.parse().is_ok_and(|v| STATELESS_VERSIONS.contains(&v)) {
        return Err(Error::UnsupportedVersion {
            requested: printable(claimed),
            supported: STATELESS_VERSIONS.iter().map(|v| v.as_str()).collect(),
        });
    }
    let method = request.request.method();
    match header_text(headers, &MCP_METHOD)? {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(Error::HeaderMismatch(format!(
                "Mcp-Method ({}) differs from the body's method ({})",
                printable(m),
                printable(method)
            )));
        }
        None => return Err(Error::HeaderMismatch("Mcp-Method is required".into())),
    }
    if let Some(name) = named(&request.request) {
        match header_text(headers, &MCP_NAME)?.map(decode) {
            Some(Some(h)) if h == name => {}
            Some(_) => {
                return Err(Error::HeaderMismatch(format!(
                    "Mcp-Name differs from the body's {}",
                    if matches!(request.request, ClientRequest::ReadResourceRequest(_)) { "uri" } else { "name" }
                )));
            }
            None => return Err(Error::HeaderMismatch(format!("Mcp-Name is required for {method}"))),
        }
    }
    if REMOVED.contains(&method) {
        return Err(Error::MethodNotFound(format!("{method} is not a 2026-07-28 method")));
    }
    log_level(meta)
}

/// The level a request asks log messages from, if it names one.
fn log_level(meta: &RequestMetaObject) -> Result<Option<LoggingLevel>, Error> {
    match meta.get(META_LOG_LEVEL) {
        None => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| Error::InvalidMeta(format!("_meta {META_LOG_LEVEL} is not a log level"))),
    }
}

/// What `Mcp-Name` must carry for this request, if anything.
fn named(request: &ClientRequest) -> Option<&str> {
    match request {
        ClientRequest::CallToolRequest(r) => Some(&r.params.name),
        ClientRequest::GetPromptRequest(r) => Some(&r.params.name),
        ClientRequest::ReadResourceRequest(r) => Some(&r.params.uri),
        _ => None,
    }
}

/// The one value of header `name` as text; `None` when absent. Several values, or one
/// that is not visible ASCII, disagree with any body.
fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Error> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::HeaderMismatch(format!("{name} is given more than once")));
    }
    first.to_str().map(|v| Some(v.trim())).map_err(|_| Error::HeaderMismatch(format!("{name} is not plain text")))
}

/// A header value as the client meant it: a value in the `=?base64?…?=` sentinel is
/// decoded (to text; `None` when it is not valid base64 of UTF-8), any other is itself.
fn decode(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) else {
        return Some(value.to_owned());
    };
    let bytes = BASE64_STANDARD.decode(inner).ok()?;
    String::from_utf8(bytes).ok()
}

/// Client text echoed in an error, bounded and stripped of control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The answer to a stateless request: its result alone as JSON when the client takes JSON
/// and nothing came before it; an error that comes first with the status 2026-07-28 gives
/// it; otherwise an event stream, whose closing before the answer cancels the request.
async fn reply(
    mut rx: mpsc::Receiver<Outgoing>,
    ticket: Ticket,
    accepts: Accepts,
    keepalive: Duration,
) -> Result<Response<Body>, Error> {
    let Some(first) = rx.recv().await else { return Err(Error::Unavailable("the gateway is shutting down")) };
    match first {
        Outgoing::Failure { json, status } => {
            let mut response = json_response(json);
            *response.status_mut() = status;
            Ok(response)
        }
        Outgoing::Message { json, response: true, .. } if accepts.json => Ok(json_response(json)),
        first if accepts.sse => {
            let stream =
                SseStream::new(rx, keepalive).with_prelude(first.to_sse(None)).on_close(Box::new(move || drop(ticket)));
            Ok(sse_response(stream))
        }
        // JSON only: what comes before the answer has nowhere to go.
        _ => loop {
            match rx.recv().await {
                Some(Outgoing::Failure { json, .. } | Outgoing::Message { json, response: true, .. }) => {
                    return Ok(json_response(json));
                }
                Some(_) => {}
                None => return Err(Error::Unavailable("the gateway is shutting down")),
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_name_is_escaped_into_a_header_value() {
        assert_eq!(escape("alice (https://idp)"), "alice (https://idp)");
        assert_eq!(escape("é%\n"), "%C3%A9%25%0A");
        assert!(http::HeaderValue::from_str(&escape("ünï\u{7f}\r\n")).is_ok());
    }

    #[test]
    fn a_caller_is_stamped_once_and_every_request_gets_the_same_parts() {
        let owner = Identity::subject("https://idp".into(), "alice".into(), Vec::new(), serde_json::Map::new());
        let stamped = |owner: &Identity| {
            let mut request =
                JsonRpcRequest::new(rmcp::model::RequestId::Number(1), ClientRequest::PingRequest(Default::default()));
            caller(&mut request, owner);
            request.request.extensions().get::<Parts>().map(|p| p.headers.clone()).expect("parts")
        };
        let first = stamped(&owner);
        // Kept on the identity, and on its clones (the token cache hands out clones).
        let kept = owner.clone().parts(|_| panic!("the parts were made again")).headers.clone();
        assert_eq!(kept, first);
        let principal = first.get(&PRINCIPAL_HEADER).and_then(|v| v.to_str().ok()).expect("a principal");
        assert_eq!(principal.len(), 64);
        assert!(principal.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(first.get(&CALLER_HEADER).map(|v| v.as_bytes()), Some(&b"alice (https://idp)"[..]));
        // The same subject, another credential: the same principal digest.
        let refreshed = Identity::subject("https://idp".into(), "alice".into(), Vec::new(), serde_json::Map::new());
        assert_eq!(stamped(&refreshed).get(&PRINCIPAL_HEADER), first.get(&PRINCIPAL_HEADER));
        let bob = Identity::subject("https://idp".into(), "bob".into(), Vec::new(), serde_json::Map::new());
        assert_ne!(stamped(&bob).get(&PRINCIPAL_HEADER), first.get(&PRINCIPAL_HEADER));
    }

    #[test]
    fn the_base64_sentinel_is_decoded_and_plain_values_kept() {
        assert_eq!(decode("echo").as_deref(), Some("echo"));
        assert_eq!(decode("=?base64?w6ljaG8=?=").as_deref(), Some("écho"));
        assert_eq!(decode("=?base64?!!?="), None);
    }
}
