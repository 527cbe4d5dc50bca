//! Streamable HTTP on `/mcp`, request by request: every status code of the transport,
//! and the session keeps serving after each bad input.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{
    Gateway, Http, POST_HEADERS, SseReader, StreamableSession, initialize, notification, request, session_counts,
};
use serde_json::json;

async fn session(gw: &Gateway, version: &str) -> StreamableSession {
    StreamableSession::open(&gw.url("/mcp"), version).await
}

/// The session still answers after whatever came before.
async fn still_serves(s: &StreamableSession) {
    let r = s.call(900, "tools/list", json!({})).await;
    assert!(r["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{r}");
}

#[tokio::test]
async fn initialize_returns_a_visible_ascii_session_id_and_echoes_the_version() {
    let gw = Gateway::start();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let reply = Http::new().post(&gw.url("/mcp"), &[], &initialize(version)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let id = reply.header("mcp-session-id").expect("session id");
        assert!(id.len() >= 16 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        assert_eq!(reply.messages()[0]["result"]["protocolVersion"], version);
    }
}

#[tokio::test]
async fn initialized_is_202_with_an_empty_body_and_requests_get_json() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let ack = s.post(&notification("notifications/initialized")).await;
    assert_eq!(ack.status, StatusCode::ACCEPTED);
    assert!(ack.body.is_empty());
    let reply = s.post(&request(1, "tools/list", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let names: Vec<&str> =
        body["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    for tool in ["echo", "add", "sleep"] {
        assert!(names.contains(&tool), "{names:?}");
    }
}

#[tokio::test]
async fn built_in_tools_resource_and_prompt_answer() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-11-25").await;
    let echo = s.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": "hello"}})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "hello");
    let add = s.call(2, "tools/call", json!({"name": "add", "arguments": {"a": 2, "b": 3}})).await;
    assert_eq!(add["result"]["content"][0]["text"], "5");
    let about = s.call(3, "resources/read", json!({"uri": "mcpgw://about"})).await;
    assert!(about["result"]["contents"][0]["text"].as_str().is_some_and(|t| t.contains("mcpgw")), "{about}");
    let prompt = s.call(4, "prompts/get", json!({"name": "greeting", "arguments": {"name": "Ada"}})).await;
    assert!(prompt["result"]["messages"][0]["content"]["text"].as_str().is_some_and(|t| t.contains("Ada")), "{prompt}");
}

#[tokio::test]
async fn progress_arrives_on_the_request_stream_before_the_result() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-11-25").await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 30, "steps": 3}, "_meta": {"progressToken": "tok"}}});
    let reply = s.post(&call).await;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("x-accel-buffering"), Some("no"));
    assert!(reply.header("content-encoding").is_none());
    let messages = reply.messages();
    let progress: Vec<_> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "tok"));
    assert_eq!(messages.last().expect("result")["id"], 5, "the result comes last");
}

#[tokio::test]
async fn missing_session_id_is_400_and_unknown_is_404() {
    let gw = Gateway::start();
    let http = Http::new();
    let missing = http.post(&gw.url("/mcp"), &[], &request(1, "tools/list", json!({}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), -32000);
    for bad in ["0123456789abcdef0123456789abcdef", "not-even-hex"] {
        let unknown =
            http.post(&gw.url("/mcp"), &[("mcp-session-id", bad)], &request(1, "tools/list", json!({}))).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.error_code(), -32001);
        assert_eq!(unknown.json()["id"], 1, "the refusal answers the request it refuses");
    }
    assert_eq!(missing.json()["id"], 1);
}

