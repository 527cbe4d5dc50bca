//! A cluster on loopback for the end-to-end tests: its own `redis-server` on a unix socket
//! in a temporary directory, mcpgw instances with `[cluster]` pointing at it, and HAProxy in
//! front of them running `config/examples/haproxy.cfg` with this cluster's addresses.
//!
//! Every start waits on an event, never on time: Redis's "Ready to accept connections"
//! line, each instance's `ready` line, and HAProxy's listening socket, which the harness
//! binds itself (port 0) and hands over as an inherited descriptor (`bind fd@3`), so it
//! accepts (queues) connections before HAProxy has even started.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use crate::{Gateway, Launch, WAIT};

/// What an instance logs once it serves (after its shared upstreams started).
const READY_LINE: &str = "mcpgw: ready";

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system's temporary directory.
    pub fn new(label: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mcpgw-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A peer process (Redis, HAProxy) whose output lines are kept; killed on drop.
pub struct Peer {
    name: &'static str,
    child: Option<Child>,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Peer {
    pub(crate) fn spawn(name: &'static str, mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (run `make deps-cluster`)"));
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
        let stderr = child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
        for pipe in [stdout, stderr].into_iter().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    log.0.lock().expect("log lock").push(line);
                    log.1.notify_all();
                }
            });
        }
        Self { name, child: Some(child), log }
    }

    /// Waits (at most [`WAIT`]) for an output line containing `text`.
    pub fn wait_for_log(&self, text: &str) {
        self.wait_for_log_any(&[text]);
    }

    /// Waits (at most [`WAIT`]) for an output line containing one of `texts`.
    pub fn wait_for_log_any(&self, texts: &[&str]) {
        let deadline = std::time::Instant::now() + WAIT;
        let mut lines = self.log.0.lock().expect("log lock");
        while !lines.iter().any(|l| texts.iter().any(|t| l.contains(t))) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "{}: no line with {texts:?} in {WAIT:?}; output: {lines:?}", self.name);
            lines = self.log.1.wait_timeout(lines, left).expect("log lock").0;
        }
    }

    /// Waits (at most [`WAIT`]) until `count` output lines contain `text`.
    pub fn wait_for_count(&self, text: &str, count: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        let mut lines = self.log.0.lock().expect("log lock");
        while lines.iter().filter(|l| l.contains(text)).count() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "{}: not {count} lines with {text:?} in {WAIT:?}; output: {lines:?}", self.name);
            lines = self.log.1.wait_timeout(lines, left).expect("log lock").0;
        }
    }

    /// Every line it wrote so far.
    pub fn output(&self) -> Vec<String> {
        self.log.0.lock().expect("log lock").clone()
    }
}

impl Drop for Peer {
    /// SIGTERM first, SIGKILL after [`STOP_GRACE`]: killed outright, nginx's master leaves
    /// its worker running (an orphan that outlives the test run); Redis and HAProxy stop
    /// cleanly on SIGTERM too.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _ = tx.send(child.wait());
            });
            if rx.recv_timeout(STOP_GRACE).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
    }
}

/// How long a peer has to stop on SIGTERM.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A `redis-server` of its own, on a unix socket, keeping nothing on disk (or, durable,
/// an append-only file as docs/deployment.md recommends).
pub struct Redis {
    /// `unix:///…/redis.sock`, for `[cluster] store`.
    pub url: String,
    socket: PathBuf,
    peer: Option<Peer>,
    durable: bool,
    _dir: TempDir,
}

