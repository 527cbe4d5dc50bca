//! The measurements: closed-loop round trips, session set-up rate, idle sessions held, and the
//! direct stdio path through rmcp's client.
//!
//! Each run first opens its sessions, then lets them loop for `warmup + duration`; only
//! round trips that start and end inside the measured window count. Every loop is bounded by a
//! deadline and a count.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient};
use rmcp::transport::TokioChildProcess;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{Conn, OP_TIMEOUT, Parked, Profile, Session, Target, within};
use crate::procs;

/// Sessions opened (or checked) at once.
const OPEN_CONCURRENCY: usize = 64;
/// The most round trips one session makes in one run.
const MAX_CALLS: u64 = 50_000_000;
/// The most failed attempts in a run before it gives up.
const MAX_ERRORS: usize = 1_000;

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: usize,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    /// From durations in nanoseconds (nearest-rank percentiles).
    pub(crate) fn of(mut nanos: Vec<u64>) -> Latency {
        if nanos.is_empty() {
            return Latency::default();
        }
        nanos.sort_unstable();
        let n = nanos.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            nanos[rank - 1] as f64 / 1e6
        };
        Latency {
            samples: n,
            mean_ms: nanos.iter().map(|&v| v as f64).sum::<f64>() / n as f64 / 1e6,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: nanos[n - 1] as f64 / 1e6,
        }
    }
}

/// CPU used by the server and by this process over the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Cpu {
    /// Seconds of wall clock between the two samples.
    pub(crate) window_s: f64,
    /// The server's utime + stime over the window, in seconds (None: no pid).
    pub(crate) server_s: Option<f64>,
    /// This load generator's.
    pub(crate) client_s: f64,
    /// Every CPU's busy time (`/proc/stat`), all processes.
    pub(crate) machine_s: f64,
    /// Each process beside the server's ([`Watched::beside`], in order); None: unreadable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) beside_s: Vec<Option<f64>>,
}

/// The processes whose CPU a run reads: the server's, summed (one process, or every instance
/// of a cluster), and processes beside it, each read on its own and counted neither as the
/// server's nor as other work (a load balancer, a store).
#[derive(Clone, Debug, Default)]
pub(crate) struct Watched {
    pub(crate) server: Vec<u32>,
    pub(crate) beside: Vec<u32>,
}

impl From<Option<u32>> for Watched {
    fn from(pid: Option<u32>) -> Watched {
        Watched { server: pid.into_iter().collect(), beside: Vec::new() }
    }
}

/// One reading: when, the server's CPU, this process's CPU, the machine's busy time, and the
/// CPU of each process beside the server.
type Sample = (Instant, Option<f64>, f64, f64, Vec<Option<f64>>);

impl Cpu {
    fn sample(watched: &Watched) -> Sample {
        // The server's CPU is known only when every one of its processes could be read.
        let server = match watched.server.is_empty() {
            true => None,
            false => watched.server.iter().map(|&pid| procs::cpu_secs(pid)).sum::<Option<f64>>(),
        };
        (
            Instant::now(),
            server,
            procs::cpu_secs(std::process::id()).unwrap_or(0.0),
            procs::machine_busy_secs().unwrap_or(0.0),
            watched.beside.iter().map(|&pid| procs::cpu_secs(pid)).collect(),
        )
    }

    fn between(a: Sample, b: Sample) -> Cpu {
        Cpu {
            window_s: (b.0 - a.0).as_secs_f64(),
            server_s: a.1.zip(b.1).map(|(a, b)| b - a),
            client_s: b.2 - a.2,
            machine_s: b.3 - a.3,
            beside_s: a.4.into_iter().zip(b.4).map(|(a, b)| a.zip(b).map(|(a, b)| b - a)).collect(),
        }
    }

