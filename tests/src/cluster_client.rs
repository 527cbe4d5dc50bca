//! What a test client of a cluster does with raw HTTP (a Streamable session through the load
//! balancer, its calls and streams), and the checks on what it received: event ids per
//! stream, one answer per request; and what the instances and the store report.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use serde_json::json;

use crate::cluster::{ClientSession, Cluster, Redis};
use crate::{Http, SseReader, initialize, notification, request};

/// A counter of an instance's `/metrics`, summed over the series whose labels contain all
/// of `labels`.
pub async fn counter(base: &str, name: &str, labels: &[&str]) -> u64 {
    let text = Http::new().send(http::Method::GET, &format!("{base}/metrics"), &[], "").await.text();
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Checks what SDK sessions run through `cluster`'s load balancer reported: each minted by one
/// of its instances, no status of 400 or more, its `calls` echoes in order; sessions started
/// on every instance (round robin); and on every instance no 404 (a request it was sent for
/// a session it does not hold), no takeover, and as many sessions created as it minted: every
/// request of a session reached its instance.
pub async fn assert_every_session_stayed_on_its_instance(cluster: &Cluster, sessions: &[ClientSession], calls: usize) {
    let tags: BTreeSet<&str> = cluster.nodes.iter().map(|n| n.tag.as_str()).collect();
    let mut minted: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sessions {
        let what = format!("{} {} {}", s.client, s.transport, s.session);
        assert_eq!(s.session.len(), 32, "{what}");
        let tag = &s.session[..4];
        assert!(tags.contains(tag), "{what}: minted by an instance of the cluster");
        *minted.entry(tag).or_default() += 1;
        assert!(s.statuses.iter().all(|&code| code < 400), "{what}: {:?}", s.statuses);
        let expected: Vec<String> = (0..calls).map(|n| format!("{}-{n}", s.transport)).collect();
        assert_eq!(s.echoes, expected, "{what}");
    }
    // initialize and GET /sse carry no id: round robin spreads the sessions.
    assert_eq!(minted.len(), tags.len(), "new sessions on every instance: {minted:?}");
    for node in &cluster.nodes {
        let base = &node.gateway.as_ref().expect("running").base;
        assert_eq!(counter(base, "mcpgw_http_requests_total", &["status=\"404\""]).await, 0, "node {}", node.tag);
        let created = counter(base, "mcpgw_sessions_created_total", &[]).await as usize;
        assert_eq!(created, minted[node.tag.as_str()], "node {} created the sessions it minted", node.tag);
        assert_eq!(counter(base, "mcpgw_session_takeovers_total", &[]).await, 0, "node {}", node.tag);
    }
}

/// Takeovers counted by the instances still running.
pub async fn takeovers(cluster: &Cluster) -> u64 {
    let mut total = 0;
    for (_, gateway) in cluster.running() {
        total += counter(&gateway.base, "mcpgw_session_takeovers_total", &[]).await;
    }
    total
}

/// A Streamable session opened through the load balancer with raw requests: its id, and
/// an echo call in it.
pub struct RawSession {
    /// The client.
    pub http: Http,
    /// The load balancer's `/mcp`.
    pub url: String,
    /// The session id.
    pub id: String,
}

impl RawSession {
    /// Initializes a session through the load balancer (at 2025-11-25), and acknowledges it.
    pub async fn open(cluster: &Cluster) -> Self {
        let (http, url) = (Http::new(), format!("{}/mcp", cluster.base));
        let reply = http.post(&url, &[], &initialize("2025-11-25")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let id = reply.header("mcp-session-id").expect("a session id").to_owned();
        let session = Self { http, url, id };
        let ack = session.post(&notification("notifications/initialized")).await;
        assert_eq!(ack.status, StatusCode::ACCEPTED);
        session
    }

    /// POSTs `body` in the session, taking JSON or an event stream.
    pub async fn post(&self, body: &serde_json::Value) -> crate::Reply {
        let headers = [("mcp-session-id", self.id.as_str()), ("mcp-protocol-version", "2025-11-25")];
        self.http.post(&self.url, &headers, body).await
    }

    /// Posts `body` (a request) asking for an event stream, and reads its reply as one.
    pub async fn post_stream(&self, body: &serde_json::Value) -> SseReader {
        let mut headers = crate::POST_HEADERS.to_vec();
        headers.extend([("mcp-session-id", self.id.as_str()), ("mcp-protocol-version", "2025-11-25")]);
        SseReader::new(self.http.open(http::Method::POST, &self.url, &headers, body.to_string()).await)
    }

    /// An echo call; its reply's status.
    pub async fn echo(&self, id: i64) -> StatusCode {
        self.echo_reply(id).await.status
    }

    /// An echo call; its reply.
    pub async fn echo_reply(&self, id: i64) -> crate::Reply {
        let reply = self.post(&request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}))).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.messages()[0]["result"]["content"][0]["text"], "x", "{}", reply.text());
        }
        reply
    }

    /// Its standalone stream, resumed after `last` if given.
    pub async fn standalone(&self, last: Option<&str>) -> SseReader {
        let mut headers = vec![
            ("accept", "text/event-stream"),
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        headers.extend(last.map(|last| ("last-event-id", last)));
        let stream = SseReader::new(self.http.open(http::Method::GET, &self.url, &headers, "").await);
        assert_eq!(stream.status, StatusCode::OK);
        stream
    }

    /// A `sleep` call with `steps` progress notifications from a client that takes only
    /// JSON: they go to the standalone stream.
    pub async fn sleep_json_only(&self, id: i64, steps: u32) {
        let headers = [
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let body = sleep_call(id, u64::from(steps) * 10, steps).to_string();
        let reply = self.http.send(http::Method::POST, &self.url, &headers, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.json()["result"].is_object(), "{}", reply.text());
    }
}

/// A legacy session's event stream opened through the load balancer with raw requests, its
/// `endpoint` event read: where to POST, the session id, and the balancer's `/sse` (what an
/// EventSource reconnects to).
pub struct RawLegacy {
    /// The client.
    pub http: Http,
    /// The load balancer's `/sse`.
    pub sse: String,
    /// The URL the endpoint event named, on the load balancer.
    pub post_url: String,
    /// The `sessionId`.
    pub id: String,
    /// The endpoint event's id.
    pub endpoint_id: Option<String>,
}

impl RawLegacy {
    /// Opens `GET /sse` through the load balancer at `base` and reads the endpoint event;
    /// returns the stream after it (the session is not initialized yet).
    pub async fn connect(base: &str) -> (Self, SseReader) {
        let (http, sse) = (Http::new(), format!("{base}/sse"));
        let mut stream =
            SseReader::new(http.open(http::Method::GET, &sse, &[("accept", "text/event-stream")], "").await);
        assert_eq!(stream.status, StatusCode::OK);
        let endpoint = stream.next().await.expect("the endpoint event");
        assert_eq!(endpoint.event, "endpoint");
        let post_url = format!("{base}{}", endpoint.data);
        let id = post_url.split("sessionId=").nth(1).expect("a sessionId").to_owned();
        (Self { http, sse, post_url, id, endpoint_id: endpoint.id }, stream)
    }

    /// POSTs `body` to the session's endpoint.
    pub async fn post(&self, body: &serde_json::Value) -> crate::Reply {
        let headers = [("content-type", "application/json")];
        self.http.send(http::Method::POST, &self.post_url, &headers, body.to_string()).await
    }

    /// Reopens the event stream as an EventSource does, with `Last-Event-ID: last`.
    pub async fn reconnect(&self, last: &str) -> SseReader {
        let headers = [("accept", "text/event-stream"), ("last-event-id", last)];
        SseReader::new(self.http.open(http::Method::GET, &self.sse, &headers, "").await)
    }
}

/// A `sleep` call with a progress token.
pub fn sleep_call(id: i64, ms: u64, steps: u32) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": ms, "steps": steps}, "_meta": {"progressToken": "p"}}})
}