impl Redis {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts one that keeps an append-only file (`appendonly yes`, `appendfsync
    /// everysec`): what it acknowledged survives its restart.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let dir = TempDir::new("redis");
        let socket = dir.path().join("redis.sock");
        let peer = Self::spawn(&dir, &socket, durable);
        Self { url: format!("unix://{}", socket.display()), socket, peer: Some(peer), durable, _dir: dir }
    }

    fn spawn(dir: &TempDir, socket: &Path, durable: bool) -> Peer {
        let mut command = Command::new("redis-server");
        let persistence: &[&str] =
            if durable { &["--appendonly", "yes", "--appendfsync", "everysec"] } else { &["--appendonly", "no"] };
        command
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null());
        let peer = Peer::spawn("redis-server", command);
        // Redis 7.0 says "The server is now ready to accept connections at <socket>", 7.2 and
        // Valkey "Ready to accept connections unix".
        peer.wait_for_log_any(&["ready to accept connections at", "Ready to accept connections unix"]);
        peer
    }

    /// Kills it (SIGKILL): the store is gone, with everything it held.
    pub fn stop(&mut self) {
        drop(self.peer.take());
    }

    /// Starts it again on the same socket, after [`Redis::stop`]: empty, or, durable, with
    /// what its append-only file holds.
    pub fn restart(&mut self) {
        assert!(self.peer.is_none(), "redis-server is running");
        let _ = std::fs::remove_file(&self.socket);
        self.peer = Some(Self::spawn(&self._dir, &self.socket, self.durable));
    }

    /// `redis-cli MONITOR` on it: every command it runs from now on, one output line each
    /// (a script's own commands marked `[0 lua]`). Read what came before a point with
    /// [`Redis::commands_until`].
    pub fn monitor(&self) -> Peer {
        let mut command = Command::new("redis-cli");
        command.arg("-s").arg(&self.socket).arg("MONITOR").stdin(Stdio::null());
        let monitor = Peer::spawn("redis-cli MONITOR", command);
        monitor.wait_for_log("OK");
        monitor
    }

    /// The commands `monitor` saw, in order, up to now: the store is sent a marker (a new one
    /// each call), which comes after every command it ran before it.
    pub fn commands_until(&self, monitor: &Peer) -> Vec<String> {
        static MARKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("\"mark-{}-{n}\"", std::process::id());
        self.cli(&["ECHO", marker.trim_matches('"')]);
        monitor.wait_for_log(&marker);
        let lines = monitor.output();
        let end = lines.iter().position(|l| l.contains(&marker)).unwrap_or(lines.len());
        lines[..end].to_vec()
    }

    /// What `redis-cli` prints for this command.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// One instance of the cluster: its node tag and the running gateway.
pub struct Node {
    /// Its `[cluster] node` tag, also its HAProxy server name.
    pub tag: String,
    /// The running instance (`None` once killed).
    pub gateway: Option<Gateway>,
    /// What its runs stopped with SIGTERM logged.
    pub stopped_logs: Vec<String>,
    /// Its configuration, and the address HAProxy knows it by (for a restart).
    config: String,
    authority: String,
}

impl Node {
    /// Every line it logged: its runs stopped with SIGTERM, then the running one.
    pub fn log_lines(&self) -> Vec<String> {
        let running = self.gateway.as_ref().map(Gateway::log_lines).unwrap_or_default();
        self.stopped_logs.iter().cloned().chain(running).collect()
    }
}

/// The load balancer in front of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balancer {
    /// HAProxy on `config/examples/haproxy.cfg`.
    HAProxy,
    /// nginx on `config/examples/nginx-cluster.conf` (three instances).
    Nginx,
}

/// Redis, mcpgw instances with tags `0001`, `0002`, … and HAProxy (or nginx) in front of them.
pub struct Cluster {
    /// The instances, in tag order.
    pub nodes: Vec<Node>,
    /// The load balancer's address: `http://127.0.0.1:PORT`, the clients' one URL.
    pub base: String,
    haproxy: Peer,
    _haproxy_dir: TempDir,
    /// The store; last to go.
    pub redis: Redis,
}

impl Cluster {
    /// Starts a store, `nodes` instances, each with `config` (TOML, without `[cluster]`)
    /// plus its `[cluster]`, all ready, then HAProxy over them.
    pub fn start(nodes: usize, config: &str) -> Self {
        Self::start_on(Redis::start(), nodes, config)
    }

    /// The same, sharing `redis`.
    pub fn start_on(redis: Redis, nodes: usize, config: &str) -> Self {
        Self::start_with(redis, Balancer::HAProxy, nodes, config)
    }

    /// [`Cluster::start`] with this load balancer in front.
    pub fn start_behind(balancer: Balancer, nodes: usize, config: &str) -> Self {
        Self::start_with(Redis::start(), balancer, nodes, config)
    }

    /// [`Cluster::start`] with `store = "none"`: the instances tag their session ids for
    /// HAProxy and share nothing (the store is started, and no instance knows it).
    pub fn start_without_store(nodes: usize, config: &str) -> Self {
        Self::start_with_store(Redis::start(), Balancer::HAProxy, nodes, config, "none")
    }

    fn start_with(redis: Redis, balancer: Balancer, nodes: usize, config: &str) -> Self {
        let url = redis.url.clone();
        Self::start_with_store(redis, balancer, nodes, config, &url)
    }

