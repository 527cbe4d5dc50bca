//! Reading a POST body and parsing it, once, into JSON-RPC messages. Requests are read
//! straight into their type (module `by_method`), and a request that rmcp would read as custom
//! although it has a type for its method is refused.

mod by_method;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, RequestId};
use serde::Deserialize;
use serde_json::error::Category;

use crate::error::Error;

/// A parsed POST body.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "moved once, right away; boxing would cost an allocation per message")]
pub enum Posted {
    /// One message.
    Single(ClientJsonRpcMessage),
    /// A JSON array of messages (allowed only for sessions at 2025-03-26).
    Batch(Vec<ClientJsonRpcMessage>),
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(Error::PayloadTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Error::PayloadTooLarge(limit)),
        Err(_) => Err(Error::BodyRead),
    }
}

/// Parses a body: malformed JSON is -32700, JSON that is not a JSON-RPC message -32600, a
/// request of a method rmcp knows whose params do not read as that method's -32602.
pub fn parse(body: &[u8]) -> Result<Posted, Error> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<ClientJsonRpcMessage> = serde_json::from_slice(body).map_err(classify)?;
        if batch.is_empty() {
            return Err(Error::InvalidRequest("an empty batch"));
        }
        if let Some(method) = batch.iter().find_map(misread_method) {
            return Err(Error::InvalidParams { method, reason: "they do not read as that method's".to_owned() });
        }
        return Ok(Posted::Batch(batch));
    }
    let misread = match by_method::request(body) {
        by_method::Read::Request(request) => return Ok(Posted::Single(request)),
        by_method::Read::Misread(e) => Some(e),
        by_method::Read::Other => None,
    };
    let message: ClientJsonRpcMessage = serde_json::from_slice(body).map_err(classify)?;
    match misread_method(&message) {
        Some(method) => Err(Error::InvalidParams {
            method,
            reason: misread.map_or_else(|| "they do not read as that method's".to_owned(), |e| e.to_string()),
        }),
        None => Ok(Posted::Single(message)),
    }
}

