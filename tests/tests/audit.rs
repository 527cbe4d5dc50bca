//! The audit of tool calls: exactly one `mcpgw::audit` log line per call, naming the caller
//! (a static token by its digest's prefix), the session (or `stateless`), the upstream,
//! the tool, the outcome and the duration; arguments only with `[audit] arguments = true`;
//! and `mcpgw_tool_calls_total` by upstream, tool and outcome.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, Reply, SseReader, initialize, notification, request};
use serde_json::{Value, json};

fn digest(token: &str) -> String {
    mcpgw_transport::auth::digest_hex(token)
}

/// How the audit names the holder of a static token.
fn name(token: &str) -> String {
    format!("token:{}", &digest(token)[..8])
}

fn start(audit: &str) -> Gateway {
    let config = format!(
        "[server]\ncall_timeout_secs = 1\n[auth]\ntoken_sha256 = [\"{}\", \"{}\"]\n{audit}\n",
        digest("alice-token"),
        digest("bob-token")
    );
    Gateway::start_args(&config, &["--log-format", "json"])
}

/// The audit lines logged so far, as their JSON fields.
fn audit_lines(gw: &Gateway) -> Vec<Value> {
    let log = gw.log.lock().expect("log lock");
    log.iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "mcpgw::audit")
        .map(|l| l["fields"].clone())
        .collect()
}

/// A Streamable session of alice's, opened with raw requests.
struct Session {
    http: Http,
    url: String,
    id: String,
}

impl Session {
    async fn open(gw: &Gateway) -> Self {
        let http = Http::new();
        let url = gw.url("/mcp");
        let init = http.post(&url, &[("authorization", "Bearer alice-token")], &initialize("2025-11-25")).await;
        assert_eq!(init.status, StatusCode::OK, "{}", init.text());
        let id = init.header("mcp-session-id").expect("a session").to_owned();
        let session = Self { http, url, id };
        assert_eq!(session.post(&notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
        session
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        let mut headers = POST_HEADERS.to_vec();
        headers.extend([
            ("authorization", "Bearer alice-token"),
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ]);
        headers
    }

    async fn post(&self, body: &Value) -> Reply {
        self.http.send(Method::POST, &self.url, &self.headers(), body.to_string()).await
    }
}

/// A stateless call of bob's.
async fn stateless_call(gw: &Gateway, id: i64, tool: &str, arguments: Value) -> Value {
    let mut body = request(id, "tools/call", json!({"name": tool, "arguments": arguments}));
    body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let headers = [
        ("authorization", "Bearer bob-token"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    let reply = Http::new().post(&gw.url("/mcp"), &headers, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Waits (bounded) until `n` audit lines were logged, and returns them.
async fn wait_for_lines(gw: &Gateway, n: usize) -> Vec<Value> {
    mcpgw_tests::eventually(&format!("{n} audit lines"), || async { audit_lines(gw).len() >= n }).await;
    audit_lines(gw)
}

/// The one line of `tool` that ended with `outcome`.
fn line<'a>(lines: &'a [Value], tool: &str, outcome: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["tool"] == tool && l["outcome"] == outcome).collect();
    assert_eq!(found.len(), 1, "one {tool} {outcome} line in {lines:#?}");
    found[0]
}

#[tokio::test]
async fn every_call_gets_one_audit_line_and_is_counted_by_upstream_tool_and_outcome() {
    let gw = start("");
    let alice = Session::open(&gw).await;
    let ok = alice.post(&request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "secret"}}))).await;
    assert_eq!(ok.messages()[0]["result"]["content"][0]["text"], "secret");
    let unknown = alice.post(&request(2, "tools/call", json!({"name": "nope", "arguments": {}}))).await;
    let code = unknown.messages()[0]["error"]["code"].as_i64().expect("an error");
    let slow = alice.post(&request(3, "tools/call", json!({"name": "sleep", "arguments": {"ms": 3000}}))).await;
    assert!(
        slow.messages()[0]["error"]["message"].as_str().is_some_and(|m| m.contains("timed out")),
        "{}",
        slow.text()
    );

    // A call the client cancels once it is running (its first progress says it is).
    let http = Http::new();
    let call = request(
        4,
        "tools/call",
        json!({"name": "sleep", "arguments": {"ms": 5000, "steps": 50}, "_meta": {"progressToken": "p"}}),
    );
    let response = http.open(Method::POST, &alice.url, &alice.headers(), call.to_string()).await;
    let mut events = SseReader::new(response);
    assert_eq!(events.next_message().await["method"], "notifications/progress");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}});
    assert_eq!(alice.post(&cancel).await.status, StatusCode::ACCEPTED);

    let added = stateless_call(&gw, 5, "add", json!({"a": 1, "b": 2})).await;
    assert_eq!(added["result"]["content"][0]["text"], "3");

    let lines = wait_for_lines(&gw, 5).await;
    let echo = line(&lines, "echo", "ok");
    assert_eq!(echo["identity"], name("alice-token"));
    assert_eq!(echo["session"], alice.id.as_str());
    assert_eq!(echo["upstream"], "builtin");
    assert!(echo["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{echo}");
    assert!(echo.get("arguments").is_none(), "no arguments by default: {echo}");
    assert!(lines.iter().all(|l| !l.to_string().contains("secret")), "{lines:#?}");
    let missing = line(&lines, "nope", "error");
    assert_eq!((missing["code"].as_i64(), missing["upstream"].clone()), (Some(code), json!("-")));
    assert!(lines.iter().all(|l| l.get("called").is_none()), "no name differs from the one called: {lines:#?}");
    assert!(line(&lines, "sleep", "timeout")["duration_ms"].as_f64().is_some_and(|d| d >= 1000.0));
    line(&lines, "sleep", "cancelled");
    let add = line(&lines, "add", "ok");
    assert_eq!((add["identity"].clone(), add["session"].clone()), (json!(name("bob-token")), json!("stateless")));

    // One more call, and its line is the only new one: no call was logged twice.
    stateless_call(&gw, 6, "echo", json!({"text": "last"})).await;
    let lines = wait_for_lines(&gw, 6).await;
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l["tool"] == "echo" && l["outcome"] == "ok").count(), 2);

    let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
    for series in [
        r#"mcpgw_tool_calls_total{upstream="builtin",tool="echo",outcome="ok"} 2"#,
        r#"mcpgw_tool_calls_total{upstream="builtin",tool="add",outcome="ok"} 1"#,
        r#"mcpgw_tool_calls_total{upstream="builtin",tool="sleep",outcome="timeout"} 1"#,
        r#"mcpgw_tool_calls_total{upstream="builtin",tool="sleep",outcome="cancelled"} 1"#,
        r#"mcpgw_tool_calls_total{upstream="_unknown",tool="_unknown",outcome="error"} 1"#,
        r#"mcpgw_tool_call_duration_seconds_count{upstream="builtin"} 5"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn arguments_are_logged_when_configured() {
    let gw = start("[audit]\narguments = true");
    let alice = Session::open(&gw).await;
    alice.post(&request(1, "tools/call", json!({"name": "add", "arguments": {"a": 2, "b": 3}}))).await;
    let lines = wait_for_lines(&gw, 1).await;
    let arguments: Value = serde_json::from_str(lines[0]["arguments"].as_str().expect("arguments")).expect("JSON");
    assert_eq!(arguments, json!({"a": 2, "b": 3}));
}