    /// A task that reads the CPU at `start` and at `end` (the measured window).
    pub(crate) fn probe(start: Instant, end: Instant, watched: Watched) -> tokio::task::JoinHandle<Cpu> {
        tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let a = Cpu::sample(&watched);
            tokio::time::sleep_until(end).await;
            Cpu::between(a, Cpu::sample(&watched))
        })
    }

    /// The cores busy over the window, and the server's CPU microseconds per unit of work when
    /// `per_second` units were done.
    pub(crate) fn shares(&self, per_second: f64) -> Shares {
        let per_window = |v: f64| (self.window_s > 0.0).then(|| v / self.window_s);
        let server = self.server_s.filter(|_| self.window_s > 0.0);
        Shares {
            server_cores: server.and_then(per_window),
            server_us_per: server
                .filter(|&s| s > 0.0 && per_second > 0.0)
                .map(|s| s / (per_second * self.window_s) * 1e6),
            client_cores: per_window(self.client_s).unwrap_or(0.0),
            other_cores: self.other_cores(),
        }
    }

    /// Cores busy with anything but the server, the processes beside it and the load
    /// generator (other processes, kernel softirq work, an upstream child).
    pub(crate) fn other_cores(&self) -> f64 {
        if self.window_s <= 0.0 {
            return 0.0;
        }
        let beside: f64 = self.beside_s.iter().flatten().sum();
        ((self.machine_s - self.server_s.unwrap_or(0.0) - beside - self.client_s) / self.window_s).max(0.0)
    }
}

/// What [`Cpu::shares`] works out.
pub(crate) struct Shares {
    pub(crate) server_cores: Option<f64>,
    pub(crate) server_us_per: Option<f64>,
    pub(crate) client_cores: f64,
    pub(crate) other_cores: f64,
}

/// A closed-loop run.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct LoadResult {
    pub(crate) sessions: usize,
    pub(crate) sessions_opened: usize,
    pub(crate) duration_s: f64,
    pub(crate) requests: usize,
    /// Successful calls, warm-up included.
    pub(crate) calls_total: usize,
    pub(crate) rps: f64,
    pub(crate) latency: Latency,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: Cpu,
    /// Server CPU cores busy during the window.
    pub(crate) server_cores: Option<f64>,
    /// Server CPU microseconds per round trip.
    pub(crate) server_us_per_req: Option<f64>,
    /// Round trips per second of server CPU.
    pub(crate) req_per_server_cpu_s: Option<f64>,
    /// Load generator CPU cores busy during the window.
    pub(crate) client_cores: f64,
    /// Cores busy with anything else (see [`Cpu::other_cores`]).
    pub(crate) other_cores: f64,
}

impl LoadResult {
    fn finish(mut self, nanos: Vec<u64>, duration: Duration, cpu: Cpu) -> LoadResult {
        self.duration_s = duration.as_secs_f64();
        self.requests = nanos.len();
        self.rps = nanos.len() as f64 / self.duration_s;
        self.latency = Latency::of(nanos);
        let shares = cpu.shares(self.rps);
        self.server_cores = shares.server_cores;
        self.server_us_per_req = shares.server_us_per;
        self.req_per_server_cpu_s = shares.server_us_per.map(|us| 1e6 / us);
        self.client_cores = shares.client_cores;
        self.other_cores = shares.other_cores;
        self.cpu = cpu;
        self
    }
}

/// What makes one round trip.
enum Caller {
    Http { session: Session, target: Arc<Target>, profile: Arc<Profile> },
    Rmcp { peer: Peer<RoleClient>, params: CallToolRequestParams },
}

impl Caller {
    async fn call(&mut self) -> Result<()> {
        match self {
            Caller::Http { session, target, profile } => session.call(target, profile).await,
            Caller::Rmcp { peer, params } => match peer.call_tool_once(params.clone()).await? {
                rmcp::model::CallToolResponse::Complete(result) if result.is_error != Some(true) => Ok(()),
                other => bail!("unexpected tools/call result: {other:?}"),
            },
        }
    }
}

struct Driven {
    caller: Option<Caller>,
    nanos: Vec<u64>,
    /// Calls that succeeded, warm-up included.
    calls: usize,
    errors: usize,
    first_error: Option<String>,
}

