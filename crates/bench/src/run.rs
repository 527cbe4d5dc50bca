//! `mcpgw-bench run` (`make bench`): starts mcpgw and the baselines, measures everything the
//! benchmark issue asks for, and writes `target/bench/results.json` and `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::{Profile, Target, Transport, get_json, get_number, get_status};
use crate::load::{self, Held, LoadResult, SetupResult};
use crate::peers::{self, PeerDetail, PeerInfo, PeerOptions};
use crate::procs::{self, Proc};
use crate::servers::ACCEPTED_PATH;

/// What rmcp's Streamable HTTP server wants in `Accept` on every POST.
pub(crate) const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// Cores busy with other work above which a run is measured again.
const NOISY: f64 = 0.25;
/// Idle sessions need this many file descriptors beyond one per legacy session.
const SPARE_FDS: u64 = 512;
/// The servers on one tokio worker thread (`[server] worker_threads = 1`; `serve-rmcp --workers 1`).
const MCPGW_1: &str = "mcpgw, 1 thread";
const RMCP_STATELESS_1: &str = "rmcp stateless JSON, 1 thread";

#[derive(clap::Args)]
pub(crate) struct Options {
    /// A smoke run: short durations, fewer sizes, smaller idle counts (`BENCH_QUICK=1`). It
    /// writes target/bench/results-quick.json and target/bench/benchmarks-quick.md.
    #[arg(long)]
    quick: bool,
    /// The mcpgw binary.
    #[arg(long, default_value = "target/release/mcpgw")]
    mcpgw: PathBuf,
    /// The stdio fixture (tests/fixture).
    #[arg(long, default_value = "target/release/mcpgw-fixture")]
    fixture: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the markdown report goes.
    #[arg(long)]
    doc: Option<PathBuf>,
    /// The command line recorded in the report (`make bench` passes its own).
    #[arg(long)]
    command: Option<String>,
    /// Wait up to this many seconds for the machine to be quiet (under 0.2 busy cores
    /// besides this process) before measuring; then go on regardless, with a note.
    #[arg(long, default_value_t = 120)]
    wait_quiet: u64,
    /// Competing gateways measured in front of the stdio fixture, when present.
    #[command(flatten)]
    peers: PeerOptions,
}

/// Sizes and durations of one run.
#[derive(Clone, Debug, Serialize)]
struct Plan {
    sizes: Vec<usize>,
    warmup_s: f64,
    duration_s: f64,
    rounds: usize,
    round_sessions: usize,
    setup_workers: usize,
    idle: Vec<usize>,
    overhead_sizes: Vec<usize>,
    idle_workers: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                sizes: vec![1, 64],
                warmup_s: 0.3,
                duration_s: 1.0,
                rounds: 1,
                round_sessions: 64,
                setup_workers: 64,
                idle: vec![200, 1_000],
                overhead_sizes: vec![1],
                idle_workers: 64,
            }
        } else {
            Plan {
                sizes: vec![1, 16, 64, 256],
                warmup_s: 1.0,
                duration_s: 5.0,
                rounds: 3,
                round_sessions: 64,
                setup_workers: 64,
                idle: vec![1_000, 10_000],
                overhead_sizes: vec![1, 16],
                idle_workers: 64,
            }
        }
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }
}

#[derive(Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    memory_gib: f64,
    kernel: String,
    open_files_limit: u64,
    /// `/proc/loadavg` when the run started (something else running shows here).
    load_average_at_start: String,
}

#[derive(Serialize)]
struct Versions {
    rustc: String,
    mcpgw: String,
    mcpgw_commit: String,
    rmcp: String,
    hyper: String,
    tokio: String,
}

#[derive(Serialize)]
struct Row {
    server: String,
    transport: String,
    accept: String,
    result: LoadResult,
}

#[derive(Serialize)]
struct Round {
    round: usize,
    mcpgw: LoadResult,
    rmcp_stateless: LoadResult,
}

#[derive(Serialize)]
struct SetupRow {
    server: String,
    transport: String,
    result: SetupResult,
    /// Sessions `/healthz` still listed 15 s after the run (mcpgw only).
    left_after: Option<u64>,
}

#[derive(Serialize)]
struct MemPoint {
    sessions: usize,
    opened: usize,
    rss: u64,
    bytes_per_session: f64,
    /// The server's own count (mcpgw `/healthz`).
    live: Option<u64>,
    open_secs: f64,
}

#[derive(Serialize)]
struct MemoryRow {
    server: String,
    transport: String,
    baseline_rss: u64,
    points: Vec<MemPoint>,
    /// Between the last two points.
    marginal_bytes_per_session: Option<f64>,
    open_errors: usize,
    failed_checks: usize,
    first_error: Option<String>,
    /// Seconds until `/healthz` showed no legacy session after the event streams closed.
    released_secs: Option<f64>,
    /// SIGTERM with the sessions live: a clean exit, and how long it took.
    stop_clean: bool,
    stop_secs: f64,
}

#[derive(Serialize)]
struct OverheadRow {
    upstream: String,
    path: String,
    result: LoadResult,
    /// New connections the http upstream accepted per call (warm-up included; the load
    /// generator's own connections to it not counted).
    upstream_connections_per_call: Option<f64>,
    /// A run through a competing gateway (crate::peers).
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<PeerDetail>,
}

#[derive(Serialize)]
struct Verdict {
    target: String,
    measured: String,
    met: bool,
    margin: String,
}

#[derive(Serialize)]
struct Report {
    generated_utc: String,
    quick: bool,
    command: String,
    elapsed_s: f64,
    machine: Machine,
    versions: Versions,
    plan: Plan,
    throughput: Vec<Row>,
    rounds: Vec<Round>,
    /// The same rounds between [`MCPGW_1`] and [`RMCP_STATELESS_1`].
    rounds_one_thread: Vec<Round>,
    setup: Vec<SetupRow>,
    memory: Vec<MemoryRow>,
    overhead: Vec<OverheadRow>,
    /// The competing gateways of the stdio overhead rows.
    peers: Vec<PeerInfo>,
    targets: Vec<Verdict>,
    observations: Vec<String>,
}

fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn lock_version(name: &str) -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].split('"').next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine(open_files_limit: u64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory_gib: mem_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        open_files_limit,
        load_average_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The checked-out commit, noting uncommitted changes to tracked files.
pub(crate) fn commit() -> String {
    let commit = sh("git", &["rev-parse", "--short=12", "HEAD"]);
    let dirty = !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty { format!("{commit} (with uncommitted changes)") } else { commit }
}

fn versions(mcpgw: &Path) -> Versions {
    Versions {
        rustc: sh("rustc", &["-V"]),
        mcpgw: sh(&mcpgw.to_string_lossy(), &["--version"]),
        mcpgw_commit: commit(),
        rmcp: lock_version("rmcp"),
        hyper: lock_version("hyper"),
        tokio: lock_version("tokio"),
    }
}

/// The harness's own messages, with the time since the start.
struct Clock(Instant);

impl Clock {
    fn say(&self, message: impl AsRef<str>) {
        eprintln!("[{:>5.1}s] {}", self.0.elapsed().as_secs_f64(), message.as_ref());
    }
}

pub(crate) fn mcpgw_config(upstreams: &str) -> String {
    format!(
        "# Written by mcpgw-bench.\n[sessions]\nmax_sessions = 200000\nidle_timeout_secs = 3600\nlegacy_grace_secs = 0\npark_after_secs = 1\n\n{upstreams}"
    )
}

pub(crate) async fn start_mcpgw(name: &str, binary: &Path, config: &Path) -> Result<Proc> {
    let mut command = Command::new(binary);
    command.arg("--config").arg(config).args(["--listen", "127.0.0.1:0"]);
    let proc = Proc::start(name, command)?;
    let target = target_of(&proc)?;
    // Ready once its shared upstreams have started.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get_status(&target, "/readyz").await.ok() == Some(200) {
            return Ok(proc);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{name} was not ready within 30 s; its log:\n{}", proc.log_tail(30).join("\n"))
}

fn start_self(name: &str, args: &[&str]) -> Result<Proc> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(args);
    Proc::start(name, command)
}

pub(crate) fn target_of(proc: &Proc) -> Result<Target> {
    Target::parse(&proc.base, "/mcp", "/sse")
}

/// mcpgw's live sessions, (legacy, streamable).
async fn live_sessions(target: &Target) -> Option<(u64, u64)> {
    let health = get_json(target, "/healthz").await.ok()?;
    Some((health["sessions"]["legacy"].as_u64()?, health["sessions"]["streamable"].as_u64()?))
}

