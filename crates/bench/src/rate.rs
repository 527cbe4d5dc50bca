//! The open loop: requests sent at a fixed rate whatever the answers do, spread round-robin
//! over a set of sessions, with each latency measured from the time its request was due.
//!
//! A closed loop sends a session's next request when the last answer is back, so a server that
//! stalls stalls the load too: the requests that would have waited are never sent, and a stall
//! shows in one sample instead of in all the requests it held up (coordinated omission). Here a
//! pacer releases request `i` at `t0 + i / rate` to session `i mod n`. A session sends its
//! requests in order on its one keep-alive connection (HTTP/1.1 carries one request at a time),
//! so a request that falls due while the previous one is out goes when that one returns, and
//! its latency still counts from when it was due. The pacer is an OS thread (the runtime's
//! timer rounds to whole milliseconds, as much as the latencies measured); how late the load
//! generator itself wrote requests that found their session idle is reported as the *send lag*.
//!
//! Bounded in count and time: the pacer releases `rate × (warm-up + duration)` requests; a
//! call waits at most [`OP_TIMEOUT`]; a session queues at most [`QUEUE`] requests (more are
//! dropped and counted); what is still queued [`DRAIN`] after the last release is given up and
//! counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::{OP_TIMEOUT, Profile, Session, Target};
use crate::load::{self, Cpu, Latency, Watched};

/// Requests a session may have waiting before the pacer drops the next one.
const QUEUE: usize = 1024;
/// How long after the last release queued requests are still sent.
const DRAIN: Duration = Duration::from_secs(10);
/// The latency the report counts as slow.
pub(crate) const SLOW: Duration = Duration::from_millis(10);
/// The highest rate accepted: the pacer wakes once per request.
const MAX_RATE: f64 = 100_000.0;
/// Between the sessions being open and the first release.
const LEAD: Duration = Duration::from_millis(100);

/// An open-loop run.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RateResult {
    /// Requests released per second.
    pub(crate) rate: f64,
    pub(crate) sessions: usize,
    pub(crate) sessions_opened: usize,
    /// The measured window: the requests due in it are the measured ones.
    pub(crate) duration_s: f64,
    /// Requests due in the window.
    pub(crate) due: usize,
    /// Of those, answered.
    pub(crate) answered: usize,
    /// Answered requests of the window per second of it.
    pub(crate) answered_per_s: f64,
    /// From the time each answered request of the window was due to its answer.
    pub(crate) latency: Latency,
    /// Requests of the window answered after more than [`SLOW`], or not answered.
    pub(crate) over_10ms: usize,
    pub(crate) over_10ms_share: f64,
    /// How late the load generator itself wrote the requests of the window: from the time each
    /// was due to the time it was sent, for those whose session was idle by then (the others
    /// also waited for the previous answer).
    pub(crate) send_lag: Latency,
    /// Failed calls, and requests dropped or given up, warm-up included.
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: Cpu,
    /// Server CPU cores busy during the window.
    pub(crate) server_cores: Option<f64>,
    /// Server CPU microseconds per answered request.
    pub(crate) server_us_per_req: Option<f64>,
    /// Load generator CPU cores busy during the window (the pacer's included).
    pub(crate) client_cores: f64,
    /// Cores busy with anything else (see [`Cpu::other_cores`]).
    pub(crate) other_cores: f64,
}

/// When each request is due, and which are measured.
#[derive(Clone, Copy)]
struct Schedule {
    t0: Instant,
    interval_ns: f64,
    /// The first measured request; every later one is measured.
    first: u64,
    /// Requests in all.
    total: u64,
    /// After this, queued requests are given up.
    give_up: Instant,
}

impl Schedule {
    fn due(&self, i: u64) -> Instant {
        self.t0 + Duration::from_nanos((i as f64 * self.interval_ns) as u64)
    }

    fn measured(&self, i: u64) -> bool {
        i >= self.first
    }
}

/// What one session saw.
#[derive(Default)]
struct Tally {
    nanos: Vec<u64>,
    lags: Vec<u64>,
    over: usize,
    errors: usize,
    first_error: Option<String>,
    /// Back when it never failed, to be closed.
    session: Option<Session>,
}

