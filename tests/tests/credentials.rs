//! Per-user upstream credentials, end to end: two callers (named static tokens) of the
//! same `share = "session"` stdio upstream each get a child started with their own secret
//! (in its environment and its arguments); a caller without one does not see the upstream
//! but keeps the others, and the log says why; stateless requests are not offered it; and
//! no secret shows in the log, `/metrics` or `/healthz` of the run. An `http` upstream
//! sends each caller's own header, on a connection of the session's own.

use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::bearer::BearerSession;
use mcpgw_tests::{Http, Launch};
use serde_json::{Value, json};

const ALICE_SECRET: &str = "alice-upstream-secret-7f3a";
const BOB_SECRET: &str = "bob-upstream-secret-91c2";

fn digest(token: &str) -> String {
    mcpgw_transport::auth::digest_hex(token)
}

/// A credentials file readable by its owner only; removed on drop.
struct CredentialsFile(std::path::PathBuf);

impl CredentialsFile {
    fn new(name: &str, mode: u32) -> Self {
        let path = std::env::temp_dir().join(format!("mcpgw-credentials-{name}-{}.toml", std::process::id()));
        let text = format!(
            "[tokens.alice]\ntoken = \"{ALICE_SECRET}\"\nuser = \"alice-gh\"\n\n\
             [tokens.bob]\ntoken = \"{BOB_SECRET}\"\nuser = \"bob-gh\"\n"
        );
        std::fs::write(&path, text).expect("write the credentials");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        Self(path)
    }
}

impl Drop for CredentialsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config(credentials: &CredentialsFile) -> String {
    format!(
        r#"[auth.tokens]
alice = "{alice}"
bob = "{bob}"
carol = "{carol}"

[upstreams.builtin]
kind = "builtin"

[upstreams.gh]
kind = "stdio"
command = "{fixture}"
args = ["--credential-tool", "--user=${{secret:user}}"]
env = {{ MCPGW_FIXTURE_CREDENTIAL = "Bearer ${{secret:token}}" }}
credentials = "{path}"
"#,
        alice = digest("alice-token"),
        bob = digest("bob-token"),
        carol = digest("carol-token"),
        fixture = env!("CARGO_BIN_EXE_mcpgw-fixture"),
        path = credentials.0.display(),
    )
}

/// What the tests ask of a caller's session.
trait Asks {
    async fn tools(&self) -> Vec<String>;
    async fn credential_seen(&self) -> String;
}

impl Asks for BearerSession {
    async fn tools(&self) -> Vec<String> {
        names(&self.call(100, "tools/list", json!({})).await)
    }

