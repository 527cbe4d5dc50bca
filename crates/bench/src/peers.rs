//! The competing gateways ("peers") that the overhead runs put in front of the same stdio
//! fixture as mcpgw, each measured with the same closed loop as mcpgw's stdio rows:
//!
//! - supergateway (npm), `--outputTransport streamableHttp --stateful`: a child per session,
//!   event-stream replies;
//! - mcp-proxy (PyPI, sparfenyuk/mcp-proxy), its default stateful Streamable HTTP: one child
//!   shared by every session, JSON replies.
//!
//! They are measured when present: `make deps-bench` installs them and `make bench` passes their
//! paths. A peer that is missing, does not start or does not answer becomes a row saying why it
//! was not measured, and the run goes on.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::{ACCEPT_BOTH, Profile, Target, Transport};
use crate::load::{self, LoadResult};
use crate::procs;

/// How long a peer may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two connection attempts while waiting for it to accept.
const CONNECT_RETRY: Duration = Duration::from_millis(50);
/// How long a peer may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long per-session children may take to exit once their sessions were closed.
const CHILDREN_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a peer's descendants are sampled during a run.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// How much longer than warm-up + duration a run may take (opening and closing its sessions,
/// the children's exit).
const WATCH_SLACK: Duration = Duration::from_secs(120);
/// The most descendants followed.
const MAX_DESCENDANTS: usize = 10_000;
/// How long `--version` and the like may take (node and Python start slowly on a busy box).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The fixture's tool, as in mcpgw's stdio rows.
const TOOL: &str = "test_simple_text";
/// Longest reason quoted in a table cell.
const MAX_REASON: usize = 300;
/// Makes supergateway listen on 127.0.0.1 (crates/bench/peers/loopback.cjs says why).
const LOOPBACK_PRELOAD: &str = include_str!("../peers/loopback.cjs");

/// Where the peers are. `make bench` passes the paths `make deps-bench` installs to.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct PeerOptions {
    /// supergateway's executable (crates/bench/peers/node_modules/.bin/supergateway); without
    /// it, or when it is missing, its rows say it was not measured.
    #[arg(long)]
    supergateway: Option<PathBuf>,
    /// mcp-proxy's executable (crates/bench/peers/.venv/bin/mcp-proxy); likewise.
    #[arg(long)]
    mcp_proxy: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Supergateway,
    McpProxy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Supergateway => "supergateway",
            Kind::McpProxy => "mcp-proxy",
        }
    }

    /// The flag of [`PeerOptions`] that names it.
    fn flag(self) -> &'static str {
        match self {
            Kind::Supergateway => "--supergateway",
            Kind::McpProxy => "--mcp-proxy",
        }
    }

    /// For the table's path column.
    fn short_mode(self) -> &'static str {
        match self {
            Kind::Supergateway => "a child per session",
            Kind::McpProxy => "one shared child",
        }
    }

    /// Whether it starts a fixture per session: then the children's CPU is its cost too.
    fn child_per_session(self) -> bool {
        self == Kind::Supergateway
    }

    /// How the runs talk to it. supergateway answers with event streams and, like rmcp,
    /// refuses a POST whose `Accept` lacks either type; mcp-proxy answers JSON and takes the
    /// same `Accept: application/json` as mcpgw's stdio rows.
    fn profile(self) -> Result<Profile> {
        match self {
            Kind::Supergateway => Profile::new(Transport::StreamableSse, TOOL, &json!({})).with_accept(ACCEPT_BOTH),
            Kind::McpProxy => Ok(Profile::new(Transport::StreamableJson, TOOL, &json!({}))),
        }
    }

    /// The command line. Per-request logging is off in both (their defaults log every request
    /// or message; mcpgw logs per session only), so the runs measure the bridging.
    fn command(self, program: &Path, fixture: &Path, port: u16, preload: &Path) -> Command {
        let mut command = Command::new(program);
        match self {
            Kind::Supergateway => {
                // `--stdio` is one string that supergateway runs through a shell.
                command.arg("--stdio").arg(shell_quote(&fixture.to_string_lossy()));
                command.args(["--outputTransport", "streamableHttp", "--stateful", "--logLevel", "none"]);
                command.arg("--port").arg(port.to_string());
                command.env("NODE_OPTIONS", format!("--require \"{}\"", preload.display()));
            }
            Kind::McpProxy => {
                command.args(["--host", "127.0.0.1", "--log-level", "WARNING"]);
                command.arg("--port").arg(port.to_string()).arg("--").arg(fixture);
            }
        }
        command
    }
}