#[tokio::test]
async fn accept_is_lenient_and_picks_the_reply_format() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let body = request(7, "ping", json!({})).to_string();
    let send = |accept: Option<&'static str>| {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(s.headers());
        if let Some(a) = accept {
            headers.push(("accept", a));
        }
        let body = body.clone();
        let http = s.http.clone();
        let url = s.url.clone();
        let headers: Vec<(String, String)> = headers.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http.send(Method::POST, &url, &headers, body).await
        }
    };
    let json_only = send(Some("application/json")).await;
    assert_eq!(json_only.status, StatusCode::OK);
    assert_eq!(json_only.header("content-type"), Some("application/json"));
    let sse_only = send(Some("text/event-stream")).await;
    assert_eq!(sse_only.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse_only.messages()[0]["id"], 7);
    for accept in [Some("*/*"), None] {
        let r = send(accept).await;
        assert_eq!(r.status, StatusCode::OK, "{accept:?}");
        assert_eq!(r.messages()[0]["id"], 7);
    }
    let refused = send(Some("text/html")).await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
    still_serves(&s).await;
}

#[tokio::test]
async fn content_type_must_be_json() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let body = request(1, "ping", json!({})).to_string();
    let [sid, pv] = s.headers();
    let wrong = s.http.send(Method::POST, &s.url, &[("content-type", "text/plain"), sid, pv], body.clone()).await;
    assert_eq!(wrong.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let charset =
        s.http.send(Method::POST, &s.url, &[("content-type", "application/json; charset=utf-8"), sid, pv], body).await;
    assert_eq!(charset.status, StatusCode::OK);
    still_serves(&s).await;
}

#[tokio::test]
async fn malformed_and_non_jsonrpc_bodies_are_400_with_their_codes() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let mut headers = POST_HEADERS.to_vec();
    headers.extend(s.headers());
    let parse = s.http.send(Method::POST, &s.url, &headers, "{not json").await;
    assert_eq!(parse.status, StatusCode::BAD_REQUEST);
    assert_eq!(parse.error_code(), -32700);
    assert_eq!(parse.json()["id"], serde_json::Value::Null);
    let invalid = s.http.send(Method::POST, &s.url, &headers, r#"{"foo":1}"#).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.error_code(), -32600);
    assert_eq!(invalid.json()["id"], serde_json::Value::Null, "no id to answer");
    let wrong_version =
        s.http.send(Method::POST, &s.url, &headers, r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#).await;
    assert_eq!(wrong_version.error_code(), -32600);
    assert_eq!(wrong_version.json()["id"], "x", "the id could be read, so the error carries it");
    // A known method whose params do not read as its type: rmcp would read it as a custom
    // request, which forwarded could read as the real method upstream (a duplicate key).
    let no_name = request(4, "tools/call", json!({"nome": "add"})).to_string();
    let bad_params = s.http.send(Method::POST, &s.url, &headers, no_name).await;
    assert_eq!(bad_params.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_params.error_code(), -32602);
    assert_eq!(bad_params.json()["id"], 4);
    let message = bad_params.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("tools/call") && message.contains("name"), "{message}");
    let duplicate = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","name":"echo"}}"#;
    let refused = s.http.send(Method::POST, &s.url, &headers, duplicate).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::BAD_REQUEST, -32602));
    // Without a session too: a broken initialize is not "Mcp-Session-Id header is required".
    let init = r#"{"jsonrpc":"2.0","id":6,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"1","version":"2"}}}"#;
    let fresh = Http::new().send(Method::POST, &gw.url("/mcp"), &POST_HEADERS, init).await;
    assert_eq!((fresh.status, fresh.error_code()), (StatusCode::BAD_REQUEST, -32602));
    assert_eq!(fresh.json()["id"], 6);
    still_serves(&s).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_the_session_keeps_serving() {
    let gw = Gateway::start_with("[server]\nmax_body_bytes = 2048\n");
    let s = session(&gw, "2025-06-18").await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x".repeat(4096)}}});
    let reply = s.post(&big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), -32000);
    still_serves(&s).await;
}

