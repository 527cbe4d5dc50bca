//! Legacy HTTP+SSE (spec 2024-11-05): `GET /sse`, `POST /messages?sessionId=`, and the
//! same handshake on `GET /mcp` for clients that fall back on the URL they were given.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, LegacySession, SseReader, eventually, initialize, request, session_counts};
use serde_json::json;

#[tokio::test]
async fn the_endpoint_event_comes_first_and_replies_come_on_the_stream() {
    let gw = Gateway::start();
    let mut s = LegacySession::connect(&gw, "/sse").await;
    assert_eq!(s.stream.headers["content-type"], "text/event-stream");
    assert_eq!(s.stream.headers["x-accel-buffering"], "no");
    let path = s.endpoint.trim_start_matches(&gw.base).to_owned();
    let id = path.strip_prefix("/messages?sessionId=").expect("a same-origin path");
    assert_eq!(id.len(), 32);
    let init = s.initialize("2024-11-05").await;
    assert_eq!(init["id"], 0);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    let echo = s.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": "legacy"}})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "legacy");
}

#[tokio::test]
async fn progress_and_result_both_arrive_on_the_stream() {
    let gw = Gateway::start();
    let mut s = LegacySession::connect(&gw, "/sse").await;
    s.initialize("2024-11-05").await;
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 30, "steps": 2}, "_meta": {"progressToken": 8}}});
    assert_eq!(s.post(&call).await.status, StatusCode::ACCEPTED);
    let first = s.stream.next_message().await;
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(first["params"]["progressToken"], 8);
    let second = s.stream.next_message().await;
    assert_eq!(second["method"], "notifications/progress");
    let result = s.stream.next_message().await;
    assert_eq!(result["id"], 3);
}

#[tokio::test]
async fn a_request_before_initialize_gets_an_error_on_the_stream() {
    let gw = Gateway::start();
    let mut s = LegacySession::connect(&gw, "/sse").await;
    assert_eq!(s.post(&request(4, "tools/list", json!({}))).await.status, StatusCode::ACCEPTED);
    let reply = s.stream.next_message().await;
    assert_eq!(reply["id"], 4);
    assert!(reply["error"]["code"].is_i64(), "{reply}");
    let init = s.initialize("2024-11-05").await;
    assert!(init["result"].is_object(), "the stream stays usable: {init}");
}

#[tokio::test]
async fn the_endpoint_keeps_the_public_prefix_or_the_forwarded_one() {
    let gw = Gateway::start_with("[server]\npublic_prefix = \"/gw\"\n");
    let s = LegacySession::connect(&gw, "/sse").await;
    assert!(s.endpoint.starts_with(&gw.url("/gw/messages?sessionId=")), "{}", s.endpoint);
    let http = Http::new();
    let headers = [("accept", "text/event-stream"), ("x-forwarded-prefix", "/proxied/")];
    let mut stream = SseReader::new(http.open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await);
    let endpoint = stream.next().await.expect("endpoint");
    assert!(endpoint.data.starts_with("/proxied/messages?sessionId="), "{}", endpoint.data);
}

#[tokio::test]
async fn post_errors_are_400_404_415_413_and_the_stream_survives() {
    let gw = Gateway::start_with("[server]\nmax_body_bytes = 1024\n");
    let mut s = LegacySession::connect(&gw, "/sse").await;
    s.initialize("2024-11-05").await;
    let http = Http::new();
    let json = [("content-type", "application/json")];
    let ping = request(1, "ping", json!({})).to_string();
    let no_param = http.send(Method::POST, &gw.url("/messages"), &json, ping.clone()).await;
    assert_eq!(no_param.status, StatusCode::BAD_REQUEST);
    let empty = http.send(Method::POST, &gw.url("/messages?sessionId="), &json, ping.clone()).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let not_visible = http.send(Method::POST, &gw.url("/messages?sessionId=a%20b"), &json, ping.clone()).await;
    assert_eq!(not_visible.status, StatusCode::BAD_REQUEST);
    // Any well-formed id that is not a live legacy session is unknown, as on /mcp: ours,
    // a UUID as other servers mint, or any other visible text.
    for id in ["0123456789abcdef0123456789abcdef", "4f1c2a9e-8b7d-4c3e-9a2f-1e0d5c6b7a89", "xyz"] {
        let unknown = http.send(Method::POST, &gw.url(&format!("/messages?sessionId={id}")), &json, ping.clone()).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(unknown.error_code(), -32001);
        assert_eq!(unknown.json()["id"], 1, "the refusal answers the request it refuses");
    }
    let plain = http.send(Method::POST, &s.endpoint, &[("content-type", "text/plain")], ping.clone()).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = http.send(Method::POST, &s.endpoint, &json, "{oops").await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.error_code(), -32700);
    let not_rpc = http.send(Method::POST, &s.endpoint, &json, r#"{"foo":1}"#).await;
    assert_eq!(not_rpc.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_rpc.error_code(), -32600);
    // A known method whose params do not read as its type is refused at the edge, never
    // forwarded as something else (-32602 with the id, not "method not found" on the stream).
    let unread = request(3, "tools/call", json!({"nome": "add"})).to_string();
    let bad_params = http.send(Method::POST, &s.endpoint, &json, unread).await;
    assert_eq!(bad_params.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_params.error_code(), -32602);
    assert_eq!(bad_params.json()["id"], 3);
    let big = http.send(Method::POST, &s.endpoint, &json, vec![b' '; 4096]).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let get = http.send(Method::GET, &s.endpoint, &[], Bytes::new()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let after = s.call(2, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 1}})).await;
    assert_eq!(after["result"]["content"][0]["text"], "2");
}