/// What the report says about a peer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PeerInfo {
    #[serde(skip)]
    kind: Kind,
    pub(crate) name: &'static str,
    pub(crate) version: Option<String>,
    /// Its runtime and MCP SDK.
    pub(crate) runtime: Option<String>,
    /// The command line it ran with (paths relative to the working directory).
    pub(crate) command: Option<String>,
    /// Where its stdout and stderr went.
    pub(crate) log: Option<String>,
    /// Why it was not measured at all.
    pub(crate) not_measured: Option<String>,
    /// The most child processes it had at once during each run: (sessions, children).
    pub(crate) children_at_most: Vec<(usize, usize)>,
}

impl PeerInfo {
    /// Its cell in the report's table of versions.
    pub(crate) fn version_cell(&self) -> String {
        match (&self.version, &self.not_measured) {
            (_, Some(why)) => format!("not measured: {why}"),
            (Some(v), None) => format!("{v} ({})", self.runtime.as_deref().unwrap_or("runtime unknown")),
            (None, None) => "version unknown".to_owned(),
        }
    }
}

/// What a run through a peer adds to its row of the overhead table.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PeerDetail {
    pub(crate) peer: &'static str,
    /// Why this run did not happen.
    pub(crate) not_measured: Option<String>,
    /// The peer process's own CPU over the measured window.
    pub(crate) own_cpu_us_per_req: Option<f64>,
    /// Its per-session children (and theirs), over the whole run (their start, warm-up and
    /// close included), per call of the run.
    pub(crate) children_cpu_us_per_call: Option<f64>,
    /// Per-session children still running [`CHILDREN_EXIT_TIMEOUT`] after the run.
    pub(crate) children_left: usize,
}

impl PeerDetail {
    /// The table's CPU cell: the total, split when children count.
    pub(crate) fn cpu_cell(&self, total: Option<f64>) -> String {
        match (total, self.own_cpu_us_per_req, self.children_cpu_us_per_call) {
            (Some(total), Some(own), Some(children)) => {
                format!("{total:.1} ({own:.1} + children {children:.1})")
            }
            (Some(total), _, _) => format!("{total:.1}"),
            _ => "–".to_owned(),
        }
    }
}

/// One run through a peer: a row of the overhead table.
pub(crate) struct Measured {
    pub(crate) path: String,
    pub(crate) result: LoadResult,
    pub(crate) detail: PeerDetail,
}

impl Measured {
    /// A progress line.
    pub(crate) fn summary(&self) -> String {
        let (x, d) = (&self.result, &self.detail);
        if let Some(why) = &d.not_measured {
            return format!("{}: not measured: {why}", self.path);
        }
        format!(
            "{}, {} sessions: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, CPU µs/req {}; {} errors",
            self.path,
            x.sessions,
            x.rps,
            x.latency.p50_ms,
            x.latency.p99_ms,
            d.cpu_cell(x.server_us_per_req),
            x.errors
        )
    }

    /// What the report's observations should say, if anything went wrong.
    pub(crate) fn problem(&self) -> Option<String> {
        let (x, d) = (&self.result, &self.detail);
        let mut problems = Vec::new();
        if let Some(why) = &d.not_measured {
            problems.push(format!("not measured: {why}"));
        }
        if x.errors > 0 {
            problems.push(format!("{} errors; first: {}", x.errors, x.first_error.as_deref().unwrap_or("")));
        }
        if d.children_left > 0 {
            problems.push(format!(
                "{} per-session children still ran {CHILDREN_EXIT_TIMEOUT:?} after the run (their CPU counted until then)",
                d.children_left
            ));
        }
        (!problems.is_empty()).then(|| format!("{}, {} sessions: {}", self.path, x.sessions, problems.join("; ")))
    }
}

/// A peer, started (or not, and why).
pub(crate) struct Peer {
    kind: Kind,
    pub(crate) info: PeerInfo,
    proc: Option<PeerProc>,
    target: Option<Target>,
    profile: Option<Profile>,
}