/// Waits up to `limit` for mcpgw's `/healthz` to show `want` parked sessions; the last count.
async fn wait_parked(target: &Target, limit: Duration, want: u64) -> Option<u64> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        last = get_json(target, "/healthz").await.ok().and_then(|h| h["sessions"]["parked"].as_u64());
        if last.is_some_and(|n| n >= want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The RSS once it stops falling (freed memory is purged in the background): sampled every
/// 500 ms until it has not dropped by more than 0.5% over 2 s, for at most 20 s.
async fn settled_rss(pid: u32) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut samples = vec![procs::rss_bytes(pid)?];
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push(procs::rss_bytes(pid)?);
        if let [.., then, _, _, _, now] = samples.as_slice()
            && (*now as f64) > (*then as f64) * 0.995
        {
            return Some(*now);
        }
    }
    samples.last().copied()
}

/// Waits up to `limit` for mcpgw's session count to satisfy `done`; the last count seen.
async fn wait_sessions(target: &Target, limit: Duration, done: impl Fn((u64, u64)) -> bool) -> Option<(u64, u64)> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        last = live_sessions(target).await;
        if last.is_some_and(&done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

struct Bench {
    plan: Plan,
    clock: Clock,
    observations: Vec<String>,
}

impl Bench {
    fn note(&mut self, note: String) {
        self.clock.say(format!("NOTE: {note}"));
        self.observations.push(note);
    }

    fn check_alive(&mut self, proc: &mut Proc) -> Result<()> {
        if !proc.alive() {
            bail!("{} exited during the benchmark; its log:\n{}", proc.name, proc.log_tail(30).join("\n"));
        }
        Ok(())
    }

    /// [`Bench::load`], measured again (at most twice) while something else kept more than a
    /// quarter of a core busy; the quietest attempt is kept. Only for runs where nothing but the
    /// server and the load generator should be working.
    async fn load_quiet(
        &mut self,
        proc: &mut Proc,
        server: &str,
        profile: &Profile,
        sessions: usize,
    ) -> Result<LoadResult> {
        let mut best = self.load(proc, server, profile, sessions).await?;
        for _ in 0..2 {
            if best.other_cores <= NOISY {
                break;
            }
            self.clock.say(format!("  {:.2} other cores busy during that run: measuring it again", best.other_cores));
            let again = self.load(proc, server, profile, sessions).await?;
            if again.other_cores < best.other_cores {
                best = again;
            }
        }
        if best.other_cores > NOISY {
            self.note(format!(
                "{server}, {}, {sessions} sessions: other work kept {:.2} cores busy in each of three attempts",
                profile.transport.label(),
                best.other_cores
            ));
        }
        Ok(best)
    }

    async fn load(&mut self, proc: &mut Proc, server: &str, profile: &Profile, sessions: usize) -> Result<LoadResult> {
        let target = target_of(proc)?;
        let (warmup, duration) = (self.plan.warmup(), self.plan.duration());
        let result = match load::closed_loop(&target, profile, sessions, warmup, duration, Some(proc.pid)).await {
            Ok(result) => result,
            Err(e) => LoadResult { sessions, errors: 1, first_error: Some(format!("{e:#}")), ..LoadResult::default() },
        };
        self.clock.say(format!(
            "{server}, {}, {sessions} sessions: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} CPU µs/req, cores: server {} client {:.2} other {:.2}; {} errors",
            profile.transport.label(),
            result.rps,
            result.latency.p50_ms,
            result.latency.p99_ms,
            result.server_us_per_req.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
            result.server_cores.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
            result.client_cores,
            result.other_cores,
            result.errors,
        ));
        if result.errors > 0 {
            self.note(format!(
                "{server}, {}, {sessions} sessions: {} errors; first: {}",
                profile.transport.label(),
                result.errors,
                result.first_error.clone().unwrap_or_default()
            ));
        }
        self.check_alive(proc)?;
        Ok(result)
    }
}

fn profile(transport: Transport) -> Profile {
    Profile::new(transport, "echo", &json!({"text": "hello"}))
}

pub(crate) async fn run(options: Options) -> Result<()> {
    let quick = options.quick || std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut plan = Plan::new(quick);
    let clock = Clock(Instant::now());
    let nofile = procs::raise_nofile();
    let machine_info = machine(nofile);
    for path in [&options.mcpgw, &options.fixture] {
        if !path.exists() {
            bail!(
                "{} is missing: build it first (cargo build --release -p mcpgw; cargo build --release -p mcpgw-bench -p mcpgw-tests --bins)",
                path.display()
            );
        }
    }
    let mut observations = Vec::new();
    let largest = plan.idle.iter().copied().max().unwrap_or(0) as u64;
    if nofile < largest + SPARE_FDS {
        let fit = nofile.saturating_sub(SPARE_FDS) as usize;
        observations
            .push(format!("the open-file limit is {nofile}: idle legacy sessions capped at {fit} (raise `ulimit -n`)"));
        for n in &mut plan.idle {
            *n = (*n).min(fit);
        }
    }
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let (json_path, doc_path) = match quick {
        true => (out_dir.join("results-quick.json"), out_dir.join("benchmarks-quick.md")),
        false => (out_dir.join("results.json"), PathBuf::from("docs/benchmarks.md")),
    };
    let json_path = options.json.clone().unwrap_or(json_path);
    let doc_path = options.doc.clone().unwrap_or(doc_path);
    let command = options.command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let fixture = std::fs::canonicalize(&options.fixture)?;

    let builtin = "[upstreams.builtin]\nkind = \"builtin\"\n";
    let builtin_config = out_dir.join("mcpgw-builtin.toml");
    std::fs::write(&builtin_config, mcpgw_config(builtin))?;
    // The same with one runtime worker; `[server]` follows the `[sessions]` table.
    let one_thread_config = out_dir.join("mcpgw-builtin-1thread.toml");
    std::fs::write(&one_thread_config, mcpgw_config(&format!("[server]\nworker_threads = 1\n\n{builtin}")))?;
    let stdio_config = out_dir.join("mcpgw-stdio.toml");
    std::fs::write(
        &stdio_config,
        mcpgw_config(&format!(
            "[upstreams.fixture]\nkind = \"stdio\"\ncommand = {}\nshare = \"shared\"\n",
            Value::String(fixture.to_string_lossy().into_owned())
        )),
    )?;

    let mut bench = Bench { plan: plan.clone(), clock, observations };
    bench.clock.say(format!("mcpgw-bench run ({}), open-file limit {nofile}", if quick { "quick" } else { "full" }));
    // Is anything else running? Two-second samples of the machine's busy time, until quiet.
    let quiet_deadline = Instant::now() + Duration::from_secs(options.wait_quiet);
    let mut said = false;
    loop {
        let before = procs::machine_busy_secs();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let busy = procs::machine_busy_secs().zip(before).map(|(b, a)| (b - a) / 2.0).unwrap_or(0.0);
        if busy <= 0.2 {
            break;
        }
        if Instant::now() >= quiet_deadline {
            bench.note(format!(
                "the machine was {busy:.2} cores busy with other work when the run started: expect noisy numbers"
            ));
            break;
        }
        if !said {
            bench.clock.say(format!(
                "the machine is {busy:.2} cores busy with other work; waiting up to {} s for it to be quiet",
                options.wait_quiet
            ));
            said = true;
        }
    }
    let json_profile = profile(Transport::StreamableJson);
    let sse_profile = profile(Transport::StreamableSse);
    let legacy_profile = profile(Transport::Legacy);
    let rmcp_json = profile(Transport::StreamableJson).with_accept(ACCEPT_BOTH)?;
    let rmcp_sse = profile(Transport::StreamableSse).with_accept(ACCEPT_BOTH)?;

    // ---- round trips ----------------------------------------------------------------------
    let mut gw = start_mcpgw("mcpgw", &options.mcpgw, &builtin_config).await?;
    let mut gw1 = start_mcpgw(MCPGW_1, &options.mcpgw, &one_thread_config).await?;
    let mut stateless = start_self("rmcp stateless JSON", &["serve-rmcp", "--stateless"])?;
    let mut stateless1 = start_self(RMCP_STATELESS_1, &["serve-rmcp", "--stateless", "--workers", "1"])?;
    let mut session = start_self("rmcp session mode", &["serve-rmcp"])?;
    let mut bare = start_self("bare hyper", &["serve-hyper"])?;
    let mut throughput = Vec::new();
    for &size in &plan.sizes {
        for (which, server, profile) in [
            (0, "mcpgw", &json_profile),
            (0, "mcpgw", &sse_profile),
            (0, "mcpgw", &legacy_profile),
            (1, MCPGW_1, &json_profile),
            (1, MCPGW_1, &legacy_profile),
            (2, "rmcp stateless JSON", &rmcp_json),
            (3, RMCP_STATELESS_1, &rmcp_json),
            (4, "rmcp session mode", &rmcp_sse),
            (5, "bare hyper", &json_profile),
        ] {
            let proc = match which {
                0 => &mut gw,
                1 => &mut gw1,
                2 => &mut stateless,
                3 => &mut stateless1,
                4 => &mut session,
                _ => &mut bare,
            };
            let result = bench.load_quiet(proc, server, profile, size).await?;
            throughput.push(Row {
                server: server.to_owned(),
                transport: profile.transport.label().to_owned(),
                accept: profile.accept.to_str().unwrap_or("").to_owned(),
                result,
            });
        }
    }
    for proc in [&gw, &gw1] {
        let left = wait_sessions(&target_of(proc)?, Duration::from_secs(15), |c| c == (0, 0)).await;
        if left != Some((0, 0)) {
            bench.note(format!(
                "after the round-trip runs (every session closed), {} /healthz still shows {left:?} (legacy, streamable)",
                proc.name
            ));
        }
    }

    // Each round measures the default pair, then the one-thread pair, with the same sessions.
    let (mut rounds, mut rounds_one_thread) = (Vec::new(), Vec::new());
    let n = plan.round_sessions;
    for round in 1..=plan.rounds {
        let mcpgw = bench.load_quiet(&mut gw, "mcpgw", &json_profile, n).await?;
        let rmcp = bench.load_quiet(&mut stateless, "rmcp stateless JSON", &rmcp_json, n).await?;
        rounds.push(Round { round, mcpgw, rmcp_stateless: rmcp });
        let mcpgw = bench.load_quiet(&mut gw1, MCPGW_1, &json_profile, n).await?;
        let rmcp = bench.load_quiet(&mut stateless1, RMCP_STATELESS_1, &rmcp_json, n).await?;
        rounds_one_thread.push(Round { round, mcpgw, rmcp_stateless: rmcp });
    }

    // ---- session set-up ------------------------------------------------------------------
    let mut setup = Vec::new();
    for (server, profile) in [("mcpgw", &json_profile), ("mcpgw", &legacy_profile), ("rmcp session mode", &rmcp_sse)] {
        let proc = if server == "mcpgw" { &mut gw } else { &mut session };
        let target = target_of(proc)?;
        let result =
            load::setup_rate(&target, profile, plan.setup_workers, plan.warmup(), plan.duration(), Some(proc.pid))
                .await?;
        bench.clock.say(format!(
            "{server}, {}: {:.0} sessions/s set up, p50 {:.3} ms, p99 {:.3} ms, cores: server {} client {:.2} other {:.2}; {} errors",
            profile.transport.label(),
            result.per_second,
            result.latency.p50_ms,
            result.latency.p99_ms,
            result.server_cores.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
            result.client_cores,
            result.other_cores,
            result.errors
        ));
        if result.errors > 0 {
            bench.note(format!(
                "session set-up, {server}, {}: {} errors; first: {}",
                profile.transport.label(),
                result.errors,
                result.first_error.clone().unwrap_or_default()
            ));
        }
        bench.check_alive(proc)?;
        let mut left_after = None;
        if server == "mcpgw" {
            let left = wait_sessions(&target, Duration::from_secs(15), |c| c == (0, 0)).await;
            left_after = left.map(|(l, s)| l + s);
            if left_after != Some(0) {
                bench.note(format!(
                    "15 s after the {} set-up run, mcpgw /healthz still shows {left:?} (legacy, streamable)",
                    profile.transport.label()
                ));
            }
        }
        setup.push(SetupRow {
            server: server.to_owned(),
            transport: profile.transport.label().to_owned(),
            result,
            left_after,
        });
    }
    for proc in [&mut gw, &mut gw1, &mut stateless, &mut stateless1, &mut session, &mut bare] {
        if !proc.stop() && proc.name.starts_with("mcpgw") {
            bench.note(format!("{} did not exit 0 on SIGTERM after the round-trip runs", proc.name));
        }
    }

    // ---- memory --------------------------------------------------------------------------
    let mut memory = Vec::new();
    for (server, profile) in [("mcpgw", &json_profile), ("mcpgw", &legacy_profile), ("rmcp session mode", &rmcp_sse)] {
        let row = if server == "mcpgw" {
            let proc = start_mcpgw("mcpgw", &options.mcpgw, &builtin_config).await?;
            memory_run(&mut bench, proc, server, profile, true).await?
        } else {
            let proc = start_self("rmcp session mode", &["serve-rmcp"])?;
            memory_run(&mut bench, proc, server, profile, false).await?
        };
        memory.push(row);
    }

    // ---- latency added over a direct upstream ----------------------------------------------
    let mut overhead = Vec::new();
    let fixture_profile = Profile::new(Transport::StreamableJson, "test_simple_text", &json!({}));
    let mut gw = start_mcpgw("mcpgw", &options.mcpgw, &stdio_config).await?;
    let mut peers = peers::start(&options.peers, &fixture, &out_dir).await;
    for peer in &peers {
        if let Some(why) = &peer.info.not_measured {
            bench.note(format!("{}: not measured: {why}", peer.info.name));
        }
    }
    for &size in &plan.overhead_sizes {
        let direct = load::stdio_direct(&fixture, "test_simple_text", &json!({}), size, plan.warmup(), plan.duration())
            .await
            .unwrap_or_else(|e| LoadResult { errors: 1, first_error: Some(format!("{e:#}")), ..LoadResult::default() });
        bench.clock.say(format!(
            "stdio fixture direct (rmcp client), {size} callers: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
            direct.rps, direct.latency.p50_ms, direct.latency.p99_ms, direct.errors
        ));
        if direct.errors > 0 {
            bench.note(format!("direct stdio: {}", direct.first_error.clone().unwrap_or_default()));
        }
        overhead.push(OverheadRow {
            upstream: "stdio (fixture, shared)".into(),
            path: "direct: rmcp client over stdio".into(),
            result: direct,
            upstream_connections_per_call: None,
            peer: None,
        });
        let via = bench.load(&mut gw, "mcpgw → stdio fixture", &fixture_profile, size).await?;
        overhead.push(OverheadRow {
            upstream: "stdio (fixture, shared)".into(),
            path: "through mcpgw: Streamable HTTP, JSON".into(),
            result: via,
            upstream_connections_per_call: None,
            peer: None,
        });
        // A peer that did not start still gets its rows, saying why (noted once, above).
        for peer in &mut peers {
            let run = peer.measure(size, plan.warmup(), plan.duration()).await;
            bench.clock.say(run.summary());
            if peer.info.not_measured.is_none()
                && let Some(problem) = run.problem()
            {
                bench.note(problem);
            }
            overhead.push(OverheadRow {
                upstream: "stdio (fixture, shared)".into(),
                path: run.path,
                result: run.result,
                upstream_connections_per_call: None,
                peer: Some(run.detail),
            });
        }
    }
    gw.stop();
    for peer in &mut peers {
        peer.stop();
    }
    let mut upstream = start_self("rmcp upstream (session mode)", &["serve-rmcp"])?;
    let http_config = out_dir.join("mcpgw-http.toml");
    std::fs::write(
        &http_config,
        mcpgw_config(&format!(
            "[upstreams.remote]\nkind = \"http\"\nurl = \"{}/mcp\"\nshare = \"shared\"\n",
            upstream.base
        )),
    )?;
    let mut gw = start_mcpgw("mcpgw", &options.mcpgw, &http_config).await?;
    let upstream_target = target_of(&upstream)?;
    // New connections the upstream accepted during a run, per call; `own` are the load
    // generator's (its sessions' connections, and the probe's own connection).
    let accepted = || async { get_number(&upstream_target, ACCEPTED_PATH).await.ok() };
    let per_call = |before: Option<u64>, after: Option<u64>, own: u64, result: &LoadResult| {
        let new = after?.checked_sub(before?)?.saturating_sub(own);
        (result.calls_total > 0).then(|| new as f64 / result.calls_total as f64)
    };
    for &size in &plan.overhead_sizes {
        let before = accepted().await;
        let direct = bench.load_quiet(&mut upstream, "rmcp upstream direct", &rmcp_sse, size).await?;
        let connections = per_call(before, accepted().await, size as u64 + 1, &direct);
        overhead.push(OverheadRow {
            upstream: "http (rmcp StreamableHttpService, session mode, shared)".into(),
            path: "direct: Streamable HTTP, SSE (rmcp replies SSE)".into(),
            result: direct,
            upstream_connections_per_call: connections,
            peer: None,
        });
        for (path, profile) in [
            ("through mcpgw: Streamable HTTP, SSE", &sse_profile),
            ("through mcpgw: Streamable HTTP, JSON", &json_profile),
        ] {
            let before = accepted().await;
            let via = bench.load(&mut gw, "mcpgw → rmcp upstream", profile, size).await?;
            let connections = per_call(before, accepted().await, 1, &via);
            if let Some(c) = connections {
                bench.clock.say(format!(
                    "  the upstream accepted {:.0} new connections from mcpgw for {} calls ({c:.2} per call)",
                    c * via.calls_total as f64,
                    via.calls_total
                ));
                if c > 0.05 {
                    bench.note(format!(
                        "mcpgw's http upstream ({path}, {size} sessions): the upstream accepted {c:.2} new TCP \
                         connections per call from mcpgw ({:.0} for {} calls); the load generator's own client \
                         reuses one keep-alive connection per session",
                        c * via.calls_total as f64,
                        via.calls_total
                    ));
                }
            }
            overhead.push(OverheadRow {
                upstream: "http (rmcp StreamableHttpService, session mode, shared)".into(),
                path: path.into(),
                result: via,
                upstream_connections_per_call: connections,
                peer: None,
            });
        }
    }
    gw.stop();
    upstream.stop();

    let mut report = Report {
        generated_utc: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        quick,
        command,
        elapsed_s: bench.clock.0.elapsed().as_secs_f64(),
        machine: machine_info,
        versions: versions(&options.mcpgw),
        plan,
        throughput,
        rounds,
        rounds_one_thread,
        setup,
        memory,
        overhead,
        peers: peers.into_iter().map(|p| p.info).collect(),
        targets: Vec::new(),
        observations: bench.observations,
    };
    report.targets = verdicts(&report);
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&doc_path, markdown(&report, &json_path))
        .with_context(|| format!("writing {}", doc_path.display()))?;
    bench.clock.say(format!("wrote {} and {}", json_path.display(), doc_path.display()));
    for verdict in &report.targets {
        eprintln!(
            "  {} {}: {} ({})",
            if verdict.met { "MET   " } else { "MISSED" },
            verdict.target,
            verdict.measured,
            verdict.margin
        );
    }
    Ok(())
}