/// The events of an SSE stream, read until `count` of them carried a message.
pub async fn read_messages(stream: &mut SseReader, count: usize) -> Vec<(String, serde_json::Value)> {
    let mut got = Vec::new();
    while got.len() < count {
        let event = stream.next().await.expect("the stream goes on");
        if event.data.is_empty() {
            continue; // a priming event
        }
        let id = event.id.clone().expect("every message has an event id");
        got.push((id, serde_json::from_str(&event.data).expect("JSON")));
    }
    got
}

/// The number of an event id (`<prefix>-<stream>-<seq>`) and its stream.
pub fn seq_of(id: &str) -> (u32, u64) {
    let mut parts = id.rsplitn(3, '-');
    let seq = parts.next().and_then(|s| s.parse().ok()).expect("a seq");
    let stream = parts.next().and_then(|s| s.parse().ok()).expect("a stream");
    (stream, seq)
}

/// Event ids strictly increasing, on one stream.
pub fn assert_increasing(ids: &[&str]) {
    let seqs: Vec<(u32, u64)> = ids.iter().map(|id| seq_of(id)).collect();
    assert!(seqs.windows(2).all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1), "strictly increasing on one stream: {ids:?}");
}

/// The invariants on all a client received, from its tapped exchanges (see
/// `tests/python/clients/cluster_lost_call.py`): per stream, event ids strictly increasing
/// with no duplicates, across reconnections too; and every request it sent answered exactly
/// once, by a result or an error.
pub fn assert_client_invariants(exchanges: &[serde_json::Value]) {
    let mut streams: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let (mut sent, mut answered) = (Vec::new(), Vec::new());
    for exchange in exchanges {
        sent.extend(exchange["sent"].as_array().expect("sent").iter().map(|id| id.to_string()));
        let mut messages: Vec<&serde_json::Value> = Vec::new();
        for event in exchange["events"].as_array().expect("events") {
            if let Some(id) = event["id"].as_str() {
                let (stream, seq) = seq_of(id);
                streams.entry(stream).or_default().push(seq);
            }
            messages.push(&event["message"]);
        }
        match &exchange["json"] {
            serde_json::Value::Array(batch) => messages.extend(batch),
            serde_json::Value::Null => {}
            single => messages.push(single),
        }
        for m in messages {
            if m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some()) {
                answered.push(m["id"].to_string());
            }
        }
    }
    for (stream, seqs) in &streams {
        // A priming event repeats no message: it may share its number with the last one
        // before it, so only messages' numbers must strictly increase.
        let mut sorted = seqs.clone();
        sorted.dedup();
        assert!(sorted.windows(2).all(|w| w[0] < w[1]), "stream {stream}: ids strictly increasing: {seqs:?}");
    }
    sent.sort();
    answered.sort();
    assert_eq!(sent, answered, "every request answered exactly once");
}

