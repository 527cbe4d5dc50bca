//! Per-identity tool policy, end to end: two callers (named static tokens) of the same
//! upstream see different tools; a denied tool is unknown to its caller; a renamed tool
//! calls the original with its pinned argument, which the caller can neither see nor
//! set; a reload that takes a tool away tells the live session and refuses its next call.
//! The same rules hold on Streamable HTTP sessions, legacy SSE and stateless requests.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::bearer::BearerSession;
use mcpgw_tests::{Gateway, Http, SseReader, initialize, notification, request};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";

fn digest(token: &str) -> String {
    mcpgw_transport::auth::digest_hex(token)
}

/// alice sees everything; bob is denied `sleep` and sees `add` as `plus`, with `a` pinned.
fn config(extra_rules: &str) -> String {
    format!(
        r#"[auth.tokens]
alice = "{alice}"
bob = "{bob}"

[upstreams.builtin]
kind = "builtin"

[[policy.rules]]
tokens = ["bob"]
upstream = "builtin"
tools = ["sleep"]
effect = "deny"

[[policy.rules]]
tokens = ["bob"]
upstream = "builtin"
tools = ["add"]
rename = "plus"
description = "Adds to forty."
pin = {{ a = 40 }}
{extra_rules}"#,
        alice = digest("alice-token"),
        bob = digest("bob-token"),
    )
}

fn names(list: &Value) -> Vec<String> {
    let tools = list["result"]["tools"].as_array().expect("tools");
    let mut names: Vec<String> = tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect();
    names.sort();
    names
}

fn tool<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["result"]["tools"].as_array().and_then(|t| t.iter().find(|t| t["name"] == name)).expect("the tool")
}

/// The error a caller gets for a tool it may not call: the one for a tool that does not
/// exist, so it cannot tell the two apart.
fn unknown(reply: &Value, name: &str) {
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert_eq!(reply["error"]["message"], format!("tool not found: {name}"), "{reply}");
}

fn text(reply: &Value) -> &str {
    reply["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("a text result: {reply}"))
}

#[tokio::test]
async fn two_callers_of_one_upstream_see_different_tools_and_a_denied_call_is_unknown() {
    let gw = Gateway::start_with(&config(""));
    let alice = BearerSession::open(&gw, "alice-token").await;
    let bob = BearerSession::open(&gw, "bob-token").await;
    let theirs = names(&alice.call(1, "tools/list", json!({})).await);
    let his = names(&bob.call(1, "tools/list", json!({})).await);
    assert!(theirs.contains(&"sleep".to_owned()) && theirs.contains(&"add".to_owned()), "{theirs:?}");
    assert!(!his.contains(&"sleep".to_owned()) && !his.contains(&"add".to_owned()), "{his:?}");
    assert!(his.contains(&"plus".to_owned()) && his.contains(&"echo".to_owned()), "{his:?}");

    let denied = bob.call(2, "tools/call", json!({"name": "sleep", "arguments": {"ms": 1}})).await;
    unknown(&denied, "sleep");
    let missing = bob.call(3, "tools/call", json!({"name": "no_such_tool", "arguments": {}})).await;
    unknown(&missing, "no_such_tool");
    let allowed = alice.call(2, "tools/call", json!({"name": "sleep", "arguments": {"ms": 1}})).await;
    assert_eq!(text(&allowed), "slept 1 ms");
}

#[tokio::test]
async fn a_renamed_tool_calls_the_original_with_its_pinned_argument_which_the_caller_cannot_set() {
    let gw = Gateway::start_with(&config(""));
    let bob = BearerSession::open(&gw, "bob-token").await;
    let list = bob.call(1, "tools/list", json!({})).await;
    let plus = tool(&list, "plus");
    assert_eq!(plus["description"], "Adds to forty.");
    let schema = &plus["inputSchema"];
    assert!(schema["properties"].get("a").is_none() && schema["properties"].get("b").is_some(), "{schema}");
    assert!(!schema["required"].as_array().expect("required").contains(&json!("a")), "{schema}");

    let sum = bob.call(2, "tools/call", json!({"name": "plus", "arguments": {"b": 2}})).await;
    assert_eq!(text(&sum), "42");
    let overridden = bob.call(3, "tools/call", json!({"name": "plus", "arguments": {"a": 1, "b": 2}})).await;
    assert_eq!(overridden["error"]["code"], -32602, "{overridden}");
    assert!(overridden["error"]["message"].as_str().is_some_and(|m| m.contains("'a'")), "{overridden}");
    unknown(&bob.call(4, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 2}})).await, "add");
}

