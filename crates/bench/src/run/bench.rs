//! The measuring context of a run: its plan, the harness's messages and the observations it
//! collects, and one closed-loop or open-loop run of a server, measured again while the machine
//! is noisy.

use anyhow::{Result, bail};
use serde_json::json;
use tokio::time::Instant;

use crate::client::{ACCEPT_BOTH, Profile, Target, Transport};
use crate::launch::target_of;
use crate::load::{self, LoadResult, Watched};
use crate::procs::Proc;
use crate::rate::{self, RateResult};

use super::report::Plan;

/// Cores busy with other work above which a run is measured again.
pub(crate) const NOISY: f64 = 0.25;

/// The harness's own messages, with the time since the start.
pub(crate) struct Clock(pub(crate) Instant);

impl Clock {
    pub(crate) fn say(&self, message: impl AsRef<str>) {
        eprintln!("[{:>5.1}s] {}", self.0.elapsed().as_secs_f64(), message.as_ref());
    }
}

pub(crate) struct Bench {
    pub(crate) plan: Plan,
    pub(crate) clock: Clock,
    pub(crate) observations: Vec<String>,
}

impl Bench {
    /// Says how a session set-up run went, and notes its errors.
    pub(crate) fn report_setup(&mut self, name: &str, p: &crate::client::Profile, result: &crate::load::SetupResult) {
        self.clock.say(format!(
            "{name}, {}: {:.0} sessions/s set up, p50 {:.3} ms, p99 {:.3} ms, cores: server {} client {:.2} other {:.2}; {} errors",
            p.transport.label(),
            result.per_second,
            result.latency.p50_ms,
            result.latency.p99_ms,
            result.server_cores.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
            result.client_cores,
            result.other_cores,
            result.errors
        ));
        if result.errors > 0 {
            self.note(format!(
                "session set-up, {name}, {}: {} errors; first: {}",
                p.transport.label(),
                result.errors,
                result.first_error.clone().unwrap_or_default()
            ));
        }
    }

    pub(crate) fn note(&mut self, note: String) {
        self.clock.say(format!("NOTE: {note}"));
        self.observations.push(note);
    }

    pub(crate) fn check_alive(&mut self, proc: &mut Proc) -> Result<()> {
        if !proc.alive() {
            bail!("{} exited during the benchmark; its log:\n{}", proc.name, proc.log_tail(30).join("\n"));
        }
        Ok(())
    }

    /// What `measure` returns (given `under`, what it measures), measured again (at most
    /// twice) while something else kept more than [`NOISY`] cores busy; the quietest attempt
    /// is kept. Only for runs where nothing but the server and the load generator should be
    /// working. `what` names the run in a note.
    pub(crate) async fn quietest<R: Quiet, U>(
        &mut self,
        under: &mut U,
        what: &str,
        mut measure: impl AsyncFnMut(&mut Bench, &mut U) -> Result<R>,
    ) -> Result<R> {
        let mut best = measure(self, under).await?;
        for _ in 0..2 {
            if best.other_cores() <= NOISY {
                break;
            }
            self.clock.say(format!("  {:.2} other cores busy during that run: measuring it again", best.other_cores()));
            let again = measure(self, under).await?;
            if again.other_cores() < best.other_cores() {
                best = again;
            }
        }
        if best.other_cores() > NOISY {
            self.note(format!(
                "{what}: other work kept {:.2} cores busy in each of three attempts",
                best.other_cores()
            ));
        }
        Ok(best)
    }

    /// [`Bench::load`], measured again while the machine is noisy ([`Bench::quietest`]).
    pub(crate) async fn load_quiet(
        &mut self,
        proc: &mut Proc,
        server: &str,
        profile: &Profile,
        sessions: usize,
    ) -> Result<LoadResult> {
        let what = format!("{server}, {}, {sessions} sessions", profile.transport.label());
        self.quietest(proc, &what, async |bench, proc| bench.load(proc, server, profile, sessions).await).await
    }

    pub(crate) async fn load(
        &mut self,
        proc: &mut Proc,
        server: &str,
        profile: &Profile,
        sessions: usize,
    ) -> Result<LoadResult> {
        let target = target_of(proc)?;
        let result = self.load_at(&target, Some(proc.pid).into(), server, profile, sessions).await;
        self.check_alive(proc)?;
        Ok(result)
    }

