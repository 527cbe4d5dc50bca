//! The handlers called with no socket: requests built in memory go through
//! [`Edge::handle`] to a fake [`Sessions`] whose MCP server answers every request at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, JsonRpcMessage, ProgressNotification,
    ProgressNotificationParam, ServerJsonRpcMessage, ServerNotification,
};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use crate::auth::Identity;
use crate::body::Body;
use crate::edge::{Edge, EdgeConfig, Route, Sessions};
use crate::error::Error;
use crate::hub::{Hub, HubLimits};
use crate::session::{Session, SessionKind, SessionLimits};
use crate::session_id::SessionId;

/// Sessions in a map, each served by a task that answers `initialize` with the version
/// the client asked for and anything else with an empty result.
#[derive(Default)]
struct FakeSessions {
    map: Mutex<HashMap<SessionId, Arc<Session>>>,
    tasks: TaskTracker,
    /// The hub, started at the first stateless request.
    hub: Mutex<Option<Arc<Hub>>>,
    /// Where the hub's server reports each notification it gets.
    hub_notes: Mutex<Option<tokio::sync::mpsc::Sender<ClientJsonRpcMessage>>>,
}

impl Sessions for FakeSessions {
    fn create(&self, kind: SessionKind, owner: Option<Identity>) -> Result<Arc<Session>, Error> {
        let (session, mut inbound) = Session::new(SessionId::random(), kind, owner, SessionLimits::default());
        let server = session.clone();
        self.tasks.spawn(async move {
            let ended = server.cancel_token();
            while let Some(message) = tokio::select! { m = inbound.recv() => m, () = ended.cancelled() => None } {
                if let Some(answer) = answer(*message) {
                    let _ = server.deliver(answer).await;
                }
            }
        });
        self.map.lock().expect("map").insert(session.id(), session.clone());
        Ok(session)
    }

    fn get(&self, id: SessionId) -> Option<Arc<Session>> {
        self.map.lock().expect("map").get(&id).cloned()
    }

    fn end(&self, id: SessionId) {
        if let Some(session) = self.map.lock().expect("map").remove(&id) {
            session.end();
        }
    }

    /// A hub whose server answers like a session's, except `tools/call`, which it leaves
    /// unanswered after one progress notification (a call in flight); it reports the
    /// notifications it gets.
    fn hub(&self) -> Option<Arc<Hub>> {
        let mut slot = self.hub.lock().expect("hub");
        if let Some(hub) = slot.as_ref() {
            return Some(hub.clone());
        }
        let (hub, mut inbound) = Hub::new(HubLimits::default(), self.tasks.clone(), Default::default());
        let (server, notes) = (hub.clone(), self.hub_notes.lock().expect("notes").clone());
        self.tasks.spawn(async move {
            while let Some(message) = inbound.recv().await {
                match *message {
                    JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::CallToolRequest(_)) => {
                        let token = r.request.get_meta().get_progress_token().expect("a progress token");
                        let progress = ProgressNotification::new(ProgressNotificationParam::new(token, 1.0));
                        let _ = server
                            .deliver(JsonRpcMessage::notification(ServerNotification::ProgressNotification(progress)))
                            .await;
                    }
                    JsonRpcMessage::Notification(n) => {
                        if let Some(notes) = &notes {
                            let _ = notes.send(JsonRpcMessage::Notification(n)).await;
                        }
                    }
                    other => {
                        if let Some(answer) = answer(other) {
                            let _ = server.deliver(answer).await;
                        }
                    }
                }
            }
        });
        *slot = Some(hub.clone());
        Some(hub)
    }
}

fn answer(message: ClientJsonRpcMessage) -> Option<ServerJsonRpcMessage> {
    let JsonRpcMessage::Request(r) = message else { return None };
    let result = match &r.request {
        ClientRequest::InitializeRequest(init) => json!({
            "protocolVersion": init.params.protocol_version.to_string(),
            "capabilities": {},
            "serverInfo": {"name": "fake", "version": "1"},
        }),
        _ => json!({}),
    };
    serde_json::from_value(json!({"jsonrpc": "2.0", "id": r.id, "result": result})).ok()
}

fn edge() -> Edge<FakeSessions> {
    Edge::new(Arc::new(FakeSessions::default()), EdgeConfig::default(), TaskTracker::new())
}

fn post(path: &str, headers: &[(&str, &str)], body: &Value) -> Request<Full<Bytes>> {
    let mut request = Request::post(path)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.body(Full::new(Bytes::from(body.to_string()))).expect("request")
}

async fn read(response: Response<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(std::time::Duration::from_secs(10), body.collect())
        .await
        .expect("the body ends")
        .expect("infallible")
        .to_bytes();
    (parts.status, parts.headers, bytes)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON body")
}

