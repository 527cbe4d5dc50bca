//! Rate limits on tool calls (`[rate_limits]`): a burst over a limit gets HTTP 429 with
//! `Retry-After` and a JSON-RPC error carrying the request's id (Streamable sessions and
//! stateless requests), or that error on the event stream (legacy sessions, whose POST is
//! 202 first); calls pass again once the advertised time has gone by; callers have buckets
//! of their own.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, Reply, SseReader, initialize, notification, request};
use serde_json::{Value, json};

/// The JSON-RPC code of a call over a limit.
const RATE_LIMITED: i64 = -32029;

fn digest(token: &str) -> String {
    mcpgw_transport::auth::digest_hex(token)
}

/// Alice and Bob, each allowed two calls at once and one a second after that.
fn config(limits: &str) -> String {
    format!(
        "[auth]\ntoken_sha256 = [\"{}\", \"{}\"]\n[rate_limits]\n{limits}\n",
        digest("alice-token"),
        digest("bob-token")
    )
}

const PER_IDENTITY: &str = "per_identity = { rate = 1.0, burst = 2 }";

/// Calls tried before one must have been refused: at one token a second, a loaded machine
/// may let a few more through than the burst, never this many.
const MAX_CALLS: i64 = 20;

/// The reply of the first `call` that passes: a refused call costs no token, so it is made
/// again until one passes, and it must pass by a second past the advertised `wait`.
/// Calls until a call passes, failing if none does by a second past `wait`; returns the
/// reply that passed and how many were refused before it.
async fn passes_within<F, Fut>(wait: Duration, mut call: F) -> (Reply, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let deadline = tokio::time::Instant::now() + wait + Duration::from_secs(1);
    let mut period = tokio::time::interval(Duration::from_millis(10));
    let mut refused = 0;
    loop {
        let reply = call().await;
        if reply.status == StatusCode::OK {
            return (reply, refused);
        }
        refused += 1;
        assert!(tokio::time::Instant::now() < deadline, "still refused past Retry-After: {}", reply.text());
        period.tick().await;
    }
}

fn echo(id: i64) -> Value {
    request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
}

