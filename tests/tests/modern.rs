//! Stateless requests (MCP 2026-07-28) on `/mcp`, beside sessions: raw HTTP against the
//! real binary, one test per row of the error ladder, and what a served request carries.

use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, SseReader, initialize, session_counts};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";

/// The 2026 `_meta` envelope, plus `extra` keys.
fn envelope(extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    if let (Some(meta), Value::Object(extra)) = (meta.as_object_mut(), extra) {
        meta.extend(extra);
    }
    meta
}

/// A request whose params carry `meta` as `_meta`.
fn with_meta(id: Value, method: &str, mut params: Value, meta: Value) -> Value {
    params["_meta"] = meta;
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A well-formed stateless request.
fn stateless(id: i64, method: &str, params: Value) -> Value {
    with_meta(json!(id), method, params, envelope(json!({})))
}

/// The headers a 2026 client sends for `method` (and `name`, when the method names one).
fn headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("mcp-protocol-version", V2026), ("mcp-method", method)];
    if let Some(name) = name {
        h.push(("mcp-name", name));
    }
    h
}

async fn post(gw: &Gateway, headers: &[(&str, &str)], body: &Value) -> mcpgw_tests::Reply {
    Http::new().post(&gw.url("/mcp"), headers, body).await
}

/// Asserts a refusal: its status, its JSON-RPC code, and the id it answers.
fn refused(reply: &mcpgw_tests::Reply, status: StatusCode, code: i64, id: Value) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.error_code(), code, "{}", reply.text());
    assert_eq!(reply.json()["id"], id, "the error carries the request's id: {}", reply.text());
}

#[tokio::test]
async fn discover_is_served_with_no_session_and_names_every_era() {
    let gw = Gateway::start();
    let http = Http::new();
    let reply = post(&gw, &headers("server/discover", None), &stateless(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.header("mcp-session-id").is_none(), "no session is made");
    let result = &reply.json()["result"];
    let versions = result["supportedVersions"].as_array().expect("versions");
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", V2026] {
        assert!(versions.contains(&json!(v)), "{v} in {versions:?}");
    }
    assert_eq!(result["resultType"], "complete");
    // The built-in upstream's tools, prompt and resource: the union of what upstreams offer.
    for cap in ["tools", "prompts", "resources"] {
        assert!(result["capabilities"][cap].is_object(), "{cap}: {result}");
    }
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpgw");
    assert_eq!(session_counts(&http, &gw).await, (0, 0));
}

#[tokio::test]
async fn results_carry_result_type_and_lists_their_cache_hints_with_tools_in_a_stable_order() {
    let gw = Gateway::start();
    let list = |id| stateless(id, "tools/list", json!({}));
    let first = post(&gw, &headers("tools/list", None), &list(1)).await.json();
    let again = post(&gw, &headers("tools/list", None), &list(2)).await.json();
    assert_eq!(first["result"]["resultType"], "complete");
    assert_eq!(first["result"]["cacheScope"], "private", "no upstream says public");
    assert!(first["result"]["ttlMs"].is_u64(), "{first}");
    let names = |v: &Value| {
        v["result"]["tools"].as_array().expect("tools").iter().map(|t| t["name"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&first), names(&again), "the same order every time");
    for (method, params, name) in [
        ("prompts/list", json!({}), None),
        ("resources/list", json!({}), None),
        ("resources/templates/list", json!({}), None),
        ("resources/read", json!({"uri": "mcpgw://about"}), Some("mcpgw://about")),
    ] {
        let reply = post(&gw, &headers(method, name), &stateless(3, method, params)).await;
        let result = &reply.json()["result"];
        assert_eq!(result["resultType"], "complete", "{method}: {result}");
        assert_eq!(result["cacheScope"], "private", "{method}: {result}");
        assert!(result["ttlMs"].is_u64(), "{method}: {result}");
    }
    // A resource no upstream has: -32602 on this wire (not -32002), naming the uri.
    let missing = stateless(5, "resources/read", json!({"uri": "mcpgw://nothing"}));
    let reply = post(&gw, &headers("resources/read", Some("mcpgw://nothing")), &missing).await;
    assert_eq!(reply.error_code(), -32602, "{}", reply.text());
    assert_eq!(reply.json()["error"]["data"]["uri"], "mcpgw://nothing");
    let call = stateless(4, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}));
    let reply = post(&gw, &headers("tools/call", Some("echo")), &call).await;
    assert_eq!(reply.json()["result"]["resultType"], "complete");
    assert_eq!(reply.json()["result"]["content"][0]["text"], "hi");
    assert_eq!(reply.json()["id"], 4);
}