    /// A closed-loop run against `target`, reading the CPU of `watched`; its errors noted.
    pub(crate) async fn load_at(
        &mut self,
        target: &Target,
        watched: Watched,
        server: &str,
        profile: &Profile,
        sessions: usize,
    ) -> LoadResult {
        let (warmup, duration) = (self.plan.warmup(), self.plan.duration());
        let result = match load::closed_loop(target, profile, sessions, warmup, duration, watched).await {
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
        result
    }
}

impl Bench {
    /// [`Bench::open_loop`], measured again while the machine is noisy ([`Bench::quietest`]);
    /// the errors of the attempt kept are noted (a server that cannot keep up has them in each).
    pub(crate) async fn open_loop_quiet(
        &mut self,
        proc: &mut Proc,
        server: &str,
        profile: &Profile,
        rate: f64,
    ) -> Result<RateResult> {
        let what = format!("{server}, open loop at {rate:.0} req/s");
        let best =
            self.quietest(proc, &what, async |bench, proc| bench.open_loop(proc, server, profile, rate).await).await?;
        if best.errors > 0 {
            self.note(format!(
                "{what}: {} errors; first: {}",
                best.errors,
                best.first_error.clone().unwrap_or_default()
            ));
        }
        Ok(best)
    }

    async fn open_loop(&mut self, proc: &mut Proc, server: &str, profile: &Profile, rate: f64) -> Result<RateResult> {
        let target = target_of(proc)?;
        let sessions = self.plan.open_loop_sessions;
        let result = self.open_loop_at(&target, Some(proc.pid).into(), server, profile, sessions, rate).await;
        self.check_alive(proc)?;
        Ok(result)
    }

    /// An open-loop run against `target`, reading the CPU of `watched`.
    pub(crate) async fn open_loop_at(
        &mut self,
        target: &Target,
        watched: Watched,
        server: &str,
        profile: &Profile,
        sessions: usize,
        rate: f64,
    ) -> RateResult {
        let (warmup, duration) = (self.plan.warmup(), self.plan.duration());
        let result = match rate::open_loop(target, profile, sessions, rate, warmup, duration, watched).await {
            Ok(result) => result,
            Err(e) => {
                RateResult { rate, sessions, errors: 1, first_error: Some(format!("{e:#}")), ..RateResult::default() }
            }
        };
        self.clock.say(format!(
            "{server}, {}, open loop at {rate:.0} req/s over {sessions} sessions: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms, {:.3}% over 10 ms, send lag p99 {:.3} ms, {} CPU µs/req, cores: server {} client {:.2} other {:.2}; {} errors",
            profile.transport.label(),
            result.latency.p50_ms,
            result.latency.p99_ms,
            result.latency.p999_ms,
            result.latency.max_ms,
            result.over_10ms_share * 100.0,
            result.send_lag.p99_ms,
            result.server_us_per_req.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
            result.server_cores.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
            result.client_cores,
            result.other_cores,
            result.errors,
        ));
        result
    }
}

/// A run that says how busy the rest of the machine was.
pub(crate) trait Quiet {
    fn other_cores(&self) -> f64;
}

impl Quiet for LoadResult {
    fn other_cores(&self) -> f64 {
        self.other_cores
    }
}

impl Quiet for RateResult {
    fn other_cores(&self) -> f64 {
        self.other_cores
    }
}

/// How the runs talk to each server, calling the built-in `echo`.
pub(crate) struct Profiles {
    /// Streamable HTTP with JSON replies (mcpgw, bare hyper).
    pub(crate) json: Profile,
    /// Streamable HTTP with event-stream replies.
    pub(crate) sse: Profile,
    pub(crate) legacy: Profile,
    /// rmcp's server wants both types in `Accept`.
    pub(crate) rmcp_json: Profile,
    pub(crate) rmcp_sse: Profile,
    /// 2026-07-28 requests without a session (mcpgw's modern hub; rmcp serves them statelessly
    /// whatever its mode).
    pub(crate) modern: Profile,
}

impl Profiles {
    pub(crate) fn new() -> Result<Profiles> {
        let echo = |transport| Profile::new(transport, "echo", &json!({"text": "hello"}));
        Ok(Profiles {
            json: echo(Transport::StreamableJson),
            sse: echo(Transport::StreamableSse),
            legacy: echo(Transport::Legacy),
            rmcp_json: echo(Transport::StreamableJson).with_accept(ACCEPT_BOTH)?,
            rmcp_sse: echo(Transport::StreamableSse).with_accept(ACCEPT_BOTH)?,
            modern: echo(Transport::Stateless),
        })
    }
}