fn initialize(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

fn ping(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// A Streamable session at `version`; its id.
async fn open(edge: &Edge<FakeSessions>, version: &str) -> String {
    let (status, headers, body) =
        read(edge.handle(Route::Streamable, post("/mcp", &[], &initialize(version))).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body)["result"]["protocolVersion"], version);
    headers["mcp-session-id"].to_str().expect("ascii").to_owned()
}

#[tokio::test]
async fn initialize_opens_a_session_that_then_answers_with_cors_on_every_reply() {
    let edge = edge();
    let id = open(&edge, "2025-06-18").await;
    let reply = edge.handle(Route::Streamable, post("/mcp", &[("mcp-session-id", &id)], &ping(5))).await;
    assert!(reply.headers().contains_key("access-control-allow-origin"));
    let (status, headers, body) = read(reply).await;
    assert_eq!((status, &headers["content-type"]), (StatusCode::OK, &"application/json".parse().expect("value")));
    assert_eq!(json_of(&body)["id"], 5);
}

#[tokio::test]
async fn refusals_carry_the_id_of_the_request_they_answer() {
    let edge = edge();
    let id = open(&edge, "2025-06-18").await;
    let cases: [(&[(&str, &str)], StatusCode); 3] = [
        (&[], StatusCode::BAD_REQUEST),
        (&[("mcp-session-id", "0123456789abcdef0123456789abcdef")], StatusCode::NOT_FOUND),
        (&[("mcp-session-id", &id), ("mcp-protocol-version", "1999-01-01")], StatusCode::BAD_REQUEST),
    ];
    for (headers, expected) in cases {
        let (status, _, body) = read(edge.handle(Route::Streamable, post("/mcp", headers, &ping(9))).await).await;
        assert_eq!(status, expected, "{headers:?}");
        assert_eq!(json_of(&body)["id"], 9, "{headers:?}");
    }
    let (status, _, body) = read(edge.handle(Route::Streamable, post("/mcp", &[], &json!([ping(1)]))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["id"], Value::Null, "a batch has no one id");
}

#[tokio::test]
async fn a_legacy_post_with_an_id_never_minted_is_404_and_without_one_400() {
    let edge = edge();
    let uuid = post("/messages?sessionId=4f1c2a9e-8b7d-4c3e-9a2f-1e0d5c6b7a89", &[], &ping(3));
    let (status, _, body) = read(edge.handle(Route::LegacyMessages, uuid).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&body)["id"], 3);
    let (status, _, _) = read(edge.handle(Route::LegacyMessages, post("/messages", &[], &ping(3))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batches_follow_the_negotiated_version() {
    let edge = edge();
    let batch = json!([ping(1), ping(2)]);
    let old = open(&edge, "2025-03-26").await;
    let (status, _, body) =
        read(edge.handle(Route::Streamable, post("/mcp", &[("mcp-session-id", &old)], &batch)).await).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.contains(r#""id":1"#) && body.contains(r#""id":2"#), "{body}");
    let new = open(&edge, "2025-06-18").await;
    let (status, _, body) =
        read(edge.handle(Route::Streamable, post("/mcp", &[("mcp-session-id", &new)], &batch)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["error"]["code"], -32600);
}

#[tokio::test]
async fn event_streams_are_primed_from_2025_11_25_on() {
    let edge = edge();
    for (version, primed) in [("2025-06-18", false), ("2025-11-25", true)] {
        let id = open(&edge, version).await;
        // Only SSE accepted: the answer comes on an event stream whatever it holds.
        let (mut parts, body) = post("/mcp", &[("mcp-session-id", &id)], &ping(4)).into_parts();
        parts.headers.insert("accept", "text/event-stream".parse().expect("value"));
        let (status, headers, body) =
            read(edge.handle(Route::Streamable, Request::from_parts(parts, body)).await).await;
        assert_eq!((status, &headers["content-type"]), (StatusCode::OK, &"text/event-stream".parse().expect("value")));
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(text.starts_with("id: ") && text.contains("retry: 1000"), primed, "{version}: {text}");
        assert!(text.contains(r#""id":4"#), "{text}");
    }
}

/// A stateless (2026-07-28) request: the envelope in `_meta`, the headers that go with it.
fn stateless(id: i64, method: &str, mut params: Value) -> (Vec<(&'static str, String)>, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": "mine",
    });
    let mut headers = vec![("mcp-protocol-version", "2026-07-28".to_owned()), ("mcp-method", method.to_owned())];
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        headers.push(("mcp-name", name.to_owned()));
    }
    (headers, json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
}

fn post_stateless(headers: &[(&'static str, String)], body: &Value) -> Request<Full<Bytes>> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post("/mcp", &headers, body)
}

#[tokio::test]
async fn a_stateless_request_is_answered_by_the_hub_under_its_own_id_with_no_session() {
    let edge = edge();
    let (headers, body) = stateless(41, "tools/list", json!({}));
    let (status, _, reply) = read(edge.handle(Route::Streamable, post_stateless(&headers, &body)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&reply)["id"], 41);
    assert!(edge.sessions.map.lock().expect("map").is_empty(), "no session");
}

#[tokio::test]
async fn dropping_a_stateless_event_stream_cancels_its_request_in_the_hub() {
    let edge = edge();
    let (notes, mut seen) = tokio::sync::mpsc::channel(4);
    *edge.sessions.hub_notes.lock().expect("notes") = Some(notes);
    let (headers, body) = stateless(42, "tools/call", json!({"name": "hang", "arguments": {}}));
    let response = edge.handle(Route::Streamable, post_stateless(&headers, &body)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("a frame")
        .expect("one")
        .expect("infallible")
        .into_data()
        .expect("data");
    assert!(String::from_utf8_lossy(&first).contains(r#""progressToken":"mine""#), "the client's token");
    drop(body);
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), seen.recv()).await.expect("in time");
    let Some(JsonRpcMessage::Notification(n)) = note else { panic!("a notification") };
    assert!(matches!(n.notification, ClientNotification::CancelledNotification(_)), "{n:?}");
}
