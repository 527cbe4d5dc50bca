//! End-to-end test harness: starts the real `mcpgw` binary on a free loopback port and
//! talks raw HTTP to it, so every status code and header is visible.
//!
//! # Layout
//! - [`Gateway`]: the running binary (config, port, its log lines), stopped on drop.
//! - [`Http`]: a small HTTP/1.1 client with full control over headers.
//! - [`SseReader`]: reads an event stream response event by event.
//! - [`bearer`]: a Streamable HTTP session opened with a bearer token.
//! - [`cluster`]: Redis, several instances and HAProxy in front of them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcpgw_transport::sse::{Decoded, Decoder};
use serde_json::Value;

pub mod bearer;
pub mod cluster;
pub mod cluster_client;
pub mod nginx;

/// How long any single wait in these tests may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(20);

/// The mcpgw binary: `MCPGW_BIN`, else `target/debug/mcpgw` of this workspace.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("MCPGW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/mcpgw"));
    assert!(
        path.exists(),
        "the mcpgw binary is missing at {}: run `cargo build -p mcpgw` (make test does)",
        path.display()
    );
    path
}

/// A running gateway, killed on drop.
pub struct Gateway {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Every line the process wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Signalled after each new log line.
    logged: Arc<std::sync::Condvar>,
    _config: Option<tempfile_path::TempPath>,
}

mod tempfile_path {
    //! A file removed on drop, without a dependency for it.
    use std::path::{Path, PathBuf};

    pub(crate) struct TempPath(pub(crate) PathBuf);

    impl TempPath {
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// How to start a gateway: its config, arguments, environment, and the program that
/// launches it (a shell that hands it an inherited socket, for socket activation).
pub struct Launch {
    config: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Stdio>,
    wrapper: Option<Vec<String>>,
    listen: bool,
}

impl Launch {
    /// A launch with this TOML config.
    pub fn new(config: &str) -> Self {
        Self { config: config.to_owned(), args: Vec::new(), env: Vec::new(), stdin: None, wrapper: None, listen: true }
    }