/// Idle sessions of one kind on a fresh server: RSS over the baseline at each count, then
/// one call on every session, then (mcpgw) the release of legacy sessions and a SIGTERM.
async fn memory_run(
    bench: &mut Bench,
    mut proc: Proc,
    server: &str,
    profile: &Profile,
    mcpgw: bool,
) -> Result<MemoryRow> {
    let target = target_of(&proc)?;
    let label = profile.transport.label();
    // Warm-up: one session opened, used and closed, so lazily built state counts as baseline.
    load::one_session(&target, profile).await.context("the warm-up session")?;
    let live_before = if mcpgw { wait_sessions(&target, Duration::from_secs(10), |c| c == (0, 0)).await } else { None };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = procs::rss_bytes(proc.pid).context("no RSS")?;
    let mut held = Held::default();
    let mut points = Vec::new();
    for &count in &bench.plan.idle.clone() {
        let began = Instant::now();
        load::hold(&target, profile, &mut held, count, bench.plan.idle_workers).await;
        let open_secs = began.elapsed().as_secs_f64();
        let live = if mcpgw {
            let want = held.sessions.len() as u64;
            let legacy = profile.transport == Transport::Legacy;
            let base = live_before.map(|(l, s)| if legacy { l } else { s }).unwrap_or(0);
            wait_sessions(&target, Duration::from_secs(30), |(l, s)| (if legacy { l } else { s }) >= want + base)
                .await
                .map(|(l, s)| if legacy { l } else { s })
        } else {
            None
        };
        if mcpgw {
            // Idle sessions park after `park_after_secs`; then the freed memory is purged.
            let want = held.sessions.len() as u64;
            let parked = wait_parked(&target, Duration::from_secs(30), want).await;
            if parked != Some(want) {
                bench.note(format!("{server}, {label}: {want} idle sessions but /healthz shows {parked:?} parked"));
            }
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let rss = settled_rss(proc.pid).await.context("no RSS")?;
        let per = (rss as f64 - baseline as f64) / held.sessions.len().max(1) as f64;
        bench.clock.say(format!(
            "{server}, {label}: {} idle sessions (opened in {open_secs:.1} s): RSS {:.1} MiB, {:.0} bytes/session over the baseline {:.1} MiB{}",
            held.sessions.len(),
            rss as f64 / 1048576.0,
            per,
            baseline as f64 / 1048576.0,
            live.map(|l| format!(", /healthz {l}")).unwrap_or_default()
        ));
        if let Some(live) = live
            && live != held.sessions.len() as u64
        {
            bench.note(format!("{server}, {label}: {} sessions held but /healthz shows {live}", held.sessions.len()));
        }
        points.push(MemPoint {
            sessions: count,
            opened: held.sessions.len(),
            rss,
            bytes_per_session: per,
            live,
            open_secs,
        });
    }
    let failed_checks = load::check_held(&target, profile, &mut held, bench.plan.idle_workers).await;
    bench.clock.say(format!(
        "{server}, {label}: one call on each of the {} held sessions: {failed_checks} failed; {} failed to open",
        held.sessions.len() + failed_checks,
        held.errors
    ));
    if failed_checks > 0 || held.errors > 0 {
        bench.note(format!(
            "{server}, {label}, idle sessions: {} failed to open, {failed_checks} failed their call afterwards; first: {}",
            held.errors,
            held.first_error.clone().unwrap_or_default()
        ));
    }
    bench.check_alive(&mut proc)?;
    let marginal = match points.as_slice() {
        [.., a, b] if b.opened > a.opened => Some((b.rss as f64 - a.rss as f64) / (b.opened - a.opened) as f64),
        _ => None,
    };
    let (open_errors, first_error) = (held.errors, held.first_error.take());
    let mut released_secs = None;
    if mcpgw && profile.transport == Transport::Legacy {
        let began = Instant::now();
        drop(held);
        let left = wait_sessions(&target, Duration::from_secs(30), |(l, _)| l == 0).await;
        if left.is_some_and(|(l, _)| l == 0) {
            released_secs = Some(began.elapsed().as_secs_f64());
        } else {
            bench
                .note(format!("{server}: 30 s after closing every legacy event stream, /healthz still shows {left:?}"));
        }
    } else {
        // Streamable sessions stay live (no DELETE): the SIGTERM below ends them.
        drop(held);
    }
    let began = Instant::now();
    let stop_clean = proc.stop();
    let stop_secs = began.elapsed().as_secs_f64();
    if mcpgw && !stop_clean {
        bench.note(format!("{server}, {label}: mcpgw did not exit 0 within 20 s of SIGTERM with idle sessions live"));
    }
    Ok(MemoryRow {
        server: server.to_owned(),
        transport: label.to_owned(),
        baseline_rss: baseline,
        points,
        marginal_bytes_per_session: marginal,
        open_errors,
        failed_checks,
        first_error,
        released_secs,
        stop_clean,
        stop_secs,
    })
}

// ---- targets ------------------------------------------------------------------------------

impl Report {
    fn round_sessions_are(&self, n: usize) -> bool {
        self.plan.round_sessions == n
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn find<'a>(report: &'a Report, server: &str, transport: Transport, sessions: usize) -> Option<&'a LoadResult> {
    report
        .throughput
        .iter()
        .find(|r| r.server == server && r.transport == transport.label() && r.result.sessions == sessions)
        .map(|r| &r.result)
}

fn pct(x: f64) -> String {
    format!("{:+.0}%", x * 100.0)
}

/// The CPU-efficiency and wall-clock verdicts of one set of alternating rounds at `n` sessions;
/// `which` ends the target's wording (the configuration).
fn round_verdicts(rounds: &[Round], n: usize, which: &str) -> [Verdict; 2] {
    let cpu_ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| Some(r.mcpgw.req_per_server_cpu_s? / r.rmcp_stateless.req_per_server_cpu_s?))
        .collect();
    let rps_ratios: Vec<f64> = rounds.iter().map(|r| r.mcpgw.rps / r.rmcp_stateless.rps).collect();
    let (cpu, rps) = (median(cpu_ratios.clone()), median(rps_ratios.clone()));
    let gw_us = median(rounds.iter().filter_map(|r| r.mcpgw.server_us_per_req).collect());
    let rmcp_us = median(rounds.iter().filter_map(|r| r.rmcp_stateless.server_us_per_req).collect());
    [
        Verdict {
            target: format!(
                "Streamable HTTP JSON, {n} sessions: ≥ 1.5× the requests per server-CPU-second of rmcp stateless JSON{which}"
            ),
            measured: format!(
                "{cpu:.2}× ({gw_us:.1} vs {rmcp_us:.1} CPU µs/req; median of {} alternating rounds: {})",
                cpu_ratios.len(),
                cpu_ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
            ),
            met: cpu >= 1.5,
            margin: format!("{} against 1.5×", pct(cpu / 1.5 - 1.0)),
        },
        Verdict {
            target: format!(
                "Streamable HTTP JSON, {n} sessions: no lower wall-clock throughput than rmcp stateless JSON{which}"
            ),
            measured: format!(
                "{rps:.2}× ({:.0} vs {:.0} req/s, medians; rounds: {})",
                median(rounds.iter().map(|r| r.mcpgw.rps).collect()),
                median(rounds.iter().map(|r| r.rmcp_stateless.rps).collect()),
                rps_ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
            ),
            met: rps >= 1.0,
            margin: format!("{} against 1.0×", pct(rps - 1.0)),
        },
    ]
}

