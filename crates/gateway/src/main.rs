//! `mcpgw`: an MCP gateway serving legacy HTTP+SSE and Streamable HTTP on one port, with
//! a fresh MCP server for every client session, in front of stdio and remote upstreams.
//!
//! # Layout
//! - `config`: the TOML configuration (and desktop-client JSON), validated.
//! - `caller`: an identity as the policy reads it.
//! - `registry`: the one map of live sessions of both kinds, and the idle reaper.
//! - `cluster`: `[cluster]`, sessions shared with other instances through a store.
//! - `router`: path → MCP transport or operational endpoint (`/healthz`, `/readyz`,
//!   `/metrics`).
//! - `server`: the listener, connections and their orderly close.
//! - `activity`: when the last client request came, for a cluster instance's stop.
//! - `systemd`: readiness, status, watchdog and socket activation.
//! - `metrics`: the Prometheus metrics.
//! - `io`: byte counting on connections.
//! - `own_wake`: a connection's wake-ups of itself, taken in place rather than by a thread.
//! - `log`: the log's writer, which writes lines to stderr in batches.
//! - `audit_log`: the audit line of every tool call, written to that writer.

mod activity;
mod audit_log;
mod caller;
mod cluster;
mod config;
mod fetch;
mod io;
mod log;
mod metrics;
mod own_wake;
mod registry;
mod router;
mod server;
mod systemd;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mcpgw_core::audit::{Audit, CallObserver};
use mcpgw_core::{Policies, ServerFactory, Upstreams};
use mcpgw_transport::Edge;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// jemalloc rather than the system allocator: it hands the pages of freed memory back to
/// the system (a background thread purges them; `.cargo/config.toml` sets how soon). glibc
/// kept them whenever live allocations sat between them, so the memory parked sessions
/// freed stayed in the RSS. (mimalloc, tried too, kept even more.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use crate::audit_log::AuditLog;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::router::App;
use crate::server::ServeOptions;

/// The configuration file used when `--config` is not given and it exists; otherwise the
/// embedded default applies.
const DEFAULT_CONFIG_PATH: &str = "config/mcpgw.toml";

/// Exit status for a configuration that cannot be used (as linkerd and sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// At shutdown, event-stream clients are told to wait this long before reconnecting.
const RETRY_HINT: Duration = Duration::from_secs(2);

/// How long connections may take to close once every session has ended.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// In a cluster, a shutting-down instance closes its listener once no client request (a
/// probe is none) has come for this long (see `activity`).
const CLUSTER_QUIET: Duration = Duration::from_secs(1);

/// An MCP gateway: legacy HTTP+SSE and Streamable HTTP on one port.
#[derive(Debug, Parser)]
#[command(name = "mcpgw", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file: TOML, or the `mcpServers` JSON of desktop clients (`.json`).
    /// Default: config/mcpgw.toml if present, else the embedded default.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address and port to listen on, overriding the configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// This instance's cluster node tag (4 hex digits), overriding `[cluster] node`: one
    /// configuration for every instance (`mcpgw@%i.service`).
    #[arg(long, value_name = "TAG")]
    node: Option<String>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a configuration file and exits: 0 when it is valid, 64 with the error when not.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return check_config(file);
    }
    let (log, audit_log) = match init_tracing(cli.log_format) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("mcpgw: cannot start the log's writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ended = serve(&cli, audit_log);
    // The log's last lines go out before the closing error, so that it reads last.
    drop(log);
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("mcpgw: {message}");
            code
        }
    }
}