    /// Extra arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Listens on `addr` (`127.0.0.1:PORT`) instead of a free port.
    pub fn listen_at(mut self, addr: &str) -> Self {
        self.listen = false;
        self.args.extend(["--listen".to_owned(), addr.to_owned()]);
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts it through `sh -c SCRIPT`, the gateway's command line being `"$0" "$@"`, with
    /// `stdin` as the shell's standard input; no `--listen` is added.
    pub fn through_shell(mut self, script: &str, stdin: Stdio) -> Self {
        self.wrapper = Some(vec!["sh".into(), "-c".into(), script.to_owned()]);
        self.stdin = Some(stdin);
        self.listen = false;
        self
    }

    /// Starts the gateway and waits for its listening line.
    pub fn start(self) -> Gateway {
        let temp = write_temp_config(&self.config);
        let mut gateway_args: Vec<String> = vec!["--config".into(), temp.path().display().to_string()];
        if self.listen {
            gateway_args.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        gateway_args.extend(self.args);
        let mut command = match self.wrapper {
            Some(wrapper) => {
                let mut c = Command::new(&wrapper[0]);
                c.args(&wrapper[1..]).arg(binary()).args(&gateway_args);
                c
            }
            None => {
                let mut c = Command::new(binary());
                c.args(&gateway_args);
                c
            }
        };
        command
            .envs(self.env)
            .stdin(self.stdin.unwrap_or_else(Stdio::null))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Gateway::spawn(command, temp)
    }
}

impl Gateway {
    /// Starts the gateway on the embedded default config.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts the gateway with this TOML config (an empty string means all defaults).
    pub fn start_with(config: &str) -> Self {
        Launch::new(config).start()
    }

    fn spawn(mut command: Command, temp: tempfile_path::TempPath) -> Self {
        let mut child = command.spawn().expect("start mcpgw");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let logged = Arc::new(std::sync::Condvar::new());
        let (tx, rx) = std_mpsc::channel();
        let lines = log.clone();
        let signal = logged.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let url = line.find("listening on http://").map(|at| {
                    let rest = &line[at + "listening on ".len()..];
                    rest.chars().take_while(|c| !c.is_whitespace()).collect::<String>()
                });
                lines.lock().expect("log lock").push(line);
                signal.notify_all();
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
            }
        });
        let base = match rx.recv_timeout(WAIT) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("mcpgw did not report its address; log: {:?}", log.lock().expect("log lock"));
            }
        };
        Self { child: Some(child), base, log, logged, _config: Some(temp) }
    }

    /// Starts the gateway with this config and extra arguments.
    pub fn start_args(config: &str, args: &[&str]) -> Self {
        Launch::new(config).args(args).start()
    }

    /// The configuration file it was started with (rewrite it, then [`Self::signal`]
    /// `HUP`, to reload).
    pub fn config_path(&self) -> &std::path::Path {
        self._config.as_ref().expect("a config file").path()
    }

    /// Sends a signal (`TERM`, `HUP`, …) to the gateway.
    pub fn signal(&self, name: &str) {
        let pid = self.pid();
        let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits (at most [`WAIT`]) for a log line containing `text`.
    pub fn wait_for_log(&self, text: &str) {
        wait_for_line(&self.log, &self.logged, text);
    }

    /// [`Self::wait_for_log`] for async tests: the wait runs on a blocking thread, so the
    /// futures joined with this one go on meanwhile. (`block_in_place` stops them all until
    /// it returns: a request joined with it may never be sent.)
    pub async fn until_logged(&self, text: &str) {
        let (log, logged, text) = (self.log.clone(), self.logged.clone(), text.to_owned());
        if let Err(e) = tokio::task::spawn_blocking(move || wait_for_line(&log, &logged, &text)).await {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    /// Every line it has logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Whether a log line containing `text` has been written.
    pub fn logged(&self, text: &str) -> bool {
        self.log.lock().expect("log lock").iter().any(|l| l.contains(text))
    }

    /// A handle on a gateway another handle started (it does not stop it): for tasks that
    /// need `url()` and `base`.
    pub fn attach(base: &str) -> Self {
        Self { child: None, base: base.to_owned(), log: Arc::default(), logged: Arc::default(), _config: None }
    }

    /// `host:port` of the listener.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits for the process to exit (after a signal sent with [`Self::signal`]).
    pub fn terminate_wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_with_deadline(&mut child, WAIT)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        wait_with_deadline(&mut child, WAIT)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (at most [`WAIT`]) until `log` has a line containing `text`; `logged` is signalled
/// after each new line.
fn wait_for_line(log: &Mutex<Vec<String>>, logged: &std::sync::Condvar, text: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut lines = log.lock().expect("log lock");
    while !lines.iter().any(|l| l.contains(text)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no log line with {text:?} in {WAIT:?}; log: {lines:?}");
        lines = logged.wait_timeout(lines, left).expect("log lock").0;
    }
}

/// Runs mcpgw with `args` to its end (bounded by [`WAIT`]): its exit code and all it printed,
/// standard output then standard error.
pub fn run(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mcpgw");
    let status = wait_with_deadline(&mut child, WAIT);
    let mut out = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .flatten()
    {
        let mut pipe = pipe;
        std::io::Read::read_to_string(&mut pipe, &mut out).expect("read output");
    }
    (status.code().expect("an exit code"), out)
}

/// Waits for a child to exit, killing it (and failing) past the deadline.
pub fn wait_with_deadline(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = std_mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(deadline) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("the process did not exit within {deadline:?}");
            }
        }
    })
}