/// Starts every peer in `options` in front of `fixture`; one that cannot start is kept with
/// the reason. `out_dir` gets their logs.
pub(crate) async fn start(options: &PeerOptions, fixture: &Path, out_dir: &Path) -> Vec<Peer> {
    let mut peers = Vec::new();
    for (kind, program) in
        [(Kind::Supergateway, options.supergateway.as_deref()), (Kind::McpProxy, options.mcp_proxy.as_deref())]
    {
        peers.push(Peer::start(kind, program, fixture, out_dir).await);
    }
    peers
}

impl Peer {
    async fn start(kind: Kind, program: Option<&Path>, fixture: &Path, out_dir: &Path) -> Peer {
        let info = PeerInfo {
            kind,
            name: kind.name(),
            version: None,
            runtime: None,
            command: None,
            log: None,
            not_measured: None,
            children_at_most: Vec::new(),
        };
        let mut peer = Peer { kind, info, proc: None, target: None, profile: None };
        if let Err(e) = peer.launch(program, fixture, out_dir).await {
            // Dropping the process stops it.
            peer.proc = None;
            peer.info.not_measured = Some(cell_text(&format!("{e:#}")));
        }
        peer
    }

    async fn launch(&mut self, program: Option<&Path>, fixture: &Path, out_dir: &Path) -> Result<()> {
        let kind = self.kind;
        let program = program.with_context(|| format!("not configured (`make bench` passes {})", kind.flag()))?;
        if !program.exists() {
            bail!("{}", not_installed(kind, program, out_dir));
        }
        self.info.version = version(program).await;
        self.info.runtime = runtime(kind, program).await;
        let mut preload = out_dir.join("supergateway-loopback.cjs");
        if kind == Kind::Supergateway {
            std::fs::write(&preload, LOOPBACK_PRELOAD).with_context(|| format!("writing {}", preload.display()))?;
            // node takes a relative `--require` for a package name.
            preload = std::fs::canonicalize(&preload)?;
        }
        let port = free_port()?;
        let command = kind.command(program, fixture, port, &preload);
        // The port differs from run to run; the report shows the command without it.
        self.info.command = Some(render(&command).replace(&format!("--port {port}"), "--port PORT"));
        let log = out_dir.join(format!("peer-{}.log", kind.name()));
        self.info.log = Some(log.display().to_string());
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let proc = self.proc.insert(PeerProc::spawn(kind.name(), command, &log)?);
        wait_accepting(proc, addr).await?;
        let target = Target::parse(&format!("http://{addr}"), "/mcp", "/sse")?;
        let profile = kind.profile()?;
        // A session opened, used once and closed: it answers the way the runs will ask.
        load::one_session(&target, &profile).await.context("a first session (initialize, tools/call, DELETE)")?;
        (self.target, self.profile) = (Some(target), Some(profile));
        Ok(())
    }

    /// The row's path, e.g. `through supergateway 4.0.0 (a child per session): Streamable HTTP, SSE`.
    pub(crate) fn path(&self) -> String {
        let transport = self.kind.profile().map(|p| p.transport.label()).unwrap_or("Streamable HTTP");
        let version = self.info.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        format!("through {}{version} ({}): {transport}", self.kind.name(), self.kind.short_mode())
    }

    /// `sessions` sessions in a closed loop through the peer, measured like mcpgw's stdio rows.
    pub(crate) async fn measure(&mut self, sessions: usize, warmup: Duration, duration: Duration) -> Measured {
        let mut detail = PeerDetail {
            peer: self.kind.name(),
            not_measured: None,
            own_cpu_us_per_req: None,
            children_cpu_us_per_call: None,
            children_left: 0,
        };
        let result = match self.run(sessions, warmup, duration, &mut detail).await {
            Ok(result) => result,
            Err(e) => {
                detail.not_measured = Some(cell_text(&format!("{e:#}")));
                LoadResult { sessions, ..LoadResult::default() }
            }
        };
        Measured { path: self.path(), result, detail }
    }

    async fn run(
        &mut self,
        sessions: usize,
        warmup: Duration,
        duration: Duration,
        detail: &mut PeerDetail,
    ) -> Result<LoadResult> {
        if let Some(why) = &self.info.not_measured {
            bail!("{why}");
        }
        let (Some(proc), Some(target), Some(profile)) = (self.proc.as_mut(), &self.target, &self.profile) else {
            bail!("it was not started");
        };
        if let Some(status) = proc.exited() {
            bail!("it exited ({status}) before this run; {}", proc.log_tail());
        }
        let pid = proc.pid;
        let watch = ChildWatch::start(pid, warmup + duration + WATCH_SLACK);
        let result = load::closed_loop(target, profile, sessions, warmup, duration, Some(pid)).await;
        // Per-session children end after their sessions' DELETE: followed until they are gone.
        if self.kind.child_per_session() {
            detail.children_left = wait_children_exit(pid).await;
        }
        let watched = watch.finish();
        let mut result = result?;
        self.info.children_at_most.push((sessions, watched.max_children));
        detail.own_cpu_us_per_req = result.server_us_per_req;
        if self.kind.child_per_session() {
            add_children_cpu(watched.cpu_secs, &mut result, detail);
        }
        Ok(result)
    }

