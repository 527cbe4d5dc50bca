//! The command line: start-up log, bad configurations, a busy port, and SIGTERM.

use std::net::TcpListener;

use mcpgw_tests::{Gateway, run};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mcpgw-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn start_up_logs_both_transport_urls() {
    let gw = Gateway::start();
    let log = gw.log.lock().expect("log").join("\n");
    assert!(log.contains(&format!("{}/mcp", gw.base)), "{log}");
    assert!(log.contains(&format!("{}/sse", gw.base)), "{log}");
}

#[test]
fn an_unknown_key_exits_64_with_one_line_naming_it() {
    let path = write("bad.toml", "[server]\nlisen = \"127.0.0.1:1\"\n");
    let (code, out) = run(&["--config", path.to_str().expect("utf8")]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 64, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("lisen") && out.contains(":2:"), "{out}");
}

#[test]
fn a_bad_upstream_header_exits_64_naming_its_key_at_check_and_at_start() {
    // A line break in a value, and a space in a name: neither can ever be sent.
    let cases = [
        (
            "value.toml",
            "[upstreams.api]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/mcp\"\nheaders = { Authorization = \"Bearer a\\nX-Evil: 1\" }\n",
            "upstreams.api.headers.Authorization",
        ),
        (
            "name.toml",
            "[upstreams.api]\nkind = \"sse\"\nurl = \"http://127.0.0.1:9/sse\"\nheaders = { \"X Key\" = \"v\" }\n",
            "upstreams.api.headers.\"X Key\"",
        ),
        (
            "desktop.json",
            r#"{"mcpServers": {"api": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "a\u0000b"}}}}"#,
            "mcpServers.api.headers.X-Key",
        ),
    ];
    for (name, text, key) in cases {
        let path = write(name, text);
        let file = path.to_str().expect("utf8");
        let (checked, check_out) = run(&["check-config", file]);
        let (started, start_out) = run(&["--config", file, "--listen", "127.0.0.1:0"]);
        let _ = std::fs::remove_file(&path);
        for (code, out) in [(checked, &check_out), (started, &start_out)] {
            assert_eq!(code, 64, "{name}: {out}");
            assert!(out.contains(key), "{name}: {out}");
            assert!(!out.contains("Bearer a"), "a header value is never echoed: {out}");
        }
    }
}

#[test]
fn a_missing_config_file_exits_64() {
    let (code, out) = run(&["--config", "/nonexistent/mcpgw.toml"]);
    assert_eq!(code, 64, "{out}");
    assert!(out.contains("/nonexistent/mcpgw.toml"), "{out}");
}

#[test]
fn a_busy_port_exits_non_zero_with_one_clear_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let path = write("empty.toml", "");
    let (code, out) = run(&["--config", path.to_str().expect("utf8"), "--listen", &addr]);
    let _ = std::fs::remove_file(&path);
    assert_ne!(code, 0);
    let last = out.trim().lines().last().expect("a line");
    assert!(last.contains("cannot listen on") && last.contains(&addr), "{out}");
}

#[test]
fn version_prints_the_version() {
    let (code, out) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn sigterm_exits_zero() {
    let mut gw = Gateway::start();
    assert!(gw.terminate().success());
}

/// The names of the gateway's async runtime threads, read from /proc.
fn runtime_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the gateway's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "mcpgw-worker")
        .count()
}

#[tokio::test]
async fn worker_threads_sets_the_runtime_threads_and_it_serves() {
    for threads in [1, 3] {
        let gw = Gateway::start_with(&format!("[server]\nworker_threads = {threads}\n"));
        let session = mcpgw_tests::StreamableSession::open(&gw.url("/mcp"), "2025-11-25").await;
        let result =
            session.call(1, "tools/call", serde_json::json!({"name": "echo", "arguments": {"text": "hi"}})).await;
        assert_eq!(result["result"]["content"][0]["text"], "hi", "{result}");
        assert_eq!(runtime_threads(gw.pid()), threads, "worker_threads = {threads}");
    }
}