    fn start_with_store(redis: Redis, balancer: Balancer, nodes: usize, config: &str, store: &str) -> Self {
        let nodes: Vec<Node> = (1..=nodes)
            .map(|n| {
                let tag = format!("{n:04x}");
                let config = format!("{config}\n[cluster]\nnode = \"{tag}\"\nstore = \"{store}\"\n");
                let gateway = Launch::new(&config).start();
                gateway.wait_for_log(READY_LINE);
                let authority = gateway.authority().to_owned();
                Node { tag, gateway: Some(gateway), stopped_logs: Vec::new(), config, authority }
            })
            .collect();
        if balancer == Balancer::Nginx {
            let servers: Vec<(&str, &str)> = nodes.iter().map(|n| (n.tag.as_str(), n.authority.as_str())).collect();
            let (haproxy, base, dir) = crate::nginx::start(&servers);
            return Self { nodes, base, haproxy, _haproxy_dir: dir, redis };
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind HAProxy's port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let dir = TempDir::new("haproxy");
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, haproxy_config(&nodes)).expect("write haproxy.cfg");
        let mut command = Command::new("sh");
        // The listening socket arrives as standard input and becomes descriptor 3.
        command
            .args(["-c", "exec haproxy -db -f \"$1\" 3<&0 0</dev/null", "sh"])
            .arg(&config_path)
            .stdin(Stdio::from(OwnedFd::from(listener)));
        let haproxy = Peer::spawn("haproxy", command);
        Self { nodes, base, haproxy, _haproxy_dir: dir, redis }
    }

    /// The instance with this tag.
    pub fn node(&self, tag: &str) -> &Gateway {
        let node = self.nodes.iter().find(|n| n.tag == tag).unwrap_or_else(|| panic!("no node {tag}"));
        node.gateway.as_ref().unwrap_or_else(|| panic!("node {tag} is not running"))
    }

    /// Kills the instance with this tag at once (SIGKILL: no drain, nothing released).
    pub fn kill(&mut self, tag: &str) {
        let node = self.nodes.iter_mut().find(|n| n.tag == tag).unwrap_or_else(|| panic!("no node {tag}"));
        // Dropping a gateway kills it and waits for it.
        drop(node.gateway.take().unwrap_or_else(|| panic!("node {tag} is not running")));
    }

    /// Stops the instance with this tag with SIGTERM (the drain), and waits for its exit.
    pub fn terminate(&mut self, tag: &str) -> std::process::ExitStatus {
        let node = self.nodes.iter_mut().find(|n| n.tag == tag).unwrap_or_else(|| panic!("no node {tag}"));
        let mut gateway = node.gateway.take().unwrap_or_else(|| panic!("node {tag} is not running"));
        let status = gateway.terminate();
        node.stopped_logs.extend(gateway.log_lines());
        status
    }

    /// Sends the instance with this tag SIGTERM and returns at once: the handle gives its exit
    /// status once it has stopped.
    pub fn terminate_in_background(&mut self, tag: &str) -> std::thread::JoinHandle<std::process::ExitStatus> {
        let node = self.nodes.iter_mut().find(|n| n.tag == tag).unwrap_or_else(|| panic!("no node {tag}"));
        let mut gateway = node.gateway.take().unwrap_or_else(|| panic!("node {tag} is not running"));
        std::thread::spawn(move || gateway.terminate())
    }

    /// Starts the instance with this tag again, on its address, and waits until it is ready.
    pub fn restart(&mut self, tag: &str) {
        let node = self.nodes.iter_mut().find(|n| n.tag == tag).unwrap_or_else(|| panic!("no node {tag}"));
        assert!(node.gateway.is_none(), "node {tag} is running");
        let gateway = Launch::new(&node.config).listen_at(&node.authority).start();
        gateway.wait_for_log(READY_LINE);
        node.gateway = Some(gateway);
    }

    /// Restarts every instance in turn, the way an operator rolls out a new version: SIGTERM
    /// (the drain), HAProxy sees it DOWN, start it again, HAProxy sees it UP, then the next.
    pub fn roll(&mut self) {
        let tags: Vec<String> = self.nodes.iter().map(|n| n.tag.clone()).collect();
        for tag in &tags {
            let status = self.terminate(tag);
            assert!(status.success(), "node {tag} drained and exited: {status}");
            self.wait_for_haproxy_count(&format!("mcpgw/{tag} is DOWN"), 1);
            self.restart(tag);
            self.wait_for_haproxy_count(&format!("mcpgw/{tag} is UP"), 1);
        }
    }

    /// The instances still running.
    pub fn running(&self) -> impl Iterator<Item = (&str, &Gateway)> {
        self.nodes.iter().filter_map(|n| n.gateway.as_ref().map(|g| (n.tag.as_str(), g)))
    }

    /// HAProxy's output so far.
    pub fn haproxy_output(&self) -> Vec<String> {
        self.haproxy.output()
    }

    /// Waits for HAProxy to log a line containing `text` (a server going DOWN or UP).
    pub fn wait_for_haproxy(&self, text: &str) {
        self.haproxy.wait_for_log(text);
    }

    /// Waits for HAProxy to have logged `count` lines containing `text`.
    pub fn wait_for_haproxy_count(&self, text: &str, count: usize) {
        self.haproxy.wait_for_count(text, count);
    }
}

