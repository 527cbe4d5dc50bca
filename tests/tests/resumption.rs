//! Resumption: priming events, event ids, `Last-Event-ID` on both transports.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, LegacySession, POST_HEADERS, SseReader, StreamableSession, request};
use serde_json::json;

fn slow_call(id: i64, ms: u64, steps: u32) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": ms, "steps": steps}, "_meta": {"progressToken": "p"}}})
}

async fn open_call(s: &StreamableSession, body: &serde_json::Value) -> SseReader {
    let mut headers = POST_HEADERS.to_vec();
    headers.extend(s.headers());
    SseReader::new(s.http.open(Method::POST, &s.url, &headers, body.to_string()).await)
}

#[tokio::test]
async fn streams_at_2025_11_25_start_with_a_priming_event_and_ids_are_unique() {
    let gw = Gateway::start();
    let s = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let mut stream = open_call(&s, &slow_call(1, 30, 3)).await;
    let priming = stream.next().await.expect("priming");
    assert!(priming.id.is_some() && priming.data.is_empty(), "{priming:?}");
    assert!(priming.retry.is_some());
    let mut ids = vec![priming.id.expect("id")];
    while let Some(event) = stream.next().await {
        ids.push(event.id.expect("every event has an id"));
    }
    assert_eq!(ids.len(), 5, "priming, three progress, the result: {ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[tokio::test]
async fn older_clients_get_no_priming_event() {
    let gw = Gateway::start();
    let s = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let mut stream = open_call(&s, &slow_call(1, 10, 2)).await;
    let first = stream.next().await.expect("an event");
    assert!(!first.data.is_empty(), "no empty priming event for 2025-06-18: {first:?}");
}

#[tokio::test]
async fn a_cut_call_resumes_with_last_event_id_and_gets_its_result_once() {
    let gw = Gateway::start();
    let s = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let mut stream = open_call(&s, &slow_call(7, 400, 4)).await;
    let _priming = stream.next().await.expect("priming");
    let progress = stream.next().await.expect("the first progress");
    let last = progress.id.expect("an id");
    drop(stream);
    let [sid, pv] = s.headers();
    let headers = [("accept", "text/event-stream"), sid, pv, ("last-event-id", last.as_str())];
    let mut resumed = SseReader::new(s.http.open(Method::GET, &s.url, &headers, Bytes::new()).await);
    assert_eq!(resumed.status, StatusCode::OK);
    // Primed with the id it resumed from, so that a client which takes its resumption ids
    // only from this response's events can resume it again before anything else came.
    let priming = resumed.next().await.expect("the priming event");
    assert_eq!((priming.id.as_deref(), priming.data.as_str()), (Some(last.as_str()), ""), "{priming:?}");
    let mut results = 0;
    let mut progress = Vec::new();
    while let Some(event) = resumed.next().await {
        let message: serde_json::Value = serde_json::from_str(&event.data).expect("json");
        if message["id"] == 7 {
            results += 1;
            assert_eq!(message["result"]["content"][0]["text"], "slept 400 ms");
        } else {
            progress.push(message["params"]["progress"].as_f64().expect("progress"));
        }
    }
    assert_eq!(results, 1, "the result arrives exactly once");
    assert_eq!(progress, [2.0, 3.0, 4.0], "only what came after the last event seen");
}

#[tokio::test]
async fn a_resumed_stream_of_an_older_client_starts_with_what_it_missed_not_a_priming_event() {
    let gw = Gateway::start();
    let s = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let mut stream = open_call(&s, &slow_call(3, 300, 3)).await;
    let last = stream.next().await.expect("the first progress").id.expect("an id");
    drop(stream);
    let [sid, pv] = s.headers();
    let headers = [("accept", "text/event-stream"), sid, pv, ("last-event-id", last.as_str())];
    let mut resumed = SseReader::new(s.http.open(Method::GET, &s.url, &headers, Bytes::new()).await);
    let first = resumed.next().await.expect("an event");
    let message: serde_json::Value = serde_json::from_str(&first.data).expect("a message, not an empty event");
    assert_eq!(message["params"]["progress"], 2.0, "{message}");
}

#[tokio::test]
async fn foreign_or_garbage_last_event_ids_replay_nothing() {
    let gw = Gateway::start();
    let a = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let b = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let mut stream = open_call(&a, &slow_call(1, 10, 1)).await;
    let a_event = stream.next().await.expect("priming").id.expect("id");
    let [sid, pv] = b.headers();
    let foreign = [("accept", "text/event-stream"), sid, pv, ("last-event-id", a_event.as_str())];
    let reply = b.http.send(Method::GET, &b.url, &foreign, Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    let garbage = [("accept", "text/event-stream"), sid, pv, ("last-event-id", "not-an-id")];
    assert_eq!(b.http.send(Method::GET, &b.url, &garbage, Bytes::new()).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_legacy_client_that_reconnects_with_last_event_id_keeps_its_session() {
    let gw = Gateway::start_with("[sessions]\nlegacy_grace_secs = 60\n");
    let mut s = LegacySession::connect(&gw, "/sse").await;
    s.initialize("2024-11-05").await;
    let before = s.call(1, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 2}})).await;
    assert_eq!(before["result"]["content"][0]["text"], "3");
    let endpoint = s.endpoint.clone();
    let http = s.http.clone();
    let last = s.stream.last_id.clone().expect("the events carry ids");
    drop(s);
    let session_id = endpoint.rsplit('=').next().expect("id").to_owned();
    // While the client is away, a call is answered into the session's log.
    let away = http
        .send(
            Method::POST,
            &endpoint,
            &[("content-type", "application/json")],
            request(2, "tools/call", json!({"name": "echo", "arguments": {"text": "while away"}})).to_string(),
        )
        .await;
    assert_eq!(away.status, StatusCode::ACCEPTED);
    let headers = [("accept", "text/event-stream"), ("last-event-id", last.as_str())];
    let mut stream = SseReader::new(Http::new().open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await);
    let first = stream.next().await.expect("endpoint");
    assert_eq!(first.event, "endpoint");
    assert!(first.data.ends_with(&session_id), "the same session: {}", first.data);
    let missed = stream.next_message().await;
    assert_eq!(missed["id"], 2);
    assert_eq!(missed["result"]["content"][0]["text"], "while away");
    // No new initialize: the session is the one the client had.
    let after = http
        .send(
            Method::POST,
            &endpoint,
            &[("content-type", "application/json")],
            request(3, "tools/call", json!({"name": "echo", "arguments": {"text": "back"}})).to_string(),
        )
        .await;
    assert_eq!(after.status, StatusCode::ACCEPTED);
    let answer = stream.next_message().await;
    assert_eq!(answer["result"]["content"][0]["text"], "back");
}

#[tokio::test]
async fn a_legacy_reconnect_for_an_unknown_session_starts_a_new_one() {
    let gw = Gateway::start();
    let headers = [("accept", "text/event-stream"), ("last-event-id", "0123456789abcdef0123456789abcdef-0-5")];
    let mut stream = SseReader::new(Http::new().open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await);
    let first = stream.next().await.expect("endpoint");
    assert!(!first.data.ends_with("0123456789abcdef0123456789abcdef"), "{}", first.data);
}
