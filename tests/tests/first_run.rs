//! What a new user meets first: the start-up log names the configuration and its upstreams,
//! and `GET /` says where the MCP endpoints are.

use std::process::Stdio;

use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, Launch};

#[test]
fn start_up_logs_the_configuration_file_and_its_upstreams() {
    let gw = Gateway::start_with(
        "[upstreams.tools]\nkind = \"builtin\"\n\n[upstreams.far]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/mcp\"\n\
         share = \"shared\"\nconnect_timeout_secs = 1\n",
    );
    let path = gw.config_path().display().to_string();
    gw.wait_for_log(&format!("configuration: {path}; upstreams: tools (builtin), far (http, shared)"));
}

#[test]
fn start_up_names_the_embedded_default_when_no_file_is_read() {
    // No --config, from a directory without config/mcpgw.toml: the embedded default.
    let dir = std::env::temp_dir().join(format!("mcpgw-first-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let script = format!("cd '{}' && exec \"$0\" --listen 127.0.0.1:0", dir.display());
    let gw = Launch::new("").through_shell(&script, Stdio::null()).start();
    gw.wait_for_log("configuration: the embedded default; upstreams: builtin (builtin)");
    drop(gw);
    let _ = std::fs::remove_dir(&dir);
}

#[tokio::test]
async fn get_root_names_the_endpoints_in_plain_text() {
    let gw = Gateway::start();
    let reply = Http::new().send(Method::GET, &gw.url("/"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = reply.text();
    for endpoint in ["/mcp", "/sse", "/healthz"] {
        assert!(text.contains(endpoint), "{endpoint} in {text:?}");
    }
    let other = Http::new().send(Method::GET, &gw.url("/nothing-here"), &[], "").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "only the root answers");
}