    /// What the upstream says it was given (each value reversed: see [`rev`]).
    async fn credential_seen(&self) -> String {
        let reply = self.call(101, "tools/call", json!({"name": "credential_seen", "arguments": {}})).await;
        reply["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("a text result: {reply}")).to_owned()
    }
}

/// `text` reversed: the fixture answers what it was given so, so that its answer (which the
/// gateway logs at `trace`) does not hold the secret and the log can be searched for it.
fn rev(text: &str) -> String {
    text.chars().rev().collect()
}

fn names(list: &Value) -> Vec<String> {
    let tools = list["result"]["tools"].as_array().unwrap_or_else(|| panic!("tools: {list}"));
    tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn each_caller_gets_its_own_credential_one_without_does_not_see_the_upstream_and_no_secret_leaks() {
    let credentials = CredentialsFile::new("e2e", 0o600);
    // Every level of the log, every target: none may show a secret.
    let gw = Launch::new(&config(&credentials)).env("MCPGW_LOG", "trace").start();

    let alice = BearerSession::open(&gw, "alice-token").await;
    let bob = BearerSession::open(&gw, "bob-token").await;
    let seen = |secret: &str, user: &str| format!("env={} user={}", rev(&format!("Bearer {secret}")), rev(user));
    assert_eq!(alice.credential_seen().await, seen(ALICE_SECRET, "alice-gh"));
    assert_eq!(bob.credential_seen().await, seen(BOB_SECRET, "bob-gh"));

    let carol = BearerSession::open(&gw, "carol-token").await;
    let hers = carol.tools().await;
    assert!(!hers.contains(&"credential_seen".to_owned()), "{hers:?}");
    assert!(hers.contains(&"echo".to_owned()), "the other upstreams still serve her: {hers:?}");
    let echoed = carol.call(2, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await;
    assert_eq!(echoed["result"]["content"][0]["text"], "hi", "{echoed}");
    gw.wait_for_log("upstream left out of the session");
    assert!(gw.logged("no secret 'user' for this caller") || gw.logged("no secret 'token' for this caller"));
    assert!(gw.logged("upstream=gh") && gw.logged("caller=token:carol"), "the log names the upstream and the caller");

    // A stateless request of a caller who has a credential: the hub's connections serve
    // every stateless caller alike, so the upstream is not offered there.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let headers =
        [("authorization", "Bearer alice-token"), ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")];
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}});
    let reply = Http::new().post(&gw.url("/mcp"), &headers, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let list = reply.messages().into_iter().find(|m| m["id"] == 1).expect("the response");
    let stateless = names(&list);
    assert!(!stateless.contains(&"credential_seen".to_owned()) && stateless.contains(&"echo".to_owned()));

    let http = Http::new();
    for path in ["/metrics", "/healthz"] {
        let page = http.send(Method::GET, &gw.url(path), &[], Bytes::new()).await.text();
        assert!(!page.is_empty(), "{path} answered");
        for secret in [ALICE_SECRET, BOB_SECRET, "alice-gh", "bob-gh"] {
            assert!(!page.contains(secret), "{secret} in {path}:\n{page}");
        }
    }
    for secret in [ALICE_SECRET, BOB_SECRET] {
        assert!(!gw.logged(secret), "{secret} in the log");
    }
}

/// The fixture serving Streamable HTTP on a port of its own; ended on drop.
struct HttpFixture {
    child: std::process::Child,
    url: String,
}

impl HttpFixture {
    fn start() -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgw-fixture"))
            .args(["--credential-tool", "--http", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the fixture");
        let stdout = child.stdout.take().expect("piped stdout");
        // The fixture prints its address as soon as it is bound, or exits.
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("read the fixture's address");
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("no address: {line:?}")).to_owned();
        Self { child, url }
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_http_upstream_sends_each_caller_its_own_header() {
    let credentials = CredentialsFile::new("http", 0o600);
    let upstream = HttpFixture::start();
    let config = format!(
        r#"[auth.tokens]
alice = "{alice}"
bob = "{bob}"
carol = "{carol}"

[upstreams.builtin]
kind = "builtin"

[upstreams.remote]
kind = "http"
url = "{url}"
headers = {{ Authorization = "Bearer ${{secret:token}}" }}
credentials = "{path}"
"#,
        alice = digest("alice-token"),
        bob = digest("bob-token"),
        carol = digest("carol-token"),
        url = upstream.url,
        path = credentials.0.display(),
    );
    let gw = Launch::new(&config).env("MCPGW_LOG", "trace").start();
    let alice = BearerSession::open(&gw, "alice-token").await;
    let bob = BearerSession::open(&gw, "bob-token").await;
    let seen = |secret: &str| format!("authorization={}", rev(&format!("Bearer {secret}")));
    let (hers, his) = (alice.credential_seen().await, bob.credential_seen().await);
    assert!(hers.ends_with(&seen(ALICE_SECRET)), "{hers}");
    assert!(his.ends_with(&seen(BOB_SECRET)), "{his}");
    let carol = BearerSession::open(&gw, "carol-token").await;
    assert!(!carol.tools().await.contains(&"credential_seen".to_owned()));
    for secret in [ALICE_SECRET, BOB_SECRET] {
        assert!(!gw.logged(secret), "{secret} in the log");
    }
}

#[test]
fn a_credentials_file_other_users_can_read_is_refused_at_load() {
    let credentials = CredentialsFile::new("open", 0o644);
    let config = std::env::temp_dir().join(format!("mcpgw-credentials-config-{}.toml", std::process::id()));
    std::fs::write(&config, self::config(&credentials)).expect("write the config");
    let (code, output) = mcpgw_tests::run(&["check-config", &config.display().to_string()]);
    let _ = std::fs::remove_file(&config);
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("upstreams.gh.credentials") && output.contains("accessible to other users"), "{output}");
    assert!(!output.contains(ALICE_SECRET), "{output}");
}