/// Runs the gateway until it stops; an error is the exit code and what to print.
fn serve(cli: &Cli, audit_log: Option<AuditLog>) -> Result<(), (ExitCode, String)> {
    let bad_config = |e: String| (ExitCode::from(EXIT_CONFIG), format!("bad configuration: {e}"));
    let path = cli.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let mut config = Config::load(path.as_deref()).map_err(|e| bad_config(e.to_string()))?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(node) = &cli.node {
        match (config::parse_node(node), config.cluster.as_mut()) {
            (Ok(tag), Some(cluster)) => {
                cluster.node = tag;
                cluster.node_derived = false;
            }
            (Err(e), _) => return Err(bad_config(e)),
            (Ok(_), None) => return Err(bad_config("--node needs a [cluster] section".to_owned())),
        }
    }
    let inherited = systemd::inherited_listener()
        .map_err(|e| (ExitCode::FAILURE, format!("cannot use the socket passed by the service manager: {e}")))?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("mcpgw-worker");
    if let Some(threads) = config.worker_threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.build().map_err(|e| (ExitCode::FAILURE, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(config, path, inherited, audit_log)).map_err(|e| (ExitCode::FAILURE, format!("{e:#}")))
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(Some(file)) {
        Ok(config) => {
            let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
            println!("{}: ok ({} upstreams: {})", file.display(), names.len(), names.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Sets up logging to stderr (in batches: `log`); returns the guard of its writer, and
/// the audit log writing to it unless the filter leaves the audit lines out.
fn init_tracing(format: LogFormat) -> std::io::Result<(log::Log<std::io::Stderr>, Option<AuditLog>)> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // rmcp logs every message at info; its warnings are what an operator needs.
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = log::batched(std::io::stderr())?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer.clone()).with_ansi(ansi);
    let (fmt, layout) = match format {
        LogFormat::Text => (fmt.boxed(), audit_log::Layout::Text { ansi }),
        LogFormat::Json => (fmt.json().boxed(), audit_log::Layout::Json),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| !is_rmcp_error_answer(meta)))
        .with(fmt)
        .init();
    Ok((guard, AuditLog::if_enabled(writer, layout)))
}

/// rmcp's `response error` warning, which it logs for every JSON-RPC error its service
/// answers with: every client that calls an unknown tool, every refused upstream request.
/// A peer's mistake is not an operator's warning, and mcpgw logs the refusals that matter
/// itself. It is the one WARN event of target `rmcp::service` with an `error` field.
fn is_rmcp_error_answer(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_event()
        && meta.target() == "rmcp::service"
        && *meta.level() == tracing::Level::WARN
        && meta.fields().field("error").is_some()
}

async fn run(
    config: Config,
    path: Option<PathBuf>,
    inherited: Option<std::net::TcpListener>,
    audit_log: Option<AuditLog>,
) -> anyhow::Result<()> {
    // Before anything can announce that we are up: a SIGTERM that arrives right after the
    // listening line must start the drain, not kill the process.
    let mut signals = Signals::install()?;
    let (listener, activated) = systemd::listener(inherited, config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr().context("the listener has no local address")?;
    let tasks = TaskTracker::new();
    // `stop` ends everything long-lived (shared upstreams, reaper, watchdog) at the end of
    // the drain; `stop_accepting` starts it.
    let stop = CancellationToken::new();
    let stop_accepting = CancellationToken::new();
    let sessions_ended = CancellationToken::new();

    let metrics = Metrics::new();
    // Told of every tool call: the audit line (when the log has it), then the metrics.
    let observers: Vec<Arc<dyn CallObserver>> =
        audit_log.map(|log| Arc::new(log) as Arc<dyn CallObserver>).into_iter().chain([metrics.clone() as _]).collect();
    let upstreams = Upstreams::start(config.upstreams.clone(), stop.child_token(), &tasks);
    // One policy holder across reloads: a new policy applies to the live sessions too.
    let policies = Policies::new(config.policy.clone());
    let factory = ServerFactory::new(upstreams.clone(), tasks.clone())
        .mrtr(config.mrtr.clone())
        .policies(policies.clone())
        .audit(audit(&config, &observers));
    let cluster = match &config.cluster {
        None => None,
        Some(c) => {
            let derived = if c.node_derived { " (derived from the host name)" } else { "" };
            match &c.store {
                Some(url) => {
                    let store = cluster::Store::connect(
                        url,
                        c.node,
                        &c.key_prefix,
                        config.idle_timeout,
                        config.limits.log_events,
                    )
                    .await
                    .with_context(|| format!("cannot reach the cluster's store at {url}"))?;
                    tracing::info!("cluster node {}{derived}; sessions shared through {url}", c.node);
                    Some(cluster::Cluster::new(store, metrics.clone()))
                }
                None => {
                    tracing::info!(
                        "cluster node {}{derived} without a store: the load balancer routes this node's sessions \
                         here, and they end with this instance",
                        c.node
                    );
                    None
                }
            }
        }
    };
    let node = config.cluster.as_ref().map(|c| c.node);
    let registry =
        Registry::new(factory, config.park_after, config.limits, config.caps, metrics.clone(), node, cluster);
    let edge = Edge::new(registry.clone(), config.edge.clone(), tasks.clone());
    let app =
        Arc::new(App::new(edge, config.paths.clone(), registry.clone(), metrics.clone(), config.cluster.is_some()));
    tasks.spawn(registry.clone().run_reaper(config.idle_timeout, stop.clone()));
    tasks.spawn(registry.clone().run_fence(stop.clone()));
    tasks.spawn(systemd::watchdog(stop.clone()));
    tasks.spawn(systemd::report_status(registry.clone(), stop.clone()));

    tracing::info!("{}", loaded(path.as_deref(), &config));
    tracing::info!(
        socket_activated = activated,
        "mcpgw {} listening on http://{local} (Streamable HTTP: http://{local}{}, legacy SSE: http://{local}{})",
        env!("CARGO_PKG_VERSION"),
        config.paths.mcp,
        config.paths.sse,
    );
    let options = ServeOptions {
        header_read_timeout: config.header_read_timeout,
        max_header_bytes: config.max_header_bytes,
        close_deadline: CLOSE_DEADLINE,
    };
    let server = tokio::spawn(server::serve(
        listener,
        app.clone(),
        options,
        stop_accepting.clone(),
        sessions_ended.clone(),
        tasks.clone(),
    ));

    // Ready once the shared upstreams have started (or failed to: the others still serve).
    // A SIGHUP meanwhile is applied once ready, not lost.
    let startup = startup_limit(&config);
    let (mut stopped_early, mut reload_asked) = (false, false);
    {
        let mut ready = std::pin::pin!(upstreams.ready(startup));
        loop {
            tokio::select! {
                () = &mut ready => break,
                signal = signals.next() => match signal {
                    Received::Stop => {
                        stopped_early = true;
                        break;
                    }
                    Received::Reload => reload_asked = true,
                },
            }
        }
    }
    drop(upstreams);
    if !stopped_early {
        app.set_ready(true);
        systemd::ready(&systemd::status_line(registry.counts()));
        tracing::info!("ready");
        if reload_asked {
            tracing::info!("applying the reload asked for during start-up");
            reload(path.as_deref(), &registry, &policies, &observers, &tasks, &stop).await;
        }
        while signals.next().await == Received::Reload {
            reload(path.as_deref(), &registry, &policies, &observers, &tasks, &stop).await;
        }
    }

    tracing::info!("shutting down");
    systemd::stopping();
    app.set_ready(false);
    registry.close();
    if let Some(activity) = app.activity() {
        // Keep serving the sessions held here until the load balancer has seen /readyz
        // and stopped sending (new sessions and takeovers get 503 meanwhile, which it
        // retries elsewhere); only then close the listener.
        activity.quiet_for(CLUSTER_QUIET, config.drain_timeout).await;
    }
    stop_accepting.cancel();
    registry.hint_retry(RETRY_HINT);
    registry.complete_listeners();
    drain(&registry, config.drain_timeout).await;
    registry.end_all();
    registry.leave_cluster().await;
    stop.cancel();
    sessions_ended.cancel();
    server.await.context("the listener task failed")?;
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.is_err() {
        tracing::warn!("some tasks were still running at exit");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The start-up line saying which configuration runs: `configuration: FILE; upstreams: a
/// (builtin), b (stdio, shared)`. A new user sees at once whether their file was read.
fn loaded(path: Option<&Path>, config: &Config) -> String {
    let source = path.map_or_else(|| "the embedded default".to_owned(), |p| p.display().to_string());
    let upstreams: Vec<String> = config
        .upstreams
        .iter()
        .map(|u| match (&u.kind, u.share) {
            (mcpgw_core::UpstreamKind::Builtin, _) => format!("{} (builtin)", u.name),
            (kind, mcpgw_core::Share::Shared) => format!("{} ({}, shared)", u.name, kind.as_str()),
            (kind, mcpgw_core::Share::Session) => format!("{} ({}, one per session)", u.name, kind.as_str()),
        })
        .collect();
    let upstreams = if upstreams.is_empty() { "none".to_owned() } else { upstreams.join(", ") };
    let policy = match (config.policy.len(), config.policy.default_effect()) {
        (0, mcpgw_core::policy::Effect::Allow) => String::new(),
        (rules, default) => format!("; policy: {rules} rules, default {}", default.as_str()),
    };
    format!("configuration: {source}; upstreams: {upstreams}{policy}")
}

/// How long start-up waits for the shared upstreams: the longest of their connect timeouts.
fn startup_limit(config: &Config) -> Duration {
    config.upstreams.iter().map(|u| u.connect_timeout).max().unwrap_or(Duration::ZERO)
}

/// Lets calls in flight finish, for at most `deadline`.
async fn drain(registry: &Registry, deadline: Duration) {
    let give_up = tokio::time::Instant::now() + deadline;
    // Nothing announces "the last call finished" across sessions, so look again on a short
    // period; this runs once, at shutdown.
    let mut period = tokio::time::interval(Duration::from_millis(20));
    loop {
        let left = registry.in_flight();
        if left == 0 {
            return;
        }
        if tokio::time::Instant::now() >= give_up {
            tracing::warn!(calls = left, ?deadline, "calls still in flight at the drain deadline; ending them");
            return;
        }
        period.tick().await;
    }
}

/// Re-reads the configuration: new sessions get the new upstreams, live sessions keep
/// theirs; the new policy applies to every session at once (those it changes are told
/// their lists changed). A configuration that does not load changes nothing.
async fn reload(
    path: Option<&Path>,
    registry: &Registry,
    policies: &Arc<Policies>,
    observers: &[Arc<dyn CallObserver>],
    tasks: &TaskTracker,
    stop: &CancellationToken,
) {
    systemd::reloading();
    match Config::load(path) {
        Ok(config) => {
            let names: Vec<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
            let upstreams = Upstreams::start(config.upstreams.clone(), stop.child_token(), tasks);
            // No wait for the new shared upstreams: a session that needs one waits for it
            // itself, and a SIGTERM must not wait behind a slow start.
            let factory = ServerFactory::new(upstreams, tasks.clone())
                .mrtr(config.mrtr.clone())
                .policies(policies.clone())
                .audit(audit(&config, observers));
            registry.set_factory(factory);
            policies.replace(config.policy.clone(), tasks);
            tracing::info!(upstreams = ?names, policy_rules = config.policy.len(), "configuration reloaded; new sessions get these upstreams, every session the policy (other settings apply at restart)");
        }
        Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
    }
    systemd::ready(&systemd::status_line(registry.counts()));
}

/// How tool calls are audited: the configured log line, counted in the metrics.
fn audit(config: &Config, observers: &[Arc<dyn CallObserver>]) -> Audit {
    Audit { arguments: config.audit_arguments, observers: observers.to_vec() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// SIGTERM (what systemd and Kubernetes send) or SIGINT (Ctrl-C).
    Stop,
    /// SIGHUP (`systemctl reload`).
    Reload,
}

/// The signals mcpgw acts on, installed once at start.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    /// The next signal.
    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.term.recv() => Received::Stop,
            _ = self.int.recv() => Received::Stop,
            _ = self.hup.recv() => Received::Reload,
        }
    }
}