fn write_temp_config(config: &str) -> tempfile_path::TempPath {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("mcpgw-test-{}-{n}.toml", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("create config");
    file.write_all(config.as_bytes()).expect("write config");
    tempfile_path::TempPath(path)
}

/// A response with its body read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC error code of an error body.
    pub fn error_code(&self) -> i64 {
        self.json()["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error code in {}", self.text()))
    }

    /// The JSON-RPC messages carried, whether the body is JSON or SSE.
    pub fn messages(&self) -> Vec<Value> {
        if self.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) {
            let mut d = Decoder::new();
            d.feed(&self.body);
            std::iter::from_fn(|| d.next_event())
                .filter(|e| !e.data.is_empty())
                .map(|e| serde_json::from_str(&e.data).expect("JSON event"))
                .collect()
        } else {
            match self.json() {
                Value::Array(items) => items,
                one => vec![one],
            }
        }
    }
}

/// An HTTP/1.1 client that sends exactly the headers it is given.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// The headers a Streamable HTTP client sends on a POST.
pub const POST_HEADERS: [(&str, &str); 2] =
    [("content-type", "application/json"), ("accept", "application/json, text/event-stream")];

impl Http {
    /// A new client.
    pub fn new() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Sends a request and returns the response head with its body still streaming.
    pub async fn open(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> hyper::Response<Incoming> {
        self.try_open(method, url, headers, body).await.expect("response")
    }

    /// The same, with the error when the connection closes without a response head (still
    /// failing past [`WAIT`]).
    pub async fn try_open(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(body.into())).expect("request");
        tokio::time::timeout(WAIT, self.client.request(request)).await.expect("response in time")
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let response = self.open(method, url, headers, body).await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect()).await.expect("body in time").expect("body").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    /// POSTs JSON with the standard Streamable headers plus `extra`.
    pub async fn post(&self, url: &str, extra: &[(&str, &str)], body: &Value) -> Reply {
        let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
        headers.extend_from_slice(extra);
        self.send(Method::POST, url, &headers, body.to_string()).await
    }
}

/// An `initialize` request at `version`.
pub fn initialize(version: &str) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "mcpgw-tests", "version": "1" } }
    })
}

/// A request.
pub fn request(id: i64, method: &str, params: Value) -> Value {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// A notification.
pub fn notification(method: &str) -> Value {
    serde_json::json!({ "jsonrpc": "2.0", "method": method })
}

/// A Streamable HTTP session opened with raw requests.
pub struct StreamableSession {
    /// The client.
    pub http: Http,
    /// The endpoint URL.
    pub url: String,
    /// The session id.
    pub id: String,
    /// The negotiated protocol version.
    pub version: String,
}

impl StreamableSession {
    /// Initializes a session at `version` on `url` and sends `initialized`.
    pub async fn open(url: &str, version: &str) -> Self {
        Self::open_with(url, version, serde_json::json!({})).await
    }

    /// The same, declaring these client capabilities (`{"sampling": {}}`, say).
    pub async fn open_with(url: &str, version: &str, capabilities: Value) -> Self {
        let http = Http::new();
        let mut init = initialize(version);
        init["params"]["capabilities"] = capabilities;
        let reply = http.post(url, &[], &init).await;
        assert_eq!(reply.status, StatusCode::OK, "initialize: {}", reply.text());
        let id = reply.header("mcp-session-id").expect("Mcp-Session-Id on initialize").to_owned();
        let negotiated = reply.messages()[0]["result"]["protocolVersion"].as_str().expect("version").to_owned();
        let session = Self { http, url: url.to_owned(), id, version: negotiated };
        let ack = session.post(&notification("notifications/initialized")).await;
        assert_eq!(ack.status, StatusCode::ACCEPTED);
        session
    }

    /// The session and protocol version headers.
    pub fn headers(&self) -> [(&str, &str); 2] {
        [("mcp-session-id", self.id.as_str()), ("mcp-protocol-version", self.version.as_str())]
    }

    /// POSTs a message in this session.
    pub async fn post(&self, body: &Value) -> Reply {
        self.http.post(&self.url, &self.headers(), body).await
    }

    /// Sends a request and returns its one response message.
    pub async fn call(&self, id: i64, method: &str, params: Value) -> Value {
        let reply = self.post(&request(id, method, params)).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        reply.messages().into_iter().find(|m| m["id"] == id).expect("the response")
    }
}

/// Reads an SSE response event by event.
pub struct SseReader {
    body: Incoming,
    decoder: Decoder,
    /// The response status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The id of the last event read that had one (what a client sends as `Last-Event-ID`).
    pub last_id: Option<String>,
}

impl SseReader {
    /// Wraps a streaming response.
    pub fn new(response: hyper::Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self { body, decoder: Decoder::new(), status: parts.status, headers: parts.headers, last_id: None }
    }

    /// The next event, or `None` when the stream ends. Fails past [`WAIT`].
    pub async fn next(&mut self) -> Option<Decoded> {
        let event = tokio::time::timeout(WAIT, self.next_unbounded()).await.expect("an SSE event in time");
        if let Some(id) = event.as_ref().and_then(|e| e.id.clone()) {
            self.last_id = Some(id);
        }
        event
    }

    /// The next raw chunk of bytes (comments included), or `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.body.frame()).await.expect("bytes in time")?;
            if let Ok(data) = frame.expect("body").into_data() {
                self.decoder.feed(&data);
                return Some(data);
            }
        }
    }

    async fn next_unbounded(&mut self) -> Option<Decoded> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Some(event);
            }
            let frame = self.body.frame().await?;
            if let Ok(data) = frame.expect("body").into_data() {
                self.decoder.feed(&data);
            }
        }
    }

    /// The next `message` event's JSON.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let event = self.next().await.expect("the stream ended early");
            if event.event == "message" && !event.data.is_empty() {
                return serde_json::from_str(&event.data).expect("JSON message");
            }
        }
    }
}