/// p99 < 2 ms at 64 sessions for `server`: the median of its matrix run and its rounds' runs.
fn p99_verdict(report: &Report, server: &str, rounds: &[Round], target: &str) -> Option<Verdict> {
    let matrix = find(report, server, Transport::StreamableJson, 64)?;
    // Every JSON run of `server` at 64 sessions: the matrix's and the rounds'.
    let mut runs = vec![matrix.latency.p99_ms];
    if report.round_sessions_are(64) {
        runs.extend(rounds.iter().map(|round| round.mcpgw.latency.p99_ms));
    }
    let p99 = median(runs.clone());
    let others: Vec<String> = [Transport::StreamableSse, Transport::Legacy]
        .iter()
        .filter_map(|&t| find(report, server, t, 64).map(|r| format!("{}: {:.2} ms", t.label(), r.latency.p99_ms)))
        .collect();
    Some(Verdict {
        target: target.to_owned(),
        measured: format!(
            "{p99:.2} ms, median of {} runs ({}); {}",
            runs.len(),
            runs.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", "),
            others.join("; ")
        ),
        met: p99 < 2.0,
        margin: if p99 < 2.0 {
            format!("{:.2} ms to spare", 2.0 - p99)
        } else {
            format!("{:.2} ms over ({})", p99 - 2.0, pct(p99 / 2.0 - 1.0))
        },
    })
}

