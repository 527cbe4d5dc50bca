//! `subscriptions/listen` (MCP 2026-07-28) on `/mcp`: raw HTTP against the real binary, with
//! the conformance fixture as an upstream whose tools trigger list changes and resource
//! updates. The acknowledgement comes first with the filter honoured, every frame names the
//! client's own listen id, only the kinds asked for arrive, the gateway's end (SIGTERM,
//! reload) completes the stream with its result, and the cap frees a slot when a stream closes.

use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, Reply, SseReader, eventually};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The headers of a 2026 POST of `method` (naming `name` when given), the standard ones
/// included.
fn headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    h.extend([("mcp-protocol-version", V2026), ("mcp-method", method)]);
    if let Some(name) = name {
        h.push(("mcp-name", name));
    }
    h
}

fn listen_body(id: &Value, filter: Value) -> String {
    let params = json!({"_meta": meta(), "notifications": filter});
    json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params}).to_string()
}

/// Opens a listen stream; asserts it is one.
async fn listen(http: &Http, gw: &Gateway, id: &Value, filter: Value) -> SseReader {
    let response =
        http.open(Method::POST, &gw.url("/mcp"), &headers("subscriptions/listen", None), listen_body(id, filter)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stream = SseReader::new(response);
    assert!(stream.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")));
    stream
}

/// The next frame of a listen stream, which must name `id` as its subscription.
async fn next_of(stream: &mut SseReader, id: &Value) -> Value {
    let message = stream.next_message().await;
    let named = if message.get("method").is_some() {
        &message["params"]["_meta"][SUBSCRIPTION_ID]
    } else {
        &message["result"]["_meta"][SUBSCRIPTION_ID]
    };
    assert_eq!(named, id, "every frame names the listen request's own id: {message}");
    message
}

/// A stateless `tools/call` of `name`, answered.
async fn call(http: &Http, gw: &Gateway, name: &str) -> Reply {
    let params = json!({"_meta": meta(), "name": name, "arguments": {}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).to_string();
    let reply = http.send(Method::POST, &gw.url("/mcp"), &headers("tools/call", Some(name)), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply
}

fn fixture(share: &str, args: &[&str]) -> String {
    format!(
        "[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{}\"\nargs = {args:?}\nshare = \"{share}\"\n",
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    )
}

/// `share = "session"`: the hub's own connections to the upstream carry the trigger and its
/// change (the per-request upstreams the hub uses).
#[tokio::test]
async fn a_list_change_reaches_the_listeners_that_asked_for_its_kind_and_no_other() {
    let gw = Gateway::start_with(&fixture("session", &[]));
    let http = Http::new();
    let (tools_id, prompts_id) = (json!("tools-1"), json!(2));
    let mut tools = listen(&http, &gw, &tools_id, json!({"toolsListChanged": true})).await;
    let mut prompts = listen(&http, &gw, &prompts_id, json!({"promptsListChanged": true})).await;
    for (stream, id, honoured) in [
        (&mut tools, &tools_id, json!({"toolsListChanged": true})),
        (&mut prompts, &prompts_id, json!({"promptsListChanged": true})),
    ] {
        let ack = next_of(stream, id).await;
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "first: {ack}");
        assert_eq!(ack["params"]["notifications"], honoured, "{ack}");
    }
    call(&http, &gw, "test_trigger_tool_change").await;
    assert_eq!(next_of(&mut tools, &tools_id).await["method"], "notifications/tools/list_changed");
    // The change went to every listener at once: the prompts listener's next frame shows it
    // got none.
    call(&http, &gw, "test_trigger_prompt_change").await;
    assert_eq!(next_of(&mut prompts, &prompts_id).await["method"], "notifications/prompts/list_changed");
    call(&http, &gw, "test_trigger_tool_change").await;
    assert_eq!(next_of(&mut tools, &tools_id).await["method"], "notifications/tools/list_changed", "no prompts change");
}

/// An upstream spoken to in the 2026-07-28 era sends its list changes only on a listen
/// stream of its own: the gateway's connection opens one, and what comes on it reaches the
/// gateway's listeners as a handshake-era upstream's notifications do.
#[tokio::test]
async fn a_modern_upstreams_list_change_reaches_the_listeners_through_its_own_listen_stream() {
    let gw = Gateway::start_with(&format!("{}era = \"modern\"\n", fixture("shared", &[])));
    let http = Http::new();
    let id = json!("modern-tools");
    let mut tools = listen(&http, &gw, &id, json!({"toolsListChanged": true})).await;
    let ack = next_of(&mut tools, &id).await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "first: {ack}");
    call(&http, &gw, "test_trigger_tool_change").await;
    assert_eq!(next_of(&mut tools, &id).await["method"], "notifications/tools/list_changed");
}

/// A resource URI is honoured when an upstream that offers subscriptions owns it: the gateway
/// subscribes upstream before the acknowledgement, relays its updates, and unsubscribes when
/// the last listener of the URI goes.
#[tokio::test]
async fn resource_updates_reach_a_listener_of_the_uri_until_it_closes() {
    let gw = Gateway::start_with(&fixture("shared", &["--update-tool"]));
    let http = Http::new();
    let id = json!("r");
    let uri = "test://watched-resource";
    let mut stream =
        listen(&http, &gw, &id, json!({"resourceSubscriptions": [uri], "resourcesListChanged": false})).await;
    let ack = next_of(&mut stream, &id).await;
    assert_eq!(ack["params"]["notifications"], json!({"resourceSubscriptions": [uri]}), "{ack}");
    let text = |reply: Reply| reply.json()["result"]["content"][0]["text"].as_str().map(str::to_owned);
    assert_eq!(
        text(call(&http, &gw, "update_watched").await).as_deref(),
        Some("updated"),
        "subscribed upstream by now"
    );
    let update = next_of(&mut stream, &id).await;
    assert_eq!(
        (update["method"].clone(), update["params"]["uri"].clone()),
        (json!("notifications/resources/updated"), json!(uri))
    );
    // A second listener of the URI, closed: the first still holds the upstream subscription.
    let second = raw_listen(&gw, &json!("r2"), json!({"resourceSubscriptions": [uri]})).await;
    drop(second);
    gw.wait_for_log("a listen stream's client closed it; the subscription ended");
    assert_eq!(text(call(&http, &gw, "update_watched").await).as_deref(), Some("updated"));
    assert_eq!(next_of(&mut stream, &id).await["method"], "notifications/resources/updated");
    drop(stream);
    eventually("the upstream subscription to end with the listener", || async {
        text(call(&http, &gw, "update_watched").await).as_deref() == Some("not subscribed")
    })
    .await;
}

#[tokio::test]
async fn sigterm_completes_a_listen_stream_with_its_result_and_does_not_wait_for_it() {
    // A drain that waited for the listener would outlast the test's wait for the exit.
    let mut gw = Gateway::start_with("[server]\ndrain_timeout_secs = 600\n\n[upstreams.builtin]\nkind = \"builtin\"\n");
    let http = Http::new();
    let id = json!(41);
    let mut stream = listen(&http, &gw, &id, json!({"toolsListChanged": true})).await;
    next_of(&mut stream, &id).await;
    let status = tokio::task::spawn_blocking(move || gw.terminate()).await.expect("wait");
    assert!(status.success(), "{status:?}");
    let done = next_of(&mut stream, &id).await;
    assert_eq!((done["id"].clone(), done["result"]["resultType"].clone()), (id, json!("complete")), "{done}");
    assert!(stream.next().await.is_none(), "then the stream ends");
}

#[tokio::test]
async fn a_reload_completes_listen_streams_and_new_ones_listen_to_the_new_upstreams() {
    let gw = Gateway::start_with("[upstreams.builtin]\nkind = \"builtin\"\n");
    let http = Http::new();
    let id = json!("before");
    let mut stream = listen(&http, &gw, &id, json!({"toolsListChanged": true})).await;
    next_of(&mut stream, &id).await;
    gw.signal("HUP");
    let done = next_of(&mut stream, &id).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(stream.next().await.is_none());
    let id = json!("after");
    let mut again = listen(&http, &gw, &id, json!({"toolsListChanged": true})).await;
    assert_eq!(next_of(&mut again, &id).await["method"], "notifications/subscriptions/acknowledged");
}

/// A listen stream on a raw connection, read up to its acknowledgement, so that closing it
/// is exactly what the test does.
async fn raw_listen(gw: &Gateway, id: &Value, filter: Value) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = listen_body(id, filter);
    let mut socket = tokio::net::TcpStream::connect(gw.authority()).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: {V2026}\r\nMcp-Method: subscriptions/listen\r\nContent-Length: {}\r\n\r\n",
        gw.authority(),
        body.len()
    );
    socket.write_all(format!("{head}{body}").as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("notifications/subscriptions/acknowledged") {
        let n = tokio::time::timeout(mcpgw_tests::WAIT, socket.read(&mut buf)).await.expect("in time").expect("read");
        assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

#[tokio::test]
async fn past_the_cap_a_listen_is_refused_and_a_closed_stream_frees_its_slot() {
    let gw = Gateway::start_with("[sessions]\nmax_listeners = 1\n\n[upstreams.builtin]\nkind = \"builtin\"\n");
    let http = Http::new();
    let first = raw_listen(&gw, &json!(1), json!({"toolsListChanged": true})).await;
    let refused = http
        .send(Method::POST, &gw.url("/mcp"), &headers("subscriptions/listen", None), listen_body(&json!(2), json!({})))
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text());
    let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], "").await.text();
    assert!(metrics.lines().any(|l| l == "mcpgw_listen_streams_open 1"), "{metrics}");
    let counted = r#"mcpgw_messages_total{transport="stateless",method="subscriptions/listen"} 2"#;
    assert!(metrics.lines().any(|l| l == counted), "{metrics}");
    drop(first);
    gw.wait_for_log("a listen stream's client closed it; the subscription ended");
    let mut third = listen(&http, &gw, &json!(3), json!({"toolsListChanged": true})).await;
    assert_eq!(next_of(&mut third, &json!(3)).await["method"], "notifications/subscriptions/acknowledged");
}

#[tokio::test]
async fn a_listen_that_does_not_take_an_event_stream_is_refused() {
    let gw = Gateway::start_with("[upstreams.builtin]\nkind = \"builtin\"\n");
    let mut h = headers("subscriptions/listen", None);
    h.retain(|(k, _)| *k != "accept");
    h.push(("accept", "application/json"));
    let reply = Http::new().send(Method::POST, &gw.url("/mcp"), &h, listen_body(&json!(1), json!({}))).await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{}", reply.text());
}

#[tokio::test]
async fn a_quiet_listen_stream_gets_keepalive_comments() {
    let gw = Gateway::start_with("[sessions]\nkeepalive_secs = 1\n\n[upstreams.builtin]\nkind = \"builtin\"\n");
    let http = Http::new();
    let mut stream = listen(&http, &gw, &json!(1), json!({"toolsListChanged": true})).await;
    next_of(&mut stream, &json!(1)).await;
    let chunk = stream.next_chunk().await.expect("more on the stream");
    assert_eq!(&chunk[..], b": keepalive\n\n");
}