impl Tally {
    fn error(&mut self, measured: bool, why: impl FnOnce() -> String) {
        self.errors += 1;
        self.over += usize::from(measured);
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

/// Sends the requests `due` hands it, in order, each when it arrives.
async fn session_loop(
    mut session: Session,
    target: Arc<Target>,
    profile: Arc<Profile>,
    mut due: mpsc::Receiver<u64>,
    schedule: Schedule,
) -> Tally {
    let mut tally = Tally::default();
    let mut failed = false;
    // When the previous answer came back: a request due after it found its session idle.
    let mut idle_since = schedule.t0;
    while let Some(i) = due.recv().await {
        let (at, measured) = (schedule.due(i), schedule.measured(i));
        if failed {
            // A session that failed is not trusted again: what it was given fails with it.
            tally.error(measured, String::new);
            continue;
        }
        let sent = Instant::now();
        if sent > schedule.give_up {
            tally.error(measured, || format!("still queued {DRAIN:?} after the last request was due"));
            continue;
        }
        let outcome = match tokio::time::timeout(OP_TIMEOUT, session.call(&target, &profile)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("a tools/call took longer than {OP_TIMEOUT:?}")),
        };
        let done = Instant::now();
        let latency = done.saturating_duration_since(at);
        match outcome {
            Ok(()) if measured => {
                tally.nanos.push(latency.as_nanos() as u64);
                // Only a request that did not wait for the previous answer tells how late the
                // load generator itself was.
                if idle_since <= at {
                    tally.lags.push(sent.saturating_duration_since(at).as_nanos() as u64);
                }
                tally.over += usize::from(latency > SLOW);
            }
            Ok(()) => {}
            Err(e) => {
                failed = true;
                tally.error(measured, || format!("{e:#}"));
            }
        }
        idle_since = done;
    }
    if !failed {
        tally.session = Some(session);
    }
    tally
}

/// Requests the pacer could not queue: (all, measured).
type Dropped = (usize, usize);

/// Releases every request at its time (an OS thread: sleeps of a few microseconds' precision).
fn pace(schedule: Schedule, queues: Vec<mpsc::Sender<u64>>) -> Dropped {
    // The default timer slack lets a sleep overrun by 50 µs; ask for the precise wake-up.
    let slack = nix::sys::prctl::get_timerslack().ok();
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut dropped = (0, 0);
    for i in 0..schedule.total {
        let at = schedule.due(i);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let queue = &queues[(i % queues.len() as u64) as usize];
        // Full: the session is QUEUE requests behind; closed: its task ended. Either way the
        // request is not sent, and counted.
        if queue.try_send(i).is_err() {
            dropped.0 += 1;
            dropped.1 += usize::from(schedule.measured(i));
        }
    }
    if let Some(slack) = slack {
        let _ = nix::sys::prctl::set_timerslack(slack as _);
    }
    dropped
}

/// `sessions` sessions sent `rate` `tools/call`s per second between them for `warmup +
/// duration`; the requests due in the last `duration` are measured.
pub(crate) async fn open_loop(
    target: &Target,
    profile: &Profile,
    sessions: usize,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    watched: Watched,
) -> Result<RateResult> {
    ensure!(rate > 0.0 && rate <= MAX_RATE, "the rate must be above 0 and at most {MAX_RATE} per second");
    ensure!(!duration.is_zero(), "the measured window must not be empty");
    let (target, profile) = (Arc::new(target.clone()), Arc::new(profile.clone()));
    let (opened, open_errors, first_error) = load::open_sessions(&target, &profile, sessions).await;
    if opened.is_empty() {
        bail!("no session could be opened: {}", first_error.unwrap_or_default());
    }
    let first = (warmup.as_secs_f64() * rate).ceil() as u64;
    let total = first + (duration.as_secs_f64() * rate).round().max(1.0) as u64;
    let t0 = Instant::now() + LEAD;
    let interval_ns = 1e9 / rate;
    let end = t0 + Duration::from_nanos((total as f64 * interval_ns) as u64);
    let schedule = Schedule { t0, interval_ns, first, total, give_up: end + DRAIN };

    let (start, end) = (tokio::time::Instant::from_std(schedule.due(first)), tokio::time::Instant::from_std(end));
    let probe = Cpu::probe(start, end, watched);
    let mut set = JoinSet::new();
    let mut queues = Vec::with_capacity(opened.len());
    let sessions_opened = opened.len();
    for session in opened {
        let (tx, rx) = mpsc::channel(QUEUE);
        queues.push(tx);
        set.spawn(session_loop(session, target.clone(), profile.clone(), rx, schedule));
    }
    let pacer = tokio::task::spawn_blocking(move || pace(schedule, queues));

    let mut result = RateResult {
        rate,
        sessions,
        sessions_opened,
        duration_s: (total - first) as f64 / rate,
        due: (total - first) as usize,
        errors: open_errors,
        first_error,
        ..RateResult::default()
    };
    let (mut nanos, mut lags, mut survivors) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(tally) => {
                nanos.extend(tally.nanos);
                lags.extend(tally.lags);
                result.over_10ms += tally.over;
                result.errors += tally.errors;
                if result.first_error.is_none() {
                    result.first_error = tally.first_error.filter(|e| !e.is_empty());
                }
                survivors.extend(tally.session);
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("a session task failed: {e}"));
            }
        }
    }
    match pacer.await {
        Ok((dropped, measured)) if dropped > 0 => {
            result.errors += dropped;
            result.over_10ms += measured;
            result.first_error.get_or_insert_with(|| format!("{dropped} requests dropped: {QUEUE} already queued"));
        }
        Ok(_) => {}
        Err(e) => bail!("the pacer failed: {e}"),
    }
    let cpu = probe.await.unwrap_or_default();
    let failed = load::close_sessions(&target, survivors).await;
    if failed > 0 {
        result.errors += failed;
        result.first_error.get_or_insert_with(|| format!("{failed} sessions could not be closed"));
    }
    Ok(result.finish(nanos, lags, cpu))
}

