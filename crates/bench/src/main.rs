//! `mcpgw-bench`: mcpgw's benchmark harness.
//!
//! - `run` is `make bench`: it starts mcpgw, the baseline servers and (when installed) the
//!   competing gateways itself, measures them and writes `target/bench/results.json` and
//!   `docs/benchmarks.md` (docs/benchmarks.md says what is measured and how).
//! - `load`, `rate`, `setup` and `idle` are the load generator on its own, against any loopback base
//!   URL; each prints one JSON object.
//! - `compare` is `make bench-compare`: two mcpgw binaries on the same rows, in alternating
//!   rounds, their medians side by side (target/bench/compare.md).
//! - `profile` is `make profile`: mcpgw under the `load` closed loop, sampled by `perf`
//!   (target/profile/summary.md says where its CPU goes per request).
//! - `serve-rmcp` and `serve-hyper` are the baseline servers `run` starts; `serve-issuer` is the
//!   token issuer of its auth rows.
//!
//! The load generator runs on a current-thread tokio runtime: one core, whatever the machine.

mod client;
mod clusters;
mod compare;
mod issuer;
mod launch;
mod load;
mod machine;
mod peers;
mod procs;
mod profile;
mod rate;
mod run;
mod servers;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::{Profile, Target, Transport};

#[derive(Parser)]
#[command(name = "mcpgw-bench", version, about = "mcpgw's benchmark harness and load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole benchmark (`make bench`): starts the servers, measures, writes the reports.
    Run(run::Options),
    /// Where mcpgw's CPU goes per request (`make profile`): perf samples it under load.
    Profile(profile::Options),
    /// Two mcpgw binaries on the same rows, in alternating rounds (`make bench-compare`).
    Compare(compare::Options),
    /// Sessions in a closed loop of `tools/call` against URL.
    Load {
        #[command(flatten)]
        client: ClientArgs,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Unmeasured seconds before.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// An open loop against URL: `tools/call`s sent at a fixed rate over the sessions, whatever
    /// the answers do; latency from when each was due.
    Rate {
        #[command(flatten)]
        client: ClientArgs,
        /// Requests per second, all sessions together.
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 64)]
        sessions: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Unmeasured seconds before.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// Sessions set up back to back (initialize, initialized, one call, close) against URL.
    Setup {
        #[command(flatten)]
        client: ClientArgs,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        workers: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Unmeasured seconds before.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// Opens idle sessions against URL and holds them; reports the server's RSS if --pid.
    Idle {
        #[command(flatten)]
        client: ClientArgs,
        /// Sessions to open.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Seconds to hold them before checking each with one call.
        #[arg(long, default_value_t = 1.0)]
        hold: f64,
    },
    /// rmcp's StreamableHttpService over mcpgw's built-in tools (a baseline).
    ServeRmcp {
        #[command(flatten)]
        serve: ServeArgs,
        /// Stateless JSON mode (`legacy_session_mode=false`, `json_response=true`); else session mode.
        #[arg(long)]
        stateless: bool,
    },
    /// A bare hyper server answering a fixed JSON-RPC result (the machine's ceiling).
    ServeHyper {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// A loopback token issuer (metadata, JWKS, ES256 access tokens) for the auth rows.
    ServeIssuer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[command(flatten)]
        grant: issuer::Grant,
        /// Exit after this many seconds.
        #[arg(long, default_value_t = 3600)]
        max_secs: u64,
    },
}

#[derive(Args)]
struct ClientArgs {
    /// The server's base URL, `http://IP:PORT` (loopback only).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum, default_value = "streamable-json")]
    transport: Transport,
    /// `Accept` on Streamable HTTP POSTs (default: application/json for streamable-json,
    /// text/event-stream for streamable-sse; rmcp wants both).
    #[arg(long)]
    accept: Option<String>,
    #[arg(long, default_value = "/mcp")]
    mcp_path: String,
    #[arg(long, default_value = "/sse")]
    sse_path: String,
    /// The tool each round trip calls.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// Its arguments (a JSON object).
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    arguments: String,
    /// The server's pid, to read its CPU time (and RSS) from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Send `Authorization: Bearer <TOKEN>` on every request (`serve-issuer`'s `/token` mints one).
    #[arg(long, value_name = "TOKEN")]
    bearer: Option<String>,
}

impl ClientArgs {
    fn resolve(&self) -> Result<(Target, Profile)> {
        let target = Target::parse(&self.url, &self.mcp_path, &self.sse_path)?;
        let arguments: Value = serde_json::from_str(&self.arguments)?;
        let mut profile = Profile::new(self.transport, &self.tool, &arguments);
        if let Some(accept) = &self.accept {
            profile = profile.with_accept(accept)?;
        }
        if let Some(token) = &self.bearer {
            profile = profile.with_bearer(token)?;
        }
        Ok((target, profile))
    }
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Runtime worker threads (default: one per core, as mcpgw).
    #[arg(long)]
    workers: Option<usize>,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn current_thread<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(fut)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(options) => current_thread(run::run(options)),
        Command::Profile(options) => current_thread(profile::run(options)),
        Command::Compare(options) => current_thread(compare::run(options)),
        Command::Load { client, sessions, duration, warmup } => current_thread(async move {
            let (target, profile) = client.resolve()?;
            let result =
                load::closed_loop(&target, &profile, sessions, secs(warmup), secs(duration), client.pid).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }),
        Command::Rate { client, rate, sessions, duration, warmup } => current_thread(async move {
            let (target, profile) = client.resolve()?;
            let result =
                rate::open_loop(&target, &profile, sessions, rate, secs(warmup), secs(duration), client.pid.into())
                    .await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }),
        Command::Setup { client, workers, duration, warmup } => current_thread(async move {
            let (target, profile) = client.resolve()?;
            let result = load::setup_rate(&target, &profile, workers, secs(warmup), secs(duration), client.pid).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }),
        Command::Idle { client, sessions, hold } => current_thread(async move {
            procs::raise_nofile();
            let (target, profile) = client.resolve()?;
            let before = client.pid.and_then(procs::rss_bytes);
            let mut held = load::Held::default();
            load::hold(&target, &profile, &mut held, sessions, 64).await;
            tokio::time::sleep(secs(hold)).await;
            let after = client.pid.and_then(procs::rss_bytes);
            let opened = held.sessions.len();
            let failed_checks = load::check_held(&target, &profile, &mut held, 64).await;
            let per_session = before.zip(after).map(|(b, a)| (a as f64 - b as f64) / opened.max(1) as f64);
            let report = json!({
                "sessions": sessions, "opened": opened, "open_errors": held.errors,
                "failed_checks": failed_checks, "first_error": held.first_error,
                "rss_before": before, "rss_after": after, "bytes_per_session": per_session,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }),
        Command::ServeRmcp { serve, stateless } => {
            servers::serve_rmcp(serve.listen, stateless, serve.workers, Duration::from_secs(serve.max_secs))
        }
        Command::ServeHyper { serve } => {
            servers::serve_hyper(serve.listen, serve.workers, Duration::from_secs(serve.max_secs))
        }
        Command::ServeIssuer { listen, grant, max_secs } => {
            issuer::serve_issuer(listen, grant, Duration::from_secs(max_secs))
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgw-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