/// A legacy HTTP+SSE session opened with raw requests.
pub struct LegacySession {
    /// The client.
    pub http: Http,
    /// The event stream.
    pub stream: SseReader,
    /// The POST URL from the `endpoint` event.
    pub endpoint: String,
}

impl LegacySession {
    /// Opens `GET <url>` and reads the `endpoint` event.
    pub async fn connect(gateway: &Gateway, path: &str) -> Self {
        let http = Http::new();
        let response =
            http.open(Method::GET, &gateway.url(path), &[("accept", "text/event-stream")], Bytes::new()).await;
        let mut stream = SseReader::new(response);
        assert_eq!(stream.status, StatusCode::OK);
        let first = stream.next().await.expect("the endpoint event");
        assert_eq!(first.event, "endpoint");
        Self { http, stream, endpoint: gateway.url(&first.data) }
    }

    /// POSTs a message to the endpoint.
    pub async fn post(&self, body: &Value) -> Reply {
        self.http.send(Method::POST, &self.endpoint, &[("content-type", "application/json")], body.to_string()).await
    }

    /// Initializes the session at `version`.
    pub async fn initialize(&mut self, version: &str) -> Value {
        assert_eq!(self.post(&initialize(version)).await.status, StatusCode::ACCEPTED);
        let reply = self.stream.next_message().await;
        assert_eq!(self.post(&notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
        reply
    }

    /// Sends a request and waits for its response on the stream.
    pub async fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        assert_eq!(self.post(&request(id, method, params)).await.status, StatusCode::ACCEPTED);
        loop {
            let m = self.stream.next_message().await;
            if m["id"] == id {
                return m;
            }
        }
    }
}

/// Polls `check` until it holds, failing past [`WAIT`]. For outcomes the gateway reaches
/// asynchronously (a session ending after its client left).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    // No event announces these outcomes to an outside observer, so look again on a short
    // period until they hold or the deadline passes.
    let mut period = tokio::time::interval(Duration::from_millis(10));
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        period.tick().await;
    }
}

/// The live session counts from `/healthz`: (legacy, streamable).
pub async fn session_counts(http: &Http, gateway: &Gateway) -> (u64, u64) {
    let health = http.send(Method::GET, &gateway.url("/healthz"), &[], Bytes::new()).await.json();
    (
        health["sessions"]["legacy"].as_u64().expect("legacy count"),
        health["sessions"]["streamable"].as_u64().expect("streamable count"),
    )
}

/// The resident memory of a process, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