/// Round trips back to back until `end`; the ones inside `[start, end]` are timed.
async fn drive(mut caller: Caller, start: Instant, end: Instant) -> Driven {
    let mut nanos = Vec::with_capacity(4096);
    let mut calls = 0;
    for _ in 0..MAX_CALLS {
        let began = Instant::now();
        if began >= end {
            break;
        }
        let outcome = match tokio::time::timeout(OP_TIMEOUT, caller.call()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("a tools/call took longer than {OP_TIMEOUT:?}")),
        };
        let done = Instant::now();
        calls += usize::from(outcome.is_ok());
        match outcome {
            Ok(()) if began >= start && done <= end => nanos.push((done - began).as_nanos() as u64),
            Ok(()) => {}
            Err(e) => {
                // A session that failed is not trusted again.
                return Driven { caller: None, nanos, calls, errors: 1, first_error: Some(format!("{e:#}")) };
            }
        }
    }
    Driven { caller: Some(caller), nanos, calls, errors: 0, first_error: None }
}

/// Runs `callers` in a closed loop and measures the window after `warmup`.
async fn run_callers(
    callers: Vec<Caller>,
    mut result: LoadResult,
    warmup: Duration,
    duration: Duration,
    watched: Watched,
) -> (LoadResult, Vec<Caller>) {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let probe = Cpu::probe(start, end, watched);
    let mut set = JoinSet::new();
    for caller in callers {
        set.spawn(drive(caller, start, end));
    }
    let mut nanos = Vec::new();
    let mut survivors = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(driven) => {
                nanos.extend(driven.nanos);
                result.calls_total += driven.calls;
                result.errors += driven.errors;
                if result.first_error.is_none() {
                    result.first_error = driven.first_error;
                }
                survivors.extend(driven.caller);
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("a session task failed: {e}"));
            }
        }
    }
    let cpu = probe.await.unwrap_or_default();
    (result.finish(nanos, duration, cpu), survivors)
}

/// Opens `n` sessions, [`OPEN_CONCURRENCY`] at a time, each on a connection of its own.
pub(crate) async fn open_sessions(
    target: &Arc<Target>,
    profile: &Arc<Profile>,
    n: usize,
) -> (Vec<Session>, usize, Option<String>) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..OPEN_CONCURRENCY.min(n) {
        let (target, profile, next) = (target.clone(), profile.clone(), next.clone());
        set.spawn(async move {
            let mut opened = Vec::new();
            let mut errors = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let attempt = async {
                    let conn = Conn::open(&target).await?;
                    Session::open(&target, &profile, conn).await
                };
                match attempt.await {
                    Ok(session) => opened.push(session),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            (opened, errors)
        });
    }
    let mut sessions = Vec::with_capacity(n);
    let (mut errors, mut first) = (0, None);
    while let Some(joined) = set.join_next().await {
        if let Ok((opened, failed)) = joined {
            sessions.extend(opened);
            errors += failed.len();
            if first.is_none() {
                first = failed.into_iter().next();
            }
        }
    }
    (sessions, errors, first)
}

/// Closes sessions (DELETE), [`OPEN_CONCURRENCY`] at a time; returns the failures.
pub(crate) async fn close_sessions(target: &Arc<Target>, sessions: Vec<Session>) -> usize {
    let mut set = JoinSet::new();
    let mut failures = 0;
    for session in sessions {
        if set.len() >= OPEN_CONCURRENCY && !matches!(set.join_next().await, Some(Ok(Ok(())))) {
            failures += 1;
        }
        let target = target.clone();
        set.spawn(async move { session.close(&target).await.map(drop) });
    }
    while let Some(joined) = set.join_next().await {
        if !matches!(joined, Ok(Ok(()))) {
            failures += 1;
        }
    }
    failures
}

