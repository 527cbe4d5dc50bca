//! What a request to a modern (2026-07-28) upstream needs beyond the handshake era's: the
//! `_meta` it carries, the retry after a header mismatch, and the client's input the
//! upstream asks for with an `InputRequiredResult` when the client is a handshake-era
//! session (the reverse of [`crate::proxy`]'s MRTR bridge).
//!
//! rmcp's client does the rest once the connection was started with `server/discover`: it
//! puts the link's protocol version, client info and capabilities in every request's
//! `_meta`, and its Streamable HTTP transport sets `MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name` and the `Mcp-Param-*` headers from the request it sends and from the tool
//! schemas of the `tools/list` answers it saw. mcpgw renames tools before it forwards a
//! call, so those headers are the upstream's own names.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28, and still what an upstream asks for

use rmcp::model::{
    ClientRequest, ClientResult, ErrorCode, GetExtensions, InputRequest, InputRequests, InputResponses, LoggingLevel,
    RequestMetaObject, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, PeerRequestOptions, RequestContext};
use rmcp::{ErrorData, RoleServer, ServiceError};

use crate::error::Error;

/// How many times a handshake-era client is asked for input during one call at most: an
/// upstream asking for more is failing to make progress.
pub(crate) const MAX_ROUNDS: usize = 16;

/// The `_meta` keys that describe the link itself (its version and identity), which rmcp
/// sets from the connection; a stateless client's own would name another connection.
const LINK_OWN: [&str; 2] = ["io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientInfo"];

/// A request's `_meta` as it goes to a modern upstream. A stateless client's capabilities
/// and log level stay (they override the link's): the upstream then asks only for what
/// this client can answer, and logs only when this client asked for it. A session's
/// request has neither: the link's capabilities apply (its session client's, or the
/// gateway's for a shared upstream), and `session_level`, the level the session last set
/// with `logging/setLevel`.
pub(crate) fn modern_meta(meta: &RequestMetaObject, session_level: Option<LoggingLevel>) -> RequestMetaObject {
    let mut meta = meta.clone();
    for key in LINK_OWN {
        meta.0.0.remove(key);
    }
    if let Some(level) = session_level
        && meta.log_level().is_none()
    {
        meta.set_log_level(level);
    }
    meta
}

/// Whether an upstream refused a request because its headers do not match its body
/// (-32020): its tool schemas (which say which arguments become `Mcp-Param-*` headers)
/// changed since they were listed.
pub(crate) fn is_header_mismatch(e: &Error) -> bool {
    matches!(e, Error::Request { source, .. }
        if matches!(source.as_ref(), ServiceError::McpError(data) if data.code == ErrorCode::HEADER_MISMATCH))
}

/// Puts a round's answers and the upstream's `requestState` in the request, for its retry.
/// Only the three requests that may be answered with an `InputRequiredResult` have them.
pub(crate) fn with_answers(
    request: &mut ClientRequest,
    responses: InputResponses,
    state: Option<String>,
) -> Result<(), ErrorData> {
    let (to, at) = match request {
        ClientRequest::CallToolRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        ClientRequest::GetPromptRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        ClientRequest::ReadResourceRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        _ => {
            return Err(ErrorData::internal_error(
                "the upstream answered a request that cannot need the client's input with an input-required result",
                None,
            ));
        }
    };
    *to = Some(responses);
    *at = state;
    Ok(())
}

/// Asks a handshake-era session's client what a modern upstream's `InputRequiredResult`
/// needs: each input request becomes an ordinary request on the session, tied to the
/// client's call (so it rides that call's stream), and the answers come back under the
/// upstream's keys. A client cancel ends the asking.
pub(crate) async fn ask_session(
    requests: InputRequests,
    ctx: &RequestContext<RoleServer>,
) -> Result<InputResponses, ErrorData> {
    let mut responses = InputResponses::new();
    for (key, input) in requests {
        let mut request = match input {
            InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
            InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
            InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
            // A request kind a later revision adds: nothing to ask a 2025 client with.
            _ => {
                return Err(ErrorData::internal_error(
                    format!("the upstream asks for input {key:?} of a kind mcpgw cannot relay"),
                    None,
                ));
            }
        };
        request.extensions_mut().insert(OriginatingRequestId(ctx.id.clone()));
        let handle = ctx
            .peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| ErrorData::internal_error(format!("could not ask the client: {e}"), None))?;
        let answer = tokio::select! {
            answer = handle.await_response() => answer,
            () = ctx.ct.cancelled() => return Err(Error::Cancelled.into()),
        };
        let value = match answer {
            Ok(result) => client_result_value(result)?,
            Err(ServiceError::McpError(e)) => return Err(e),
            Err(e) => return Err(ErrorData::internal_error(format!("the client did not answer: {e}"), None)),
        };
        responses.insert(key, value);
    }
    Ok(responses)
}

/// A client's answer as the JSON an `inputResponses` entry holds.
fn client_result_value(result: ClientResult) -> Result<serde_json::Value, ErrorData> {
    let value = match result {
        ClientResult::CreateMessageResult(r) => serde_json::to_value(r),
        ClientResult::ElicitResult(r) => serde_json::to_value(r),
        ClientResult::ListRootsResult(r) => serde_json::to_value(r),
        other => serde_json::to_value(other),
    };
    value.map_err(|e| ErrorData::internal_error(format!("the client's answer cannot be relayed: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stateless_clients_capabilities_and_log_level_reach_a_modern_upstream() {
        let meta: RequestMetaObject = serde_json::from_value(serde_json::json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": "c", "version": "1" },
            "io.modelcontextprotocol/clientCapabilities": { "sampling": {} },
            "io.modelcontextprotocol/logLevel": "info",
            "progressToken": 7
        }))
        .expect("a _meta object");
        let sent = serde_json::to_value(modern_meta(&meta, Some(LoggingLevel::Error))).expect("serializes");
        assert_eq!(
            sent,
            serde_json::json!({
                "io.modelcontextprotocol/clientCapabilities": { "sampling": {} },
                "io.modelcontextprotocol/logLevel": "info",
                "progressToken": 7
            })
        );
    }

    #[test]
    fn a_sessions_log_level_goes_in_the_meta_of_its_requests() {
        let meta: RequestMetaObject =
            serde_json::from_value(serde_json::json!({ "progressToken": 1 })).expect("a _meta object");
        let sent = modern_meta(&meta, Some(LoggingLevel::Warning));
        assert_eq!(sent.log_level(), Some(LoggingLevel::Warning));
        assert_eq!(modern_meta(&meta, None).log_level(), None);
    }
}
