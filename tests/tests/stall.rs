//! An upstream that stalls stalls only itself: one shared upstream stops answering
//! `tools/list` after announcing a list change, another stops reading its stdin. Calls to a
//! healthy upstream, in every session, keep their latency; the stalled ones' calls fail with
//! a clear error at their deadline; the stalled list is left out, logged and counted.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use mcpgw_tests::{Gateway, Http, StreamableSession};
use serde_json::{Value, json};

const SESSIONS: usize = 4;
const CALLS: usize = 40;
/// `list_timeout_secs` and `call_timeout_secs` of the stalling upstreams.
const DEADLINE: Duration = Duration::from_secs(2);

/// An argument the fixture ignores that names this test's children, to find any left behind
/// (the other test in this run, and the same test in another checkout, have children of
/// their own).
fn marker(test: &str) -> String {
    format!("--stall-marker-{test}-{}-end", std::process::id())
}

fn config() -> String {
    config_of("holds", &[("healthy", ""), ("lists", "prefix = \"lists_\"\n"), ("stdin", "prefix = \"stdin_\"\n")])
}

/// Shared stalling fixtures, by name and extra settings, in this order.
fn config_of(test: &str, upstreams: &[(&str, &str)]) -> String {
    let fixture = env!("CARGO_BIN_EXE_mcpgw-fixture");
    let marker = marker(test);
    let mut config = String::new();
    for (name, extra) in upstreams {
        config.push_str(&format!(
            "[upstreams.{name}]\nkind = \"stdio\"\nshare = \"shared\"\ncommand = \"{fixture}\"\n\
             args = [\"--stall-tools\", \"{marker}\"]\nlist_timeout_secs = {secs}\ncall_timeout_secs = {secs}\n{extra}\n",
            secs = DEADLINE.as_secs()
        ));
    }
    config
}