    /// SIGTERM (then SIGKILL); whether it exited 0.
    pub(crate) fn stop(&mut self) -> bool {
        self.proc.as_mut().is_some_and(PeerProc::stop)
    }
}

/// Adds the CPU of the per-session children, over the whole run, to the run's server CPU per
/// call (every call of the run, warm-up included).
fn add_children_cpu(children_secs: f64, result: &mut LoadResult, detail: &mut PeerDetail) {
    if result.calls_total == 0 {
        return;
    }
    let per_call = children_secs / result.calls_total as f64 * 1e6;
    detail.children_cpu_us_per_call = Some(per_call);
    if let Some(own) = result.server_us_per_req {
        let total = own + per_call;
        result.server_us_per_req = Some(total);
        result.req_per_server_cpu_s = Some(1e6 / total);
    }
}

/// Waits (bounded) until `pid` has no child left; returns how many are left.
async fn wait_children_exit(pid: u32) -> usize {
    let deadline = Instant::now() + CHILDREN_EXIT_TIMEOUT;
    loop {
        let left = children_of(pid).len();
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// What a [`ChildWatch`] saw.
#[derive(Debug, Default)]
struct Watched {
    /// CPU of every descendant over the watch (from its start for one born during it).
    cpu_secs: f64,
    /// The most children at once.
    max_children: usize,
}

/// Follows a process's descendants during a run, from a thread of its own (the load generator's
/// runtime has one thread and must not stall on /proc): how many children it has, and their CPU.
///
/// Their CPU cannot be read from the peer's cutime + cstime after they exit: supergateway's
/// children are `sh -c FIXTURE`, and it ends one by signalling its process group, so the shell
/// dies without waiting for the fixture, which init reaps instead. So each descendant's own
/// utime + stime is sampled every [`WATCH_INTERVAL`] and its last value kept; what one uses
/// after its last sample (while it exits) is missed.
struct ChildWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Watched>,
}

impl ChildWatch {
    /// Watches `pid`'s descendants until [`ChildWatch::finish`], at most `limit`.
    fn start(pid: u32, limit: Duration) -> ChildWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // CPU of the descendants already there, so only the run's own is counted.
            let before = descendants_cpu(pid);
            let mut last = HashMap::new();
            let mut max_children = 0;
            let samples = limit.as_millis() / WATCH_INTERVAL.as_millis() + 1;
            for _ in 0..samples {
                max_children = max_children.max(children_of(pid).len());
                last.extend(descendants_cpu(pid));
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(WATCH_INTERVAL);
            }
            let cpu_secs =
                last.iter().map(|(key, cpu)| cpu - before.get(key).copied().unwrap_or(0.0)).sum::<f64>().max(0.0);
            Watched { cpu_secs, max_children }
        });
        ChildWatch { stop, thread }
    }

    /// Stops watching (after one last sample); what it saw.
    fn finish(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The fields of `/proc/<pid>/stat` after the command name (the first is field 3, state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime (fields 14 and 15) of every descendant of `pid`, in seconds, keyed by pid and
/// start time (field 22), so that a reused pid is another process.
fn descendants_cpu(pid: u32) -> HashMap<(u32, u64), f64> {
    let mut cpu = HashMap::new();
    let mut queue = children_of(pid);
    while let Some(child) = queue.pop() {
        if cpu.len() >= MAX_DESCENDANTS {
            break;
        }
        let Some(fields) = stat_fields(child) else { continue };
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        if let (Some(utime), Some(stime), Some(start)) = (field(11), field(12), field(19)) {
            cpu.insert((child, start), (utime + stime) as f64 / procs::clk_tck());
        }
        queue.extend(children_of(child));
    }
    cpu
}

/// The live children of `pid`, from `/proc/<pid>/task/<tid>/children` (each thread lists the
/// children it started).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut children = Vec::new();
    for task in tasks.filter_map(|t| t.ok()) {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    children
}

/// A free loopback port. Both peers take a port number, not a listener, so there is a short
/// window in which another process could take it; the first session would then fail and say so.
fn free_port() -> Result<u16> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until the peer accepts on `addr`, at most [`START_TIMEOUT`]; fails at once if it exits.
async fn wait_accepting(proc: &mut PeerProc, addr: SocketAddr) -> Result<()> {
    let attempts = START_TIMEOUT.as_millis() / CONNECT_RETRY.as_millis();
    for _ in 0..attempts {
        if let Some(status) = proc.exited() {
            bail!("{} exited ({status}) before accepting on {addr}; {}", proc.name, proc.log_tail());
        }
        if let Ok(Ok(_)) = tokio::time::timeout(CONNECT_RETRY * 20, TcpStream::connect(addr)).await {
            return Ok(());
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
    bail!("{} did not accept on {addr} within {START_TIMEOUT:?}; {}", proc.name, proc.log_tail())
}

/// Why a configured peer is missing, with the last line of its failed install if there is one.
fn not_installed(kind: Kind, program: &Path, out_dir: &Path) -> String {
    let log = out_dir.join(format!("install-{}.log", kind.name()));
    let last = std::fs::read_to_string(&log)
        .ok()
        .and_then(|text| text.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_owned));
    match last {
        Some(line) => format!("not installed: `make deps-bench` failed ({}: {line})", log.display()),
        None => format!("not installed: {} is missing (`make deps-bench` installs it)", relative(program)),
    }
}

/// Its version: the last word of the first line of `--version`.
async fn version(program: &Path) -> Option<String> {
    let line = first_line(program.as_os_str(), &["--version"]).await?;
    line.split_whitespace().last().map(str::to_owned)
}

/// Its runtime and MCP SDK versions.
async fn runtime(kind: Kind, program: &Path) -> Option<String> {
    match kind {
        Kind::Supergateway => {
            let node = first_line(OsStr::new("node"), &["--version"]).await?;
            let sdk = sdk_version(program).unwrap_or_else(|| "unknown".to_owned());
            Some(format!("Node.js {node}, @modelcontextprotocol/sdk {sdk}"))
        }
        Kind::McpProxy => {
            // The venv's own interpreter, next to the script.
            let python = program.parent()?.join("python");
            let script = "import sys, importlib.metadata as m; print(sys.version.split()[0], m.version('mcp'))";
            let line = first_line(python.as_os_str(), &["-c", script]).await?;
            let (python, mcp) = line.split_once(' ')?;
            Some(format!("Python {python}, mcp {mcp}"))
        }
    }
}

/// The `@modelcontextprotocol/sdk` that supergateway resolves: the nearest `node_modules` up
/// from its real location, as node looks.
fn sdk_version(program: &Path) -> Option<String> {
    let real = std::fs::canonicalize(program).ok()?;
    real.ancestors().find_map(|dir| {
        let manifest = dir.join("node_modules/@modelcontextprotocol/sdk/package.json");
        let manifest: Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
        manifest["version"].as_str().map(str::to_owned)
    })
}

/// The first non-empty line a command prints on stdout, within [`PROBE_TIMEOUT`].
async fn first_line(program: &OsStr, args: &[&str]) -> Option<String> {
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output()).await.ok()?.ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    output.status.success().then(|| stdout.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned))?
}

/// `s` in single quotes for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A path relative to the working directory when it is under it (the report is shared).
fn relative(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

/// A command line for the report, its paths relative to the working directory.
fn render(command: &Command) -> String {
    let prefix = format!("{}/", std::env::current_dir().unwrap_or_default().display());
    let mut words = vec![relative(Path::new(command.get_program()))];
    words.extend(command.get_args().map(|arg| arg.to_string_lossy().replace(&prefix, "")));
    words.join(" ")
}

/// Text fit for a markdown table cell: one line, no `|`, bounded.
fn cell_text(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "/");
    match flat.char_indices().nth(MAX_REASON) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

/// The "How it measures" bullet about the peers.
pub(crate) fn how_it_measures(peers: &[PeerInfo]) -> String {
    let mut out = String::from(
        "- **Competing gateways** in front of the same fixture (the stdio rows of *Latency mcpgw adds over calling \
         the upstream directly*), each installed by `make deps-bench` and measured when present, with the same \
         closed loop and tool as mcpgw's stdio rows; both with per-request logging off (their defaults log every \
         request or message; mcpgw logs per session only):",
    );
    for peer in peers {
        out.push_str("\n  - ");
        out.push_str(&describe(peer));
    }
    out
}

fn describe(peer: &PeerInfo) -> String {
    let head = match (&peer.version, &peer.runtime) {
        (Some(v), Some(r)) => format!("**{} {v}** ({r})", peer.name),
        (Some(v), None) => format!("**{} {v}**", peer.name),
        _ => format!("**{}**", peer.name),
    };
    let command = peer.command.as_deref().map(|c| format!(": `{c}`")).unwrap_or_default();
    let mode = match peer.kind {
        Kind::Supergateway => format!(
            "Its stateful Streamable HTTP mode spawns a child (`sh -c FIXTURE`) for every session at `initialize` \
             and ends it at `DELETE` (its stateless mode would spawn one per POST); it replies with event streams \
             and refuses a POST whose `Accept` lacks either type, so its runs send both. It has no option for the \
             listen address and binds every interface, so a preloaded module (`crates/bench/peers/loopback.cjs`) \
             makes it listen on 127.0.0.1. *CPU µs/req* is node's CPU over the measured window plus that of its \
             per-session children and their fixtures over the whole run (their start, warm-up and close too: \
             each one's utime + stime, sampled every {} ms from a thread of the load generator until it has \
             exited), divided by every call of the run; it is shown as the sum (node + children). The fixture's \
             own work is in the children's part, which mcpgw's and mcp-proxy's numbers leave out.",
            WATCH_INTERVAL.as_millis()
        ),
        Kind::McpProxy => "Its default stateful Streamable HTTP on `/mcp` (a session per client, JSON replies), all \
                           sessions proxied to one fixture child it starts with itself. *CPU µs/req* is the Python \
                           process only: like mcpgw's, its shared child is not counted."
            .to_owned(),
    };
    let seen = if peer.children_at_most.is_empty() {
        String::new()
    } else {
        let counts: Vec<String> = peer
            .children_at_most
            .iter()
            .map(|(sessions, children)| {
                format!("{children} at {sessions} session{}", if *sessions == 1 { "" } else { "s" })
            })
            .collect();
        format!(" Its child processes at most, during the runs: {}.", counts.join(", "))
    };
    match &peer.not_measured {
        Some(why) => format!("{head}: not measured: {why}"),
        None => format!("{head}{command}. {mode}{seen}"),
    }
}

/// A peer's process: its output goes to a log file, it is stopped on drop.
struct PeerProc {
    name: &'static str,
    child: Child,
    pid: u32,
    /// supergateway exits when its stdin closes: held open for its whole life (and closed if
    /// the bench dies, which then ends it too).
    _stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl PeerProc {
    fn spawn(name: &'static str, mut command: Command, log: &Path) -> Result<PeerProc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::piped()).stdout(out).stderr(err);
        let mut child = command.spawn().with_context(|| format!("starting {name}: {command:?}"))?;
        let stdin = child.stdin.take();
        let pid = child.id();
        Ok(PeerProc { name, child, pid, _stdin: stdin, log: log.to_owned() })
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What its log says, for error messages: the first error line (node prints a stack after
    /// it), else the last lines (Python ends with its error).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = match lines.iter().find(|l| l.contains("Error:")) {
            Some(error) => error.trim().to_owned(),
            None => lines[lines.len().saturating_sub(3)..].join(" / "),
        };
        if tail.is_empty() {
            format!("{} is empty", self.log.display())
        } else {
            format!("{}: {tail}", self.log.display())
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; whether it exited by itself with status 0.
    fn stop(&mut self) -> bool {
        if let Some(status) = self.exited() {
            return status.success();
        }
        crate::procs::terminate(&mut self.child, self.name, STOP_TIMEOUT)
    }
}

impl Drop for PeerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/a b/fixture"), "'/a b/fixture'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn cells_are_one_bounded_line() {
        assert_eq!(cell_text("a |\n b"), "a / b");
        assert_eq!(cell_text(&"x".repeat(400)).chars().count(), MAX_REASON + 1);
    }

    #[test]
    fn reads_its_own_stat() {
        assert!(stat_fields(std::process::id()).is_some_and(|f| f.len() > 19));
    }
}
