//! `mcpgw`: an MCP gateway serving legacy HTTP+SSE and Streamable HTTP on one port, with
//! a fresh MCP server for every client session.
//!
//! # Layout
//! - `config`: the TOML configuration, validated.
//! - `registry`: the one map of live sessions of both kinds, and the idle reaper.
//! - `router`: path → MCP transport or operational endpoint.
//! - `server`: the listener, connections and the ordered shutdown.

mod config;
mod registry;
mod router;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use mcpgw_core::{ServerFactory, Upstreams};
use mcpgw_transport::Edge;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::registry::Registry;
use crate::router::App;
use crate::server::ServeOptions;

/// The configuration file used when `--config` is not given and it exists; otherwise the
/// embedded default applies.
const DEFAULT_CONFIG_PATH: &str = "config/mcpgw.toml";

/// Exit status for a configuration that cannot be used (as linkerd and sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// An MCP gateway: legacy HTTP+SSE and Streamable HTTP on one port.
#[derive(Debug, Parser)]
#[command(name = "mcpgw", version, about)]
struct Cli {
    /// The configuration file (TOML). Default: config/mcpgw.toml if present, else the
    /// embedded default.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address and port to listen on, overriding the configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let path = cli.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let mut config = match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mcpgw: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgw: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Before anything can announce that we are up: a SIGTERM that arrives right after the
    // listening line must start the drain, not kill the process.
    let signals = Signals::install()?;
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr().context("the listener has no local address")?;
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();

    let upstreams = Upstreams::start(config.upstreams.clone(), shutdown.child_token(), &tasks);
    let registry = Registry::new(ServerFactory::new(upstreams, tasks.clone()), config.limits);
    let edge = Edge::new(registry.clone(), config.edge.clone(), tasks.clone());
    let app = Arc::new(App::new(edge, config.paths.clone(), registry.clone()));
    tasks.spawn(registry.clone().run_reaper(config.idle_timeout, shutdown.clone()));

    tracing::info!(
        "mcpgw {} listening on http://{local} (Streamable HTTP: http://{local}{}, legacy SSE: http://{local}{})",
        env!("CARGO_PKG_VERSION"),
        config.paths.mcp,
        config.paths.sse,
    );
    let options =
        ServeOptions { header_read_timeout: config.header_read_timeout, drain_deadline: Duration::from_secs(10) };
    let server = tokio::spawn(server::serve(listener, app, options, shutdown.clone(), tasks.clone()));

    signals.wait().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    server.await.context("the listener task failed")?;
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.is_err() {
        tracing::warn!("some tasks were still running at exit");
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (what systemd and Kubernetes send) and SIGINT (Ctrl-C), installed once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// Waits for either signal.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