/// `sessions` sessions, each in a closed loop of `tools/call` for `warmup + duration`; the CPU
/// of the `watched` processes read over the measured window.
pub(crate) async fn closed_loop(
    target: &Target,
    profile: &Profile,
    sessions: usize,
    warmup: Duration,
    duration: Duration,
    watched: impl Into<Watched>,
) -> Result<LoadResult> {
    let (target, profile) = (Arc::new(target.clone()), Arc::new(profile.clone()));
    let (opened, errors, first_error) = open_sessions(&target, &profile, sessions).await;
    if opened.is_empty() {
        bail!("no session could be opened: {}", first_error.unwrap_or_default());
    }
    let result = LoadResult { sessions, sessions_opened: opened.len(), errors, first_error, ..LoadResult::default() };
    let callers = opened
        .into_iter()
        .map(|session| Caller::Http { session, target: target.clone(), profile: profile.clone() })
        .collect();
    let (mut result, survivors) = run_callers(callers, result, warmup, duration, watched.into()).await;
    let sessions = survivors
        .into_iter()
        .filter_map(|c| match c {
            Caller::Http { session, .. } => Some(session),
            Caller::Rmcp { .. } => None,
        })
        .collect();
    let failed = close_sessions(&target, sessions).await;
    if failed > 0 {
        result.errors += failed;
        result.first_error.get_or_insert_with(|| format!("{failed} sessions could not be closed"));
    }
    Ok(result)
}

/// `concurrency` callers sharing one rmcp client over stdio to a child `program`: the direct
/// path the gateway's stdio upstream is compared with.
pub(crate) async fn stdio_direct(
    program: &Path,
    tool: &str,
    arguments: &serde_json::Value,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadResult> {
    let child = TokioChildProcess::new(tokio::process::Command::new(program))
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = child.id();
    let client = within("initialize over stdio", async { Ok(().serve(child).await?) }).await?;
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    let callers =
        (0..concurrency).map(|_| Caller::Rmcp { peer: client.peer().clone(), params: params.clone() }).collect();
    let result = LoadResult { sessions: concurrency, sessions_opened: concurrency, ..LoadResult::default() };
    let (result, survivors) = run_callers(callers, result, warmup, duration, pid.into()).await;
    drop(survivors);
    let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
    Ok(result)
}

/// One session opened, used once and closed.
pub(crate) async fn one_session(target: &Target, profile: &Profile) -> Result<()> {
    let conn = Conn::open(target).await?;
    let mut session = Session::open(target, profile, conn).await?;
    within("tools/call", session.call(target, profile)).await?;
    session.close(target).await.map(drop)
}

/// A session set-up run.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct SetupResult {
    pub(crate) workers: usize,
    pub(crate) duration_s: f64,
    pub(crate) sessions: usize,
    pub(crate) per_second: f64,
    /// From `initialize` to the end of the close.
    pub(crate) latency: Latency,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: Cpu,
    pub(crate) server_cores: Option<f64>,
    pub(crate) server_us_per_session: Option<f64>,
    pub(crate) client_cores: f64,
    pub(crate) other_cores: f64,
}

/// `workers` clients, each setting up sessions back to back: `initialize`, `initialized`, one
/// `tools/call`, then DELETE (Streamable HTTP) or closing the event stream (legacy). A worker
/// keeps its POST connection across sessions; a legacy session opens its own event stream.
pub(crate) async fn setup_rate(
    target: &Target,
    profile: &Profile,
    workers: usize,
    warmup: Duration,
    duration: Duration,
    watched: impl Into<Watched>,
) -> Result<SetupResult> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let probe = Cpu::probe(start, end, watched.into());
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (target, profile) = (target.clone(), profile.clone());
        set.spawn(async move {
            let mut nanos = Vec::new();
            let mut errors = Vec::new();
            let mut conn: Option<Conn> = None;
            for _ in 0..MAX_CALLS {
                let began = Instant::now();
                if began >= end || errors.len() >= MAX_ERRORS {
                    break;
                }
                let attempt = async {
                    let c = match conn.take() {
                        Some(c) => c,
                        None => Conn::open(&target).await?,
                    };
                    let mut session = Session::open(&target, &profile, c).await?;
                    within("tools/call", session.call(&target, &profile)).await?;
                    session.close(&target).await
                };
                match attempt.await {
                    Ok(c) => {
                        conn = Some(c);
                        let done = Instant::now();
                        if began >= start && done <= end {
                            nanos.push((done - began).as_nanos() as u64);
                        }
                    }
                    Err(e) => {
                        errors.push(format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (nanos, errors)
        });
    }
    let mut nanos = Vec::new();
    let mut result = SetupResult { workers, duration_s: duration.as_secs_f64(), ..SetupResult::default() };
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((n, errors)) => {
                nanos.extend(n);
                result.errors += errors.len();
                if result.first_error.is_none() {
                    result.first_error = errors.into_iter().next();
                }
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("a worker failed: {e}"));
            }
        }
    }
    let cpu = probe.await.unwrap_or_default();
    result.sessions = nanos.len();
    result.per_second = nanos.len() as f64 / result.duration_s;
    result.latency = Latency::of(nanos);
    let shares = cpu.shares(result.per_second);
    result.server_cores = shares.server_cores;
    result.server_us_per_session = shares.server_us_per;
    result.client_cores = shares.client_cores;
    result.other_cores = shares.other_cores;
    result.cpu = cpu;
    Ok(result)
}

