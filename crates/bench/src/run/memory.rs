//! Idle sessions and memory: sessions opened and held on a fresh server, its RSS over the
//! baseline at each count, then one call on each, and (mcpgw) their release and a SIGTERM.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use crate::client::{Profile, Target, Transport, get_json};
use crate::launch::{start_mcpgw, start_self, target_of, wait_sessions};
use crate::load::{self, Held};
use crate::procs::{self, Proc};

use super::bench::{Bench, Profiles};
use super::report::{MemPoint, MemoryRow};

/// One row per kind of idle session: mcpgw on both transports, rmcp's session mode.
pub(crate) async fn memory(bench: &mut Bench, mcpgw: &Path, builtin: &Path, p: &Profiles) -> Result<Vec<MemoryRow>> {
    let mut memory = Vec::new();
    for (server, profile) in [("mcpgw", &p.json), ("mcpgw", &p.legacy), ("rmcp session mode", &p.rmcp_sse)] {
        let row = if server == "mcpgw" {
            let proc = start_mcpgw("mcpgw", mcpgw, builtin).await?;
            memory_run(bench, proc, server, profile, true).await?
        } else {
            let proc = start_self("rmcp session mode", &["serve-rmcp"])?;
            memory_run(bench, proc, server, profile, false).await?
        };
        memory.push(row);
    }
    Ok(memory)
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
