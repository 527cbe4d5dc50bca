//! HTTP/2 with prior knowledge (h2c), many calls at once on ONE connection, driven by hyper's
//! own HTTP/2 client: every `tools/call` is answered on its own stream with its own id and
//! result, with and without the session's standalone GET stream open on the same connection;
//! and on the legacy transport, POSTs on their own streams are answered on the one event stream.
//!
//! Why hyper's client: the Python SDK's HTTP/2 stack (httpcore2) can leave concurrent calls
//! waiting behind the read of a GET stream (docs/testing.md, "Known client bugs"), so the
//! Python test shows a session over HTTP/2 and this file shows concurrency.
//!
//! The overlap is certain rather than likely: before the calls under test go out, as many
//! `sleep` calls (a minute long, progress every 100 ms) are each seen running (their first
//! progress arrived), so all of them are in flight at once; they are cancelled at the end.
//! So the gateway must allow at least that many concurrent streams on a connection (plus the
//! GET stream): past its cap (`SETTINGS_MAX_CONCURRENT_STREAMS`, 200 by hyper's default) the
//! client queues new streams, and the held calls would time out waiting for their turn.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mcpgw_tests::{Gateway, POST_HEADERS, Reply, SseReader, WAIT, initialize, notification, request};
use mcpgw_transport::sse::Decoder;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};

/// The id of the `i`th held call (the calls under test use `1 + i`).
const HELD_ID: i64 = 1000;

/// One HTTP/2 connection to the gateway, opened with prior knowledge.
struct H2 {
    streams: Streams,
    connection: JoinHandle<Result<(), hyper::Error>>,
}

/// Opens streams on the connection; cheap to clone into tasks.
#[derive(Clone)]
struct Streams {
    send: SendRequest<Full<Bytes>>,
    base: String,
}

impl H2 {
    async fn connect(gw: &Gateway) -> Self {
        let tcp = TcpStream::connect(gw.authority()).await.expect("connect");
        let handshake = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp));
        let (send, connection) =
            tokio::time::timeout(WAIT, handshake).await.expect("h2 handshake in time").expect("h2 handshake");
        Self { streams: Streams { send, base: gw.base.clone() }, connection: tokio::spawn(connection) }
    }

    /// Drops the last request handle and waits for the connection to end cleanly (every
    /// response body must be gone by then).
    async fn close(self) {
        drop(self.streams);
        let ended = tokio::time::timeout(WAIT, self.connection).await.expect("the connection ends in time");
        ended.expect("connection task").expect("a clean close");
    }
}

impl Streams {
    /// Sends a request on a new stream; returns the response head with its body streaming.
    async fn open(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> hyper::Response<Incoming> {
        let mut builder =
            Request::builder().method(method).uri(format!("{}{path}", self.base)).version(Version::HTTP_2);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(Bytes::from(body))).expect("request");
        let mut send = self.send.clone();
        let response = tokio::time::timeout(WAIT, async move {
            send.ready().await.expect("the connection is open");
            send.send_request(request).await
        })
        .await
        .expect("a response in time (a request past the connection's stream cap waits for a free stream)")
        .expect("a response");
        assert_eq!(response.version(), Version::HTTP_2);
        response
    }

    /// Sends a request and reads the whole response.
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: String) -> Reply {
        let (parts, body) = self.open(method, path, headers, body).await.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect()).await.expect("body in time").expect("body").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }
}

/// A Streamable HTTP session whose every request is a stream of one HTTP/2 connection.
#[derive(Clone)]
struct Session {
    streams: Streams,
    headers: Vec<(&'static str, String)>,
}

impl Session {
    async fn open(streams: &Streams) -> Self {
        let init = streams.send(Method::POST, "/mcp", &POST_HEADERS, initialize("2025-11-25").to_string()).await;
        assert_eq!(init.status, StatusCode::OK, "initialize: {}", init.text());
        let id = init.header("mcp-session-id").expect("Mcp-Session-Id").to_owned();
        let version = init.messages()[0]["result"]["protocolVersion"].as_str().expect("version").to_owned();
        let mut headers: Vec<(&'static str, String)> =
            POST_HEADERS.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        headers.extend([("mcp-session-id", id), ("mcp-protocol-version", version)]);
        let session = Self { streams: streams.clone(), headers };
        assert_eq!(session.post(&notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
        session
    }

    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    async fn post(&self, body: &Value) -> Reply {
        self.streams.send(Method::POST, "/mcp", &self.header_pairs(), body.to_string()).await
    }

    async fn open_post(&self, body: &Value) -> hyper::Response<Incoming> {
        self.streams.open(Method::POST, "/mcp", &self.header_pairs(), body.to_string()).await
    }

    /// The standalone GET stream.
    async fn open_get(&self) -> SseReader {
        let mut headers: Vec<(&str, &str)> =
            self.header_pairs().into_iter().filter(|(k, _)| *k != "content-type" && *k != "accept").collect();
        headers.push(("accept", "text/event-stream"));
        let get = SseReader::new(self.streams.open(Method::GET, "/mcp", &headers, String::new()).await);
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.headers["content-type"], "text/event-stream");
        get
    }
}

/// A `sleep` call that runs for a minute, with progress every 100 ms.
fn held_call(i: usize) -> Value {
    json!({"jsonrpc": "2.0", "id": HELD_ID + i as i64, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 60_000, "steps": 600}, "_meta": {"progressToken": format!("hold-{i}")}}})
}

/// Whether the `i`th call under test is an `echo` (else a short `sleep`).
fn is_echo(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// The `i`th call under test: `echo` with its own text for even `i`; for odd `i`, a short
/// `sleep` of its own length with its own progress token.
fn call(i: usize) -> Value {
    let id = 1 + i as i64;
    if is_echo(i) {
        request(id, "tools/call", json!({"name": "echo", "arguments": {"text": format!("call {i}")}}))
    } else {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 20 + i, "steps": 2}, "_meta": {"progressToken": format!("call-{i}")}}})
    }
}

