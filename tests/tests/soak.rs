//! Soak: 20,000 sessions opened, used and closed across both transports, concurrently.
//! Afterwards the registry is empty, the runtime's tasks and the process's memory are back
//! near where they were after warm-up, and no upstream child is left.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, LegacySession, StreamableSession, eventually, rss_kib, session_counts};
use serde_json::json;

const SESSIONS: usize = 20_000;
const WARM_UP: usize = 1_000;
const WORKERS: usize = 16;
/// The whole soak must finish within this.
const LIMIT: Duration = Duration::from_secs(600);

async fn tasks_alive(http: &Http, gw: &Gateway) -> u64 {
    let text = http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("mcpgw_tasks_alive "))
        .and_then(|v| v.trim().parse().ok())
        .expect("tasks_alive")
}

/// One session, used and closed: Streamable for even `n`, legacy for odd.
async fn one_session(gw: &Gateway, n: usize) {
    if n.is_multiple_of(2) {
        let s = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
        let r = s.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": n.to_string()}})).await;
        assert_eq!(r["result"]["content"][0]["text"], n.to_string());
        let [sid, pv] = s.headers();
        assert_eq!(s.http.send(Method::DELETE, &s.url, &[sid, pv], Bytes::new()).await.status, StatusCode::OK);
    } else {
        let mut s = LegacySession::connect(gw, "/sse").await;
        s.initialize("2024-11-05").await;
        let r = s.call(1, "tools/call", json!({"name": "add", "arguments": {"a": n, "b": 1}})).await;
        assert_eq!(r["result"]["content"][0]["text"], (n + 1).to_string());
    }
}

async fn run(gw: &Gateway, range: std::ops::Range<usize>) {
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let start = range.start + w;
        let end = range.end;
        let base = gw.base.clone();
        workers.spawn(async move {
            let gw = Gateway::attach(&base);
            let mut n = start;
            while n < end {
                one_session(&gw, n).await;
                n += WORKERS;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_sessions_leave_nothing_behind() {
    let fixture = env!("CARGO_BIN_EXE_mcpgw-fixture");
    // The fixture ignores its arguments; this one finds its children at the end. It names
    // this run only: the same test running elsewhere on the machine (another checkout, a
    // parallel job) has children of its own that are not this gateway's leftovers.
    let marker = format!("--soak-marker-{}", std::process::id());
    let config = format!(
        "[sessions]\nlegacy_grace_secs = 0\n\n[upstreams.builtin]\nkind = \"builtin\"\n\n[upstreams.fixture]\nkind = \"stdio\"\ncommand = \"{fixture}\"\nargs = [\"{marker}\"]\nshare = \"shared\"\n"
    );
    let mut gw = Gateway::start_with(&config);
    let http = Http::new();
    let started = Instant::now();

    run(&gw, 0..WARM_UP).await;
    eventually("warm-up sessions to end", || async { session_counts(&http, &gw).await == (0, 0) }).await;
    let warm_rss = rss_kib(gw.pid());
    let warm_tasks = tasks_alive(&http, &gw).await;

    run(&gw, WARM_UP..SESSIONS).await;
    eventually("every session to end", || async { session_counts(&http, &gw).await == (0, 0) }).await;
    let elapsed = started.elapsed();
    assert!(elapsed < LIMIT, "the soak took {elapsed:?}");

    let end_tasks = tasks_alive(&http, &gw).await;
    assert!(end_tasks <= warm_tasks + 4, "tasks: {warm_tasks} after warm-up, {end_tasks} at the end");
    let end_rss = rss_kib(gw.pid());
    // Allocators keep some freed memory; a leak of even 1 KiB per session would show as 19 MiB.
    assert!(end_rss <= warm_rss + 16 * 1024, "RSS: {warm_rss} KiB after warm-up, {end_rss} KiB at the end");
    println!(
        "soak: {SESSIONS} sessions in {elapsed:?}; RSS {warm_rss} → {end_rss} KiB; tasks {warm_tasks} → {end_tasks}"
    );

    assert!(gw.terminate().success());
    let left = std::process::Command::new("pgrep").args(["-f", "--", &marker]).output().expect("pgrep");
    assert!(left.stdout.is_empty(), "upstream children left: {}", String::from_utf8_lossy(&left.stdout));
}