/// Idle sessions, opened and kept.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) sessions: Vec<Parked>,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
}

/// Opens sessions until `held` has `total`, with `workers` POST connections (closed afterwards:
/// an idle Streamable HTTP session holds no connection; a legacy one keeps its event stream).
pub(crate) async fn hold(target: &Target, profile: &Profile, held: &mut Held, total: usize, workers: usize) {
    let wanted = total.saturating_sub(held.sessions.len());
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..workers.min(wanted) {
        let (target, profile, next, failures) = (target.clone(), profile.clone(), next.clone(), failures.clone());
        set.spawn(async move {
            let mut parked = Vec::new();
            let mut errors = Vec::new();
            let mut conn: Option<Conn> = None;
            while failures.load(Ordering::Relaxed) < MAX_ERRORS && next.fetch_add(1, Ordering::Relaxed) < wanted {
                let attempt = async {
                    let c = match conn.take() {
                        Some(c) => c,
                        None => Conn::open(&target).await?,
                    };
                    Session::open(&target, &profile, c).await
                };
                match attempt.await {
                    Ok(session) => {
                        let (p, c) = session.park();
                        parked.push(p);
                        conn = Some(c);
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        errors.push(format!("{e:#}"));
                    }
                }
            }
            (parked, errors)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((parked, errors)) => {
                held.sessions.extend(parked);
                held.errors += errors.len();
                if held.first_error.is_none() {
                    held.first_error = errors.into_iter().next();
                }
            }
            Err(e) => {
                held.errors += 1;
                held.first_error.get_or_insert_with(|| format!("a worker failed: {e}"));
            }
        }
    }
}

/// One `tools/call` on every held session (still usable after idling?); returns the failures,
/// and keeps the sessions that answered.
pub(crate) async fn check_held(target: &Target, profile: &Profile, held: &mut Held, workers: usize) -> usize {
    let sessions = std::mem::take(&mut held.sessions);
    let total = sessions.len();
    let mut chunks: Vec<Vec<Parked>> = (0..workers.max(1)).map(|_| Vec::new()).collect();
    for (i, p) in sessions.into_iter().enumerate() {
        chunks[i % workers.max(1)].push(p);
    }
    let mut set = JoinSet::new();
    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
        let (target, profile) = (target.clone(), profile.clone());
        set.spawn(async move {
            let mut kept = Vec::with_capacity(chunk.len());
            let mut first = None;
            let mut conn: Option<Conn> = None;
            for parked in chunk {
                let c = match conn.take() {
                    Some(c) => c,
                    None => match Conn::open(&target).await {
                        Ok(c) => c,
                        Err(e) => {
                            first.get_or_insert(format!("{e:#}"));
                            continue;
                        }
                    },
                };
                let mut session = Session::unpark(parked, c);
                match within("tools/call", session.call(&target, &profile)).await {
                    Ok(()) => {
                        let (p, c) = session.park();
                        kept.push(p);
                        conn = Some(c);
                    }
                    Err(e) => {
                        first.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            (kept, first)
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((kept, first)) = joined {
            held.sessions.extend(kept);
            if held.first_error.is_none() {
                held.first_error = first;
            }
        }
    }
    total - held.sessions.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=1000).map(|ms| ms * 1_000_000).collect());
        assert_eq!((l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Latency::of(vec![]).samples, 0);
    }
}
