//! The crate's one error enum, and the one function that maps it to the wire.

use http::{HeaderValue, Response, StatusCode, header};
use rmcp::model::RequestId;
use serde_json::json;

use crate::body::Body;

/// Everything an MCP HTTP request can be refused for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not valid JSON.
    #[error("Parse error: {0}")]
    Parse(#[source] serde_json::Error),
    /// The body is JSON but not a JSON-RPC message we accept here.
    #[error("Invalid Request: {0}")]
    InvalidRequest(&'static str),
    /// A non-initialize request arrived without `Mcp-Session-Id`.
    #[error("Bad Request: Mcp-Session-Id header is required")]
    MissingSessionId,
    /// A legacy POST without a usable `sessionId` query parameter.
    #[error("Bad Request: {0}")]
    BadSessionParam(&'static str),
    /// No live session has this id (or it belongs to the other transport).
    #[error("Session not found")]
    SessionNotFound,
    /// The HTTP method is not served on this path.
    #[error("Method Not Allowed")]
    MethodNotAllowed(&'static str),
    /// The `Accept` header names nothing we can send.
    #[error("Not Acceptable: {0}")]
    NotAcceptable(&'static str),
    /// The body is not `application/json`.
    #[error("Unsupported Media Type: Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The body is over the configured limit.
    #[error("Payload Too Large: the limit is {0} bytes")]
    PayloadTooLarge(usize),
    /// Reading the body failed (the client went away or sent a broken body).
    #[error("Bad Request: the request body could not be read")]
    BodyRead,
    /// `MCP-Protocol-Version` names a version we do not speak.
    #[error("Bad Request: Unsupported protocol version: {0}")]
    UnsupportedProtocolVersion(String),
    /// Host or Origin not allowed (DNS rebinding protection).
    #[error("Forbidden: {0}")]
    Forbidden(String),
    /// The gateway cannot take this session or message now.
    #[error("Service Unavailable: {0}")]
    Unavailable(&'static str),
    /// No accepted bearer token; the optional text is the RFC 6750 `error` code.
    #[error("Unauthorized: a valid bearer token is required")]
    Unauthorized(Option<&'static str>),
    /// A valid token without a scope the gateway requires (RFC 6750 `insufficient_scope`).
    #[error("Forbidden: the token lacks a required scope")]
    InsufficientScope,
    /// `Last-Event-ID` names nothing this session can resume.
    #[error("{0}")]
    Resume(#[from] crate::event_log::ResumeError),
    /// A stateless request's headers disagree with its body, or lack what the body says
    /// (2026-07-28: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).
    #[error("Header mismatch: {0}")]
    HeaderMismatch(String),
    /// A stateless request names a protocol version mcpgw does not serve statelessly.
    #[error("Unsupported protocol version: {requested}")]
    UnsupportedVersion {
        /// The version asked for, as sent.
        requested: String,
        /// The versions served.
        supported: Vec<&'static str>,
    },
    /// A request of a method rmcp has a type for, whose params do not read as that type.
    #[error("Invalid params for {method}: {reason}")]
    InvalidParams {
        /// The request's method.
        method: String,
        /// What did not read.
        reason: String,
    },
    /// A stateless request's `_meta` lacks a required key, or one is malformed.
    #[error("Invalid params: {0}")]
    InvalidMeta(String),
    /// A stateless request for a method 2026-07-28 does not have.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// A stateless request needs a client capability its `_meta` does not declare; the
    /// value names the missing capabilities as a `ClientCapabilities` object.
    #[error("Missing required client capability")]
    MissingCapability(serde_json::Value),
    /// A tool call over a rate limit.
    #[error("{0}")]
    RateLimited(crate::refusal::Refusal),
}

/// JSON-RPC "invalid request".
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC "parse error".
const PARSE_ERROR: i32 = -32700;
/// Implementation-defined server error, used for HTTP-level refusals of the handshake era.
/// Deliberately not one of the 2026-07-28 codes (-32020..-32022): those are for stateless
/// requests only.
const SERVER_ERROR: i32 = -32000;
/// The code the SDKs use for an unknown session.
const SESSION_NOT_FOUND: i32 = -32001;
/// 2026-07-28: headers and body disagree.
const HEADER_MISMATCH: i32 = -32020;
/// 2026-07-28: a client capability the request needs was not declared.
const MISSING_CAPABILITY: i32 = -32021;
/// 2026-07-28: the protocol version is not served.
const UNSUPPORTED_VERSION: i32 = -32022;
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i32 = -32601;

impl Error {
    /// The HTTP status and JSON-RPC error code this error is answered with.
    pub fn status_and_code(&self) -> (StatusCode, i32) {
        match self {
            Error::Parse(_) => (StatusCode::BAD_REQUEST, PARSE_ERROR),
            Error::InvalidRequest(_) => (StatusCode::BAD_REQUEST, INVALID_REQUEST),
            Error::MissingSessionId
            | Error::BadSessionParam(_)
            | Error::BodyRead
            | Error::UnsupportedProtocolVersion(_) => (StatusCode::BAD_REQUEST, SERVER_ERROR),
            Error::SessionNotFound => (StatusCode::NOT_FOUND, SESSION_NOT_FOUND),
            Error::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, SERVER_ERROR),
            Error::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, SERVER_ERROR),
            Error::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, SERVER_ERROR),
            Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, SERVER_ERROR),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, SERVER_ERROR),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, SERVER_ERROR),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, SERVER_ERROR),
            Error::InsufficientScope => (StatusCode::FORBIDDEN, SERVER_ERROR),
            Error::Resume(crate::event_log::ResumeError::Malformed) => (StatusCode::BAD_REQUEST, SERVER_ERROR),
            Error::Resume(crate::event_log::ResumeError::Foreign) => (StatusCode::NOT_FOUND, SERVER_ERROR),
            Error::HeaderMismatch(_) => (StatusCode::BAD_REQUEST, HEADER_MISMATCH),
            Error::UnsupportedVersion { .. } => (StatusCode::BAD_REQUEST, UNSUPPORTED_VERSION),
            Error::InvalidMeta(_) | Error::InvalidParams { .. } => (StatusCode::BAD_REQUEST, INVALID_PARAMS),
            Error::MethodNotFound(_) => (StatusCode::NOT_FOUND, METHOD_NOT_FOUND),
            Error::MissingCapability(_) => (StatusCode::BAD_REQUEST, MISSING_CAPABILITY),
            Error::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, crate::refusal::RATE_LIMITED),
        }
    }

    /// The JSON-RPC error's `data`, for the errors that carry one.
    fn data(&self) -> Option<serde_json::Value> {
        match self {
            Error::UnsupportedVersion { requested, supported } => {
                Some(json!({ "requested": requested, "supported": supported }))
            }
            Error::MissingCapability(required) => Some(json!({ "requiredCapabilities": required })),
            Error::RateLimited(refusal) => refusal.to_jsonrpc().data,
            _ => None,
        }
    }

    /// The response when no request id is known: the status, and a JSON-RPC error body
    /// with `id: null`.
    pub fn into_response(self) -> Response<Body> {
        self.answering(None)
    }

    /// The response to the request with this id (JSON-RPC: an error answering a request
    /// whose id could be read carries it; `null` only when it could not).
    pub fn answering(self, id: Option<&RequestId>) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let mut error = json!({ "code": code, "message": self.to_string() });
        if let Some(data) = self.data() {
            error["data"] = data;
        }
        let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
        let mut response = Response::new(Body::full(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Error::MethodNotAllowed(allow) = self {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Error::Unavailable(_) = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Error::RateLimited(refusal) = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs()));
        }
        if let Error::Unauthorized(code) = self {
            let challenge = match code {
                Some("invalid_token") => r#"Bearer realm="mcpgw", error="invalid_token""#,
                Some(_) => r#"Bearer realm="mcpgw", error="invalid_request""#,
                None => r#"Bearer realm="mcpgw""#,
            };
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Error::InsufficientScope = self {
            let challenge = r#"Bearer realm="mcpgw", error="insufficient_scope""#;
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusals of the handshake era: a 2026-07-28 code there would make a client that
    /// probes for that revision think it is served.
    #[test]
    fn codes_never_use_the_2026_range() {
        let all = [
            Error::InvalidRequest("x"),
            Error::MissingSessionId,
            Error::BadSessionParam("x"),
            Error::SessionNotFound,
            Error::MethodNotAllowed("GET"),
            Error::NotAcceptable("x"),
            Error::UnsupportedMediaType,
            Error::PayloadTooLarge(1),
            Error::BodyRead,
            Error::UnsupportedProtocolVersion("x".into()),
            Error::Forbidden("x".into()),
            Error::Unavailable("x"),
        ];
        for e in all {
            let (_, code) = e.status_and_code();
            assert!(!(-32022..=-32020).contains(&code), "{e}");
        }
    }

    #[test]
    fn an_error_carries_the_id_it_answers() {
        let body = |r: Response<Body>| match r.into_body() {
            Body::Full(Some(b)) => serde_json::from_slice::<serde_json::Value>(&b).expect("json"),
            other => panic!("a full body, not {other:?}"),
        };
        let answered = body(Error::SessionNotFound.answering(Some(&RequestId::Number(7))));
        assert_eq!(answered["id"], 7);
        assert_eq!(body(Error::SessionNotFound.into_response())["id"], serde_json::Value::Null);
    }

    #[test]
    fn stateless_refusals_carry_their_2026_codes_and_data() {
        let body = |r: Response<Body>| match r.into_body() {
            Body::Full(Some(b)) => serde_json::from_slice::<serde_json::Value>(&b).expect("json"),
            other => panic!("a full body, not {other:?}"),
        };
        let unsupported = Error::UnsupportedVersion { requested: "v9".into(), supported: vec!["2026-07-28"] };
        let r = unsupported.answering(Some(&RequestId::Number(3)));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let b = body(r);
        assert_eq!((b["id"].clone(), b["error"]["code"].clone()), (json!(3), json!(-32022)));
        assert_eq!(b["error"]["data"], json!({ "requested": "v9", "supported": ["2026-07-28"] }));
        let missing = body(Error::MissingCapability(json!({ "sampling": {} })).into_response());
        assert_eq!(missing["error"]["data"]["requiredCapabilities"], json!({ "sampling": {} }));
        assert_eq!(Error::MethodNotFound("ping".into()).status_and_code(), (StatusCode::NOT_FOUND, -32601));
        assert_eq!(Error::HeaderMismatch("x".into()).status_and_code(), (StatusCode::BAD_REQUEST, -32020));
        assert_eq!(Error::InvalidMeta("x".into()).status_and_code(), (StatusCode::BAD_REQUEST, -32602));
    }

    #[test]
    fn a_call_over_a_rate_limit_is_429_with_retry_after_rounded_up() {
        let refusal = crate::refusal::Refusal {
            limit: crate::refusal::Limit::Tool,
            retry_after: std::time::Duration::from_millis(1200),
        };
        let r = Error::RateLimited(refusal).answering(Some(&RequestId::Number(9)));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let Body::Full(Some(b)) = r.into_body() else { panic!("a full body") };
        let b: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!((b["id"].clone(), b["error"]["code"].clone()), (json!(9), json!(-32029)));
        assert_eq!(b["error"]["data"], json!({ "limit": "per-tool", "retryAfter": 2 }));
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let r = Error::MethodNotAllowed("GET, POST, DELETE").into_response();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, POST, DELETE");
    }
}