#[tokio::test]
async fn the_header_and_the_body_must_name_the_same_version() {
    let gw = Gateway::start();
    let body = stateless(7, "tools/list", json!({}));
    let other = [("mcp-protocol-version", "2025-11-25"), ("mcp-method", "tools/list")];
    refused(&post(&gw, &other, &body).await, StatusCode::BAD_REQUEST, -32020, json!(7));
    let missing = [("mcp-method", "tools/list")];
    refused(&post(&gw, &missing, &body).await, StatusCode::BAD_REQUEST, -32020, json!(7));
}

#[tokio::test]
async fn an_unsupported_version_is_refused_naming_the_supported_and_the_requested() {
    let gw = Gateway::start();
    let meta = envelope(json!({"io.modelcontextprotocol/protocolVersion": "v999.0.0"}));
    let body = with_meta(json!("u"), "server/discover", json!({}), meta);
    let reply = post(&gw, &[("mcp-protocol-version", "v999.0.0"), ("mcp-method", "server/discover")], &body).await;
    refused(&reply, StatusCode::BAD_REQUEST, -32022, json!("u"));
    let data = &reply.json()["error"]["data"];
    assert_eq!(data["requested"], "v999.0.0");
    assert_eq!(data["supported"], json!([V2026]));
}

#[tokio::test]
async fn a_bad_meta_is_invalid_params() {
    let gw = Gateway::start();
    let h = headers("tools/list", None);
    let bare = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    refused(&post(&gw, &h, &bare).await, StatusCode::BAD_REQUEST, -32602, json!(1));
    let no_caps =
        with_meta(json!(2), "tools/list", json!({}), json!({"io.modelcontextprotocol/protocolVersion": V2026}));
    refused(&post(&gw, &h, &no_caps).await, StatusCode::BAD_REQUEST, -32602, json!(2));
    let bad_level =
        with_meta(json!(3), "tools/list", json!({}), envelope(json!({"io.modelcontextprotocol/logLevel": "loud"})));
    refused(&post(&gw, &h, &bad_level).await, StatusCode::BAD_REQUEST, -32602, json!(3));
    let numeric = with_meta(
        json!(4),
        "tools/list",
        json!({}),
        envelope(json!({"io.modelcontextprotocol/protocolVersion": 2026})),
    );
    refused(&post(&gw, &h, &numeric).await, StatusCode::BAD_REQUEST, -32602, json!(4));
    // clientInfo is optional.
    let no_info = with_meta(
        json!(5),
        "tools/list",
        json!({}),
        json!({"io.modelcontextprotocol/protocolVersion": V2026, "io.modelcontextprotocol/clientCapabilities": {}}),
    );
    assert_eq!(post(&gw, &h, &no_info).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_and_removed_methods_are_404() {
    let gw = Gateway::start();
    for (id, method) in [
        (1, "unknown/method"),
        (2, "ping"),
        (3, "logging/setLevel"),
        (4, "resources/subscribe"),
        (5, "resources/unsubscribe"),
    ] {
        let params = if method.starts_with("resources/") { json!({"uri": "mcpgw://about"}) } else { json!({}) };
        let params = if method == "logging/setLevel" { json!({"level": "info"}) } else { params };
        let reply = post(&gw, &headers(method, None), &stateless(id, method, params)).await;
        refused(&reply, StatusCode::NOT_FOUND, -32601, json!(id));
    }
    // `initialize` with the 2026 envelope is a removed method too; without it, a session.
    let init = with_meta(
        json!(6),
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        envelope(json!({})),
    );
    refused(&post(&gw, &headers("initialize", None), &init).await, StatusCode::NOT_FOUND, -32601, json!(6));
    // A removed method is unknown whatever its params: with only the envelope (the
    // conformance suite's probe) they do not read as the method's, still 404 -32601.
    for (id, method) in [(7, "initialize"), (8, "logging/setLevel"), (9, "resources/subscribe")] {
        let reply = post(&gw, &headers(method, None), &stateless(id, method, json!({}))).await;
        refused(&reply, StatusCode::NOT_FOUND, -32601, json!(id));
    }
    let plain = post(&gw, &[], &initialize("2025-11-25")).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.header("mcp-session-id").is_some(), "initialize still opens a session");
}

#[tokio::test]
async fn mcp_method_and_mcp_name_must_match_the_body() {
    let gw = Gateway::start();
    let call = |id| stateless(id, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}));
    let cases: [(i64, Vec<(&str, &str)>); 5] = [
        (1, vec![("mcp-protocol-version", V2026), ("mcp-name", "echo")]),
        (2, headers("tools/list", Some("echo"))),
        (3, headers("tools/call", None)),
        (4, headers("tools/call", Some("add"))),
        (5, headers("tools/call", Some("=?base64?YWRk?="))),
    ];
    for (id, h) in cases {
        refused(&post(&gw, &h, &call(id)).await, StatusCode::BAD_REQUEST, -32020, json!(id));
    }
    // The base64 sentinel is decoded before comparing: "ZWNobw==" is "echo".
    let ok = post(&gw, &headers("tools/call", Some("=?base64?ZWNobw==?=")), &call(6)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    // resources/read names its uri; prompts/get its name.
    let read = stateless(7, "resources/read", json!({"uri": "mcpgw://about"}));
    refused(
        &post(&gw, &headers("resources/read", Some("mcpgw://other")), &read).await,
        StatusCode::BAD_REQUEST,
        -32020,
        json!(7),
    );
    let get = stateless(8, "prompts/get", json!({"name": "greeting", "arguments": {"name": "Bo"}}));
    assert_eq!(post(&gw, &headers("prompts/get", Some("greeting")), &get).await.status, StatusCode::OK);
    // Unknown Mcp-Param-* headers are ignored.
    let mut h = headers("tools/call", Some("echo"));
    h.push(("mcp-param-whatever", "1"));
    assert_eq!(post(&gw, &h, &call(9)).await.status, StatusCode::OK);
}

