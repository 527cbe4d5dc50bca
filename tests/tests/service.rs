//! Running under systemd and being operated: sd_notify messages, socket activation, the
//! SIGTERM drain, SIGHUP reload, check-config, and the operational endpoints.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, Launch, StreamableSession, WAIT, binary, request};
use serde_json::json;

/// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "mcpgw-notify-{}-{:?}.sock",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        Self { socket, path }
    }

    /// The next message, split into its `KEY=value` lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("an sd_notify message in time");
        String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned).collect()
    }

    /// Reads messages until one has `line`; returns everything read, in order.
    fn until(&self, line: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let message = self.next();
            let found = message.iter().any(|l| l == line);
            seen.extend(message);
            if found {
                return seen;
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn notifies_ready_status_watchdog_reloading_and_stopping_in_order() {
    let notify = NotifySocket::new();
    let gw = Launch::new("")
        .env("NOTIFY_SOCKET", notify.path.to_str().expect("utf8"))
        .env("WATCHDOG_USEC", "200000")
        .start();
    let ready = notify.until("READY=1");
    assert!(ready.iter().any(|l| l.starts_with("STATUS=") && l.contains("sessions")), "{ready:?}");
    notify.until("WATCHDOG=1");
    notify.until("WATCHDOG=1");
    gw.signal("HUP");
    let reload = notify.until("RELOADING=1");
    assert!(reload.iter().any(|l| l.starts_with("MONOTONIC_USEC=")), "{reload:?}");
    notify.until("READY=1");
    gw.signal("TERM");
    notify.until("STOPPING=1");
}

#[tokio::test]
async fn serves_on_an_inherited_listening_socket() {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    // As systemd-socket-activate does: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID = the
    // gateway's own pid (the shell's, which `exec` keeps).
    let script = r#"exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@""#;
    let gw = Launch::new("").through_shell(script, Stdio::from(std::os::fd::OwnedFd::from(socket))).start();
    assert_eq!(gw.base, format!("http://{addr}"), "the gateway listens on the inherited socket");
    assert!(gw.logged("socket_activated=true"));
    let session = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let echo = session.call(1, "tools/call", json!({"name": "echo", "arguments": {"text": "activated"}})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "activated");
}

#[tokio::test]
async fn sigterm_lets_a_call_in_flight_finish_then_exits_zero() {
    let gw = Gateway::start_with("[server]\ndrain_timeout_secs = 20\n");
    let session = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let call = {
        let http = session.http.clone();
        let url = session.url.clone();
        let headers: Vec<(String, String)> =
            session.headers().iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http.post(&url, &headers, &request(9, "tools/call", json!({"name": "sleep", "arguments": {"ms": 1500}})))
                .await
        })
    };
    // The call is in flight once the gateway has it; ask the registry rather than guess.
    let http = Http::new();
    mcpgw_tests::eventually("the call to be in flight", || async {
        let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await.text();
        metrics.contains(r#"mcpgw_messages_total{transport="streamable",method="tools/call"} 1"#)
    })
    .await;
    gw.signal("TERM");
    let reply = call.await.expect("the call's task");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.messages()[0]["result"]["content"][0]["text"], "slept 1500 ms");
    let status = tokio::task::spawn_blocking(move || gw.terminate_wait()).await.expect("wait");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sighup_adds_an_upstream_for_new_sessions_and_live_ones_keep_working() {
    let gw = Gateway::start_with("[upstreams.builtin]\nkind = \"builtin\"\n");
    let old = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    std::fs::write(
        gw.config_path(),
        "[upstreams.builtin]\nkind = \"builtin\"\n\n[upstreams.second]\nkind = \"builtin\"\n",
    )
    .expect("rewrite the config");
    gw.signal("HUP");
    gw.wait_for_log("configuration reloaded");
    let new = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let tools = new.call(1, "tools/list", json!({})).await;
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"second_echo") && names.contains(&"builtin_echo"), "{names:?}");
    let still = old.call(2, "tools/call", json!({"name": "echo", "arguments": {"text": "old session"}})).await;
    assert_eq!(still["result"]["content"][0]["text"], "old session");

    std::fs::write(gw.config_path(), "[upstreams.broken\nkind = ").expect("rewrite the config");
    gw.signal("HUP");
    gw.wait_for_log("reload refused");
    let after = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let tools = after.call(3, "tools/list", json!({})).await;
    assert!(tools["result"]["tools"].as_array().expect("tools").iter().any(|t| t["name"] == "second_echo"));
}

