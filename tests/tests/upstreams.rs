//! A stdio upstream (the fixture) that dies in the middle of a call: the client is told at
//! once, the child is restarted, and nothing is left behind. One past its connection cap
//! says so; a shared one asking for roots outside any call gets none, without a warning.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Launch, POST_HEADERS, SseReader, StreamableSession, eventually};
use serde_json::json;

fn pids(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep").args(["-f", "--", marker]).output().expect("pgrep");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_child_killed_mid_call_fails_the_call_promptly_and_is_restarted() {
    let marker = format!("--kill-test-{}", std::process::id());
    let config = format!(
        "[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{}\"\nargs = [\"{marker}\"]\n",
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    );
    let mut gw = Gateway::start_with(&config);
    let s = StreamableSession::open_with(&gw.url("/mcp"), "2025-06-18", json!({"sampling": {}})).await;
    let before = pids(&marker);
    assert_eq!(before.len(), 1, "one child for the session: {before:?}");

    // test_sampling waits for the client's answer: a call that stays in flight.
    let mut headers = POST_HEADERS.to_vec();
    headers.extend(s.headers());
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "test_sampling", "arguments": {"prompt": "hi"}}});
    let mut stream = SseReader::new(s.http.open(Method::POST, &s.url, &headers, call.to_string()).await);
    let sampling = stream.next_message().await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");

    let killed_at = Instant::now();
    assert!(std::process::Command::new("kill").args(["-KILL", &before[0]]).status().expect("kill").success());
    let failed = stream.next_message().await;
    assert_eq!(failed["id"], 1);
    assert!(failed["error"]["message"].is_string(), "the call fails: {failed}");
    assert!(killed_at.elapsed() < Duration::from_secs(2), "promptly: {:?}", killed_at.elapsed());

    // Listed is not yet callable: the session's catalog may still show the old child's tools
    // for a moment while the link restarts, so wait for a call to go through as well.
    eventually("the child to be restarted", || async {
        let tools = s.post(&mcpgw_tests::request(2, "tools/list", json!({}))).await;
        let listed = tools.status == StatusCode::OK && tools.text().contains("test_simple_text");
        let call = mcpgw_tests::request(4, "tools/call", json!({"name": "test_simple_text", "arguments": {}}));
        listed && s.post(&call).await.text().contains("\"result\"")
    })
    .await;
    let after = s.call(3, "tools/call", json!({"name": "test_simple_text", "arguments": {}})).await;
    assert!(after["result"]["content"][0]["text"].is_string(), "{after}");
    let restarted = pids(&marker);
    assert_eq!(restarted.len(), 1, "one child again: {restarted:?}");
    assert_ne!(restarted, before);

    assert!(gw.terminate().success());
    assert!(pids(&marker).is_empty(), "no child outlives the gateway");
}

#[tokio::test]
async fn past_an_upstreams_connection_cap_calls_get_a_clear_error() {
    let marker = format!("--cap-test-{}", std::process::id());
    let config = format!(
        "[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{}\"\nargs = [\"{marker}\"]\nmax_connections = 1\n",
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    );
    let gw = Gateway::start_with(&config);
    let first = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let ok = first.call(1, "tools/call", json!({"name": "test_simple_text", "arguments": {}})).await;
    assert!(ok["result"].is_object(), "{ok}");
    let second = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let refused = second.call(2, "tools/call", json!({"name": "test_simple_text", "arguments": {}})).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cap of 1"), "{refused}");
    assert_eq!(pids(&marker).len(), 1, "no child past the cap");
}

/// A shared upstream that asks `roots/list` outside any call (the filesystem server does,
/// right after `initialize`) is answered by the gateway with no roots: it serves many
/// clients and gets no one client's roots. Nothing of that is a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_upstream_asking_for_roots_outside_a_call_gets_none() {
    let config = format!(
        "[upstreams.fixture]\nkind = \"stdio\"\nshare = \"shared\"\ncommand = \"{}\"\nargs = [\"--ask-roots\"]\n",
        env!("CARGO_BIN_EXE_mcpgw-fixture")
    );
    let mut gw = Launch::new(&config).env("MCPGW_LOG", "info,rmcp=warn,mcpgw_core=debug").start();
    let s = StreamableSession::open_with(&gw.url("/mcp"), "2025-11-25", json!({"roots": {"listChanged": true}})).await;
    // Answered before the call below: the call is not what it could be tied to.
    gw.until_logged("roots/list outside any call; answered with no roots").await;
    let seen = s.call(1, "tools/call", json!({"name": "roots_seen", "arguments": {}})).await;
    assert_eq!(seen["result"]["content"][0]["text"], r#"{"roots":[]}"#, "{seen}");
    assert!(gw.terminate().success());
    assert!(!gw.logged("WARN"), "no warning logged");
}