#[tokio::test]
async fn a_closed_stream_ends_the_session_after_the_grace_period() {
    let gw = Gateway::start_with("[sessions]\nlegacy_grace_secs = 0\n");
    let http = Http::new();
    let mut s = LegacySession::connect(&gw, "/sse").await;
    s.initialize("2024-11-05").await;
    assert_eq!(session_counts(&http, &gw).await, (1, 0));
    let LegacySession { stream, endpoint, .. } = s;
    drop(stream);
    eventually("the legacy session to end", || async { session_counts(&http, &gw).await == (0, 0) }).await;
    let late = http
        .send(
            Method::POST,
            &endpoint,
            &[("content-type", "application/json")],
            request(1, "ping", json!({})).to_string(),
        )
        .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_session_outlives_its_stream_during_the_grace_period() {
    let gw = Gateway::start_with("[sessions]\nlegacy_grace_secs = 60\n");
    let http = Http::new();
    let mut s = LegacySession::connect(&gw, "/sse").await;
    s.initialize("2024-11-05").await;
    let LegacySession { stream, endpoint, .. } = s;
    drop(stream);
    let during = http
        .send(
            Method::POST,
            &endpoint,
            &[("content-type", "application/json")],
            request(1, "ping", json!({})).to_string(),
        )
        .await;
    assert_eq!(during.status, StatusCode::ACCEPTED);
    assert_eq!(session_counts(&http, &gw).await, (1, 0));
}

#[tokio::test]
async fn idle_streams_get_keepalive_comments() {
    let gw = Gateway::start_with("[sessions]\nkeepalive_secs = 1\n");
    let mut s = LegacySession::connect(&gw, "/sse").await;
    let chunk = s.stream.next_chunk().await.expect("a keepalive");
    assert!(chunk.starts_with(b": "), "{chunk:?}");
}

#[tokio::test]
async fn get_sse_without_accept_is_served() {
    let gw = Gateway::start();
    let response = Http::new().open(Method::GET, &gw.url("/sse"), &[], Bytes::new()).await;
    let mut stream = SseReader::new(response);
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.next().await.expect("endpoint").event, "endpoint");
}

#[tokio::test]
async fn get_mcp_without_a_session_performs_the_legacy_handshake() {
    let gw = Gateway::start();
    let mut s = LegacySession::connect(&gw, "/mcp").await;
    let init = s.initialize("2024-11-05").await;
    assert_eq!(init["result"]["serverInfo"]["name"], "mcpgw");
}

#[tokio::test]
async fn the_two_id_spaces_never_cross() {
    let gw = Gateway::start();
    let http = Http::new();
    let legacy = LegacySession::connect(&gw, "/sse").await;
    let legacy_id = legacy.endpoint.rsplit('=').next().expect("id").to_owned();
    let on_mcp = http.post(&gw.url("/mcp"), &[("mcp-session-id", &legacy_id)], &request(1, "ping", json!({}))).await;
    assert_eq!(on_mcp.status, StatusCode::NOT_FOUND);
    let init = http.post(&gw.url("/mcp"), &[], &initialize("2025-06-18")).await;
    let streamable_id = init.header("mcp-session-id").expect("sid").to_owned();
    let on_messages = http
        .send(
            Method::POST,
            &gw.url(&format!("/messages?sessionId={streamable_id}")),
            &[("content-type", "application/json")],
            request(1, "ping", json!({})).to_string(),
        )
        .await;
    assert_eq!(on_messages.status, StatusCode::NOT_FOUND);
}
