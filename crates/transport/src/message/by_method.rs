//! Requests parsed straight into their type, by their method.
//!
//! rmcp's `ClientJsonRpcMessage` is an untagged enum whose request part is another untagged
//! enum of some twenty request types: serde buffers the message and tries each type in
//! turn, building an error for every miss (`tools/call` is the fourteenth). That was the
//! largest single cost of a round trip in the profile. Reading the keys and the method
//! first, then deserializing into that one request type, gives the same value for a
//! fraction of the work. Anything else (other methods, notifications, responses, a message
//! this path cannot read) is left to the general parse, so the result is always the one
//! rmcp's own deserializer would give, but for one case it refuses: a request whose method
//! rmcp has a type for that does not read as that type ([`is_known`]).

#![allow(deprecated)] // logging/setLevel and resource subscriptions are deprecated in 2026-07-28 only, and read all the same

use rmcp::model::{
    CallToolRequest, CancelTaskRequest, ClientJsonRpcMessage, ClientRequest, CompleteRequest, DiscoverRequest,
    GetPromptRequest, GetSkillRequest, GetTaskRequest, InitializeRequest, JsonRpcMessage, JsonRpcRequest,
    ListPromptsRequest, ListResourceTemplatesRequest, ListResourcesRequest, ListSkillsRequest, ListToolsRequest,
    PingRequest, ReadResourceDirectoryRequest, ReadResourceRequest, SetLevelRequest, SubscribeRequest,
    SubscriptionsListenRequest, UnsubscribeRequest, UpdateTaskRequest,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The keys that tell a request from the other kinds of message, and the method.
#[derive(Deserialize)]
struct Keys<'a> {
    /// Borrowed: a method with escapes in it fails here and takes the general path.
    #[serde(default, borrow)]
    method: Option<&'a str>,
    #[serde(default)]
    id: Present,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

/// Whether a key was there at all, whatever its value (`"id": null` counts, as in rmcp's
/// own check of a message's shape).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self(true))
    }
}

/// What this path made of a body.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once, straight into `Posted`; boxing would cost an allocation per message"
)]
pub(super) enum Read {
    /// A request of a method rmcp has a type for, read as that type.
    Request(ClientJsonRpcMessage),
    /// A request of such a method that does not read as its type: why (the general parse
    /// decides whether the envelope itself is at fault).
    Misread(serde_json::Error),
    /// Not a request, or not a method rmcp has a type for, or a method this path cannot
    /// read (an escape in it).
    Other,
}

/// Reads `body` as the request its method names, when rmcp has a type for that method.
pub(super) fn request(body: &[u8]) -> Read {
    let Ok(keys) = serde_json::from_slice::<Keys<'_>>(body) else {
        return Read::Other;
    };
    if !keys.id.0 || keys.result.0 || keys.error.0 {
        return Read::Other;
    }
    match keys.method.and_then(reader) {
        Some(read) => match read(body) {
            Ok(request) => Read::Request(request),
            Err(e) => Read::Misread(e),
        },
        None => Read::Other,
    }
}

/// Whether rmcp has a request type for `method`. rmcp reads a request of such a method that
/// does not fit its type as a custom request; serialized again (as it would be, forwarded),
/// the same request may well read as the method's type (a duplicate key, say, is refused by
/// the type but collapses in a JSON value), so what mcpgw routed and what an upstream reads
/// would differ. Such a request is refused instead.
pub(super) fn is_known(method: &str) -> bool {
    reader(method).is_some()
}

type Reader = fn(&[u8]) -> Result<ClientJsonRpcMessage, serde_json::Error>;

/// The reader of each request method rmcp has a type for (every `ClientRequest` variant
/// but the custom one), the common ones first.
fn reader(method: &str) -> Option<Reader> {
    Some(match method {
        "tools/call" => typed::<CallToolRequest>,
        "tools/list" => typed::<ListToolsRequest>,
        "resources/read" => typed::<ReadResourceRequest>,
        "resources/list" => typed::<ListResourcesRequest>,
        "prompts/get" => typed::<GetPromptRequest>,
        "prompts/list" => typed::<ListPromptsRequest>,
        "completion/complete" => typed::<CompleteRequest>,
        "ping" => typed::<PingRequest>,
        "initialize" => typed::<InitializeRequest>,
        "server/discover" => typed::<DiscoverRequest>,
        "logging/setLevel" => typed::<SetLevelRequest>,
        "resources/templates/list" => typed::<ListResourceTemplatesRequest>,
        "resources/subscribe" => typed::<SubscribeRequest>,
        "resources/unsubscribe" => typed::<UnsubscribeRequest>,
        "resources/directory/read" => typed::<ReadResourceDirectoryRequest>,
        "subscriptions/listen" => typed::<SubscriptionsListenRequest>,
        "tasks/get" => typed::<GetTaskRequest>,
        "tasks/update" => typed::<UpdateTaskRequest>,
        "tasks/cancel" => typed::<CancelTaskRequest>,
        "skills/list" => typed::<ListSkillsRequest>,
        "skills/get" => typed::<GetSkillRequest>,
        _ => return None,
    })
}

fn typed<R>(body: &[u8]) -> Result<ClientJsonRpcMessage, serde_json::Error>
where
    R: DeserializeOwned + Into<ClientRequest>,
{
    let parsed: JsonRpcRequest<R> = serde_json::from_slice(body)?;
    Ok(JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc: parsed.jsonrpc,
        id: parsed.id,
        request: parsed.request.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both parses, as JSON values (rmcp's messages have no `PartialEq`), when this path
    /// took the message.
    fn both(body: &str) -> (Option<serde_json::Value>, Option<serde_json::Value>) {
        let general = serde_json::from_str::<ClientJsonRpcMessage>(body).ok();
        let value = |m: &ClientJsonRpcMessage| serde_json::to_value(m).expect("serializes");
        let fast = match request(body.as_bytes()) {
            Read::Request(m) => Some(value(&m)),
            Read::Misread(_) | Read::Other => None,
        };
        (fast, general.as_ref().map(value))
    }

    #[test]
    fn known_requests_take_this_path_and_read_as_the_general_parse_does() {
        for body in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","_meta":{"progressToken":3}}}"#,
            r#"{"method":"tools/call","params":{"name":"x"},"id":1,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"t","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":"file:///a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ] {
            let (fast, general) = both(body);
            assert!(fast.is_some(), "not taken: {body}");
            assert_eq!(fast, general, "{body}");
        }
    }

    #[test]
    fn everything_else_is_left_to_the_general_parse() {
        for body in [
            // Other kinds of message.
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}"#,
            // Not a well-formed request: a stray result (rmcp refuses it).
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"},"result":{}}"#,
            // A method rmcp has no type for, and a method with an escape in it.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"e"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x/custom"}"#,
            "{nope",
        ] {
            assert!(matches!(request(body.as_bytes()), Read::Other), "{body}");
        }
    }

    #[test]
    fn a_known_method_whose_params_do_not_fit_is_a_misread() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"nome":"e"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
        ] {
            assert!(matches!(request(body.as_bytes()), Read::Misread(_)), "{body}");
        }
    }
}