#[tokio::test]
async fn a_legacy_session_s_calls_are_audited_with_the_tool_s_own_error() {
    let config = format!(
        "[auth]\ntoken_sha256 = [\"{}\"]\n[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{}\"\n",
        digest("alice-token"),
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    );
    let gw = Gateway::start_args(&config, &["--log-format", "json"]);
    let http = Http::new();
    let bearer = [("accept", "text/event-stream"), ("authorization", "Bearer alice-token")];
    let mut stream = SseReader::new(http.open(Method::GET, &gw.url("/sse"), &bearer, Bytes::new()).await);
    let endpoint = gw.url(&stream.next().await.expect("the endpoint event").data);
    let session = endpoint.split("sessionId=").nth(1).expect("the session id").to_owned();
    let post = |body: Value| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let headers = [("content-type", "application/json"), ("authorization", "Bearer alice-token")];
            let reply = http.send(Method::POST, &endpoint, &headers, body.to_string()).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        }
    };
    post(initialize("2024-11-05")).await;
    assert_eq!(stream.next_message().await["id"], 0);
    post(notification("notifications/initialized")).await;
    post(request(1, "tools/call", json!({"name": "test_error_handling", "arguments": {}}))).await;
    let answer = loop {
        let m = stream.next_message().await;
        if m["id"] == 1 {
            break m;
        }
    };
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let lines = wait_for_lines(&gw, 1).await;
    let failed = line(&lines, "test_error_handling", "tool_error");
    assert_eq!(failed["session"], session.as_str());
    assert_eq!(
        (failed["identity"].clone(), failed["upstream"].clone()),
        (json!(name("alice-token")), json!("fixture"))
    );
    let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
    let series = r#"mcpgw_tool_calls_total{upstream="fixture",tool="test_error_handling",outcome="tool_error"} 1"#;
    assert!(metrics.contains(series), "{metrics}");
}

/// The audit lines obey `MCPGW_LOG` like every other line: filtered out, none is written
/// (the calls are still counted); and in the text format they read as the other lines do.
#[tokio::test]
async fn the_audit_line_follows_the_log_filter_and_format() {
    let config = format!("[auth]\ntoken_sha256 = [\"{}\"]\n", digest("alice-token"));
    let quiet = mcpgw_tests::Launch::new(&config)
        .args(&["--log-format", "json"])
        .env("MCPGW_LOG", "info,rmcp=warn,mcpgw::audit=off")
        .start();
    let alice = Session::open(&quiet).await;
    for id in 1..=2 {
        let echoed = alice.post(&request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}))).await;
        assert_eq!(echoed.messages()[0]["result"]["content"][0]["text"], "x");
    }
    // A call's line would be logged before its answer, so before this session's end.
    let ended = alice.http.send(Method::DELETE, &alice.url, &alice.headers(), Bytes::new()).await;
    assert_eq!(ended.status, StatusCode::OK);
    quiet.wait_for_log("session ended");
    assert_eq!(audit_lines(&quiet), Vec::<Value>::new(), "filtered out");
    let metrics = alice.http.send(Method::GET, &quiet.url("/metrics"), &[], Bytes::new()).await.text();
    let series = r#"mcpgw_tool_calls_total{upstream="builtin",tool="echo",outcome="ok"} 2"#;
    assert!(metrics.contains(series), "still counted: {metrics}");

    let text = Gateway::start_with(&config);
    let alice = Session::open(&text).await;
    alice.post(&request(1, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 1}}))).await;
    text.wait_for_log("mcpgw::audit: tool call");
    let expected = format!(
        " INFO mcpgw::audit: tool call identity=\"{}\" session=\"{}\" upstream=\"builtin\" tool=\"add\" outcome=\"ok\" duration_ms=",
        name("alice-token"),
        alice.id
    );
    let log = text.log.lock().expect("log lock").clone();
    let line = log.iter().find(|l| l.contains("mcpgw::audit")).expect("the audit line");
    let (timestamp, rest) = line.split_once(' ').expect("a timestamp first");
    assert!(timestamp.ends_with('Z') && rest.starts_with(&expected), "{line}");
}