/// `MEMORY USAGE` of a key, in bytes.
pub fn memory_usage(redis: &Redis, key: &str) -> u64 {
    redis.cli(&["MEMORY", "USAGE", key, "SAMPLES", "0"]).parse().unwrap_or_else(|_| panic!("no key {key}"))
}

/// The event numbers (`sq`) in a session's journal, as `redis-cli XRANGE` prints them.
pub fn journaled_seqs(redis: &Redis, session: &str) -> BTreeSet<u64> {
    let out = redis.cli(&["XRANGE", &format!("mcpgw:s:{{{session}}}:j"), "-", "+"]);
    let lines: Vec<&str> = out.lines().collect();
    lines.windows(2).filter(|w| w[0] == "sq").filter_map(|w| w[1].parse().ok()).collect()
}

/// An instance configuration with no keepalive comment and no legacy grace: an instance then
/// writes nothing more on an idle stream, so it learns of a client's close only if the load
/// balancer passes it on, and a legacy session ends with its stream.
pub const CLOSED_STREAMS_CONFIG: &str =
    "[server]\nworker_threads = 1\n[sessions]\nkeepalive_secs = 0\nlegacy_grace_secs = 0\n";

/// Opens a legacy event stream and a 2026-07-28 `subscriptions/listen` stream through the load
/// balancer, closes both connections, and asserts that the instances close them within 5 s
/// (the legacy session ended, the listen stream gone from `mcpgw_listen_streams_open`).
pub async fn open_then_close_streams(cluster: &Cluster) {
    let authority = cluster.base.trim_start_matches("http://").to_owned();
    let legacy =
        raw_stream(&authority, "GET /sse HTTP/1.1\r\nAccept: text/event-stream\r\n", "", "event: endpoint").await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let params = json!({"_meta": meta, "notifications": {"toolsListChanged": true}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": params}).to_string();
    let head = "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
                MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n";
    let listen = raw_stream(&authority, head, &body, "notifications/subscriptions/acknowledged").await;
    assert_eq!(open_streams(cluster).await, (1, 1), "one legacy session and one listen stream open");

    drop((legacy, listen));
    // Nothing announces a closed stream to an outside observer: look again on a short period.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut period = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        let open = open_streams(cluster).await;
        if open == (0, 0) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still open 5 s after their clients closed them: {open:?}");
        period.tick().await;
    }
}

/// Sends `head` (and `body`) on a new connection to `authority` and reads until `until`
/// shows: an event stream's first event, so that closing the socket is all that follows.
async fn raw_stream(authority: &str, head: &str, body: &str, until: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(authority).await.expect("connect");
    let request = format!("{head}Host: {authority}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(until) {
        let n = tokio::time::timeout(crate::WAIT, socket.read(&mut buf)).await.expect("in time").expect("read");
        assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

/// The open legacy sessions and listen streams, summed over the running instances.
async fn open_streams(cluster: &Cluster) -> (u64, u64) {
    let http = Http::new();
    let mut open = (0, 0);
    for (_, gateway) in cluster.running() {
        let health = http.send(http::Method::GET, &gateway.url("/healthz"), &[], "").await.json();
        open.0 += health["sessions"]["legacy"].as_u64().expect("a legacy count");
        open.1 += counter(&gateway.base, "mcpgw_listen_streams_open", &[]).await;
    }
    open
}