/// A 2026 request is one message. (-32021, a missing client capability, has no request
/// that raises it here yet: it comes with input-required results. Its mapping to 400 with
/// `data.requiredCapabilities` is unit-tested in the transport's error and hub modules.)
#[tokio::test]
async fn a_batch_is_refused() {
    let gw = Gateway::start();
    let batch = json!([stateless(1, "tools/list", json!({}))]);
    let reply = post(&gw, &headers("tools/list", None), &batch).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), -32600);
}

#[tokio::test]
async fn log_messages_only_when_the_request_names_a_level_and_streams_are_not_buffered() {
    let gw = Gateway::start();
    let http = Http::new();
    // A progress token makes the reply an event stream (progress comes before the result).
    let meta = envelope(json!({"progressToken": "p"}));
    let body = with_meta(json!(1), "tools/call", json!({"name": "sleep", "arguments": {"ms": 50, "steps": 2}}), meta);
    let mut h: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    h.extend(headers("tools/call", Some("sleep")));
    let reply = http.send(Method::POST, &gw.url("/mcp"), &h, body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-accel-buffering"), Some("no"));
    let messages = reply.messages();
    assert!(messages.iter().all(|m| m["method"] != "notifications/message"), "{messages:?}");
    let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 2, "{messages:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p"), "the client's own token: {progress:?}");
    let last = messages.last().expect("the result");
    assert_eq!((last["id"].clone(), last["result"]["resultType"].clone()), (json!(1), json!("complete")));
}

#[tokio::test]
async fn many_clients_with_the_same_ids_each_get_their_own_answers() {
    let gw = Gateway::start();
    let calls = (0..16).map(|i| {
        let gw = &gw;
        async move {
            let text = format!("client-{i}");
            let body = stateless(1, "tools/call", json!({"name": "echo", "arguments": {"text": text}}));
            let reply = post(gw, &headers("tools/call", Some("echo")), &body).await;
            (text, reply.json())
        }
    });
    for (text, reply) in futures::future::join_all(calls).await {
        assert_eq!(reply["id"], 1);
        assert_eq!(reply["result"]["content"][0]["text"], text);
    }
}