/// The id of the call that shows the session still serves at the end.
const LAST_ID: i64 = 9000;

fn last_call() -> Value {
    request(LAST_ID, "tools/call", json!({"name": "echo", "arguments": {"text": "last"}}))
}

/// The text the `i`th call under test must return.
fn expected_text(i: usize) -> String {
    if is_echo(i) { format!("call {i}") } else { format!("slept {} ms", 20 + i) }
}

/// Checks the messages one stream carried for the `i`th call under test: its progress only,
/// then exactly one response, with its id and its result.
fn check_call_stream(i: usize, messages: &[Value]) {
    let responses: Vec<&Value> = messages.iter().filter(|m| m.get("id").is_some()).collect();
    assert_eq!(responses.len(), 1, "call {i}: one response on its stream: {messages:?}");
    let response = responses[0];
    assert_eq!(response["id"], 1 + i as i64, "call {i}: {response}");
    assert_eq!(response["result"]["content"][0]["text"], expected_text(i), "call {i}: {response}");
    let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == format!("call-{i}")), "call {i}: {messages:?}");
    if !is_echo(i) {
        assert_eq!(progress.len(), 2, "call {i}: its two progress notifications: {messages:?}");
    }
    assert_eq!(messages.last(), Some(response), "call {i}: the response comes last");
}

/// Starts `n` held calls and returns each one's stream once its first progress arrived: from
/// then on all `n` are running at once.
async fn hold(session: &Session, n: usize) -> Vec<(usize, SseReader)> {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let session = session.clone();
        tasks.spawn(async move {
            let mut stream = SseReader::new(session.open_post(&held_call(i)).await);
            assert_eq!(stream.status, StatusCode::OK);
            let first = stream.next_message().await;
            assert_eq!(first["method"], "notifications/progress", "held call {i}: {first}");
            assert_eq!(first["params"]["progressToken"], format!("hold-{i}"), "held call {i}: {first}");
            (i, stream)
        });
    }
    let held = tasks.join_all().await;
    assert_eq!(held.len(), n);
    held
}

/// Cancels the held calls; each one's stream then ends, having carried only its own progress.
async fn release(session: &Session, held: Vec<(usize, SseReader)>) {
    for (i, mut stream) in held {
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": HELD_ID + i as i64, "reason": "test over"}});
        assert_eq!(session.post(&cancel).await.status, StatusCode::ACCEPTED);
        let drained = tokio::time::timeout(WAIT, async {
            while let Some(event) = stream.next().await {
                if event.data.is_empty() {
                    continue;
                }
                let message: Value = serde_json::from_str(&event.data).expect("JSON message");
                assert_eq!(message["method"], "notifications/progress", "held call {i}: {message}");
                assert_eq!(message["params"]["progressToken"], format!("hold-{i}"), "held call {i}: {message}");
            }
        })
        .await;
        assert!(drained.is_ok(), "held call {i}: its stream did not end after the cancel");
    }
}