/// Calls the healthy upstream's tool `CALLS` times in each session at once; every call's
/// latency, sorted.
async fn healthy_latencies(sessions: &[StreamableSession]) -> Vec<Duration> {
    let runs = sessions.iter().map(|s| async move {
        let mut took = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let started = Instant::now();
            let r = s.call(1000 + i as i64, "tools/call", json!({"name": "test_simple_text", "arguments": {}})).await;
            took.push(started.elapsed());
            assert!(r["result"]["content"][0]["text"].is_string(), "a healthy call answers: {r}");
        }
        took
    });
    let mut all: Vec<Duration> = futures::future::join_all(runs).await.into_iter().flatten().collect();
    all.sort();
    all
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(Into::into))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_holds_up_only_its_own_calls() {
    let mut gw = Gateway::start_with(&config());
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let s = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
        let names = tool_names(&s.call(1, "tools/list", json!({})).await);
        for tool in ["test_simple_text", "lists_stall_listing", "stdin_stall_stdin"] {
            assert!(names.iter().any(|n| n == tool), "{tool} listed: {names:?}");
        }
        sessions.push(s);
    }
    // Warm up, then the baseline: no stall yet.
    healthy_latencies(&sessions).await;
    let baseline = healthy_latencies(&sessions).await;

    // Stall both: `lists` announces a list change and then never answers tools/list;
    // `stdin` stops reading its stdin.
    let stalled = sessions[0].call(2, "tools/call", json!({"name": "lists_stall_listing", "arguments": {}})).await;
    assert_eq!(stalled["result"]["content"][0]["text"], "lists stalled", "{stalled}");
    let stalled = sessions[0].call(3, "tools/call", json!({"name": "stdin_stall_stdin", "arguments": {}})).await;
    assert_eq!(stalled["result"]["content"][0]["text"], "stdin stalled", "{stalled}");

    // Calls to the stalled upstreams, in flight while the healthy one is measured.
    let lists_call = async {
        // The list change reaches the gateway beside the stall call's answer, maybe just
        // after it: until it has, the call still goes through on the old list.
        for id in 4.. {
            let started = Instant::now();
            let r =
                sessions[1].call(id, "tools/call", json!({"name": "lists_test_simple_text", "arguments": {}})).await;
            if r.get("error").is_some() || id > 1000 {
                return (r, started.elapsed());
            }
        }
        unreachable!("the loop returns")
    };
    let stdin_call = async {
        let started = Instant::now();
        let r = sessions[2].call(2000, "tools/call", json!({"name": "stdin_test_simple_text", "arguments": {}})).await;
        (r, started.elapsed())
    };
    let measure = async {
        // The gateway has asked the stalled upstream for its tools, and is waiting.
        gw.until_logged("tools/list stalled").await;
        healthy_latencies(&sessions).await
    };
    let all = async { futures::join!(lists_call, stdin_call, measure) };
    let ((lists, lists_took), (stdin, stdin_took), during) =
        tokio::time::timeout(Duration::from_secs(60), all).await.expect("nothing hangs");

    // The healthy upstream's calls kept their latency while both stalls were in effect.
    let (base, stall) = (p99(&baseline), p99(&during));
    // 2x the baseline, with a floor of 50 ms for a loaded machine's scheduling noise: a call
    // held up by a stalled list would take the whole list deadline (2 s), or forever.
    assert!(
        stall <= (base * 2).max(base + Duration::from_millis(50)),
        "p99 {stall:?} during the stalls, {base:?} without; baseline {baseline:?}, during {:?}",
        &during[..]
    );

    // The stalled ones' calls failed with a clear error at their deadline.
    let message = lists["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("tools/list timed out after 2s"), "{lists}");
    let message = stdin["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("timed out after 2s"), "{stdin}");
    for took in [lists_took, stdin_took] {
        assert!(took >= DEADLINE - Duration::from_millis(100), "not before the deadline: {took:?}");
        assert!(took < DEADLINE + Duration::from_secs(3), "at the deadline: {took:?}");
    }

    // The catalog lists what the others have, the stalled list left out; logged and counted.
    let names = tool_names(&sessions[3].call(6, "tools/list", json!({})).await);
    assert!(names.iter().any(|n| n == "test_simple_text") && names.iter().any(|n| n == "stdin_test_simple_text"));
    assert!(!names.iter().any(|n| n.starts_with("lists_")), "{names:?}");
    gw.until_logged("listing failed; leaving it out").await;
    let metrics = Http::new().send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("mcpgw_upstream_list_failures_total{") && l.contains(r#"upstream="lists""#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(failures.is_some_and(|n| n >= 1), "counted: {metrics}");

    // Stopped, the gateway leaves no child behind, not even the one that stopped reading its
    // stdin (it never sees the end of its input, so only a kill ends it).
    drop(sessions);
    stop_leaving_no_child(&mut gw, "holds");
}

/// Stops the gateway with SIGTERM and finds none of `test`'s upstream children left.
fn stop_leaving_no_child(gw: &mut Gateway, test: &str) {
    assert!(gw.terminate().success());
    let left = std::process::Command::new("pgrep").args(["-f", "--", &marker(test)]).output().expect("pgrep");
    assert!(left.stdout.is_empty(), "upstream children left: {}", String::from_utf8_lossy(&left.stdout));
}

/// Every request forwarded to an upstream has its deadline, not only `tools/call`: once an
/// upstream stops reading its stdin, `prompts/get` and `resources/read` on it fail at its
/// `call_timeout_secs` with an error that says so, while the others keep answering; and a
/// stalled listing of another upstream holds up no `prompts/get`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_to_a_stalled_upstream_ends_at_its_deadline() {
    // `stdin` comes first, so the resources every fixture lists are its own.
    let mut gw = Gateway::start_with(&config_of(
        "every",
        &[("stdin", ""), ("lists", "prefix = \"lists_\"\n"), ("healthy", "prefix = \"healthy_\"\n")],
    ));
    let s = StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
    let names = tool_names(&s.call(1, "tools/list", json!({})).await);
    assert!(names.iter().any(|n| n == "stall_stdin") && names.iter().any(|n| n == "lists_stall_listing"), "{names:?}");

    let stalled = s.call(2, "tools/call", json!({"name": "stall_stdin", "arguments": {}})).await;
    assert_eq!(stalled["result"]["content"][0]["text"], "stdin stalled", "{stalled}");
    let requests = [
        ("prompts/get", json!({"name": "test_simple_prompt"})),
        ("resources/read", json!({"uri": "test://static-text"})),
    ];
    for (id, (method, params)) in (3..).zip(requests) {
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(30), s.call(id, method, params))
            .await
            .unwrap_or_else(|_| panic!("{method} to the stalled upstream never ended"));
        let took = started.elapsed();
        let message = r["error"]["message"].as_str().unwrap_or_default();
        for part in ["upstream 'stdin'", &format!("{method} timed out after 2s"), "call_timeout_secs"] {
            assert!(message.contains(part), "{method}: {part:?} in {r}");
        }
        assert!(took >= DEADLINE - Duration::from_millis(100), "{method} not before the deadline: {took:?}");
        assert!(took < DEADLINE + Duration::from_secs(3), "{method} at the deadline: {took:?}");
    }

    // `lists` announces a list change and never answers tools/list again: a catalog built
    // now waits for it until its list deadline.
    let stalled = s.call(5, "tools/call", json!({"name": "lists_stall_listing", "arguments": {}})).await;
    assert_eq!(stalled["result"]["content"][0]["text"], "lists stalled", "{stalled}");
    let listing = s.call(6, "tools/list", json!({}));
    let prompt = async {
        gw.until_logged("tools/list stalled").await;
        let started = Instant::now();
        let r = s.call(7, "prompts/get", json!({"name": "healthy_test_simple_prompt"})).await;
        (r, started.elapsed())
    };
    let (listed, (prompt, took)) =
        tokio::time::timeout(Duration::from_secs(30), async { futures::join!(listing, prompt) })
            .await
            .expect("nothing hangs");
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    let text = &prompt["result"]["messages"][0]["content"]["text"];
    assert_eq!(text, "This is a simple prompt for testing.", "{prompt}");
    // Held up by the stalled listing, it would take the whole list deadline.
    assert!(took < DEADLINE, "the healthy upstream's prompt waited for another's listing: {took:?}");

    drop(s);
    stop_leaving_no_child(&mut gw, "every");
}