#[tokio::test]
async fn sessions_keep_working_beside_stateless_requests() {
    let gw = Gateway::start();
    let s = mcpgw_tests::StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let stateless_reply = post(&gw, &headers("tools/list", None), &stateless(1, "tools/list", json!({}))).await;
    assert_eq!(stateless_reply.status, StatusCode::OK);
    let r = s.call(2, "tools/list", json!({})).await;
    assert!(r["result"]["tools"].is_array(), "{r}");
    assert!(r["result"].get("resultType").is_none(), "no 2026 fields in a 2025 session: {r}");
    // A 2026 header on a session request is still refused as a session version.
    let h = [(s.headers()[0].0, s.headers()[0].1), ("mcp-protocol-version", V2026)];
    assert_eq!(h[0].0, "mcp-session-id");
    let reply =
        Http::new().post(&gw.url("/mcp"), &h, &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn closing_the_stream_of_a_stateless_call_ends_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start();
    let meta = envelope(json!({"progressToken": 1}));
    let body =
        with_meta(json!(1), "tools/call", json!({"name": "sleep", "arguments": {"ms": 60000, "steps": 600}}), meta)
            .to_string();
    // A raw connection, so that closing it is exactly what the test does.
    let mut socket = tokio::net::TcpStream::connect(gw.authority()).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: {V2026}\r\nMcp-Method: tools/call\r\nMcp-Name: sleep\r\nContent-Length: {}\r\n\r\n",
        gw.authority(),
        body.len()
    );
    socket.write_all(format!("{head}{body}").as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("notifications/progress") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut buf))
            .await
            .expect("progress in time")
            .expect("read");
        assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).to_ascii_lowercase().contains("x-accel-buffering: no"));
    drop(socket);
    gw.wait_for_log("a stateless request's client left before its answer; cancelled it");
}

#[tokio::test]
async fn a_reload_serves_stateless_requests_from_the_new_upstreams_and_finishes_calls_in_flight() {
    let gw = Gateway::start_with("[upstreams.builtin]\nkind = \"builtin\"\n");
    let names = |reply: mcpgw_tests::Reply| -> Vec<String> {
        let tools = reply.json()["result"]["tools"].as_array().expect("tools").clone();
        tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
    };
    let before = names(post(&gw, &headers("tools/list", None), &stateless(1, "tools/list", json!({}))).await);
    assert!(before.contains(&"echo".to_owned()), "{before:?}");
    // A call in flight on the hub being replaced: its first progress shows it is running.
    let http = Http::new();
    let slow = with_meta(
        json!(2),
        "tools/call",
        json!({"name": "sleep", "arguments": {"ms": 700, "steps": 2}}),
        envelope(json!({"progressToken": "s"})),
    );
    let mut h: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    h.extend(headers("tools/call", Some("sleep")));
    let mut in_flight = SseReader::new(http.open(Method::POST, &gw.url("/mcp"), &h, slow.to_string()).await);
    assert_eq!(in_flight.next_message().await["method"], "notifications/progress");
    std::fs::write(
        gw.config_path(),
        "[upstreams.builtin]\nkind = \"builtin\"\n\n[upstreams.second]\nkind = \"builtin\"\n",
    )
    .expect("rewrite the config");
    gw.signal("HUP");
    gw.wait_for_log("configuration reloaded");
    let after = names(post(&gw, &headers("tools/list", None), &stateless(3, "tools/list", json!({}))).await);
    assert!(after.contains(&"second_echo".to_owned()) && after.contains(&"builtin_echo".to_owned()), "{after:?}");
    let finished = loop {
        let message = in_flight.next_message().await;
        if message.get("id").is_some() {
            break message;
        }
    };
    assert_eq!(finished["result"]["content"][0]["text"], "slept 700 ms", "{finished}");
}