/// The method of a request rmcp read as custom although it has a type for that method
/// (see [`by_method::is_known`] for why that is refused).
fn misread_method(message: &ClientJsonRpcMessage) -> Option<String> {
    match message {
        JsonRpcMessage::Request(r) => match &r.request {
            ClientRequest::CustomRequest(c) if by_method::is_known(&c.method) => Some(c.method.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The id of the request in `body`, when it is a JSON object with a `method` and an `id`
/// that reads as one (whether or not the rest is a valid message), for an error to carry.
/// Only refusals call it: the body is read again, the request path never pays for it.
pub fn request_id(body: &[u8]) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct Peek {
        method: Option<serde::de::IgnoredAny>,
        id: Option<RequestId>,
    }
    let peek: Peek = serde_json::from_slice(body).ok()?;
    peek.method.and(peek.id)
}

fn classify(e: serde_json::Error) -> Error {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::Parse(e),
        Category::Data => Error::InvalidRequest("the body is not a JSON-RPC 2.0 message"),
    }
}

/// A label for the message's method, from a fixed set (a client cannot grow it): the MCP
/// method of a request, or its kind.
pub fn method_label(message: &ClientJsonRpcMessage) -> &'static str {
    let JsonRpcMessage::Request(r) = message else {
        return match message {
            JsonRpcMessage::Notification(_) => "notification",
            JsonRpcMessage::Response(_) => "response",
            _ => "error",
        };
    };
    match &r.request {
        ClientRequest::PingRequest(_) => "ping",
        ClientRequest::InitializeRequest(_) => "initialize",
        ClientRequest::DiscoverRequest(_) => "server/discover",
        ClientRequest::CompleteRequest(_) => "completion/complete",
        ClientRequest::SetLevelRequest(_) => "logging/setLevel",
        ClientRequest::GetPromptRequest(_) => "prompts/get",
        ClientRequest::ListPromptsRequest(_) => "prompts/list",
        ClientRequest::ListResourcesRequest(_) => "resources/list",
        ClientRequest::ListResourceTemplatesRequest(_) => "resources/templates/list",
        ClientRequest::ReadResourceRequest(_) => "resources/read",
        ClientRequest::SubscribeRequest(_) => "resources/subscribe",
        ClientRequest::UnsubscribeRequest(_) => "resources/unsubscribe",
        ClientRequest::CallToolRequest(_) => "tools/call",
        ClientRequest::ListToolsRequest(_) => "tools/list",
        ClientRequest::SubscriptionsListenRequest(_) => "subscriptions/listen",
        _ => "other",
    }
}

/// Whether this message is the `initialize` request.
pub fn is_initialize(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::InitializeRequest(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_is_a_parse_error() {
        assert!(matches!(parse(b"{nope"), Err(Error::Parse(_))));
        assert!(matches!(parse(b""), Err(Error::Parse(_))));
    }

    #[test]
    fn json_that_is_not_jsonrpc_is_invalid() {
        assert!(matches!(parse(br#"{"foo":1}"#), Err(Error::InvalidRequest(_))));
        assert!(matches!(parse(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), Err(Error::InvalidRequest(_))));
        assert!(matches!(parse(b"[]"), Err(Error::InvalidRequest(_))));
        assert!(matches!(parse(b"42"), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn parses_single_and_batch() {
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let Ok(Posted::Single(m)) = parse(init) else { panic!("single") };
        assert!(is_initialize(&m));
        let batch =
            br#"[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
        assert!(matches!(parse(batch), Ok(Posted::Batch(b)) if b.len() == 2));
    }

    /// rmcp reads these as custom requests; forwarded, they would read as the method's own
    /// type upstream (the duplicate key collapses), so what mcpgw routed by and what the
    /// upstream runs would differ (found by the message_parse fuzz target).
    #[test]
    fn a_known_method_that_does_not_read_as_its_type_is_invalid_params() {
        let refused = |body: &[u8]| match parse(body) {
            Err(Error::InvalidParams { method, reason }) => (method, reason),
            other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
        };
        let duplicate = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"i","version":"0.1","version":"0.2"}}}"#;
        let (method, reason) = refused(duplicate);
        assert_eq!(method, "initialize");
        assert!(reason.contains("duplicate field `version`"), "{reason}");
        let (method, reason) = refused(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"nome":"e"}}"#);
        assert_eq!(method, "tools/call");
        assert!(reason.contains("missing field `name`"), "{reason}");
        // An escaped method is read by the general parse only: refused all the same.
        let (method, _) = refused(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"nome":"e"}}"#);
        assert_eq!(method, "tools/call");
        let (method, _) = refused(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}}]"#,
        );
        assert_eq!(method, "tools/call");
        assert_eq!(Error::InvalidParams { method, reason }.status_and_code(), (http::StatusCode::BAD_REQUEST, -32602));
    }

    #[test]
    fn a_bad_envelope_stays_an_invalid_request_whatever_the_method() {
        let body = br#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"e"}}"#;
        assert!(matches!(parse(body), Err(Error::InvalidRequest(_))));
        let null_id = br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"e"}}"#;
        assert!(matches!(parse(null_id), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x/custom","params":{"a":1}}"#),
            Ok(Posted::Single(_))
        ));
    }

    #[test]
    fn a_request_id_is_read_from_requests_only() {
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#), Some(RequestId::Number(3)));
        assert_eq!(
            request_id(br#"{"jsonrpc":"1.0","id":"a","method":"x","params":7}"#),
            Some(RequestId::String("a".into())),
            "read even when the message is otherwise invalid"
        );
        for none in [&br#"{"jsonrpc":"2.0","id":3,"result":{}}"#[..], b"{nope", b"[]", br#"{"method":"x"}"#] {
            assert_eq!(request_id(none), None, "{}", String::from_utf8_lossy(none));
        }
    }

    #[tokio::test]
    async fn refuses_bodies_over_the_limit() {
        let body = http_body_util::Full::new(Bytes::from(vec![b' '; 100]));
        assert!(matches!(read_body(body, 10).await, Err(Error::PayloadTooLarge(10))));
    }
}