#[tokio::test]
async fn a_reload_that_takes_a_tool_away_tells_the_live_session_and_refuses_its_next_call() {
    let gw = Gateway::start_with(&config(""));
    let bob = BearerSession::open(&gw, "bob-token").await;
    let mut events = bob.stream().await;
    let before = bob.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await;
    assert_eq!(text(&before), "hi");

    let deny_echo = "\n[[policy.rules]]\ntokens = [\"bob\"]\ntools = [\"echo\"]\neffect = \"deny\"\n";
    std::fs::write(gw.config_path(), config(deny_echo)).expect("rewrite the config");
    gw.signal("HUP");
    let changed = loop {
        let message = events.next_message().await;
        if message["method"].is_string() {
            break message;
        }
    };
    assert_eq!(changed["method"], "notifications/tools/list_changed", "{changed}");
    unknown(&bob.call(2, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await, "echo");
    assert!(!names(&bob.call(3, "tools/list", json!({})).await).contains(&"echo".to_owned()));
    // alice's rules did not change: her calls go on.
    let alice = BearerSession::open(&gw, "alice-token").await;
    assert_eq!(text(&alice.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": "a"}})).await), "a");
}

/// A stateless (2026-07-28) request with a bearer token.
async fn stateless(gw: &Gateway, token: &str, id: i64, method: &str, name: Option<&str>, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str()), ("mcp-protocol-version", V2026), ("mcp-method", method)];
    if let Some(name) = name {
        headers.push(("mcp-name", name));
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let reply = Http::new().post(&gw.url("/mcp"), &headers, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
    reply.messages().into_iter().find(|m| m["id"] == id).expect("the response")
}

#[tokio::test]
async fn stateless_requests_are_judged_by_their_own_caller() {
    let gw = Gateway::start_with(&config(""));
    let his = names(&stateless(&gw, "bob-token", 1, "tools/list", None, json!({})).await);
    let theirs = names(&stateless(&gw, "alice-token", 2, "tools/list", None, json!({})).await);
    assert!(his.contains(&"plus".to_owned()) && !his.contains(&"sleep".to_owned()), "{his:?}");
    assert!(theirs.contains(&"sleep".to_owned()) && !theirs.contains(&"plus".to_owned()), "{theirs:?}");
    let call = |token, id, name: &'static str, arguments: Value| {
        stateless(&gw, token, id, "tools/call", Some(name), json!({"name": name, "arguments": arguments}))
    };
    unknown(&call("bob-token", 3, "sleep", json!({"ms": 1})).await, "sleep");
    assert_eq!(text(&call("bob-token", 4, "plus", json!({"b": 2})).await), "42");
    assert_eq!(call("bob-token", 5, "plus", json!({"a": 0, "b": 2})).await["error"]["code"], -32602);
    assert_eq!(text(&call("alice-token", 6, "sleep", json!({"ms": 1})).await), "slept 1 ms");
}

/// A stateless call of `echo` with a bearer token.
async fn stateless_echo(gw: &Gateway, token: &str, id: i64, text: &str) -> Value {
    let params = json!({"name": "echo", "arguments": {"text": text}});
    stateless(gw, token, id, "tools/call", Some("echo"), params).await
}

#[tokio::test]
async fn a_reload_is_seen_by_the_next_stateless_request_of_a_caller_seen_before() {
    let gw = Gateway::start_with(&config(""));
    // bob's rules are worked out on his first request and remembered for the next.
    assert_eq!(text(&stateless_echo(&gw, "bob-token", 1, "hi").await), "hi");
    assert_eq!(text(&stateless_echo(&gw, "bob-token", 2, "hi").await), "hi");
    // A session of bob's hears when the reload is in force.
    let session = BearerSession::open(&gw, "bob-token").await;
    let mut events = session.stream().await;
    let deny_echo = "\n[[policy.rules]]\ntokens = [\"bob\"]\ntools = [\"echo\"]\neffect = \"deny\"\n";
    std::fs::write(gw.config_path(), config(deny_echo)).expect("rewrite the config");
    gw.signal("HUP");
    while !events.next_message().await["method"].is_string() {}
    unknown(&stateless_echo(&gw, "bob-token", 3, "hi").await, "echo");
    assert_eq!(text(&stateless_echo(&gw, "alice-token", 4, "a").await), "a", "alice's rules did not change");
}

/// A legacy HTTP+SSE session opened with a bearer token.
struct Legacy {
    http: Http,
    bearer: String,
    endpoint: String,
    stream: SseReader,
}

impl Legacy {
    async fn open(gw: &Gateway, token: &str) -> Self {
        let http = Http::new();
        let bearer = format!("Bearer {token}");
        let headers = [("accept", "text/event-stream"), ("authorization", bearer.as_str())];
        let response = http.open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await;
        let mut stream = SseReader::new(response);
        assert_eq!(stream.status, StatusCode::OK);
        let endpoint = gw.url(&stream.next().await.expect("the endpoint event").data);
        let mut legacy = Self { http, bearer, endpoint, stream };
        legacy.call(initialize("2024-11-05")).await;
        legacy.post(&notification("notifications/initialized")).await;
        legacy
    }

    async fn post(&self, body: &Value) {
        let headers = [("content-type", "application/json"), ("authorization", self.bearer.as_str())];
        let posted = self.http.send(Method::POST, &self.endpoint, &headers, body.to_string()).await;
        assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text());
    }

    /// Sends a request and reads the stream up to its answer.
    async fn call(&mut self, body: Value) -> Value {
        self.post(&body).await;
        loop {
            let message = self.stream.next_message().await;
            if message["id"] == body["id"] {
                return message;
            }
        }
    }

    /// Reads the stream up to the next notification.
    async fn notification(&mut self) -> Value {
        loop {
            let message = self.stream.next_message().await;
            if message["method"].is_string() && message.get("id").is_none() {
                return message;
            }
        }
    }
}

#[tokio::test]
async fn legacy_sse_sessions_follow_the_same_rules_and_hear_of_a_reload() {
    let gw = Gateway::start_with(&config(""));
    let mut bob = Legacy::open(&gw, "bob-token").await;
    let list = bob.call(request(1, "tools/list", json!({}))).await;
    assert!(names(&list).contains(&"plus".to_owned()) && !names(&list).contains(&"sleep".to_owned()), "{list}");
    unknown(&bob.call(request(2, "tools/call", json!({"name": "sleep", "arguments": {"ms": 1}}))).await, "sleep");
    assert_eq!(text(&bob.call(request(3, "tools/call", json!({"name": "plus", "arguments": {"b": 2}}))).await), "42");

    let deny_plus = "\n[[policy.rules]]\ntokens = [\"bob\"]\ntools = [\"add\"]\neffect = \"deny\"\n";
    std::fs::write(gw.config_path(), config(deny_plus)).expect("rewrite the config");
    gw.signal("HUP");
    assert_eq!(bob.notification().await["method"], "notifications/tools/list_changed");
    unknown(&bob.call(request(4, "tools/call", json!({"name": "plus", "arguments": {"b": 2}}))).await, "plus");
}

#[tokio::test]
async fn prompts_and_resources_are_shaped_and_gated_the_same_way() {
    let rules = "\n[[policy.rules]]\ntokens = [\"bob\"]\nupstream = \"builtin\"\nresources = [\"mcpgw://*\"]\neffect = \"deny\"\n\
                 \n[[policy.rules]]\ntokens = [\"bob\"]\nupstream = \"builtin\"\nprompts = [\"greeting\"]\nrename = \"hello\"\n\
                 description = \"Say hello.\"\n";
    let gw = Gateway::start_with(&config(rules));
    let bob = BearerSession::open(&gw, "bob-token").await;
    let alice = BearerSession::open(&gw, "alice-token").await;
    let resources = bob.call(1, "resources/list", json!({})).await;
    assert_eq!(resources["result"]["resources"], json!([]), "{resources}");
    let read = bob.call(2, "resources/read", json!({"uri": "mcpgw://about"})).await;
    assert_eq!(read["error"]["code"], -32002, "answered as a resource that does not exist: {read}");
    let theirs = alice.call(1, "resources/read", json!({"uri": "mcpgw://about"})).await;
    assert!(theirs["result"]["contents"].is_array(), "{theirs}");

    let prompts = bob.call(3, "prompts/list", json!({})).await;
    assert_eq!(prompts["result"]["prompts"][0]["name"], "hello", "{prompts}");
    assert_eq!(prompts["result"]["prompts"][0]["description"], "Say hello.", "{prompts}");
    let got = bob.call(4, "prompts/get", json!({"name": "hello", "arguments": {"name": "Bob"}})).await;
    assert!(got["result"]["messages"].is_array(), "the renamed prompt gets the original: {got}");
    let original = bob.call(5, "prompts/get", json!({"name": "greeting", "arguments": {"name": "Bob"}})).await;
    assert_eq!(original["error"]["code"], -32602, "{original}");
}

#[tokio::test]
async fn without_auth_the_rules_for_unauthenticated_callers_apply() {
    let gw = Gateway::start_with(
        "[upstreams.builtin]\nkind = \"builtin\"\n\n[policy]\ndefault = \"deny\"\n\n\
         [[policy.rules]]\nunauthenticated = true\nupstream = \"builtin\"\ntools = [\"echo\"]\n",
    );
    let session = mcpgw_tests::StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let list = session.call(1, "tools/list", json!({})).await;
    assert_eq!(names(&list), ["echo"]);
    let prompts = session.call(2, "prompts/list", json!({})).await;
    assert_eq!(prompts["result"]["prompts"], json!([]), "the default denies what no rule allows: {prompts}");
}