/// The conformance fixture is an rmcp server of the handshake era: it knows the 2026 `_meta`
/// keys and would refuse a version it was not initialized at, so they must not reach it.
#[tokio::test]
async fn an_rmcp_upstream_of_the_handshake_era_serves_stateless_requests() {
    let config = format!(
        "[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{}\"\nshare = \"session\"\n",
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    );
    let gw = Gateway::start_with(&config);
    let call = stateless(1, "tools/call", json!({"name": "test_simple_text", "arguments": {}}));
    let reply = post(&gw, &headers("tools/call", Some("test_simple_text")), &call).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let result = &reply.json()["result"];
    assert!(result["content"][0]["text"].is_string(), "{result}");
    assert_eq!(result["resultType"], "complete", "added for a relayed result: {result}");
    let get = stateless(2, "prompts/get", json!({"name": "test_simple_prompt"}));
    let reply = post(&gw, &headers("prompts/get", Some("test_simple_prompt")), &get).await;
    assert!(reply.json()["result"]["messages"].is_array(), "{}", reply.text());
    let read = stateless(3, "resources/read", json!({"uri": "test://static-text"}));
    let reply = post(&gw, &headers("resources/read", Some("test://static-text")), &read).await;
    let result = &reply.json()["result"];
    assert!(result["contents"].is_array(), "{result}");
    assert_eq!((result["cacheScope"].clone(), result["resultType"].clone()), (json!("private"), json!("complete")));
    // A resource the upstream does not have: its error, -32602 on this wire (not -32002).
    let missing = stateless(4, "resources/read", json!({"uri": "test://nothing"}));
    let reply = post(&gw, &headers("resources/read", Some("test://nothing")), &missing).await;
    assert_eq!(reply.status, StatusCode::OK, "an answer, not a refusal: {}", reply.text());
    assert_eq!(reply.error_code(), -32602, "{}", reply.text());
}

#[tokio::test]
async fn sigterm_ends_the_hub_and_a_stateless_call_in_flight() {
    let mut gw = Gateway::start_with("[server]\ndrain_timeout_secs = 1\n\n[upstreams.builtin]\nkind = \"builtin\"\n");
    let http = Http::new();
    let meta = envelope(json!({"progressToken": 1}));
    let body =
        with_meta(json!(1), "tools/call", json!({"name": "sleep", "arguments": {"ms": 60000, "steps": 600}}), meta);
    let mut h: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    h.extend(headers("tools/call", Some("sleep")));
    let mut stream = SseReader::new(http.open(Method::POST, &gw.url("/mcp"), &h, body.to_string()).await);
    assert_eq!(stream.next_message().await["method"], "notifications/progress");
    let status = tokio::task::spawn_blocking(move || gw.terminate()).await.expect("wait");
    assert!(status.success(), "{status:?}");
    // The call's stream ends with the gateway, with no answer.
    while let Some(event) = stream.next().await {
        assert!(event.data.is_empty() || event.data.contains("notifications/progress"), "{}", event.data);
    }
}

/// `[server] stateless = false` turns the stateless path off: a 2026 probe is refused as a
/// request without a session (with no 2026-07-28 code), so its client falls back to
/// `initialize`, which still opens a session.
#[tokio::test]
async fn with_stateless_off_a_2026_probe_is_refused_the_handshake_way() {
    let gw = Gateway::start_with("[server]\nstateless = false\n\n[upstreams.builtin]\nkind = \"builtin\"\n");
    let reply = post(&gw, &headers("server/discover", None), &stateless(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(!(-32022..=-32020).contains(&reply.error_code()), "{}", reply.text());
    assert_eq!(reply.json()["id"], 1);
    let init = post(&gw, &[], &initialize("2025-11-25")).await;
    assert!(init.header("mcp-session-id").is_some(), "{}", init.text());
}

/// Authentication holds for stateless requests as for sessions: no token, 401.
#[tokio::test]
async fn stateless_requests_need_a_token_when_authentication_is_on() {
    let digest = mcpgw_transport::auth::digest_hex("alice-token");
    let gw = Gateway::start_with(&format!("[auth]\ntoken_sha256 = [\"{digest}\"]\n"));
    let body = stateless(1, "tools/list", json!({}));
    let refused = post(&gw, &headers("tools/list", None), &body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let mut h = headers("tools/list", None);
    h.push(("authorization", "Bearer alice-token"));
    let served = post(&gw, &h, &body).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert_eq!(served.json()["id"], 1);
}