/// The targets, judged on mcpgw's default configuration; after the round and p99 targets, the
/// same judged on one worker thread.
fn verdicts(report: &Report) -> Vec<Verdict> {
    let mut out = Vec::new();
    let n = report.plan.round_sessions;

    // 1. CPU efficiency and wall-clock throughput against rmcp stateless JSON.
    let [cpu, rps] = round_verdicts(&report.rounds, n, "");
    let [cpu1, rps1] = round_verdicts(&report.rounds_one_thread, n, ", with worker_threads = 1 on both servers");
    out.extend([cpu, cpu1, rps, rps1]);

    // 2. p99 at 64 sessions.
    out.extend(p99_verdict(
        report,
        "mcpgw",
        &report.rounds,
        "p99 < 2 ms at 64 sessions (mcpgw, Streamable HTTP JSON, built-in echo)",
    ));
    out.extend(p99_verdict(
        report,
        MCPGW_1,
        &report.rounds_one_thread,
        "p99 < 2 ms at 64 sessions, mcpgw with worker_threads = 1 (Streamable HTTP JSON, built-in echo)",
    ));

    // 3. memory per idle session, and 10,000 held without error.
    for row in report.memory.iter().filter(|m| m.server == "mcpgw") {
        if let Some(last) = row.points.last() {
            let per = last.bytes_per_session;
            out.push(Verdict {
                target: format!("≤ 16 KiB RSS per idle session, {}", row.transport),
                measured: format!(
                    "{:.1} KiB at {} sessions ({:.1} KiB marginal)",
                    per / 1024.0,
                    last.opened,
                    row.marginal_bytes_per_session.unwrap_or(f64::NAN) / 1024.0
                ),
                met: per <= 16384.0,
                margin: format!("{} against 16 KiB", pct(per / 16384.0 - 1.0)),
            });
            let clean = row.open_errors == 0 && row.failed_checks == 0 && last.opened == last.sessions;
            out.push(Verdict {
                target: format!("{} idle sessions held with no error, {}", last.sessions, row.transport),
                measured: format!(
                    "{} opened, {} open errors, {} failed their call afterwards, /healthz {}",
                    last.opened,
                    row.open_errors,
                    row.failed_checks,
                    last.live.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
                ),
                met: clean,
                margin: if clean {
                    "no error".into()
                } else {
                    format!("{} errors", row.open_errors + row.failed_checks)
                },
            });
        }
    }

    // 4. session set-up rate.
    for row in report.setup.iter().filter(|s| s.server == "mcpgw") {
        let rate = row.result.per_second;
        out.push(Verdict {
            target: format!("≥ 5,000 sessions set up per second, {}", row.transport),
            measured: format!("{rate:.0}/s ({} workers, {} errors)", row.result.workers, row.result.errors),
            met: rate >= 5000.0 && row.result.errors == 0,
            margin: format!("{} against 5,000/s", pct(rate / 5000.0 - 1.0)),
        });
    }

    // 5. a shared stdio upstream against a direct stdio round trip.
    let stdio = |path: &str, sessions: usize| {
        report
            .overhead
            .iter()
            .find(|o| o.upstream.starts_with("stdio") && o.path.starts_with(path) && o.result.sessions == sessions)
            .map(|o| &o.result)
    };
    if let (Some(direct), Some(via)) = (stdio("direct", 1), stdio("through mcpgw", 1)) {
        let added = via.latency.p50_ms / direct.latency.p50_ms - 1.0;
        out.push(Verdict {
            target: "a shared stdio upstream adds ≤ 10% over a direct stdio round trip (p50, 1 session)".into(),
            measured: format!(
                "{:.3} ms through mcpgw vs {:.3} ms direct: {} (+{:.3} ms)",
                via.latency.p50_ms,
                direct.latency.p50_ms,
                pct(added),
                via.latency.p50_ms - direct.latency.p50_ms
            ),
            met: added <= 0.10,
            margin: format!("{} against +10%", pct(added - 0.10).replace('%', " points")),
        });
    }
    out
}