/// `config/examples/haproxy.cfg` with this cluster's addresses: the frontend binds the
/// inherited socket, and there is one `server` line per instance. One line is added: each
/// response names the instance that answered it (`X-Mcpgw-Node`), for a client script that
/// must know where its event stream is (`tests/python/clients/cluster_rolling.py`).
fn haproxy_config(nodes: &[Node]) -> String {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/haproxy.cfg"))
            .expect("config/examples/haproxy.cfg");
    let mut out = String::new();
    let mut servers_written = false;
    for line in template.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("bind ") {
            out.push_str("    bind fd@3\n");
        } else if trimmed.starts_with("server ") {
            if !servers_written {
                out.push_str("    http-response set-header x-mcpgw-node %[srv_name]\n");
                for node in nodes {
                    out.push_str(&format!("    server {} {}\n", node.tag, node.authority));
                }
                servers_written = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(servers_written, "haproxy.cfg has server lines");
    out
}

/// What one SDK client session reported (a JSON line of `tests/python/clients/cluster_calls.py`
/// or `tests/ts/clients/cluster-calls.mjs`).
#[derive(Debug, serde::Deserialize)]
pub struct ClientSession {
    /// `python` or `ts`.
    pub client: String,
    /// `streamable` or `sse`.
    pub transport: String,
    /// The session id the gateway gave it.
    pub session: String,
    /// The HTTP status of every response it got for the session.
    pub statuses: Vec<u16>,
    /// What its echo calls returned, in order.
    pub echoes: Vec<String>,
}

/// Runs the Python SDK's sessions against `base` (see the script) and returns their reports.
pub async fn python_sessions(base: &str, sessions: usize, calls: usize) -> Vec<ClientSession> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps-python`", python.display());
    let mut command = tokio::process::Command::new(python);
    command.arg(root.join("tests/python/clients/cluster_calls.py"));
    client_sessions(command, base, sessions, calls).await
}

/// Runs the TypeScript SDK 1.x's sessions against `base` (see the script) and returns
/// their reports.
pub async fn ts_sessions(base: &str, sessions: usize, calls: usize) -> Vec<ClientSession> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ts");
    assert!(dir.join("node_modules").exists(), "tests/ts/node_modules is missing: run `make deps-ts`");
    let mut command = tokio::process::Command::new("node");
    command.arg(dir.join("clients/cluster-calls.mjs"));
    client_sessions(command, base, sessions, calls).await
}

/// An SDK client script run step by step: it prints a JSON line when it reaches a step,
/// and waits for a line on its input to go on.
pub struct ClientSteps {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ClientSteps {
    /// Starts `tests/python/clients/<script>` with `args`.
    pub fn python(script: &str, args: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run `make deps-python`", python.display());
        let mut command = tokio::process::Command::new(python);
        command.arg(root.join("tests/python/clients").join(script));
        Self::start(command, args)
    }

    /// Starts `tests/ts/clients/<script>` with `args`.
    pub fn ts(script: &str, args: &[&str]) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ts");
        assert!(dir.join("node_modules").exists(), "tests/ts/node_modules is missing: run `make deps-ts`");
        let mut command = tokio::process::Command::new("node");
        command.arg(dir.join("clients").join(script));
        Self::start(command, args)
    }

    fn start(mut command: tokio::process::Command, args: &[&str]) -> Self {
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the client starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Self { child, lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)) }
    }

    /// The next JSON line it prints (at most [`WAIT`] away).
    pub async fn next(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the client reported in time")
            .expect("the client's output")
            .expect("the client reported (it ended instead; its errors are above)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Lets it go on to its next step.
    pub async fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        tokio::io::AsyncWriteExt::write_all(stdin, b"go\n").await.expect("the client reads");
        tokio::io::AsyncWriteExt::flush(stdin).await.expect("the client reads");
    }
}

async fn client_sessions(
    mut command: tokio::process::Command,
    base: &str,
    sessions: usize,
    calls: usize,
) -> Vec<ClientSession> {
    command.args([base, &sessions.to_string(), &calls.to_string()]).stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(WAIT * 4, command.output())
        .await
        .expect("the client finished in time")
        .expect("the client ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The median time of `calls` echo calls, one after the other, on one legacy session opened
/// at `base` (a load balancer's, or an instance's own): the POST, then its reply on the
/// event stream.
pub async fn legacy_call_median(base: &str, calls: usize) -> std::time::Duration {
    let mut session = crate::LegacySession::connect(&Gateway::attach(base), "/sse").await;
    session.initialize("2024-11-05").await;
    let mut times = Vec::with_capacity(calls);
    for id in 1..=calls {
        let began = std::time::Instant::now();
        let arguments = serde_json::json!({"name": "echo", "arguments": {"text": "x"}});
        let reply = session.call(id as i64, "tools/call", arguments).await;
        assert_eq!(reply["result"]["content"][0]["text"], "x", "{reply}");
        times.push(began.elapsed());
    }
    times.sort();
    times[calls / 2]
}