impl RateResult {
    fn finish(mut self, nanos: Vec<u64>, lags: Vec<u64>, cpu: Cpu) -> RateResult {
        self.answered = nanos.len();
        self.answered_per_s = nanos.len() as f64 / self.duration_s;
        self.over_10ms_share = self.over_10ms as f64 / self.due.max(1) as f64;
        self.latency = Latency::of(nanos);
        self.send_lag = Latency::of(lags);
        let shares = cpu.shares(self.answered_per_s);
        self.server_cores = shares.server_cores;
        self.server_us_per_req = shares.server_us_per;
        self.client_cores = shares.client_cores;
        self.other_cores = shares.other_cores;
        self.cpu = cpu;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use http::Request;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::client::Transport;
    use crate::servers::fixed_reply;

    #[test]
    fn the_schedule_spreads_requests_evenly_and_measures_the_tail() {
        let t0 = Instant::now();
        let s = Schedule { t0, interval_ns: 1e9 / 5000.0, first: 500, total: 1500, give_up: t0 };
        assert_eq!(s.due(0), t0);
        assert_eq!(s.due(5000) - t0, Duration::from_secs(1));
        assert_eq!(s.due(1) - t0, Duration::from_micros(200));
        assert!(!s.measured(499) && s.measured(500));
    }

    /// The bare server's fixed reply, except that every request arriving between `from` and
    /// `from + stall` after the first one waits until the stall ends.
    async fn stalling_server(from: Duration, stall: Duration) -> Result<(Target, JoinSet<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let target = Target::parse(&format!("http://{}", listener.local_addr()?), "/mcp", "/sse")?;
        let first: Arc<OnceLock<Instant>> = Arc::default();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let first = first.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let start = *first.get_or_init(Instant::now) + from;
                    async move {
                        let now = Instant::now();
                        if now >= start && now < start + stall {
                            tokio::time::sleep_until((start + stall).into()).await;
                        }
                        fixed_reply(request).await
                    }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((target, tasks))
    }

    /// A 300 ms stall at 1,000 req/s holds up the ~300 requests due during it, and each counts
    /// from when it was due: a closed loop of 4 sessions would have had 4 slow samples.
    #[tokio::test]
    async fn a_stall_counts_against_every_request_it_held_up() -> Result<()> {
        let (target, mut server) = stalling_server(Duration::from_millis(500), Duration::from_millis(300)).await?;
        let profile = Profile::new(Transport::StreamableJson, "echo", &json!({}));
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            open_loop(&target, &profile, 4, 1000.0, Duration::ZERO, Duration::from_secs(2), Watched::default()),
        )
        .await??;
        server.abort_all();
        assert_eq!((result.errors, result.due, result.answered), (0, 2000, 2000), "{:?}", result.first_error);
        // Requests due in the first 290 ms of the stall waited over 10 ms whatever the machine did.
        assert!(result.over_10ms >= 250, "only {} over 10 ms", result.over_10ms);
        assert!(result.latency.max_ms >= 250.0, "max {} ms", result.latency.max_ms);
        // Only those that waited for the previous answer are left out of the send lag.
        assert!(result.send_lag.samples < result.answered);
        Ok(())
    }
}