// ---- markdown -----------------------------------------------------------------------------

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite()).map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "–".into())
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// What the target table cannot say by itself: why a target is where it is.
fn reading_the_targets(md: &mut String, r: &Report) {
    let _ = writeln!(md, "### Reading the targets\n");
    if let Some(g) = find(r, "mcpgw", Transport::StreamableJson, 64) {
        let bare = find(r, "bare hyper", Transport::StreamableJson, 64);
        // The alternating rounds when they ran at 64 sessions (more runs), else the matrix run.
        let (rps, mean) = if r.round_sessions_are(64) && !r.rounds.is_empty() {
            (
                median(r.rounds.iter().map(|x| x.mcpgw.rps).collect()),
                median(r.rounds.iter().map(|x| x.mcpgw.latency.mean_ms).collect()),
            )
        } else {
            (g.rps, g.latency.mean_ms)
        };
        let _ = writeln!(
            md,
            "- **p99 at 64 sessions.** In a closed loop each of the 64 sessions has one call in flight, so the mean \
             latency is 64 / throughput whatever the server does (Little's law): at mcpgw's {} req/s that is {:.2} ms \
             before any tail (measured mean {:.2} ms). A p99 under 2 ms at 64 sessions needs well over 32,000 req/s \
             on this machine, with the load generator on the same cores{}. What would close it: less server CPU \
             per request. docs/performance.md (`make profile`) shows where it goes: rmcp's serve loop and its \
             per-request task and cancellation token, the kernel's loopback TCP and cross-thread wake-ups (one \
             worker thread removes most of those, below); answering simple requests without rmcp's per-request task, \
             or a thread per core with each session on its connection's thread, would be the next steps.",
            thousands(rps),
            64.0 / rps * 1000.0,
            mean,
            bare.map(|b| format!(
                "; the bare hyper server, which does no MCP work at all, reaches {} req/s with p99 {:.2} ms",
                thousands(b.rps),
                b.latency.p99_ms
            ))
            .unwrap_or_default()
        );
    }
    let stdio = |path: &str| {
        r.overhead
            .iter()
            .find(|o| o.upstream.starts_with("stdio") && o.path.starts_with(path) && o.result.sessions == 1)
            .map(|o| &o.result)
    };
    if let (Some(direct), Some(via), Some(echo)) =
        (stdio("direct"), stdio("through mcpgw"), find(r, "mcpgw", Transport::StreamableJson, 1))
    {
        let hop = via.latency.p50_ms - echo.latency.p50_ms;
        let _ = writeln!(
            md,
            "- **stdio upstream.** The comparison includes the client's HTTP round trip to mcpgw, which the direct stdio \
             client does not make: mcpgw answering its built-in echo takes {:.3} ms (p50, 1 session), {:.0}% of the \
             direct stdio round trip ({:.3} ms) by itself. Subtracting it, the stdio hop inside mcpgw (session server → \
             shared upstream link → child → back) takes {:.3} ms against {:.3} ms for rmcp's client talking to the same \
             child: {:.1}× the direct round trip. What would close it: nothing in front of an HTTP hop can add \
             less than that hop, so the target as measured is out of reach for any gateway reached over HTTP; the \
             hop inside mcpgw can still shrink (its profile spends about 13% parsing the child's replies into \
             rmcp's untagged result enum, which a parse by the request's method would remove; docs/performance.md).",
            echo.latency.p50_ms,
            echo.latency.p50_ms / direct.latency.p50_ms * 100.0,
            direct.latency.p50_ms,
            hop,
            direct.latency.p50_ms,
            hop / direct.latency.p50_ms
        );
    }
    let idle = |transport: &str| {
        r.memory
            .iter()
            .find(|m| m.server == "mcpgw" && m.transport == transport)
            .and_then(|m| m.points.last())
            .map(|p| p.bytes_per_session / 1024.0)
    };
    if let (Some(legacy), Some(streamable)) = (idle(Transport::Legacy.label()), idle(Transport::StreamableJson.label()))
    {
        let _ = writeln!(
            md,
            "- **Idle legacy sessions.** An idle Streamable HTTP session holds no connection and costs {streamable:.1} \
             KiB; an idle legacy session costs {legacy:.1} KiB because it holds its event stream open, and hyper keeps \
             an 8 KiB read buffer and an 8 KiB write buffer for every open HTTP/1.1 connection (its minimum), besides \
             the connection's task and the stream. What would close it: writing the event stream on a connection \
             taken out of hyper once the response head is sent, or hyper allowing smaller buffers; until then a \
             legacy session costs a connection's worth more than a Streamable one."
        );
    }
    let setup = |server: &str, transport: Transport| {
        r.setup.iter().find(|s| s.server == server && s.transport == transport.label()).map(|s| &s.result)
    };
    if let (Some(legacy), Some(streamable)) =
        (setup("mcpgw", Transport::Legacy), setup("mcpgw", Transport::StreamableJson))
        && (legacy.per_second < 5000.0 || streamable.per_second < 5000.0)
    {
        let rmcp = setup("rmcp session mode", Transport::StreamableSse)
            .map(|x| {
                format!(
                    " rmcp's session mode, unchanged between runs, set up {}/s in this one;",
                    thousands(x.per_second)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "- **Session set-up.** {}/s Streamable HTTP and {}/s legacy against 5,000/s, at {} and {} server CPU µs \
             per session;{rmcp} the rate moves with the machine's speed, so compare it with that row between runs. A \
             set-up is an `initialize` (which starts the session's own MCP server, a task and its channels), the \
             `initialized` notification, one call and the close; a legacy session also opens a connection of its own \
             for its event stream (an accept, a new hyper connection with its buffers, a TCP handshake and close on \
             loopback). What would close it: less CPU per set-up (starting the session's server lazily, at its first \
             request; the connection's buffers), or one worker thread on a machine this small (docs/operations.md, \
             *Threads*).",
            thousands(streamable.per_second),
            thousands(legacy.per_second),
            opt(streamable.server_us_per_session, 0),
            opt(legacy.server_us_per_session, 0),
        );
    }
    if let (Some(stateless), Some(g)) =
        (find(r, "rmcp stateless JSON", Transport::StreamableJson, 64), find(r, "mcpgw", Transport::StreamableJson, 64))
    {
        let _ = writeln!(
            md,
            "- **Where the cores go.** At 64 sessions (the matrix run; the target uses the alternating rounds below) \
             mcpgw used {} cores for {} req/s, with the load generator on {:.2} and everything else on {:.2}; rmcp \
             stateless used {} cores for {} req/s (load generator {:.2}, else {:.2}); of {} cores. When the sum is \
             near {}, the machine, not the server, sets the wall-clock throughput, which is why the CPU per request is \
             the number to compare.",
            opt(g.server_cores, 2),
            thousands(g.rps),
            g.client_cores,
            g.other_cores,
            opt(stateless.server_cores, 2),
            thousands(stateless.rps),
            stateless.client_cores,
            stateless.other_cores,
            r.machine.nproc,
            r.machine.nproc
        );
    }
    if !r.rounds.is_empty() && !r.rounds_one_thread.is_empty() {
        let med = |rounds: &[Round], f: fn(&Round) -> Option<f64>| median(rounds.iter().filter_map(f).collect());
        let (one, default) = (&r.rounds_one_thread, &r.rounds);
        let _ = writeln!(
            md,
            "- **One worker thread.** The targets are judged on the default configuration (one worker per core); the \
             `, 1 thread` rows run the same servers with one tokio worker (`[server] worker_threads = 1` for mcpgw, \
             `worker_threads(1)` for rmcp), the configuration docs/operations.md (*Threads*) recommends for machines of \
             one or two cores, where a second worker mostly costs cross-thread wakeups. In the alternating rounds ({} \
             sessions, medians) mcpgw with one worker used {} CPU µs/req against {} with the default, for {} against {} \
             req/s, with p99 {:.2} ms against {:.2} ms; rmcp stateless JSON used {} CPU µs/req with one worker against \
             {} with the default.",
            r.plan.round_sessions,
            opt(Some(med(one, |x| x.mcpgw.server_us_per_req)), 1),
            opt(Some(med(default, |x| x.mcpgw.server_us_per_req)), 1),
            thousands(med(one, |x| Some(x.mcpgw.rps))),
            thousands(med(default, |x| Some(x.mcpgw.rps))),
            med(one, |x| Some(x.mcpgw.latency.p99_ms)),
            med(default, |x| Some(x.mcpgw.latency.p99_ms)),
            opt(Some(med(one, |x| x.rmcp_stateless.server_us_per_req)), 1),
            opt(Some(med(default, |x| x.rmcp_stateless.server_us_per_req)), 1),
        );
    }
    let other = median(r.throughput.iter().map(|t| t.result.other_cores).collect());
    let _ = writeln!(
        md,
        "- **Noise.** The median *other cores* over the round-trip runs is {other:.2}{}.\n",
        if other > 0.2 {
            ": **something else was using the CPU during this run**; CPU µs/req and latency are inflated, re-run on a \
             quiet machine"
        } else {
            " (a quiet machine)"
        }
    );
}

/// One row per alternating round: mcpgw, rmcp stateless JSON, and their ratios.
fn rounds_table(md: &mut String, rounds: &[Round]) {
    let _ = writeln!(
        md,
        "| round | mcpgw req/s | mcpgw p99 ms | mcpgw CPU µs/req | rmcp req/s | rmcp p99 ms | rmcp CPU µs/req | req/s ratio | req/CPU-s ratio |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for round in rounds {
        let (g, s) = (&round.mcpgw, &round.rmcp_stateless);
        let cpu = g.req_per_server_cpu_s.zip(s.req_per_server_cpu_s).map(|(g, s)| g / s);
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {} | {} | {:.3} | {} | {:.2} | {} |",
            round.round,
            thousands(g.rps),
            g.latency.p99_ms,
            opt(g.server_us_per_req, 1),
            thousands(s.rps),
            s.latency.p99_ms,
            opt(s.server_us_per_req, 1),
            g.rps / s.rps,
            opt(cpu, 2)
        );
    }
    let _ = writeln!(md);
}

fn markdown(r: &Report, json_path: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `{}` (`crates/bench`, `mcpgw-bench run`) on {}, in {:.0} s{}. Do not edit by hand: run it again. \
         The raw numbers are in `{}`.\n",
        r.command,
        r.generated_utc,
        r.elapsed_s,
        if r.quick { " — a **quick smoke run** (short windows, small sizes): not the reference numbers" } else { "" },
        json_path.display()
    );

    let _ = writeln!(md, "## Machine and versions\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} × {} |", r.machine.nproc, r.machine.cpu_model);
    let _ = writeln!(md, "| memory | {:.1} GiB |", r.machine.memory_gib);
    let _ = writeln!(md, "| kernel | Linux {} |", r.machine.kernel);
    let _ = writeln!(md, "| open-file limit | {} |", r.machine.open_files_limit);
    let _ = writeln!(md, "| load average at the start | {} |", r.machine.load_average_at_start);
    let _ = writeln!(md, "| rustc | {} |", r.versions.rustc);
    let _ = writeln!(md, "| mcpgw | {}, commit {} |", r.versions.mcpgw, r.versions.mcpgw_commit);
    let _ =
        writeln!(md, "| rmcp / hyper / tokio | {} / {} / {} |", r.versions.rmcp, r.versions.hyper, r.versions.tokio);
    for peer in &r.peers {
        let _ = writeln!(md, "| {} | {} |", peer.name, peer.version_cell());
    }
    let _ = writeln!(md, "| command | `{}` |\n", r.command);

    let _ = writeln!(md, "## How it measures\n");
    let _ = writeln!(
        md,
        "- **Everything on one machine, over loopback.** The load generator (`mcpgw-bench`, a hyper 1 HTTP/1.1 client) \
         runs on a **current-thread tokio runtime, so it uses one core**; it is not pinned. Each server runs as its own \
         process on a multi-thread runtime with one worker per core ({} here), as mcpgw does by default (the `, 1 thread` \
         rows excepted, below), so the servers and the load generator share the cores. Numbers from a {}-core box are about the relative cost of the servers, \
         not their absolute capacity.",
        r.machine.nproc, r.machine.nproc
    );
    let _ = writeln!(
        md,
        "- **Round trips**: each session opens its own keep-alive connection, sends `initialize` and \
         `notifications/initialized`, then `tools/call echo {{\"text\":\"hello\"}}` back to back (a closed loop, one \
         request in flight per session) for {:.1} s of warm-up and {:.1} s measured; only calls that start and end inside the \
         measured window count. Latency is from writing the request to reading the response (for event streams: the \
         event carrying the response; the stream is then read to its end). With many sessions the single-threaded \
         client adds its own queueing to the latency.",
        r.plan.warmup_s, r.plan.duration_s
    );
    let _ = writeln!(
        md,
        "- **Transports**: Streamable HTTP with `Accept: application/json` (JSON replies) or `Accept: text/event-stream` \
         (SSE replies), protocol 2025-11-25; legacy HTTP+SSE (2024-11-05: `GET /sse`, POSTs to the `endpoint` on a \
         second connection, responses on the event stream). rmcp's server refuses a POST whose `Accept` does not name \
         both types, so its runs send `{ACCEPT_BOTH}`."
    );
    let _ = writeln!(
        md,
        "- **Baselines**, in the same run: rmcp {}'s `StreamableHttpService` serving mcpgw's built-in tools \
         (`mcpgw_core::upstream::builtin::Builtin`) under hyper via `TowerToHyperService`, in stateless JSON mode \
         (`legacy_session_mode=false`, `json_response=true`; a fresh handler per POST) and in session mode (rmcp's \
         defaults: SSE replies); and a bare hyper server that answers every request with a fixed `tools/call` result \
         (the machine's ceiling).",
        r.versions.rmcp
    );
    let _ = writeln!(
        md,
        "- **One worker thread**: the rows marked `, 1 thread` run the same server with one tokio worker thread: \
         `[server] worker_threads = 1` for mcpgw, `worker_threads(1)` on the runtime of rmcp stateless JSON. With \
         {} cores shared with the load generator, a second worker mostly costs cross-thread wakeups (docs/operations.md, \
         *Threads*, explains the setting). The targets are judged on the default configuration; the 1-thread rows are \
         the configuration docs/operations.md recommends for machines of one or two cores, and have target rows of \
         their own (*with worker_threads = 1*).",
        r.machine.nproc
    );
    let _ = writeln!(md, "{}", peers::how_it_measures(&r.peers));
    let _ = writeln!(
        md,
        "- **Server CPU**: utime + stime of the server process from `/proc/<pid>/stat`, read at the start and end of \
         the measured window (10 ms ticks). *CPU µs/req* is that CPU divided by the calls in the window; *req/CPU-s* \
         its inverse. This is the fairer comparison on a small box: closed-loop wall-clock throughput is capped by the \
         load generator sharing the cores. *Client cores* is the load generator's own CPU (near 1.00, the load \
         generator itself is the limit, as with the bare hyper server); *other cores* is every \
         other busy CPU second on the machine over the window (from `/proc/stat`: other processes, an upstream child, \
         and kernel work no process is charged for). A large *other* means something else was running: the run waits \
         up to 120 s for a quiet machine before it starts, and a round-trip run (other than through an upstream, \
         whose process counts as *other*) during which other work kept more than {NOISY} cores busy is measured \
         again, up to three attempts, keeping the quietest."
    );
    let _ = writeln!(
        md,
        "- **mcpgw configuration**: the built-in tools only, `[sessions] max_sessions = 200000`, \
         `idle_timeout_secs = 3600`, `legacy_grace_secs = 0` (a legacy session ends when its stream closes); `park_after_secs = 1` (an idle \
         session's MCP server parks after 1 s of quiet, instead of the default 30 s, so the memory runs need not wait); everything \
         else default, including `info` logging (three log lines per session). It listens on `127.0.0.1:0`. \
         `{MCPGW_1}` adds `[server] worker_threads = 1`.\n"
    );

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | verdict |\n|---|---|---|");
    for v in &r.targets {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            v.target,
            v.measured,
            if v.met { format!("**met** ({})", v.margin) } else { format!("**missed** ({})", v.margin) }
        );
    }
    let _ = writeln!(md);

    reading_the_targets(&mut md, r);

    let _ = writeln!(md, "## Round trips (`tools/call echo`)\n");
    let _ = writeln!(
        md,
        "| sessions | server | transport | req/s | p50 ms | p99 ms | p99.9 ms | server cores | CPU µs/req | req/CPU-s | client cores | other cores | errors |"
    );
    let _ = writeln!(md, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.throughput {
        let x = &row.result;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {:.2} | {:.2} | {} |",
            x.sessions,
            row.server,
            row.transport,
            thousands(x.rps),
            x.latency.p50_ms,
            x.latency.p99_ms,
            x.latency.p999_ms,
            opt(x.server_cores, 2),
            opt(x.server_us_per_req, 1),
            x.req_per_server_cpu_s.map(thousands).unwrap_or_else(|| "–".into()),
            x.client_cores,
            x.other_cores,
            x.errors
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Ratios of mcpgw (Streamable HTTP, JSON) to rmcp stateless JSON, from the table above; *1 thread*: \
         `{MCPGW_1}` to `{RMCP_STATELESS_1}`:\n"
    );
    let _ = writeln!(
        md,
        "| sessions | req/s ratio | req/CPU-s ratio | 1 thread: req/s ratio | 1 thread: req/CPU-s ratio |\n\
         |---:|---:|---:|---:|---:|"
    );
    let ratios = |gw: &str, rmcp: &str, n: usize| {
        let (g, s) = (find(r, gw, Transport::StreamableJson, n)?, find(r, rmcp, Transport::StreamableJson, n)?);
        let cpu = g.req_per_server_cpu_s.zip(s.req_per_server_cpu_s).map(|(g, s)| g / s);
        Some((g.rps / s.rps, cpu))
    };
    for &n in &r.plan.sizes {
        if let Some((rps, cpu)) = ratios("mcpgw", "rmcp stateless JSON", n) {
            let (rps1, cpu1) = ratios(MCPGW_1, RMCP_STATELESS_1, n).map_or((None, None), |(r, c)| (Some(r), c));
            let _ = writeln!(md, "| {n} | {rps:.2} | {} | {} | {} |", opt(cpu, 2), opt(rps1, 2), opt(cpu1, 2));
        }
    }
    let _ = writeln!(md);

    let _ =
        writeln!(md, "## mcpgw against rmcp stateless JSON, alternating rounds ({} sessions)\n", r.plan.round_sessions);
    rounds_table(&mut md, &r.rounds);
    if !r.rounds_one_thread.is_empty() {
        let _ = writeln!(
            md,
            "The same rounds with one worker thread on both servers (`{MCPGW_1}` against `{RMCP_STATELESS_1}`), \
             measured in each round right after the pair above:\n"
        );
        rounds_table(&mut md, &r.rounds_one_thread);
    }

    let _ = writeln!(md, "## Session set-up\n");
    let _ = writeln!(
        md,
        "{} clients, each setting up sessions back to back for {:.1} s (after {:.1} s of warm-up): `initialize`, \
         `notifications/initialized`, one `tools/call echo`, then `DELETE` (Streamable HTTP) or closing the event stream \
         (legacy). A client keeps its POST connection from one session to the next; a legacy session opens a new \
         connection for its event stream. *Left* is what mcpgw's `/healthz` still counted 15 s later.\n",
        r.plan.setup_workers, r.plan.duration_s, r.plan.warmup_s
    );
    let _ = writeln!(
        md,
        "| server | transport | sessions/s | p50 ms | p99 ms | server cores | CPU µs/session | client cores | other cores | errors | left |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.setup {
        let x = &row.result;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} | {:.3} | {} | {} | {:.2} | {:.2} | {} | {} |",
            row.server,
            row.transport,
            thousands(x.per_second),
            x.latency.p50_ms,
            x.latency.p99_ms,
            opt(x.server_cores, 2),
            opt(x.server_us_per_session, 0),
            x.client_cores,
            x.other_cores,
            x.errors,
            row.left_after.map(|l| l.to_string()).unwrap_or_else(|| "–".into())
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Idle sessions: memory\n");
    let _ = writeln!(
        md,
        "A fresh server per row. The baseline is its RSS (`VmRSS` of `/proc/<pid>/status`) after one session was opened, \
         used and closed; then idle sessions are opened ({} clients; `initialize` and `notifications/initialized` each) \
         and held. An idle Streamable HTTP session holds no connection; an idle legacy session holds its open event \
         stream (one TCP connection each). For mcpgw the RSS is read once `/healthz` shows every held session parked \
         (its MCP server let go after `park_after_secs` of quiet; the next message starts a new one) and the RSS has \
         stopped falling (jemalloc purges freed pages in the background); for rmcp, 1 s after the last session opened. \
         *Per session* is (RSS − baseline) / sessions; *marginal* is between the two \
         counts. Afterwards every held session makes one `tools/call` (*failed*), the legacy streams are closed \
         (*released*: until `/healthz` shows none) and the server gets SIGTERM with the remaining sessions live.\n",
        r.plan.idle_workers
    );
    let _ = writeln!(
        md,
        "| server | transport | baseline MiB | sessions | RSS MiB | per session KiB | marginal KiB | opened in s | /healthz | open errors | failed | released s | SIGTERM |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in &r.memory {
        for (i, p) in row.points.iter().enumerate() {
            let last = i + 1 == row.points.len();
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {:.1} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} |",
                row.server,
                row.transport,
                row.baseline_rss as f64 / 1048576.0,
                thousands(p.opened as f64),
                p.rss as f64 / 1048576.0,
                p.bytes_per_session / 1024.0,
                if last { opt(row.marginal_bytes_per_session.map(|b| b / 1024.0), 1) } else { "".into() },
                p.open_secs,
                p.live.map(|l| l.to_string()).unwrap_or_else(|| "–".into()),
                if last { row.open_errors.to_string() } else { "".into() },
                if last { row.failed_checks.to_string() } else { "".into() },
                if last { opt(row.released_secs, 2) } else { "".into() },
                if last && row.server == "mcpgw" {
                    format!("{} in {:.2} s", if row.stop_clean { "exit 0" } else { "not clean" }, row.stop_secs)
                } else {
                    "".into()
                },
            );
        }
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Latency mcpgw adds over calling the upstream directly\n");
    let _ = writeln!(
        md,
        "- **stdio**: the conformance fixture (`tests/fixture`, release build) as a `share = \"shared\"` stdio upstream of \
         mcpgw, called with `tools/call test_simple_text` over Streamable HTTP (JSON); against the same fixture started \
         as a child of the load generator and called through rmcp's own client over stdio (`N` callers share that one \
         client, as mcpgw's sessions share the upstream).\n\
         - **http**: rmcp's `StreamableHttpService` (session mode, serving the built-in tools) as a `share = \"shared\"` \
         http upstream of mcpgw, against the load generator calling it directly (rmcp replies with event streams).\n\
         - **competing gateways**: supergateway and mcp-proxy in front of the same fixture (*How it measures* has \
         their versions, modes and CPU accounting), called like mcpgw; *p50 added* is over the same direct stdio \
         round trip.\n\
         - The client→mcpgw hop is part of the *through mcpgw* numbers; the built-in echo rows of the round-trip table \
         are that hop alone.\n"
    );
    let _ = writeln!(
        md,
        "| upstream | path | sessions | req/s | p50 ms | p99 ms | p99.9 ms | p50 added | CPU µs/req of the process called | new upstream connections per call | errors |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &r.overhead {
        let x = &row.result;
        if let Some(why) = row.peer.as_ref().and_then(|p| p.not_measured.as_deref()) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | not measured: {why} |  |  |  |  |  |  |  |",
                row.upstream, row.path, x.sessions
            );
            continue;
        }
        let direct = r
            .overhead
            .iter()
            .find(|o| o.upstream == row.upstream && o.path.starts_with("direct") && o.result.sessions == x.sessions);
        let added = match direct {
            Some(d) if !row.path.starts_with("direct") && d.result.latency.p50_ms > 0.0 => format!(
                "+{:.3} ms ({})",
                x.latency.p50_ms - d.result.latency.p50_ms,
                pct(x.latency.p50_ms / d.result.latency.p50_ms - 1.0)
            ),
            _ => "".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} |",
            row.upstream,
            row.path,
            x.sessions,
            thousands(x.rps),
            x.latency.p50_ms,
            x.latency.p99_ms,
            x.latency.p999_ms,
            added,
            row.peer.as_ref().map(|p| p.cpu_cell(x.server_us_per_req)).unwrap_or_else(|| opt(x.server_us_per_req, 1)),
            opt(row.upstream_connections_per_call, 2),
            x.errors
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Observations\n");
    if r.observations.is_empty() {
        let _ = writeln!(
            md,
            "No run had an error, mcpgw's session counts went back to zero whenever its clients had closed their \
             sessions, and mcpgw exited 0 on every SIGTERM."
        );
    } else {
        for o in &r.observations {
            let _ = writeln!(md, "- {o}");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    /// 64 sessions at `rps`, with `us` server CPU µs per request and a p99 of `p99` ms.
    fn run(rps: f64, us: f64, p99: f64) -> LoadResult {
        let mut result = LoadResult { sessions: 64, rps, ..LoadResult::default() };
        result.server_us_per_req = Some(us);
        result.req_per_server_cpu_s = Some(1e6 / us);
        result.latency.p99_ms = p99;
        result
    }

    fn row(server: &str, result: LoadResult) -> Row {
        Row {
            server: server.into(),
            transport: Transport::StreamableJson.label().into(),
            accept: String::new(),
            result,
        }
    }

    #[test]
    fn one_thread_targets_follow_the_default_ones() {
        let unknown = || "unknown".to_owned();
        let report = Report {
            generated_utc: unknown(),
            quick: false,
            command: unknown(),
            elapsed_s: 0.0,
            machine: Machine {
                nproc: 2,
                cpu_model: unknown(),
                memory_gib: 0.0,
                kernel: unknown(),
                open_files_limit: 0,
                load_average_at_start: unknown(),
            },
            versions: Versions {
                rustc: unknown(),
                mcpgw: unknown(),
                mcpgw_commit: unknown(),
                rmcp: unknown(),
                hyper: unknown(),
                tokio: unknown(),
            },
            plan: Plan::new(false),
            throughput: vec![row("mcpgw", run(30_000.0, 35.0, 4.0)), row(MCPGW_1, run(36_000.0, 25.0, 1.5))],
            rounds: vec![Round { round: 1, mcpgw: run(30_000.0, 35.0, 3.0), rmcp_stateless: run(31_000.0, 50.0, 4.0) }],
            rounds_one_thread: vec![Round {
                round: 1,
                mcpgw: run(36_000.0, 25.0, 1.9),
                rmcp_stateless: run(30_000.0, 40.0, 3.0),
            }],
            setup: Vec::new(),
            memory: Vec::new(),
            overhead: Vec::new(),
            peers: Vec::new(),
            targets: Vec::new(),
            observations: Vec::new(),
        };
        let v = verdicts(&report);
        let one_thread = |i: usize| v[i].target.contains("worker_threads = 1");
        assert_eq!(v.len(), 6);
        assert_eq!((0..6).map(one_thread).collect::<Vec<_>>(), [false, true, false, true, false, true]);
        // CPU: 50/35 = 1.43× missed, 40/25 = 1.6× met; wall clock: 0.97× missed, 1.2× met.
        assert_eq!(v.iter().map(|v| v.met).collect::<Vec<_>>(), [false, true, false, true, false, true]);
        assert!(v[1].measured.starts_with("1.60×"), "{}", v[1].measured);
        assert_eq!(v[1].margin, "+7% against 1.5×");
        // p99 medians of the matrix run and the round: (4 + 3) / 2 and (1.5 + 1.9) / 2.
        assert!(v[4].measured.starts_with("3.50 ms, median of 2 runs"), "{}", v[4].measured);
        assert!(v[5].measured.starts_with("1.70 ms, median of 2 runs"), "{}", v[5].measured);
        assert_eq!(v[5].margin, "0.30 ms to spare");
        let md = markdown(&report, Path::new("results.json"));
        assert!(md.contains("The same rounds with one worker thread on both servers"));
        assert!(md.contains("**One worker thread.**"));
    }
}