#[tokio::test]
async fn a_client_response_is_202() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let reply = s.post(&json!({"jsonrpc": "2.0", "id": 99, "result": {}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    still_serves(&s).await;
}

#[tokio::test]
async fn batches_only_in_2025_03_26_sessions() {
    let gw = Gateway::start();
    let old = session(&gw, "2025-03-26").await;
    let batch = json!([
        request(1, "ping", json!({})),
        notification("notifications/initialized"),
        request(2, "tools/list", json!({}))
    ]);
    let reply = old.post(&batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut ids: Vec<i64> = reply.messages().iter().filter_map(|m| m["id"].as_i64()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let with_init = old.post(&json!([initialize("2025-03-26"), request(3, "ping", json!({}))])).await;
    assert_eq!(with_init.status, StatusCode::BAD_REQUEST);

    let new = session(&gw, "2025-06-18").await;
    let refused = new.post(&batch).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), -32600);
    still_serves(&new).await;
}

#[tokio::test]
async fn initialize_on_a_live_session_is_refused() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let again = s.post(&initialize("2025-06-18")).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code(), -32600);
    still_serves(&s).await;
}

#[tokio::test]
async fn protocol_version_header_is_checked() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let body = request(1, "ping", json!({})).to_string();
    let mut headers = POST_HEADERS.to_vec();
    headers.push(("mcp-session-id", &s.id));
    let mut bad = headers.clone();
    bad.push(("mcp-protocol-version", "1999-01-01"));
    let refused = s.http.send(Method::POST, &s.url, &bad, body.clone()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["id"], 1, "the refusal answers the request it refuses");
    // Absent: accepted. Another supported version than the negotiated one: accepted too
    // (the conformance suite's multi-stream scenario does exactly that).
    assert_eq!(s.http.send(Method::POST, &s.url, &headers, body.clone()).await.status, StatusCode::OK);
    let mut other = headers.clone();
    other.push(("mcp-protocol-version", "2025-03-26"));
    assert_eq!(s.http.send(Method::POST, &s.url, &other, body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn get_opens_the_standalone_stream_and_a_second_get_replaces_it() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let [sid, pv] = s.headers();
    let not_sse = s.http.send(Method::GET, &s.url, &[("accept", "application/json"), sid, pv], Bytes::new()).await;
    assert_eq!(not_sse.status, StatusCode::NOT_ACCEPTABLE);
    let first = s.http.open(Method::GET, &s.url, &[("accept", "text/event-stream"), sid, pv], Bytes::new()).await;
    let mut first = SseReader::new(first);
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["content-type"], "text/event-stream");
    assert_eq!(first.headers["cache-control"], "no-cache, no-transform");
    assert_eq!(first.headers["x-accel-buffering"], "no");
    let second = s.http.open(Method::GET, &s.url, &[("accept", "text/event-stream"), sid, pv], Bytes::new()).await;
    assert_eq!(second.status(), StatusCode::OK, "a second GET replaces the first, never 409");
    assert!(first.next().await.is_none(), "the replaced stream ends");
    still_serves(&s).await;
}

