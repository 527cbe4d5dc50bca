//! The common requests parsed straight into their type, by their method.
//!
//! rmcp's `ClientJsonRpcMessage` is an untagged enum whose request part is another untagged
//! enum of some twenty request types: serde buffers the message and tries each type in
//! turn, building an error for every miss (`tools/call` is the fourteenth). That was the
//! largest single cost of a round trip in the profile. Reading the keys and the method
//! first, then deserializing into that one request type, gives the same value for a
//! fraction of the work. Anything else (other methods, notifications, responses, a message
//! this path cannot read) returns `None`, and the caller parses it the general way, so the
//! result is always the one rmcp's own deserializer would give.

use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, CompleteRequest, GetPromptRequest, JsonRpcMessage,
    JsonRpcRequest, ListPromptsRequest, ListResourcesRequest, ListToolsRequest, PingRequest, ReadResourceRequest,
};
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

/// The request in `body`, if it is one of the common kinds and reads cleanly as that kind.
pub(super) fn request(body: &[u8]) -> Option<ClientJsonRpcMessage> {
    let keys: Keys<'_> = serde_json::from_slice(body).ok()?;
    if !keys.id.0 || keys.result.0 || keys.error.0 {
        return None;
    }
    match keys.method? {
        "tools/call" => typed::<CallToolRequest>(body),
        "tools/list" => typed::<ListToolsRequest>(body),
        "resources/read" => typed::<ReadResourceRequest>(body),
        "resources/list" => typed::<ListResourcesRequest>(body),
        "prompts/get" => typed::<GetPromptRequest>(body),
        "prompts/list" => typed::<ListPromptsRequest>(body),
        "completion/complete" => typed::<CompleteRequest>(body),
        "ping" => typed::<PingRequest>(body),
        _ => None,
    }
}

fn typed<'de, R>(body: &'de [u8]) -> Option<ClientJsonRpcMessage>
where
    R: Deserialize<'de> + Into<ClientRequest>,
{
    let parsed: JsonRpcRequest<R> = serde_json::from_slice(body).ok()?;
    Some(JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc: parsed.jsonrpc,
        id: parsed.id,
        request: parsed.request.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both parses, as JSON values (rmcp's messages have no `PartialEq`), plus whether
    /// this path took the message.
    fn both(body: &str) -> (Option<serde_json::Value>, Option<serde_json::Value>) {
        let general = serde_json::from_str::<ClientJsonRpcMessage>(body).ok();
        let fast = request(body.as_bytes());
        let value = |m: &ClientJsonRpcMessage| serde_json::to_value(m).expect("serializes");
        (fast.as_ref().map(value), general.as_ref().map(value))
    }

    #[test]
    fn common_requests_take_this_path_and_read_as_the_general_parse_does() {
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
            // Not a well-formed request: a stray result, a null id (rmcp refuses both).
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e"},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"e"}}"#,
            // Params that do not fit the type: the general parse reads them as a custom request.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"nome":"e"}}"#,
            // Methods this path does not cover, and a method with an escape in it.
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"e"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x/custom"}"#,
            "{nope",
        ] {
            assert_eq!(both(body).0, None, "{body}");
        }
    }
}