#[tokio::test]
async fn metrics_follow_sessions_as_they_open_and_close() {
    let gw = Gateway::start();
    let http = Http::new();
    let open = |text: &str, transport: &str| {
        let key = format!(r#"mcpgw_sessions_open{{transport="{transport}"}} "#);
        text.lines().find_map(|l| l.strip_prefix(key.as_str())).and_then(|v| v.trim().parse::<i64>().ok())
    };
    let scrape = || async { http.send(Method::GET, &gw.url("/metrics"), &[], Bytes::new()).await };
    let before = scrape().await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")));
    assert_eq!(open(&before.text(), "streamable"), Some(0));
    let a = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let _b = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let during = scrape().await.text();
    assert_eq!(open(&during, "streamable"), Some(2), "{during}");
    assert!(during.contains(r#"mcpgw_sessions_created_total{transport="streamable"} 2"#), "{during}");
    let [sid, pv] = a.headers();
    assert_eq!(http.send(Method::DELETE, &a.url, &[sid, pv], Bytes::new()).await.status, StatusCode::OK);
    let after = scrape().await.text();
    assert_eq!(open(&after, "streamable"), Some(1), "{after}");
    assert!(after.contains(r#"mcpgw_sessions_ended_total{transport="streamable"} 1"#), "{after}");
    assert!(after.contains("mcpgw_http_request_duration_seconds_bucket"), "{after}");
    assert!(after.lines().any(|l| l.starts_with("mcpgw_sent_bytes_total ")), "{after}");
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let gw = Gateway::start();
    let http = Http::new();
    assert_eq!(http.send(Method::GET, &gw.url("/healthz"), &[], Bytes::new()).await.status, StatusCode::OK);
    mcpgw_tests::eventually("readiness", || async {
        http.send(Method::GET, &gw.url("/readyz"), &[], Bytes::new()).await.status == StatusCode::OK
    })
    .await;
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_line_of_a_bad_one() {
    let dir = std::env::temp_dir();
    let good = dir.join(format!("mcpgw-check-good-{}.toml", std::process::id()));
    let bad = dir.join(format!("mcpgw-check-bad-{}.toml", std::process::id()));
    std::fs::write(&good, "[upstreams.tools]\nkind = \"builtin\"\n").expect("write");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:1\"\n\n[sessions]\nkeepalive = 3\n").expect("write");
    let ok = std::process::Command::new(binary()).arg("check-config").arg(&good).output().expect("run");
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok"));
    let refused = std::process::Command::new(binary()).arg("check-config").arg(&bad).output().expect("run");
    assert_eq!(refused.status.code(), Some(64));
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains(":5:") && text.contains("keepalive"), "{text}");
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[tokio::test]
async fn a_sighup_during_start_up_is_applied_once_ready() {
    // A shared upstream that never answers `initialize` holds start-up for its connect timeout.
    let silent = "[upstreams.silent]\nkind = \"stdio\"\ncommand = \"sleep\"\nargs = [\"60\"]\nshare = \"shared\"\nconnect_timeout_secs = 5\n";
    let gw = Gateway::start_with(&format!("[upstreams.builtin]\nkind = \"builtin\"\n\n{silent}"));
    assert!(!gw.logged("mcpgw: ready"), "still starting");
    std::fs::write(
        gw.config_path(),
        "[upstreams.builtin]\nkind = \"builtin\"\n\n[upstreams.second]\nkind = \"builtin\"\n",
    )
    .expect("rewrite the config");
    gw.signal("HUP");
    gw.wait_for_log("mcpgw: ready");
    gw.wait_for_log("configuration reloaded");
    let session = StreamableSession::open(&gw.url("/mcp"), "2025-06-18").await;
    let tools = session.call(1, "tools/list", json!({})).await;
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"second_echo"), "the reloaded configuration serves: {names:?}");
}
