//! Starting the servers under test: mcpgw on a configuration the harness writes, and this
//! binary's own baseline servers; and reading mcpgw's session count from `/healthz`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::Instant;

use crate::client::{Target, get_json, get_status};
use crate::procs::Proc;

/// mcpgw's configuration for a run: room for every session the runs open, sessions that
/// never idle out, legacy sessions that end with their stream, and idle sessions that park
/// after a second; then `upstreams` (TOML tables).
pub(crate) fn mcpgw_config(upstreams: &str) -> String {
    format!(
        "# Written by mcpgw-bench.\n[sessions]\nmax_sessions = 200000\nidle_timeout_secs = 3600\nlegacy_grace_secs = 0\npark_after_secs = 1\n\n{upstreams}"
    )
}

/// mcpgw's configuration on its built-in tools alone, with `threads` tokio workers (None: its
/// default, one per core).
pub(crate) fn builtin_config(threads: Option<usize>) -> String {
    let server = threads.map(|n| format!("[server]\nworker_threads = {n}\n\n")).unwrap_or_default();
    mcpgw_config(&format!("{server}[upstreams.builtin]\nkind = \"builtin\"\n"))
}

/// Starts mcpgw on `config` and waits until `/readyz` says its shared upstreams have started.
pub(crate) async fn start_mcpgw(name: &str, binary: &Path, config: &Path) -> Result<Proc> {
    start_mcpgw_with(name, binary, config, &[]).await
}

/// [`start_mcpgw`] with these environment variables (`MCPGW_LOG`) set.
pub(crate) async fn start_mcpgw_with(name: &str, binary: &Path, config: &Path, env: &[(&str, &str)]) -> Result<Proc> {
    start_mcpgw_at(name, binary, config, "127.0.0.1:0", env).await
}

/// [`start_mcpgw_with`] listening on `listen` (`IP:PORT`).
pub(crate) async fn start_mcpgw_at(
    name: &str,
    binary: &Path,
    config: &Path,
    listen: &str,
    env: &[(&str, &str)],
) -> Result<Proc> {
    let mut command = Command::new(binary);
    command.arg("--config").arg(config).args(["--listen", listen]);
    command.envs(env.iter().copied());
    let proc = Proc::start(name, command)?;
    let target = target_of(&proc)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get_status(&target, "/readyz").await.ok() == Some(200) {
            return Ok(proc);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{name} was not ready within 30 s; its log:\n{}", proc.log_tail(30).join("\n"))
}

/// This binary with `args` (`serve-rmcp`, `serve-hyper`): a baseline server.
pub(crate) fn start_self(name: &str, args: &[&str]) -> Result<Proc> {
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

/// Waits up to `limit` for mcpgw's session count to satisfy `done`; the last count seen.
pub(crate) async fn wait_sessions(
    target: &Target,
    limit: Duration,
    done: impl Fn((u64, u64)) -> bool,
) -> Option<(u64, u64)> {
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