/// What a stream has already received, without waiting; and whether it is still open.
async fn received_so_far(stream: &mut SseReader) -> (Vec<Value>, bool) {
    let mut decoder = Decoder::new();
    let open = loop {
        match tokio::time::timeout(Duration::ZERO, stream.next_chunk()).await {
            Ok(Some(chunk)) => decoder.feed(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    let messages = std::iter::from_fn(|| decoder.next_event())
        .filter(|e| !e.data.is_empty())
        .map(|e| serde_json::from_str(&e.data).expect("JSON event"))
        .collect();
    (messages, open)
}

/// `n` calls at once in one Streamable HTTP session on one HTTP/2 connection (the session's
/// GET stream open on it too, if `get_stream`), while `n` more are held running.
async fn streamable_calls_at_once(n: usize, get_stream: bool) {
    let gw = Gateway::start();
    let h2 = H2::connect(&gw).await;
    let session = Session::open(&h2.streams).await;
    let mut get = if get_stream { Some(session.open_get().await) } else { None };
    let held = hold(&session, n).await;

    let mut calls = JoinSet::new();
    for i in 0..n {
        let session = session.clone();
        calls.spawn(async move { (i, session.post(&call(i)).await) });
    }
    let mut answered = HashSet::new();
    while let Some(done) = tokio::time::timeout(WAIT, calls.join_next()).await.expect("the calls end in time") {
        let (i, reply) = done.expect("call task");
        assert_eq!(reply.status, StatusCode::OK, "call {i}: {}", reply.text());
        check_call_stream(i, &reply.messages());
        answered.insert(i);
    }
    assert_eq!(answered.len(), n);

    release(&session, held).await;
    if let Some(mut get) = get.take() {
        let (messages, open) = received_so_far(&mut get).await;
        assert!(open, "the GET stream stays open");
        assert!(messages.iter().all(|m| m.get("id").is_none()), "no response on the GET stream: {messages:?}");
    }
    let after = session.post(&last_call()).await.messages();
    assert_eq!(after.last().map(|m| m["result"]["content"][0]["text"].clone()), Some(json!("last")), "{after:?}");
    let delete = session.streams.send(Method::DELETE, "/mcp", &session.header_pairs(), String::new()).await;
    assert_eq!(delete.status, StatusCode::OK);
    drop(session);
    h2.close().await;
}

#[tokio::test]
async fn eight_calls_at_once_on_one_connection() {
    streamable_calls_at_once(8, false).await;
}

#[tokio::test]
async fn eight_calls_at_once_beside_the_get_stream() {
    streamable_calls_at_once(8, true).await;
}

#[tokio::test]
async fn sixty_four_calls_at_once_on_one_connection() {
    streamable_calls_at_once(64, false).await;
}

#[tokio::test]
async fn sixty_four_calls_at_once_beside_the_get_stream() {
    streamable_calls_at_once(64, true).await;
}

/// `n` legacy POSTs at once, each on its own stream of one HTTP/2 connection that also
/// carries the session's event stream, while `n` more calls are held running: every answer
/// comes on the event stream, once, matched by id.
async fn legacy_calls_at_once(n: usize) {
    let gw = Gateway::start();
    let h2 = H2::connect(&gw).await;
    let streams = h2.streams.clone();
    let mut events =
        SseReader::new(streams.open(Method::GET, "/sse", &[("accept", "text/event-stream")], String::new()).await);
    assert_eq!(events.status, StatusCode::OK);
    let endpoint = events.next().await.expect("the endpoint event");
    assert_eq!(endpoint.event, "endpoint");
    let path = endpoint.data;
    let post = |body: Value| {
        let streams = streams.clone();
        let path = path.clone();
        async move {
            let reply =
                streams.send(Method::POST, &path, &[("content-type", "application/json")], body.to_string()).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        }
    };
    post(initialize("2024-11-05")).await;
    assert_eq!(events.next_message().await["id"], 0);
    post(notification("notifications/initialized")).await;

    // Held calls: all running once each one's first progress came.
    let mut posts = JoinSet::new();
    for i in 0..n {
        posts.spawn(post(held_call(i)));
    }
    let mut running = HashSet::new();
    while running.len() < n {
        let m = events.next_message().await;
        assert_eq!(m["method"], "notifications/progress", "only progress while held: {m}");
        let token = m["params"]["progressToken"].as_str().expect("token").to_owned();
        running.insert(token);
    }
    posts.join_all().await;

    let mut posts = JoinSet::new();
    for i in 0..n {
        posts.spawn(post(call(i)));
    }
    let mut per_call: HashMap<usize, Vec<Value>> = HashMap::new();
    let mut answered = 0;
    while answered < n {
        let m = events.next_message().await;
        let token = m["params"]["progressToken"].as_str();
        let i = match (m["id"].as_i64(), token) {
            (Some(id), _) => {
                answered += 1;
                usize::try_from(id - 1).expect("a call's id")
            }
            (None, Some(t)) if t.starts_with("hold-") => continue,
            (None, Some(t)) => t.strip_prefix("call-").and_then(|i| i.parse().ok()).expect("a call's token"),
            (None, None) => panic!("unexpected message: {m}"),
        };
        assert!(i < n, "{m}");
        per_call.entry(i).or_default().push(m);
    }
    posts.join_all().await;
    assert_eq!(per_call.len(), n);
    for (i, messages) in &per_call {
        check_call_stream(*i, messages);
    }

    // Cancel the held calls; the session then still answers, and no held call did.
    for i in 0..n {
        post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": HELD_ID + i as i64, "reason": "test over"}}))
        .await;
    }
    post(last_call()).await;
    loop {
        let m = events.next_message().await;
        assert!(m["id"].as_i64().is_none_or(|id| id == LAST_ID), "a cancelled call answered: {m}");
        if m["id"] == LAST_ID {
            assert_eq!(m["result"]["content"][0]["text"], "last");
            break;
        }
    }
    drop(events);
    drop(streams);
    h2.close().await;
}

#[tokio::test]
async fn eight_legacy_posts_at_once_on_the_connection_of_their_event_stream() {
    legacy_calls_at_once(8).await;
}

#[tokio::test]
async fn sixty_four_legacy_posts_at_once_on_the_connection_of_their_event_stream() {
    legacy_calls_at_once(64).await;
}