#[tokio::test]
async fn get_and_delete_tolerate_a_json_content_type_without_body() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let [sid, pv] = s.headers();
    let headers = [("accept", "application/json, text/event-stream"), ("content-type", "application/json"), sid, pv];
    let get = s.http.open(Method::GET, &s.url, &headers, Bytes::new()).await;
    assert_eq!(get.status(), StatusCode::OK);
    drop(get);
    assert_eq!(s.http.send(Method::DELETE, &s.url, &headers, Bytes::new()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn delete_ends_the_session() {
    let gw = Gateway::start();
    let http = Http::new();
    let s = session(&gw, "2025-06-18").await;
    let [sid, pv] = s.headers();
    assert_eq!(session_counts(&http, &gw).await, (0, 1));
    assert_eq!(s.http.send(Method::DELETE, &s.url, &[sid, pv], Bytes::new()).await.status, StatusCode::OK);
    assert_eq!(session_counts(&http, &gw).await, (0, 0));
    let post = s.post(&request(1, "ping", json!({}))).await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    let get = s.http.send(Method::GET, &s.url, &[("accept", "text/event-stream"), sid, pv], Bytes::new()).await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(s.http.send(Method::DELETE, &s.url, &[sid, pv], Bytes::new()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.http.send(Method::DELETE, &s.url, &[], Bytes::new()).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let gw = Gateway::start();
    for method in [Method::PUT, Method::PATCH, Method::HEAD] {
        let reply = Http::new().send(method.clone(), &gw.url("/mcp"), &[], Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = reply.header("allow").expect("Allow");
        for m in ["GET", "POST", "DELETE"] {
            assert!(allow.contains(m), "{allow}");
        }
    }
}

#[tokio::test]
async fn the_trailing_slash_path_is_served_directly() {
    let gw = Gateway::start();
    let reply = Http::new().post(&gw.url("/mcp/"), &[], &initialize("2025-06-18")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("mcp-session-id").is_some());
}

#[tokio::test]
async fn cancelling_a_call_ends_it_and_its_stream() {
    let gw = Gateway::start();
    let s = session(&gw, "2025-06-18").await;
    let call = request(11, "tools/call", json!({"name": "sleep", "arguments": {"ms": 60000}}));
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    headers.extend(s.headers());
    let pending = {
        let http = s.http.clone();
        let url = s.url.clone();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http.send(Method::POST, &url, &headers, call.to_string()).await
        })
    };
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11, "reason": "test"}});
    // The cancel may overtake the call on the wire; send it until the call's POST returns.
    let reply = loop {
        assert_eq!(s.post(&cancel).await.status, StatusCode::ACCEPTED);
        if pending.is_finished() {
            break pending.await.expect("the call's task");
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.messages().iter().all(|m| m["id"] != 11), "a cancelled request gets no response");
    still_serves(&s).await;
}

#[tokio::test]
async fn a_call_past_its_upstream_timeout_is_cancelled_with_a_clear_error() {
    let gw = Gateway::start_with("[upstreams.builtin]\nkind = \"builtin\"\ncall_timeout_secs = 1\n");
    let s = session(&gw, "2025-06-18").await;
    let started = std::time::Instant::now();
    let reply = s.call(1, "tools/call", json!({"name": "sleep", "arguments": {"ms": 60000}})).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("timed out"), "{reply}");
    still_serves(&s).await;
}

#[tokio::test]
async fn the_session_advertises_exactly_what_its_upstreams_serve() {
    // The built-in tools offer tools, prompts and resources, no completions and no logging:
    // the session says so, and answers the methods of what it does not offer with -32601,
    // as rmcp's own handlers do (since rmcp 3.10).
    let gw = Gateway::start();
    let reply = Http::new().post(&gw.url("/mcp"), &[], &initialize("2025-11-25")).await;
    let caps = &reply.messages()[0]["result"]["capabilities"];
    for offered in ["tools", "prompts", "resources"] {
        assert_eq!(caps[offered]["listChanged"], true, "{offered}: {caps}");
    }
    for missing in ["completions", "logging"] {
        assert!(caps.get(missing).is_none(), "{missing}: {caps}");
    }
    let s = session(&gw, "2025-11-25").await;
    let complete = s
        .call(
            1,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "greeting"},
            "argument": {"name": "name", "value": "a"}}),
        )
        .await;
    assert_eq!(complete["error"]["code"], -32601, "{complete}");
    let level = s.call(2, "logging/setLevel", json!({"level": "info"})).await;
    assert_eq!(level["error"]["code"], -32601, "{level}");
    let templates = s.call(3, "resources/templates/list", json!({})).await;
    assert!(templates["result"]["resourceTemplates"].is_array(), "{templates}");
}

/// A client's mistake is answered with a JSON-RPC error, not logged as a warning of the
/// gateway's (rmcp warns `response error` for every error its service answers with).
#[tokio::test]
async fn a_client_error_logs_no_warning() {
    let mut gw = Gateway::start();
    let s = session(&gw, "2025-11-25").await;
    let unknown = s.call(1, "tools/call", json!({"name": "no_such_tool", "arguments": {}})).await;
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");
    let no_prompt = s.call(2, "prompts/get", json!({"name": "no_such_prompt"})).await;
    assert!(no_prompt["error"]["code"].is_i64(), "{no_prompt}");
    assert!(gw.terminate().success());
    assert!(!gw.logged("WARN"), "no warning logged");
}