/// A Streamable session of the holder of `token`.
struct Session {
    http: Http,
    url: String,
    headers: Vec<(&'static str, String)>,
}

impl Session {
    async fn open(gw: &Gateway, token: &str) -> Self {
        let http = Http::new();
        let url = gw.url("/mcp");
        let bearer = format!("Bearer {token}");
        let init = http.post(&url, &[("authorization", &bearer)], &initialize("2025-11-25")).await;
        assert_eq!(init.status, StatusCode::OK, "{}", init.text());
        let id = init.header("mcp-session-id").expect("a session").to_owned();
        let headers =
            vec![("authorization", bearer), ("mcp-session-id", id), ("mcp-protocol-version", "2025-11-25".into())];
        let session = Self { http, url, headers };
        assert_eq!(session.post(&notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
        session
    }

    async fn post(&self, body: &Value) -> Reply {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.http.post(&self.url, &headers, body).await
    }
}

/// Asserts a 429 answering request `id`: `Retry-After` in whole seconds, the JSON-RPC
/// error naming `limit`. Returns the advertised wait.
fn over_the_limit(reply: &Reply, id: i64, limit: &str) -> Duration {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
    let after: u64 = reply.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After in seconds");
    assert!((1..=2).contains(&after), "Retry-After {after}");
    let body = reply.json();
    assert_eq!(body["id"], id, "the error answers the request: {body}");
    assert_eq!(body["error"]["code"], RATE_LIMITED, "{body}");
    assert_eq!(body["error"]["data"]["limit"], limit, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(limit)), "{body}");
    Duration::from_secs(after)
}

fn ok(reply: &Reply, id: i64) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.messages().into_iter().find(|m| m["id"] == id).expect("the answer");
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
}

#[tokio::test]
async fn a_session_over_its_limit_gets_429_with_retry_after_and_passes_again_after_it() {
    let gw = Gateway::start_with(&config(PER_IDENTITY));
    let alice = Session::open(&gw, "alice-token").await;
    ok(&alice.post(&echo(1)).await, 1);
    ok(&alice.post(&echo(2)).await, 2);
    let mut id = 3;
    let wait = loop {
        let reply = alice.post(&echo(id)).await;
        if reply.status != StatusCode::OK {
            break over_the_limit(&reply, id, "per-identity");
        }
        assert!(id < MAX_CALLS, "no call was refused");
        id += 1;
    };
    // Only tool calls count: a list goes through.
    let list = alice.post(&request(100, "tools/list", json!({}))).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    // Another caller has a bucket of its own.
    let bob = Session::open(&gw, "bob-token").await;
    ok(&bob.post(&echo(1)).await, 1);
    let again = echo(101);
    let (passed, refused) = passes_within(wait, || alice.post(&again)).await;
    ok(&passed, 101);
    // Every refusal is counted: the first, and those while waiting for the bucket.
    let metrics = alice.http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
    let series = format!("mcpgw_rate_limited_total{{limit=\"per-identity\"}} {}\n", 1 + refused);
    assert!(metrics.contains(&series), "{series} in {metrics}");
}

#[tokio::test]
async fn a_stateless_call_over_the_limit_gets_429_and_passes_again_after_it() {
    let gw = Gateway::start_with(&config(PER_IDENTITY));
    let http = Http::new();
    let call = |token: &'static str, id: i64| {
        let (http, url) = (http.clone(), gw.url("/mcp"));
        async move {
            let mut body = echo(id);
            body["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            });
            let bearer = format!("Bearer {token}");
            let headers = [
                ("authorization", bearer.as_str()),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ];
            http.post(&url, &headers, &body).await
        }
    };
    ok(&call("alice-token", 1).await, 1);
    ok(&call("alice-token", 2).await, 2);
    let mut id = 3;
    let wait = loop {
        let reply = call("alice-token", id).await;
        if reply.status != StatusCode::OK {
            break over_the_limit(&reply, id, "per-identity");
        }
        assert!(id < MAX_CALLS, "no call was refused");
        id += 1;
    };
    ok(&call("bob-token", 100).await, 100);
    ok(&passes_within(wait, || call("alice-token", 101)).await.0, 101);
}

#[tokio::test]
async fn a_legacy_session_gets_the_refusal_on_its_stream() {
    let gw = Gateway::start_with(&config(PER_IDENTITY));
    let http = Http::new();
    let bearer = [("accept", "text/event-stream"), ("authorization", "Bearer alice-token")];
    let mut stream = SseReader::new(http.open(Method::GET, &gw.url("/sse"), &bearer, Bytes::new()).await);
    assert_eq!(stream.status, StatusCode::OK);
    let endpoint = gw.url(&stream.next().await.expect("the endpoint event").data);
    let post = |body: Value| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let headers = [("content-type", "application/json"), ("authorization", "Bearer alice-token")];
            let reply = http.send(Method::POST, &endpoint, &headers, body.to_string()).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "the POST is 202 either way: {}", reply.text());
        }
    };
    post(initialize("2024-11-05")).await;
    assert_eq!(stream.next_message().await["id"], 0);
    post(notification("notifications/initialized")).await;
    let mut id = 1;
    let refused = loop {
        post(echo(id)).await;
        let answer = stream.next_message().await;
        assert_eq!(answer["id"], id, "{answer}");
        if answer.get("error").is_some() {
            break answer;
        }
        assert_eq!(answer["result"]["content"][0]["text"], "hi");
        assert!(id < MAX_CALLS, "no call was refused");
        id += 1;
    };
    assert!(id > 2, "the burst passes");
    assert_eq!(refused["error"]["code"], RATE_LIMITED, "{refused}");
    assert_eq!(refused["error"]["data"]["limit"], "per-identity", "{refused}");
    let wait = refused["error"]["data"]["retryAfter"].as_u64().expect("retryAfter");
    // Asked again until answered (a refused call costs no token), at most a second past the
    // advertised wait: the answer on the stream is the event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait + 1);
    let mut again;
    loop {
        post(echo(100)).await;
        again = stream.next_message().await;
        if again.get("error").is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still refused past Retry-After: {again}");
        tokio::task::yield_now().await;
    }
    assert_eq!((again["id"].clone(), again["result"]["content"][0]["text"].clone()), (json!(100), json!("hi")));
}

#[tokio::test]
async fn per_tool_buckets_hold_one_tool_back_and_not_the_others() {
    let gw = Gateway::start_with(&config("per_tool = { rate = 0.5, burst = 1 }"));
    let alice = Session::open(&gw, "alice-token").await;
    ok(&alice.post(&echo(1)).await, 1);
    over_the_limit(&alice.post(&echo(2)).await, 2, "per-tool");
    let add = alice.post(&request(3, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 2}}))).await;
    assert_eq!(add.status, StatusCode::OK, "another tool has its own bucket: {}", add.text());
}

#[tokio::test]
async fn without_rate_limits_a_burst_passes() {
    let gw = Gateway::start_with(&config(""));
    let alice = Session::open(&gw, "alice-token").await;
    for id in 1..=5 {
        ok(&alice.post(&echo(id)).await, id);
    }
}
